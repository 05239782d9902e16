/* The float32 SIMD GELU (forward and backward, exact and tanh modes) against the double reference
 * (gelu_ref, gelu_grad_ref and their loops), built with -msimd128 and run under Node: a dense sweep of [-20, 20], every power-of-two
 * scale from the smallest denormal to the largest float with both signs, a million random bit
 * patterns, and the special values (+-0, +-inf, NaN, the cut-offs). Then every tail size 0..9
 * between guard words. Prints the largest errors found; exits non-zero on any error over the
 * stated bounds, printing the first mismatches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if !WT_SIMD
#error "test_gelu checks the SIMD kernels: build it with -msimd128"
#endif

/* Forward: |y - y_ref| <= FORWARD_ULPS ulps of y_ref (y_ref the double value, not rounded), for
 * every x whose result is finite, denormals counted in units of the smallest denormal. About ten
 * float roundings (erfc's polynomial, the reciprocal, exp's polynomial, the products) add up to
 * the exact mode's bound. The tanh mode computes z = 2 sqrt(2/pi) (x + 0.044715 x^3) in float
 * (up to 3 ulps), and exp(-|z|) multiplies that relative error by |z|: for x < 0 its bound adds
 * TANH_Z_ULPS * |z| ulps. Indexed by tanh_approx. */
static const double FORWARD_ULPS[2] = {5.0, 3.0};
#define TANH_Z_ULPS 3.0
/* Backward: GELU'(x) is a sum of two terms (Phi(x) and x phi(x), or their tanh analogues) that
 * cancel near the minimum at x = -0.75, so its error is bounded in ulps of the larger term's
 * magnitude; plus the same |z| amplification in the tanh mode for x < 0. */
static const double BACKWARD_ULPS[2] = {5.0, 4.0};

#define SQRT1_2 0.70710678118654752440
#define SQRT2_PI 0.79788456080286535588
#define INV_SQRT_2PI 0.39894228040143267794

static int failures = 0, shown = 0;
static double worst_forward[2], worst_backward[2];
static float worst_forward_x[2], worst_backward_x[2];

/* The float spacing at |v| (denormals: the smallest denormal). */
static double ulp_of(double v) {
  v = fabs(v);
  if (v < 0x1p-126) return 0x1p-149;
  int e;
  frexp(v, &e); /* v in [2^(e-1), 2^e) */
  return ldexp(1.0, e - 24);
}

/* The magnitude the backward error is measured against: the larger of its two terms. */
static double grad_scale(double v, int tanh_approx) {
  if (tanh_approx) {
    const double z = 2.0 * SQRT2_PI * (v + 0.044715 * v * v * v);
    const double sig = 1.0 / (1.0 + exp(-z)), sig_neg = 1.0 / (1.0 + exp(z));
    return fmax(sig, fabs(2.0 * v * sig * sig_neg * SQRT2_PI * (1.0 + 3.0 * 0.044715 * v * v)));
  }
  return fmax(0.5 * erfc(-v * SQRT1_2), fabs(v * INV_SQRT_2PI * exp(-0.5 * v * v)));
}

/* |z| of the tanh mode, where its exp amplifies the float rounding of z (x < 0 only). */
static double tanh_amplification(double v, int tanh_approx) {
  return tanh_approx && v < 0 ? fabs(2.0 * SQRT2_PI * (v + 0.044715 * v * v * v)) : 0.0;
}

/* NaN in, NaN out; infinities and NaN as the reference gives them. */
static int same_special(float got, float want) {
  if (isnan(want)) return isnan(got);
  return got == want;
}

static void report(const char *what, int tanh_approx, float x, float got, double want, double err_ulps, double bound) {
  if (shown++ < 12)
    printf("MISMATCH %s%s x=%.9g (0x%08x): simd %.9g, reference %.17g: %.2f ulps > %.2f\n", what,
           tanh_approx ? " tanh" : "", x, *(uint32_t *)&x, got, want, err_ulps, bound);
  failures++;
}

/* Checks n inputs at once: forward against the double GELU, backward (dout = 1 into a zeroed
 * dinp, so dinp = GELU'(x)) against the double derivative. */
static void check_values(const float *x, size_t n, int tanh_approx) {
  float *y = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n), *g = calloc(n, sizeof(float)), *gr = calloc(n, sizeof(float));
  float *ones = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
  gelu_forward(y, x, n, tanh_approx);
  gelu_forward_ref(yr, x, n, tanh_approx);
  gelu_backward(g, ones, x, n, tanh_approx);
  gelu_backward_ref(gr, ones, x, n, tanh_approx);
  for (size_t i = 0; i < n; i++) {
    const double v = x[i], want = gelu_ref(v, tanh_approx), want_g = gelu_grad_ref(v, tanh_approx);
    if (!isfinite(yr[i]) || !isfinite(gr[i]) || isnan(v)) {
      /* the float reference is the rounded double one: specials must match it exactly */
      if (!same_special(y[i], yr[i])) report("forward special", tanh_approx, x[i], y[i], yr[i], INFINITY, 0);
      if (!same_special(g[i], gr[i])) report("backward special", tanh_approx, x[i], g[i], gr[i], INFINITY, 0);
      continue;
    }
    const double amp = tanh_amplification(v, tanh_approx);
    const double err = fabs(y[i] - want) / ulp_of(want), bound = FORWARD_ULPS[tanh_approx] + TANH_Z_ULPS * amp;
    if (!(err <= bound)) report("forward", tanh_approx, x[i], y[i], want, err, bound);
    const double rel = amp > 0 ? err / bound * FORWARD_ULPS[tanh_approx] : err;
    if (rel > worst_forward[tanh_approx]) worst_forward[tanh_approx] = rel, worst_forward_x[tanh_approx] = x[i];
    const double err_g = fabs(g[i] - want_g) / ulp_of(grad_scale(v, tanh_approx)), bound_g = BACKWARD_ULPS[tanh_approx] + TANH_Z_ULPS * amp;
    if (!(err_g <= bound_g)) report("backward", tanh_approx, x[i], g[i], want_g, err_g, bound_g);
    const double rel_g = amp > 0 ? err_g / bound_g * BACKWARD_ULPS[tanh_approx] : err_g;
    if (rel_g > worst_backward[tanh_approx]) worst_backward[tanh_approx] = rel_g, worst_backward_x[tanh_approx] = x[i];
  }
  free(y), free(yr), free(g), free(gr), free(ones);
}

static float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static uint32_t rng = 2463534242u;
static uint32_t next_u32(void) {
  rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
  return rng;
}

static void sweep(int tanh_approx) {
  enum { DENSE = 327681, SCALES = 2 * 254 * 64, RANDOM = 1000000 };
  float *x = malloc(sizeof(float) * (DENSE + SCALES + RANDOM + 64));
  size_t n = 0;
  for (int i = 0; i < DENSE; i++) x[n++] = -20.0f + (float)i * 0x1p-13f; /* [-20, 20] by 2^-13 */
  for (int e = -149; e < 128; e += 1)                                     /* every binade, 32 points each */
    for (int k = 0; k < 32 && n < DENSE + SCALES; k++) {
      const float v = ldexpf(1.0f + (float)k / 32.0f, e);
      if (isfinite(v)) x[n++] = v, x[n++] = -v;
    }
  for (int i = 0; i < RANDOM; i++) x[n++] = from_bits(next_u32()); /* includes NaNs and infinities */
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 0x1p-149f, -0x1p-149f, 0x1p-126f, -0x1p-126f,
                            0x1.fffffep127f, -0x1.fffffep127f, 14.5f, -14.5f, 14.499999f, -14.499999f, 14.500001f, -14.500001f,
                            11.0f, -11.0f, 10.999999f, -10.999999f, 11.000001f, -11.000001f, -0.7517915f, 5.5f, -5.5f,
                            1e-7f, -1e-7f, 1e-20f, -1e-20f, 3e-39f, -3e-39f};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) x[n++] = specials[i];
  check_values(x, n, tanh_approx);
  free(x);
}

#define GUARD 8
#define GUARD_VALUE 12345.0f

/* Every tail length: exactly n outputs written, the same values as the same inputs at a vector
 * position of a longer call, the backward accumulating dout * GELU'(x) into dinp. */
static void check_tails(int tanh_approx) {
  for (size_t n = 0; n <= 9; n++) {
    float x[16], ylong[16], buf_y[9 + 2 * GUARD], buf_d[9 + 2 * GUARD], dinp0[9], dout[9], dlong[16], ones[16];
    for (size_t i = 0; i < n; i++) {
      x[i] = (float)((int32_t)next_u32() >> 8) * 0x1p-20f; /* [-8, 8) */
      dinp0[i] = (float)((int32_t)next_u32() >> 8) * 0x1p-23f, dout[i] = (float)((int32_t)next_u32() >> 8) * 0x1p-23f;
    }
    if (n > 2) x[2] = NAN;
    for (size_t i = 0; i < 9 + 2 * GUARD; i++) buf_y[i] = buf_d[i] = GUARD_VALUE;
    float *y = buf_y + GUARD, *d = buf_d + GUARD;
    memcpy(d, dinp0, sizeof(float) * n);
    gelu_forward(y, x, n, tanh_approx);
    gelu_backward(d, dout, x, n, tanh_approx);
    /* the same inputs, each in the body of a 12-element call */
    for (size_t i = 0; i < n; i++) {
      float xs[12], g[12];
      for (int k = 0; k < 12; k++) xs[k] = x[i], g[k] = 0.0f, ones[k] = 1.0f;
      gelu_forward(ylong, xs, 12, tanh_approx);
      gelu_backward(g, ones, xs, 12, tanh_approx);
      dlong[i] = dinp0[i] + dout[i] * g[5];
      if (memcmp(&y[i], &ylong[5], sizeof(float)) != 0 || memcmp(&d[i], &dlong[i], sizeof(float)) != 0) {
        printf("MISMATCH tail%s n=%zu at %zu: forward %.9g vs %.9g in a vector, backward %.9g vs %.9g\n",
               tanh_approx ? " tanh" : "", n, i, y[i], ylong[5], d[i], dlong[i]);
        failures++;
      }
    }
    for (int i = 1; i <= GUARD; i++) {
      if (y[-i] != GUARD_VALUE || y[n - 1 + i] != GUARD_VALUE || d[-i] != GUARD_VALUE || d[n - 1 + i] != GUARD_VALUE) {
        printf("OVERWRITE tail%s n=%zu\n", tanh_approx ? " tanh" : "", n);
        failures++;
        break;
      }
    }
  }
}

/* The training forward's saved derivative (gelu_forward_grad, gelu_backward_saved): the same y as
 * gelu_forward and the same dinp as gelu_backward, bit for bit, writing exactly n of each. */
static void check_saved(const float *x, size_t n, int tanh_approx) {
  float *buf = malloc(sizeof(float) * (6 * (n + 2 * GUARD)));
  float *y = buf + GUARD, *y2 = y + n + 2 * GUARD, *g = y2 + n + 2 * GUARD, *d = g + n + 2 * GUARD, *d2 = d + n + 2 * GUARD;
  float *dout = d2 + n + 2 * GUARD;
  for (size_t i = 0; i < 6 * (n + 2 * GUARD); i++) buf[i] = GUARD_VALUE;
  for (size_t i = 0; i < n; i++) {
    d[i] = d2[i] = (float)((int32_t)next_u32() >> 8) * 0x1p-23f;
    dout[i] = (float)((int32_t)next_u32() >> 8) * 0x1p-20f;
  }
  gelu_forward(y, x, n, tanh_approx);
  gelu_backward(d, dout, x, n, tanh_approx);
  gelu_forward_grad(y2, g, x, n, tanh_approx);
  gelu_backward_saved(d2, dout, g, x, n, tanh_approx);
  if (memcmp(y, y2, sizeof(float) * n) != 0 || memcmp(d, d2, sizeof(float) * n) != 0) {
    printf("MISMATCH saved derivative%s n=%zu: not the forward's or the backward's bits\n", tanh_approx ? " tanh" : "", n);
    failures++;
  }
  for (int i = 1; i <= GUARD; i++) {
    if (y2[-i] != GUARD_VALUE || y2[n - 1 + i] != GUARD_VALUE || g[-i] != GUARD_VALUE || g[n - 1 + i] != GUARD_VALUE ||
        d2[-i] != GUARD_VALUE || d2[n - 1 + i] != GUARD_VALUE) {
      printf("OVERWRITE saved derivative%s n=%zu\n", tanh_approx ? " tanh" : "", n);
      failures++;
      break;
    }
  }
  free(buf);
}

int main(void) {
  for (int tanh_approx = 0; tanh_approx <= 1; tanh_approx++) {
    sweep(tanh_approx);
    check_tails(tanh_approx);
    float x[4096];
    for (size_t i = 0; i < 4096; i++) x[i] = (float)((int32_t)next_u32() >> 4) * 0x1p-24f; /* [-8, 8) */
    x[7] = NAN, x[8] = -INFINITY, x[9] = INFINITY, x[10] = -20.0f, x[11] = 20.0f;
    for (size_t n = 0; n <= 9; n++) check_saved(x + 3, n, tanh_approx);
    check_saved(x, 4096, tanh_approx);
    printf("gelu%s: largest error forward %.2f ulps at x=%.9g (bound %.1f), backward %.2f ulps of the larger term at x=%.9g (bound %.1f)%s\n",
           tanh_approx ? " tanh" : "", worst_forward[tanh_approx], worst_forward_x[tanh_approx], FORWARD_ULPS[tanh_approx], worst_backward[tanh_approx],
           worst_backward_x[tanh_approx], BACKWARD_ULPS[tanh_approx],
           tanh_approx ? " (x < 0: against the bound widened by |z|, rescaled)" : "");
  }
  printf("gelu: %d failures\n", failures);
  return failures ? 1 : 0;
}

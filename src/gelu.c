/* GELU, as PyTorch's nn.GELU: exact x * Phi(x) with erf, or its tanh approximation. The double
 * scalar loops are the reference (and the only path of scalar and double builds); the SIMD build
 * runs a float32 SIMD128 kernel held to them by tests/native/test_gelu.c. */
#include <math.h>
#include <string.h>

#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

#define SQRT1_2 0.70710678118654752440
#define SQRT2_PI 0.79788456080286535588 /* sqrt(2 / pi) */
#define INV_SQRT_2PI 0.39894228040143267794

/* GELU(v) and GELU'(v) in double. Phi(v) is taken as erfc(-v / sqrt 2) / 2 and the tanh mode's
 * 0.5 (1 + tanh(s)) as sigmoid(2 s): the same functions as PyTorch's formulas, without the
 * cancellation of 1 + erf or 1 + tanh, which leaves fewer than float's 24 good bits even in
 * double for v < -6. */
double gelu_ref(double v, int tanh_approx) {
  if (tanh_approx) return v / (1.0 + exp(-2.0 * SQRT2_PI * (v + 0.044715 * v * v * v)));
  return 0.5 * v * erfc(-v * SQRT1_2);
}

double gelu_grad_ref(double v, int tanh_approx) {
  if (tanh_approx) {
    const double z = 2.0 * SQRT2_PI * (v + 0.044715 * v * v * v);
    const double sig = 1.0 / (1.0 + exp(-z)), sig_neg = 1.0 / (1.0 + exp(z)); /* sigmoid(z), sigmoid(-z) */
    return sig + 2.0 * v * sig * sig_neg * SQRT2_PI * (1.0 + 3.0 * 0.044715 * v * v);
  }
  return 0.5 * erfc(-v * SQRT1_2) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
}

void gelu_forward_ref(wt_real *y, const wt_real *x, size_t n, int tanh_approx) {
  for (size_t i = 0; i < n; i++) y[i] = (wt_real)gelu_ref(x[i], tanh_approx);
}

/* dinp += dout * GELU'(x). */
void gelu_backward_ref(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx) {
  for (size_t i = 0; i < n; i++) dinp[i] += (wt_real)(dout[i] * gelu_grad_ref(x[i], tanh_approx));
}

#if !WT_SIMD
/* The reference keeps its double derivative: g is not used. */
void gelu_forward_grad(wt_real *y, wt_real *g, const wt_real *x, size_t n, int tanh_approx) {
  (void)g;
  gelu_forward_ref(y, x, n, tanh_approx);
}
void gelu_backward_saved(wt_real *dinp, const wt_real *dout, const wt_real *g, const wt_real *x, size_t n, int tanh_approx) {
  (void)g;
  gelu_backward_ref(dinp, dout, x, n, tanh_approx);
}
void gelu_forward(wt_real *y, const wt_real *x, size_t n, int tanh_approx) { gelu_forward_ref(y, x, n, tanh_approx); }
void gelu_backward(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx) {
  gelu_backward_ref(dinp, dout, x, n, tanh_approx);
}
#else /* WT_SIMD */
/* Float32, four lanes at a time; no libm. The exact mode never forms 1 + erf(x / sqrt 2), which
 * loses all relative precision for negative x. Instead, with a = |x| / sqrt 2,
 *   e = Phi(-|x|) = erfc(a) / 2,  Phi(x) = e for x < 0 and 1 - e for x >= 0,
 *   erfc(a) = exp(-x^2 / 2) * q(t) / (a + K),  t = (a - K) / (a + K) in [-1, 1),
 * where the polynomial q approximates erfcx(a) * (a + K), a bounded smooth function of t (the
 * change of variable of Schonfelder's erfc expansions, Math. Comp. 32 (1978), and of Norbert
 * Juffa's erfcf; coefficients fitted for this file by tests/reference/gelu_coefficients.py).
 * The tanh mode is x * sigmoid(z), z = 2 sqrt(2/pi) (x + 0.044715 x^3), with exp(-|z|).
 * exp(-u) comes as a mantissa and a power of two applied last, so results near underflow keep
 * their precision, and in the exact mode u = x^2 / 2 is taken exactly (x split in 12-bit halves).
 * Measured bounds (tests/native/test_gelu.c): exact mode within 5 ulps of the exact value forward
 * and backward; tanh mode within 3 ulps, plus 3 ulps per unit of |z| for x < 0 where exp(-|z|)
 * magnifies the float rounding of z. NaN passes through; +-inf give what the reference gives. */
#define WT_INLINE static inline __attribute__((always_inline))

#define GELU_ERF_XMAX 14.5f  /* |x| beyond: Phi(x) is 0 or 1 to float precision, and x Phi(x) underflows for x < 0 */
#define GELU_TANH_XMAX 11.0f /* the same for the tanh mode: z(-11) = -112.5 */
#define GELU_TANH_ZMAX 120.0f
#define GELU_ERFC_K 3.0f
#define GELU_K2A 1.59576912f  /* 2 sqrt(2/pi) */
#define GELU_K2B 0.0713548162f /* 2 sqrt(2/pi) 0.044715 */

#define F4(c) wasm_f32x4_splat(c)

/* exp(-u) for 0 <= u <= 128 as p * 2^-n: n = round(u / ln 2), p = exp(-r), r = u - n ln 2 in
 * [-ln 2 / 2, ln 2 / 2], u = u_hi + u_lo (u_lo small). Cody-Waite: LN2_HI has 9 trailing zero
 * bits, so n * LN2_HI and u_hi - n * LN2_HI are exact. Returns p; *vn gets n (a float). */
WT_INLINE v128_t exp_neg_parts(v128_t u_hi, v128_t u_lo, v128_t *vn) {
  *vn = wasm_f32x4_nearest(wasm_f32x4_mul(u_hi, F4(1.44269504f)));
  v128_t vr = wasm_f32x4_sub(u_hi, wasm_f32x4_mul(*vn, F4(0.693145751953125f)));
  vr = wasm_f32x4_sub(vr, wasm_f32x4_sub(wasm_f32x4_mul(*vn, F4(1.42860677e-06f)), u_lo));
  const v128_t vs = wasm_f32x4_neg(vr); /* exp(s), s in [-0.347, 0.347]: relative error 3.7e-9 */
  v128_t vp = F4(0.00137453037f);
  vp = wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(0.00836894475f));
  vp = wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(0.0416696481f));
  vp = wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(0.166665182f));
  vp = wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(0.499999881f));
  vp = wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(1.0f));
  return wasm_f32x4_add(wasm_f32x4_mul(vp, vs), F4(1.0f));
}

/* 2^-n as two factors (each a normal float for n <= 250), to be applied one after the other. */
WT_INLINE void pow2_neg_halves(v128_t vn, v128_t *s1, v128_t *s2) {
  const v128_t n = wasm_i32x4_trunc_sat_f32x4(vn), n1 = wasm_i32x4_shr(n, 1), n2 = wasm_i32x4_sub(n, n1);
  *s1 = wasm_i32x4_shl(wasm_i32x4_sub(wasm_i32x4_splat(127), n1), 23);
  *s2 = wasm_i32x4_shl(wasm_i32x4_sub(wasm_i32x4_splat(127), n2), 23);
}

WT_INLINE v128_t scale2(v128_t v, v128_t s1, v128_t s2) { return wasm_f32x4_mul(wasm_f32x4_mul(v, s1), s2); }

/* The exact mode's parts: e = Phi(-|x|) = m * s1 * s2 and exp(-x^2 / 2) = p * s1 * s2. */
typedef struct gelu_erfc_parts {
  v128_t m, p, s1, s2;
} gelu_erfc_parts;

WT_INLINE gelu_erfc_parts gelu_erfc(v128_t vx) {
  gelu_erfc_parts r;
  /* pmin keeps its first operand when it is NaN, so NaN flows through to the result */
  const v128_t va = wasm_f32x4_pmin(wasm_f32x4_abs(vx), F4(GELU_ERF_XMAX));
  const v128_t vhi = wasm_v128_and(va, wasm_i32x4_splat((int32_t)0xFFFFF000)), vlo = wasm_f32x4_sub(va, vhi);
  const v128_t u_hi = wasm_f32x4_mul(wasm_f32x4_mul(vhi, vhi), F4(0.5f)); /* exact: 12 x 12 bits */
  const v128_t u_lo = wasm_f32x4_mul(wasm_f32x4_mul(vlo, wasm_f32x4_add(va, vhi)), F4(0.5f));
  v128_t vn;
  r.p = exp_neg_parts(u_hi, u_lo, &vn);
  pow2_neg_halves(vn, &r.s1, &r.s2);
  const v128_t vz = wasm_f32x4_mul(va, F4(0.707106781f));
  const v128_t vrcp = wasm_f32x4_div(F4(1.0f), wasm_f32x4_add(vz, F4(GELU_ERFC_K)));
  /* t = 2a / (a + K) - 1: a - K would drop a's low bits where a is small */
  const v128_t vt = wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_add(vz, vz), vrcp), F4(1.0f));
  v128_t vq = F4(-0.000321756001f); /* erfcx(a) (a + 3) on t: relative error 7.7e-9 */
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(-0.000477246911f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(0.00307905138f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(-0.00123147585f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(-0.0268397965f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(0.119530722f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(-0.310466021f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(0.590228081f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(-0.88339448f));
  vq = wasm_f32x4_add(wasm_f32x4_mul(vq, vt), F4(1.07400692f));
  r.m = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(vq, vrcp), r.p), F4(0.5f));
  return r;
}

WT_INLINE v128_t gelu_exact_forward_of(v128_t vx, gelu_erfc_parts e) {
  const v128_t vneg = scale2(wasm_f32x4_mul(vx, e.m), e.s1, e.s2);
  const v128_t vpos = wasm_f32x4_mul(vx, wasm_f32x4_sub(F4(1.0f), scale2(e.m, e.s1, e.s2)));
  const v128_t vy = wasm_v128_bitselect(vneg, vpos, wasm_f32x4_lt(vx, F4(0.0f)));
  /* x Phi(x) underflows: -0 as the reference gives, and NaN for -inf (-inf * 0) as PyTorch */
  return wasm_v128_bitselect(wasm_f32x4_mul(vx, F4(0.0f)), vy, wasm_f32x4_lt(vx, F4(-GELU_ERF_XMAX)));
}

/* GELU'(x) = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi). */
WT_INLINE v128_t gelu_exact_grad_of(v128_t vx, gelu_erfc_parts e) {
  /* x phi(x) shares e's power of two: for x < 0 the sum is scaled once, keeping its precision
   * where it is denormal */
  const v128_t vxphi = wasm_f32x4_mul(vx, wasm_f32x4_mul(e.p, F4(0.398942280f)));
  const v128_t vneg = scale2(wasm_f32x4_add(e.m, vxphi), e.s1, e.s2);
  const v128_t vpos = wasm_f32x4_add(wasm_f32x4_sub(F4(1.0f), scale2(e.m, e.s1, e.s2)), scale2(vxphi, e.s1, e.s2));
  v128_t vg = wasm_v128_bitselect(vneg, vpos, wasm_f32x4_lt(vx, F4(0.0f)));
  /* beyond XMAX: 0 or 1, and NaN at -inf and +inf (inf * 0) as the reference */
  const v128_t vzero = wasm_f32x4_mul(vx, F4(0.0f));
  vg = wasm_v128_bitselect(vzero, vg, wasm_f32x4_lt(vx, F4(-GELU_ERF_XMAX)));
  return wasm_v128_bitselect(wasm_f32x4_add(F4(1.0f), vzero), vg, wasm_f32x4_gt(vx, F4(GELU_ERF_XMAX)));
}

WT_INLINE v128_t gelu_exact_forward4(v128_t vx) { return gelu_exact_forward_of(vx, gelu_erfc(vx)); }
WT_INLINE v128_t gelu_exact_grad4(v128_t vx) { return gelu_exact_grad_of(vx, gelu_erfc(vx)); }
/* Both from one evaluation of the parts: the same values as the two above. */
WT_INLINE v128_t gelu_exact_both4(v128_t vx, v128_t *vg) {
  const gelu_erfc_parts e = gelu_erfc(vx);
  *vg = gelu_exact_grad_of(vx, e);
  return gelu_exact_forward_of(vx, e);
}

/* The tanh mode's parts: z, E = exp(-|z|) = p * s1 * s2. */
typedef struct gelu_tanh_parts {
  v128_t x2, p, s1, s2, e;
} gelu_tanh_parts;

WT_INLINE gelu_tanh_parts gelu_tanh(v128_t vx) {
  gelu_tanh_parts r;
  r.x2 = wasm_f32x4_mul(vx, vx);
  const v128_t vz = wasm_f32x4_mul(vx, wasm_f32x4_add(F4(GELU_K2A), wasm_f32x4_mul(F4(GELU_K2B), r.x2)));
  const v128_t vaz = wasm_f32x4_pmin(wasm_f32x4_abs(vz), F4(GELU_TANH_ZMAX)); /* NaN flows through */
  v128_t vn;
  r.p = exp_neg_parts(vaz, F4(0.0f), &vn);
  pow2_neg_halves(vn, &r.s1, &r.s2);
  r.e = scale2(r.p, r.s1, r.s2);
  return r;
}

/* x sigmoid(z): x / (1 + E) for x >= 0, x E / (1 + E) for x < 0. */
WT_INLINE v128_t gelu_tanh_forward_of(v128_t vx, gelu_tanh_parts t) {
  const v128_t vd = wasm_f32x4_add(F4(1.0f), t.e);
  const v128_t vneg = scale2(wasm_f32x4_div(wasm_f32x4_mul(vx, t.p), vd), t.s1, t.s2);
  const v128_t vy = wasm_v128_bitselect(vneg, wasm_f32x4_div(vx, vd), wasm_f32x4_lt(vx, F4(0.0f)));
  return wasm_v128_bitselect(wasm_f32x4_mul(vx, F4(0.0f)), vy, wasm_f32x4_lt(vx, F4(-GELU_TANH_XMAX)));
}

/* sigmoid(z) + x sigmoid(z) sigmoid(-z) z'(x), sigmoid(z) sigmoid(-z) = E / (1 + E)^2. */
WT_INLINE v128_t gelu_tanh_grad_of(v128_t vx, gelu_tanh_parts t) {
  const v128_t vd = wasm_f32x4_add(F4(1.0f), t.e), vrd = wasm_f32x4_div(F4(1.0f), vd);
  const v128_t vsig = wasm_v128_bitselect(wasm_f32x4_mul(t.e, vrd), vrd, wasm_f32x4_lt(vx, F4(0.0f)));
  const v128_t vdz = wasm_f32x4_add(F4(GELU_K2A), wasm_f32x4_mul(F4(3.0f * GELU_K2B), t.x2));
  v128_t vg = wasm_f32x4_add(vsig, wasm_f32x4_mul(wasm_f32x4_mul(vx, vdz), wasm_f32x4_mul(t.e, wasm_f32x4_mul(vrd, vrd))));
  const v128_t vzero = wasm_f32x4_mul(vx, F4(0.0f));
  vg = wasm_v128_bitselect(vzero, vg, wasm_f32x4_lt(vx, F4(-GELU_TANH_XMAX)));
  return wasm_v128_bitselect(wasm_f32x4_add(F4(1.0f), vzero), vg, wasm_f32x4_gt(vx, F4(GELU_TANH_XMAX)));
}

WT_INLINE v128_t gelu_tanh_forward4(v128_t vx) { return gelu_tanh_forward_of(vx, gelu_tanh(vx)); }
WT_INLINE v128_t gelu_tanh_grad4(v128_t vx) { return gelu_tanh_grad_of(vx, gelu_tanh(vx)); }
WT_INLINE v128_t gelu_tanh_both4(v128_t vx, v128_t *vg) {
  const gelu_tanh_parts t = gelu_tanh(vx);
  *vg = gelu_tanh_grad_of(vx, t);
  return gelu_tanh_forward_of(vx, t);
}

/* The last n % 4 elements go through a padded vector, so every element gets the same result
 * wherever it sits, and nothing outside the arrays is read or written. */
WT_INLINE void gelu_forward_loop(float *y, const float *x, size_t n, v128_t (*f)(v128_t)) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, f(wasm_v128_load(x + i)));
  if (i < n) {
    float buf[4] = {0, 0, 0, 0};
    memcpy(buf, x + i, sizeof(float) * (n - i));
    wasm_v128_store(buf, f(wasm_v128_load(buf)));
    memcpy(y + i, buf, sizeof(float) * (n - i));
  }
}

WT_INLINE void gelu_backward_loop(float *dinp, const float *dout, const float *x, size_t n, v128_t (*grad)(v128_t)) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t vg = wasm_f32x4_mul(wasm_v128_load(dout + i), grad(wasm_v128_load(x + i)));
    wasm_v128_store(dinp + i, wasm_f32x4_add(wasm_v128_load(dinp + i), vg));
  }
  if (i < n) {
    float bx[4] = {0, 0, 0, 0}, bd[4] = {0, 0, 0, 0}, bo[4] = {0, 0, 0, 0};
    memcpy(bx, x + i, sizeof(float) * (n - i)), memcpy(bd, dinp + i, sizeof(float) * (n - i));
    memcpy(bo, dout + i, sizeof(float) * (n - i));
    const v128_t vg = wasm_f32x4_mul(wasm_v128_load(bo), grad(wasm_v128_load(bx)));
    wasm_v128_store(bd, wasm_f32x4_add(wasm_v128_load(bd), vg));
    memcpy(dinp + i, bd, sizeof(float) * (n - i));
  }
}

/* y = GELU(x) and g = GELU'(x), the same values as gelu_forward_loop's and gelu_backward_loop's. */
WT_INLINE void gelu_forward_grad_loop(float *y, float *g, const float *x, size_t n, v128_t (*both)(v128_t, v128_t *)) {
  size_t i = 0;
  v128_t vg;
  for (; i + 4 <= n; i += 4) {
    wasm_v128_store(y + i, both(wasm_v128_load(x + i), &vg));
    wasm_v128_store(g + i, vg);
  }
  if (i < n) {
    float bx[4] = {0, 0, 0, 0}, by[4], bg[4];
    memcpy(bx, x + i, sizeof(float) * (n - i));
    wasm_v128_store(by, both(wasm_v128_load(bx), &vg));
    wasm_v128_store(bg, vg);
    memcpy(y + i, by, sizeof(float) * (n - i)), memcpy(g + i, bg, sizeof(float) * (n - i));
  }
}

void gelu_forward_grad(float *y, float *g, const float *x, size_t n, int tanh_approx) {
  if (tanh_approx) gelu_forward_grad_loop(y, g, x, n, gelu_tanh_both4);
  else gelu_forward_grad_loop(y, g, x, n, gelu_exact_both4);
}

/* dinp += dout * g, g saved by gelu_forward_grad: what gelu_backward computes, without the erfc. */
void gelu_backward_saved(float *dinp, const float *dout, const float *g, const float *x, size_t n, int tanh_approx) {
  (void)x, (void)tanh_approx;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t vg = wasm_f32x4_mul(wasm_v128_load(dout + i), wasm_v128_load(g + i));
    wasm_v128_store(dinp + i, wasm_f32x4_add(wasm_v128_load(dinp + i), vg));
  }
  for (; i < n; i++) dinp[i] = dinp[i] + dout[i] * g[i];
}

void gelu_forward(float *y, const float *x, size_t n, int tanh_approx) {
  if (tanh_approx) gelu_forward_loop(y, x, n, gelu_tanh_forward4);
  else gelu_forward_loop(y, x, n, gelu_exact_forward4);
}

void gelu_backward(float *dinp, const float *dout, const float *x, size_t n, int tanh_approx) {
  if (tanh_approx) gelu_backward_loop(dinp, dout, x, n, gelu_tanh_grad4);
  else gelu_backward_loop(dinp, dout, x, n, gelu_exact_grad4);
}
#endif /* WT_SIMD */

#ifndef WT_REAL_IS_DOUBLE

static wt_status gelu_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  if (l->arg[0] != 0 && l->arg[0] != 1) return wt_plan_fail(l, "gelu: approximate must be 'none' or 'tanh'");
  l->flops = 8.0 * wt_shape_size(l->in);
  l->aux_per_image = wt_shape_size(l->in); /* GELU'(x), saved by a forward that a backward follows */
  return WT_OK;
}

/* A forward that a backward will follow computes GELU'(x) beside GELU(x), from the same erfc (or
 * exp), and keeps it in aux; the backward then multiplies. The saved and the recomputed
 * derivative are the same floats, so the gradients are bit for bit those of recomputing. */
static void gelu_op_forward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = (size_t)ctx->B * wt_shape_size(l->out);
  if (ctx->grads && wt_wants_dslot(ctx, l->x)) gelu_forward_grad(wt_slot(ctx, l->y), l->aux, wt_slot(ctx, l->x), n, l->arg[0]);
  else gelu_forward(wt_slot(ctx, l->y), wt_slot(ctx, l->x), n, l->arg[0]);
}

static void gelu_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  gelu_backward_saved(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), l->aux, wt_slot(ctx, l->x), (size_t)ctx->B * wt_shape_size(l->out),
                      l->arg[0]);
}

const wt_op wt_op_gelu = {"gelu", gelu_plan, gelu_op_forward, gelu_op_backward, 1};

#endif

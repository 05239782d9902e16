/* The general convolution kernels (src/conv_kernels.c) on a table of shapes that covers every
 * tail: channel counts that are not multiples of the tiles (4 and 8), output widths that are not
 * multiples of 8 (and narrower than one tile), K = 1..7, stride 1..3, padding 0..3, batches of
 * 1..3 images, and the Winograd path's shapes (3x3 stride 1, >= 16 channels) with every tail.
 *  - SIMD build (-msimd128, run under Node): each fast pass against its scalar reference, within
 *    1e-5 relative L2 per tensor (they sum in another order), with guard words around every
 *    output and around the scratch the shape asked for, and inputs checked untouched.
 *  - Every build (natively in double, -DWT_REAL=double): the references against each other, by
 *    the adjoint identities <forward(x, w), g> = <x, backward_input(g, w)> = <w, backward_params(g, x)>.
 * Exits non-zero and prints the first mismatches on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GUARD 16
#define GUARD_VALUE 12345.0f

static uint32_t rng = 2463534242u;
static uint32_t next_u32(void) {
  rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
  return rng;
}
static wt_real uniform(void) { return (wt_real)(next_u32() >> 8) / (wt_real)8388608.0 - 1; }
static int below(int n) { return (int)(next_u32() % (uint32_t)n); }

static wt_real *guarded(size_t n) { /* n values with GUARD sentinels on both sides */
  wt_real *p = malloc(sizeof(wt_real) * (n + 2 * GUARD));
  for (size_t i = 0; i < n + 2 * GUARD; i++) p[i] = GUARD_VALUE;
  return p + GUARD;
}
static void release(wt_real *p) { free(p - GUARD); }
static void fill(wt_real *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = uniform();
}
static int guards_intact(const wt_real *p, size_t n) {
  for (int i = 1; i <= GUARD; i++)
    if (p[-i] != GUARD_VALUE || p[n - 1 + i] != GUARD_VALUE) return 0;
  return 1;
}
static double dot(const wt_real *a, const wt_real *b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)a[i] * b[i];
  return sum;
}

static int failures = 0, cases = 0;

static void describe(const wt_conv_shape *s, int B) {
  printf("  C=%d H=%d W=%d OC=%d K=%d stride=%d pad=%d B=%d (OH=%d OW=%d)\n", s->C, s->H, s->W, s->OC, s->K,
         s->stride, s->pad, B, s->OH, s->OW);
}

#if WT_SIMD
/* Relative L2 error of got against want; on failure the first mismatching elements. */
static void compare(const char *what, const wt_conv_shape *s, int B, const float *got, const float *want, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; i++) diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), norm += (double)want[i] * want[i];
  const double rel = sqrt(diff) / (sqrt(norm) + 1e-30);
  cases++;
  if (rel <= 1e-5) return;
  failures++;
  printf("MISMATCH %s: relative L2 error %.3g\n", what, rel);
  describe(s, B);
  const double rms = sqrt(norm / (double)n);
  for (size_t i = 0, shown = 0; i < n && shown < 4; i++)
    if (!(fabs((double)got[i] - want[i]) <= 1e-5 * rms)) printf("  at %zu: simd %.9g ref %.9g\n", i, got[i], want[i]), shown++;
}

static void check_guards(const char *what, const wt_conv_shape *s, int B, const float *p, size_t n) {
  if (guards_intact(p, n)) return;
  failures++;
  printf("OVERWRITE %s\n", what);
  describe(s, B);
}

static void check_unchanged(const char *what, const wt_conv_shape *s, int B, const float *p, const float *copy, size_t n) {
  if (memcmp(p, copy, sizeof(float) * n) == 0) return;
  failures++;
  printf("INPUT WRITTEN %s\n", what);
  describe(s, B);
}

/* The three fast passes against their references on one shape. */
static void test_simd(const wt_conv_shape *s, int B, int with_bias) {
  const size_t ni = (size_t)B * s->C * s->H * s->W, nw = (size_t)s->OC * s->C * s->K * s->K;
  const size_t no = (size_t)B * s->OC * s->OH * s->OW, ns = wt_conv_scratch_floats(s, B);
  float *inp = guarded(ni), *w = guarded(nw), *bias = guarded(s->OC), *dout = guarded(no), *scratch = guarded(ns);
  float *o1 = guarded(no), *o2 = guarded(no), *dw1 = guarded(nw), *dw2 = guarded(nw), *db1 = guarded(s->OC), *db2 = guarded(s->OC);
  float *di1 = guarded(ni), *di2 = guarded(ni), *di0 = malloc(sizeof(float) * ni), *copy = malloc(sizeof(float) * (ni + nw + no + 1));
  fill(inp, ni), fill(w, nw), fill(bias, s->OC), fill(dout, no), fill(o1, no), fill(dw1, nw), fill(db1, s->OC), fill(di1, ni);
  memcpy(dw2, dw1, sizeof(float) * nw), memcpy(db2, db1, sizeof(float) * s->OC), memcpy(di2, di1, sizeof(float) * ni);
  memcpy(di0, di1, sizeof(float) * ni);
  memcpy(copy, inp, sizeof(float) * ni), memcpy(copy + ni, w, sizeof(float) * nw), memcpy(copy + ni + nw, dout, sizeof(float) * no);
  const float *b = with_bias ? bias : NULL;

  wt_conv_forward(s, B, o1, inp, w, b, NULL, scratch);
  wt_conv_forward_ref(s, B, o2, inp, w, b);
  compare("forward", s, B, o1, o2, no);
  check_guards("forward out", s, B, o1, no);
  check_guards("forward scratch", s, B, scratch, ns);

  wt_conv_backward_params(s, B, dw1, with_bias ? db1 : NULL, dout, inp, scratch);
  wt_conv_backward_params_ref(s, B, dw2, with_bias ? db2 : NULL, dout, inp);
  compare("backward_params dweight", s, B, dw1, dw2, nw);
  compare("backward_params dbias", s, B, db1, db2, s->OC);
  check_guards("backward_params dweight", s, B, dw1, nw);
  check_guards("backward_params dbias", s, B, db1, s->OC);
  check_guards("backward_params scratch", s, B, scratch, ns);

  wt_conv_backward_input(s, B, di1, dout, w, NULL, scratch);
  wt_conv_backward_input_ref(s, B, di2, dout, w);
  compare("backward_input", s, B, di1, di2, ni);
  check_guards("backward_input dinp", s, B, di1, ni);
  check_guards("backward_input scratch", s, B, scratch, ns);

  /* Prepared once (as the model does per call), the weights give the same floats. */
  for (int pass = 0; pass < 2; pass++) {
    const size_t np = wt_conv_prepared_floats(s, pass), n = pass == WT_CONV_PASS_FORWARD ? no : ni;
    float *prep = guarded(np ? np : 1), *r = guarded(n), *u = np ? prep : NULL; /* u: what the passes take */
    wt_conv_prepare(s, pass, u, w);
    if (pass == WT_CONV_PASS_FORWARD) {
      wt_conv_forward(s, B, r, inp, w, b, u, scratch);
      wt_conv_forward(s, B, r, inp, w, b, u, scratch); /* the same prepared weights again */
    } else {
      memcpy(r, di0, sizeof(float) * n); /* r starts as di1 did */
      wt_conv_backward_input(s, B, r, dout, w, u, scratch);
    }
    if (memcmp(r, pass == WT_CONV_PASS_FORWARD ? o1 : di1, sizeof(float) * n) != 0) {
      failures++;
      printf("PREPARED %s differs from unprepared\n", pass == WT_CONV_PASS_FORWARD ? "forward" : "backward_input");
      describe(s, B);
    }
    check_guards("prepared", s, B, prep, np ? np : 1);
    release(prep), release(r);
  }

  check_unchanged("inp", s, B, inp, copy, ni);
  check_unchanged("weight", s, B, w, copy + ni, nw);
  check_unchanged("dout", s, B, dout, copy + ni + nw, no);
  release(inp), release(w), release(bias), release(dout), release(scratch), release(o1), release(o2);
  release(dw1), release(dw2), release(db1), release(db2), release(di1), release(di2), free(di0), free(copy);
}
#endif

/* The references against each other: forward is linear in x and in w, and the two backward
 * passes are its adjoints. Also dbias = dout summed. */
static void test_adjoint(const wt_conv_shape *s, int B) {
  const size_t ni = (size_t)B * s->C * s->H * s->W, nw = (size_t)s->OC * s->C * s->K * s->K;
  const size_t no = (size_t)B * s->OC * s->OH * s->OW;
  wt_real *x = guarded(ni), *w = guarded(nw), *g = guarded(no), *y = guarded(no);
  wt_real *dx = guarded(ni), *dw = guarded(nw), *db = guarded(s->OC);
  fill(x, ni), fill(w, nw), fill(g, no);
  memset(dx, 0, sizeof(wt_real) * ni), memset(dw, 0, sizeof(wt_real) * nw), memset(db, 0, sizeof(wt_real) * s->OC);
  wt_conv_forward_ref(s, B, y, x, w, NULL);
  wt_conv_backward_input_ref(s, B, dx, g, w);
  wt_conv_backward_params_ref(s, B, dw, db, g, x);
  const double yg = dot(y, g, no), xdx = dot(x, dx, ni), wdw = dot(w, dw, nw);
  double gsum = 0, dbsum = 0;
  for (size_t i = 0; i < no; i++) gsum += g[i];
  for (int o = 0; o < s->OC; o++) dbsum += db[o];
  /* Sums of up to ~1e4 products of magnitude <= 1 rounded in wt_real. */
  const double tol = (sizeof(wt_real) == sizeof(double) ? 1e-11 : 1e-4) * (1 + fabs(yg) + sqrt((double)no * s->C * s->K * s->K));
  cases++;
  if (!(fabs(yg - xdx) <= tol && fabs(yg - wdw) <= tol && fabs(gsum - dbsum) <= tol) || !guards_intact(y, no) ||
      !guards_intact(dx, ni) || !guards_intact(dw, nw) || !guards_intact(db, s->OC)) {
    failures++;
    printf("ADJOINT <y,g>=%.17g <x,dx>=%.17g <w,dw>=%.17g sum g=%.17g sum db=%.17g\n", yg, xdx, wdw, gsum, dbsum);
    describe(s, B);
  }
  release(x), release(w), release(g), release(y), release(dx), release(dw), release(db);
}

static void test_shape(int C, int H, int W, int OC, int K, int stride, int pad, int B) {
  wt_conv_shape s = {C, H, W, OC, K, stride, pad, 0, 0};
  if (!wt_conv_shape_init(&s)) return;
#if WT_SIMD
  test_simd(&s, B, (OC + W) % 3 != 0);
#endif
  test_adjoint(&s, B);
}

int main(void) {
  /* Every combination of K, stride and padding, on random sizes: H and W from below one tile
   * (and below K, where the padding makes up the difference) to two tiles. */
  for (int K = 1; K <= 7; K++)
    for (int stride = 1; stride <= 3; stride++)
      for (int pad = 0; pad <= 3; pad++)
        for (int rep = 0; rep < 3; rep++) {
          const int lo = K - 2 * pad > 1 ? K - 2 * pad : 1;
          test_shape(1 + below(5), lo + below(18), lo + below(18), 1 + below(13), K, stride, pad, 1 + below(3));
        }
  /* Every output-channel tail (tiles of 4 and 8) by every output-width tail (tiles of 8), 3x3. */
  for (int OC = 1; OC <= 17; OC++)
    for (int W = 1; W <= 17; W++) {
      test_shape(2, 3 + W % 4, W, OC, 3, 1, 1, 1);
      test_shape(3, 5, W + 2, OC, 3, 2, 1, 2);
    }
  /* The Winograd path (3x3, stride 1, pad <= 2, >= 16 channels each way): every output-width and
   * -height tail of its 2x2 tiles taken 4 at a time, every channel tail of its GEMM's 4 rows. */
  for (int OC = 16; OC <= 20; OC++)
    for (int W = 1; W <= 19; W++) test_shape(16 + W % 5, 1 + (W * 7 + OC) % 11, W, OC, 3, 1, (W + OC) % 3, 1 + W % 2);
  test_shape(15, 9, 9, 24, 3, 1, 1, 1), test_shape(24, 9, 9, 15, 3, 1, 1, 1); /* one side below: direct */
  test_shape(40, 12, 12, 36, 3, 1, 1, 2);
  /* Winograd's weight gradient sums the tiles of up to 8 images at once: a whole group, then a part. */
  test_shape(20, 7, 7, 24, 3, 1, 1, 11), test_shape(17, 6, 9, 19, 3, 1, 0, 10), test_shape(16, 5, 5, 16, 3, 1, 1, 9);
  /* Small maps (rows of at most 4 columns) run a group of images as one matrix: several whole
   * groups and a part (3x3: 8 images a group; 1x1: 64), strides, and fast's conv6 smaller. */
  test_shape(20, 3, 3, 24, 3, 1, 1, 19), test_shape(7, 1, 1, 9, 3, 1, 1, 70), test_shape(6, 9, 7, 5, 3, 2, 0, 13);
  test_shape(24, 4, 4, 20, 3, 1, 1, 17), test_shape(5, 2, 3, 6, 2, 1, 1, 12);
  /* Input-channel tails (backward input's rows) and tap tails (backward params' tiles of 4). */
  for (int C = 1; C <= 9; C++)
    for (int K = 1; K <= 3; K++) test_shape(C, 6, 11, 5, K, 1, K / 2, 2);
  /* The benchmark's kinds of shape, smaller. */
  test_shape(16, 8, 8, 16, 3, 1, 1, 2);
  test_shape(24, 12, 12, 20, 3, 1, 1, 2);
  test_shape(16, 16, 16, 32, 3, 2, 1, 2);
  test_shape(32, 8, 8, 16, 1, 1, 0, 2);
  test_shape(8, 14, 14, 12, 5, 1, 0, 2);
  printf("conv kernels (%s): %d cases, %d failed\n", WT_SIMD ? "SIMD against references" : "references, adjoint identities", cases, failures);
  return failures ? 1 : 0;
}

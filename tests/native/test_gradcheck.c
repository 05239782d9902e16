/* Every layer's backward against central finite differences, in double precision (this file and
 * the layers are built with -DWT_REAL=double). Inputs are kept away from ReLU kinks and max-pool
 * ties, where the derivative is not defined. Exits non-zero on the first failing layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(wt_real) == sizeof(double), "build this test with -DWT_REAL=double");

#define EPS 1e-6
#define TOL 1e-7 /* relative to max(1, |analytic|) */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) { /* xorshift64*, in (-1, 1) */
  rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
/* Every buffer is owned here and freed at the end, so the test also runs under LeakSanitizer. */
static void *owned[64];
static int owned_count = 0;
static void *take(size_t bytes) {
  void *p = calloc(1, bytes);
  if (!p || owned_count == (int)(sizeof owned / sizeof owned[0])) {
    printf("gradcheck: out of memory or buffer slots\n");
    exit(2);
  }
  return owned[owned_count++] = p;
}
static void free_owned(void) {
  while (owned_count) free(owned[--owned_count]);
}
static double *random_vec(size_t n) {
  double *v = take(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) v[i] = uniform();
  return v;
}
static double *zeros(size_t n) { return take(sizeof(double) * n); }
static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static int failures = 0;

/* Compares analytic[i] with (f(x+eps) - f(x-eps)) / 2eps for every element of x. */
#define CHECK_GRAD(name, x, n, analytic, loss_expr)                                              \
  do {                                                                                          \
    int shown = 0;                                                                              \
    double worst = 0;                                                                           \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                       \
      const double saved = (x)[i_];                                                             \
      (x)[i_] = saved + EPS;                                                                    \
      const double up = (loss_expr);                                                            \
      (x)[i_] = saved - EPS;                                                                    \
      const double down = (loss_expr);                                                          \
      (x)[i_] = saved;                                                                          \
      const double numeric = (up - down) / (2 * EPS);                                           \
      const double err = fabs(numeric - (analytic)[i_]) / fmax(1.0, fabs((analytic)[i_]));      \
      if (err > worst) worst = err;                                                             \
      if (err > TOL && shown++ < 5) {                                                           \
        printf("  MISMATCH %s[%zu]: analytic %.10g numeric %.10g\n", name, i_, (analytic)[i_], numeric); \
      }                                                                                         \
    }                                                                                           \
    printf("%-28s %6zu values, worst relative error %.2e %s\n", name, (size_t)(n), worst,     \
           worst > TOL ? "FAIL" : "ok");                                                        \
    if (worst > TOL) failures++;                                                                \
  } while (0)

/* ---- conv2d ---- */
enum { CB = 2, CC = 3, CH = 7, CW = 9, COC = 5, CK = 3, COH = CH - CK + 1, COW = CW - CK + 1 };
static double *c_inp, *c_w, *c_b, *c_g, *c_out, *c_col;
static double conv_loss(void) {
  conv2d_forward(c_out, c_col, c_inp, c_w, c_b, CB, CC, CH, CW, COC, CK);
  return dot(c_out, c_g, (size_t)CB * COC * COH * COW);
}
static void test_conv2d(void) {
  const size_t ni = (size_t)CB * CC * CH * CW, nw = (size_t)COC * CC * CK * CK, no = (size_t)CB * COC * COH * COW;
  c_inp = random_vec(ni), c_w = random_vec(nw), c_b = random_vec(COC), c_g = random_vec(no);
  c_out = zeros(no), c_col = zeros((size_t)CC * CK * CK * COH * COW);
  double *dinp = zeros(ni), *dw = zeros(nw), *db = zeros(COC), *dcol = zeros((size_t)CC * CK * CK * COH * COW);
  conv2d_backward(dinp, dw, db, c_col, dcol, c_g, c_inp, c_w, CB, CC, CH, CW, COC, CK);
  CHECK_GRAD("conv2d dinput", c_inp, ni, dinp, conv_loss());
  CHECK_GRAD("conv2d dweight", c_w, nw, dw, conv_loss());
  CHECK_GRAD("conv2d dbias", c_b, (size_t)COC, db, conv_loss());
  /* Backward accumulates: a second call doubles every gradient. */
  double *dw2 = take(sizeof(double) * nw);
  memcpy(dw2, dw, sizeof(double) * nw);
  conv2d_backward(NULL, dw2, db, c_col, dcol, c_g, c_inp, c_w, CB, CC, CH, CW, COC, CK);
  for (size_t i = 0; i < nw; i++) {
    if (fabs(dw2[i] - 2 * dw[i]) > 1e-12 * fmax(1, fabs(dw[i]))) {
      printf("  conv2d backward does not accumulate at %zu\n", i);
      failures++;
      break;
    }
  }
}

/* ---- maxpool ---- */
enum { PB = 2, PC = 3, PH = 7, PW = 9 }; /* odd sizes: the last row and column are dropped */
static double *p_inp, *p_g, *p_out;
static uint8_t *p_arg;
static double pool_loss(void) {
  maxpool2_forward(p_out, p_arg, p_inp, PB, PC, PH, PW);
  return dot(p_out, p_g, (size_t)PB * PC * (PH / 2) * (PW / 2));
}
static void test_maxpool(void) {
  const size_t ni = (size_t)PB * PC * PH * PW, no = (size_t)PB * PC * (PH / 2) * (PW / 2);
  /* A shuffled ramp: all values distinct and at least 1/ni apart, so no window ties. */
  p_inp = take(sizeof(double) * ni);
  for (size_t i = 0; i < ni; i++) p_inp[i] = (double)i / ni;
  for (size_t i = ni - 1; i > 0; i--) {
    size_t j = (size_t)((uniform() + 1) / 2 * (i + 1)) % (i + 1);
    double t = p_inp[i];
    p_inp[i] = p_inp[j], p_inp[j] = t;
  }
  p_g = random_vec(no), p_out = zeros(no), p_arg = take(no);
  double *dinp = zeros(ni);
  pool_loss();
  maxpool2_backward(dinp, p_g, p_arg, PB, PC, PH, PW);
  CHECK_GRAD("maxpool2 dinput", p_inp, ni, dinp, pool_loss());
  /* Ties: the first maximum in scan order takes the gradient, as in PyTorch. */
  double tie_in[16] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, tie_out[4], tie_g[4] = {1, 1, 1, 1};
  double tie_d[16] = {0};
  uint8_t tie_arg[4];
  maxpool2_forward(tie_out, tie_arg, tie_in, 1, 1, 4, 4);
  maxpool2_backward(tie_d, tie_g, tie_arg, 1, 1, 4, 4);
  if (tie_d[0] != 1 || tie_d[1] != 0 || tie_d[4] != 0 || tie_d[5] != 0) {
    printf("  maxpool2 tie does not go to the first maximum\n");
    failures++;
  }
}

/* ---- linear ---- */
enum { LB = 3, LI = 7, LO = 5 };
static double *l_inp, *l_w, *l_b, *l_g, *l_out;
static double linear_loss(void) {
  linear_forward(l_out, l_inp, l_w, l_b, LB, LI, LO);
  return dot(l_out, l_g, (size_t)LB * LO);
}
static void test_linear(void) {
  l_inp = random_vec((size_t)LB * LI), l_w = random_vec((size_t)LO * LI), l_b = random_vec(LO);
  l_g = random_vec((size_t)LB * LO), l_out = zeros((size_t)LB * LO);
  double *dinp = zeros((size_t)LB * LI), *dw = zeros((size_t)LO * LI), *db = zeros(LO);
  linear_backward(dinp, dw, db, l_g, l_inp, l_w, LB, LI, LO);
  CHECK_GRAD("linear dinput", l_inp, (size_t)LB * LI, dinp, linear_loss());
  CHECK_GRAD("linear dweight", l_w, (size_t)LO * LI, dw, linear_loss());
  CHECK_GRAD("linear dbias", l_b, (size_t)LO, db, linear_loss());
}

/* ---- relu ---- */
enum { RN = 37 };
static double *r_x, *r_y, *r_g;
static double relu_loss(void) {
  memcpy(r_y, r_x, sizeof(double) * RN);
  wt_relu(r_y, RN);
  return dot(r_y, r_g, RN);
}
static void test_relu(void) {
  r_x = random_vec(RN), r_y = zeros(RN), r_g = random_vec(RN);
  for (int i = 0; i < RN; i++) /* away from the kink at 0 */
    if (fabs(r_x[i]) < 0.05) r_x[i] = r_x[i] < 0 ? -0.5 : 0.5;
  relu_loss();
  double *d = take(sizeof(double) * RN);
  memcpy(d, r_g, sizeof(double) * RN);
  wt_relu_gate(d, r_y, RN);
  CHECK_GRAD("relu dinput", r_x, (size_t)RN, d, relu_loss());
}

/* ---- cross-entropy ---- */
enum { XB = 3, XV = 7 };
static double *x_logits;
static uint8_t x_targets[XB] = {2, 0, 6};
static double xent_loss(void) { return crossentropy_forward(x_logits, x_targets, XB, XV); }
static void test_crossentropy(void) {
  x_logits = random_vec((size_t)XB * XV);
  for (int i = 0; i < XB * XV; i++) x_logits[i] *= 4;
  x_logits[3] = 40; /* a large logit: the stable form must not overflow */
  double *d = zeros((size_t)XB * XV);
  crossentropy_backward(d, x_logits, x_targets, 1.0, XB, XV);
  CHECK_GRAD("crossentropy dlogits", x_logits, (size_t)XB * XV, d, xent_loss());
  double big[2] = {1000, -1000};
  uint8_t t = 1;
  const double l = crossentropy_forward(big, &t, 1, 2);
  if (!(fabs(l - 2000) < 1e-9)) {
    printf("  crossentropy overflows on logits (1000, -1000): %g\n", l);
    failures++;
  }
}

int main(void) {
  test_conv2d();
  test_maxpool();
  test_linear();
  test_relu();
  test_crossentropy();
  free_owned();
  printf(failures ? "gradcheck: %d FAILED\n" : "gradcheck: all passed\n", failures);
  return failures ? 1 : 0;
}

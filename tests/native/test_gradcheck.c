/* Every layer's backward against central finite differences, in double precision (this file and
 * the layers are built with -DWT_REAL=double): the seed's conv, max-pool, linear, ReLU and
 * cross-entropy, and the general conv reference (stride, padding), pooling with any window, global
 * pooling, batch norm (2d and 1d, affine on and off), GELU (both forms) and ReLU's out-of-place
 * backward. Each loss is sum(output * r) for a fixed random r. Inputs are kept away from ReLU
 * kinks and max-pool ties, where the derivative is not defined. Prints the worst relative error of
 * every gradient; exits non-zero if any is above TOL. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The layers' math functions, written in wt_real; their prototypes live in their .c files. */
void maxpool_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H, int W, int k, int s, int p,
                     int OH, int OW);
void maxpool_backward(wt_real *dinp, const wt_real *dout, const uint8_t *argmax, int B, int C, int H, int W, int k, int s,
                      int p, int OH, int OW);
void avgpool_forward(wt_real *out, const wt_real *inp, int B, int C, int H, int W, int k, int s, int p, int OH, int OW);
void avgpool_backward(wt_real *dinp, const wt_real *dout, int B, int C, int H, int W, int k, int s, int p, int OH, int OW);
void globalavg_forward(wt_real *out, const wt_real *inp, size_t planes, size_t plane);
void globalavg_backward(wt_real *dinp, const wt_real *dout, size_t planes, size_t plane);
void globalmax_forward(wt_real *out, int32_t *argmax, const wt_real *inp, size_t planes, size_t plane);
void globalmax_backward(wt_real *dinp, const wt_real *dout, const int32_t *argmax, size_t planes, size_t plane);
void batchnorm_forward_train(wt_real *y, wt_real *xhat, wt_real *invstd, const wt_real *x, const wt_real *gamma,
                             const wt_real *beta, int B, int C, size_t plane, double eps, wt_real *stat_mean,
                             wt_real *stat_var);
void batchnorm_backward(wt_real *dx, wt_real *dgamma, wt_real *dbeta, const wt_real *dy, const wt_real *xhat,
                        const wt_real *invstd, const wt_real *gamma, int B, int C, size_t plane);
void gelu_forward(wt_real *y, const wt_real *x, size_t n, int tanh_approx);
void gelu_backward(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx);
void relu_backward_add(wt_real *dinp, const wt_real *dout, const wt_real *out, size_t n);

_Static_assert(sizeof(wt_real) == sizeof(double), "build this test with -DWT_REAL=double");

#define EPS 1e-6
#define TOL 1e-7 /* relative to max(1, |analytic|) */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) { /* xorshift64*, in (-1, 1) */
  rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
/* Every buffer is owned here and freed at the end, so the test also runs under LeakSanitizer. */
static void *owned[256];
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
static double x_smoothing;
static double xent_loss(void) { return crossentropy_forward(x_logits, x_targets, x_smoothing, XB, XV); }
static void test_crossentropy(void) {
  x_logits = random_vec((size_t)XB * XV);
  for (int i = 0; i < XB * XV; i++) x_logits[i] *= 4;
  x_logits[3] = 40; /* a large logit: the stable form must not overflow */
  double *d = zeros((size_t)XB * XV);
  crossentropy_backward(d, x_logits, x_targets, 0, 1.0, XB, XV);
  CHECK_GRAD("crossentropy dlogits", x_logits, (size_t)XB * XV, d, xent_loss());
  x_smoothing = 0.2; /* label smoothing */
  double *ds = zeros((size_t)XB * XV);
  crossentropy_backward(ds, x_logits, x_targets, x_smoothing, 1.0, XB, XV);
  CHECK_GRAD("crossentropy dlogits, label smoothing 0.2", x_logits, (size_t)XB * XV, ds, xent_loss());
  x_smoothing = 0;
  double big[2] = {1000, -1000};
  uint8_t t = 1;
  const double l = crossentropy_forward(big, &t, 0, 1, 2);
  if (!(fabs(l - 2000) < 1e-9)) {
    printf("  crossentropy overflows on logits (1000, -1000): %g\n", l);
    failures++;
  }
}


/* A shuffled ramp in [lo, lo + 1): all values distinct and at least 1/n apart, so no pooling
 * window has a tie (finite differences move a value by EPS, far less than that). */
static double *distinct_vec(size_t n, double lo) {
  double *v = take(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) v[i] = lo + (double)i / n;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)((uniform() + 1) / 2 * (i + 1)) % (i + 1);
    double t = v[i];
    v[i] = v[j], v[j] = t;
  }
  return v;
}

/* Backward accumulates: calling it again on a buffer holding `once` doubles it. */
static void check_accumulates(const char *name, const double *once, const double *twice, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (fabs(twice[i] - 2 * once[i]) > 1e-12 * fmax(1, fabs(once[i]))) {
      printf("  %s: backward does not accumulate at %zu (%.17g, then %.17g)\n", name, i, once[i], twice[i]);
      failures++;
      return;
    }
  }
}

/* ---- the general convolution reference: stride and padding ---- */
static wt_conv_shape g_shape;
static double *g_inp, *g_w, *g_b, *g_r, *g_out;
static double general_conv_loss(void) {
  wt_conv_forward_ref(&g_shape, 2, g_out, g_inp, g_w, g_b);
  return dot(g_out, g_r, (size_t)2 * g_shape.OC * g_shape.OH * g_shape.OW);
}
static void test_general_conv(int C, int H, int W, int OC, int K, int stride, int pad, int bias) {
  wt_conv_shape *s = &g_shape;
  *s = (wt_conv_shape){.C = C, .H = H, .W = W, .OC = OC, .K = K, .stride = stride, .pad = pad};
  s->OH = (H + 2 * pad - K) / stride + 1, s->OW = (W + 2 * pad - K) / stride + 1;
  const size_t ni = (size_t)2 * C * H * W, nw = (size_t)OC * C * K * K, no = (size_t)2 * OC * s->OH * s->OW;
  g_inp = random_vec(ni), g_w = random_vec(nw), g_b = bias ? random_vec(OC) : NULL, g_r = random_vec(no), g_out = zeros(no);
  double *dinp = zeros(ni), *dw = zeros(nw), *db = bias ? zeros(OC) : NULL;
  wt_conv_backward_params_ref(s, 2, dw, db, g_r, g_inp);
  wt_conv_backward_input_ref(s, 2, dinp, g_r, g_w);
  char name[80];
  snprintf(name, sizeof name, "conv k%d s%d p%d dinput", K, stride, pad);
  CHECK_GRAD(name, g_inp, ni, dinp, general_conv_loss());
  snprintf(name, sizeof name, "conv k%d s%d p%d dweight", K, stride, pad);
  CHECK_GRAD(name, g_w, nw, dw, general_conv_loss());
  if (bias) {
    snprintf(name, sizeof name, "conv k%d s%d p%d dbias", K, stride, pad);
    CHECK_GRAD(name, g_b, (size_t)OC, db, general_conv_loss());
  }
  double *dinp2 = take(sizeof(double) * ni), *dw2 = take(sizeof(double) * nw);
  memcpy(dinp2, dinp, sizeof(double) * ni), memcpy(dw2, dw, sizeof(double) * nw);
  wt_conv_backward_params_ref(s, 2, dw2, NULL, g_r, g_inp);
  wt_conv_backward_input_ref(s, 2, dinp2, g_r, g_w);
  check_accumulates("conv dweight", dw, dw2, nw);
  check_accumulates("conv dinput", dinp, dinp2, ni);
}

/* ---- max-pool and average pool with any window ---- */
enum { QB = 2, QC = 3, QH = 7, QW = 9 };
static int q_k, q_s, q_p, q_oh, q_ow;
static double *q_inp, *q_r, *q_out;
static uint8_t *q_arg;
static double window_max_loss(void) {
  maxpool_forward(q_out, q_arg, q_inp, QB, QC, QH, QW, q_k, q_s, q_p, q_oh, q_ow);
  return dot(q_out, q_r, (size_t)QB * QC * q_oh * q_ow);
}
static double window_avg_loss(void) {
  avgpool_forward(q_out, q_inp, QB, QC, QH, QW, q_k, q_s, q_p, q_oh, q_ow);
  return dot(q_out, q_r, (size_t)QB * QC * q_oh * q_ow);
}
static void test_window_pools(int k, int stride, int pad) {
  q_k = k, q_s = stride, q_p = pad;
  q_oh = (QH + 2 * pad - k) / stride + 1, q_ow = (QW + 2 * pad - k) / stride + 1;
  const size_t ni = (size_t)QB * QC * QH * QW, no = (size_t)QB * QC * q_oh * q_ow;
  q_inp = distinct_vec(ni, -0.5), q_r = random_vec(no), q_out = zeros(no), q_arg = take(no);
  double *dmax = zeros(ni), *davg = zeros(ni);
  window_max_loss();
  maxpool_backward(dmax, q_r, q_arg, QB, QC, QH, QW, k, stride, pad, q_oh, q_ow);
  avgpool_backward(davg, q_r, QB, QC, QH, QW, k, stride, pad, q_oh, q_ow);
  char name[80];
  snprintf(name, sizeof name, "maxpool k%d s%d p%d dinput", k, stride, pad);
  CHECK_GRAD(name, q_inp, ni, dmax, window_max_loss());
  snprintf(name, sizeof name, "avgpool k%d s%d p%d dinput", k, stride, pad);
  CHECK_GRAD(name, q_inp, ni, davg, window_avg_loss());
  /* Padded cells never win a max (PyTorch pads with -inf): all-negative inputs still pool to a
   * negative maximum. */
  double *negative = take(sizeof(double) * ni);
  for (size_t i = 0; i < ni; i++) negative[i] = -1 - fabs(q_inp[i]);
  maxpool_forward(q_out, q_arg, negative, QB, QC, QH, QW, k, stride, pad, q_oh, q_ow);
  for (size_t i = 0; i < no; i++) {
    if (!(q_out[i] < 0)) {
      printf("  maxpool k%d s%d p%d: a padded zero won window %zu\n", k, stride, pad, i);
      failures++;
      break;
    }
  }
  /* Average pooling counts the padded zeros (count_include_pad=True): a constant 1 input gives
   * (cells inside the image) / k^2 in a corner window. */
  double *ones = take(sizeof(double) * ni);
  for (size_t i = 0; i < ni; i++) ones[i] = 1;
  avgpool_forward(q_out, ones, QB, QC, QH, QW, k, stride, pad, q_oh, q_ow);
  const int inside = (k - pad < QH ? k - pad : QH) * (k - pad < QW ? k - pad : QW);
  if (fabs(q_out[0] - (double)inside / (k * k)) > 1e-15) {
    printf("  avgpool k%d s%d p%d: corner window %.17g, expected %d/%d\n", k, stride, pad, q_out[0], inside, k * k);
    failures++;
  }
}

/* ---- global average and max pooling ---- */
enum { GP = 6, GN = 12 }; /* planes (images x channels), values per plane */
static double *gp_inp, *gp_r, *gp_out;
static int32_t gp_arg[GP];
static double global_avg_loss(void) {
  globalavg_forward(gp_out, gp_inp, GP, GN);
  return dot(gp_out, gp_r, GP);
}
static double global_max_loss(void) {
  globalmax_forward(gp_out, gp_arg, gp_inp, GP, GN);
  return dot(gp_out, gp_r, GP);
}
static void test_global_pools(void) {
  gp_inp = distinct_vec((size_t)GP * GN, -0.5), gp_r = random_vec(GP), gp_out = zeros(GP);
  double *davg = zeros((size_t)GP * GN), *dmax = zeros((size_t)GP * GN);
  globalavg_backward(davg, gp_r, GP, GN);
  global_max_loss();
  globalmax_backward(dmax, gp_r, gp_arg, GP, GN);
  CHECK_GRAD("globalavgpool dinput", gp_inp, (size_t)GP * GN, davg, global_avg_loss());
  CHECK_GRAD("globalmaxpool dinput", gp_inp, (size_t)GP * GN, dmax, global_max_loss());
}

/* ---- batch norm (training mode: the block's own statistics) ---- */
static int bn_B, bn_C;
static size_t bn_plane;
static double bn_eps;
static double *bn_x, *bn_gamma, *bn_beta, *bn_r, *bn_y, *bn_xhat, *bn_invstd;
static double batchnorm_loss(void) {
  batchnorm_forward_train(bn_y, bn_xhat, bn_invstd, bn_x, bn_gamma, bn_beta, bn_B, bn_C, bn_plane, bn_eps, NULL, NULL);
  return dot(bn_y, bn_r, (size_t)bn_B * bn_C * bn_plane);
}
static void test_batchnorm(const char *form, int B, int C, size_t plane, int affine, double eps) {
  bn_B = B, bn_C = C, bn_plane = plane, bn_eps = eps;
  const size_t n = (size_t)B * C * plane;
  bn_x = random_vec(n), bn_r = random_vec(n), bn_y = zeros(n), bn_xhat = zeros(n), bn_invstd = zeros((size_t)C);
  for (size_t i = 0; i < n; i++) bn_x[i] = 3 * bn_x[i] + 0.5; /* a mean and a variance away from 0 and 1 */
  bn_gamma = affine ? random_vec((size_t)C) : NULL, bn_beta = affine ? random_vec((size_t)C) : NULL;
  /* Saved state of the forward pass at x, as the op keeps it for backward. */
  double *xhat = zeros(n), *invstd = zeros((size_t)C), *y = zeros(n), *mean = zeros((size_t)C), *var = zeros((size_t)C);
  batchnorm_forward_train(y, xhat, invstd, bn_x, bn_gamma, bn_beta, B, C, plane, eps, mean, var);
  double *dx = zeros(n), *dgamma = affine ? zeros((size_t)C) : NULL, *dbeta = affine ? zeros((size_t)C) : NULL;
  batchnorm_backward(dx, dgamma, dbeta, bn_r, xhat, invstd, bn_gamma, B, C, plane);
  char name[80];
  snprintf(name, sizeof name, "batchnorm %s%s dx", form, affine ? "" : " no-affine");
  CHECK_GRAD(name, bn_x, n, dx, batchnorm_loss());
  if (affine) {
    snprintf(name, sizeof name, "batchnorm %s dgamma", form);
    CHECK_GRAD(name, bn_gamma, (size_t)C, dgamma, batchnorm_loss());
    snprintf(name, sizeof name, "batchnorm %s dbeta", form);
    CHECK_GRAD(name, bn_beta, (size_t)C, dbeta, batchnorm_loss());
  }
  /* The statistics it adds: each channel's mean and unbiased variance. */
  for (int c = 0; c < C; c++) {
    double sum = 0, sq = 0;
    const double count = (double)B * plane;
    for (int b = 0; b < B; b++)
      for (size_t i = 0; i < plane; i++) sum += bn_x[((size_t)b * C + c) * plane + i];
    for (int b = 0; b < B; b++)
      for (size_t i = 0; i < plane; i++) {
        const double d = bn_x[((size_t)b * C + c) * plane + i] - sum / count;
        sq += d * d;
      }
    const double want_var = sq / (count - 1);
    if (fabs(mean[c] - sum / count) > 1e-12 || fabs(var[c] - want_var) > 1e-12 * want_var ||
        fabs(invstd[c] - 1 / sqrt(sq / count + eps)) > 1e-12 * invstd[c]) {
      printf("  batchnorm %s channel %d: mean %.17g var %.17g invstd %.17g, expected %.17g %.17g %.17g\n", form, c, mean[c], var[c],
             invstd[c], sum / count, want_var, 1 / sqrt(sq / count + eps));
      failures++;
    }
  }
  double *dx2 = take(sizeof(double) * n);
  memcpy(dx2, dx, sizeof(double) * n);
  batchnorm_backward(dx2, NULL, NULL, bn_r, xhat, invstd, bn_gamma, B, C, plane);
  check_accumulates("batchnorm dx", dx, dx2, n);
}

/* ---- GELU, exact and tanh ---- */
enum { EN = 41 };
static int e_tanh;
static double *e_x, *e_y, *e_r;
static double gelu_loss(void) {
  gelu_forward(e_y, e_x, EN, e_tanh);
  return dot(e_y, e_r, EN);
}
static void test_gelu(int tanh_approx) {
  e_tanh = tanh_approx;
  e_x = random_vec(EN), e_y = zeros(EN), e_r = random_vec(EN);
  for (int i = 0; i < EN; i++) e_x[i] *= 4; /* (-4, 4): both tails and the bend */
  double *d = zeros(EN);
  gelu_backward(d, e_r, e_x, EN, tanh_approx);
  CHECK_GRAD(tanh_approx ? "gelu tanh dinput" : "gelu exact dinput", e_x, (size_t)EN, d, gelu_loss());
  /* Values: GELU(1) = Phi(1) = 0.8413447460685429, its tanh form 0.8411919906082768. */
  double one = 1, y1;
  gelu_forward(&y1, &one, 1, tanh_approx);
  const double want = tanh_approx ? 0.8411919906082768 : 0.8413447460685429;
  if (fabs(y1 - want) > 1e-15) {
    printf("  gelu%s(1) = %.17g, expected %.17g\n", tanh_approx ? " tanh" : "", y1, want);
    failures++;
  }
}

/* ---- ReLU's out-of-place backward ---- */
static double *ra_x, *ra_y, *ra_r;
static double relu_add_loss(void) {
  for (int i = 0; i < RN; i++) ra_y[i] = ra_x[i] > 0 ? ra_x[i] : 0;
  return dot(ra_y, ra_r, RN);
}
static void test_relu_backward_add(void) {
  ra_x = random_vec(RN), ra_y = zeros(RN), ra_r = random_vec(RN);
  for (int i = 0; i < RN; i++)
    if (fabs(ra_x[i]) < 0.05) ra_x[i] = ra_x[i] < 0 ? -0.5 : 0.5;
  relu_add_loss();
  double *d = random_vec(RN), *base = take(sizeof(double) * RN), *delta = take(sizeof(double) * RN);
  memcpy(base, d, sizeof(double) * RN);
  relu_backward_add(d, ra_r, ra_y, RN); /* adds to what is there */
  for (int i = 0; i < RN; i++) delta[i] = d[i] - base[i];
  CHECK_GRAD("relu (out of place) dinput", ra_x, (size_t)RN, delta, relu_add_loss());
}

int main(void) {
  test_conv2d();
  test_maxpool();
  test_linear();
  test_relu();
  test_crossentropy();
  test_general_conv(3, 7, 8, 4, 3, 2, 1, 1);
  test_general_conv(2, 6, 5, 3, 4, 3, 2, 0);
  test_general_conv(2, 5, 5, 3, 1, 1, 0, 1);
  test_window_pools(3, 2, 1);
  test_window_pools(2, 1, 1);
  test_window_pools(3, 3, 0);
  test_global_pools();
  test_batchnorm("2d", 3, 2, 15, 1, 1e-5);
  test_batchnorm("2d", 2, 3, 6, 0, 1e-3);
  test_batchnorm("1d", 5, 4, 1, 1, 1e-5);
  test_batchnorm("1d", 4, 3, 1, 0, 1e-5);
  test_gelu(0);
  test_gelu(1);
  test_relu_backward_add();
  free_owned();
  printf(failures ? "gradcheck: %d FAILED\n" : "gradcheck: all passed\n", failures);
  return failures ? 1 : 0;
}

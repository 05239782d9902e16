/* The conv layer. Stride-1 unpadded convolutions with a bias (the seed's SimpleCNN) run the seed's
 * kernels, per image: direct SIMD kernels where they pay, else im2col followed by a matrix
 * product. Every other shape runs the general kernels of conv_kernels.c. */
#include <math.h>

#include "internal.h"

/* Few channels on a large image (conv1): the im2col copy would be K*K times the input, and
 * moving it costs more than the matrix product saves, so the SIMD build convolves directly,
 * vectorized over output columns. */
static int use_direct(int C, int H, int W, int OC, int K) { return WT_SIMD && C * H * W > 4 * C * K * K * OC; }
#if WT_SIMD
/* Otherwise 8 or 16 output channels (conv2) are two or four vectors: the SIMD build convolves
 * directly over them, with no im2col either. */
static int use_direct_oc(int OC) { return OC == 16 || OC == 8; }
#endif

void conv2d_forward(wt_real *out, wt_real *col, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int C, int H, int W, int OC, int K) {
  /* out (B, OC, OH, OW); inp (B, C, H, W); weight (OC, C*K*K); bias (OC) */
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  if (use_direct(C, H, W, OC, K)) {
    for (int b = 0; b < B; b++) {
      wt_conv2d_direct(out + (size_t)b * OC * P, inp + (size_t)b * C * H * W, weight, bias, C, H, W, OC, K);
    }
    return;
  }
#if WT_SIMD
  if (use_direct_oc(OC)) {
    wt_conv2d_transpose_weight(col, weight, OC, CKK);
    for (int b = 0; b < B; b++) {
      wt_conv2d_direct_oc(out + (size_t)b * OC * P, inp + (size_t)b * C * H * W, col, bias, C, H, W, OC, K);
    }
    return;
  }
#endif
  for (int b = 0; b < B; b++) {
    wt_real *out_b = out + (size_t)b * OC * P;
    wt_im2col(col, inp + (size_t)b * C * H * W, C, H, W, K);
    for (int o = 0; o < OC; o++)
      for (int p = 0; p < P; p++) out_b[(size_t)o * P + p] = bias[o];
    wt_gemm_nn(OC, P, CKK, weight, CKK, 1, col, P, out_b, P, 1);
  }
}

void conv2d_relu_pool_forward(wt_real *pooled, wt_real *scratch, const wt_real *inp,
                              const wt_real *weight, const wt_real *bias, int B, int C, int H,
                              int W, int OC, int K) {
  const int PP = ((H - K + 1) / 2) * ((W - K + 1) / 2);
#if WT_SIMD
  if (!use_direct(C, H, W, OC, K) && use_direct_oc(OC)) {
    wt_conv2d_transpose_weight(scratch, weight, OC, C * K * K);
    for (int b = 0; b < B; b++) {
      wt_conv2d_relu_pool_oc(pooled + (size_t)b * OC * PP, inp + (size_t)b * C * H * W, scratch, bias, C, H, W, OC, K);
    }
    return;
  }
#endif
  (void)scratch;
  for (int b = 0; b < B; b++) {
    wt_conv2d_relu_pool(pooled + (size_t)b * OC * PP, inp + (size_t)b * C * H * W, weight, bias, C, H, W, OC, K);
  }
}

void conv2d_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, wt_real *col,
                     wt_real *dcol, const wt_real *dout, const wt_real *inp,
                     const wt_real *weight, int B, int C, int H, int W, int OC, int K) {
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  for (int b = 0; b < B; b++) {
    const wt_real *dout_b = dout + (size_t)b * OC * P;
    for (int o = 0; o < OC; o++) {
      wt_real sum = 0;
      for (int p = 0; p < P; p++) sum += dout_b[(size_t)o * P + p];
      dbias[o] += sum;
    }
    if (use_direct(C, H, W, OC, K)) {
      wt_conv2d_dweight_direct(dweight, dout_b, inp + (size_t)b * C * H * W, C, H, W, OC, K);
    } else {
      /* The forward's columns are recomputed rather than kept for the whole batch. */
      wt_im2col(col, inp + (size_t)b * C * H * W, C, H, W, K);
      wt_gemm_nt(OC, CKK, P, dout_b, P, col, P, dweight, CKK, 1);
    }
    if (dinp) {
      /* dcol (CKK, P) = weight^T (CKK, OC) x dout_b (OC, P) */
      wt_gemm_nn(CKK, P, OC, weight, 1, CKK, dout_b, P, dcol, P, 0);
      wt_col2im_add(dinp + (size_t)b * C * H * W, dcol, C, H, W, K);
    }
  }
}

#ifndef WT_REAL_IS_DOUBLE /* the op runs the engine's floats; the double build tests the kernels above */

/* ---- the conv layer: PyTorch's Conv2d (square kernel, stride, zero padding, bias on or off) ---- */

enum { CONV_GENERAL = 0, CONV_SIMPLE = 1 };

/* The seed's kernels (direct, direct over output channels, im2col) serve stride-1 unpadded convs
 * with a bias where they are the fast path, and reproduce the seed's SimpleCNN bit for bit; every
 * other shape takes the general kernels (conv_kernels.c). */
static int simple_path(const wt_conv_shape *s, int bias) {
  if (s->stride != 1 || s->pad != 0 || !bias) return 0;
#if WT_SIMD
  return use_direct(s->C, s->H, s->W, s->OC, s->K) || use_direct_oc(s->OC);
#else
  return 1;
#endif
}

int conv2d_fusable(const wt_layer *l) { return l->fast_path == CONV_SIMPLE; }

static wt_status conv_plan(wt_layer *l, wt_planner *p) {
  const int32_t oc = l->arg[0], k = l->arg[1], stride = l->arg[2], bias = l->arg[4], in_check = l->arg[5];
  int32_t pad = l->arg[3];
  if (l->in.flat) return wt_plan_fail(l, "conv needs an image (channels x height x width), but its input is a flat vector of %d: conv layers go before flatten", (int)l->in.c);
  if (oc < 1 || oc > 65536 || k < 1 || k > 64 || stride < 1 || stride > 64 || pad < -1 || pad > 64 || (bias != 0 && bias != 1)) {
    return wt_plan_fail(l, "conv arguments out of range (out_channels %d, kernel %d, stride %d, padding %d)", (int)oc, (int)k, (int)stride, (int)pad);
  }
  if (in_check && in_check != l->in.c) return wt_plan_fail(l, "Conv2d expects in_channels %d but its input has %d channels", (int)in_check, (int)l->in.c);
  const int32_t init = l->arg[6];
  if (init < WT_CONV_INIT_DEFAULT || init > WT_CONV_INIT_WHITEN) return wt_plan_fail(l, "conv: unknown init %d", (int)init);
  if (init == WT_CONV_INIT_WHITEN) {
    const int32_t dim = l->in.c * k * k;
    if (l->x != 0) return wt_plan_fail(l, "a whitening conv must read the input images (make it the first layer)");
    if (dim > WT_WHITEN_MAX_DIM) return wt_plan_fail(l, "a whitening conv's patches of %d x %d x %d = %d values are more than the %d it may whiten", (int)l->in.c, (int)k, (int)k, (int)dim, WT_WHITEN_MAX_DIM);
    if (oc != 2 * dim) return wt_plan_fail(l, "a whitening conv has 2 x in_channels x kernel^2 = %d out_channels (each eigenvector and its negative), not %d", (int)(2 * dim), (int)oc);
    if (!(l->farg[0] > 0)) return wt_plan_fail(l, "whitening eps %g must be > 0", l->farg[0]);
    if (!(l->farg[1] >= 1 && l->farg[1] <= 1e7f && l->farg[1] == floorf(l->farg[1]))) return wt_plan_fail(l, "whitening images %g must be a whole number from 1 to 10,000,000", l->farg[1]);
  } else if (l->farg[0] != 0 || l->farg[1] != 0) {
    return wt_plan_fail(l, "conv: whitening settings given to a conv that does not whiten");
  }
  if (pad == -1) {
    if (stride != 1) return wt_plan_fail(l, "padding='same' needs stride 1 (as in PyTorch)");
    if (k % 2 == 0) return wt_plan_fail(l, "padding='same' with the even kernel %d pads unevenly, which webtrain does not support: use an odd kernel or a number", (int)k);
    pad = (k - 1) / 2;
  }
  const int32_t H = l->in.h, W = l->in.w;
  if (H + 2 * pad < k || W + 2 * pad < k) {
    return wt_plan_fail(l, "kernel %d is larger than its input %dx%d (with padding %d)", (int)k, (int)H, (int)W, (int)pad);
  }
  wt_conv_shape *s = &l->conv;
  *s = (wt_conv_shape){.C = l->in.c, .H = H, .W = W, .OC = oc, .K = k, .stride = stride, .pad = pad};
  s->OH = (H + 2 * pad - k) / stride + 1;
  s->OW = (W + 2 * pad - k) / stride + 1;
  l->out = (wt_shape){oc, s->OH, s->OW, 0};
  const int32_t fan_in = s->C * k * k;
  const int32_t wshape[4] = {oc, s->C, k, k};
  wt_plan_tensor(p, l, WT_ROLE_WEIGHT, 4, wshape, fan_in, 0, init != WT_CONV_INIT_WHITEN); /* whitening: frozen */
  if (bias) wt_plan_tensor(p, l, WT_ROLE_BIAS, 1, &oc, fan_in, 0, 1);
  l->flops = 2.0 * oc * s->OH * s->OW * fan_in;
  l->fast_path = simple_path(s, bias) ? CONV_SIMPLE : CONV_GENERAL;
  if (l->fast_path == CONV_SIMPLE) {
    const size_t cols = (size_t)fan_in * s->OH * s->OW; /* col and dcol; the transposed weight fits in col */
    l->scratch_floats = 2 * cols + (size_t)oc * fan_in;
  } else {
    l->scratch_floats = wt_conv_scratch_floats(s, p->block);
    for (int k = 0; k < 2; k++) l->prepared_floats[k] = wt_conv_prepared_floats(s, k);
  }
  return WT_OK;
}

/* The weight as pass `pass` takes it (Winograd's transform), derived in the call's first block. */
static const float *prepared(const wt_layer *l, wt_ctx *ctx, int pass, const float *weight) {
  int stale;
  float *u = wt_layer_prepared(l, ctx, pass, &stale);
  if (u && stale) wt_conv_prepare(&l->conv, pass, u, weight);
  return u;
}

static void conv_forward(const wt_layer *l, wt_ctx *ctx) {
  const wt_conv_shape *s = &l->conv;
  const float *weight = wt_layer_param(l, ctx, 0), *bias = l->arg[4] ? wt_layer_param(l, ctx, 1) : NULL;
  float *out = wt_slot(ctx, l->y);
  const float *inp = wt_slot(ctx, l->x);
  if (l->fast_path == CONV_SIMPLE) {
    conv2d_forward(out, ctx->scratch, inp, weight, bias, ctx->B, s->C, s->H, s->W, s->OC, s->K);
  } else {
    wt_conv_forward(s, ctx->B, out, inp, weight, bias, prepared(l, ctx, WT_CONV_PASS_FORWARD, weight), ctx->scratch);
  }
}

static void conv_backward(const wt_layer *l, wt_ctx *ctx) {
  const wt_conv_shape *s = &l->conv;
  const float *weight = wt_layer_param(l, ctx, 0), *dout = wt_dslot(ctx, l->y), *inp = wt_slot(ctx, l->x);
  float *dweight = wt_layer_grad(l, ctx, 0), *dbias = l->arg[4] ? wt_layer_grad(l, ctx, 1) : NULL;
  float *dinp = wt_wants_dslot(ctx, l->x) ? wt_dslot(ctx, l->x) : NULL;
  if (l->fast_path == CONV_SIMPLE) {
    const size_t cols = (size_t)s->C * s->K * s->K * s->OH * s->OW;
    conv2d_backward(dinp, dweight, dbias, ctx->scratch, ctx->scratch + cols, dout, inp, weight, ctx->B, s->C, s->H, s->W,
                    s->OC, s->K);
    return;
  }
  if (l->arg[6] == WT_CONV_INIT_WHITEN) { /* a frozen weight: its bias's gradient only */
    if (dbias) wt_conv_backward_bias(s, ctx->B, dbias, dout);
  } else {
    wt_conv_backward_params(s, ctx->B, dweight, dbias, dout, inp, ctx->scratch);
  }
  if (dinp) wt_conv_backward_input(s, ctx->B, dinp, dout, weight, prepared(l, ctx, WT_CONV_PASS_INPUT, weight), ctx->scratch);
}

void conv2d_relu_pool_eval(const wt_layer *l, const wt_layer *pool, wt_ctx *ctx) {
  const wt_conv_shape *s = &l->conv;
  conv2d_relu_pool_forward(wt_slot(ctx, pool->y), ctx->scratch, wt_slot(ctx, l->x), wt_layer_param(l, ctx, 0),
                           wt_layer_param(l, ctx, 1), ctx->B, s->C, s->H, s->W, s->OC, s->K);
}

const wt_op wt_op_conv = {"conv", conv_plan, conv_forward, conv_backward, 1};

#endif /* WT_REAL_IS_DOUBLE */

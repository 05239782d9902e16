/* Fully connected layer, PyTorch's nn.Linear: weight (O, I), bias (O). */
#include "internal.h"

void linear_forward(wt_real *out, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int I, int O) {
  /* out (B, O); inp (B, I) */
  for (int b = 0; b < B; b++)
    for (int o = 0; o < O; o++) out[(size_t)b * O + o] = bias[o];
  wt_gemm_nt(B, O, I, inp, I, weight, I, out, O, 1);
}

void linear_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, const wt_real *dout,
                     const wt_real *inp, const wt_real *weight, int B, int I, int O) {
  for (int b = 0; b < B; b++)
    for (int o = 0; o < O; o++) dbias[o] += dout[(size_t)b * O + o];
  /* dweight (O, I) += dout^T (O, B) x inp (B, I) */
  wt_gemm_nn(O, I, B, dout, 1, O, inp, I, dweight, I, 1);
  /* dinp (B, I) += dout (B, O) x weight (O, I) */
  if (dinp) wt_gemm_nn(B, I, O, dout, O, 1, weight, I, dinp, I, 1);
}

#ifndef WT_REAL_IS_DOUBLE

/* ---- the linear layer: PyTorch's Linear on a flat input ---- */

static wt_status linear_plan(wt_layer *l, wt_planner *p) {
  const int32_t out = l->arg[0], bias = l->arg[4], in_check = l->arg[5];
  if (!l->in.flat) {
    return wt_plan_fail(l, "linear needs a flat input: add flatten before it (its input is %dx%dx%d)", (int)l->in.c, (int)l->in.h,
                        (int)l->in.w);
  }
  if (out < 1 || out > 65536 || (bias != 0 && bias != 1)) return wt_plan_fail(l, "linear: out_features %d is out of range 1..65536", (int)out);
  if (in_check && in_check != l->in.c) {
    return wt_plan_fail(l, "Linear expects in_features %d but its input has %d", (int)in_check, (int)l->in.c);
  }
  l->out = (wt_shape){out, 1, 1, 1};
  const int32_t shape[2] = {out, l->in.c};
  wt_plan_tensor(p, l, WT_ROLE_WEIGHT, 2, shape, l->in.c, 0, 1);
  if (bias) wt_plan_tensor(p, l, WT_ROLE_BIAS, 1, &out, l->in.c, 0, 1);
  l->flops = 2.0 * out * l->in.c;
  return WT_OK;
}

static void linear_op_forward(const wt_layer *l, wt_ctx *ctx) {
  const int B = ctx->B, I = l->in.c, O = l->out.c;
  float *out = wt_slot(ctx, l->y);
  const float *bias = l->arg[4] ? wt_layer_param(l, ctx, 1) : NULL;
  if (bias) {
    linear_forward(out, wt_slot(ctx, l->x), wt_layer_param(l, ctx, 0), bias, B, I, O);
  } else {
    wt_gemm_nt(B, O, I, wt_slot(ctx, l->x), I, wt_layer_param(l, ctx, 0), I, out, O, 0);
  }
}

static void linear_op_backward(const wt_layer *l, wt_ctx *ctx) {
  const int B = ctx->B, I = l->in.c, O = l->out.c;
  const float *dout = wt_dslot(ctx, l->y), *inp = wt_slot(ctx, l->x), *weight = wt_layer_param(l, ctx, 0);
  float *dinp = wt_wants_dslot(ctx, l->x) ? wt_dslot(ctx, l->x) : NULL;
  float *dweight = wt_layer_grad(l, ctx, 0);
  if (l->arg[4]) {
    linear_backward(dinp, dweight, wt_layer_grad(l, ctx, 1), dout, inp, weight, B, I, O);
  } else {
    wt_gemm_nn(O, I, B, dout, 1, O, inp, I, dweight, I, 1);
    if (dinp) wt_gemm_nn(B, I, O, dout, O, 1, weight, I, dinp, I, 1);
  }
}

const wt_op wt_op_linear = {"linear", linear_plan, linear_op_forward, linear_op_backward, 1};

#endif /* WT_REAL_IS_DOUBLE */

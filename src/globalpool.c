/* Global average and max pooling (PyTorch's AdaptiveAvgPool2d(1), AdaptiveMaxPool2d(1)): each
 * channel's plane to one value, C x 1 x 1. */
#include <string.h>

#include "internal.h"

void globalavg_forward(wt_real *out, const wt_real *inp, size_t planes, size_t plane) {
  for (size_t c = 0; c < planes; c++) {
    wt_real sum = 0;
    for (size_t i = 0; i < plane; i++) sum += inp[c * plane + i];
    out[c] = sum / (wt_real)plane;
  }
}

void globalavg_backward(wt_real *dinp, const wt_real *dout, size_t planes, size_t plane) {
  for (size_t c = 0; c < planes; c++) {
    const wt_real g = dout[c] / (wt_real)plane;
    for (size_t i = 0; i < plane; i++) dinp[c * plane + i] += g;
  }
}

/* argmax: the first maximum's index in its plane. */
void globalmax_forward(wt_real *out, int32_t *argmax, const wt_real *inp, size_t planes, size_t plane) {
  for (size_t c = 0; c < planes; c++) {
    const wt_real *in = inp + c * plane;
    size_t at = 0;
    for (size_t i = 1; i < plane; i++)
      if (in[i] > in[at] || in[i] != in[i]) at = i;
    out[c] = in[at];
    argmax[c] = (int32_t)at;
  }
}

void globalmax_backward(wt_real *dinp, const wt_real *dout, const int32_t *argmax, size_t planes, size_t plane) {
  for (size_t c = 0; c < planes; c++) dinp[c * plane + argmax[c]] += dout[c];
}

#ifndef WT_REAL_IS_DOUBLE

static wt_status global_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  if (l->in.flat) return wt_plan_fail(l, "global pooling needs an image (channels x height x width), but its input is a flat vector");
  l->out = (wt_shape){l->in.c, 1, 1, 0};
  l->flops = (double)wt_shape_size(l->in);
  l->aux8_per_image = l->kind == WT_OP_GLOBALMAX ? sizeof(int32_t) * (size_t)l->in.c : 0;
  return WT_OK;
}

static size_t plane_of(const wt_layer *l) { return (size_t)l->in.h * l->in.w; }

static void globalavg_op_forward(const wt_layer *l, wt_ctx *ctx) {
  globalavg_forward(wt_slot(ctx, l->y), wt_slot(ctx, l->x), (size_t)ctx->B * l->in.c, plane_of(l));
}
static void globalavg_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (wt_wants_dslot(ctx, l->x)) globalavg_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), (size_t)ctx->B * l->in.c, plane_of(l));
}
static void globalmax_op_forward(const wt_layer *l, wt_ctx *ctx) {
  globalmax_forward(wt_slot(ctx, l->y), (int32_t *)(void *)l->aux8, wt_slot(ctx, l->x), (size_t)ctx->B * l->in.c, plane_of(l));
}
static void globalmax_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (wt_wants_dslot(ctx, l->x)) {
    globalmax_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), (const int32_t *)(const void *)l->aux8, (size_t)ctx->B * l->in.c, plane_of(l));
  }
}

const wt_op wt_op_globalavg = {"globalavgpool", global_plan, globalavg_op_forward, globalavg_op_backward, 1};
const wt_op wt_op_globalmax = {"globalmaxpool", global_plan, globalmax_op_forward, globalmax_op_backward, 1};

#endif

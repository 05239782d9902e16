/* The small layers: flatten (a view: the same values), scale (multiply by a constant) and the
 * residual add that closes a block (its two inputs: the body's output and the shortcut's, or the
 * block's input). */
#include "internal.h"

#ifndef WT_REAL_IS_DOUBLE

static wt_status flatten_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  l->out = (wt_shape){(int32_t)wt_shape_size(l->in), 1, 1, 1};
  return WT_OK;
}
static void nothing(const wt_layer *l, wt_ctx *ctx) { (void)l, (void)ctx; }
const wt_op wt_op_flatten = {"flatten", flatten_plan, nothing, nothing, 1};

static wt_status scale_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  l->flops = (double)wt_shape_size(l->in);
  return WT_OK;
}
static void scale_forward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = wt_shape_size(l->in) * ctx->B;
  const float *x = wt_slot(ctx, l->x), f = l->farg[0];
  float *y = wt_slot(ctx, l->y);
  for (size_t i = 0; i < n; i++) y[i] = x[i] * f;
}
static void scale_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  const size_t n = wt_shape_size(l->in) * ctx->B;
  const float *dy = wt_dslot(ctx, l->y), f = l->farg[0];
  float *dx = wt_dslot(ctx, l->x);
  for (size_t i = 0; i < n; i++) dx[i] += dy[i] * f;
}
const wt_op wt_op_scale = {"scale", scale_plan, scale_forward, scale_backward, 1};

static wt_status add_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  l->flops = (double)wt_shape_size(l->in);
  return WT_OK;
}
static void add_forward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = wt_shape_size(l->in) * ctx->B;
  const float *a = wt_slot(ctx, l->x), *b = wt_slot(ctx, l->x2);
  float *y = wt_slot(ctx, l->y);
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
static void add_backward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = wt_shape_size(l->in) * ctx->B;
  const float *dy = wt_dslot(ctx, l->y);
  if (wt_wants_dslot(ctx, l->x)) wt_add(wt_dslot(ctx, l->x), dy, n);
  if (wt_wants_dslot(ctx, l->x2)) wt_add(wt_dslot(ctx, l->x2), dy, n);
}
const wt_op wt_op_add = {"add", add_plan, add_forward, add_backward, 1};

#endif

/* ReLU. The planner lets it overwrite its input where nothing else reads that (after a conv or a
 * linear, say): its backward only needs its own output. */
#include <string.h>

#include "internal.h"

/* Out of place: dinp += out > 0 ? dout : 0. */
void relu_backward_add(wt_real *dinp, const wt_real *dout, const wt_real *out, size_t n) {
  for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0 ? dout[i] : 0;
}

#ifndef WT_REAL_IS_DOUBLE

static wt_status relu_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  l->flops = (double)wt_shape_size(l->in);
  return WT_OK;
}

static void relu_forward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = (size_t)ctx->B * wt_shape_size(l->out);
  float *y = wt_slot(ctx, l->y);
  if (!l->in_place) memcpy(y, wt_slot(ctx, l->x), sizeof(float) * n);
  wt_relu(y, n);
}

static void relu_backward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = (size_t)ctx->B * wt_shape_size(l->out);
  if (l->in_place) {
    wt_relu_gate(wt_dslot(ctx, l->y), wt_slot(ctx, l->y), n); /* dinp is dout: gate it where it is */
  } else if (wt_wants_dslot(ctx, l->x)) {
    relu_backward_add(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), wt_slot(ctx, l->y), n);
  }
}

const wt_op wt_op_relu = {"relu", relu_plan, relu_forward, relu_backward, 0};

#endif

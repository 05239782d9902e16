/* GELU, as PyTorch's nn.GELU: exact x * Phi(x) with erf, or its tanh approximation. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define SQRT1_2 0.70710678118654752440
#define SQRT2_PI 0.79788456080286535588 /* sqrt(2 / pi) */
#define INV_SQRT_2PI 0.39894228040143267794

void gelu_forward(wt_real *y, const wt_real *x, size_t n, int tanh_approx) {
  for (size_t i = 0; i < n; i++) {
    const double v = x[i];
    if (tanh_approx) y[i] = (wt_real)(0.5 * v * (1.0 + tanh(SQRT2_PI * (v + 0.044715 * v * v * v))));
    else y[i] = (wt_real)(0.5 * v * (1.0 + erf(v * SQRT1_2)));
  }
}

/* dinp += dout * GELU'(x). */
void gelu_backward(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx) {
  for (size_t i = 0; i < n; i++) {
    const double v = x[i];
    double grad;
    if (tanh_approx) {
      const double inner = SQRT2_PI * (v + 0.044715 * v * v * v), t = tanh(inner);
      grad = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT2_PI * (1.0 + 3.0 * 0.044715 * v * v);
    } else {
      grad = 0.5 * (1.0 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
    }
    dinp[i] += (wt_real)(dout[i] * grad);
  }
}

#ifndef WT_REAL_IS_DOUBLE

static wt_status gelu_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  if (l->arg[0] != 0 && l->arg[0] != 1) return wt_plan_fail(l, "gelu: approximate must be 'none' or 'tanh'");
  l->flops = 8.0 * wt_shape_size(l->in);
  return WT_OK;
}

static void gelu_op_forward(const wt_layer *l, wt_ctx *ctx) {
  gelu_forward(wt_slot(ctx, l->y), wt_slot(ctx, l->x), (size_t)ctx->B * wt_shape_size(l->out), l->arg[0]);
}

static void gelu_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  gelu_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), wt_slot(ctx, l->x), (size_t)ctx->B * wt_shape_size(l->out), l->arg[0]);
}

const wt_op wt_op_gelu = {"gelu", gelu_plan, gelu_op_forward, gelu_op_backward, 1};

#endif

/* Average pooling, as PyTorch's AvgPool2d with count_include_pad=True: every window divides by
 * kernel * kernel, padded zeros included. */
#include "internal.h"

void avgpool_forward(wt_real *out, const wt_real *inp, int B, int C, int H, int W, int k, int s, int p, int OH, int OW) {
  const wt_real scale = (wt_real)1 / (wt_real)(k * k);
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    const wt_real *in = inp + plane * H * W;
    wt_real *o = out + plane * OH * OW;
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        wt_real sum = 0;
        for (int di = 0; di < k; di++) {
          const int r = i * s - p + di;
          if (r < 0 || r >= H) continue;
          for (int dj = 0; dj < k; dj++) {
            const int c = j * s - p + dj;
            if (c >= 0 && c < W) sum += in[r * W + c];
          }
        }
        o[i * OW + j] = sum * scale;
      }
  }
}

void avgpool_backward(wt_real *dinp, const wt_real *dout, int B, int C, int H, int W, int k, int s, int p, int OH, int OW) {
  const wt_real scale = (wt_real)1 / (wt_real)(k * k);
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    wt_real *din = dinp + plane * H * W;
    const wt_real *d = dout + plane * OH * OW;
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        const wt_real g = d[i * OW + j] * scale;
        for (int di = 0; di < k; di++) {
          const int r = i * s - p + di;
          if (r < 0 || r >= H) continue;
          for (int dj = 0; dj < k; dj++) {
            const int c = j * s - p + dj;
            if (c >= 0 && c < W) din[r * W + c] += g;
          }
        }
      }
  }
}

#ifndef WT_REAL_IS_DOUBLE

wt_status pool_plan_window(wt_layer *l, const char *what, int max_kernel);

static wt_status avgpool_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  return pool_plan_window(l, "avgpool", 64);
}

static void avgpool_op_forward(const wt_layer *l, wt_ctx *ctx) {
  const wt_shape i = l->in, o = l->out;
  avgpool_forward(wt_slot(ctx, l->y), wt_slot(ctx, l->x), ctx->B, i.c, i.h, i.w, l->arg[0], l->arg[1], l->arg[2], o.h, o.w);
}

static void avgpool_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  const wt_shape i = l->in, o = l->out;
  avgpool_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), ctx->B, i.c, i.h, i.w, l->arg[0], l->arg[1], l->arg[2], o.h, o.w);
}

const wt_op wt_op_avgpool = {"avgpool", avgpool_plan, avgpool_op_forward, avgpool_op_backward, 1};

#endif

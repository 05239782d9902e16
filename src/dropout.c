/* Dropout, as PyTorch's nn.Dropout: in training each value is zeroed with probability p and the
 * rest scaled by 1 / (1 - p); in evaluation it passes unchanged. The mask is seeded by the run's
 * seed, the step, the image's place in its batch and the layer, so it is the same whichever
 * worker computes the image, and a resumed run draws the same masks. */
#include <string.h>

#include "internal.h"

#define WT_STREAM_DROPOUT 0x44524F50ULL

#ifndef WT_REAL_IS_DOUBLE

static wt_status dropout_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  if (!(l->farg[0] >= 0 && l->farg[0] < 1)) return wt_plan_fail(l, "dropout: p %g must be in [0, 1)", l->farg[0]);
  l->aux8_per_image = wt_shape_size(l->in); /* the mask */
  l->flops = (double)wt_shape_size(l->in);
  return WT_OK;
}

static void dropout_forward(const wt_layer *l, wt_ctx *ctx) {
  const size_t n = wt_shape_size(l->in);
  const float *x = wt_slot(ctx, l->x);
  float *y = wt_slot(ctx, l->y);
  if (!ctx->train || l->farg[0] == 0) {
    memcpy(y, x, sizeof(float) * n * ctx->B);
    memset(l->aux8, 1, n * ctx->B);
    return;
  }
  const uint32_t keep_below = (uint32_t)((1.0 - l->farg[0]) * 16777216.0); /* of 2^24 */
  const float scale = 1.0f / (1.0f - l->farg[0]);
  for (int b = 0; b < ctx->B; b++) {
    wt_rng rng;
    const uint64_t image = (uint64_t)(uint32_t)(ctx->first_image + b);
    wt_rng_seed(&rng, ((uint64_t)(uint32_t)ctx->step << 32) ^ (image << 12) ^ (uint64_t)l->node,
                WT_STREAM_DROPOUT ^ ((uint64_t)ctx->model_seed << 20));
    uint8_t *mask = l->aux8 + (size_t)b * n;
    for (size_t i = 0; i < n; i++) {
      mask[i] = (wt_rng_u32(&rng) >> 8) < keep_below;
      y[(size_t)b * n + i] = mask[i] ? x[(size_t)b * n + i] * scale : 0.0f;
    }
  }
}

static void dropout_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  const size_t n = wt_shape_size(l->in) * ctx->B;
  const float scale = ctx->train && l->farg[0] > 0 ? 1.0f / (1.0f - l->farg[0]) : 1.0f;
  const float *dy = wt_dslot(ctx, l->y);
  float *dx = wt_dslot(ctx, l->x);
  for (size_t i = 0; i < n; i++) dx[i] += l->aux8[i] ? dy[i] * scale : 0.0f;
}

const wt_op wt_op_dropout = {"dropout", dropout_plan, dropout_forward, dropout_backward, 1};

#endif

/* Batch norm, as PyTorch's BatchNorm2d (per channel over images and pixels) and BatchNorm1d (per
 * feature over images). In training the statistics are those of the block being computed: a
 * ghost batch of the description's ghost_batch images, never split between workers, so the
 * results do not depend on how a batch is shared out. Each block adds its mean and unbiased
 * variance to the gradient vector's statistics; the update folds their average over the batch's
 * blocks into the running statistics with the momentum, as PyTorch does once per batch (with one
 * block per batch this is PyTorch exactly). Evaluation uses the running statistics. */
#include <math.h>

#include "internal.h"

/* x, y, xhat (B, C, plane). invstd (C). gamma, beta NULL without affine. stat_mean, stat_var
 * (C, may be NULL): += the mean and the unbiased variance. */
void batchnorm_forward_train(wt_real *y, wt_real *xhat, wt_real *invstd, const wt_real *x, const wt_real *gamma,
                             const wt_real *beta, int B, int C, size_t plane, double eps, wt_real *stat_mean,
                             wt_real *stat_var) {
  const double n = (double)B * plane;
  for (int c = 0; c < C; c++) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
      const wt_real *xc = x + ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) sum += xc[i];
    }
    const double mean = sum / n;
    double sq = 0;
    for (int b = 0; b < B; b++) {
      const wt_real *xc = x + ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) sq += (xc[i] - mean) * (xc[i] - mean);
    }
    const double var = sq / n;
    const wt_real inv = (wt_real)(1.0 / sqrt(var + eps));
    invstd[c] = inv;
    const wt_real g = gamma ? gamma[c] : 1, h = beta ? beta[c] : 0, m = (wt_real)mean;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) {
        const wt_real v = (x[at + i] - m) * inv;
        xhat[at + i] = v;
        y[at + i] = v * g + h;
      }
    }
    if (stat_mean) stat_mean[c] += (wt_real)mean;
    if (stat_var) stat_var[c] += (wt_real)(n > 1 ? sq / (n - 1) : var);
  }
}

/* xhat and invstd (may be NULL) keep what the eval-mode backward needs. */
void batchnorm_forward_eval(wt_real *y, wt_real *xhat, wt_real *invstd, const wt_real *x, const wt_real *gamma,
                            const wt_real *beta, const wt_real *running_mean, const wt_real *running_var, int B, int C,
                            size_t plane, double eps) {
  for (int c = 0; c < C; c++) {
    const wt_real inv = (wt_real)(1.0 / sqrt((double)running_var[c] + eps));
    const wt_real g = gamma ? gamma[c] : 1, h = beta ? beta[c] : 0, m = running_mean[c];
    if (invstd) invstd[c] = inv;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) {
        const wt_real v = (x[at + i] - m) * inv;
        if (xhat) xhat[at + i] = v;
        y[at + i] = v * g + h;
      }
    }
  }
}

/* Eval mode: the statistics are constants, so dx = dy * gamma * invstd. */
void batchnorm_backward_eval(wt_real *dx, wt_real *dgamma, wt_real *dbeta, const wt_real *dy, const wt_real *xhat,
                             const wt_real *invstd, const wt_real *gamma, int B, int C, size_t plane) {
  for (int c = 0; c < C; c++) {
    double sum_dy = 0, sum_dy_xhat = 0;
    const wt_real k = (gamma ? gamma[c] : 1) * invstd[c];
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) {
        sum_dy += dy[at + i];
        sum_dy_xhat += (double)dy[at + i] * xhat[at + i];
        if (dx) dx[at + i] += dy[at + i] * k;
      }
    }
    if (dgamma) dgamma[c] += (wt_real)sum_dy_xhat;
    if (dbeta) dbeta[c] += (wt_real)sum_dy;
  }
}

/* dgamma, dbeta (C, NULL without affine) +=; dx (+=, may be NULL) = gamma * invstd / n *
 * (n * dy - sum(dy) - xhat * sum(dy * xhat)). */
void batchnorm_backward(wt_real *dx, wt_real *dgamma, wt_real *dbeta, const wt_real *dy, const wt_real *xhat,
                        const wt_real *invstd, const wt_real *gamma, int B, int C, size_t plane) {
  const double n = (double)B * plane;
  for (int c = 0; c < C; c++) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) {
        sum_dy += dy[at + i];
        sum_dy_xhat += (double)dy[at + i] * xhat[at + i];
      }
    }
    if (dgamma) dgamma[c] += (wt_real)sum_dy_xhat;
    if (dbeta) dbeta[c] += (wt_real)sum_dy;
    if (!dx) continue;
    const double k = (gamma ? gamma[c] : 1) * (double)invstd[c] / n;
    const double mean_dy = sum_dy, mean_dy_xhat = sum_dy_xhat;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * plane;
      for (size_t i = 0; i < plane; i++) dx[at + i] += (wt_real)(k * (n * dy[at + i] - mean_dy - xhat[at + i] * mean_dy_xhat));
    }
  }
}

#ifndef WT_REAL_IS_DOUBLE

static size_t plane_of(const wt_layer *l) { return (size_t)l->in.h * l->in.w; }

static wt_status batchnorm_plan(wt_layer *l, wt_planner *p) {
  const int32_t dims = l->arg[0], affine = l->arg[4], features = l->arg[5];
  const float eps = l->farg[0], momentum = l->farg[1];
  const int32_t C = l->in.c;
  if (dims == 2 && l->in.flat) return wt_plan_fail(l, "BatchNorm2d needs an image input, but its input is a flat vector of %d: use BatchNorm1d", (int)C);
  if (dims == 1 && !l->in.flat) return wt_plan_fail(l, "BatchNorm1d needs a flat input, but its input is %dx%dx%d: use BatchNorm2d", (int)C, (int)l->in.h, (int)l->in.w);
  if (dims < 0 || dims > 2 || (affine != 0 && affine != 1)) return wt_plan_fail(l, "batchnorm: bad dims %d or affine %d", (int)dims, (int)affine);
  if (features && features != C) return wt_plan_fail(l, "BatchNorm expects num_features %d but its input has %d %s", (int)features, (int)C, l->in.flat ? "features" : "channels");
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) return wt_plan_fail(l, "batchnorm: eps %g must be > 0 and momentum %g in [0, 1]", eps, momentum);
  const int32_t frozen_weight = l->arg[1];
  if (frozen_weight != 0 && frozen_weight != 1) return wt_plan_fail(l, "batchnorm: bad frozen-weight flag %d", (int)frozen_weight);
  if (frozen_weight && !affine) return wt_plan_fail(l, "batchnorm: weight=frozen needs affine=True (without affine there is no weight)");
  if (affine) {
    wt_plan_tensor(p, l, WT_ROLE_WEIGHT, 1, &C, 0, 1.0f, !frozen_weight);
    wt_plan_tensor(p, l, WT_ROLE_BIAS, 1, &C, 0, 0.0f, 1);
  }
  l->running_offset = p->running;
  wt_plan_tensor(p, l, WT_ROLE_RUNNING_MEAN, 1, &C, 0, 0.0f, 0);
  wt_plan_tensor(p, l, WT_ROLE_RUNNING_VAR, 1, &C, 0, 1.0f, 0);
  l->stat_offset = p->stats;
  p->stats += 2 * (size_t)C;
  l->aux_per_image = wt_shape_size(l->in); /* xhat */
  l->aux_extra = (size_t)C;                /* 1/std */
  l->flops = 4.0 * wt_shape_size(l->in);
  return WT_OK;
}

static void batchnorm_op_forward(const wt_layer *l, wt_ctx *ctx) {
  const int C = l->in.c;
  const float *gamma = l->arg[4] ? wt_layer_param(l, ctx, 0) : NULL, *beta = l->arg[4] ? wt_layer_param(l, ctx, 1) : NULL;
  if (ctx->train) {
    float *stats = wt_layer_stats(l, ctx);
    float *invstd = l->aux, *xhat = l->aux + C; /* aux: 1/std (C), then xhat */
    batchnorm_forward_train(wt_slot(ctx, l->y), xhat, invstd, wt_slot(ctx, l->x), gamma, beta, ctx->B, C, plane_of(l),
                            l->farg[0], stats, stats ? stats + C : NULL);
  } else {
    const float *running = wt_layer_running(l, ctx);
    const int keep = ctx->grads != NULL; /* a backward follows (per-layer tests) */
    batchnorm_forward_eval(wt_slot(ctx, l->y), keep ? l->aux + C : NULL, keep ? l->aux : NULL, wt_slot(ctx, l->x), gamma, beta,
                           running, running + C, ctx->B, C, plane_of(l), l->farg[0]);
  }
}

static void batchnorm_op_backward(const wt_layer *l, wt_ctx *ctx) {
  const int C = l->in.c;
  const float *invstd = l->aux, *xhat = l->aux + C; /* aux: 1/std (C), then xhat */
  float *dgamma = l->arg[4] ? wt_layer_grad(l, ctx, 0) : NULL, *dbeta = l->arg[4] ? wt_layer_grad(l, ctx, 1) : NULL;
  (ctx->train ? batchnorm_backward : batchnorm_backward_eval)(wt_wants_dslot(ctx, l->x) ? wt_dslot(ctx, l->x) : NULL, dgamma,
                                                             dbeta, wt_dslot(ctx, l->y), xhat, invstd,
                                                             l->arg[4] ? wt_layer_param(l, ctx, 0) : NULL, ctx->B, C, plane_of(l));
}

void batchnorm_update_running(const wt_layer *l, float *running, const float *stats, int32_t groups) {
  const int C = l->in.c;
  const float momentum = l->farg[1], keep = 1.0f - momentum;
  for (int c = 0; c < C; c++) {
    running[c] = keep * running[c] + momentum * (stats[c] / (float)groups);
    running[C + c] = keep * running[C + c] + momentum * (stats[C + c] / (float)groups);
  }
}

const wt_op wt_op_batchnorm = {"batchnorm", batchnorm_plan, batchnorm_op_forward, batchnorm_op_backward, 1};

#endif

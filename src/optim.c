/* The optimizers, as torch.optim (1.13) computes them, each one flat loop over a range of the
 * parameter buffer: Adam (bias corrections in double, eps added after the square root), Adam
 * with coupled weight decay, AdamW, and SGD with momentum, dampening, Nesterov and coupled or
 * decoupled weight decay; and the weights' exponential moving average. model.c calls them per
 * tensor with its parameter group's learning rate and weight decay. */
#include <math.h>
#include <string.h>

#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

typedef struct adam_scalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
} adam_scalars;

/* PyTorch computes these as Python floats and hands them to float32 kernels. */
static adam_scalars adam_scalars_for(const wt_adam_config *config, int32_t t) {
  const double bc1 = 1.0 - pow(config->beta1, t);
  const double bc2 = 1.0 - pow(config->beta2, t);
  adam_scalars s = {
      .beta1 = (float)config->beta1,
      .one_minus_beta1 = (float)(1.0 - config->beta1),
      .beta2 = (float)config->beta2,
      .one_minus_beta2 = (float)(1.0 - config->beta2),
      .step_size = (float)(config->lr / bc1),
      .bc2_sqrt = (float)sqrt(bc2),
      .eps = (float)config->eps,
  };
  return s;
}

static void adam_tail(float *params, const float *grads, float *m, float *v, size_t from,
                      size_t n, const adam_scalars *s) {
  for (size_t i = from; i < n; i++) {
    const float g = grads[i];
    m[i] = m[i] * s->beta1 + g * s->one_minus_beta1;
    v[i] = v[i] * s->beta2 + g * g * s->one_minus_beta2;
    const float denom = sqrtf(v[i]) / s->bc2_sqrt + s->eps;
    params[i] -= s->step_size * (m[i] / denom);
  }
}

void adam_update_ref(float *params, const float *grads, float *m, float *v, size_t n,
                     const wt_adam_config *config, int32_t t) {
  const adam_scalars s = adam_scalars_for(config, t);
  adam_tail(params, grads, m, v, 0, n, &s);
}

void adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                 const wt_adam_config *config, int32_t t) {
  const adam_scalars s = adam_scalars_for(config, t);
  size_t i = 0;
#if WT_SIMD
  const v128_t vbeta1 = wasm_f32x4_splat(s.beta1), vomb1 = wasm_f32x4_splat(s.one_minus_beta1);
  const v128_t vbeta2 = wasm_f32x4_splat(s.beta2), vomb2 = wasm_f32x4_splat(s.one_minus_beta2);
  const v128_t vstep = wasm_f32x4_splat(s.step_size), vbc2 = wasm_f32x4_splat(s.bc2_sqrt);
  const v128_t veps = wasm_f32x4_splat(s.eps);
  for (; i + 4 <= n; i += 4) {
    const v128_t vg = wasm_v128_load(grads + i);
    const v128_t vm = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), vbeta1), wasm_f32x4_mul(vg, vomb1));
    const v128_t vv = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vbeta2),
                                     wasm_f32x4_mul(wasm_f32x4_mul(vg, vg), vomb2));
    const v128_t vdenom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vv), vbc2), veps);
    const v128_t vp = wasm_f32x4_sub(wasm_v128_load(params + i),
                                     wasm_f32x4_mul(vstep, wasm_f32x4_div(vm, vdenom)));
    wasm_v128_store(m + i, vm);
    wasm_v128_store(v + i, vv);
    wasm_v128_store(params + i, vp);
  }
#endif
  adam_tail(params, grads, m, v, i, n, &s);
}

/* ---- weight decay, SGD, EMA: plain loops (the compiler vectorises them) ---- */

/* Coupled weight decay: g + wd * p, as torch's grad.add(param, alpha=weight_decay). The decayed
 * gradient goes to `out` (the optimizer's scratch), never back into the gradient buffer. */
static inline float decayed(float g, float p, float wd) { return g + wd * p; }

void adam_update_decay(float *params, const float *grads, float *m, float *v, size_t n, const wt_adam_config *config,
                       int32_t t, double weight_decay, int decoupled) {
  const adam_scalars s = adam_scalars_for(config, t);
  const float wd = (float)weight_decay;
  /* AdamW: param.mul_(1 - lr * weight_decay) before the Adam step. */
  const float shrink = (float)(1.0 - config->lr * weight_decay);
  for (size_t i = 0; i < n; i++) {
    if (decoupled) params[i] *= shrink;
    const float g = decoupled ? grads[i] : decayed(grads[i], params[i], wd);
    m[i] = m[i] * s.beta1 + g * s.one_minus_beta1;
    v[i] = v[i] * s.beta2 + g * g * s.one_minus_beta2;
    const float denom = sqrtf(v[i]) / s.bc2_sqrt + s.eps;
    params[i] -= s.step_size * (m[i] / denom);
  }
}

void sgd_update(float *params, const float *grads, float *buf, size_t n, double lr, double momentum, double dampening,
                int nesterov, double weight_decay, int decoupled, int first_step) {
  const float wd = (float)weight_decay, mom = (float)momentum, keep = (float)(1.0 - dampening), neg_lr = (float)-lr;
  const float shrink = (float)(1.0 - lr * weight_decay);
  for (size_t i = 0; i < n; i++) {
    if (decoupled && weight_decay != 0) params[i] *= shrink;
    float d = decoupled || weight_decay == 0 ? grads[i] : decayed(grads[i], params[i], wd);
    if (momentum != 0) {
      /* torch: the buffer starts as a copy of the first gradient (no dampening), then
       * buf = buf * momentum + (1 - dampening) * d. */
      buf[i] = first_step ? d : buf[i] * mom + keep * d;
      d = nesterov ? d + mom * buf[i] : buf[i];
    }
    params[i] += neg_lr * d;
  }
}

void ema_update(float *ema, float *weights, size_t n, double decay, int copy_back) {
  /* torch's ema.lerp_(weights, 1 - decay): two formulas, by the size of the weight. */
  const float w = (float)(1.0 - decay);
  if (fabsf(w) < 0.5f) {
    for (size_t i = 0; i < n; i++) ema[i] = ema[i] + w * (weights[i] - ema[i]);
  } else {
    for (size_t i = 0; i < n; i++) ema[i] = weights[i] - (weights[i] - ema[i]) * (1.0f - w);
  }
  if (copy_back) memcpy(weights, ema, sizeof(float) * n);
}

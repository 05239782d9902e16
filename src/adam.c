/* Adam exactly as torch.optim.Adam (no weight decay, no amsgrad): bias corrections in double,
 * eps added after the square root. One loop over the flat parameter buffer. */
#include <math.h>

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

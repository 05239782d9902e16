/* 2x2 max-pooling with stride 2, keeping each window's argmax for the backward pass. The SIMD
 * forward reproduces the scalar reference exactly (same comparisons in the same order). */
#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

/* One window: output column j of the row pair (r0, r1). Strict > keeps the first maximum in scan
 * order, as PyTorch does on ties. */
static inline void pool_window(wt_real *out, uint8_t *argmax, const wt_real *r0, const wt_real *r1,
                               int j) {
  wt_real best = r0[2 * j];
  uint8_t at = 0;
  if (r0[2 * j + 1] > best) best = r0[2 * j + 1], at = 1;
  if (r1[2 * j] > best) best = r1[2 * j], at = 2;
  if (r1[2 * j + 1] > best) best = r1[2 * j + 1], at = 3;
  *out = best;
  *argmax = at;
}

void maxpool2_forward_ref(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                          int W) {
  /* out (B, C, H/2, W/2); argmax like out, 0..3 = (row, col) offset 2*dy + dx in the window */
  const int OH = H / 2, OW = W / 2;
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    const wt_real *in = inp + plane * H * W;
    wt_real *o = out + plane * OH * OW;
    uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++) {
      const wt_real *r0 = in + (2 * i) * W, *r1 = r0 + W;
      for (int j = 0; j < OW; j++) pool_window(o + i * OW + j, a + i * OW + j, r0, r1, j);
    }
  }
}

#if !WT_SIMD
void maxpool2_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                      int W) {
  maxpool2_forward_ref(out, argmax, inp, B, C, H, W);
}
#else
/* Takes the window element v where v > best, as the reference's strict comparison does. */
#define POOL_TAKE(vbest, vat, v, index)                                  \
  do {                                                                   \
    const v128_t vmask_ = wasm_f32x4_gt(v, vbest);                       \
    vbest = wasm_v128_bitselect(v, vbest, vmask_);                       \
    vat = wasm_v128_bitselect(wasm_i32x4_splat(index), vat, vmask_);     \
  } while (0)

void maxpool2_forward(float *out, uint8_t *argmax, const float *inp, int B, int C, int H, int W) {
  const int OH = H / 2, OW = W / 2, OW4 = OW & ~3;
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    const float *in = inp + plane * H * W;
    float *o = out + plane * OH * OW;
    uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++) {
      const float *r0 = in + (2 * i) * W, *r1 = r0 + W;
      for (int j = 0; j < OW4; j += 4) {
        /* 8 input columns of each row: even columns are window column 0, odd ones column 1. */
        const v128_t v0lo = wasm_v128_load(r0 + 2 * j), v0hi = wasm_v128_load(r0 + 2 * j + 4);
        const v128_t v1lo = wasm_v128_load(r1 + 2 * j), v1hi = wasm_v128_load(r1 + 2 * j + 4);
        v128_t vbest = wasm_i32x4_shuffle(v0lo, v0hi, 0, 2, 4, 6);
        v128_t vat = wasm_i32x4_splat(0);
        POOL_TAKE(vbest, vat, wasm_i32x4_shuffle(v0lo, v0hi, 1, 3, 5, 7), 1);
        POOL_TAKE(vbest, vat, wasm_i32x4_shuffle(v1lo, v1hi, 0, 2, 4, 6), 2);
        POOL_TAKE(vbest, vat, wasm_i32x4_shuffle(v1lo, v1hi, 1, 3, 5, 7), 3);
        wasm_v128_store(o + i * OW + j, vbest);
        const v128_t vat8 = wasm_u8x16_narrow_i16x8(wasm_u16x8_narrow_i32x4(vat, vat), vat);
        wasm_v128_store32_lane(a + i * OW + j, vat8, 0);
      }
      for (int j = OW4; j < OW; j++) pool_window(o + i * OW + j, a + i * OW + j, r0, r1, j);
    }
  }
}
#endif

void maxpool2_backward(wt_real *dinp, const wt_real *dout, const uint8_t *argmax, int B, int C,
                       int H, int W) {
  const int OH = H / 2, OW = W / 2;
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    wt_real *din = dinp + plane * H * W;
    const wt_real *d = dout + plane * OH * OW;
    const uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        const int at = a[i * OW + j];
        din[(2 * i + (at >> 1)) * W + 2 * j + (at & 1)] += d[i * OW + j];
      }
  }
}

/* 2x2 max-pooling with stride 2, keeping each window's argmax for the backward pass. The SIMD
 * forward reproduces the scalar reference exactly (same comparisons in the same order), and both
 * give what the general window (maxpool_forward, k = s = 2, p = 0) gives, NaN included, on any
 * sides: an odd last row or column is left out, as PyTorch's floor mode does. */
#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

/* Whether a window's scan takes v over the best so far: strictly greater keeps the first maximum
 * on ties, and a NaN is taken (the last one, as maxpool_forward), as PyTorch propagates NaN. */
static inline int pool_takes(wt_real v, wt_real best) { return v > best || v != v; }

/* One window: output column j of the row pair (r0, r1). */
static inline void pool_window(wt_real *out, uint8_t *argmax, const wt_real *r0, const wt_real *r1,
                               int j) {
  wt_real best = r0[2 * j];
  uint8_t at = 0;
  if (pool_takes(r0[2 * j + 1], best)) best = r0[2 * j + 1], at = 1;
  if (pool_takes(r1[2 * j], best)) best = r1[2 * j], at = 2;
  if (pool_takes(r1[2 * j + 1], best)) best = r1[2 * j + 1], at = 3;
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
/* Takes the window element v where pool_takes(v, best): v > best, or v is NaN. */
#define POOL_TAKE(vbest, vat, v, index)                                  \
  do {                                                                   \
    const v128_t vmask_ = wasm_v128_or(wasm_f32x4_gt(v, vbest), wasm_f32x4_ne(v, v)); \
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

/* ---- any window: kernel k, stride s, padding p (padded cells never win, as PyTorch pads with
 * -inf); argmax is the window cell (row * k + col) of the first maximum in scan order ---- */

void maxpool_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H, int W, int k, int s,
                     int p, int OH, int OW) {
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    const wt_real *in = inp + plane * H * W;
    wt_real *o = out + plane * OH * OW;
    uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        int best_at = -1;
        wt_real best = 0;
        for (int di = 0; di < k; di++) {
          const int r = i * s - p + di;
          if (r < 0 || r >= H) continue;
          for (int dj = 0; dj < k; dj++) {
            const int c = j * s - p + dj;
            if (c < 0 || c >= W) continue;
            const wt_real v = in[r * W + c];
            if (best_at < 0 || pool_takes(v, best)) best = v, best_at = di * k + dj;
          }
        }
        o[i * OW + j] = best;
        a[i * OW + j] = (uint8_t)best_at;
      }
  }
}

void maxpool_backward(wt_real *dinp, const wt_real *dout, const uint8_t *argmax, int B, int C, int H, int W, int k,
                      int s, int p, int OH, int OW) {
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    wt_real *din = dinp + plane * H * W;
    const wt_real *d = dout + plane * OH * OW;
    const uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        const int at = a[i * OW + j];
        din[(i * s - p + at / k) * W + j * s - p + at % k] += d[i * OW + j];
      }
  }
}

#ifndef WT_REAL_IS_DOUBLE

/* Checks a pooling window against the input and sets the output shape (PyTorch's floor mode). */
wt_status pool_plan_window(wt_layer *l, const char *what, int max_kernel) {
  const int32_t k = l->arg[0], s = l->arg[1], p = l->arg[2];
  if (l->in.flat) return wt_plan_fail(l, "%s needs an image (channels x height x width), but its input is a flat vector", what);
  if (k < 1 || k > max_kernel || s < 1 || s > 64 || p < 0 || p > 64) {
    return wt_plan_fail(l, "%s: kernel %d (1..%d), stride %d (1..64) or padding %d (0..64) is out of range", what, (int)k, max_kernel, (int)s, (int)p);
  }
  if (2 * p > k) return wt_plan_fail(l, "%s: padding %d is more than half the kernel %d (PyTorch refuses it too)", what, (int)p, (int)k);
  if (l->in.h + 2 * p < k || l->in.w + 2 * p < k) {
    return wt_plan_fail(l, "%s: kernel %d is larger than its input %dx%d (with padding %d)", what, (int)k, (int)l->in.h, (int)l->in.w, (int)p);
  }
  l->out = (wt_shape){l->in.c, (l->in.h + 2 * p - k) / s + 1, (l->in.w + 2 * p - k) / s + 1, 0};
  l->flops = (double)wt_shape_size(l->out) * k * k;
  return WT_OK;
}

/* 2x2, stride 2, no padding (any sides): the SIMD kernel; its 0..3 argmax is maxpool_forward's. */
static int is_pool2(const wt_layer *l) { return l->arg[0] == 2 && l->arg[1] == 2 && l->arg[2] == 0; }

static wt_status maxpool_plan(wt_layer *l, wt_planner *p) {
  (void)p;
  const wt_status st = pool_plan_window(l, "maxpool", 16);
  l->aux8_per_image = wt_shape_size(l->out);
  return st;
}

static void maxpool_op_forward(const wt_layer *l, wt_ctx *ctx) {
  const wt_shape i = l->in, o = l->out;
  if (is_pool2(l)) maxpool2_forward(wt_slot(ctx, l->y), l->aux8, wt_slot(ctx, l->x), ctx->B, i.c, i.h, i.w);
  else maxpool_forward(wt_slot(ctx, l->y), l->aux8, wt_slot(ctx, l->x), ctx->B, i.c, i.h, i.w, l->arg[0], l->arg[1], l->arg[2], o.h, o.w);
}

static void maxpool_op_backward(const wt_layer *l, wt_ctx *ctx) {
  if (!wt_wants_dslot(ctx, l->x)) return;
  const wt_shape i = l->in, o = l->out;
  if (is_pool2(l)) maxpool2_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), l->aux8, ctx->B, i.c, i.h, i.w);
  else maxpool_backward(wt_dslot(ctx, l->x), wt_dslot(ctx, l->y), l->aux8, ctx->B, i.c, i.h, i.w, l->arg[0], l->arg[1], l->arg[2], o.h, o.w);
}

const wt_op wt_op_maxpool = {"maxpool", maxpool_plan, maxpool_op_forward, maxpool_op_backward, 1};

#endif

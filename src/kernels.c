/* The hot loops: matrix products and ReLU, each as a WebAssembly SIMD128 kernel (when built with
 * -msimd128) next to the scalar reference that tests hold it to. */
#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

/* ---- scalar references (also the fallback on every non-SIMD build) ---- */

void wt_gemm_nn_ref(int M, int N, int K, const wt_real *A, int a_row, int a_col,
                    const wt_real *B, int ldb, wt_real *C, int ldc, int accumulate) {
  for (int i = 0; i < M; i++) {
    wt_real *c = C + (size_t)i * ldc;
    if (!accumulate) {
      for (int j = 0; j < N; j++) c[j] = 0;
    }
    for (int k = 0; k < K; k++) {
      wt_real a = A[(size_t)i * a_row + (size_t)k * a_col];
      const wt_real *b = B + (size_t)k * ldb;
      for (int j = 0; j < N; j++) c[j] += a * b[j];
    }
  }
}

void wt_gemm_nt_ref(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                    wt_real *C, int ldc, int accumulate) {
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      const wt_real *a = A + (size_t)i * lda;
      const wt_real *b = B + (size_t)j * ldb;
      wt_real sum = 0;
      for (int k = 0; k < K; k++) sum += a[k] * b[k];
      wt_real *c = C + (size_t)i * ldc + j;
      *c = accumulate ? *c + sum : sum;
    }
  }
}

void wt_relu_ref(wt_real *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : y[i]; /* NaN propagates, as in PyTorch */
}

void wt_relu_gate_ref(wt_real *d, const wt_real *out, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = out[i] > 0 ? d[i] : 0;
}

/* Output pixel (oh, ow) of channel o: bias, then the taps in (c, ki, kj) order. */
static inline wt_real conv_direct_pixel(const wt_real *inp, const wt_real *weight, const wt_real *bias,
                                        int o, int C, int H, int W, int K, int oh, int ow) {
  wt_real sum = bias[o];
  for (int c = 0; c < C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++)
        sum += weight[((o * C + c) * K + ki) * K + kj] * inp[((size_t)c * H + oh + ki) * W + ow + kj];
  return sum;
}

void wt_conv2d_direct_ref(wt_real *out, const wt_real *inp, const wt_real *weight,
                          const wt_real *bias, int C, int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1;
  for (int o = 0; o < OC; o++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        out[((size_t)o * OH + oh) * OW + ow] = conv_direct_pixel(inp, weight, bias, o, C, H, W, K, oh, ow);
      }
}

void wt_conv2d_dweight_direct_ref(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                                  int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1;
  for (int o = 0; o < OC; o++)
    for (int c = 0; c < C; c++)
      for (int ki = 0; ki < K; ki++)
        for (int kj = 0; kj < K; kj++) {
          wt_real sum = 0;
          for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
              sum += dout[((size_t)o * OH + oh) * OW + ow] * inp[((size_t)c * H + oh + ki) * W + ow + kj];
          dweight[((o * C + c) * K + ki) * K + kj] += sum;
        }
}

/* Walks the runs of im2col (c, ki, kj, oh): `op` gets each run of OW columns of `col` with the
 * OW input pixels it holds. Always inlined, so each kernel gets its loop in place. The input is
 * written only by col2im's op. */
static inline __attribute__((always_inline)) void im2col_runs(wt_real *col, wt_real *inp, int C, int H, int W, int K,
                                                              void (*op)(wt_real *, wt_real *, int)) {
  const int OH = H - K + 1, OW = W - K + 1;
  for (int c = 0; c < C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++) {
        wt_real *row = col + (size_t)((c * K + ki) * K + kj) * OH * OW;
        for (int oh = 0; oh < OH; oh++) op(row + oh * OW, inp + ((size_t)c * H + oh + ki) * W + kj, OW);
      }
}

static void gather_run_ref(wt_real *col, wt_real *img, int n) {
  for (int i = 0; i < n; i++) col[i] = img[i];
}
static void scatter_add_run_ref(wt_real *col, wt_real *img, int n) {
  for (int i = 0; i < n; i++) img[i] += col[i];
}

void wt_im2col_ref(wt_real *col, const wt_real *inp, int C, int H, int W, int K) {
  im2col_runs(col, (wt_real *)inp, C, H, W, K, gather_run_ref);
}
void wt_col2im_add_ref(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K) {
  im2col_runs((wt_real *)dcol, dinp, C, H, W, K, scatter_add_run_ref);
}

void wt_conv2d_transpose_weight(wt_real *wt, const wt_real *weight, int OC, int CKK) {
  for (int o = 0; o < OC; o++)
    for (int k = 0; k < CKK; k++) wt[(size_t)k * OC + o] = weight[(size_t)o * CKK + k];
}

/* Pooled pixel (i, j) of channel o: the first maximum of its window in scan order (as
 * maxpool2_forward_ref picks it) after ReLU (as wt_relu_ref gives it). */
static inline wt_real conv_relu_pool_pixel(const wt_real *inp, const wt_real *weight, const wt_real *bias,
                                           int o, int C, int H, int W, int K, int i, int j) {
  wt_real best = 0;
  for (int dy = 0; dy < 2; dy++)
    for (int dx = 0; dx < 2; dx++) {
      wt_real v = conv_direct_pixel(inp, weight, bias, o, C, H, W, K, 2 * i + dy, 2 * j + dx);
      v = v < 0 ? 0 : v;
      if ((dy == 0 && dx == 0) || v > best) best = v;
    }
  return best;
}

void wt_conv2d_relu_pool_ref(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                             const wt_real *bias, int C, int H, int W, int OC, int K) {
  const int PH = (H - K + 1) / 2, PW = (W - K + 1) / 2;
  for (int o = 0; o < OC; o++)
    for (int i = 0; i < PH; i++)
      for (int j = 0; j < PW; j++) {
        pooled[((size_t)o * PH + i) * PW + j] = conv_relu_pool_pixel(inp, weight, bias, o, C, H, W, K, i, j);
      }
}

void wt_add_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

#if !WT_SIMD

void wt_conv2d_dweight_direct(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                              int H, int W, int OC, int K) {
  wt_conv2d_dweight_direct_ref(dweight, dout, inp, C, H, W, OC, K);
}

void wt_conv2d_direct(wt_real *out, const wt_real *inp, const wt_real *weight, const wt_real *bias,
                      int C, int H, int W, int OC, int K) {
  wt_conv2d_direct_ref(out, inp, weight, bias, C, H, W, OC, K);
}

void wt_add(float *y, const float *x, size_t n) { wt_add_ref(y, x, n); }

void wt_im2col(wt_real *col, const wt_real *inp, int C, int H, int W, int K) { wt_im2col_ref(col, inp, C, H, W, K); }
void wt_col2im_add(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K) {
  wt_col2im_add_ref(dinp, dcol, C, H, W, K);
}

void wt_conv2d_relu_pool(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                         const wt_real *bias, int C, int H, int W, int OC, int K) {
  wt_conv2d_relu_pool_ref(pooled, inp, weight, bias, C, H, W, OC, K);
}

void wt_gemm_nn(int M, int N, int K, const wt_real *A, int a_row, int a_col, const wt_real *B,
                int ldb, wt_real *C, int ldc, int accumulate) {
  wt_gemm_nn_ref(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate);
}

void wt_gemm_nt(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                wt_real *C, int ldc, int accumulate) {
  wt_gemm_nt_ref(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void wt_relu(wt_real *y, size_t n) { wt_relu_ref(y, n); }

void wt_relu_gate(wt_real *d, const wt_real *out, size_t n) { wt_relu_gate_ref(d, out, n); }

#else /* WT_SIMD */

#define WT_INLINE static inline __attribute__((always_inline))

/* The direct conv kernels take the kernel size K at run time. The seed's build saw only K = 5 (its
 * call sites passed the constant and the optimizer folded it in) and ran SimpleCNN's training step
 * about 4% and its evaluation about 8% faster for it, so the forward kernels give K = 5 a copy of
 * its own, with the loops over the taps kept rolled (unrolled, or with the backward kernels and
 * im2col specialized too, SimpleCNN's step got 20-40% slower). Same sums in every copy. */
#define WT_TAP_LOOP _Pragma("clang loop unroll(disable)")
#define WT_BY_KERNEL_SIZE(K, body, ...) \
  do {                                  \
    if ((K) == 5) body(__VA_ARGS__, 5); \
    else body(__VA_ARGS__, K);          \
  } while (0)

/* mr (1..4) rows of C times 8 columns: 2 vectors per row stay in registers over all of K. */
WT_INLINE void gemm_nn_mrx8(int mr, int K, const float *A, int a_row, int a_col, const float *B,
                            int ldb, float *C, int ldc, int accumulate) {
  v128_t vacc0x0123[4], vacc0x4567[4];
  for (int r = 0; r < mr; r++) {
    vacc0x0123[r] = accumulate ? wasm_v128_load(C + r * ldc) : wasm_f32x4_splat(0.0f);
    vacc0x4567[r] = accumulate ? wasm_v128_load(C + r * ldc + 4) : wasm_f32x4_splat(0.0f);
  }
  for (int k = 0; k < K; k++) {
    const v128_t vb0123 = wasm_v128_load(B + (size_t)k * ldb);
    const v128_t vb4567 = wasm_v128_load(B + (size_t)k * ldb + 4);
    for (int r = 0; r < mr; r++) {
      const v128_t va = wasm_f32x4_splat(A[r * a_row + k * a_col]);
      vacc0x0123[r] = wasm_f32x4_add(vacc0x0123[r], wasm_f32x4_mul(va, vb0123));
      vacc0x4567[r] = wasm_f32x4_add(vacc0x4567[r], wasm_f32x4_mul(va, vb4567));
    }
  }
  for (int r = 0; r < mr; r++) {
    wasm_v128_store(C + r * ldc, vacc0x0123[r]);
    wasm_v128_store(C + r * ldc + 4, vacc0x4567[r]);
  }
}

WT_INLINE void gemm_nn_mrx4(int mr, int K, const float *A, int a_row, int a_col, const float *B,
                            int ldb, float *C, int ldc, int accumulate) {
  v128_t vacc[4];
  for (int r = 0; r < mr; r++) {
    vacc[r] = accumulate ? wasm_v128_load(C + r * ldc) : wasm_f32x4_splat(0.0f);
  }
  for (int k = 0; k < K; k++) {
    const v128_t vb = wasm_v128_load(B + (size_t)k * ldb);
    for (int r = 0; r < mr; r++) {
      vacc[r] = wasm_f32x4_add(vacc[r], wasm_f32x4_mul(wasm_f32x4_splat(A[r * a_row + k * a_col]), vb));
    }
  }
  for (int r = 0; r < mr; r++) wasm_v128_store(C + r * ldc, vacc[r]);
}

void wt_gemm_nn(int M, int N, int K, const float *A, int a_row, int a_col, const float *B,
                int ldb, float *C, int ldc, int accumulate) {
  int j = 0;
  for (; j + 8 <= N; j += 8) {
    int i = 0;
    for (; i + 4 <= M; i += 4) {
      gemm_nn_mrx8(4, K, A + (size_t)i * a_row, a_row, a_col, B + j, ldb, C + (size_t)i * ldc + j, ldc, accumulate);
    }
    const float *a = A + (size_t)i * a_row;
    float *c = C + (size_t)i * ldc + j;
    switch (M - i) {
      case 3: gemm_nn_mrx8(3, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      case 2: gemm_nn_mrx8(2, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      case 1: gemm_nn_mrx8(1, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      default: break;
    }
  }
  if (j + 4 <= N) {
    int i = 0;
    for (; i + 4 <= M; i += 4) {
      gemm_nn_mrx4(4, K, A + (size_t)i * a_row, a_row, a_col, B + j, ldb, C + (size_t)i * ldc + j, ldc, accumulate);
    }
    const float *a = A + (size_t)i * a_row;
    float *c = C + (size_t)i * ldc + j;
    switch (M - i) {
      case 3: gemm_nn_mrx4(3, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      case 2: gemm_nn_mrx4(2, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      case 1: gemm_nn_mrx4(1, K, a, a_row, a_col, B + j, ldb, c, ldc, accumulate); break;
      default: break;
    }
    j += 4;
  }
  if (j < N) wt_gemm_nn_ref(M, N - j, K, A, a_row, a_col, B + j, ldb, C + j, ldc, accumulate);
}

WT_INLINE float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* mr (1..4) rows of A against nr (1..2) rows of B: 8 dot products, 4 lanes of K at a time. */
WT_INLINE void gemm_nt_mrxnr(int mr, int nr, int K, const float *A, int lda, const float *B,
                             int ldb, float *C, int ldc, int accumulate) {
  v128_t vacc[4][2];
  for (int r = 0; r < mr; r++)
    for (int s = 0; s < nr; s++) vacc[r][s] = wasm_f32x4_splat(0.0f);
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    v128_t vb[2];
    for (int s = 0; s < nr; s++) vb[s] = wasm_v128_load(B + (size_t)s * ldb + k);
    for (int r = 0; r < mr; r++) {
      const v128_t va = wasm_v128_load(A + (size_t)r * lda + k);
      for (int s = 0; s < nr; s++) vacc[r][s] = wasm_f32x4_add(vacc[r][s], wasm_f32x4_mul(va, vb[s]));
    }
  }
  for (int r = 0; r < mr; r++) {
    for (int s = 0; s < nr; s++) {
      float sum = hsum(vacc[r][s]);
      for (int kk = k; kk < K; kk++) sum += A[(size_t)r * lda + kk] * B[(size_t)s * ldb + kk];
      float *c = C + (size_t)r * ldc + s;
      *c = accumulate ? *c + sum : sum;
    }
  }
}

WT_INLINE void gemm_nt_row_block(int mr, int N, int K, const float *A, int lda, const float *B,
                                 int ldb, float *C, int ldc, int accumulate) {
  int j = 0;
  for (; j + 2 <= N; j += 2) {
    gemm_nt_mrxnr(mr, 2, K, A, lda, B + (size_t)j * ldb, ldb, C + j, ldc, accumulate);
  }
  if (j < N) gemm_nt_mrxnr(mr, 1, K, A, lda, B + (size_t)j * ldb, ldb, C + j, ldc, accumulate);
}

void wt_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate) {
  int i = 0;
  for (; i + 4 <= M; i += 4) {
    gemm_nt_row_block(4, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc, accumulate);
  }
  const float *a = A + (size_t)i * lda;
  float *c = C + (size_t)i * ldc;
  switch (M - i) {
    case 3: gemm_nt_row_block(3, N, K, a, lda, B, ldb, c, ldc, accumulate); break;
    case 2: gemm_nt_row_block(2, N, K, a, lda, B, ldb, c, ldc, accumulate); break;
    case 1: gemm_nt_row_block(1, N, K, a, lda, B, ldb, c, ldc, accumulate); break;
    default: break;
  }
}

/* 4*pv output pixels (pv = 1 or 2 vectors) of ob (1..4) output channels: each input vector feeds
 * ob accumulators and each weight splat feeds pv; at most 8 accumulators stay in registers. */
WT_INLINE void conv_direct_block(int ob, int pv, float *out, const float *inp, const float *weight,
                                 const float *bias, int C, int H, int W, int K, int OH, int OW,
                                 int oh, int ow) {
  const int CKK = C * K * K;
  v128_t vacc[4][2];
  for (int o = 0; o < ob; o++)
    for (int v = 0; v < pv; v++) vacc[o][v] = wasm_f32x4_splat(bias[o]);
  WT_TAP_LOOP
  for (int c = 0; c < C; c++)
    WT_TAP_LOOP
    for (int ki = 0; ki < K; ki++) {
      const float *row = inp + ((size_t)c * H + oh + ki) * W + ow;
      const float *w = weight + (c * K + ki) * K;
      WT_TAP_LOOP
      for (int kj = 0; kj < K; kj++) {
        v128_t vx[2]; /* ends at ow + 4*pv - 1 + K - 1 <= W - 1: in bounds */
        for (int v = 0; v < pv; v++) vx[v] = wasm_v128_load(row + kj + 4 * v);
        for (int o = 0; o < ob; o++) {
          const v128_t vw = wasm_v128_load32_splat(w + o * CKK + kj);
          for (int v = 0; v < pv; v++) vacc[o][v] = wasm_f32x4_add(vacc[o][v], wasm_f32x4_mul(vw, vx[v]));
        }
      }
    }
  for (int o = 0; o < ob; o++)
    for (int v = 0; v < pv; v++) wasm_v128_store(out + ((size_t)o * OH + oh) * OW + ow + 4 * v, vacc[o][v]);
}

#define CONV_DIRECT_CASES(pv)                                                                            \
  switch (ob) {                                                                                          \
    case 4: conv_direct_block(4, pv, o_out, inp, o_w, bias + o0, C, H, W, K, OH, OW, oh, ow); break;     \
    case 3: conv_direct_block(3, pv, o_out, inp, o_w, bias + o0, C, H, W, K, OH, OW, oh, ow); break;     \
    case 2: conv_direct_block(2, pv, o_out, inp, o_w, bias + o0, C, H, W, K, OH, OW, oh, ow); break;     \
    default: conv_direct_block(1, pv, o_out, inp, o_w, bias + o0, C, H, W, K, OH, OW, oh, ow); break;    \
  }

WT_INLINE void conv2d_direct_k(float *out, const float *inp, const float *weight, const float *bias, int C,
                               int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1, OW4 = OW & ~3, CKK = C * K * K;
  for (int o0 = 0; o0 < OC; o0 += 4) {
    const int ob = OC - o0 < 4 ? OC - o0 : 4;
    float *o_out = out + (size_t)o0 * OH * OW;
    const float *o_w = weight + (size_t)o0 * CKK;
    for (int oh = 0; oh < OH; oh++) {
      int ow = 0;
      for (; ow + 8 <= OW4; ow += 8) CONV_DIRECT_CASES(2)
      if (ow < OW4) CONV_DIRECT_CASES(1)
    }
    /* Output columns past the last whole vector, one pixel at a time. */
    for (int o = o0; o < o0 + ob; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = OW4; ow < OW; ow++) {
          out[((size_t)o * OH + oh) * OW + ow] = conv_direct_pixel(inp, weight, bias, o, C, H, W, K, oh, ow);
        }
  }
}

void wt_conv2d_direct(float *out, const float *inp, const float *weight, const float *bias, int C,
                      int H, int W, int OC, int K) {
  WT_BY_KERNEL_SIZE(K, conv2d_direct_k, out, inp, weight, bias, C, H, W, OC);
}

/* Output rows 2i and 2i+1, columns ow .. ow+4*pv-1, of ob (here 2) channels, reduced to their 2x2
 * maxima after ReLU: 2*pv pooled pixels per channel. The sums are conv_direct_block's; at most
 * 8 accumulators, 4 input vectors and a weight stay in registers. */
WT_INLINE void conv_relu_pool_block(int ob, int pv, float *pooled, const float *inp, const float *weight,
                                    const float *bias, int C, int H, int W, int K, int PH, int PW,
                                    int i, int ow) {
  const int CKK = C * K * K;
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  v128_t vacc[2][2][2]; /* [channel][row][vector] */
  for (int o = 0; o < ob; o++)
    for (int r = 0; r < 2; r++)
      for (int v = 0; v < pv; v++) vacc[o][r][v] = wasm_f32x4_splat(bias[o]);
  WT_TAP_LOOP
  for (int c = 0; c < C; c++)
    WT_TAP_LOOP
    for (int ki = 0; ki < K; ki++) {
      const float *row0 = inp + ((size_t)c * H + 2 * i + ki) * W + ow, *row1 = row0 + W;
      const float *w = weight + (c * K + ki) * K;
      WT_TAP_LOOP
      for (int kj = 0; kj < K; kj++) {
        v128_t vx[2][2]; /* ends at ow + 4*pv - 1 + K - 1 <= W - 1: in bounds */
        for (int v = 0; v < pv; v++) {
          vx[0][v] = wasm_v128_load(row0 + kj + 4 * v);
          vx[1][v] = wasm_v128_load(row1 + kj + 4 * v);
        }
        for (int o = 0; o < ob; o++) {
          const v128_t vw = wasm_v128_load32_splat(w + o * CKK + kj);
          for (int r = 0; r < 2; r++)
            for (int v = 0; v < pv; v++) vacc[o][r][v] = wasm_f32x4_add(vacc[o][r][v], wasm_f32x4_mul(vw, vx[r][v]));
        }
      }
    }
  /* max(relu(a), ...) = relu(max(a, ...)): the maxima first, then one ReLU. pmax(a, b) is
   * a < b ? b : a, which keeps the same value the reference's scan does. */
  for (int o = 0; o < ob; o++) {
    float *dst = pooled + ((size_t)o * PH + i) * PW + ow / 2;
    const v128_t m0 = wasm_f32x4_pmax(vacc[o][0][0], vacc[o][1][0]);
    if (pv == 2) {
      const v128_t m1 = wasm_f32x4_pmax(vacc[o][0][1], vacc[o][1][1]);
      const v128_t vmax = wasm_f32x4_pmax(wasm_i32x4_shuffle(m0, m1, 0, 2, 4, 6), wasm_i32x4_shuffle(m0, m1, 1, 3, 5, 7));
      wasm_v128_store(dst, wasm_f32x4_pmax(vmax, vzero));
    } else {
      const v128_t vmax = wasm_f32x4_pmax(wasm_i32x4_shuffle(m0, m0, 0, 2, 0, 2), wasm_i32x4_shuffle(m0, m0, 1, 3, 1, 3));
      wasm_v128_store64_lane(dst, wasm_f32x4_pmax(vmax, vzero), 0);
    }
  }
}

WT_INLINE void conv2d_relu_pool_k(float *pooled, const float *inp, const float *weight, const float *bias, int C,
                                  int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2, OW4 = OW & ~3;
  const int OC2 = OC & ~1;
  for (int o0 = 0; o0 < OC2; o0 += 2) {
    float *o_pooled = pooled + (size_t)o0 * PH * PW;
    const float *o_w = weight + (size_t)o0 * C * K * K;
    for (int i = 0; i < PH; i++) {
      int ow = 0;
      for (; ow + 8 <= OW4; ow += 8) conv_relu_pool_block(2, 2, o_pooled, inp, o_w, bias + o0, C, H, W, K, PH, PW, i, ow);
      if (ow < OW4) conv_relu_pool_block(2, 1, o_pooled, inp, o_w, bias + o0, C, H, W, K, PH, PW, i, ow);
    }
  }
  /* Pooled columns past the last whole vector, and an odd last channel, one pixel at a time. */
  for (int o = 0; o < OC; o++)
    for (int i = 0; i < PH; i++)
      for (int j = o < OC2 ? OW4 / 2 : 0; j < PW; j++) {
        pooled[((size_t)o * PH + i) * PW + j] = conv_relu_pool_pixel(inp, weight, bias, o, C, H, W, K, i, j);
      }
}

void wt_conv2d_relu_pool(float *pooled, const float *inp, const float *weight, const float *bias, int C,
                         int H, int W, int OC, int K) {
  WT_BY_KERNEL_SIZE(K, conv2d_relu_pool_k, pooled, inp, weight, bias, C, H, W, OC);
}

/* np (1..2) adjacent output pixels (oh, ow + p) of the 4*nv channels into vacc[p][v] (channels
 * 4v..4v+3): the bias, then the taps in (c, ki, kj) order, as conv_direct_pixel adds them. wt is
 * the weight transposed to (C*K*K, OC). 8 accumulators, 4 weight vectors and 2 inputs at most. */
WT_INLINE void conv_oc_pixels(v128_t vacc[2][4], int np, int nv, const float *inp, const float *wt,
                              const float *bias, int C, int H, int W, int K, int OC, int oh, int ow) {
  for (int v = 0; v < nv; v++) {
    const v128_t vb = wasm_v128_load(bias + 4 * v);
    for (int p = 0; p < np; p++) vacc[p][v] = vb;
  }
  WT_TAP_LOOP
  for (int c = 0; c < C; c++)
    WT_TAP_LOOP
    for (int ki = 0; ki < K; ki++) {
      const float *row = inp + ((size_t)c * H + oh + ki) * W + ow;
      const float *w = wt + (size_t)(c * K + ki) * K * OC;
      WT_TAP_LOOP
      for (int kj = 0; kj < K; kj++) {
        v128_t vx[2];
        for (int p = 0; p < np; p++) vx[p] = wasm_v128_load32_splat(row + kj + p);
        for (int v = 0; v < nv; v++) {
          const v128_t vw = wasm_v128_load(w + kj * OC + 4 * v);
          for (int p = 0; p < np; p++) vacc[p][v] = wasm_f32x4_add(vacc[p][v], wasm_f32x4_mul(vw, vx[p]));
        }
      }
    }
}

/* Channels 4v..4v+3 of one pixel to their planes: out[(4v + l) * plane]. */
WT_INLINE void store_channels(float *out, size_t plane, int v, v128_t vx) {
  float *o = out + (size_t)4 * v * plane;
  wasm_v128_store32_lane(o, vx, 0);
  wasm_v128_store32_lane(o + plane, vx, 1);
  wasm_v128_store32_lane(o + 2 * plane, vx, 2);
  wasm_v128_store32_lane(o + 3 * plane, vx, 3);
}

WT_INLINE void conv_oc_image(int nv, float *out, const float *inp, const float *wt, const float *bias, int C,
                             int H, int W, int K) {
  const int OH = H - K + 1, OW = W - K + 1, OC = 4 * nv;
  const size_t P = (size_t)OH * OW;
  v128_t vacc[2][4];
  for (int oh = 0; oh < OH; oh++) {
    int ow = 0;
    for (; ow + 2 <= OW; ow += 2) {
      conv_oc_pixels(vacc, 2, nv, inp, wt, bias, C, H, W, K, OC, oh, ow);
      for (int v = 0; v < nv; v++) {
        store_channels(out + (size_t)oh * OW + ow, P, v, vacc[0][v]);
        store_channels(out + (size_t)oh * OW + ow + 1, P, v, vacc[1][v]);
      }
    }
    if (ow < OW) {
      conv_oc_pixels(vacc, 1, nv, inp, wt, bias, C, H, W, K, OC, oh, ow);
      for (int v = 0; v < nv; v++) store_channels(out + (size_t)oh * OW + ow, P, v, vacc[0][v]);
    }
  }
}

WT_INLINE void conv2d_direct_oc_k(float *out, const float *inp, const float *wt, const float *bias, int C, int H, int W,
                                  int OC, int K) {
  switch (OC) {
    case 16: conv_oc_image(4, out, inp, wt, bias, C, H, W, K); break;
    case 8: conv_oc_image(2, out, inp, wt, bias, C, H, W, K); break;
    default: break; /* callers check OC */
  }
}

void wt_conv2d_direct_oc(float *out, const float *inp, const float *wt, const float *bias, int C, int H, int W,
                         int OC, int K) {
  WT_BY_KERNEL_SIZE(K, conv2d_direct_oc_k, out, inp, wt, bias, C, H, W, OC);
}

/* Pooled pixels of wt_conv2d_direct_oc's output, two output pixels at a time: the top pair's
 * maxima wait in memory while the bottom pair is computed (registers are all taken). */
WT_INLINE void conv_relu_pool_oc_image(int nv, float *pooled, const float *inp, const float *wt,
                                       const float *bias, int C, int H, int W, int K) {
  const int OH = H - K + 1, OW = W - K + 1, OC = 4 * nv, PH = OH / 2, PW = OW / 2;
  const size_t PP = (size_t)PH * PW;
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  v128_t vacc[2][4];
  float top[16] __attribute__((aligned(16)));
  for (int i = 0; i < PH; i++)
    for (int j = 0; j < PW; j++) {
      conv_oc_pixels(vacc, 2, nv, inp, wt, bias, C, H, W, K, OC, 2 * i, 2 * j);
      for (int v = 0; v < nv; v++) wasm_v128_store(top + 4 * v, wasm_f32x4_pmax(vacc[0][v], vacc[1][v]));
      conv_oc_pixels(vacc, 2, nv, inp, wt, bias, C, H, W, K, OC, 2 * i + 1, 2 * j);
      for (int v = 0; v < nv; v++) {
        const v128_t vmax = wasm_f32x4_pmax(wasm_v128_load(top + 4 * v), wasm_f32x4_pmax(vacc[0][v], vacc[1][v]));
        store_channels(pooled + (size_t)i * PW + j, PP, v, wasm_f32x4_pmax(vmax, vzero));
      }
    }
}

WT_INLINE void conv2d_relu_pool_oc_k(float *pooled, const float *inp, const float *wt, const float *bias, int C, int H,
                                     int W, int OC, int K) {
  switch (OC) {
    case 16: conv_relu_pool_oc_image(4, pooled, inp, wt, bias, C, H, W, K); break;
    case 8: conv_relu_pool_oc_image(2, pooled, inp, wt, bias, C, H, W, K); break;
    default: break; /* callers check OC */
  }
}

void wt_conv2d_relu_pool_oc(float *pooled, const float *inp, const float *wt, const float *bias, int C, int H,
                            int W, int OC, int K) {
  WT_BY_KERNEL_SIZE(K, conv2d_relu_pool_oc_k, pooled, inp, wt, bias, C, H, W, OC);
}

/* ob (1..2) output channels x nk (1..4) horizontal taps kj0.. of one (c, ki): 8 dot products over
 * all output pixels, 4 columns at a time; columns past the last whole vector are added in scalar. */
WT_INLINE void dweight_block(int ob, int nk, float *dweight, const float *dout, const float *inp,
                             int C, int H, int W, int K, int OH, int OW, int c, int ki, int kj0) {
  const int OW4 = OW & ~3, CKK = C * K * K;
  v128_t vacc[2][4];
  float tail[2][4] = {{0}};
  for (int o = 0; o < ob; o++)
    for (int k = 0; k < nk; k++) vacc[o][k] = wasm_f32x4_splat(0.0f);
  for (int oh = 0; oh < OH; oh++) {
    const float *row = inp + ((size_t)c * H + oh + ki) * W + kj0;
    const float *d0 = dout + (size_t)oh * OW;
    for (int ow = 0; ow < OW4; ow += 4) {
      v128_t vd[2], vx[4];
      for (int o = 0; o < ob; o++) vd[o] = wasm_v128_load(d0 + (size_t)o * OH * OW + ow);
      for (int k = 0; k < nk; k++) vx[k] = wasm_v128_load(row + ow + k);
      for (int o = 0; o < ob; o++)
        for (int k = 0; k < nk; k++) vacc[o][k] = wasm_f32x4_add(vacc[o][k], wasm_f32x4_mul(vd[o], vx[k]));
    }
    for (int ow = OW4; ow < OW; ow++)
      for (int o = 0; o < ob; o++)
        for (int k = 0; k < nk; k++) tail[o][k] += d0[(size_t)o * OH * OW + ow] * row[ow + k];
  }
  for (int o = 0; o < ob; o++)
    for (int k = 0; k < nk; k++) dweight[o * CKK + (c * K + ki) * K + kj0 + k] += hsum(vacc[o][k]) + tail[o][k];
}

void wt_conv2d_dweight_direct(float *dweight, const float *dout, const float *inp, int C, int H,
                              int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K;
  for (int o0 = 0; o0 < OC; o0 += 2) {
    const int ob = OC - o0 < 2 ? OC - o0 : 2;
    float *dw = dweight + (size_t)o0 * CKK;
    const float *d = dout + (size_t)o0 * OH * OW;
    for (int c = 0; c < C; c++)
      for (int ki = 0; ki < K; ki++)
        for (int kj0 = 0; kj0 < K; kj0 += 4) {
          const int nk = K - kj0 < 4 ? K - kj0 : 4;
#define DW(ob_, nk_) dweight_block(ob_, nk_, dw, d, inp, C, H, W, K, OH, OW, c, ki, kj0)
          if (ob == 2) {
            switch (nk) { case 4: DW(2, 4); break; case 3: DW(2, 3); break; case 2: DW(2, 2); break; default: DW(2, 1); break; }
          } else {
            switch (nk) { case 4: DW(1, 4); break; case 3: DW(1, 3); break; case 2: DW(1, 2); break; default: DW(1, 1); break; }
          }
#undef DW
        }
  }
}

/* Short runs (conv2's are 10 floats): whole vectors, then the rest, with no call per run. */
WT_INLINE void gather_run(float *col, float *img, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(col + i, wasm_v128_load(img + i));
  for (; i < n; i++) col[i] = img[i];
}
WT_INLINE void scatter_add_run(float *col, float *img, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(img + i, wasm_f32x4_add(wasm_v128_load(img + i), wasm_v128_load(col + i)));
  for (; i < n; i++) img[i] += col[i];
}

void wt_im2col(float *col, const float *inp, int C, int H, int W, int K) { im2col_runs(col, (float *)inp, C, H, W, K, gather_run); }
void wt_col2im_add(float *dinp, const float *dcol, int C, int H, int W, int K) {
  im2col_runs((float *)dcol, dinp, C, H, W, K, scatter_add_run);
}

void wt_add(float *y, const float *x, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_v128_load(x + i)));
  wt_add_ref(y + i, x + i, n - i);
}

void wt_relu(float *y, size_t n) {
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  size_t i = 0;
  /* pmax(x, 0) = x < 0 ? 0 : x: one cheap instruction on x86 (f32x4.max is a long sequence),
   * and like the reference it lets NaN through. */
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_pmax(wasm_v128_load(y + i), vzero));
  wt_relu_ref(y + i, n - i);
}

void wt_relu_gate(float *d, const float *out, size_t n) {
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t vmask = wasm_f32x4_gt(wasm_v128_load(out + i), vzero);
    wasm_v128_store(d + i, wasm_v128_and(wasm_v128_load(d + i), vmask));
  }
  wt_relu_gate_ref(d + i, out + i, n - i);
}

#endif /* WT_SIMD */

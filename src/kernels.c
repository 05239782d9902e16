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

void wt_add_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

#if !WT_SIMD

void wt_add(float *y, const float *x, size_t n) { wt_add_ref(y, x, n); }

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

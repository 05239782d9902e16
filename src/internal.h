/* Internal declarations shared by the engine's source files: the scalar type, the kernels and the
 * forward/backward pair of every layer. Not part of the public API. */
#ifndef WT_INTERNAL_H
#define WT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "webtrain.h"

/* The layers are written once for wt_real. The engine uses float; the gradient-check test builds
 * the same sources with -DWT_REAL=double so finite differences are not drowned by rounding. */
#ifndef WT_REAL
#define WT_REAL float
#endif
typedef WT_REAL wt_real;

/* SIMD only for the float engine built with -msimd128; everything else takes the scalar path. */
#if defined(__wasm_simd128__) && !defined(WT_REAL_IS_DOUBLE)
#define WT_SIMD 1
#else
#define WT_SIMD 0
#endif

/* ---- errors ---- */
wt_status wt_fail(wt_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- seeded PRNG (PCG32), identical in Node, browsers and native builds ---- */
typedef struct wt_rng {
  uint64_t state, inc;
} wt_rng;
void wt_rng_seed(wt_rng *rng, uint64_t seed, uint64_t stream);
uint32_t wt_rng_u32(wt_rng *rng);
float wt_rng_uniform(wt_rng *rng);                  /* [0, 1), 24 random bits */
uint32_t wt_rng_below(wt_rng *rng, uint32_t bound); /* unbiased in [0, bound) */

/* ---- kernels (kernels.c): a fast path and the scalar reference it is tested against ---- */

/* C[i][j] (+)= sum_k A[i*a_row + k*a_col] * B[k*ldb + j]. A is addressed by strides so the same
 * kernel serves A and A-transposed; B and C are row-major. accumulate=0 overwrites C. */
void wt_gemm_nn(int M, int N, int K, const wt_real *A, int a_row, int a_col, const wt_real *B,
                int ldb, wt_real *C, int ldc, int accumulate);
void wt_gemm_nn_ref(int M, int N, int K, const wt_real *A, int a_row, int a_col,
                    const wt_real *B, int ldb, wt_real *C, int ldc, int accumulate);

/* C[i][j] (+)= sum_k A[i*lda + k] * B[j*ldb + k]: dot products of rows (A times B-transposed). */
void wt_gemm_nt(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                wt_real *C, int ldc, int accumulate);
void wt_gemm_nt_ref(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                    wt_real *C, int ldc, int accumulate);

/* y[i] = max(y[i], 0) and its backward gate d[i] = out[i] > 0 ? d[i] : 0. */
void wt_relu(wt_real *y, size_t n);
void wt_relu_ref(wt_real *y, size_t n);
void wt_relu_gate(wt_real *d, const wt_real *out, size_t n);
void wt_relu_gate_ref(wt_real *d, const wt_real *out, size_t n);

/* Valid convolution, stride 1, of one image computed directly (no im2col): out (OC, OH, OW) =
 * weight (OC, C*K*K) applied to inp (C, H, W), plus bias (OC). The SIMD build uses it where the
 * im2col copy costs more memory traffic than it saves (conv1). */
void wt_conv2d_direct(wt_real *out, const wt_real *inp, const wt_real *weight, const wt_real *bias,
                      int C, int H, int W, int OC, int K);
void wt_conv2d_direct_ref(wt_real *out, const wt_real *inp, const wt_real *weight,
                          const wt_real *bias, int C, int H, int W, int OC, int K);

/* dweight (OC, C*K*K) += correlation of dout (OC, OH, OW) with inp (C, H, W), for one image,
 * without im2col: the weight gradient of wt_conv2d_direct. */
void wt_conv2d_dweight_direct(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                              int H, int W, int OC, int K);
void wt_conv2d_dweight_direct_ref(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                                  int H, int W, int OC, int K);

/* wt_conv2d_direct vectorized over output channels instead of columns, for OC = 8 or 16
 * (conv2): no im2col copy, and the same sums, bit for bit. wt is the weight transposed to
 * (C*K*K, OC) (wt_conv2d_transpose_weight); its reference is wt_conv2d_direct_ref. */
void wt_conv2d_direct_oc(wt_real *out, const wt_real *inp, const wt_real *wt, const wt_real *bias,
                         int C, int H, int W, int OC, int K);
void wt_conv2d_transpose_weight(wt_real *wt, const wt_real *weight, int OC, int CKK);

/* Inference, one image: pooled (OC, OH/2, OW/2) = 2x2 max-pool of ReLU(convolution), the same
 * values as wt_conv2d_direct_ref, wt_relu_ref and maxpool2_forward_ref in turn, without the
 * full-size activations or the argmax; OH and OW even. The _oc form takes the transposed weight
 * as wt_conv2d_direct_oc does. */
void wt_conv2d_relu_pool(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                         const wt_real *bias, int C, int H, int W, int OC, int K);
void wt_conv2d_relu_pool_oc(wt_real *pooled, const wt_real *inp, const wt_real *wt,
                            const wt_real *bias, int C, int H, int W, int OC, int K);
void wt_conv2d_relu_pool_ref(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                             const wt_real *bias, int C, int H, int W, int OC, int K);

/* col (C*K*K, OH*OW): row (c, ki, kj) holds the input pixels that kernel tap sees. */
void wt_im2col(wt_real *col, const wt_real *inp, int C, int H, int W, int K);
void wt_im2col_ref(wt_real *col, const wt_real *inp, int C, int H, int W, int K);
/* Its adjoint: dinp (C, H, W) += the columns of dcol scattered back to their pixels. */
void wt_col2im_add(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K);
void wt_col2im_add_ref(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K);

/* y[i] += x[i] */
void wt_add(float *y, const float *x, size_t n);
void wt_add_ref(float *y, const float *x, size_t n);

/* ---- general convolution kernels (conv_kernels.c), for the engine's conv layer: any C, OC,
 * square K, stride and zero padding; the interface and its buffer contract are in the header ---- */
#include "conv_kernels.h"

/* ---- layers: outputs first, dimensions last; backward ACCUMULATES into every d-buffer ---- */

/* Valid convolution, stride 1: direct (SIMD) or via im2col. col is scratch of (C*K*K, OH*OW)
 * for one image. */
void conv2d_forward(wt_real *out, wt_real *col, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int C, int H, int W, int OC, int K);
/* Inference: pooled (B, OC, OH/2, OW/2) = maxpool2(relu(conv)), the values conv2d_forward,
 * wt_relu and maxpool2_forward give, computed in one pass. scratch as col. */
void conv2d_relu_pool_forward(wt_real *pooled, wt_real *scratch, const wt_real *inp,
                              const wt_real *weight, const wt_real *bias, int B, int C, int H,
                              int W, int OC, int K);
/* dinp may be NULL (the first layer needs no input gradient). dcol: scratch like col. */
void conv2d_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, wt_real *col,
                     wt_real *dcol, const wt_real *dout, const wt_real *inp,
                     const wt_real *weight, int B, int C, int H, int W, int OC, int K);

/* 2x2 max-pool, stride 2; argmax (0..3 within the window, first maximum wins) is kept. */
void maxpool2_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                      int W);
void maxpool2_forward_ref(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                          int W);
void maxpool2_backward(wt_real *dinp, const wt_real *dout, const uint8_t *argmax, int B, int C,
                       int H, int W);

/* out (B, O) = inp (B, I) x weight (O, I)^T + bias (O). */
void linear_forward(wt_real *out, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int I, int O);
void linear_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, const wt_real *dout,
                     const wt_real *inp, const wt_real *weight, int B, int I, int O);

/* Softmax cross-entropy over (B, V) logits; returns the SUM of the B losses. */
double crossentropy_forward(const wt_real *logits, const uint8_t *targets, int B, int V);
/* dlogits += scale * (softmax - onehot). */
void crossentropy_backward(wt_real *dlogits, const wt_real *logits, const uint8_t *targets,
                           wt_real scale, int B, int V);

/* PyTorch's Adam on flat buffers; t is the step number after increment (1 for the first). */
void adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                 const wt_adam_config *config, int32_t t);
void adam_update_ref(float *params, const float *grads, float *m, float *v, size_t n,
                     const wt_adam_config *config, int32_t t);

/* Decodes CIFAR records records[indices[i]] into normalised NCHW floats and their labels. */
void cifar_decode_batch(float *images, uint8_t *labels, const uint8_t *records,
                        const uint32_t *indices, int batch);

#endif /* WT_INTERNAL_H */

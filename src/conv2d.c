/* 2-D convolution (valid, stride 1), per image: direct SIMD kernels where they pay, else im2col
 * followed by a matrix product. */
#include "internal.h"

/* Few channels on a large image (conv1): the im2col copy would be K*K times the input, and
 * moving it costs more than the matrix product saves, so the SIMD build convolves directly,
 * vectorized over output columns. */
static int use_direct(int C, int H, int W, int OC, int K) { return WT_SIMD && C * H * W > 4 * C * K * K * OC; }
#if WT_SIMD
/* Otherwise 8 or 16 output channels (conv2) are two or four vectors: the SIMD build convolves
 * directly over them, with no im2col either. */
static int use_direct_oc(int OC) { return OC == 16 || OC == 8; }
#endif

void conv2d_forward(wt_real *out, wt_real *col, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int C, int H, int W, int OC, int K) {
  /* out (B, OC, OH, OW); inp (B, C, H, W); weight (OC, C*K*K); bias (OC) */
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  if (use_direct(C, H, W, OC, K)) {
    for (int b = 0; b < B; b++) {
      wt_conv2d_direct(out + (size_t)b * OC * P, inp + (size_t)b * C * H * W, weight, bias, C, H, W, OC, K);
    }
    return;
  }
#if WT_SIMD
  if (use_direct_oc(OC)) {
    wt_conv2d_transpose_weight(col, weight, OC, CKK);
    for (int b = 0; b < B; b++) {
      wt_conv2d_direct_oc(out + (size_t)b * OC * P, inp + (size_t)b * C * H * W, col, bias, C, H, W, OC, K);
    }
    return;
  }
#endif
  for (int b = 0; b < B; b++) {
    wt_real *out_b = out + (size_t)b * OC * P;
    wt_im2col(col, inp + (size_t)b * C * H * W, C, H, W, K);
    for (int o = 0; o < OC; o++)
      for (int p = 0; p < P; p++) out_b[(size_t)o * P + p] = bias[o];
    wt_gemm_nn(OC, P, CKK, weight, CKK, 1, col, P, out_b, P, 1);
  }
}

void conv2d_relu_pool_forward(wt_real *pooled, wt_real *scratch, const wt_real *inp,
                              const wt_real *weight, const wt_real *bias, int B, int C, int H,
                              int W, int OC, int K) {
  const int PP = ((H - K + 1) / 2) * ((W - K + 1) / 2);
#if WT_SIMD
  if (!use_direct(C, H, W, OC, K) && use_direct_oc(OC)) {
    wt_conv2d_transpose_weight(scratch, weight, OC, C * K * K);
    for (int b = 0; b < B; b++) {
      wt_conv2d_relu_pool_oc(pooled + (size_t)b * OC * PP, inp + (size_t)b * C * H * W, scratch, bias, C, H, W, OC, K);
    }
    return;
  }
#endif
  (void)scratch;
  for (int b = 0; b < B; b++) {
    wt_conv2d_relu_pool(pooled + (size_t)b * OC * PP, inp + (size_t)b * C * H * W, weight, bias, C, H, W, OC, K);
  }
}

void conv2d_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, wt_real *col,
                     wt_real *dcol, const wt_real *dout, const wt_real *inp,
                     const wt_real *weight, int B, int C, int H, int W, int OC, int K) {
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  for (int b = 0; b < B; b++) {
    const wt_real *dout_b = dout + (size_t)b * OC * P;
    for (int o = 0; o < OC; o++) {
      wt_real sum = 0;
      for (int p = 0; p < P; p++) sum += dout_b[(size_t)o * P + p];
      dbias[o] += sum;
    }
    if (use_direct(C, H, W, OC, K)) {
      wt_conv2d_dweight_direct(dweight, dout_b, inp + (size_t)b * C * H * W, C, H, W, OC, K);
    } else {
      /* The forward's columns are recomputed rather than kept for the whole batch. */
      wt_im2col(col, inp + (size_t)b * C * H * W, C, H, W, K);
      wt_gemm_nt(OC, CKK, P, dout_b, P, col, P, dweight, CKK, 1);
    }
    if (dinp) {
      /* dcol (CKK, P) = weight^T (CKK, OC) x dout_b (OC, P) */
      wt_gemm_nn(CKK, P, OC, weight, 1, CKK, dout_b, P, dcol, P, 0);
      wt_col2im_add(dinp + (size_t)b * C * H * W, dcol, C, H, W, K);
    }
  }
}

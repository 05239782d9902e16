/* Fully connected layer, PyTorch's nn.Linear: weight (O, I), bias (O). */
#include "internal.h"

void linear_forward(wt_real *out, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int I, int O) {
  /* out (B, O); inp (B, I) */
  for (int b = 0; b < B; b++)
    for (int o = 0; o < O; o++) out[(size_t)b * O + o] = bias[o];
  wt_gemm_nt(B, O, I, inp, I, weight, I, out, O, 1);
}

void linear_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, const wt_real *dout,
                     const wt_real *inp, const wt_real *weight, int B, int I, int O) {
  for (int b = 0; b < B; b++)
    for (int o = 0; o < O; o++) dbias[o] += dout[(size_t)b * O + o];
  /* dweight (O, I) += dout^T (O, B) x inp (B, I) */
  wt_gemm_nn(O, I, B, dout, 1, O, inp, I, dweight, I, 1);
  /* dinp (B, I) += dout (B, O) x weight (O, I) */
  if (dinp) wt_gemm_nn(B, I, O, dout, O, 1, weight, I, dinp, I, 1);
}

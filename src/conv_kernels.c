/* General convolution kernels: any channels, square kernel, stride and zero padding. The scalar
 * references; the SIMD kernels come with their tests (placeholder: the references serve). */
#include <string.h>

#include "internal.h"

void wt_conv_forward_ref(const wt_conv_shape *s, int B, wt_real *out, const wt_real *inp, const wt_real *weight,
                         const wt_real *bias) {
  const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < s->OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          wt_real sum = bias ? bias[o] : 0;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++) {
              const int ih = oh * s->stride - s->pad + ki;
              if (ih < 0 || ih >= H) continue;
              for (int kj = 0; kj < K; kj++) {
                const int iw = ow * s->stride - s->pad + kj;
                if (iw < 0 || iw >= W) continue;
                sum += weight[((size_t)(o * C + c) * K + ki) * K + kj] * inp[(((size_t)b * C + c) * H + ih) * W + iw];
              }
            }
          out[(((size_t)b * s->OC + o) * OH + oh) * OW + ow] = sum;
        }
}

void wt_conv_backward_params_ref(const wt_conv_shape *s, int B, wt_real *dweight, wt_real *dbias, const wt_real *dout,
                                 const wt_real *inp) {
  const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < s->OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const wt_real d = dout[(((size_t)b * s->OC + o) * OH + oh) * OW + ow];
          if (dbias) dbias[o] += d;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++) {
              const int ih = oh * s->stride - s->pad + ki;
              if (ih < 0 || ih >= H) continue;
              for (int kj = 0; kj < K; kj++) {
                const int iw = ow * s->stride - s->pad + kj;
                if (iw < 0 || iw >= W) continue;
                dweight[((size_t)(o * C + c) * K + ki) * K + kj] += d * inp[(((size_t)b * C + c) * H + ih) * W + iw];
              }
            }
        }
}

void wt_conv_backward_input_ref(const wt_conv_shape *s, int B, wt_real *dinp, const wt_real *dout, const wt_real *weight) {
  const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < s->OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const wt_real d = dout[(((size_t)b * s->OC + o) * OH + oh) * OW + ow];
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++) {
              const int ih = oh * s->stride - s->pad + ki;
              if (ih < 0 || ih >= H) continue;
              for (int kj = 0; kj < K; kj++) {
                const int iw = ow * s->stride - s->pad + kj;
                if (iw < 0 || iw >= W) continue;
                dinp[(((size_t)b * C + c) * H + ih) * W + iw] += d * weight[((size_t)(o * C + c) * K + ki) * K + kj];
              }
            }
        }
}

#ifndef WT_REAL_IS_DOUBLE
size_t wt_conv_scratch_floats(const wt_conv_shape *s, int B) {
  (void)s, (void)B;
  return 0;
}
void wt_conv_forward(const wt_conv_shape *s, int B, float *out, const float *inp, const float *weight, const float *bias,
                     float *scratch) {
  (void)scratch;
  wt_conv_forward_ref(s, B, out, inp, weight, bias);
}
void wt_conv_backward_params(const wt_conv_shape *s, int B, float *dweight, float *dbias, const float *dout,
                             const float *inp, float *scratch) {
  (void)scratch;
  wt_conv_backward_params_ref(s, B, dweight, dbias, dout, inp);
}
void wt_conv_backward_input(const wt_conv_shape *s, int B, float *dinp, const float *dout, const float *weight,
                            float *scratch) {
  (void)scratch;
  wt_conv_backward_input_ref(s, B, dinp, dout, weight);
}
#endif

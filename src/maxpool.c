/* 2x2 max-pooling with stride 2, keeping each window's argmax for the backward pass. */
#include "internal.h"

void maxpool2_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                      int W) {
  /* out (B, C, H/2, W/2); argmax like out, 0..3 = (row, col) offset 2*dy + dx in the window */
  const int OH = H / 2, OW = W / 2;
  for (size_t plane = 0; plane < (size_t)B * C; plane++) {
    const wt_real *in = inp + plane * H * W;
    wt_real *o = out + plane * OH * OW;
    uint8_t *a = argmax + plane * OH * OW;
    for (int i = 0; i < OH; i++) {
      const wt_real *r0 = in + (2 * i) * W, *r1 = r0 + W;
      for (int j = 0; j < OW; j++) {
        /* Strict > keeps the first maximum in scan order, as PyTorch does on ties. */
        wt_real best = r0[2 * j];
        uint8_t at = 0;
        if (r0[2 * j + 1] > best) best = r0[2 * j + 1], at = 1;
        if (r1[2 * j] > best) best = r1[2 * j], at = 2;
        if (r1[2 * j + 1] > best) best = r1[2 * j + 1], at = 3;
        o[i * OW + j] = best;
        a[i * OW + j] = at;
      }
    }
  }
}

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

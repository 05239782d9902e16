/* Thin wrappers for `npm run bench:kernels` (src/node/bench-kernels.js): buffers for one
 * convolution shape, and one pass run n times. Built only into the bench module
 * (build/wasm/bench_kernels.wasm), beside the whole engine. */
#include <stdlib.h>

#include "internal.h"

static struct {
  wt_conv_shape s;
  int B;
  float *buffer; /* one allocation: the tensors below, then scratch */
  float *inp, *weight, *bias, *out, *dout, *dinp, *dweight, *dbias, *scratch;
} bench;

/* Allocates and fills the tensors of a B-image convolution. Returns 0, or -1 for a shape with no
 * output or no memory. */
WT_API int32_t wt_bench_conv_prepare(int32_t C, int32_t H, int32_t W, int32_t OC, int32_t K, int32_t stride,
                                     int32_t pad, int32_t B) {
  free(bench.buffer);
  bench.buffer = NULL;
  wt_conv_shape s = {C, H, W, OC, K, stride, pad, 0, 0};
  if (B < 1 || !wt_conv_shape_init(&s)) return -1;
  const size_t ni = (size_t)B * C * H * W, nw = (size_t)OC * C * K * K, no = (size_t)B * OC * s.OH * s.OW;
  const size_t sizes[] = {ni, nw, OC, no, no, ni, nw, OC, wt_conv_scratch_floats(&s, B)};
  size_t total = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
  float *p = bench.buffer = malloc(sizeof(float) * total);
  if (!p) return -1;
  float **slots[] = {&bench.inp, &bench.weight, &bench.bias, &bench.out, &bench.dout,
                     &bench.dinp, &bench.dweight, &bench.dbias, &bench.scratch};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) *slots[i] = p, p += sizes[i];
  /* Values of a trained net's order of magnitude; nothing near the subnormals. */
  uint32_t x = 12345;
  for (size_t i = 0; i < total; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    bench.buffer[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
  }
  bench.s = s, bench.B = B;
  return 0;
}

/* Runs pass 0 (forward), 1 (backward params) or 2 (backward input) `iterations` times and
 * returns the floating-point operations of a direct convolution that does the same:
 * 2 * B * OC * OH * OW * C * K * K per pass. */
WT_API double wt_bench_conv_run(int32_t pass, int32_t iterations) {
  const wt_conv_shape *s = &bench.s;
  for (int32_t i = 0; i < iterations; i++) {
    switch (pass) {
      case 0: wt_conv_forward(s, bench.B, bench.out, bench.inp, bench.weight, bench.bias, NULL, bench.scratch); break;
      case 1: wt_conv_backward_params(s, bench.B, bench.dweight, bench.dbias, bench.dout, bench.inp, bench.scratch); break;
      default: wt_conv_backward_input(s, bench.B, bench.dinp, bench.dout, bench.weight, NULL, bench.scratch); break;
    }
  }
  return 2.0 * bench.B * s->OC * s->OH * s->OW * s->C * s->K * s->K * iterations;
}

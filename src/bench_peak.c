/* The machine's multiply-add peak for the benchmarks to divide by: 12 independent chains of
 * multiply then add, enough to cover both instructions' latency on x86 and Arm, so the loop runs
 * at the throughput of the floating-point pipes. Baseline SIMD128 has no fused multiply-add, so
 * this is what a convolution's inner loop can reach at best. */
#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

/* Read at run time, so the compiler can neither fold x * 1 nor precompute the chains. */
static volatile float bench_factor = 0.999f, bench_term = 0.001f;
static volatile float bench_sink;

WT_API double wt_bench_peak(int32_t iterations) {
#if WT_SIMD
  const v128_t vm = wasm_f32x4_splat(bench_factor), va = wasm_f32x4_splat(bench_term);
  v128_t vacc[12]; /* unrolled whole: 12 registers, plus vm and va */
  for (int j = 0; j < 12; j++) vacc[j] = wasm_f32x4_splat((float)j);
  for (int32_t i = 0; i < iterations; i++)
    for (int j = 0; j < 12; j++) vacc[j] = wasm_f32x4_add(wasm_f32x4_mul(vacc[j], vm), va);
  v128_t vsum = vacc[0];
  for (int j = 1; j < 12; j++) vsum = wasm_f32x4_add(vsum, vacc[j]);
  bench_sink = wasm_f32x4_extract_lane(vsum, 0) + wasm_f32x4_extract_lane(vsum, 3);
  return 12.0 * 4 * 2 * iterations; /* 12 chains x 4 lanes x (multiply + add) */
#else
  const float m = bench_factor, a = bench_term;
  float acc[12];
  for (int j = 0; j < 12; j++) acc[j] = (float)j;
  for (int32_t i = 0; i < iterations; i++)
    for (int j = 0; j < 12; j++) acc[j] = acc[j] * m + a;
  float sum = 0.0f;
  for (int j = 0; j < 12; j++) sum += acc[j];
  bench_sink = sum;
  return 12.0 * 2 * iterations;
#endif
}

/* PCG32 (O'Neill, pcg-random.org): small, fast, and the same numbers on every platform. */
#include "internal.h"

void wt_rng_seed(wt_rng *rng, uint64_t seed, uint64_t stream) {
  rng->state = 0;
  rng->inc = (stream << 1u) | 1u;
  wt_rng_u32(rng);
  rng->state += seed;
  wt_rng_u32(rng);
}

uint32_t wt_rng_u32(wt_rng *rng) {
  const uint64_t old = rng->state;
  rng->state = old * 6364136223846793005ULL + rng->inc;
  const uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  const uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float wt_rng_uniform(wt_rng *rng) { return (float)(wt_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

uint32_t wt_rng_below(wt_rng *rng, uint32_t bound) {
  /* Lemire's multiply-shift with rejection of the biased low range. */
  uint64_t product = (uint64_t)wt_rng_u32(rng) * bound;
  uint32_t low = (uint32_t)product;
  if (low < bound) {
    const uint32_t threshold = (uint32_t)(-bound) % bound;
    while (low < threshold) {
      product = (uint64_t)wt_rng_u32(rng) * bound;
      low = (uint32_t)product;
    }
  }
  return (uint32_t)(product >> 32);
}

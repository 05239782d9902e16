// What the PyTorch comparisons share: the relative L2 error of a tensor and the two Wasm builds.

/** ||got - want|| / ||want|| (L2 norms). */
export function relErr(got, want) {
  let d = 0, r = 0;
  for (let i = 0; i < want.length; i++) { d += (got[i] - want[i]) ** 2; r += want[i] ** 2; }
  return Math.sqrt(d / Math.max(r, 1e-30));
}

/** The shipped SIMD module and the scalar build, both held to the same fixtures. */
export const BUILDS = Object.freeze([
  ['SIMD', new URL('../../web/webtrain.wasm', import.meta.url)],
  ['scalar', new URL('../../build/wasm/webtrain-scalar.wasm', import.meta.url)],
]);

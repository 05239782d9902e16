// `npm run --silent bench:kernels [-- --reps N]`: GFLOP/s of the general convolution kernels
// (src/conv_kernels.c) on a table of shapes, forward, backward params and backward input, each
// as a fraction of the Wasm SIMD128 multiply-add peak (wt_bench_peak) measured in the same
// process. Time is this process's CPU time (user + system), not wall time: on a shared machine
// the kernels are then not charged for other processes' turns on the cores. Within a repetition
// the peak is timed right before and right after each pass, and the pass is divided by their
// geometric mean, so a change in machine speed hits both; the fractions are medians over
// repetitions. FLOPs are a direct convolution's,
// 2*B*OC*OH*OW*C*K*K per pass, whatever the kernel does. Asserts nothing.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { createEngine } from '../../web/engine.js';

const file = fileURLToPath(new URL('../../build/wasm/bench_kernels.wasm', import.meta.url));
if (!existsSync(file)) {
  console.error(`bench:kernels: ${file} missing: run npm run build`);
  process.exit(1);
}
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : process.argv[i + 1];
};
const REPS = Number(arg('--reps', 11));
const ONLY = arg('--only', null); // a substring of the shape's label
const MS = 15; // CPU time per measurement

const { wasm } = await createEngine(readFileSync(file));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

// [label, C, H, W, OC, K, stride, pad, B]
const shapes = [];
for (const hw of [32, 16, 8])
  for (const c of [16, 32, 64, 96]) shapes.push([`3x3 same ${c}->${c} ${hw}x${hw}`, c, hw, hw, c, 3, 1, 1, 8]);
// The fast preset's convs (web/models/fast.txt): odd sides, where Winograd's tiles overhang.
shapes.push(['fast conv1 3x3 24->32 31x31', 24, 31, 31, 32, 3, 1, 1, 8]);
shapes.push(['fast conv3 3x3 32->96 15x15', 32, 15, 15, 96, 3, 1, 1, 8]);
shapes.push(['fast conv4 3x3 96->96 7x7', 96, 7, 7, 96, 3, 1, 1, 8]);
shapes.push(['fast conv6 3x3 96->96 3x3', 96, 3, 3, 96, 3, 1, 1, 8]);
shapes.push(['3x3 stride 2 pad 1 32->64 32x32', 32, 32, 32, 64, 3, 2, 1, 8]);
shapes.push(['1x1 64->64 16x16', 64, 16, 16, 64, 1, 1, 0, 8]);
shapes.push(['1x1 stride 2 32->64 32x32 (projection)', 32, 32, 32, 64, 1, 2, 0, 8]);
shapes.push(['3x3 same 3->32 32x32 (first layer)', 3, 32, 32, 32, 3, 1, 1, 8]);
shapes.push(['5x5 valid 32->32 16x16', 32, 16, 16, 32, 5, 1, 0, 8]);
shapes.push(['5x5 valid 3->6 32x32 (SimpleCNN conv1)', 3, 32, 32, 6, 5, 1, 0, 8]);
shapes.push(['5x5 valid 6->16 14x14 (SimpleCNN conv2)', 6, 14, 14, 16, 5, 1, 0, 8]);

// The n for which one call of fn(n) lasts about MS.
const cpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
function calibrate(fn) {
  let n = 1;
  for (;;) {
    const t0 = cpuMs();
    fn(n);
    const ms = cpuMs() - t0;
    if (ms >= MS / 4) return Math.max(1, Math.round(n * MS / ms));
    n *= 4;
  }
}
function rate(fn, n) { // FLOP per second
  const t0 = cpuMs();
  const flops = fn(n);
  return flops / ((cpuMs() - t0) / 1000);
}

const peak = (n) => wasm.wt_bench_peak(n);
for (let i = 0; i < 5; i++) peak(1e6); // tier up to optimised code before timing anything
const peakN = calibrate(peak);
const PASSES = ['fwd', 'bwd params', 'bwd input'];

console.log(`Wasm SIMD128 convolution kernels, batch 8; median of ${REPS} repetitions, each pass timed between two peak runs, in CPU time`);
console.log('');
console.log('| shape | fwd GFLOP/s | bwd params | bwd input | fwd / peak | bwd params / peak | bwd input / peak |');
console.log('|---|---|---|---|---|---|---|');
const peaks = [];
for (const [label, ...dims] of shapes) {
  if (ONLY && !label.includes(ONLY)) continue;
  if (wasm.wt_bench_conv_prepare(...dims) !== 0) throw new Error(`bench:kernels: cannot prepare ${label}`);
  const gflops = [], fractions = [];
  for (let pass = 0; pass < 3; pass++) {
    const run = (n) => wasm.wt_bench_conv_run(pass, n);
    for (let i = 0; i < 3; i++) run(1);
    const n = calibrate(run);
    const g = [], f = [];
    for (let r = 0; r < REPS; r++) {
      // The peak before and after the pass: a change of machine speed mid-way hits both sides.
      const p0 = rate(peak, peakN), k = rate(run, n), p1 = rate(peak, peakN);
      peaks.push(p0, p1), g.push(k), f.push(k / Math.sqrt(p0 * p1));
    }
    gflops.push(median(g) / 1e9), fractions.push(median(f));
  }
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  console.log(`| ${label} | ${gflops.map((x) => x.toFixed(1)).join(' | ')} | ${fractions.map(pct).join(' | ')} |`);
}
console.log('');
console.log(`peak (wt_bench_peak, 12 chains of f32x4 mul + add): median ${(median(peaks) / 1e9).toFixed(1)} GFLOP/s, range ${(Math.min(...peaks) / 1e9).toFixed(1)}-${(Math.max(...peaks) / 1e9).toFixed(1)}`);

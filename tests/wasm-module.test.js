// The shipped module: built with SIMD (its code holds v128 arithmetic, the scalar build's does
// not), small, and loadable by the runtime's own probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { wasmSimdSupported, createEngine } from '../web/engine.js';

const shipped = fileURLToPath(new URL('../web/webtrain.wasm', import.meta.url));
const scalar = fileURLToPath(new URL('../build/wasm/webtrain-scalar.wasm', import.meta.url));

/** Counts SIMD arithmetic instructions in a module's disassembly (binaryen's wasm-dis). */
function simdOps(file) {
  const r = spawnSync('wasm-dis', [file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `wasm-dis ${file} failed (binaryen comes with emscripten): ${r.stderr}`);
  return (r.stdout.match(/\(f32x4\.(mul|add|pmax)/g) ?? []).length;
}

test('the shipped webtrain.wasm uses SIMD128 and the scalar build does not', (t) => {
  const simd = simdOps(shipped), plain = simdOps(scalar);
  t.diagnostic(`f32x4 mul/add/pmax instructions: shipped ${simd}, scalar build ${plain}`);
  assert.ok(simd >= 20, `expected SIMD arithmetic in ${shipped}, found ${simd}`);
  assert.equal(plain, 0);
});

// The seed's SimpleCNN-only engine fit in 100 KB; the general engine (every layer type, the
// planner, checkpoint v2, general conv kernels) gets 256 KB: still a fraction of one CIFAR-10 file.
const BUDGET = 256 * 1024;

test('the shipped module is within its 256 KB budget, imports only the host clock and the growth hook, and instantiates', async (t) => {
  const size = statSync(shipped).size;
  t.diagnostic(`webtrain.wasm: ${size} bytes`);
  assert.ok(size < BUDGET, `webtrain.wasm is ${size} bytes, over the ${BUDGET}-byte budget`);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(shipped))).map((i) => `${i.module}.${i.name}`);
  assert.deepEqual(imports.sort(), ['env.emscripten_notify_memory_growth', 'env.wt_clock_ms']);
  assert.equal(wasmSimdSupported(), true);
  const engine = await createEngine(readFileSync(shipped));
  assert.match(engine.lastError(), /no error/);
});

// Runs the C test programs: the public API end to end and the double-precision gradient check
// (native build), the SIMD kernels against their scalar references (Wasm build, under this Node),
// the SIMD GELU against its double reference,
// and the general convolution kernels both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = (rel) => fileURLToPath(new URL(`../build/${rel}`, import.meta.url));

function runProgram(t, command, args) {
  assert.ok(existsSync(args[0] ?? command), `${args[0] ?? command} missing: run npm run build`);
  const r = spawnSync(command, args, { encoding: 'utf8' });
  for (const line of `${r.stdout}${r.stderr}`.trim().split('\n')) t.diagnostic(line);
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
}

test('the C API end to end: specs, training, the gradient tree, checkpoints v1 and v2, refusals', (t) => {
  runProgram(t, built('native/test_engine'), []);
});

test('every layer backward matches double-precision finite differences', (t) => {
  runProgram(t, built('native/test_gradcheck'), []);
});

test('SIMD kernels agree with their scalar references on every tail size', (t) => {
  runProgram(t, process.execPath, [built('wasm/test_kernels.cjs')]);
});

test('SIMD GELU (both modes, forward and backward) is within its stated ulps of the double reference, every tail size', (t) => {
  runProgram(t, process.execPath, [built('wasm/test_gelu.cjs')]);
});

test('general convolution kernels agree with their references on every tail size', (t) => {
  runProgram(t, process.execPath, [built('wasm/test_conv_kernels.cjs')]);
});

test('general convolution references are each other\'s adjoints (double precision)', (t) => {
  runProgram(t, built('native/test_conv_kernels'), []);
});

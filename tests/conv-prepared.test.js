// A Winograd conv derives its transformed weights once per call of the engine and keeps them for
// the call's other blocks (wt_layer_prepared). These tests hold that cache to what deriving them
// afresh gives, bit for bit: across blocks of one call, and after the parameters change between
// calls (an update, a load, a write through paramsView).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
// Two 3x3 convs of >= 16 channels on an 8x8 map take Winograd (forward and input gradient);
// blocks of 2 images, so a call of 6 images runs 3 blocks.
const NET = `@ghost_batch 2
conv(24, 3, padding=1, bias=false)
gelu
conv(20, 3, padding=1)`;
const FORMAT = { channels: 16, height: 8, width: 8, classes: 2 };
const IMAGE = 16 * 8 * 8, OUT = 20 * 8 * 8;

function noise(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}
const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a, b) => a.length === b.length && bits(a).equals(bits(b));

test('a conv\'s prepared weights serve every block of a call and follow the parameters between calls', async () => {
  const engine = await createEngine(wasm);
  const make = (seed) => createModelFromDescription(engine, NET, FORMAT, { maxBatch: 6, seed, head: false });
  const model = make(1);
  const x = noise(6 * IMAGE, 7);
  const whole = model.run(x, 6).logits;
  // The same images one block per call: each call derives the weights afresh.
  const parts = [0, 1, 2].map((i) => model.run(x.subarray(2 * i * IMAGE, 2 * (i + 1) * IMAGE), 2).logits);
  assert.ok(sameBits(whole, Float32Array.from(parts.flatMap((p) => [...p]))), 'the blocks after the first of a call used other weights');

  // New parameters written between calls reach the forward and the input gradient.
  const other = make(2);
  model.paramsView().set(other.params());
  const after = model.run(x, 6).logits;
  assert.ok(!sameBits(after, whole), 'the new parameters changed nothing');
  assert.ok(sameBits(after, other.run(x, 6).logits), 'the forward used the weights of before the change');
  const dy = noise(2 * OUT, 9);
  const mine = model.runBackward(x.subarray(0, 2 * IMAGE), 2, dy), theirs = other.runBackward(x.subarray(0, 2 * IMAGE), 2, dy);
  assert.ok(sameBits(mine.dx, theirs.dx), 'the input gradient used the weights of before the change');
  model.paramsView().set(make(3).params());
  assert.ok(!sameBits(model.runBackward(x.subarray(0, 2 * IMAGE), 2, dy).dx, mine.dx), 'the input gradient did not follow a second change');
  for (const m of [model, other]) m.destroy();
});

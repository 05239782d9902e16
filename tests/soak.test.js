// Many epochs over a small generated set: Wasm memory stops growing after the first epoch, and
// evaluating between epochs changes nothing in training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { TrainingRun } from '../web/trainer.js';
import { makeRecords } from './helpers/synthetic.js';
import { createSimpleCnn } from './helpers/models.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));

async function train(testRecords, epochs, onEpoch = () => {}) {
  const engine = await createEngine(wasm);
  const train = engine.loadDataset([{ name: 'train', bytes: makeRecords(640, 21) }]);
  const test = engine.loadDataset([{ name: 'test', bytes: testRecords }]);
  const model = createSimpleCnn(engine, { maxBatch: 32, seed: 3 });
  const run = new TrainingRun(engine, model, { train, test, epochs, batchSize: 32, logEvery: 5 });
  const losses = [];
  while (!run.done) {
    for (const e of await run.runStep()) {
      if (e.event === 'loss') losses.push(e.loss);
      else onEpoch(engine, e);
    }
  }
  return { losses, params: model.params() };
}

test('Wasm memory and heap use are flat after the first epoch over 30 epochs', async (t) => {
  const memory = [], heap = [];
  await train(makeRecords(200, 22), 30, (engine) => {
    memory.push(engine.memoryBytes);
    heap.push(engine.heapBytesInUse);
  });
  t.diagnostic(`after epochs 1, 2, 30: Wasm memory ${memory[0]}, ${memory[1]}, ${memory.at(-1)} bytes; heap in use ${heap[0]}, ${heap[1]}, ${heap.at(-1)} bytes`);
  assert.equal(memory.length, 30);
  assert.ok(heap[0] > 1e6, 'heap use not measured'); // the model's arena alone is megabytes
  assert.ok(memory.every((s) => s === memory[0]), `memory grew: ${[...new Set(memory)]}`);
  assert.ok(heap.every((s) => s === heap[0]), `heap use changed: ${[...new Set(heap)]}`);
});

test('evaluation between epochs leaves training untouched', async () => {
  // Different test sets mean different evaluation work; training must not see any of it.
  const a = await train(makeRecords(50, 30), 4);
  const b = await train(makeRecords(900, 31), 4);
  assert.deepEqual(b.losses, a.losses);
  assert.deepEqual(b.params, a.params);
});

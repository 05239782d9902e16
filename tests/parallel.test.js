// Data-parallel training: the batch split, determinism for a seed and worker count, and
// agreement with one worker up to float summation order.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { splitBatch } from '../web/parallel.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

test('a batch splits into contiguous slices covering it exactly', () => {
  assert.deepEqual(splitBatch(64, 2), [{ offset: 0, count: 32 }, { offset: 32, count: 32 }]);
  assert.deepEqual(splitBatch(7, 3), [{ offset: 0, count: 3 }, { offset: 3, count: 2 }, { offset: 5, count: 2 }]);
  assert.deepEqual(splitBatch(1, 2), [{ offset: 0, count: 1 }, { offset: 1, count: 0 }]);
  // The leader takes 1/16 of each peer's share: it starts first and needs no reply to start.
  assert.deepEqual(splitBatch(64, 2, { leaderBonus: true }), [{ offset: 0, count: 34 }, { offset: 34, count: 30 }]);
  assert.deepEqual(splitBatch(16, 2, { leaderBonus: true }), [{ offset: 0, count: 8 }, { offset: 8, count: 8 }]);
  assert.deepEqual(splitBatch(64, 3, { leaderBonus: true }), [{ offset: 0, count: 24 }, { offset: 24, count: 20 }, { offset: 44, count: 20 }]);
});

let data;
before(() => {
  data = writeSyntheticCifar(path.join(tempDir('webtrain-par-'), 'data'), { perTrainFile: 700, test: 300, seed: 11 });
});

const run = (workers) => {
  // 3500 records at batch 48: the last batch (44) splits unevenly over 3 workers.
  const r = runCli(['--data', data, '--batch-size', '48', '--epochs', '2', '--json', '--workers', String(workers)]);
  assert.equal(r.status, 0, r.stderr);
  return jsonEvents(r).map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...rest }) => rest);
};

test('two and three workers: identical run to run, and the same training as one worker', () => {
  const one = run(1);
  const two = run(2);
  assert.deepEqual(run(2), two, 'two workers, same seed, different results');
  const three = run(3);
  for (const other of [two, three]) {
    assert.equal(other.length, one.length);
    other.forEach((e, i) => {
      if (e.event === 'loss') assert.ok(Math.abs(e.loss - one[i].loss) < 2e-3 * one[i].loss, `loss ${e.loss} vs ${one[i].loss}`);
      else assert.ok(Math.abs(e.correct - one[i].correct) <= 3, `accuracy ${e.correct} vs ${one[i].correct}`);
    });
  }
  assert.ok(two.at(-1).test_accuracy > 0.6);
});

test('a peer worker that stops fails the step with its name instead of hanging', async () => {
  const { readFileSync } = await import('node:fs');
  const { createEngine } = await import('../web/engine.js');
  const { DataParallelStepper } = await import('../web/parallel.js');
  const { startPeerWorkers } = await import('../src/node/peer.js');
  const { makeRecords } = await import('./helpers/synthetic.js');
  const module = await WebAssembly.compile(readFileSync(new URL('../web/webtrain.wasm', import.meta.url)));
  const engine = await createEngine(module);
  const trainFiles = [{ name: 'train', bytes: makeRecords(64, 2) }];
  const train = engine.loadDataset(trainFiles);
  const model = engine.createModel({ maxBatch: 32 });
  const endpoints = startPeerWorkers(1);
  const stepper = new DataParallelStepper(engine, model, train, endpoints);
  await stepper.init({ module, trainFiles, seed: 0, shuffle: true, lr: 0.001 });
  const permPtr = engine.alloc(4 * train.count);
  engine.writePermutation(permPtr, train.count, 0, 0);
  assert.ok(Number.isFinite(await stepper.trainStep(permPtr, 0, 32, 0)));
  endpoints[0].close(); // as if the thread were killed
  while (!stepper.peers[0].failure) await new Promise((resolve) => setTimeout(resolve, 10));
  await assert.rejects(stepper.trainStep(permPtr, 32, 32, 0), /worker 1 crashed: exited with code/);
});

// Data-parallel training: the gradient tree's split and balancing, and results that are those
// of one worker, bit for bit, whatever the split and the number of workers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { evalChunks, treeNodes, planShares, RunningMedian, DataParallelStepper } from '../web/parallel.js';
import { createEngine } from '../web/engine.js';
import { startPeerWorkers } from '../src/node/peer.js';
import { writeSyntheticCifar, makeRecords } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { createSimpleCnn, createPresetModel } from './helpers/models.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
// wt_grad_tree_mid, as the engine defines it: lo + the largest power of two below hi - lo.
const mid = (lo, hi) => { let half = 1; while (2 * half < hi - lo) half *= 2; return lo + half; };

test('evaluation cuts the test set into chunks covering it exactly, in order', () => {
  assert.deepEqual(evalChunks(256, 128), [{ offset: 0, count: 128 }, { offset: 128, count: 128 }]);
  assert.deepEqual(evalChunks(300, 128), [{ offset: 0, count: 128 }, { offset: 128, count: 128 }, { offset: 256, count: 44 }]);
  assert.deepEqual(evalChunks(5, 128), [{ offset: 0, count: 5 }]);
  assert.deepEqual(evalChunks(0, 128), []);
});

test('an evaluation shared by two or three workers gives the one-worker figures, whoever takes which chunk', async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const trainFiles = [{ name: 'train', bytes: makeRecords(64, 5) }], testFiles = [{ name: 'test', bytes: makeRecords(1001, 6) }];
  const train = engine.loadDataset(trainFiles), test = engine.loadDataset(testFiles);
  const model = createSimpleCnn(engine, { maxBatch: 32, seed: 3 });
  const figures = (r) => ({ correct: r.correct, total: r.total, tta: r.tta, confusion: [...r.confusion], predictions: [...r.predictions] });
  for (const tta of ['none', 'flip-translate']) {
    const solo = model.evaluate(test, { tta });
    assert.ok(solo.correct > 0 && solo.correct < 1001, 'the figures to compare are not trivial');
    let shared = null;
    for (const workers of [2, 3]) {
      const stepper = new DataParallelStepper(engine, model, train, startPeerWorkers(workers - 1));
      try {
        await stepper.init({ module, trainFiles, testFiles, seed: 0, shuffle: true, lr: 0.001 });
        const r = await stepper.evaluate(test, { tta });
        assert.deepEqual(figures(r), figures(solo), `${workers} workers, tta ${tta}`);
        assert.ok(Math.abs(r.loss - solo.loss) <= 1e-12 * solo.loss, `${workers} workers, tta ${tta}: loss ${r.loss} against ${solo.loss}`);
        // The chunks are added up in their order: the same loss for any number of workers.
        if (shared !== null) assert.equal(r.loss, shared, `tta ${tta}: 2 and 3 workers`);
        shared = r.loss;
      } finally {
        stepper.close();
      }
    }
  }
});

test('a share of the gradient tree is the largest whole nodes inside it', async () => {
  const engine = await createEngine(await WebAssembly.compile(wasm));
  for (let lo = 0; lo < 12; lo++) {
    for (let hi = lo + 2; hi <= 12; hi++) assert.equal(engine.wasm.wt_grad_tree_mid(lo, hi), mid(lo, hi), `mid of [${lo}, ${hi})`);
  }
  assert.deepEqual(treeNodes(0, 8, 0, 8, mid), [[0, 8]]);
  assert.deepEqual(treeNodes(0, 8, 0, 5, mid), [[0, 4], [4, 5]]);
  assert.deepEqual(treeNodes(0, 8, 5, 8, mid), [[5, 6], [6, 8]]);
  assert.deepEqual(treeNodes(0, 7, 1, 7, mid), [[1, 2], [2, 4], [4, 7]]);
  assert.deepEqual(treeNodes(0, 8, 3, 3, mid), []);
  // Every split of every tree: the nodes tile the share exactly, in order.
  for (let blocks = 1; blocks <= 20; blocks++) {
    for (let a = 0; a <= blocks; a++) {
      for (let b = a; b <= blocks; b++) {
        const nodes = treeNodes(0, blocks, a, b, mid);
        assert.deepEqual(nodes.flatMap(([lo, hi]) => Array.from({ length: hi - lo }, (_, i) => lo + i)), Array.from({ length: b - a }, (_, i) => a + i));
      }
    }
  }
});

test('blocks go to the worker that finishes them first; each worker keeps at least one', () => {
  const counts = (shares) => shares.map(({ lo, hi }) => hi - lo);
  assert.deepEqual(counts(planShares(8, [1, 1], [0, 0.3])), [4, 4]);
  assert.deepEqual(counts(planShares(8, [1, 1.5], [0, 0.3])), [5, 3]); // a slower peer gets less
  assert.deepEqual(counts(planShares(8, [1.6, 1], [0, 0.2])), [3, 5]); // a slower leader too
  assert.deepEqual(counts(planShares(1, [1, 1], [0, 0.3])), [1, 0]);
  assert.deepEqual(counts(planShares(2, [5, 1], [0, 0])), [1, 1]);
  assert.deepEqual(counts(planShares(8, [1, 50], [0, 5])), [7, 1]); // a very slow peer keeps one block
  assert.deepEqual(counts(planShares(2, [1, 1, 1], [0, 0, 0])), [1, 1, 0]);
  assert.deepEqual(counts(planShares(9, [1, 1, 1], [0, 0.2, 0.2])), [3, 3, 3]);
  assert.deepEqual(planShares(8, [1, 1.5], [0, 0.3]), [{ lo: 0, hi: 5 }, { lo: 5, hi: 8 }]);
});

test('the speed estimates ignore a lone slow step and follow a lasting change within a few steps', () => {
  const m = new RunningMedian(1, 5);
  for (const x of [1, 1, 9, 1]) m.add(x); // a thread descheduled once
  assert.equal(m.value, 1);
  m.add(2); // the core has slowed down for good
  assert.equal(m.value, 1);
  m.add(2);
  m.add(2);
  assert.equal(m.value, 2);
});

// A small net with every kind of state a split could disturb: batch norm's ghost-batch statistics
// and running statistics, dropout masks, a residual block.
const STATEFUL_NET = `@ghost_batch 8
conv(8, 3, padding=1, bias=false)
batchnorm
relu
dropout(0.2)
maxpool(2)
residual
  conv(8, 3, padding=1, bias=false)
  batchnorm
end
relu
globalavgpool
flatten
linear(classes)`;

async function checkSplits(makeModel) {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const trainFiles = [{ name: 'train', bytes: makeRecords(300, 21) }];
  const train = engine.loadDataset(trainFiles);
  const permPtr = engine.alloc(4 * train.count);
  engine.writePermutation(permPtr, train.count, 0, 0);
  const batches = [64, 61, 17, 8, 3, 64, 40, 43];
  const solo = makeModel(engine);
  const soloLosses = [];
  let start = 0;
  for (const [i, b] of batches.entries()) {
    soloLosses.push(solo.trainStepAt(train, permPtr + 4 * start, b, i));
    start += b;
  }
  for (const workers of [2, 3]) {
    // Deterministic pseudo-random cuts, so every worker's share size (zero included) comes up.
    let state = workers;
    const plan = (blocks, stepper) => {
      const cuts = [0, ...Array.from({ length: stepper.workers - 1 }, () => (state = (state * 1103515245 + 12345) >>> 0) % (blocks + 1)).sort((x, y) => x - y), blocks];
      cuts[1] = Math.max(cuts[1], 1);
      for (let k = 2; k < cuts.length; k++) cuts[k] = Math.max(cuts[k], cuts[k - 1]);
      return cuts.slice(0, -1).map((lo, k) => ({ lo, hi: cuts[k + 1] }));
    };
    const model = makeModel(engine);
    const stepper = new DataParallelStepper(engine, model, train, startPeerWorkers(workers - 1), { plan });
    try {
      // The last peer takes the files by transfer, the others get copies: all must train alike.
      const files = [{ name: 'train', bytes: trainFiles[0].bytes.slice() }];
      await stepper.init({ module, trainFiles: files, seed: 0, shuffle: true, lr: 0.001, transferFiles: true });
      assert.equal(files[0].bytes.byteLength, 0, 'the files were not transferred');
      const seen = new Set();
      start = 0;
      for (const [i, b] of batches.entries()) {
        // The peers get most steps ahead, with the update before them; after step 3 they are
        // told a step that does not come (its work is dropped), and the last has none.
        const next = i + 1 < batches.length ? { start: start + b + (i === 2 ? 1 : 0), batch: batches[i + 1], epoch: 0, step: i + 1 } : null;
        assert.equal(await stepper.trainStep(permPtr, start, b, 0, i, undefined, next), soloLosses[i], `${workers} workers, step ${i + 1}`);
        seen.add(JSON.stringify(stepper.lastShares.map(({ lo, hi }) => hi - lo)));
        start += b;
      }
      assert.ok(seen.size >= 4, `only ${seen.size} different splits were tried`);
      assert.deepEqual(model.params(), solo.params(), `${workers} workers: parameters differ from one worker`);
      assert.deepEqual(model.running(), solo.running(), `${workers} workers: running statistics differ from one worker`);
    } finally {
      stepper.close();
    }
  }
}

test('any split over two or three workers gives the one-worker step, bit for bit', async () => {
  await checkSplits((engine) => createSimpleCnn(engine, { maxBatch: 64, seed: 2 }));
});

test('with batch norm, dropout and a residual block too: any split gives the one-worker step, bit for bit', async () => {
  await checkSplits((engine) => createPresetModel(engine, 'stateful', { maxBatch: 64, seed: 2, text: STATEFUL_NET }));
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

test('the CLI with two and three workers logs exactly the run of one worker', () => {
  const one = run(1);
  assert.deepEqual(run(2), one, 'two workers differ from one');
  assert.deepEqual(run(3), one, 'three workers differ from one');
  assert.ok(one.at(-1).test_accuracy > 0.6);
});

test('the resnet preset (batch norm over ghost batches, residual blocks) logs the same run with one and two workers', () => {
  const resnet = (workers) => {
    const r = runCli(['--data', data, '--model', 'resnet', '--batch-size', '48', '--limit-train', '288', '--limit-test', '100', '--epochs', '1', '--json', '--workers', String(workers)]);
    assert.equal(r.status, 0, r.stderr);
    return jsonEvents(r).map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...rest }) => rest);
  };
  const one = resnet(1);
  assert.deepEqual(resnet(2), one, 'two workers differ from one');
  assert.equal(one.at(-1).event, 'epoch');
});

test('a peer worker that stops fails the step with its name instead of hanging', async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const trainFiles = [{ name: 'train', bytes: makeRecords(64, 2) }];
  const train = engine.loadDataset(trainFiles);
  const model = createSimpleCnn(engine, { maxBatch: 32 });
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

test('a peer that stops answering without an error event fails the step after its timeout instead of hanging', async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const trainFiles = [{ name: 'train', bytes: makeRecords(64, 3) }];
  const train = engine.loadDataset(trainFiles);
  // A peer that is ready, then never answers again: what a browser shows of a worker thread
  // that died without an error event.
  let onMessage = null, closed = false;
  const silent = {
    post: (msg) => { if (msg.type === 'init') setTimeout(() => onMessage({ type: 'ready' }), 0); },
    onMessage: (handler) => { onMessage = handler; },
    onError: () => {},
    close: () => { closed = true; },
  };
  const stepper = new DataParallelStepper(engine, createSimpleCnn(engine, { maxBatch: 32 }), train, [silent], { timeouts: { init: 5000, step: 200 } });
  await stepper.init({ module, trainFiles, seed: 0, shuffle: true, lr: 0.001 });
  const permPtr = engine.alloc(4 * train.count);
  engine.writePermutation(permPtr, train.count, 0, 0);
  const started = performance.now();
  await assert.rejects(stepper.trainStep(permPtr, 0, 32, 0), /worker 1 did not answer its 'step' request within 0\.2 s: it has stopped or hung/);
  assert.ok(performance.now() - started < 5000);
  await assert.rejects(stepper.trainStep(permPtr, 32, 32, 0), /did not answer/, 'a hung peer stays failed');
  stepper.close();
  assert.ok(closed);
});

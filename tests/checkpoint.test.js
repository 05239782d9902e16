// Checkpoints: the format refuses every kind of bad file without touching the model, a run
// resumed from the middle of an epoch is bit-identical to the uninterrupted one, a SIGKILL while
// checkpointing leaves a loadable file, and divergence stops training with the step named.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine, PARAM_COUNT } from '../web/engine.js';
import { TrainingRun } from '../web/trainer.js';
import { writeSyntheticCifar, makeRecords } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
const CHECKPOINT_BYTES = 128 + 12 * PARAM_COUNT + 4;
let dir, data;
before(() => {
  dir = tempDir('webtrain-ckpt-');
  data = writeSyntheticCifar(path.join(dir, 'data'), { perTrainFile: 300, test: 200, seed: 3 });
});

async function setup() {
  const engine = await createEngine(wasm);
  const train = engine.loadDataset([{ name: 'train', bytes: makeRecords(700, 5) }]);
  const test = engine.loadDataset([{ name: 'test', bytes: makeRecords(100, 6) }]);
  return { engine, train, test };
}

async function drain(run, steps = Infinity) {
  const losses = [];
  for (let i = 0; i < steps && !run.done; i++) {
    for (const e of await run.runStep()) if (e.event === 'loss') losses.push(e.loss);
  }
  return losses;
}

test('CRC-32 is the standard one', async () => {
  const engine = await createEngine(wasm);
  const ptr = engine.alloc(9);
  engine.heapU8.set(new TextEncoder().encode('123456789'), ptr);
  assert.equal(engine.wasm.wt_crc32(ptr, 9) >>> 0, 0xcbf43926);
});

test('a checkpoint resumed mid-epoch continues bit-identically', async () => {
  const options = { epochs: 3, batchSize: 16, seed: 9, logEvery: 10 };
  const a = await setup();
  const full = new TrainingRun(a.engine, a.engine.createModel({ maxBatch: 16, seed: 9 }), { train: a.train, test: a.test, ...options });
  const fullLosses = await drain(full);

  const b = await setup();
  const first = new TrainingRun(b.engine, b.engine.createModel({ maxBatch: 16, seed: 9 }), { train: b.train, test: b.test, ...options });
  const before = await drain(first, 44 + 17); // stops inside epoch 2 (44 steps per epoch), mid-window
  assert.equal(first.epoch, 1);
  assert.equal(first.step, 17);
  const bytes = first.checkpoint();
  assert.equal(bytes.length, CHECKPOINT_BYTES);

  const c = await setup(); // a fresh engine, as after a reload
  const model = c.engine.createModel({ maxBatch: 16, seed: 12345 });
  const state = model.loadCheckpoint(bytes);
  assert.deepEqual({ epoch: state.epoch, step: state.step, seed: state.seed, batchSize: state.batchSize }, { epoch: 1, step: 17, seed: 9, batchSize: 16 });
  const resumed = new TrainingRun(c.engine, model, { train: c.train, test: c.test, ...options, resume: state });
  const after = await drain(resumed);
  assert.deepEqual([...before, ...after], fullLosses);
  assert.deepEqual(model.params(), full.model.params());
  assert.equal(model.adamSteps, full.model.adamSteps);
});

test('bad checkpoints are refused, naming the problem, and the model is untouched', async () => {
  const { engine, train, test } = await setup();
  const model = engine.createModel({ maxBatch: 16, seed: 1 });
  const run = new TrainingRun(engine, model, { train, test, epochs: 1, batchSize: 16 });
  await drain(run, 3);
  const good = run.checkpoint();
  const victim = engine.createModel({ maxBatch: 16, seed: 2 });
  const untouched = victim.params();
  const crc = (bytes) => { // re-seal a deliberately edited file so only the edit is wrong
    const ptr = engine.alloc(bytes.length);
    engine.heapU8.set(bytes, ptr);
    const value = engine.wasm.wt_crc32(ptr, bytes.length - 4) >>> 0;
    engine.free(ptr);
    new DataView(bytes.buffer).setUint32(bytes.length - 4, value, true);
    return bytes;
  };
  const edit = (offset, value, reseal = true) => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(offset, value, true);
    return reseal ? crc(b) : b;
  };
  const flipped = good.slice();
  flipped[5000] ^= 1;
  const cases = [
    [good.subarray(0, 500), /truncated: 500 bytes/],
    [good.subarray(0, CHECKPOINT_BYTES - 1), /truncated: 744203 bytes, expected 744204/],
    [flipped, /corrupted \(CRC-32/],
    [new Uint8Array(CHECKPOINT_BYTES), /not a webtrain checkpoint/],
    [new Uint8Array(0), /not a webtrain checkpoint/],
    [edit(8, 2), /format version 2 is not supported/],
    [edit(12, 0x12345678), /another architecture/],
    [edit(16, 1000), /another architecture/],
    [edit(32, 1000), /step 1000 is not inside an epoch/],
    [edit(40, 0), /run state out of range/],
    [edit(128, 0x7fc00000), /invalid parameter value at index 0/],
    [edit(28, 7, false), /corrupted/], // a header edit without a new CRC is caught by the CRC
  ];
  for (const [bytes, pattern] of cases) {
    assert.throws(() => victim.loadCheckpoint(bytes, 'ck.bin'), (e) => pattern.test(e.message) && e.message.startsWith('ck.bin: '), `${pattern}`);
    assert.deepEqual(victim.params(), untouched, `model changed by a refused checkpoint (${pattern})`);
  }
  assert.equal(victim.adamSteps, 0);
});

test('SIGKILL while checkpointing every step leaves a checkpoint that resumes exactly (2 workers)', async () => {
  const common = ['--data', data, '--batch-size', '8', '--epochs', '2', '--workers', '2', '--seed', '4', '--json'];
  const referenceWeights = path.join(dir, 'uninterrupted.bin');
  const reference = runCli([...common, '--export-weights', referenceWeights]);
  assert.equal(reference.status, 0, reference.stderr);

  const ckpt = path.join(dir, 'killed.bin');
  const cli = fileURLToPath(new URL('../src/node/cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, ...common, '--checkpoint', ckpt, '--checkpoint-every', '1'], { stdio: 'ignore' });
  const started = Date.now();
  while (!existsSync(ckpt) && Date.now() - started < 20000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // let it overwrite the checkpoint many times
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));

  const bytes = readFileSync(ckpt); // must be whole: a temp file was renamed over it
  assert.equal(bytes.length, CHECKPOINT_BYTES);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const at = { epoch: view.getInt32(28, true), step: view.getInt32(32, true) };
  const resumedWeights = path.join(dir, 'resumed.bin');
  const resumed = runCli(['--data', data, '--resume', ckpt, '--json', '--export-weights', resumedWeights]);
  assert.equal(resumed.status, 0, resumed.stderr);
  const strip = (events) => events.map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...rest }) => rest);
  const tail = strip(jsonEvents(reference)).filter((e) => e.epoch > at.epoch + 1 || (e.epoch === at.epoch + 1 && (e.event === 'epoch' || e.step > at.step)));
  assert.deepEqual(strip(jsonEvents(resumed)), tail, `resumed from epoch ${at.epoch + 1}, step ${at.step}`);
  assert.deepEqual(readFileSync(resumedWeights), readFileSync(referenceWeights));
});

test('divergence stops training, names the step and offers the last good checkpoint', () => {
  const ckpt = path.join(dir, 'diverged.bin');
  const r = runCli(['--data', data, '--epochs', '1', '--lr', '1e9', '--checkpoint', ckpt, '--checkpoint-every', '1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), /^webtrain: training diverged at epoch 1, step \d+: the loss is (NaN|infinite) .* Try a lower learning rate \(now 1000000000\)\. The last good checkpoint is .*diverged\.bin/);
  const resumed = runCli(['--data', data, '--resume', ckpt, '--epochs', '0', '--json']);
  assert.equal(resumed.status, 0, resumed.stderr);
});

// lr 50 keeps every loss finite (1e10 and more): the guard must still stop it, as the page's does.
test('a loss far above chance (100 × ln 10) is divergence too: lr 50 exits with status 1, naming the step', () => {
  const r = runCli(['--data', data, '--epochs', '1', '--lr', '50']);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr.trim(), /^webtrain: training diverged at epoch 1, step \d+: the running loss \S+ is above 100 × ln\(10\) = 230\.3\. Try a lower learning rate \(now 50\)\.$/);
  assert.doesNotMatch(r.stdout, /^Test accuracy/m, 'no epoch reported as a result');
});

// Checkpoints: the format refuses every kind of bad file without touching the model, a run
// resumed from the middle of an epoch is bit-identical to the uninterrupted one, a SIGKILL while
// checkpointing leaves a loadable file, and divergence stops training with the step named.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine } from '../web/engine.js';
import { encodeSpec } from '../web/model-spec.js';
import { parseDescription } from '../web/model-description.js';
import { TrainingRun } from '../web/trainer.js';
import { writeSyntheticCifar, makeRecords } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { createSimpleCnn, createPresetModel, presetText } from './helpers/models.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
// Version 3 (src/checkpoint.c): a 256-byte header, the spec, the description text, the recipe,
// the floats.
const HEADER = 256;
const pad4 = (n) => (n + 3) & ~3;
const checkpointBytes = (model, recipe) => model.engine.wasm.wt_checkpoint_bytes(model.ptr, new TextEncoder().encode(JSON.stringify(recipe)).length);
/** Byte offset of the first parameter in a version 2 or 3 file. */
function paramsOffset(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const recipe = view.getUint32(8, true) >= 3 ? view.getUint32(128, true) : 0;
  return HEADER + 4 * view.getUint32(24, true) + pad4(view.getUint32(28, true)) + pad4(recipe);
}
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
  const full = new TrainingRun(a.engine, createSimpleCnn(a.engine, { maxBatch: 16, seed: 9 }), { train: a.train, test: a.test, ...options });
  const fullLosses = await drain(full);

  const b = await setup();
  const first = new TrainingRun(b.engine, createSimpleCnn(b.engine, { maxBatch: 16, seed: 9 }), { train: b.train, test: b.test, ...options });
  const before = await drain(first, 44 + 17); // stops inside epoch 2 (44 steps per epoch), mid-window
  assert.equal(first.epoch, 1);
  assert.equal(first.step, 17);
  const bytes = first.checkpoint();
  assert.equal(bytes.length, checkpointBytes(first.model, first.runState().recipe));

  const c = await setup(); // a fresh engine, as after a reload
  const model = createSimpleCnn(c.engine, { maxBatch: 16, seed: 12345 });
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
  const model = createSimpleCnn(engine, { maxBatch: 16, seed: 1 });
  const run = new TrainingRun(engine, model, { train, test, epochs: 1, batchSize: 16 });
  await drain(run, 3);
  const good = run.checkpoint();
  const victim = createSimpleCnn(engine, { maxBatch: 16, seed: 2 });
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
  const n = good.length;
  const other = createPresetModel(engine, 'convnetjs', { maxBatch: 16 });
  const otherRun = new TrainingRun(engine, other, { train, test, epochs: 1, batchSize: 16 });
  const cases = [
    [good.subarray(0, 500), new RegExp(`truncated: 500 bytes, its header says ${n}`)],
    [good.subarray(0, n - 1), new RegExp(`truncated: ${n - 1} bytes, its header says ${n}`)],
    [flipped, /corrupted \(CRC-32/],
    [new Uint8Array(n), /not a webtrain checkpoint/],
    [new Uint8Array(0), /not a webtrain checkpoint/],
    [edit(8, 4), /format version 4 is not supported/],
    [edit(12, 128), /header size 128 is wrong/],
    [edit(32, 1000), /sections .* do not add up/],
    [edit(52, 1000), /step 1000 is not inside an epoch/],
    [edit(60, 0), /run state out of range/],
    [edit(paramsOffset(good), 0x7fc00000), /invalid parameter value at index 0/],
    [edit(200, 1), /non-zero reserved byte at offset 200/],
    [edit(48, 7, false), /corrupted/], // a header edit without a new CRC is caught by the CRC
    [otherRun.checkpoint(), /checkpoint is for another model/],
  ];
  otherRun.dispose();
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
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(bytes.length, Number(view.getBigUint64(16, true)));
  const at = { epoch: view.getInt32(48, true), step: view.getInt32(52, true) };
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

/** A version 1 file (SimpleCNN only) from a version 2 checkpoint of SimpleCNN, as the old engine wrote it. */
function versionOne(engine, v2) {
  const src = new DataView(v2.buffer, v2.byteOffset);
  const P = src.getUint32(32, true);
  const out = new Uint8Array(128 + 12 * P + 4);
  const view = new DataView(out.buffer);
  out.set(v2.subarray(0, 8));
  view.setUint32(8, 1, true);
  view.setUint32(12, 0x31434e53, true); // "SNC1"
  view.setUint32(16, P, true);
  view.setUint32(20, 128, true);
  view.setUint32(24, src.getUint32(40, true), true);
  out.set(v2.subarray(48, 84), 28); // run state ints
  out.set(v2.subarray(88, 128), 64); // window_sum, Adam settings
  out.set(v2.subarray(paramsOffset(v2), paramsOffset(v2) + 12 * P), 128);
  const ptr = engine.alloc(out.length);
  engine.heapU8.set(out, ptr);
  view.setUint32(out.length - 4, engine.wasm.wt_crc32(ptr, out.length - 4) >>> 0, true);
  engine.free(ptr);
  return out;
}

test('a version 1 checkpoint (the seed\'s SimpleCNN format) still loads, and describes SimpleCNN', async () => {
  const { engine, train, test } = await setup();
  const model = createSimpleCnn(engine, { maxBatch: 16, seed: 1 });
  const run = new TrainingRun(engine, model, { train, test, epochs: 1, batchSize: 16 });
  await drain(run, 5);
  const v1 = versionOne(engine, run.checkpoint());
  assert.equal(v1.length, 744204);
  const described = engine.describeCheckpoint(v1);
  assert.equal(described.text, '');
  const { spec } = encodeSpec(parseDescription(presetText('simplecnn')), { channels: 3, height: 32, width: 32, classes: 10, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  assert.deepEqual(Array.from(described.spec), Array.from(spec), 'the engine\'s built-in version 1 spec is the simplecnn preset\'s');
  const loaded = createSimpleCnn(engine, { maxBatch: 16, seed: 7 });
  const state = loaded.loadCheckpoint(v1, 'v1.bin');
  assert.deepEqual(loaded.params(), model.params());
  assert.equal(state.step, 5);
  assert.equal(loaded.adamSteps, 5);
  const resnet = createPresetModel(engine, 'resnet', { maxBatch: 16 });
  assert.throws(() => resnet.loadCheckpoint(v1, 'v1.bin'), /v1.bin: checkpoint is for another model/);
});

test('a batch-norm net resumed mid-epoch continues bit for bit (running statistics included)', async () => {
  const options = { epochs: 2, batchSize: 16, seed: 3, logEvery: 5 };
  const a = await setup();
  const full = new TrainingRun(a.engine, createPresetModel(a.engine, 'resnet', { maxBatch: 16, seed: 3 }), { train: a.train, test: a.test, ...options });
  const fullLosses = await drain(full, 50);
  const b = await setup();
  const first = new TrainingRun(b.engine, createPresetModel(b.engine, 'resnet', { maxBatch: 16, seed: 3 }), { train: b.train, test: b.test, ...options });
  const before = await drain(first, 44 + 3);
  const bytes = first.checkpoint();
  const c = await setup();
  const { spec, text } = c.engine.describeCheckpoint(bytes);
  assert.match(text, /residual/, 'the checkpoint carries its description');
  const model = c.engine.createModel({ spec, text, maxBatch: 16, seed: 3 });
  const resumed = new TrainingRun(c.engine, model, { train: c.train, test: c.test, ...options, resume: model.loadCheckpoint(bytes) });
  const after = await drain(resumed, 3);
  assert.deepEqual([...before, ...after], fullLosses);
  assert.deepEqual(model.params(), full.model.params());
  assert.deepEqual(model.running(), full.model.running());
  assert.equal(model.statSteps, full.model.statSteps);
});

// lr 50 keeps every loss finite (1e10 and more): the guard must still stop it, as the page's does.
test('a loss far above chance (100 × ln 10) is divergence too: lr 50 exits with status 1, naming the step', () => {
  const r = runCli(['--data', data, '--epochs', '1', '--lr', '50']);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr.trim(), /^webtrain: training diverged at epoch 1, step \d+: the running loss \S+ is above 100 × ln\(10\) = 230\.3\. Try a lower learning rate \(now 50\)\.$/);
  assert.doesNotMatch(r.stdout, /^Test accuracy/m, 'no epoch reported as a result');
});

test('resume mid-epoch is bit-exact with SGD + Nesterov, a schedule, label smoothing, groups and the weights average', async () => {
  const text = 'stem: conv(6, 3, padding=1)\nbatchnorm\nrelu\nmaxpool(4)\nflatten\nlinear(classes)\n';
  for (const ema of ['lookahead:every=3,start_epoch=1', 'plain:decay=0.9,every=2']) {
    const recipe = {
      optimizer: 'sgd', lr: 0.05, momentum: 0.85, nesterov: true, weightDecay: 5e-4, decoupledWeightDecay: true,
      schedule: 'triangular:start=0.2,peak=0.23,end=0.07', labelSmoothing: 0.2, epochs: 3, batchSize: 16, ema,
      groups: ['batchnorm lr=4 weight_decay=0', 'stem.bias frozen_after=1'],
    };
    const options = { seed: 9, logEvery: 10, recipe };
    const make = (engine, seed) => createPresetModel(engine, null, { text, maxBatch: 16, seed });
    const a = await setup();
    const full = new TrainingRun(a.engine, make(a.engine, 9), { train: a.train, test: a.test, ...options });
    const fullEvents = [];
    while (!full.done) fullEvents.push(...(await full.runStep()).map(({ detail, train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...e }) => e));

    const b = await setup();
    const first = new TrainingRun(b.engine, make(b.engine, 9), { train: b.train, test: b.test, ...options });
    for (let i = 0; i < 44 + 17; i++) await first.runStep(); // inside epoch 2, after the average started
    const bytes = first.checkpoint();
    assert.equal(first.model.emaActive, true, ema);

    const c = await setup();
    const model = make(c.engine, 123);
    const state = model.loadCheckpoint(bytes);
    assert.equal(state.recipe.optimizer, 'sgd');
    assert.deepEqual(state.recipe, first.recipe, 'the recipe round-trips through the checkpoint');
    assert.equal(model.optimizer, 'sgd');
    assert.equal(model.emaActive, true);
    const resumed = new TrainingRun(c.engine, model, { train: c.train, test: c.test, seed: 9, logEvery: 10, recipe: state.recipe, resume: state });
    const tail = [];
    while (!resumed.done) tail.push(...(await resumed.runStep()).map(({ detail, train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...e }) => e));
    const from = fullEvents.findIndex((e) => e.epoch === 2 && (e.event === 'epoch' || e.step > 17));
    assert.deepEqual(tail, fullEvents.slice(from), ema);
    assert.deepEqual(model.params(), full.model.params(), ema);
    assert.deepEqual(model.ema(), full.model.ema(), ema);
    assert.deepEqual(model.exportState().adamM, full.model.exportState().adamM, `${ema}: momentum buffers`);
  }
});

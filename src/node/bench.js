// `npm run bench`: webtrain's training throughput with one worker and with all workers, side by
// side with PyTorch (one and two threads) in the same run, plus a per-layer breakdown, evaluation
// throughput and Wasm memory. Contenders take turns within each repetition so machine noise hits
// them alike; medians and ranges are printed, and ratios are taken within a repetition. It
// measures; it asserts nothing.
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine, PROFILE_SLOTS } from '../../web/engine.js';
import { TRAIN_FILES, TEST_FILE, ALL_FILES } from '../../web/cifar.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { startPeerWorkers } from './peer.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    data: { type: 'string' }, reps: { type: 'string', default: '5' }, steps: { type: 'string', default: '200' },
    batch: { type: 'string', default: '64' }, workers: { type: 'string' }, 'no-pytorch': { type: 'boolean' },
  },
});
const REPS = Number(args.reps), STEPS = Number(args.steps), BATCH = Number(args.batch), WARMUP = 20;
const ALL_WORKERS = Number(args.workers ?? availableParallelism());

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const range = (xs, d = 0) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;

function findData() {
  const candidates = [args.data, process.env.WEBTRAIN_CIFAR_DIR, path.join(root, 'data/cifar-10-batches-bin'), path.join(root, '../shared/cifar-10-batches-bin')];
  for (const dir of candidates) {
    if (dir && ALL_FILES.every((f) => existsSync(path.join(dir, f)))) return { dir, real: true };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'webtrain-bench-'));
  return import('../../tests/helpers/synthetic.js').then((m) => ({ dir: m.writeSyntheticCifar(dir, { perTrainFile: 2000, test: 2000 }), real: false }));
}

const { dir, real } = await findData();
const module = await WebAssembly.compile(readFileSync(path.join(root, 'web/webtrain.wasm')));
const engine = await createEngine(module);
const trainFiles = TRAIN_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(dir, name))) }));
const train = engine.loadDataset(trainFiles);
const testFiles = [{ name: TEST_FILE, bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))) }];
const test = engine.loadDataset(testFiles);
const model = engine.createModel({ maxBatch: BATCH, seed: 0 });
const permPtr = engine.alloc(4 * train.count);
engine.writePermutation(permPtr, train.count, 0, 0);
const stepsPerEpoch = Math.floor(train.count / BATCH);
let cursor = 0; // full batches only, walking through the epoch's shuffle
const nextStart = () => { const s = (cursor++ % stepsPerEpoch) * BATCH; return s; };

const CHUNK = 25; // steps per turn: the contenders take turns this often within a repetition

/**
 * samples/s of each contender (step functions) = batch / median step time over STEPS timed
 * steps, taken in turns of CHUNK steps so that a change in machine speed hits all of them.
 */
async function timeSteps(steps) {
  for (const step of steps) for (let i = 0; i < WARMUP; i++) await step(nextStart());
  const times = steps.map(() => []);
  for (let done = 0; done < STEPS; done += CHUNK) {
    for (const [k, step] of steps.entries()) {
      for (let i = 0; i < Math.min(CHUNK, STEPS - done); i++) {
        const t0 = performance.now();
        await step(nextStart());
        times[k].push(performance.now() - t0);
      }
    }
  }
  return times.map((t) => BATCH / (median(t) / 1000));
}

let stepper = null;
if (ALL_WORKERS > 1) {
  const endpoints = startPeerWorkers(ALL_WORKERS - 1);
  // Its own model: the solo steps below must not put the replicas out of step.
  stepper = new DataParallelStepper(engine, engine.createModel({ maxBatch: BATCH, seed: 0 }), train, endpoints);
  await stepper.init({ module, trainFiles, testFiles, limit: Infinity, seed: 0, shuffle: true, lr: 0.001 });
}

const pytorchScript = path.join(root, 'tests/reference/pytorch_train.py');
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const havePytorch = !args['no-pytorch'] && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

function pytorch(threads) {
  const r = spawnSync(python, [pytorchScript, '--data', dir, '--bench-steps', String(STEPS), '--threads', String(threads), '--batch-size', String(BATCH)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch benchmark failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)).samples_per_s;
}

const results = { one: [], all: [], pt1: [], pt2: [], evalRate: [], evalAll: [] };
for (let rep = 0; rep < REPS; rep++) {
  const contenders = [(start) => { model.trainStepAt(train, permPtr + 4 * start, BATCH); }];
  if (stepper) contenders.push((start) => stepper.trainStep(permPtr, start, BATCH, 0));
  const [one, all] = await timeSteps(contenders);
  results.one.push(one);
  if (stepper) results.all.push(all);
  let t0 = performance.now();
  model.evaluate(test);
  results.evalRate.push(test.count / ((performance.now() - t0) / 1000));
  if (stepper) {
    t0 = performance.now();
    await stepper.evaluate(test);
    results.evalAll.push(test.count / ((performance.now() - t0) / 1000));
  }
  if (havePytorch) {
    results.pt1.push(pytorch(1));
    results.pt2.push(pytorch(2));
  }
  process.stderr.write(`bench: repetition ${rep + 1}/${REPS} done\n`);
}
stepper?.close();

// Per-layer breakdown (one worker).
const readProfile = model.startProfile();
const PROFILE_STEPS = 100;
for (let i = 0; i < PROFILE_STEPS; i++) model.trainStepAt(train, permPtr + 4 * nextStart(), BATCH);
const profile = readProfile();
model.stopProfile();

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const lines = [];
lines.push(`webtrain benchmark: batch ${BATCH}, Adam, ${real ? `real CIFAR-10 (${dir})` : 'generated data (real CIFAR-10 not found)'}`);
lines.push(`machine: ${cpu}, ${availableParallelism()} cores; Node ${process.version}; ${REPS} repetitions x ${STEPS} steps (contenders take turns every ${CHUNK} steps); median (min–max) samples/s; ratios within each repetition, median (min–max)`);
lines.push('');
lines.push('| contender | training samples/s | ratio |');
lines.push('|---|---|---|');
// Ratios are taken within each repetition (measured close together), then the median and range.
const ratio = (a, b) => { const r = a.map((x, i) => x / b[i]); return `${fmt(median(r), 2)}× (${fmt(Math.min(...r), 2)}–${fmt(Math.max(...r), 2)})`; };
lines.push(`| webtrain, 1 worker | ${range(results.one)} | ${havePytorch ? `${ratio(results.one, results.pt1)} PyTorch 1 thread` : ''} |`);
if (stepper) lines.push(`| webtrain, ${ALL_WORKERS} workers | ${range(results.all)} | ${ratio(results.all, results.one)} 1 worker${havePytorch ? `, ${ratio(results.all, results.pt2)} PyTorch 2 threads` : ''} |`);
if (havePytorch) {
  lines.push(`| PyTorch ${spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim()}, 1 thread | ${range(results.pt1)} | |`);
  lines.push(`| PyTorch, 2 threads | ${range(results.pt2)} | |`);
} else {
  lines.push('| PyTorch | not measured (`python3 -c "import torch"` failed or --no-pytorch) | |');
}
lines.push(`| webtrain evaluation, 1 worker | ${range(results.evalRate)} | ${ratio(results.evalRate, results.one)} training with 1 worker |`);
if (stepper) lines.push(`| webtrain evaluation, ${ALL_WORKERS} workers | ${range(results.evalAll)} | ${ratio(results.evalAll, results.all)} training with ${ALL_WORKERS} workers |`);
lines.push('');
lines.push(`Wasm memory with the whole data set loaded (${train.count + test.count} images): ${fmt(engine.memoryBytes / 2 ** 20, 1)} MiB; webtrain.wasm ${fmt(readFileSync(path.join(root, 'web/webtrain.wasm')).length / 1024, 1)} KiB`);
lines.push('');
lines.push(`Per-layer time, 1 worker, mean of ${PROFILE_STEPS} steps:`);
lines.push('| layer | µs/step | share |');
lines.push('|---|---|---|');
const total = Object.values(profile).reduce((a, b) => a + b, 0);
for (const name of PROFILE_SLOTS) lines.push(`| ${name} | ${fmt((1000 * profile[name]) / PROFILE_STEPS)} | ${fmt((100 * profile[name]) / total, 1)}% |`);
console.log(lines.join('\n'));

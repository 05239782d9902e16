// `npm run bench:workers`: does a second worker pay? For each preset, two runs of the same
// training (the preset's own recipe and batch, seed 0, real CIFAR-10) in this process, one with
// one worker and one with data-parallel workers started as the CLI's --workers starts them
// (src/node/peer.js), taking turns every --chunk steps so that a change in machine speed hits
// both alike. Over a full epoch (or --steps N) it prints each run's training samples/s (the
// CLI's train_samples_per_s: evaluation excluded), their ratio, where the parallel run's step
// time goes and how the batch was split. It also checks that both runs printed the same lines.
// It measures; it asserts nothing.
import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createEngine, CIFAR10_FORMAT } from '../../web/engine.js';
import { TRAIN_FILES, TEST_FILE, ALL_FILES } from '../../web/cifar.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { createModelFromDescription } from '../../web/model-spec.js';
import { PRESETS, loadPreset, parseDescription } from '../../web/model-description.js';
import { resolveRecipe } from '../../web/recipe.js';
import { TrainingRun, formatLoss, formatAccuracy } from '../../web/trainer.js';
import { startPeerWorkers } from './peer.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    data: { type: 'string' }, models: { type: 'string', default: PRESETS.map((p) => p.name).join(',') },
    steps: { type: 'string' }, chunk: { type: 'string', default: '25' }, workers: { type: 'string', default: '2' },
    'limit-test': { type: 'string' },
  },
});
const positive = (name, text) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench:workers: --${name} takes a whole number >= 1, not '${text}'`);
  return n;
};
const STEPS = args.steps === undefined ? null : positive('steps', args.steps); // null: a full epoch
const CHUNK = positive('chunk', args.chunk);
const WORKERS = positive('workers', args.workers);
if (WORKERS < 2) throw new Error('bench:workers: --workers must be 2 or more (the run it compares with one worker)');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

const dir = [args.data, process.env.WEBTRAIN_CIFAR_DIR, path.join(root, 'data/cifar-10-batches-bin'), path.join(root, '../shared/cifar-10-batches-bin')]
  .find((d) => d && ALL_FILES.every((f) => existsSync(path.join(d, f))));
if (!dir) {
  console.log(`bench:workers: skipped: real CIFAR-10 not found (looked in --data, $WEBTRAIN_CIFAR_DIR, data/cifar-10-batches-bin and ../shared/cifar-10-batches-bin for ${ALL_FILES.join(', ')}); a full epoch only means something on the real set`);
  process.exit(0);
}
const models = args.models.split(',').map((s) => s.trim()).filter(Boolean);
for (const name of models) {
  if (!PRESETS.some((p) => p.name === name) && !existsSync(name)) throw new Error(`bench:workers: --models: '${name}' is neither a preset (${PRESETS.map((p) => p.name).join(', ')}) nor a file`);
}

const module = await WebAssembly.compile(readFileSync(path.join(root, 'web/webtrain.wasm')));
const trainFiles = TRAIN_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(dir, name))) }));
const testFiles = [{ name: TEST_FILE, bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))) }];
const testLimit = args['limit-test'] === undefined ? Infinity : positive('limit-test', args['limit-test']);

console.log([
  `webtrain bench:workers: 1 worker against ${WORKERS} workers, ${STEPS ? `${STEPS} steps` : 'a full epoch'} of real CIFAR-10 (${dir}), seed 0, each preset's own recipe and batch`,
  `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; Node ${process.version}; the two runs take turns every ${CHUNK} steps; samples/s as the CLI's train_samples_per_s (training steps only)`,
].join('\n'));

/** A run as the CLI makes it: a TrainingRun, and for several workers its peers started after it. */
async function startRun(engine, text, recipe, train, test, workers) {
  const model = createModelFromDescription(engine, text, CIFAR10_FORMAT, { maxBatch: recipe.batchSize, seed: 0 });
  const run = new TrainingRun(engine, model, { train, test, seed: 0, shuffle: true, recipe, workers });
  if (workers > 1) {
    const stepper = new DataParallelStepper(engine, model, train, startPeerWorkers(workers - 1));
    await stepper.init({ module, trainFiles, testFiles, testLimit, seed: 0, shuffle: true, lr: recipe.lr, augment: recipe.augment });
    run.stepper = stepper;
  }
  return { run, model, lines: [], evalPerS: null, timings: [], cpu: 0, wall: 0 };
}

/** This process's CPU time (all threads, the peers' too) in ms. */
const cpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };

/**
 * Runs `n` steps of `r`; returns their training ms (the last step's evaluation excluded). Adds
 * the CPU time and wall time of the steps to r.cpu and r.wall: their ratio is the cores the run
 * got (2 workers on a machine shared with other jobs get fewer than 2).
 */
async function steps(r, n) {
  const before = r.run.totalTrainMs, cpu0 = cpuMs(), wall0 = performance.now();
  for (let i = 0; i < n; i++) {
    const events = await r.run.runStep();
    if (r.run.stepper) r.timings.push(r.run.stepper.lastTiming);
    for (const e of events) {
      if (e.event === 'loss') r.lines.push(formatLoss(e));
      if (e.event === 'epoch') {
        r.lines.push(formatAccuracy(e));
        r.evalPerS = e.eval_samples_per_s;
      }
    }
  }
  r.cpu += cpuMs() - cpu0;
  r.wall += performance.now() - wall0;
  return r.run.totalTrainMs - before;
}

for (const name of models) {
  const text = PRESETS.some((p) => p.name === name) ? await loadPreset(name) : readFileSync(name, 'utf8');
  const recipe = resolveRecipe(parseDescription(text), { epochs: 1 });
  // One engine per run, as each CLI process has its own.
  const engines = [await createEngine(module), await createEngine(module)];
  const data = engines.map((e) => ({ train: e.loadDataset(trainFiles), test: e.loadDataset(testFiles, { limit: testLimit }) }));
  const one = await startRun(engines[0], text, recipe, data[0].train, data[0].test, 1);
  const many = await startRun(engines[1], text, recipe, data[1].train, data[1].test, WORKERS);
  const total = Math.min(STEPS ?? Infinity, one.run.stepsPerEpoch);
  const batch = recipe.batchSize, blocks = one.model.blocks(batch);
  process.stderr.write(`bench:workers: ${name}: ${total} steps of ${batch} (${blocks} blocks of ${one.model.block})\n`);
  const chunkRatios = [], sums = [0, 0], samples = [0, 0], loadBefore = loadavg()[0];
  for (let done = 0; done < total; done += CHUNK) {
    const n = Math.min(CHUNK, total - done);
    // ABBA order: which run goes first alternates, so a steady drift favours neither.
    const order = (done / CHUNK) % 2 ? [many, one] : [one, many];
    const ms = new Map();
    for (const r of order) ms.set(r, await steps(r, n));
    const stepSamples = n * batch; // the last step of an epoch may be short; counted below
    sums[0] += ms.get(one);
    sums[1] += ms.get(many);
    samples[0] += stepSamples;
    samples[1] += stepSamples;
    chunkRatios.push(ms.get(one) / ms.get(many));
  }
  // A full epoch's last batch is short: count the images actually trained.
  if (total === one.run.stepsPerEpoch || one.run.epoch > 0) samples[0] = samples[1] = data[0].train.count;
  const perS = sums.map((ms, k) => samples[k] / (ms / 1000));
  const same = one.lines.length === many.lines.length && one.lines.every((l, i) => l === many.lines[i]);

  const t = many.timings;
  const leaderShare = new Map();
  for (const x of t) {
    const key = x.shares.map((s) => s.hi - s.lo).join('/');
    leaderShare.set(key, (leaderShare.get(key) ?? 0) + 1);
  }
  const histogram = [...leaderShare.entries()].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k}: ${fmt((100 * c) / t.length, 1)}%`).join(', ');
  const perBlock = many.run.stepper.perBlockMs.map((m) => fmt(m.value, 2)).join(' / ');
  const peerField = (f) => mean(t.map((x) => mean(x.peers.map((p) => p[f]))));
  const peerIdleAtEnd = mean(t.map((x) => Math.max(0, ...x.peers.map((p) => p.doneBeforeLeaderMs))));
  const stepOne = sums[0] / total;

  console.log([
    '',
    `### ${name}: batch ${batch}, ${blocks} blocks of ${one.model.block} images, ${total} steps${total === one.run.stepsPerEpoch ? ' (a full epoch)' : ''}`,
    '',
    `| run | training samples/s | ms per step | evaluation images/s |`,
    `|---|---|---|---|`,
    `| 1 worker | ${fmt(perS[0])} | ${fmt(stepOne, 2)} | ${one.evalPerS ? fmt(one.evalPerS) : '(no full epoch)'} |`,
    `| ${WORKERS} workers | ${fmt(perS[1])} | ${fmt(sums[1] / total, 2)} | ${many.evalPerS ? fmt(many.evalPerS) : '(no full epoch)'} |`,
    '',
    `**${WORKERS} workers ÷ 1 worker: ${fmt(perS[1] / perS[0], 2)}×** over the run; per chunk of ${CHUNK} steps: median ${fmt(median(chunkRatios), 2)}× (${fmt(Math.min(...chunkRatios), 2)}–${fmt(Math.max(...chunkRatios), 2)}, ${chunkRatios.length} chunks). Same lines with 1 and ${WORKERS} workers: ${same ? 'yes' : 'NO'} (${one.lines.length} lines).`,
    `Cores the runs got (CPU time ÷ wall time of their steps, evaluation included): 1 worker ${fmt(one.cpu / one.wall, 2)}, ${WORKERS} workers ${fmt(many.cpu / many.wall, 2)}; load average ${fmt(loadBefore, 2)} before, ${fmt(loadavg()[0], 2)} after (this bench adds about 1.5).`,
    `Split (blocks per worker, leader first): ${histogram}. Time per block at the end (running medians, ms): ${perBlock}.`,
    `${WORKERS}-worker step, mean ms: whole step ${fmt(mean(t.map((x) => x.totalMs)), 2)} (1 worker: ${fmt(stepOne, 2)}); leader computing ${fmt(mean(t.map((x) => x.leaderMs)), 2)}, waiting for the peers ${fmt(mean(t.map((x) => x.waitMs)), 2)}, copying in and adding the nodes and sending the sum ${fmt(mean(t.map((x) => x.sumMs)), 2)}, its update ${fmt(mean(t.map((x) => x.updateMs)), 2)}; peer computing ${fmt(peerField('computeMs'), 2)}, from the leader's request to its start ${fmt(peerField('startLagMs'), 2)}, done before the leader (idle) ${fmt(peerIdleAtEnd, 2)}.`,
  ].join('\n'));
  if (!same) {
    const i = one.lines.findIndex((l, k) => l !== many.lines[k]);
    console.log(`First difference, line ${i + 1}: 1 worker '${one.lines[i]}', ${WORKERS} workers '${many.lines[i]}'`);
  }
  many.run.stepper.close();
  for (const r of [one, many]) {
    r.run.dispose();
    r.model.destroy();
  }
}

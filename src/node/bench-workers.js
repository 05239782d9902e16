// `npm run bench:workers`: does a second worker pay? For each preset, two runs of the same
// training (the preset's own recipe and batch, seed 0, real CIFAR-10) in this process, one with
// one worker and one with data-parallel workers started as the CLI's --workers starts them
// (src/node/peer.js), taking turns every --chunk steps so that a change in machine speed hits
// both alike. Over a full epoch (or --steps N) it prints each run's training samples/s (the
// CLI's train_samples_per_s: evaluation excluded), their ratio, where the parallel run's step
// time goes and how the batch was split. It also checks that both runs printed the same lines.
// With --ab, a third run takes its turns too: N workers without the step given ahead (the peers
// wait for the leader's request, as before that change), to measure the change in one process.
// It measures; it asserts nothing.
import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { createEngine, CIFAR10_FORMAT } from '../../web/engine.js';
import { TRAIN_FILES, TEST_FILE, ALL_FILES } from '../../web/cifar.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { createModelFromDescription } from '../../web/model-spec.js';
import { PRESETS, loadPreset, parseDescription } from '../../web/model-description.js';
import { resolveRecipe } from '../../web/recipe.js';
import { TrainingRun, formatLoss, formatEpoch } from '../../web/trainer.js';
import { startPeerWorkers } from './peer.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** A bad option: its message, status 2, no stack. */
const refuse = (message) => {
  process.stderr.write(`bench:workers: ${message}\n`);
  process.exit(2);
};
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      data: { type: 'string' }, models: { type: 'string', default: PRESETS.map((p) => p.name).join(',') },
      steps: { type: 'string' }, chunk: { type: 'string', default: '25' }, workers: { type: 'string', default: '2' },
      'limit-test': { type: 'string' }, ab: { type: 'boolean' },
    },
  }));
} catch (error) {
  refuse(error.message);
}
const positive = (name, text) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) refuse(`--${name} takes a whole number >= 1, not '${text}'`);
  return n;
};
const STEPS = args.steps === undefined ? null : positive('steps', args.steps); // null: a full epoch
const CHUNK = positive('chunk', args.chunk);
const WORKERS = positive('workers', args.workers);
if (WORKERS < 2) refuse('--workers must be 2 or more (the runs are compared with one worker)');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// --data, when given, is the only place looked in: a wrong folder must not measure another one.
const candidates = args.data ? [args.data] : [process.env.WEBTRAIN_CIFAR_DIR, path.join(root, 'data/cifar-10-batches-bin'), path.join(root, '../shared/cifar-10-batches-bin')];
const dir = candidates.find((d) => d && ALL_FILES.every((f) => existsSync(path.join(d, f))));
if (!dir) {
  const where = args.data ? `${args.data} lacks ${ALL_FILES.filter((f) => !existsSync(path.join(args.data, f))).join(', ')}` : `looked in $WEBTRAIN_CIFAR_DIR, data/cifar-10-batches-bin and ../shared/cifar-10-batches-bin for ${ALL_FILES.join(', ')}`;
  console.log(`bench:workers: skipped: real CIFAR-10 not found (${where}); a full epoch only means something on the real set`);
  process.exit(0);
}
const models = args.models.split(',').map((s) => s.trim()).filter(Boolean);
for (const name of models) {
  if (!PRESETS.some((p) => p.name === name) && !existsSync(name)) refuse(`--models: '${name}' is neither a preset (${PRESETS.map((p) => p.name).join(', ')}) nor a file`);
}

const module = await WebAssembly.compile(readFileSync(path.join(root, 'web/webtrain.wasm')));
const trainFiles = TRAIN_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(dir, name))) }));
const testFiles = [{ name: TEST_FILE, bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))) }];
const testLimit = args['limit-test'] === undefined ? Infinity : positive('limit-test', args['limit-test']);

console.log([
  `webtrain bench:workers: 1 worker against ${WORKERS} workers${args.ab ? ` and ${WORKERS} workers without the step given ahead` : ''}, ${STEPS ? `${STEPS} steps` : 'a full epoch'} of real CIFAR-10 (${dir}), seed 0, each preset's own recipe and batch`,
  `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; Node ${process.version}; the runs take turns every ${CHUNK} steps; samples/s as the CLI's train_samples_per_s (training steps only)`,
].join('\n'));

/** A run as the CLI makes it: a TrainingRun, and for several workers its peers started after it. */
async function startRun(engine, text, recipe, train, test, workers, label, lookahead = true) {
  const model = createModelFromDescription(engine, text, CIFAR10_FORMAT, { maxBatch: recipe.batchSize, seed: 0 });
  const run = new TrainingRun(engine, model, { train, test, seed: 0, shuffle: true, recipe, workers });
  if (workers > 1) {
    const stepper = new DataParallelStepper(engine, model, train, startPeerWorkers(workers - 1));
    await stepper.init({ module, trainFiles, testFiles, testLimit, seed: 0, shuffle: true, lr: recipe.lr, augment: recipe.augment });
    stepper.lookahead = lookahead;
    run.stepper = stepper;
  }
  return { label, lookahead, run, model, lines: [], evalPerS: null, timings: [], cpu: 0, wall: 0, ms: 0 };
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
    // No step given ahead across a turn: the peers would work on it in another run's time.
    if (r.run.stepper) r.run.stepper.lookahead = r.lookahead && i < n - 1;
    const events = await r.run.runStep();
    if (r.run.stepper) r.timings.push(r.run.stepper.lastTiming);
    for (const e of events) {
      if (e.event === 'loss') r.lines.push(formatLoss(e));
      if (e.event === 'epoch') {
        r.lines.push(formatEpoch(e));
        if (e.evaluated) r.evalPerS = e.eval_samples_per_s;
      }
    }
  }
  r.cpu += cpuMs() - cpu0;
  r.wall += performance.now() - wall0;
  return r.run.totalTrainMs - before;
}

// The machine's ceiling: how much faster two threads of plain arithmetic (no memory, no
// messages) get through the same work as one, timed at each turn. On this VM it is not always
// near 2: the host can give its two vCPUs less than two cores' worth of time.
const SPIN = `let x = 0; for (let i = 0; i < n; i++) x = (x + i % 7) | 0; return x;`;
const spin = new Function('n', SPIN);
const spinWorker = new Worker(`const { parentPort } = require('node:worker_threads'); const spin = new Function('n', ${JSON.stringify(SPIN)});
parentPort.on('message', (n) => { const t0 = performance.now(); spin(n); parentPort.postMessage(performance.now() - t0); });`, { eval: true });
spinWorker.unref();
const timeSpin = (n) => { const t0 = performance.now(); spin(n); return performance.now() - t0; };
const spinN = (() => { // iterations for about 20 ms
  let n = 1e6;
  for (let i = 0; i < 3; i++) timeSpin(n); // optimised code first
  while (timeSpin(n) < 5) n *= 2;
  return Math.round((n * 20) / timeSpin(n));
})();
async function twoThreadSpeedup() {
  const alone = timeSpin(spinN);
  const theirs = new Promise((resolve) => spinWorker.once('message', resolve));
  spinWorker.postMessage(spinN);
  const mine = timeSpin(spinN);
  return (2 * alone) / Math.max(mine, await theirs);
}

const stepBreakdown = (r) => {
  const t = r.timings;
  const shareCounts = new Map();
  for (const x of t) {
    const key = x.shares.map((sh) => sh.hi - sh.lo).join('/');
    shareCounts.set(key, (shareCounts.get(key) ?? 0) + 1);
  }
  const histogram = [...shareCounts.entries()].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k}: ${fmt((100 * c) / t.length, 1)}%`).join(', ');
  const perBlock = r.run.stepper.perBlockMs.map((m) => fmt(m.value, 2)).join(' / ');
  const peerField = (f) => mean(t.map((x) => mean(x.peers.map((p) => p[f]))));
  const peerIdle = mean(t.map((x) => Math.max(0, ...x.peers.map((p) => p.doneBeforeLeaderMs))));
  const m = (f) => fmt(mean(t.map((x) => x[f])), 2);
  return [
    `${r.label}: split (blocks per worker, leader first) ${histogram}; time per block at the end (running medians, ms) ${perBlock}.`,
    `${r.label}: mean ms per step: whole step ${m('totalMs')}; leader computing ${m('leaderMs')}, waiting for the peers ${m('waitMs')}, copying in and adding up the nodes ${m('sumMs')}, its update ${m('updateMs')}; peer computing ${fmt(peerField('computeMs'), 2)}, starting ${fmt(peerField('startLagMs'), 2)} after the leader (negative: before), done before the leader (idle) ${fmt(peerIdle, 2)}.`,
  ];
};

for (const name of models) {
  const text = PRESETS.some((p) => p.name === name) ? await loadPreset(name) : readFileSync(name, 'utf8');
  const recipe = resolveRecipe(parseDescription(text), { epochs: 1 });
  const kinds = [[1, '1 worker', true], [WORKERS, `${WORKERS} workers`, true], ...(args.ab ? [[WORKERS, `${WORKERS} workers without the step given ahead`, false]] : [])];
  const runs = [];
  for (const [workers, label, lookahead] of kinds) {
    // One engine per run, as each CLI process has its own.
    const engine = await createEngine(module);
    const train = engine.loadDataset(trainFiles), test = engine.loadDataset(testFiles, { limit: testLimit });
    runs.push(await startRun(engine, text, recipe, train, test, workers, label, lookahead));
  }
  const [one] = runs;
  const total = Math.min(STEPS ?? Infinity, one.run.stepsPerEpoch);
  const batch = recipe.batchSize, blocks = one.model.blocks(batch);
  process.stderr.write(`bench:workers: ${name}: ${total} steps of ${batch} (${blocks} blocks of ${one.model.block})\n`);
  const chunkRatios = runs.map(() => []), ceiling = [], loadBefore = loadavg()[0];
  for (let done = 0, turn = 0; done < total; done += CHUNK, turn++) {
    const n = Math.min(CHUNK, total - done);
    // Which run goes first alternates (ABBA...), so a steady drift favours none.
    const order = turn % 2 ? [...runs].reverse() : runs;
    const ms = new Map();
    ceiling.push(await twoThreadSpeedup());
    for (const r of order) ms.set(r, await steps(r, n));
    for (const [k, r] of runs.entries()) {
      r.ms += ms.get(r);
      chunkRatios[k].push(ms.get(one) / ms.get(r));
    }
  }
  // A full epoch's last batch is short: count the images actually trained.
  const samples = one.run.epoch > 0 ? one.run.train.count : total * batch;
  const perS = runs.map((r) => samples / (r.ms / 1000));
  const lines = ['', `### ${name}: batch ${batch}, ${blocks} blocks of ${one.model.block} images, ${total} steps${total === one.run.stepsPerEpoch ? ' (a full epoch)' : ''}`, ''];
  lines.push('| run | training samples/s | ÷ 1 worker over the run | ÷ 1 worker per turn: median (min–max) | ms per step | evaluation images/s | same lines as 1 worker | cores it got |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const [k, r] of runs.entries()) {
    const same = r.lines.length === one.lines.length && r.lines.every((l, i) => l === one.lines[i]);
    const rs = chunkRatios[k];
    lines.push(`| ${r.label} | ${fmt(perS[k])} | ${k ? `**${fmt(perS[k] / perS[0], 2)}×**` : ''} | ${k ? `${fmt(median(rs), 2)}× (${fmt(Math.min(...rs), 2)}–${fmt(Math.max(...rs), 2)})` : ''} | ${fmt(r.ms / total, 2)} | ${r.evalPerS ? fmt(r.evalPerS) : '(no full epoch)'} | ${k ? (same ? 'yes' : 'NO') : `${one.lines.length} lines`} | ${fmt(r.cpu / r.wall, 2)} |`);
  }
  lines.push('');
  lines.push(`The machine's ceiling: two threads of plain arithmetic ran ${fmt(median(ceiling), 2)}× as fast as one (median of the turns, ${fmt(Math.min(...ceiling), 2)}–${fmt(Math.max(...ceiling), 2)}).${runs.slice(1).map((r, k) => ` ${r.label} ÷ 1 worker ÷ the ceiling, per turn: median ${fmt(median(chunkRatios[k + 1].map((x, i) => x / ceiling[i])), 2)}.`).join('')}`);
  lines.push(`${chunkRatios[0].length} turns of up to ${CHUNK} steps. Cores it got: CPU time ÷ wall time of the run's turns, evaluation included (fewer than ${WORKERS} for ${WORKERS} workers: waiting, or other jobs on the machine); load average ${fmt(loadBefore, 2)} before, ${fmt(loadavg()[0], 2)} after (this bench adds about 1.5).`);
  for (const r of runs.slice(1)) lines.push(...stepBreakdown(r));
  for (const r of runs.slice(1)) {
    const i = r.lines.findIndex((l, k) => l !== one.lines[k]);
    if (i >= 0 || r.lines.length !== one.lines.length) lines.push(`${r.label}: first difference, line ${i + 1}: 1 worker '${one.lines[i]}', '${r.lines[i]}'`);
  }
  console.log(lines.join('\n'));
  for (const r of runs) {
    r.run.stepper?.close();
    r.run.dispose();
    r.model.destroy();
  }
}

// `npm run bench`: for each preset net, webtrain's training throughput with one worker and with
// all workers, side by side with PyTorch (one and two threads) on the same net, batch and
// optimizer in the same run; evaluation throughput; a per-layer breakdown with each conv and
// linear layer's GFLOP/s as a fraction of this machine's Wasm SIMD128 multiply-add peak
// (wt_bench_peak; layers and peak both in CPU time); Wasm memory at batch 64 and 1024; the
// module's size. Contenders take turns within each
// repetition so machine noise hits them alike; medians and ranges are printed, and ratios are
// taken within a repetition. It measures; it asserts nothing.
import { readFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine, Engine, CIFAR10_FORMAT } from '../../web/engine.js';
import { TRAIN_FILES, TEST_FILE, ALL_FILES } from '../../web/cifar.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { createModelFromDescription, summarize } from '../../web/model-spec.js';
import { PRESETS, loadPreset } from '../../web/model-description.js';
import { generateModelPy } from '../../web/pytorch-module.js';
import { startPeerWorkers } from './peer.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    data: { type: 'string' }, reps: { type: 'string', default: '5' }, steps: { type: 'string', default: '200' },
    batch: { type: 'string', default: '64' }, workers: { type: 'string' }, 'no-pytorch': { type: 'boolean' }, 'no-ort': { type: 'boolean' },
    models: { type: 'string', default: PRESETS.map((p) => p.name).join(',') },
  },
});
const REPS = Number(args.reps), STEPS = Number(args.steps), BATCH = Number(args.batch), WARMUP = 20;
const ALL_WORKERS = Number(args.workers ?? availableParallelism());
const MODELS = args.models.split(',').map((s) => s.trim()).filter(Boolean);
const CHUNK = 25; // steps per turn: the contenders take turns this often within a repetition
const PROFILE_STEPS = 100; // per repetition, in chunks of CHUNK with the peak timed between chunks
const MEMORY_BATCHES = [64, 1024];

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const range = (xs, d = 0) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;
const pct = (x) => `${(100 * x).toFixed(0)}%`;
// Ratios are taken within each repetition (measured close together), then the median and range.
const ratio = (a, b) => { const r = a.map((x, i) => x / b[i]); return `${fmt(median(r), 2)}× (${fmt(Math.min(...r), 2)}–${fmt(Math.max(...r), 2)})`; };
const mib = (bytes) => `${fmt(bytes / 2 ** 20, 1)} MiB`;

async function findData() {
  const candidates = [args.data, process.env.WEBTRAIN_CIFAR_DIR, path.join(root, 'data/cifar-10-batches-bin'), path.join(root, '../shared/cifar-10-batches-bin')];
  for (const dir of candidates) {
    if (dir && ALL_FILES.every((f) => existsSync(path.join(dir, f)))) return { dir, real: true };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'webtrain-bench-'));
  const { writeSyntheticCifar } = await import('../../tests/helpers/synthetic.js');
  return { dir: writeSyntheticCifar(dir, { perTrainFile: 2000, test: 2000 }), real: false };
}

/** A preset's text, or a description file's. */
async function descriptionText(name) {
  if (PRESETS.some((p) => p.name === name)) return loadPreset(name);
  if (existsSync(name)) return readFileSync(name, 'utf8');
  throw new Error(`bench: --models: '${name}' is neither a preset (${PRESETS.map((p) => p.name).join(', ')}) nor a file`);
}

/** This process's CPU time (user + system, all threads) in ms. */
const cpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };

/**
 * createEngine's engine, but its profile clock (wt_clock_ms) is this process's CPU time, not
 * wall time: on a shared machine a layer is then not charged for other processes' turns on the
 * cores, and neither is the peak it is divided by. The peer workers are idle while the leader
 * profiles, so the process's CPU time is the leader's.
 */
async function createCpuClockEngine(compiled) {
  const imports = { env: { emscripten_notify_memory_growth: () => {}, wt_clock_ms: cpuMs } };
  for (const { module: from, name, kind } of WebAssembly.Module.imports(compiled)) {
    if (kind !== 'function' || imports[from]?.[name]) continue;
    imports[from] ??= {};
    imports[from][name] = () => { throw new Error(`webtrain.wasm called the unexpected import ${from}.${name}`); };
  }
  const instance = await WebAssembly.instantiate(compiled, imports);
  instance.exports._initialize?.();
  return new Engine(instance.exports);
}

const { dir, real } = await findData();
const wasmFile = path.join(root, 'web/webtrain.wasm');
const module = await WebAssembly.compile(readFileSync(wasmFile));
const engine = await createCpuClockEngine(module);
const trainFiles = TRAIN_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(dir, name))) }));
const train = engine.loadDataset(trainFiles);
const testFiles = [{ name: TEST_FILE, bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))) }];
const test = engine.loadDataset(testFiles);
const permPtr = engine.alloc(4 * train.count);
engine.writePermutation(permPtr, train.count, 0, 0);
const stepsPerEpoch = Math.floor(train.count / BATCH);
let cursor = 0; // full batches only, walking through the epoch's shuffle
const nextStart = () => (cursor++ % stepsPerEpoch) * BATCH;
let stepNumber = 0; // keys dropout masks, as a run's global step does

// ---- The peak: wt_bench_peak, 12 independent chains of f32x4 multiply then add ----

const peak = (n) => engine.wasm.wt_bench_peak(n);
for (let i = 0; i < 5; i++) peak(1e6); // tier up to optimised code before timing anything
const PEAK_MS = 10;
const peakN = (() => { // iterations for about PEAK_MS of CPU time
  let n = 1e5;
  for (;;) {
    const t0 = cpuMs();
    peak(n);
    const ms = cpuMs() - t0;
    if (ms >= PEAK_MS / 4) return Math.max(1, Math.round((n * PEAK_MS) / ms));
    n *= 4;
  }
})();
const peakTimings = []; // FLOP/s of every peak timing in the run
function timePeak() { // FLOP per CPU second
  const t0 = cpuMs();
  const flops = peak(peakN);
  const rate = flops / ((cpuMs() - t0) / 1000);
  peakTimings.push(rate);
  return rate;
}
const startPeaks = Array.from({ length: 21 }, timePeak);

// ---- PyTorch ----

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'; // Debian's python3-torch
const pytorchScript = path.join(root, 'tests/reference/pytorch_train.py');
const havePytorch = !args['no-pytorch'] && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const pytorchVersion = havePytorch ? spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() : '';
const pyDir = mkdtempSync(path.join(tmpdir(), 'webtrain-bench-py-'));

// Enough images for its shuffled batches; decoding all 50,000 as floats at every start only
// costs time and memory.
const PYTORCH_TRAIN_LIMIT = 10000;

function pytorch(modelPy, threads) {
  const r = spawnSync(python, [pytorchScript, '--data', dir, '--model', modelPy, '--bench-steps', String(STEPS), '--threads', String(threads), '--batch-size', String(BATCH), '--limit-train', String(Math.max(PYTORCH_TRAIN_LIMIT, BATCH))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch benchmark failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)).samples_per_s;
}

// ---- Timing ----

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

/**
 * The model's profile over PROFILE_STEPS steps in chunks of CHUNK, the peak timed before and
 * after each chunk. Returns per chunk: ms per step of each slot, and the peak around the chunk
 * (geometric mean of the two timings), so each layer's fraction of the peak is taken within
 * its chunk.
 */
function profileChunks(model, layerNames) {
  const read = model.startProfile(layerNames);
  const chunks = [];
  let before = read();
  for (let done = 0; done < PROFILE_STEPS; done += CHUNK) {
    const p0 = timePeak();
    for (let i = 0; i < CHUNK; i++) model.trainStepAt(train, permPtr + 4 * nextStart(), BATCH, stepNumber++);
    const p1 = timePeak();
    const after = read();
    chunks.push({ msPerStep: Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - before[k]) / CHUNK])), peak: Math.sqrt(p0 * p1) });
    before = after;
  }
  model.stopProfile();
  return chunks;
}

/** Wasm memory of a fresh engine holding only this net's model at maxBatch (no data loaded). */
async function freshMemory(text, maxBatch) {
  const fresh = await createEngine(module);
  const base = fresh.memoryBytes, heapBase = fresh.heapBytesInUse;
  createModelFromDescription(fresh, text, CIFAR10_FORMAT, { maxBatch, seed: 0 });
  return { memory: fresh.memoryBytes, base, heap: fresh.heapBytesInUse - heapBase };
}

// ---- Each net, printed as soon as it is measured ----

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log([
  `webtrain benchmark: batch ${BATCH}, Adam (lr 1e-3), ${real ? `real CIFAR-10 (${dir})` : 'generated data (real CIFAR-10 not found)'}`,
  `machine: ${cpu}, ${availableParallelism()} cores; Node ${process.version}; ${REPS} repetitions x ${STEPS} steps after ${WARMUP} warm-up steps (webtrain's contenders take turns every ${CHUNK} steps; PyTorch runs after them in each repetition, on the same net from its generated module, with the first ${PYTORCH_TRAIN_LIMIT} training images); median (min–max); ratios within each repetition, median (min–max)`,
  `Wasm SIMD128 multiply-add peak (wt_bench_peak, 12 chains of f32x4 mul + add, CPU time): ${fmt(median(startPeaks) / 1e9, 1)} GFLOP/s, median of ${startPeaks.length} timings of ${PEAK_MS} ms (${fmt(Math.min(...startPeaks) / 1e9, 1)}–${fmt(Math.max(...startPeaks) / 1e9, 1)})`,
].join('\n'));

// Memory first: quick, and printed even if a long run is stopped.
const memoryRows = [];
for (const name of MODELS) {
  const text = await descriptionText(name);
  const memory = [];
  for (const maxBatch of MEMORY_BATCHES) memory.push(await freshMemory(text, maxBatch));
  memoryRows.push({ name, memory });
}
const memoryLines = [''];
memoryLines.push(`Wasm memory of a fresh engine holding one model and no data (the engine alone: ${mib(memoryRows[0]?.memory[0].base ?? 0)}); in brackets the heap the model allocated. Loading CIFAR-10 adds its ${fmt(train.count + test.count)} records (${mib((train.count + test.count) * 3073)}). webtrain.wasm: ${fmt(readFileSync(wasmFile).length / 1024, 1)} KiB.`);
memoryLines.push('');
memoryLines.push(`| net | ${MEMORY_BATCHES.map((b) => `batch ${b}`).join(' | ')} |`);
memoryLines.push(`|---|${MEMORY_BATCHES.map(() => '---').join('|')}|`);
for (const { name, memory } of memoryRows) memoryLines.push(`| ${name} | ${memory.map((m) => `${mib(m.memory)} (${mib(m.heap)})`).join(' | ')} |`);
console.log(memoryLines.join('\n'));

const peakFractions = []; // { model, layer, pass, fraction } for the summary below the tables
for (const name of MODELS) {
  const text = await descriptionText(name);
  const model = createModelFromDescription(engine, text, CIFAR10_FORMAT, { maxBatch: BATCH, seed: 0 });
  const summary = summarize(model);
  const modelPy = path.join(pyDir, `${path.basename(name, '.txt')}.py`);
  writeFileSync(modelPy, generateModelPy(model.description, { ...CIFAR10_FORMAT, mean: [...CIFAR10_FORMAT.mean], std: [...CIFAR10_FORMAT.std] }));

  let stepper = null;
  if (ALL_WORKERS > 1) {
    // Its own model: the solo steps must not put the replicas out of step.
    const leaderModel = createModelFromDescription(engine, text, CIFAR10_FORMAT, { maxBatch: BATCH, seed: 0 });
    stepper = new DataParallelStepper(engine, leaderModel, train, startPeerWorkers(ALL_WORKERS - 1));
    await stepper.init({ module, trainFiles, testFiles, limit: Infinity, seed: 0, shuffle: true, lr: 0.001 });
  }

  const results = { one: [], all: [], pt1: [], pt2: [], evalOne: [], evalAll: [] };
  const chunks = [];
  for (let rep = 0; rep < REPS; rep++) {
    const contenders = [(start) => { model.trainStepAt(train, permPtr + 4 * start, BATCH, stepNumber++); }];
    if (stepper) contenders.push((start) => stepper.trainStep(permPtr, start, BATCH, 0, stepNumber++));
    const [one, all] = await timeSteps(contenders);
    results.one.push(one);
    if (stepper) results.all.push(all);
    let t0 = performance.now();
    model.evaluate(test);
    results.evalOne.push(test.count / ((performance.now() - t0) / 1000));
    if (stepper) {
      t0 = performance.now();
      await stepper.evaluate(test);
      results.evalAll.push(test.count / ((performance.now() - t0) / 1000));
    }
    chunks.push(...profileChunks(model, model.layerNames));
    if (havePytorch) {
      results.pt1.push(pytorch(modelPy, 1));
      results.pt2.push(pytorch(modelPy, 2));
    }
    process.stderr.write(`bench: ${name}: repetition ${rep + 1}/${REPS} done\n`);
  }
  if (stepper) {
    stepper.close();
    stepper.model.destroy();
  }

  const lines = [];
  const mflops = summary.totals.mflops;
  lines.push(`### ${name}: ${fmt(model.paramCount)} parameters, ${fmt(mflops, 2)} MFLOP forward per image (a training step about 3× that), gradient block ${model.block} images`);
  lines.push('');
  lines.push('| contender | training samples/s | ratio |');
  lines.push('|---|---|---|');
  lines.push(`| webtrain, 1 worker | ${range(results.one)} | ${havePytorch ? `${ratio(results.one, results.pt1)} PyTorch 1 thread` : ''} |`);
  if (stepper) lines.push(`| webtrain, ${ALL_WORKERS} workers | ${range(results.all)} | ${ratio(results.all, results.one)} 1 worker${havePytorch ? `, ${ratio(results.all, results.pt2)} PyTorch 2 threads` : ''} |`);
  if (havePytorch) {
    lines.push(`| PyTorch ${pytorchVersion}, 1 thread | ${range(results.pt1)} | |`);
    lines.push(`| PyTorch, 2 threads | ${range(results.pt2)} | ${ratio(results.pt2, results.pt1)} 1 thread |`);
  } else {
    lines.push('| PyTorch | not measured (`python3 -c "import torch"` failed or --no-pytorch) | |');
  }
  lines.push(`| webtrain evaluation, 1 worker | ${range(results.evalOne)} images/s | ${ratio(results.evalOne, results.one)} training with 1 worker |`);
  if (stepper) lines.push(`| webtrain evaluation, ${ALL_WORKERS} workers | ${range(results.evalAll)} images/s | ${ratio(results.evalAll, results.all)} training with ${ALL_WORKERS} workers |`);
  lines.push('');

  // Per-layer breakdown: medians over chunks of the per-step time and of the fraction of the peak.
  const slotMs = (slot) => median(chunks.map((c) => c.msPerStep[slot]));
  const stepMs = median(chunks.map((c) => Object.values(c.msPerStep).reduce((a, b) => a + b, 0)));
  lines.push(`Per-layer time, 1 worker: CPU µs per step (batch ${BATCH}, the model's profile clocked in this process's CPU time), median over ${chunks.length} chunks of ${CHUNK} steps; a profiled step took ${fmt(stepMs, 2)} CPU ms.`);
  lines.push('GFLOP/s for conv and linear layers: forward = the layer\'s FLOPs (2 per multiply-add) × images; backward = 2× forward (weight and input gradients), 1× for the first layer (no input gradient); "/ peak": within each chunk, divided by the peak timed around it.');
  lines.push('');
  lines.push('| layer | type | output | fwd µs | bwd µs | share | fwd GFLOP/s | fwd / peak | bwd GFLOP/s | bwd / peak |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  const fixed = ['decode', 'loss', 'grad tree', 'update'];
  const share = (ms) => `${fmt((100 * ms) / stepMs, 1)}%`;
  lines.push(`| decode | | | ${fmt(1000 * slotMs('decode'))} | | ${share(slotMs('decode'))} | | | | |`);
  summary.rows.forEach((row, i) => {
    const fwd = `${row.name} fwd`, bwd = `${row.name} bwd`;
    const cells = [row.name, row.type, row.shape.join('×'), fmt(1000 * slotMs(fwd)), fmt(1000 * slotMs(bwd)), share(slotMs(fwd) + slotMs(bwd))];
    if (row.type === 'conv' || row.type === 'linear') {
      const flopsFwd = model.layers[i].flops * BATCH, flopsBwd = flopsFwd * (i === 0 ? 1 : 2);
      for (const [slot, flops, pass] of [[fwd, flopsFwd, 'fwd'], [bwd, flopsBwd, 'bwd']]) {
        const gflops = median(chunks.map((c) => flops / c.msPerStep[slot] / 1e6));
        const fraction = median(chunks.map((c) => (flops / (c.msPerStep[slot] / 1000)) / c.peak));
        cells.push(fmt(gflops, 1), pct(fraction));
        peakFractions.push({ model: name, layer: row.name, pass, fraction, shape: row.shape });
      }
    } else {
      cells.push('', '', '', '');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  });
  for (const slot of fixed.slice(1)) lines.push(`| ${slot} | | | ${fmt(1000 * slotMs(slot))} | | ${share(slotMs(slot))} | | | | |`);
  console.log(`\n${lines.join('\n')}`);
  model.destroy();
}

const out = [''];
out.push(`Peak over the whole run: ${fmt(median(peakTimings) / 1e9, 1)} GFLOP/s (${fmt(Math.min(...peakTimings) / 1e9, 1)}–${fmt(Math.max(...peakTimings) / 1e9, 1)}, ${peakTimings.length} timings).`);
const below = peakFractions.filter((f) => f.fraction < 0.6);
out.push('');
out.push(`Conv and linear passes below 60% of the peak: ${below.length ? below.map((f) => `${f.model} ${f.layer} ${f.pass} ${pct(f.fraction)}`).join(', ') : 'none'}.`);
console.log(out.join('\n'));

// The inference peer: ONNX Runtime Web (Wasm, SIMD, one thread) on the same presets, exported to
// ONNX, beside webtrain's evaluation (src/node/bench-ort.js, also `npm run bench:ort` alone).
if (!args['no-ort']) {
  console.log('\nONNX Runtime Web as the inference peer (npm run bench:ort):');
  const ort = spawnSync(process.execPath, [path.join(root, 'src/node/bench-ort.js'), '--data', dir, '--reps', String(Math.max(3, REPS)), ...(args.models ? ['--models', args.models] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  console.log(ort.status === 0 ? ort.stdout.trim() : `not measured: bench-ort exited with status ${ort.status}`);
}

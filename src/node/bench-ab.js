// `npm run --silent bench:ab -- A.wasm B.wasm [...] [--model NAME|FILE] [--layers]`: one training step
// (batch 64, real CIFAR-10 when found, else generated data) and evaluation of 5,000 images with
// each build, in one process, the builds taking turns, so machine noise hits them alike. Times
// are this process's CPU time, so other processes' turns on a shared machine are not charged to
// either build. Prints each build's median times and its ratio to the first build, taken within
// each round, median (min-max) over rounds. For judging a kernel change:
// build the old tree's web/webtrain.wasm into a file, then compare it with the new one. A build
// from before the general engine (the seed's fixed SimpleCNN API) is detected by its exports and
// compared on SimpleCNN; --model (default simplecnn) picks the net for builds of the general
// engine. --layers (general engine builds) also clocks each layer's forward and backward in the
// timed steps (Model.startProfile: CPU time per layer, summed) and prints them per build, per
// step, with the same ratios: which layer a change moved. Asserts nothing.
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import path from 'node:path';

import { createEngine, CIFAR10_FORMAT } from '../../web/engine.js';
import { TRAIN_FILES } from '../../web/cifar.js';
import { createModelFromDescription } from '../../web/model-spec.js';
import { PRESETS, loadPreset } from '../../web/model-description.js';
import { realDataDir, realDataAvailable } from '../../tests/helpers/real-data.js';
import { writeSyntheticCifar } from '../../tests/helpers/synthetic.js';

const { values: args, positionals: builds } = parseArgs({ options: { model: { type: 'string', default: 'simplecnn' }, layers: { type: 'boolean', default: false } }, allowPositionals: true });
if (builds.length < 2 || !builds.every((f) => existsSync(f))) {
  console.error('usage: npm run --silent bench:ab -- A.wasm B.wasm [...] [--model NAME|FILE] (files that exist)');
  process.exit(2);
}
const ROUNDS = 8, STEPS = 60, BATCH = 64;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const dir = realDataAvailable ? realDataDir : writeSyntheticCifar(mkdtempSync(path.join(tmpdir(), 'webtrain-ab-')), { perTrainFile: 2000, test: 10 });
const bytes = new Uint8Array(readFileSync(path.join(dir, TRAIN_FILES[0])));
const modelText = PRESETS.some((p) => p.name === args.model) ? await loadPreset(args.model) : readFileSync(args.model, 'utf8');

// ---- Adapters: one per engine API, each giving { api, step(i), evaluate() } for a build. ----

/** The general engine (a net described as data): driven through web/engine.js and model-spec.js. */
function generalEngineSetup(engine) {
  const train = engine.loadDataset([{ name: TRAIN_FILES[0], bytes }]);
  const permPtr = engine.alloc(4 * train.count);
  engine.writePermutation(permPtr, train.count, 0, 0);
  const model = createModelFromDescription(engine, modelText, CIFAR10_FORMAT, { maxBatch: BATCH, seed: 0 });
  const steps = Math.floor(train.count / BATCH);
  const evalCount = Math.min(5000, train.count);
  return {
    api: `general engine, ${args.model}`, evalCount,
    layerNames: model.layerNames,
    profile: () => model.startProfile(model.layerNames),
    stopProfile: () => model.stopProfile(),
    step: (i) => model.trainStepAt(train, permPtr + 4 * ((i % steps) * BATCH), BATCH, i),
    evaluate: () => model.evaluate(train, { offset: 0, count: evalCount }),
  };
}

/**
 * The seed's API (before the general engine, e.g. commit 2b25305): SimpleCNN only, records
 * passed as (pointer, count), a 3,073-byte CIFAR-10 record. Driven by its exports directly,
 * as the seed's engine.js did, since today's engine.js no longer speaks it.
 */
function seedEngineSetup(engine) {
  if (args.model !== 'simplecnn') throw new Error(`bench:ab: a build of the seed's API trains only SimpleCNN, not --model ${args.model}`);
  const w = engine.wasm;
  const records = engine.alloc(bytes.byteLength), out = engine.alloc(16);
  engine.heapU8.set(bytes, records);
  engine.check(w.wt_records_check(records, bytes.byteLength, out), TRAIN_FILES[0]);
  const count = engine.heapI32[out >> 2];
  const permPtr = engine.alloc(4 * count);
  engine.writePermutation(permPtr, count, 0, 0);
  engine.check(w.wt_model_create(out, BATCH, 0), 'creating the model');
  const model = engine.heapU32[out >> 2];
  const adam = engine.alloc(32), lossPtr = engine.alloc(8);
  engine.heapF64.set([0.001, 0.9, 0.999, 1e-8], adam >> 3); // wt_adam_config: lr, beta1, beta2, eps
  const steps = Math.floor(count / BATCH);
  const evalCount = Math.min(5000, count);
  // correct (int32), loss (double), confusion (10x10 int32), predictions (one byte each)
  const scratch = engine.alloc(16 + 400 + evalCount);
  return {
    api: 'seed API, SimpleCNN', evalCount,
    step: (i) => engine.check(w.wt_model_train_step(model, records, count, permPtr + 4 * ((i % steps) * BATCH), BATCH, adam, lossPtr), 'training step'),
    evaluate: () => {
      engine.heapU8.fill(0, scratch, scratch + 416);
      engine.check(w.wt_model_evaluate(model, records, evalCount, scratch, scratch + 8, scratch + 16, scratch + 416), 'evaluation');
    },
  };
}

/** The adapter for a build, by its exports: wt_spec_check only in the general engine, wt_grad_block only in the seed's. */
function setupFor(engine, file) {
  const exports = engine.wasm;
  if (typeof exports.wt_spec_check === 'function') return generalEngineSetup(engine);
  if (typeof exports.wt_grad_block === 'function') return seedEngineSetup(engine);
  throw new Error(`bench:ab: ${file} exports neither API (no wt_spec_check, no wt_grad_block)`);
}

// ---- Timing ----

const setups = [];
for (const file of builds) {
  const engine = await createEngine(await WebAssembly.compile(readFileSync(file)));
  setups.push({ file, stepMs: [], evalMs: [], layerMs: [], ...setupFor(engine, file) });
}
/** This process's CPU time in ms (one thread does all the work here). */
const cpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
for (let round = 0; round < ROUNDS; round++) {
  for (const s of setups) {
    for (let i = 0; i < 10; i++) s.step(i);
    const times = [];
    const read = args.layers && s.profile ? s.profile() : null;
    for (let i = 0; i < STEPS; i++) {
      const t0 = cpuMs();
      s.step(i);
      times.push(cpuMs() - t0);
    }
    if (read) {
      s.layerMs.push(read());
      s.stopProfile();
    }
    s.stepMs.push(median(times));
    const t0 = cpuMs();
    s.evaluate();
    s.evalMs.push(cpuMs() - t0);
  }
}
console.log(`${realDataAvailable ? 'real CIFAR-10' : 'generated data'}; ${ROUNDS} rounds of ${STEPS} steps at batch ${BATCH}, builds taking turns; CPU time; medians, ratios to the first build within each round, median (min–max)`);
const [first] = setups;
const ratio = (mine, theirs) => {
  const r = mine.map((x, i) => x / theirs[i]);
  return `${median(r).toFixed(3)}× (${Math.min(...r).toFixed(3)}–${Math.max(...r).toFixed(3)})`;
};
for (const s of setups) {
  const step = median(s.stepMs), evalMs = median(s.evalMs);
  console.log(`${s.file} (${s.api}): training step ${step.toFixed(3)} ms (${ratio(s.stepMs, first.stepMs)} the first), evaluation ${(1000 * evalMs / s.evalCount).toFixed(1)} µs per image (${ratio(s.evalMs, first.evalMs)})`);
}

if (args.layers) {
  const profiled = setups.filter((s) => s.layerMs.length);
  if (profiled.length < 2 || profiled.length < setups.length) {
    console.log('--layers: only builds of the general engine have a per-layer profile');
  } else {
    // Each layer's forward + backward, ms per step; ratios within each round, as above.
    const names = Object.keys(profiled[0].layerMs[0]);
    console.log('');
    console.log(`| slot | ${profiled.map((s) => `${path.basename(s.file)} ms per step`).join(' | ')} | ${profiled.slice(1).map((s) => `${path.basename(s.file)} ÷ ${path.basename(profiled[0].file)}`).join(' | ')} |`);
    console.log(`|---|${profiled.map(() => '---|').join('')}${profiled.slice(1).map(() => '---|').join('')}`);
    for (const name of names) {
      const per = profiled.map((s) => s.layerMs.map((t) => t[name] / STEPS));
      if (per.every((xs) => median(xs) < 0.05)) continue;
      console.log(`| ${name} | ${per.map((xs) => median(xs).toFixed(2)).join(' | ')} | ${per.slice(1).map((xs) => ratio(xs, per[0])).join(' | ')} |`);
    }
  }
}

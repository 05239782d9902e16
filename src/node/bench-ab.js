// `npm run --silent bench:ab -- A.wasm B.wasm [...]`: one training step (batch 64, real
// CIFAR-10 when found, else generated data) and evaluation of 5,000 images with each build,
// in one process, the builds taking turns, so machine noise hits them alike. Prints each build's
// median times and each build's ratio to the first. For judging a kernel change: build the old
// tree's web/webtrain.wasm into a file, then compare it with the new one. Asserts nothing.
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createEngine } from '../../web/engine.js';
import { TRAIN_FILES } from '../../web/cifar.js';
import { realDataDir, realDataAvailable } from '../../tests/helpers/real-data.js';
import { writeSyntheticCifar } from '../../tests/helpers/synthetic.js';

const builds = process.argv.slice(2);
if (builds.length < 2 || !builds.every((f) => existsSync(f))) {
  console.error('usage: npm run --silent bench:ab -- A.wasm B.wasm [...] (files that exist)');
  process.exit(2);
}
const ROUNDS = 8, STEPS = 60, BATCH = 64;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const dir = realDataAvailable ? realDataDir : writeSyntheticCifar(mkdtempSync(path.join(tmpdir(), 'webtrain-ab-')), { perTrainFile: 2000, test: 10 });
const bytes = new Uint8Array(readFileSync(path.join(dir, TRAIN_FILES[0])));

const setups = [];
for (const file of builds) {
  const engine = await createEngine(await WebAssembly.compile(readFileSync(file)));
  const train = engine.loadDataset([{ name: TRAIN_FILES[0], bytes }]);
  const permPtr = engine.alloc(4 * train.count);
  engine.writePermutation(permPtr, train.count, 0, 0);
  const model = engine.createModel({ maxBatch: BATCH, seed: 0 });
  const steps = Math.floor(train.count / BATCH);
  const evalCount = Math.min(5000, train.count);
  setups.push({
    file, evalCount, stepMs: [], evalMs: [],
    step: (i) => model.trainStepAt(train, permPtr + 4 * ((i % steps) * BATCH), BATCH),
    evaluate: () => model.evaluate(train, { offset: 0, count: evalCount }),
  });
}
for (let round = 0; round < ROUNDS; round++) {
  for (const s of setups) {
    for (let i = 0; i < 10; i++) s.step(i);
    const times = [];
    for (let i = 0; i < STEPS; i++) {
      const t0 = performance.now();
      s.step(i);
      times.push(performance.now() - t0);
    }
    s.stepMs.push(median(times));
    const t0 = performance.now();
    s.evaluate();
    s.evalMs.push(performance.now() - t0);
  }
}
console.log(`${realDataAvailable ? 'real CIFAR-10' : 'generated data'}; ${ROUNDS} rounds of ${STEPS} steps at batch ${BATCH}, builds taking turns; medians`);
const [first] = setups;
for (const s of setups) {
  const step = median(s.stepMs), evalMs = median(s.evalMs);
  console.log(`${s.file}: training step ${step.toFixed(3)} ms (${(step / median(first.stepMs)).toFixed(3)}× the first), evaluation ${(1000 * evalMs / s.evalCount).toFixed(1)} µs per image (${(evalMs / median(first.evalMs)).toFixed(3)}×)`);
}

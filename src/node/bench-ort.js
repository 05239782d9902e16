// `npm run bench:ort`: webtrain's evaluation beside ONNX Runtime Web (its Wasm backend, SIMD, one
// thread) running the same model exported to ONNX, in the same process, for each preset. Both
// take raw uint8 pixels and give logits (webtrain also the loss and the confusion matrix).
// Contenders take turns within each repetition, so machine noise hits them alike; medians and
// ranges are printed. It measures; it asserts nothing.
// Usage: npm run bench:ort -- [--data DIR] [--reps N] [--images N] [--batch N] [--models a,b]
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine, CIFAR10_FORMAT } from '../../web/engine.js';
import { TEST_FILE } from '../../web/cifar.js';
import { PRESETS, loadPreset } from '../../web/model-description.js';
import { createModelFromDescription } from '../../web/model-spec.js';
import { exportOnnx } from '../../web/onnx-export.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    data: { type: 'string' }, reps: { type: 'string', default: '5' }, images: { type: 'string', default: '5000' },
    batch: { type: 'string', default: '64' }, models: { type: 'string' },
  },
});
const REPS = Number(args.reps), IMAGES = Number(args.images), BATCH = Number(args.batch);
const MODELS = args.models ? args.models.split(',') : PRESETS.map((p) => p.name);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const range = (xs) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

/** The test records: CIFAR-10's test_batch.bin where it is found, else a synthetic set. */
async function testRecords() {
  for (const dir of [args.data, process.env.WEBTRAIN_CIFAR_DIR, path.join(root, 'data/cifar-10-batches-bin'), path.join(root, '../shared/cifar-10-batches-bin')]) {
    if (dir && existsSync(path.join(dir, TEST_FILE))) return { bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))), real: true };
  }
  const { writeSyntheticCifar } = await import('../../tests/helpers/synthetic.js');
  const dir = writeSyntheticCifar(mkdtempSync(path.join(tmpdir(), 'webtrain-bench-ort-')), { perTrainFile: 1, test: IMAGES });
  return { bytes: new Uint8Array(readFileSync(path.join(dir, TEST_FILE))), real: false };
}

const ort = await import('onnxruntime-web');
ort.env.wasm.numThreads = 1; // one thread, as webtrain's evaluation here
ort.env.wasm.simd = true;
ort.env.logLevel = 'error';

const engine = await createEngine(readFileSync(path.join(root, 'web/webtrain.wasm')));
const { bytes: records, real } = await testRecords();
const test = engine.loadDataset([{ name: TEST_FILE, bytes: records }], { limit: IMAGES });
const count = test.count;
const pixels = new Uint8Array(count * 3072);
for (let i = 0; i < count; i++) pixels.set(records.subarray(i * 3073 + 1, (i + 1) * 3073), i * 3072);

console.log(`webtrain evaluation vs ONNX Runtime Web ${ort.env.versions?.web ?? ''} (Wasm, SIMD, 1 thread), ${count} ${real ? 'CIFAR-10 test' : 'synthetic'} images, batch ${BATCH}, ${REPS} repetitions, images/s median (range):`);
console.log('model       webtrain evaluate          ONNX Runtime Web           ratio');
for (const name of MODELS) {
  const model = createModelFromDescription(engine, await loadPreset(name), CIFAR10_FORMAT, { maxBatch: BATCH, seed: 0 });
  const session = await ort.InferenceSession.create(exportOnnx(model, { format: CIFAR10_FORMAT }), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const runOrt = async () => {
    for (let i = 0; i < count; i += BATCH) {
      const n = Math.min(BATCH, count - i);
      await session.run({ pixels: new ort.Tensor('uint8', pixels.subarray(i * 3072, (i + n) * 3072), [n, 3, 32, 32]) });
    }
  };
  const runWebtrain = async () => { model.evaluate(test); };
  const rates = { webtrain: [], ort: [], ratio: [] };
  await runWebtrain();
  await runOrt(); // warm-up: first runs allocate and plan
  for (let r = 0; r < REPS; r++) {
    const times = {};
    for (const [key, fn] of [['webtrain', runWebtrain], ['ort', runOrt]]) {
      const t0 = performance.now();
      await fn();
      times[key] = (performance.now() - t0) / 1000;
      rates[key].push(count / times[key]);
    }
    rates.ratio.push(times.ort / times.webtrain);
  }
  console.log(`${name.padEnd(11)} ${range(rates.webtrain).padEnd(26)} ${range(rates.ort).padEnd(26)} ${median(rates.ratio).toFixed(2)}x`);
  await session.release();
  model.destroy();
}
console.log('ratio: webtrain images/s over ONNX Runtime Web\'s, the median of the per-repetition ratios.');

// For the export tests: nets trained a few steps, test images as raw pixels, webtrain's logits
// on them, and the error measure the tests hold to 1e-5.
import { readFileSync } from 'node:fs';

import { CIFAR10_FORMAT } from '../../web/engine.js';
import { createModelFromDescription } from '../../web/model-spec.js';
import { makeRecords } from './synthetic.js';
import { presetText } from './models.js';

/** The nets every exporter is checked on: the presets and a net with every layer type. */
export const EXPORT_NETS = ['simplecnn', 'convnetjs', 'resnet', 'fast', 'every-layer'];

/** A preset's description, or the every-layer fixture's. */
export function netText(name) {
  if (name === 'every-layer') return readFileSync(new URL('../fixtures/every-layer/model.txt', import.meta.url), 'utf8');
  return presetText(name);
}

/** `name` trained `steps` steps of batch 32 on synthetic CIFAR-10 records (Adam, lr 0.003), its
 * whitening convs computed from them first. */
export function trainedNet(engine, name, { steps = 5, seed = 1 } = {}) {
  const model = createModelFromDescription(engine, netText(name), CIFAR10_FORMAT, { maxBatch: 32, seed });
  const train = engine.loadDataset([{ name: 'train', bytes: makeRecords(32 * steps, seed + 10) }]);
  model.initWhitening(train);
  model.setAdam({ lr: 0.003 });
  for (let s = 0; s < steps; s++) model.trainStep(train, Array.from({ length: 32 }, (_, i) => s * 32 + i), s);
  train.free();
  return model;
}

/** n test images (synthetic CIFAR-10 records) as raw uint8 pixels, (n, 3, 32, 32). */
export function testPixels(n, seed = 77) {
  const records = makeRecords(n, seed);
  const pixels = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) pixels.set(records.subarray(i * 3073 + 1, (i + 1) * 3073), i * 3072);
  return pixels;
}

/** The engine's normalisation, float32 step by step: ((float)v / 255 - mean[c]) / std[c]. */
export function normalise(pixels, { channels, height, width, mean, std } = CIFAR10_FORMAT) {
  const f = Math.fround, plane = height * width, x = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const c = Math.floor(i / plane) % channels;
    x[i] = f(f(f(pixels[i] / 255) - mean[c]) / std[c]);
  }
  return x;
}

/** webtrain's eval-mode logits on raw pixels, in batches the model takes. */
export function webtrainLogits(model, pixels) {
  const size = model.format.channels * model.format.height * model.format.width;
  const n = pixels.length / size, x = normalise(pixels), out = new Float32Array(n * model.classes);
  for (let i = 0; i < n; i += model.maxBatch) {
    const m = Math.min(model.maxBatch, n - i);
    out.set(model.run(x.subarray(i * size, (i + m) * size), m).logits, i * model.classes);
  }
  return out;
}

/** The largest difference relative to the largest logit: max |got - want| / max |want|. */
export function relativeError(got, want) {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

/** The first mismatches, for a failing comparison. */
export function firstMismatches(got, want, tolerance, max = 5) {
  const out = [];
  const scale = Math.max(...Array.from(want, Math.abs));
  for (let i = 0; i < want.length && out.length < max; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tolerance * scale)) out.push(`[${i}] ${got[i]} vs ${want[i]}`);
  }
  return out.join(', ');
}

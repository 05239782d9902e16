// Training-time augmentation decoded in C against a JavaScript reference of the same definition
// (PCG32 draws per (seed, epoch, record), translate with reflect or zero padding, flips, cutout),
// and the same run with one and two workers when it is on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { parseAugment, formatAugment, augments, parseTta } from '../web/augment.js';
import { DataParallelStepper } from '../web/parallel.js';
import { TrainingRun, formatAccuracy } from '../web/trainer.js';
import { resolveRecipe, evaluationPasses, evaluatesAfter } from '../web/recipe.js';
import { startPeerWorkers } from '../src/node/peer.js';
import { makeRecords } from './helpers/synthetic.js';
import { createSimpleCnn, createPresetModel } from './helpers/models.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));

// ---- the reference: src/rng.c and src/augment.c written again from their definitions ----

const MASK64 = (1n << 64n) - 1n;
function pcg32(seed, stream) {
  let state = 0n;
  const inc = ((stream << 1n) | 1n) & MASK64;
  const next = () => {
    const old = state;
    state = (old * 6364136223846793005n + inc) & MASK64;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  };
  next();
  state = (state + seed) & MASK64;
  next();
  const below = (bound) => { // Lemire's multiply-shift with rejection
    let product = BigInt(next()) * BigInt(bound);
    const threshold = (2 ** 32 - bound) % bound;
    while (Number(product & 0xffffffffn) < threshold) product = BigInt(next()) * BigInt(bound);
    return Number(product >> 32n);
  };
  return { below };
}

const STREAM_AUGMENT = 0x4155474d454e54n;
const recordRng = (seed, epoch, record) => pcg32((BigInt(seed) << 32n) | BigInt(epoch), STREAM_AUGMENT + BigInt(record));

function referenceView(a, seed, epoch, record, H, W) {
  const rng = recordRng(seed, epoch, record);
  const coin = rng.below(2);
  const dy = rng.below(2 * a.translate + 1) - a.translate;
  const dx = rng.below(2 * a.translate + 1) - a.translate;
  const cy = rng.below(H), cx = rng.below(W);
  let flip = 0;
  if (a.flip === 'random') flip = coin;
  if (a.flip === 'alternate') flip = (epoch === 0 ? coin : recordRng(seed, 0, record).below(2)) ^ (epoch & 1);
  const cut = a.cutout ? { y0: cy - (a.cutout >> 1), x0: cx - (a.cutout >> 1) } : null;
  return { flip, dy, dx, cut };
}

/** out(c, y, x) = in(c, y + dy, x') with x' = (flip ? W-1-x : x) + dx, then the cutout square is 0. */
function referenceImage(pixels, view, a, { mean, std }, C = 3, H = 32, W = 32) {
  const out = new Float32Array(C * H * W);
  const at = (i, n) => {
    if (i >= 0 && i < n) return i;
    if (a.padding === 'zero') return -1;
    return i < 0 ? -i : 2 * (n - 1) - i;
  };
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const sy = at(y + view.dy, H), sx = at((view.flip ? W - 1 - x : x) + view.dx, W);
        const byte = sy < 0 || sx < 0 ? 0 : pixels[c * H * W + sy * W + sx];
        let v = Math.fround(Math.fround(Math.fround(byte / 255) - Math.fround(mean[c])) / Math.fround(std[c]));
        const cut = view.cut;
        if (cut && y >= cut.y0 && y < cut.y0 + a.cutout && x >= cut.x0 && x < cut.x0 + a.cutout) v = 0;
        out[c * H * W + y * W + x] = v;
      }
    }
  }
  return out;
}

function firstMismatch(actual, expected) {
  for (let i = 0; i < expected.length; i++) if (!Object.is(actual[i], expected[i])) return i;
  return -1;
}

const NORMALISATION = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

test('augmented training images are the reference definition of the same draws, pixel for pixel', async () => {
  const engine = await createEngine(wasm);
  const records = makeRecords(40, 3);
  const train = engine.loadDataset([{ name: 'train', bytes: records }]);
  const model = createSimpleCnn(engine, { maxBatch: 64 });
  const configs = [
    'translate=2,padding=reflect',
    'translate=4,padding=zero',
    'flip=random',
    'flip=alternate',
    'airbench',
    'flip=random,translate=3,padding=zero,cutout=8',
    'cutout=12',
    'translate=31,padding=reflect',
  ];
  const indices = [0, 1, 7, 12, 39, 5];
  let changed = 0;
  for (const text of configs) {
    const a = parseAugment(text);
    for (const seed of [0, 1, 0xfffffffe]) {
      model.setAugment(a, seed);
      for (const epoch of [0, 1, 2, 5]) {
        model.setEpoch(epoch);
        const got = model.decode(train, indices, { train: true });
        indices.forEach((index, k) => {
          const view = referenceView(a, seed, epoch, index, 32, 32);
          const pixels = records.subarray(index * 3073 + 1, index * 3073 + 3073);
          const want = referenceImage(pixels, view, a, NORMALISATION);
          const image = got.subarray(k * 3072, (k + 1) * 3072);
          const at = firstMismatch(image, want);
          assert.equal(at, -1, `${text}, seed ${seed}, epoch ${epoch}, record ${index}: pixel ${at} is ${image[at]}, the reference ${want[at]} (view ${JSON.stringify(view)})`);
          if (firstMismatch(image, referenceImage(pixels, { flip: 0, dy: 0, dx: 0, cut: null }, a, NORMALISATION)) >= 0) changed++;
        });
      }
    }
  }
  assert.ok(changed > 300, `only ${changed} augmented images differ from the plain image`);
  // Evaluation and decode without `train` are never augmented.
  const plain = model.decode(train, [3]);
  const pixels = records.subarray(3 * 3073 + 1, 4 * 3073);
  assert.equal(firstMismatch(plain, referenceImage(pixels, { flip: 0, dy: 0, dx: 0, cut: null }, parseAugment('none'), NORMALISATION)), -1);
  model.destroy();
});

test('alternating flips: epoch 0 draws a flip per image and odd epochs mirror the whole set', async () => {
  const engine = await createEngine(wasm);
  const train = engine.loadDataset([{ name: 'train', bytes: makeRecords(64, 5) }]);
  const model = createSimpleCnn(engine, { maxBatch: 64 });
  model.setAugment('flip=alternate', 9);
  const indices = Array.from({ length: 64 }, (_, i) => i);
  const images = [0, 1, 2, 3].map((epoch) => { model.setEpoch(epoch); return model.decode(train, indices, { train: true }); });
  assert.deepEqual(images[2], images[0], 'even epochs see the same images');
  assert.deepEqual(images[3], images[1], 'odd epochs see the same images');
  const mirrored = (img) => img.map((_, i) => img[i - (i % 32) + 31 - (i % 32)]);
  assert.deepEqual(images[1], mirrored(images[0]), 'odd epochs are epoch 0 mirrored');
  const plain = model.decode(train, indices);
  let flipped = 0;
  for (let k = 0; k < 64; k++) flipped += firstMismatch(images[0].subarray(k * 3072, (k + 1) * 3072), plain.subarray(k * 3072, (k + 1) * 3072)) >= 0;
  assert.ok(flipped > 16 && flipped < 48, `${flipped} of 64 images flipped at epoch 0`);
  model.destroy();
});

test('augmentation settings: text forms, defaults and refusals', async () => {
  assert.deepEqual(parseAugment('none'), { flip: 'none', translate: 0, padding: 'reflect', cutout: 0 });
  assert.deepEqual(parseAugment('airbench'), { flip: 'alternate', translate: 2, padding: 'reflect', cutout: 0 });
  assert.deepEqual(parseAugment('flip,translate=4,padding=zero'), { flip: 'random', translate: 4, padding: 'zero', cutout: 0 });
  assert.equal(formatAugment('airbench'), 'flip=alternate,translate=2,padding=reflect');
  assert.equal(formatAugment(parseAugment(formatAugment('flip=random,cutout=8'))), 'flip=random,cutout=8');
  assert.equal(augments('none'), false);
  assert.equal(augments('cutout=4'), true);
  assert.throws(() => parseAugment('flip=sideways'), /flip=sideways is not valid/);
  assert.throws(() => parseAugment('rotate=3'), /unknown part 'rotate'/);
  assert.throws(() => parseTta('mirror'), /'mirror' is not one of none, flip, flip-translate/);
  const engine = await createEngine(wasm);
  const model = createSimpleCnn(engine, { maxBatch: 8 });
  assert.throws(() => model.setAugment('translate=32', 0), /translate 32 must be from 0 to 31/);
  assert.throws(() => model.setAugment('cutout=33', 0), /cutout 33/);
  assert.throws(() => model.setEpoch(-1), /epoch -1/);
  model.destroy();
});

const SMALL_BN_NET = `@ghost_batch 8
conv(8, 3, padding=1, bias=false, init='dirac')
batchnorm(eps=1e-12, momentum=0.4, weight=frozen)
gelu
maxpool(4)
flatten
linear(classes, bias=false)
scale(0.5)`;

async function trainRun(engine, module, workers, { augment, tta, recipe = {} }) {
  const trainFiles = [{ name: 'train', bytes: makeRecords(200, 21) }];
  const testFiles = [{ name: 'test', bytes: makeRecords(60, 22) }];
  const train = engine.loadDataset(trainFiles), test = engine.loadDataset(testFiles);
  const model = createPresetModel(engine, 'small', { maxBatch: 32, seed: 4, text: SMALL_BN_NET });
  const options = { epochs: 3, batchSize: 32, lr: 0.002, seed: 6, logEvery: 3, augment, tta, workers };
  const run = new TrainingRun(engine, model, { ...options, recipe, train, test });
  if (workers > 1) {
    run.stepper = new DataParallelStepper(engine, model, train, startPeerWorkers(workers - 1));
    await run.stepper.init({ module, trainFiles, testFiles, seed: 6, shuffle: true, lr: 0.002, augment });
  }
  const events = [];
  try {
    while (!run.done) events.push(...await run.runStep());
  } finally {
    run.stepper?.close();
  }
  const params = model.params();
  model.destroy();
  return { params, events: events.map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, detail, ...rest }) => rest) };
}

test('with augmentation and test-time augmentation, two workers train exactly the run of one', async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const settings = { augment: 'flip=alternate,translate=2,padding=reflect,cutout=6', tta: 'flip-translate' };
  const one = await trainRun(engine, module, 1, settings);
  const two = await trainRun(engine, module, 2, settings);
  // The test loss is summed per worker in double, then added: equal to the last bits only.
  const withoutLoss = (events) => events.map(({ test_loss, ...rest }) => rest);
  assert.deepEqual(withoutLoss(two.events), withoutLoss(one.events), 'two workers log a different run');
  two.events.forEach((e, i) => assert.ok(Math.abs((e.test_loss ?? 0) - (one.events[i].test_loss ?? 0)) < 1e-12));
  assert.deepEqual(two.params, one.params, 'two workers end with different parameters');
  const epochs = one.events.filter((e) => e.event === 'epoch');
  assert.equal(epochs.length, 3);
  for (const e of epochs) assert.equal(e.tta, 'flip-translate');
  const plain = await trainRun(engine, module, 1, { augment: 'none', tta: 'none' });
  assert.notDeepEqual(plain.params, one.params, 'augmentation changed nothing');
  assert.equal(plain.events.at(-1).tta, 'none');
});

test("tta_on 'last' evaluates the epochs before the last plain and the last with the test-time augmentation, on 1 or 2 workers", async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const settings = { augment: 'flip=alternate,translate=2,padding=reflect', tta: 'flip-translate' };
  const every = await trainRun(engine, module, 1, settings);
  const plain = await trainRun(engine, module, 1, { ...settings, tta: 'none' });
  const epochsOf = (run) => run.events.filter((e) => e.event === 'epoch');
  for (const workers of [1, 2]) {
    const last = await trainRun(engine, module, workers, { ...settings, recipe: { ttaOn: 'last' } });
    const epochs = epochsOf(last);
    assert.deepEqual(epochs.map((e) => e.tta), ['none', 'none', 'flip-translate']);
    assert.deepEqual(last.params, every.params, 'tta_on changed the training');
    // The plain epochs are plain evaluations, the last one is the TTA evaluation, of the same weights.
    assert.deepEqual(epochs.slice(0, 2).map((e) => e.correct), epochsOf(plain).slice(0, 2).map((e) => e.correct));
    assert.equal(epochs[2].correct, epochsOf(every)[2].correct);
    // The TTA evaluation also counts the images' own (first view's) predictions: the plain evaluation's.
    assert.equal(epochs[2].plain_correct, epochsOf(plain)[2].correct, `${workers} worker(s): plain_correct`);
    assert.equal(epochs[2].plain_accuracy, epochsOf(plain)[2].test_accuracy);
    assert.equal(epochs[0].plain_correct, undefined, 'a plain evaluation has no second figure');
    assert.match(formatAccuracy(epochs[2]), /^Test accuracy: \d+\.\d\d% \(\d+\/60, test-time augmentation flip-translate; without it \d+\.\d\d%\)$/);
  }
  assert.notDeepEqual(epochsOf(every).map((e) => e.correct), epochsOf(plain).map((e) => e.correct), 'the TTA made no difference to the test: it cannot tell the modes apart');
});

test('eval_every skips the evaluations between (never the last), on 1 or 2 workers, and changes nothing else', async () => {
  const module = await WebAssembly.compile(wasm);
  const engine = await createEngine(module);
  const settings = { augment: 'flip=alternate,translate=2,padding=reflect', tta: 'flip-translate' };
  const every = await trainRun(engine, module, 1, settings);
  const epochsOf = (run) => run.events.filter((e) => e.event === 'epoch');
  for (const [workers, evalEvery, ttaOn, evaluated, ttas] of [
    [1, 0, 'every', [false, false, true], ['flip-translate']],
    [2, 0, 'every', [false, false, true], ['flip-translate']],
    [2, 2, 'every', [false, true, true], ['flip-translate', 'flip-translate']],
    [1, 2, 'last', [false, true, true], ['none', 'flip-translate']],
  ]) {
    const what = `eval_every ${evalEvery}, tta_on ${ttaOn}, ${workers} worker(s)`;
    const run = await trainRun(engine, module, workers, { ...settings, recipe: { evalEvery, ttaOn } });
    const epochs = epochsOf(run);
    assert.deepEqual(epochs.map((e) => e.evaluated), evaluated, what);
    assert.deepEqual(run.params, every.params, `${what} changed the training`);
    // The loss events are the same run's; an epoch not evaluated carries no test figures.
    assert.deepEqual(run.events.filter((e) => e.event === 'loss'), every.events.filter((e) => e.event === 'loss'), what);
    for (const e of epochs.filter((x) => !x.evaluated)) {
      assert.deepEqual(Object.keys(e).filter((k) => /test|correct|total|tta/.test(k)), [], `${what}: epoch ${e.epoch}`);
    }
    const shown = epochs.filter((e) => e.evaluated);
    assert.deepEqual(shown.map((e) => e.tta), ttas, what);
    assert.equal(shown.at(-1).correct, epochsOf(every)[2].correct, `${what}: the final evaluation differs`);
    if (evalEvery === 2 && ttaOn === 'every') assert.equal(shown[0].correct, epochsOf(every)[1].correct);
  }
});

test('eval_every: the setting, its refusals, and the evaluation passes an estimate counts', () => {
  const fast = resolveRecipe(null, { epochs: 5, tta: 'flip-translate', ttaOn: 'last' });
  assert.equal(fast.evalEvery, 1, 'the default evaluates every epoch');
  assert.equal(evaluationPasses(fast, 5), 4 + 6);
  assert.equal(evaluationPasses({ ...fast, evalEvery: 0 }, 5), 6);
  assert.equal(evaluationPasses({ ...fast, evalEvery: 2 }, 5), 1 + 1 + 6);
  assert.equal(evaluationPasses({ ...fast, evalEvery: 2 }, 5, 4), 6, 'from epoch 5 on, only the last');
  assert.equal(evaluationPasses({ ...fast, ttaOn: 'every', evalEvery: 2 }, 5), 3 * 6);
  assert.deepEqual([1, 2, 3, 4, 5].map((e) => evaluatesAfter({ evalEvery: 7 }, e, 5)), [false, false, false, false, true]);
  assert.equal(resolveRecipe(null, { evalEvery: '3' }).evalEvery, 3);
  assert.throws(() => resolveRecipe(null, { evalEvery: '-1' }), /eval_every: expected an integer from 0/);
  assert.throws(() => resolveRecipe(null, { evalEvery: '1.5' }), /eval_every: expected an integer from 0/);
});

test('a run resumed mid-epoch from a checkpoint with augmentation on ends bit for bit as the straight run', async () => {
  const engine = await createEngine(wasm);
  const train = engine.loadDataset([{ name: 'train', bytes: makeRecords(200, 21) }]);
  const test_ = engine.loadDataset([{ name: 'test', bytes: makeRecords(40, 22) }]);
  const options = { epochs: 2, batchSize: 32, lr: 0.002, seed: 6, logEvery: 100, augment: 'airbench', tta: 'flip', train, test: test_ };
  const make = () => createPresetModel(engine, 'small', { maxBatch: 32, seed: 4, text: SMALL_BN_NET });
  const straight = make();
  const a = new TrainingRun(engine, straight, options);
  while (!a.done) await a.runStep();
  const first = make();
  const b = new TrainingRun(engine, first, options);
  while (b.epoch < 1 || b.step < 3) await b.runStep();
  const bytes = b.checkpoint();
  const resumed = make();
  const state = resumed.loadCheckpoint(bytes);
  assert.deepEqual([state.epoch, state.step], [1, 3]);
  const c = new TrainingRun(engine, resumed, { ...options, resume: state });
  while (!c.done) await c.runStep();
  assert.deepEqual(resumed.params(), straight.params(), 'the resumed run ends with other parameters');
  assert.deepEqual(resumed.running(), straight.running());
});

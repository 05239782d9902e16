// airbench's pieces against PyTorch (fixture: tests/reference/make_airbench_fixture.py): the
// whitening conv computed from the data, Dirac init, batch norm with a frozen weight, and
// test-time augmentation (none, flip, flip + translate) in evaluation. Both Wasm builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';

import { createEngine, CIFAR10_FORMAT } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { relErr, BUILDS } from './helpers/compare.js';

const dir = new URL('./fixtures/airbench/', import.meta.url);
const meta = JSON.parse(readFileSync(new URL('meta.json', dir), 'utf8'));
const records = new Uint8Array(readFileSync(new URL('records.bin', dir)));
const blob = readFileSync(new URL('tensors.bin', dir));
const all = new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
const tensor = (name) => {
  const e = meta.tensors.find((t) => t.name === name);
  assert.ok(e, `fixture has no ${name}`);
  return all.subarray(e.offset, e.offset + e.count);
};
const FORMAT = { ...CIFAR10_FORMAT, mean: meta.mean, std: meta.std };

function weightOf(model, name) {
  const i = model.tensorNames.indexOf(name);
  assert.ok(i >= 0, `no tensor ${name} in ${model.tensorNames.join(' ')}`);
  const t = model.tensors[i];
  return { info: t, values: model.params().subarray(t.offset, t.offset + t.count) };
}

function firstDifferences(got, want, n = 5) {
  const out = [];
  for (let i = 0; i < want.length && out.length < n; i++) if (Math.abs(got[i] - want[i]) > 1e-6 * (1 + Math.abs(want[i]))) out.push(`[${i}] ${got[i]} vs ${want[i]}`);
  return out.join(', ');
}

const whitened = {};
for (const [build, url] of BUILDS) {
  test(`${build} build: the whitening conv is PyTorch's eigenvectors of the patch matrix, frozen, and in the checkpoint`, async () => {
    assert.ok(existsSync(url), `${url.pathname} missing: run npm run build`);
    const engine = await createEngine(readFileSync(url));
    const train = engine.loadDataset([{ name: 'records.bin', bytes: records }]);
    const model = createModelFromDescription(engine, meta.description, FORMAT, { maxBatch: 16, seed: 3 });
    const before = weightOf(model, 'whiten.weight').values;
    assert.equal(model.initWhitening(train), 1);
    const { info, values } = weightOf(model, 'whiten.weight');
    const want = tensor('whiten');
    const err = relErr(values, want);
    assert.ok(err < 1e-6, `whitening weights: relative error ${err.toExponential(2)}; first differences ${firstDifferences(values, want)}`);
    assert.notDeepEqual(before, values);
    assert.equal(info.trainable, false, 'the whitening weight is frozen');
    assert.equal(weightOf(model, 'whiten.bias').info.trainable, true, 'its bias trains');
    assert.equal(weightOf(model, 'bn1.weight').info.trainable, false, "batch norm's weight=frozen");
    assert.equal(weightOf(model, 'bn1.bias').info.trainable, true);
    whitened[build] = values;
    if (whitened.SIMD && whitened.scalar) assert.deepEqual(whitened.SIMD, whitened.scalar, 'the two builds whiten alike, bit for bit');
    // Saved and restored as ordinary parameters.
    const run = { epoch: 0, step: 0, epochs: 1, batchSize: 16, shuffle: true, workers: 1, seed: 3, trainCount: train.count, windowCount: 0, windowSum: 0, adam: { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8 } };
    const bytes = model.saveCheckpoint(run);
    const other = createModelFromDescription(engine, meta.description, FORMAT, { maxBatch: 16, seed: 4 });
    other.loadCheckpoint(bytes);
    assert.deepEqual(weightOf(other, 'whiten.weight').values, values);
    // Too few channels for the spec: the engine names the layer and the rule.
    assert.throws(() => createModelFromDescription(engine, 'conv(12, 2, init=\'whiten\')\nflatten\nlinear(classes)', FORMAT),
      /line 1: conv whiten1|line 1: conv conv1: a whitening conv has 2 x in_channels x kernel\^2 = 24 out_channels/);
    assert.throws(() => createModelFromDescription(engine, 'conv(8, 3)\nconv(24, 2, init=\'whiten\')\nflatten\nlinear(classes)', FORMAT),
      /line 2: conv conv2: a whitening conv must read the input images/);
    model.destroy();
    other.destroy();
  });

  test(`${build} build: once a group freezes, the layers below the first trained one get no backward, and the other gradients are unchanged`, async () => {
    const engine = await createEngine(readFileSync(url));
    const data = engine.loadDataset([{ name: 'records.bin', bytes: records }]);
    const make = () => {
      const m = createModelFromDescription(engine, meta.description, FORMAT, { maxBatch: 16, seed: 5 });
      m.initWhitening(data);
      m.setTensorGroups(m.tensorNames.map((name) => (name === 'whiten.bias' ? 1 : 0)));
      return m;
    };
    const sgd = (frozen) => ({ kind: 'sgd', momentum: 0.9, nesterov: true, groups: [{ lr: 0.05 }, { lr: 0.05, frozen }] });
    const frozen = make(), fresh = make();
    const batch = Array.from({ length: 16 }, (_, i) => i);
    frozen.setOptimizer(sgd(true));
    frozen.trainStep(data, batch, 0); // an update with the whitening bias frozen: the backward now starts at conv1
    fresh.paramsView().set(frozen.paramsView()); // the same weights, on a model no update has frozen anything in
    fresh.runningView().set(frozen.runningView());
    frozen.gradient(data, batch, 1);
    fresh.gradient(data, batch, 1);
    const g = frozen.grads(), want = fresh.grads();
    const bias = frozen.tensors[frozen.tensorNames.indexOf('whiten.bias')];
    const range = (a, t) => Array.from(a.subarray(t.offset, t.offset + t.count));
    assert.ok(range(want, bias).some((v) => v !== 0), 'the full backward reaches the whitening bias');
    assert.ok(range(g, bias).every((v) => v === 0), 'the frozen whitening conv got no backward');
    // The whitening conv's tensors come first; every later gradient and batch statistic is the full backward's.
    const after = Math.max(...frozen.tensors.filter((t, i) => frozen.tensorNames[i].startsWith('whiten.')).map((t) => t.offset + t.count));
    assert.ok(after < frozen.paramCount);
    assert.deepEqual(g.subarray(after), want.subarray(after), 'the other gradients are bit for bit the full backward\'s');
    // Unfreezing on the same model would need gradients the last backward skipped: refused, weights kept.
    const before = frozen.params();
    frozen.setOptimizer(sgd(false));
    assert.throws(() => frozen.update(1), /layer 0's parameters are trained again, but the last update froze them/);
    assert.deepEqual(frozen.params(), before);
    frozen.destroy();
    fresh.destroy();
  });

  test(`${build} build: init='dirac' is torch.nn.init.dirac_ on the first min(out, in) output channels`, async () => {
    const engine = await createEngine(readFileSync(url));
    const model = createModelFromDescription(engine, meta.description, FORMAT, { maxBatch: 16 });
    assert.deepEqual(weightOf(model, 'conv1.weight').values, tensor('dirac_8x24'));
    const wide = createModelFromDescription(engine, "conv(32, 3, padding=1, init='dirac')", { channels: 8, height: 5, width: 5, classes: 2 }, { head: false });
    const w = weightOf(wide, 'conv1.weight').values;
    assert.deepEqual(w.subarray(0, 8 * 8 * 9), tensor('dirac_32x8'));
    assert.ok(w.subarray(8 * 8 * 9).some((v) => v !== 0), 'the other output channels keep the default init');
    model.destroy();
    wide.destroy();
  });

  test(`${build} build: test-time augmentation gives airbench's averaged logits (none, flip, flip-translate)`, async () => {
    const engine = await createEngine(readFileSync(url));
    const data = engine.loadDataset([{ name: 'records.bin', bytes: records }]);
    const model = createModelFromDescription(engine, meta.description, FORMAT, { maxBatch: 16 });
    const params = model.paramsView(), running = model.runningView();
    model.tensorNames.forEach((name, i) => {
      const t = model.tensors[i];
      (t.role.startsWith('running') ? running : params).set(tensor(`state:${name}`), t.offset);
    });
    const results = {};
    for (const tta of ['none', 'flip', 'flip-translate']) {
      const logits = new Float32Array(meta.records * 10);
      for (let offset = 0; offset < meta.records; offset += 16) {
        const r = model.evaluate(data, { offset, count: 16, tta });
        assert.equal(r.tta, tta);
        logits.set(model.logits(16), offset * 10);
      }
      const want = tensor(`tta_${tta}`);
      const err = relErr(logits, want);
      assert.ok(err < 1e-5, `${tta}: relative error ${err.toExponential(2)}; first differences ${firstDifferences(logits, want)}`);
      results[tta] = logits;
    }
    assert.ok(relErr(results.flip, results.none) > 1e-3 && relErr(results['flip-translate'], results.flip) > 1e-3, 'the views change the logits');
    assert.throws(() => model.evaluate(data, { tta: 'rotate' }), /'rotate' is not one of none, flip, flip-translate/);
    model.destroy();
  });
}

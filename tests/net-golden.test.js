// A whole ResNet-style net with batch norm and residual blocks against PyTorch (fixtures made by
// tests/reference/make_net_golden.py): logits, loss, every gradient, and the parameters and running
// statistics after 3 Adam steps, then eval-mode logits. Both the SIMD and the scalar Wasm builds.
// The SimpleCNN golden test is tests/golden.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';

import { createEngine, CIFAR10_FORMAT } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { relErr, BUILDS } from './helpers/compare.js';
import { parseDescription, describeDifference } from '../web/model-description.js';

const dir = new URL('./fixtures/net-resnet/', import.meta.url);
const meta = JSON.parse(readFileSync(new URL('meta.json', dir), 'utf8'));
const floats = (name) => {
  const b = readFileSync(new URL(name, dir));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const TOL = 1e-5;

for (const [build, url] of BUILDS) {
  test(`${build} build: the ResNet-style net matches PyTorch (logits, loss, gradients, 3 Adam steps, eval)`, async (t) => {
    assert.ok(existsSync(url), `${url.pathname} missing: run npm run build`);
    const engine = await createEngine(readFileSync(url));
    const json = JSON.parse(readFileSync(new URL('model.json', dir), 'utf8'));
    assert.equal(describeDifference(parseDescription(readFileSync(new URL('model.txt', dir), 'utf8')), json), null);
    const model = createModelFromDescription(engine, json, CIFAR10_FORMAT, { maxBatch: meta.batch });
    assert.equal(model.paramCount, meta.param_count);
    const state = floats('weights.bin'), after = floats('params_after_3.bin');
    const entry = (name) => meta.params.find((p) => p.name === name);
    const load = (source) => model.tensorNames.forEach((name, i) => {
      const info = model.tensors[i], e = entry(name);
      (info.role.startsWith('running') ? model.runningView() : model.paramsView()).set(source.subarray(e.offset, e.offset + e.count), info.offset);
    });
    load(state);
    const data = engine.loadDataset([{ name: 'records.bin', bytes: new Uint8Array(readFileSync(new URL('records.bin', dir))) }]);
    const first = Array.from({ length: meta.batch }, (_, i) => i);
    const errors = {};
    const lossSum = model.forward(data, first);
    errors.logits = relErr(model.logits(meta.batch), floats('logits.bin'));
    errors.loss = Math.abs(lossSum / meta.batch - meta.loss) / meta.loss;
    load(state); // forward in train mode leaves the running statistics alone, but be explicit
    model.gradient(data, first);
    const grads = model.gradsView(), want = floats('grads.bin');
    let worstGrad = 0;
    model.tensorNames.forEach((name, i) => {
      const info = model.tensors[i];
      if (info.role.startsWith('running')) return;
      const g = meta.grads.find((x) => x.name === name);
      const e = relErr(grads.subarray(info.offset, info.offset + info.count), want.subarray(g.offset, g.offset + g.count));
      worstGrad = Math.max(worstGrad, e);
    });
    errors.grads = worstGrad;
    const losses = [];
    for (let s = 0; s < meta.steps; s++) losses.push(model.trainStep(data, first.map((i) => i + s * meta.batch)));
    errors.losses = Math.max(...losses.map((l, i) => Math.abs(l - meta.losses[i]) / meta.losses[i]));
    let worstParam = 0, worstRunning = 0;
    model.tensorNames.forEach((name, i) => {
      const info = model.tensors[i], e = entry(name);
      const running = info.role.startsWith('running');
      const got = (running ? model.runningView() : model.paramsView()).subarray(info.offset, info.offset + info.count);
      const err = relErr(got, after.subarray(e.offset, e.offset + e.count));
      if (running) worstRunning = Math.max(worstRunning, err);
      else worstParam = Math.max(worstParam, err);
    });
    errors.params = worstParam;
    errors.running = worstRunning;
    const tracked = meta.params.find((p) => p.name.endsWith('num_batches_tracked'));
    assert.equal(model.statSteps - state[tracked.offset], meta.steps, 'num_batches_tracked counts the steps');
    const evalLogits = [];
    // Eval-mode logits (running statistics) through the engine's run on the decoded images.
    const x = new Float32Array(meta.batch * 3072);
    const recs = new Uint8Array(readFileSync(new URL('records.bin', dir)));
    for (let b = 0; b < meta.batch; b++) for (let i = 0; i < 3072; i++) x[b * 3072 + i] = (recs[b * 3073 + 1 + i] / 255 - 0.5) / 0.5;
    evalLogits.push(...model.run(x, meta.batch).logits);
    errors.evalLogits = relErr(evalLogits, floats('logits_eval_after_3.bin'));
    t.diagnostic(`${build}: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
    for (const [what, err] of Object.entries(errors)) assert.ok(err <= TOL, `${what}: relative error ${err.toExponential(2)} > ${TOL}`);
  });
}

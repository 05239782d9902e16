// The optimizers and the loss against PyTorch (fixtures made by tests/reference/make_optim_fixtures.py):
// 3 steps of Adam, Adam with weight decay, AdamW, SGD (plain, momentum, dampening, Nesterov,
// coupled and decoupled weight decay) with parameter groups, frozen groups and a changing learning
// rate; the parameters after each step and the optimizer's buffers after the last. Then
// cross-entropy with label smoothing (loss and gradients), and the weights' moving average.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { relErr, BUILDS } from './helpers/compare.js';

const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/optim/${name}`, import.meta.url), 'utf8'));
const floats = (b64) => {
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

/** Largest |got - want| in units of want's float32 spacing (ulps), and where. */
function worstUlps(got, want) {
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const ulp = Math.max(Math.abs(want[i]) * 2 ** -23, 2 ** -126);
    const d = Math.abs(got[i] - want[i]) / ulp;
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  return { worst, at };
}

/** Passes within `ulps` per element; otherwise prints the first mismatches and fails. */
function assertClose(got, want, label, ulps) {
  const { worst, at } = worstUlps(got, want);
  if (worst <= ulps) return worst;
  const lines = [];
  for (let i = 0; i < want.length && lines.length < 5; i++) {
    if (Math.abs(got[i] - want[i]) > Math.max(Math.abs(want[i]) * 2 ** -23, 2 ** -126) * ulps) lines.push(`  [${i}] got ${got[i]}, want ${want[i]}`);
  }
  assert.fail(`${label}: ${worst.toFixed(1)} ulps at ${at} (relative L2 ${relErr(got, want).toExponential(2)})\n${lines.join('\n')}`);
}

// torch's CPU kernels fuse some multiply-adds (Vectorized fmadd) where webtrain rounds twice: a
// few ulps after three steps. A wrong formula (a missed dampening, a coupled decay) is thousands.
const OPTIM_ULPS = 64;

for (const [build, url] of BUILDS) {
  test(`${build} build: optimizers match torch.optim over 3 steps, with groups, frozen groups and buffers`, async (t) => {
    assert.ok(existsSync(url), `${url.pathname} missing: run npm run build`);
    const engine = await createEngine(readFileSync(url));
    const f = fixture('optim.json');
    const model = createModelFromDescription(engine, f.description, { ...f.format, mean: [0.5, 0.5], std: [0.5, 0.5] }, { maxBatch: 1, head: false });
    const trainable = model.tensors.map((info, i) => ({ info, i })).filter(({ info }) => !info.role.startsWith('running'));
    assert.deepEqual(trainable.map(({ info }) => info.shape), f.tensors.map((x) => x.shape), 'the net has the fixture tensors');
    const start = floats(f.start);
    const report = [];
    for (const c of f.cases) {
      engine.wasm.wt_model_init(model.ptr, 0);
      model.paramsView().set(start);
      const groupOf = new Array(model.tensors.length).fill(0);
      c.groups.forEach((g, k) => g.tensors.forEach((ti) => { groupOf[trainable[ti].i] = k; }));
      model.setTensorGroups(groupOf);
      let worst = 0;
      for (let step = 0; step < c.lrs.length; step++) {
        model.gradsView().fill(0);
        model.gradsView().set(floats(f.grads[step]));
        const o = c.options;
        model.setOptimizer({
          kind: c.optimizer, beta1: o.betas?.[0], beta2: o.betas?.[1], eps: o.eps,
          momentum: o.momentum, dampening: o.dampening, nesterov: o.nesterov, decoupled: c.decoupled,
          groups: c.groups.map((g, k) => ({ lr: c.lrs[step][k], weightDecay: g.weight_decay, frozen: step >= (c.frozen_from[k] ?? Infinity) })),
        });
        model.update(1);
        worst = Math.max(worst, assertClose(model.params(), floats(c.params_after[step]), `${c.name} step ${step + 1} parameters`, OPTIM_ULPS));
      }
      const state = model.exportState();
      const buffers = { exp_avg: state.adamM, exp_avg_sq: state.adamV, momentum_buffer: state.adamM };
      for (const [key, want] of Object.entries(c.state)) {
        worst = Math.max(worst, assertClose(buffers[key], floats(want), `${c.name} ${key}`, OPTIM_ULPS));
      }
      assert.equal(model.optimizer, c.optimizer);
      report.push(`${c.name} ${worst.toFixed(1)}`);
    }
    t.diagnostic(`worst ulps per case: ${report.join(', ')}`);
    model.destroy();
  });

  test(`${build} build: cross-entropy with label smoothing matches nn.CrossEntropyLoss (loss and gradients)`, async (t) => {
    const engine = await createEngine(readFileSync(url));
    const f = fixture('loss.json');
    const fmt = f.format;
    const format = { ...fmt, recordBytes: 1 + fmt.channels * fmt.height * fmt.width, labelOffset: 0, pixelOffset: 1, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const model = createModelFromDescription(engine, f.description, format, { maxBatch: 8 });
    const records = engine.loadDataset([{ name: 'loss records', bytes: Buffer.from(f.records, 'base64') }], { format });
    const weight = floats(f.weight), bias = floats(f.bias);
    const params = new Float32Array(model.paramCount);
    params.set(weight, 0);
    params.set(bias, weight.length);
    const indices = Array.from({ length: records.count }, (_, i) => i);
    for (const c of f.cases) {
      model.paramsView().set(params);
      model.setLabelSmoothing(c.label_smoothing);
      const lossSum = model.gradient(records, indices);
      const lossErr = Math.abs(lossSum - c.loss_sum) / Math.abs(c.loss_sum);
      assert.ok(lossErr < 1e-6, `smoothing ${c.label_smoothing}: loss ${lossSum} vs ${c.loss_sum}`);
      const grads = model.grads();
      const gw = relErr(grads.subarray(0, weight.length), floats(c.grad_weight));
      const gb = relErr(grads.subarray(weight.length, weight.length + bias.length), floats(c.grad_bias));
      assert.ok(gw < 1e-6 && gb < 1e-6, `smoothing ${c.label_smoothing}: gradients differ (weight ${gw}, bias ${gb})`);
      // Evaluation reports the plain cross-entropy whatever the smoothing.
      const evaluated = model.evaluate(records);
      assert.ok(Math.abs(evaluated.loss * evaluated.total - f.cases[0].loss_sum) / f.cases[0].loss_sum < 1e-6, 'evaluation loss is plain cross-entropy');
      t.diagnostic(`smoothing ${c.label_smoothing}: loss error ${lossErr.toExponential(1)}, gradient errors ${gw.toExponential(1)}, ${gb.toExponential(1)}`);
    }
    assert.throws(() => model.setLabelSmoothing(1), /label smoothing 1 is outside \[0, 1\)/);
    assert.throws(() => model.setLabelSmoothing(-0.1), /outside/);
    model.destroy();
    records.free();
  });

  test(`${build} build: the weights' moving average is torch's lerp_, swaps in and out, and copies back`, async () => {
    const engine = await createEngine(readFileSync(url));
    const f = fixture('optim.json');
    const model = createModelFromDescription(engine, f.description, { ...f.format, mean: [0.5, 0.5], std: [0.5, 0.5] }, { maxBatch: 1, head: false });
    assert.equal(model.emaActive, false);
    assert.throws(() => model.emaUpdate(0.9), /average was not started/);
    const w0 = model.params(), r0 = model.running();
    model.emaReset();
    assert.deepEqual(model.ema(), Float32Array.from([...w0, ...r0]));
    const w1 = floats(f.start);
    model.paramsView().set(w1);
    // torch.lerp: below weight 0.5 self + w * (end - self); otherwise end - (end - self) * (1 - w).
    const lerp = (a, b, w) => (Math.abs(w) < 0.5 ? Math.fround(a + Math.fround(w * Math.fround(b - a))) : Math.fround(b - Math.fround(Math.fround(b - a) * Math.fround(1 - w))));
    for (const decay of [0.95 ** 5 * 0.3 ** 3, 0.9]) {
      const before = model.ema(), weights = model.params();
      model.emaUpdate(decay);
      const w = Math.fround(1 - decay);
      const want = before.map((e, i) => lerp(e, i < weights.length ? weights[i] : r0[i - weights.length], w));
      assert.deepEqual(model.ema(), want, `decay ${decay}`);
    }
    const ema = model.ema(), weights = model.params();
    model.emaSwap();
    assert.deepEqual(model.params(), ema.subarray(0, model.paramCount));
    model.emaSwap();
    assert.deepEqual(model.params(), weights);
    model.emaUpdate(1, true); // airbench's last step: the weights become the average
    assert.deepEqual(model.params(), ema.subarray(0, model.paramCount));
    assert.throws(() => model.emaUpdate(1.5), /EMA decay 1.5 is outside/);
    model.destroy();
  });
}

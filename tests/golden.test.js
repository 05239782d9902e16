// The engine against PyTorch: logits, loss, every gradient and three Adam steps from fixed
// weights, for both the SIMD and the scalar Wasm builds, and evaluation against forward.
// Fixtures: tests/reference/make_golden.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { createSimpleCnn } from './helpers/models.js';

const fixture = (name) => new URL(`./fixtures/golden/${name}`, import.meta.url);
const floats = (name) => { const b = readFileSync(fixture(name)); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const meta = JSON.parse(readFileSync(fixture('meta.json'), 'utf8'));
const records = new Uint8Array(readFileSync(fixture('records.bin')));
const weights = new Uint8Array(readFileSync(fixture('weights.bin')));
// Agreement asked of every tensor: ||got - want|| / ||want|| <= TOL (L2 norms). Element by
// element, float32 sums taken in another order differ by more than 1e-5 wherever terms cancel,
// so the norm is the meaningful measure; the largest element-wise difference is printed too.
const TOL = 1e-5;

/** Relative L2 error of a tensor; prints the worst elements when it is over TOL. */
function compare(label, got, want) {
  assert.equal(got.length, want.length, `${label}: length`);
  let diff2 = 0, ref2 = 0;
  for (let i = 0; i < want.length; i++) {
    diff2 += (got[i] - want[i]) ** 2;
    ref2 += want[i] ** 2;
  }
  const err = Math.sqrt(diff2 / Math.max(ref2, 1e-300));
  if (err > TOL) {
    const order = Array.from(want.keys()).sort((a, b) => Math.abs(got[b] - want[b]) - Math.abs(got[a] - want[a]));
    console.log(`${label}: relative L2 error ${err.toExponential(2)}; largest differences:\n  ` +
      order.slice(0, 5).map((i) => `[${i}] got ${got[i]} want ${want[i]}`).join('\n  '));
  }
  return err;
}

function compareParams(label, got, want) {
  let worst = 0;
  for (const p of meta.params) {
    const e = compare(`${label} ${p.name}`, got.subarray(p.offset, p.offset + p.count), want.subarray(p.offset, p.offset + p.count));
    worst = Math.max(worst, e);
  }
  return worst;
}

const builds = [
  ['SIMD', new URL('../web/webtrain.wasm', import.meta.url)],
  ['scalar', new URL('../build/wasm/webtrain-scalar.wasm', import.meta.url)],
];

for (const [name, url] of builds) {
  test(`${name} build matches PyTorch (fixtures from torch ${meta.torch_version})`, async (t) => {
    assert.ok(existsSync(url), `${url.pathname} missing: run npm run build`);
    const engine = await createEngine(readFileSync(url));
    const data = engine.loadDataset([{ name: 'records.bin', bytes: records }]);
    const model = createSimpleCnn(engine, { maxBatch: meta.batch, seed: 0 });
    model.importWeights(weights);
    const first = Array.from({ length: meta.batch }, (_, i) => i);

    const lossSum = model.forward(data, first);
    const logitErr = compare('logits', model.logits(meta.batch), floats('logits.bin'));
    const lossErr = Math.abs(lossSum / meta.batch - meta.loss) / meta.loss;
    // Evaluation runs its own fused inference path: the same loss and argmax, to the bit.
    const logits = model.logits(meta.batch);
    const evaluated = model.evaluate(data, { offset: 0, count: meta.batch });
    assert.equal(evaluated.loss, lossSum / meta.batch, 'evaluation loss differs from forward');
    assert.deepEqual(Array.from(evaluated.predictions), first.map((b) => {
      let best = 0;
      for (let k = 1; k < 10; k++) if (logits[b * 10 + k] > logits[b * 10 + best]) best = k;
      return best;
    }), 'evaluation predictions differ from the argmax of forward logits');

    model.gradient(data, first);
    const gradErr = compareParams('grad', model.grads(), floats('grads.bin'));

    const losses = [];
    for (let s = 0; s < meta.steps; s++) {
      losses.push(model.trainStep(data, first.map((i) => i + s * meta.batch)));
    }
    const lossesErr = Math.max(...losses.map((l, i) => Math.abs(l - meta.losses[i]) / meta.losses[i]));
    // Compare the Adam updates themselves, not only the parameters they moved a little.
    const before = floats('weights.bin'), after = floats('params_after_3.bin'), mine = model.params();
    const deltaGot = mine.map((v, i) => v - before[i]), deltaWant = after.map((v, i) => v - before[i]);
    const paramErr = compareParams('params after 3 steps', mine, after);
    const deltaErr = compare('Adam updates', deltaGot, deltaWant);

    t.diagnostic(`${name}: worst relative error logits ${logitErr.toExponential(1)}, loss ${lossErr.toExponential(1)}, grads ${gradErr.toExponential(1)}, 3-step losses ${lossesErr.toExponential(1)}, params ${paramErr.toExponential(1)}, Adam updates ${deltaErr.toExponential(1)}`);
    assert.ok(logitErr <= TOL, `logits differ by ${logitErr}`);
    assert.ok(lossErr <= TOL, `loss ${lossSum / meta.batch} vs ${meta.loss}`);
    assert.ok(gradErr <= TOL, `gradients differ by ${gradErr}`);
    assert.ok(lossesErr <= TOL, `losses ${losses} vs ${meta.losses}`);
    assert.ok(paramErr <= TOL, `parameters after ${meta.steps} steps differ by ${paramErr}`);
    assert.ok(deltaErr <= 1e-3, `Adam updates differ by ${deltaErr}`);
    assert.equal(model.adamSteps, meta.steps);
    assert.equal(model.paramCount, meta.param_count);
  });
}

// Every layer type against PyTorch, forward and backward, on odd shapes (fixtures made by
// tests/reference/make_layer_fixtures.py, described in tests/fixtures/layers/README.md): the
// output, the input gradient, every parameter gradient, and batch norm's running statistics after
// the update. Both the SIMD and the scalar Wasm builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';

import { createEngine } from '../web/engine.js';
import { parseDescription, describeDifference } from '../web/model-description.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { relErr, BUILDS } from './helpers/compare.js';

const dir = new URL('./fixtures/layers/', import.meta.url);
const cases = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')));
// Relative L2 error asked of every tensor. PyTorch's own float32 results are within 2.3e-6 of
// float64 here (each case's `checks`); summation orders differ, so 1e-5 is the bound for every
// layer, batch norm included.
const TOL = 1e-5;
// PyTorch pads 'same' with an even kernel unevenly (1 before, 2 after for 4); webtrain refuses it.
const REFUSED = { conv_k4_same: /padding='same' with the even kernel 4 pads unevenly/ };

for (const [build, url] of BUILDS) {
  test(`${build} build: every layer matches PyTorch forward and backward (${cases.length} cases)`, async (t) => {
    assert.ok(existsSync(url), `${url.pathname} missing: run npm run build`);
    const engine = await createEngine(readFileSync(url));
    const worst = {};
    for (const c of cases) {
      const bytes = readFileSync(new URL(`${c.case}.bin`, dir));
      const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      const tensor = (name) => {
        const e = c.tensors.find((x) => x.name === name);
        assert.ok(e, `${c.case}: fixture has no ${name}`);
        return all.subarray(e.offset, e.offset + e.count);
      };
      const json = parseDescription(c.description_text);
      assert.equal(describeDifference(json, c.description), null, `${c.case}: the text parses to the fixture's description`);
      const [N, C, H, W] = c.input_shape;
      const format = { channels: C, height: H, width: W, classes: 2 };
      const create = () => createModelFromDescription(engine, json, format, { maxBatch: N, head: false });
      if (REFUSED[c.case]) {
        assert.throws(create, REFUSED[c.case], c.case);
        continue;
      }
      const model = create();
      model.tensorNames.forEach((name, i) => {
        const info = model.tensors[i];
        const view = info.role.startsWith('running') ? model.runningView() : model.paramsView();
        view.set(tensor(name), info.offset);
      });
      const tracked = c.tensors.find((x) => x.name.endsWith('num_batches_tracked') && !x.name.startsWith('after:'));
      if (tracked) engine.check(engine.wasm.wt_model_set_stat_steps(model.ptr, tensor(tracked.name)[0]));
      const train = c.mode === 'train';
      const { y, dx } = model.runBackward(tensor('x'), N, tensor('dy'), { train });
      const errors = { y: relErr(y, tensor('y')), dx: relErr(dx, tensor('dx')) };
      const grads = model.gradsView();
      model.tensorNames.forEach((name, i) => {
        const info = model.tensors[i];
        if (info.role.startsWith('running')) return;
        errors[`grad:${name}`] = relErr(grads.subarray(info.offset, info.offset + info.count), tensor(`grad:${name}`));
      });
      if (train && model.runningCount) {
        model.setAdam({ lr: 1e-30 }); // the running statistics' update rides on the optimizer step
        model.update(1);
        const running = model.runningView();
        model.tensorNames.forEach((name, i) => {
          const info = model.tensors[i];
          if (!info.role.startsWith('running')) return;
          errors[`after:${name}`] = relErr(running.subarray(info.offset, info.offset + info.count), tensor(`after:${name}`));
        });
        const after = c.tensors.find((x) => x.name.startsWith('after:') && x.name.endsWith('num_batches_tracked'));
        assert.equal(model.statSteps, tensor(after.name)[0], `${c.case}: num_batches_tracked`);
      }
      for (const [what, err] of Object.entries(errors)) {
        assert.ok(err <= TOL, `${build} ${c.case} ${what}: relative L2 error ${err.toExponential(2)} > ${TOL}`);
        worst[c.case] = Math.max(worst[c.case] ?? 0, err);
      }
      model.destroy();
    }
    t.diagnostic(Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', '));
  });
}

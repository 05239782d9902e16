// ONNX export (web/onnx-export.js), run in ONNX Runtime (onnxruntime-node): for every preset and a
// net with every layer type, trained a few steps, the exported graph's logits on 100 test images
// fed as raw uint8 pixels match webtrain's to 1e-5; the batch dimension is free.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createEngine, CIFAR10_FORMAT } from '../web/engine.js';
import { exportOnnx, OPSET } from '../web/onnx-export.js';
import { EXPORT_NETS, trainedNet, testPixels, webtrainLogits, relativeError, firstMismatches } from './helpers/exports.js';

const TOLERANCE = 1e-5;
const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
const engine = await createEngine(wasm);
const ort = await import('onnxruntime-node').then((m) => m.default ?? m, (error) => ({ missing: error.message.split('\n')[0] }));

for (const name of EXPORT_NETS) {
  test(`${name}: ONNX Runtime gives webtrain's logits on 100 test images`, async (t) => {
    if (ort.missing) { t.skip(`skipped: onnxruntime-node is not installed (npm ci): ${ort.missing}`); return; }
    const model = trainedNet(engine, name);
    const onnx = exportOnnx(model, { format: CIFAR10_FORMAT, metadata: { test_accuracy: '0.5' } });
    const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1 });
    assert.deepEqual(session.inputNames, ['pixels']);
    assert.deepEqual(session.outputNames, ['logits']);
    const pixels = testPixels(100);
    const want = webtrainLogits(model, pixels);
    const { logits } = await session.run({ pixels: new ort.Tensor('uint8', pixels, [100, 3, 32, 32]) });
    assert.deepEqual(logits.dims, [100, 10]);
    const error = relativeError(logits.data, want);
    t.diagnostic(`${name}: max relative error ${error.toExponential(2)} (${onnx.length} bytes)`);
    assert.ok(error <= TOLERANCE, `${name}: relative error ${error}: ${firstMismatches(logits.data, want, TOLERANCE)}`);
    // Another batch size runs the same graph: the batch dimension is dynamic.
    const three = await session.run({ pixels: new ort.Tensor('uint8', pixels.subarray(0, 3 * 3072), [3, 3, 32, 32]) });
    assert.ok(relativeError(three.logits.data, want.subarray(0, 30)) <= TOLERANCE);
    await session.release();
    model.destroy();
  });
}

test('the file declares opset 13, uint8 pixels with a named batch dimension, and the description', async () => {
  const model = trainedNet(engine, 'simplecnn', { steps: 1 });
  const bytes = exportOnnx(model, { format: CIFAR10_FORMAT });
  const text = Buffer.from(bytes).toString('latin1');
  assert.equal(OPSET, 13);
  for (const s of ['webtrain', 'pixels', 'logits', 'webtrain.model', 'conv1.weight', 'fc3.bias', 'Cast', 'MaxPool', 'Gemm']) {
    assert.ok(text.includes(s), `the file holds '${s}'`);
  }
  assert.ok(!text.includes('Dropout'));
});

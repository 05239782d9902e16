// safetensors and model.py in PyTorch (Debian's python3-torch, through tests/reference/export_check.py):
// for every preset and a net with every layer type, trained a few steps in webtrain, the exported
// weights load into the generated module (load_state_dict, strict) and give webtrain's logits on
// 64 test images to 1e-5; the reverse, a state_dict saved from PyTorch imports into webtrain and
// gives PyTorch's logits. Without torch, the committed fixture (made by PyTorch) still runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { createEngine, CIFAR10_FORMAT } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { generateModelPy } from '../web/pytorch-module.js';
import { exportSafetensors, importSafetensors, parseSafetensors } from '../web/safetensors.js';
import { EXPORT_NETS, netText, trainedNet, testPixels, webtrainLogits, relativeError, firstMismatches } from './helpers/exports.js';
import { tempDir } from './helpers/temp.js';

const TOLERANCE = 1e-5;
const N = 64;
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./reference/export_check.py', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/export-every-layer/', import.meta.url));
const engine = await createEngine(readFileSync(new URL('../web/webtrain.wasm', import.meta.url)));

function torchMissing() {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${PYTHON} lacks torch or numpy (apt-get install python3-torch): ${r.stderr.trim().split('\n').pop()}`;
}

const floats = (file) => { const b = readFileSync(file); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const modelPy = (model) => generateModelPy(model.description, { ...model.format, mean: [...CIFAR10_FORMAT.mean], std: [...CIFAR10_FORMAT.std] });

function assertClose(got, want, what, t) {
  const error = relativeError(got, want);
  t.diagnostic(`${what}: max relative error ${error.toExponential(2)}`);
  assert.ok(error <= TOLERANCE, `${what}: relative error ${error}: ${firstMismatches(got, want, TOLERANCE)}`);
}

test('PyTorch: webtrain\'s safetensors and model.py give webtrain\'s logits, and back', async (t) => {
  const missing = torchMissing();
  if (missing) { t.skip(`skipped (the fixture test below still runs): ${missing}`); return; }
  const dir = tempDir('webtrain-export-');
  const pixelsFile = path.join(dir, 'pixels.bin');
  const pixels = testPixels(N);
  writeFileSync(pixelsFile, pixels);
  const nets = EXPORT_NETS.map((name) => {
    const model = trainedNet(engine, name);
    const file = (ext) => path.join(dir, `${name}.${ext}`);
    writeFileSync(file('py'), modelPy(model));
    writeFileSync(file('safetensors'), exportSafetensors(model, { format: CIFAR10_FORMAT }));
    return { name, model, file };
  });
  const jobs = nets.flatMap(({ file }) => [
    { do: 'load', model_py: file('py'), weights: file('safetensors'), pixels: pixelsFile, n: N, logits: file('torch.bin') },
    { do: 'save', model_py: file('py'), seed: 3, weights: file('torch.safetensors'), pixels: pixelsFile, n: N, logits: file('reverse.bin') },
  ]);
  const r = spawnSync(PYTHON, [SCRIPT], { input: JSON.stringify(jobs), encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}`);
  const keys = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
  nets.forEach(({ name, model, file }, i) => {
    // The file's tensors, in the order its header lists them, are the module's state_dict.
    const header = [...parseSafetensors(readFileSync(file('safetensors'))).tensors.keys()];
    assert.deepEqual(header, keys[2 * i], `${name}: safetensors names = state_dict keys, in order`);
    assertClose(floats(file('torch.bin')), webtrainLogits(model, pixels), `${name}: webtrain -> PyTorch`, t);
    // The reverse: PyTorch's own weights and statistics, into a fresh webtrain model.
    const fresh = createModelFromDescription(engine, netText(name), CIFAR10_FORMAT, { maxBatch: 32, seed: 9 });
    importSafetensors(fresh, readFileSync(file('torch.safetensors')), `${name}.torch.safetensors`);
    assertClose(webtrainLogits(fresh, pixels), floats(file('reverse.bin')), `${name}: PyTorch -> webtrain`, t);
    if (fresh.runningCount) assert.equal(fresh.statSteps, 123, `${name}: num_batches_tracked`);
    fresh.destroy();
    model.destroy();
  });
});

test('fixture: a state_dict saved by PyTorch imports and gives PyTorch\'s logits (no torch needed)', (t) => {
  const model = createModelFromDescription(engine, netText('every-layer'), CIFAR10_FORMAT, { maxBatch: 32 });
  importSafetensors(model, readFileSync(path.join(FIXTURE, 'model.safetensors')), 'model.safetensors');
  const pixels = new Uint8Array(readFileSync(path.join(FIXTURE, 'pixels.bin')));
  assertClose(webtrainLogits(model, pixels), floats(path.join(FIXTURE, 'torch_logits.bin')), 'every-layer fixture', t);
  // And out again: webtrain's file holds the same tensors, bit for bit.
  const again = createModelFromDescription(engine, netText('every-layer'), CIFAR10_FORMAT, { maxBatch: 32, seed: 4 });
  importSafetensors(again, exportSafetensors(model), 'exported');
  assert.deepEqual(again.params(), model.params());
  assert.deepEqual(again.running(), model.running());
});

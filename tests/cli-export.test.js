// The CLI's --export (by extension, repeatable, also with --epochs 0 and as a conversion without
// --data) and --import of safetensors (the model it names, refusals), and the reader's size rule.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import path from 'node:path';

import { safetensorsRule, judgeSize } from '../web/file-limits.js';
import { parseSafetensors } from '../web/safetensors.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

let dir, data;
const file = (name) => path.join(dir, name);
before(() => {
  dir = tempDir('webtrain-cli-export-');
  data = writeSyntheticCifar(path.join(dir, 'data'), { perTrainFile: 64, test: 64, seed: 4 });
});
const base = () => ['--data', data, '--batch-size', '32', '--workers', '1', '--limit-train', '96', '--json'];

test('--export writes each format by extension; --import of it evaluates to the same accuracy', () => {
  const trained = runCli([...base(), '--model', 'resnet', '--epochs', '1', '--export', file('a.safetensors'), '--export', file('a.onnx'), '--export', file('a.py')]);
  assert.equal(trained.status, 0, trained.stderr);
  const accuracy = jsonEvents(trained).at(-1).test_accuracy;
  const { tensors, metadata } = parseSafetensors(readFileSync(file('a.safetensors')));
  assert.ok(tensors.has('res2.shortcut.bn1.num_batches_tracked'));
  assert.equal(metadata.test_accuracy, accuracy.toFixed(4));
  assert.match(metadata['webtrain.model'], /A small ResNet/);
  assert.equal(readFileSync(file('a.onnx'))[0], 0x08, 'an ONNX ModelProto starts with its ir_version');
  assert.match(readFileSync(file('a.py'), 'utf8'), /class Model\(nn\.Module\)/);
  // No --model: the file names its model (resnet), and --epochs 0 evaluates what it holds.
  const loaded = runCli([...base(), '--import', file('a.safetensors'), '--epochs', '0']);
  assert.equal(loaded.status, 0, loaded.stderr);
  assert.equal(jsonEvents(loaded)[0].test_accuracy, accuracy);
  // A conversion needs no data: safetensors in, ONNX out, the same graph.
  const converted = runCli(['--import', file('a.safetensors'), '--epochs', '0', '--export', file('b.onnx')]);
  assert.equal(converted.status, 0, converted.stderr);
  assert.equal(converted.stdout, '');
  assert.ok(existsSync(file('b.onnx')));
});

test('bad --export and --import are refused with one line naming the file', () => {
  writeFileSync(file('simple.txt'), 'x');
  const cases = [
    [['--export', file('w.bin')], 2, /--export .*w\.bin: the extension must be \.safetensors, \.onnx or \.py/],
    [['--import', file('simple.txt')], 2, /--import .*simple\.txt: takes a \.safetensors file/],
    [['--import', file('x.safetensors'), '--resume', file('ck.bin')], 2, /--import and --resume cannot be combined/],
    [['--import', file('missing.safetensors')], 1, /missing\.safetensors: safetensors file not found/],
  ];
  writeFileSync(file('zeros.safetensors'), new Uint8Array(4096));
  cases.push([['--import', file('zeros.safetensors')], 1, /zeros\.safetensors: its header length is 0 bytes/]);
  const cut = readFileSync(file('a.safetensors')).subarray(0, 20000);
  writeFileSync(file('cut.safetensors'), cut);
  cases.push([['--import', file('cut.safetensors'), '--model', 'resnet'], 1, /cut\.safetensors: .*beyond the .* bytes of tensor data \(truncated\?\)/]);
  cases.push([['--import', file('a.safetensors'), '--model', 'convnetjs'], 1, /a\.safetensors: holds \d+ bytes of tensors after its header, more than this model's \d+/]);
  writeFileSync(file('big.safetensors'), '');
  truncateSync(file('big.safetensors'), 300 << 20); // sparse: refused before it is read
  cases.push([['--import', file('big.safetensors'), '--model', 'simplecnn'], 1, /big\.safetensors: safetensors file is 314572800 bytes, more than the \d+-byte ceiling for this model's safetensors file/]);
  cases.push([['--import', file('big.safetensors')], 1, /big\.safetensors: its header length is 0 bytes/]); // only 8 bytes read
  for (const [args, status, message] of cases) {
    const r = runCli([...base(), '--epochs', '0', ...args]);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
});

test('the safetensors size rule judges the header length before the rest is read', () => {
  const head = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return b; };
  const rule = safetensorsRule(1000);
  assert.deepEqual(judgeSize(rule, 8 + 80 + 1000, head(80), 'safetensors file'), { bytes: 1088 });
  assert.deepEqual(judgeSize(rule, 4, head(0).subarray(0, 4), 'safetensors file'), { bytes: 4 });
  assert.deepEqual(judgeSize(rule, 1 << 20, head(0), 'safetensors file'), { bytes: 8 });
  assert.match(judgeSize(rule, 8 + 80 + 1001, head(80), 'safetensors file').problem, /1001 bytes of tensors after its header, more than this model's 1000/);
  assert.match(judgeSize(rule, 1 << 20, head(2 ** 40), 'safetensors file').problem, /header length 1099511627776 is more than the 100000000-byte limit/);
  assert.match(judgeSize(safetensorsRule(), 2 ** 31, head(80), 'safetensors file').problem, /more than the 1073741824-byte ceiling for a safetensors file/);
});

test('a conversion without --data keeps the shape and normalisation the imported file was made for', async () => {
  const { createEngine } = await import('../web/engine.js');
  const { createModelFromDescription } = await import('../web/model-spec.js');
  const { exportSafetensors, safetensorsDataFormat } = await import('../web/safetensors.js');
  const { DATASETS } = await import('../web/datasets.js');
  const { loadPreset } = await import('../web/model-description.js');
  const engine = await createEngine(readFileSync(new URL('../web/webtrain.wasm', import.meta.url)));
  const mnist = DATASETS.mnist.format;
  const model = createModelFromDescription(engine, await loadPreset('simplecnn'), mnist, { maxBatch: 8, seed: 3 });
  assert.deepEqual(model.normalization, { mean: [0.1307], std: [0.3081] }, 'the model reports the normalisation it was built with');
  writeFileSync(file('mnist.safetensors'), exportSafetensors(model, { format: mnist }));
  model.destroy();
  const converted = runCli(['--import', file('mnist.safetensors'), '--epochs', '0', '--export', file('mnist.py'), '--export', file('mnist2.safetensors')]);
  assert.equal(converted.status, 0, converted.stderr);
  const py = readFileSync(file('mnist.py'), 'utf8');
  assert.match(py, /MEAN = \(0\.1307,\)/);
  assert.match(py, /STD = \(0\.3081,\)/);
  assert.match(py, /\(N, 1, 28, 28\)/);
  const again = safetensorsDataFormat(readFileSync(file('mnist2.safetensors')), 'mnist2.safetensors');
  assert.deepEqual(again, { channels: 1, height: 28, width: 28, classes: 10, mean: [0.1307], std: [0.3081] });
  // A malformed data entry is refused naming the file and the entry.
  const bad = readFileSync(file('mnist.safetensors'));
  const at = bad.indexOf('\\"std\\":[0.3081]'); // JSON in a JSON string: its quotes escaped
  assert.ok(at > 0);
  bad.write('\\"std\\":[-1.000]', at); // the same length: the header stays valid JSON of the same size
  writeFileSync(file('bad.safetensors'), bad);
  const refused = runCli(['--import', file('bad.safetensors'), '--epochs', '0', '--export', file('bad.py')]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /bad\.safetensors: its __metadata__ entry 'webtrain\.data' has no valid std: expected 1 positive numbers, one per channel/);
});

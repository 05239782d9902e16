// model.py generation (web/pytorch-module.js): the module lines for SimpleCNN, the ResNet-style
// net and a net with every layer type, and, where Debian's PyTorch is installed, that the
// generated module's state_dict names and shapes are the spec's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

import { generateModelPy } from '../web/pytorch-module.js';

const PYTHON = '/usr/bin/python3';
const CIFAR = { channels: 3, height: 32, width: 32, classes: 10, mean: 0.5, std: 0.5 };
const description = (dir) => JSON.parse(readFileSync(new URL(`./fixtures/${dir}/model.json`, import.meta.url), 'utf8'));
const simplecnn = description('net-simplecnn');
const resnet = description('net-resnet');
const everyLayer = description('every-layer');

function assertLines(py, lines) {
  const missing = lines.filter((l) => !py.includes(l));
  assert.deepEqual(missing, [], `model.py lacks these lines:\n${missing.join('\n')}\n--- model.py:\n${py}`);
}

// The spec's state_dict, written out by hand: [name, shape] in state_dict order.
const bn = (path, n, affine = true) => [
  ...(affine ? [[`${path}.weight`, [n]], [`${path}.bias`, [n]]] : []),
  [`${path}.running_mean`, [n]], [`${path}.running_var`, [n]], [`${path}.num_batches_tracked`, []]];

const SIMPLECNN_STATE = [
  ['conv1.weight', [6, 3, 5, 5]], ['conv1.bias', [6]], ['conv2.weight', [16, 6, 5, 5]], ['conv2.bias', [16]],
  ['fc1.weight', [120, 400]], ['fc1.bias', [120]], ['fc2.weight', [84, 120]], ['fc2.bias', [84]],
  ['fc3.weight', [10, 84]], ['fc3.bias', [10]],
];

const RESNET_STATE = [
  ['conv1.weight', [16, 3, 3, 3]], ...bn('bn1', 16),
  ['res1.conv1.weight', [16, 16, 3, 3]], ...bn('res1.bn1', 16), ['res1.conv2.weight', [16, 16, 3, 3]], ...bn('res1.bn2', 16),
  ...[['res2', 16, 32], ['res3', 32, 64]].flatMap(([res, cin, c]) => [
    [`${res}.conv1.weight`, [c, cin, 3, 3]], ...bn(`${res}.bn1`, c),
    [`${res}.conv2.weight`, [c, c, 3, 3]], ...bn(`${res}.bn2`, c),
    [`${res}.shortcut.conv1.weight`, [c, cin, 1, 1]], ...bn(`${res}.shortcut.bn1`, c)]),
  ['fc1.weight', [10, 64]], ['fc1.bias', [10]],
];

const EVERY_LAYER_STATE = [
  ['conv1.weight', [8, 3, 3, 3]], ['conv1.bias', [8]], ...bn('bn1', 8),
  ['conv2.weight', [8, 8, 3, 3]], ...bn('bn2', 8, false),
  ['res1.conv1.weight', [16, 8, 3, 3]], ...bn('res1.bn1', 16), ['res1.conv2.weight', [16, 16, 3, 3]], ...bn('res1.bn2', 16),
  ['res1.shortcut.conv1.weight', [16, 8, 1, 1]], ...bn('res1.shortcut.bn1', 16),
  ['res2.res1.conv1.weight', [16, 16, 1, 1]], ['res2.res1.conv1.bias', [16]],
  ['fc1.weight', [32, 16]], ['fc1.bias', [32]], ...bn('bn3', 32), ['head.weight', [10, 32]],
];

test('SimpleCNN: the seed\'s layers, preprocess and the loading snippet', () => {
  const py = generateModelPy(simplecnn, CIFAR);
  assertLines(py, [
    'from safetensors.torch import load_file',
    '    net.load_state_dict(load_file("model.safetensors"))',
    '    logits = net(preprocess(x))    # x: uint8 tensor (N, 3, 32, 32)',
    'MEAN = (0.5, 0.5, 0.5)',
    'STD = (0.5, 0.5, 0.5)',
    'def preprocess(pixels):',
    '    return (pixels.float() / 255 - mean) / std',
    'class Model(nn.Module):',
    '        self.conv1 = nn.Conv2d(3, 6, 5)  # -> 6x28x28',
    '        self.pool1 = nn.MaxPool2d(2)  # -> 6x14x14',
    '        self.conv2 = nn.Conv2d(6, 16, 5)  # -> 16x10x10',
    '        self.flatten1 = nn.Flatten()  # -> 400',
    '        self.fc1 = nn.Linear(400, 120)  # -> 120',
    '        self.fc2 = nn.Linear(120, 84)  # -> 84',
    '        self.fc3 = nn.Linear(84, 10)  # -> 10',
    '        x = self.fc3(x)\n        return x\n',
  ]);
  assert.ok(!py.includes('BatchNorm') && !py.includes('Batch norm'), 'no batch-norm note without batch norm');
});

test('ResNet-style net: ModuleDict blocks, the shortcut branch and the add in forward', () => {
  const py = generateModelPy(resnet, CIFAR);
  assertLines(py, [
    '        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)  # -> 16x32x32',
    '        self.bn1 = nn.BatchNorm2d(16, eps=0.00001, momentum=0.1)  # -> 16x32x32',
    '        self.res2 = nn.ModuleDict({  # -> 32x16x16',
    "            'conv1': nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),  # -> 32x16x16",
    "            'shortcut': nn.ModuleDict({",
    "                'conv1': nn.Conv2d(16, 32, 1, stride=2, bias=False),  # -> 32x16x16",
    "                'bn1': nn.BatchNorm2d(32, eps=0.00001, momentum=0.1),  # -> 32x16x16",
    '        self.gap1 = nn.AdaptiveAvgPool2d(1)  # -> 64x1x1',
    '        self.fc1 = nn.Linear(64, 10)  # -> 10',
    // res1 has an identity shortcut, res2 a projection.
    '        body1 = self.res1[\'bn2\'](body1)\n        x = body1 + x\n',
    "        shortcut1 = self.res2['shortcut']['bn1'](shortcut1)\n        x = body1 + shortcut1\n",
    'ghost batches of 8 images',
  ]);
});

test('every layer type, nested blocks, per-channel normalisation', () => {
  const py = generateModelPy(everyLayer, { ...CIFAR, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261] });
  assertLines(py, [
    'MEAN = (0.4914, 0.4822, 0.4465)',
    'STD = (0.247, 0.243, 0.261)',
    "        self.conv2 = nn.Conv2d(8, 8, 3, padding='same', bias=False)  # -> 8x32x32",
    '        self.bn2 = nn.BatchNorm2d(8, eps=0.00001, momentum=0.4, affine=False)  # -> 8x32x32',
    '        self.gelu1 = nn.GELU()',
    "            'gelu1': nn.GELU(approximate='tanh'),",
    "            'res1': nn.ModuleDict({  # -> 16x8x8",
    "                'conv1': nn.Conv2d(16, 16, 1),  # -> 16x8x8",
    '        self.avgpool1 = nn.AvgPool2d(3, stride=2, padding=1)  # -> 16x4x4',
    '        self.drop1 = nn.Dropout(p=0.25)',
    '        self.gmp1 = nn.AdaptiveMaxPool2d(1)  # -> 16x1x1',
    '        self.bn3 = nn.BatchNorm1d(32, eps=0.001, momentum=0.1)  # -> 32',
    '        self.head = nn.Linear(32, 10, bias=False)  # -> 10',
    "        body2 = self.res2['res1']['conv1'](body2)\n        body1 = body2 + body1\n",
    '        body1 = body1 * 0.5  # scale1',
    'Dropout: webtrain draws its masks',
  ]);
});

test('descriptions that cannot become a module are refused with the layer named', () => {
  const layer = (type, name, extra) => ({ type, name, path: name, line: 1, ...extra });
  const net = (...layers) => ({ format: 'webtrain-model/1', settings: { ghost_batch: 8 }, layers });
  const fc = layer('linear', 'fc1', { in_features: null, out_features: 'classes', bias: true });
  assert.throws(() => generateModelPy(net(fc), CIFAR), /fc1 \(linear, line 1\): needs a flat input \(add flatten before it\), got 3x32x32/);
  assert.throws(() => generateModelPy(net(layer('relu', 'train')), CIFAR), /the name 'train' cannot be a PyTorch module attribute/);
  assert.throws(() => generateModelPy(net(layer('maxpool', 'pool1', { kernel_size: 33, stride: 33, padding: 0 })), CIFAR),
    /pool1 \(maxpool, line 1\): kernel 33 is larger than its input 3x32x32/);
  const conv = layer('conv', 'conv1', { in_channels: null, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, bias: true });
  assert.throws(() => generateModelPy(net({ type: 'residual', name: 'res1', path: 'res1', line: 1, body: [conv], shortcut: [] }), CIFAR),
    /res1 \(residual, line 1\): the body gives 4x16x16 but the shortcut gives 3x32x32/);
  assert.throws(() => generateModelPy(net(layer('relu', 'relu1')), { ...CIFAR, mean: [0.5, 0.5] }), /mean needs 1 or 3 values, got 2/);
  assert.throws(() => generateModelPy(net(), CIFAR), /no layers/);
});

function torchAvailable() {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${PYTHON} has no torch (apt-get install python3-torch): ${r.stderr.trim().split('\n').pop()}`;
}

// Runs each model.py (a JSON list of sources on stdin; one process, as importing torch is slow) in
// PyTorch: its state_dict as [name, shape] and the shape of net(preprocess(pixels)).
const PROBE = `
import json, sys, types, torch
torch.set_num_threads(1)
results = []
for source in json.load(sys.stdin):
    m = types.ModuleType("model")
    exec(compile(source, "model.py", "exec"), m.__dict__)
    net = m.Model().eval()
    y = net(m.preprocess(torch.randint(0, 256, (2,) + m.INPUT_SHAPE, dtype=torch.uint8)))
    results.append({"state": [[k, list(v.shape)] for k, v in net.state_dict().items()], "out": list(y.shape)})
print(json.dumps(results))
`;

test('PyTorch: the generated modules\' state_dict names and shapes are the spec\'s', (t) => {
  const missing = torchAvailable();
  if (missing) { t.skip(`skipped: ${missing}`); return; }
  const nets = [['SimpleCNN', simplecnn, SIMPLECNN_STATE], ['ResNet', resnet, RESNET_STATE],
    ['every layer', everyLayer, EVERY_LAYER_STATE]];
  const input = JSON.stringify(nets.map(([, json]) => generateModelPy(json, CIFAR)));
  const r = spawnSync(PYTHON, ['-c', PROBE], { input, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}`);
  const results = JSON.parse(r.stdout);
  nets.forEach(([name, , want], i) => {
    assert.deepEqual(results[i].state, want, `${name}: state_dict`);
    assert.deepEqual(results[i].out, [2, 10], `${name}: output shape`);
  });
});

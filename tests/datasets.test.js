// The standard data sets (web/datasets.js) through the CLI: MNIST-format IDX files gzipped or not,
// CIFAR-100's fine and coarse labels, recognition of a folder by its file names and --dataset,
// every malformed file refused with its name, the presets adapting to 1x28x28, a layer that does
// not fit named, and class names in the output. All data is generated here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, cpSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

import { DATASETS, CIFAR100_FINE, CIFAR100_COARSE, recordFiles, detectDataset, encodeIdx, DatasetError } from '../web/datasets.js';
import { confusedPairs, perClassAccuracy } from '../web/class-stats.js';
import { writeSyntheticIdx, writeSyntheticCifar100, makeIdxFiles } from './helpers/datasets.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

let dir, mnist, mnistGz, fashion, cifar100;
before(() => {
  dir = tempDir('webtrain-datasets-');
  mnist = writeSyntheticIdx(path.join(dir, 'mnist'), { train: 640, test: 200 });
  mnistGz = writeSyntheticIdx(path.join(dir, 'mnist-gz'), { train: 640, test: 200, gzip: true });
  fashion = writeSyntheticIdx(path.join(dir, 'my-fashion-mnist'), { train: 64, test: 32, gzip: true });
  cifar100 = writeSyntheticCifar100(path.join(dir, 'cifar-100-binary'), { train: 128, test: 64 });
});

/** One line on stderr naming what is wrong, nothing on stdout. */
function assertRefused(r, status, pattern) {
  assert.equal(r.status, status, `exit status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '', 'training started');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
}

/** A copy of `from` with one file replaced by `bytes` (removed when null). */
function copyWith(from, name, bytes) {
  const to = tempDir('webtrain-datasets-bad-');
  cpSync(from, to, { recursive: true });
  if (bytes === null) rmSync(path.join(to, name));
  else writeFileSync(path.join(to, name), bytes);
  return to;
}

test('the registry: class names, shapes and normalisation of each data set', () => {
  assert.equal(CIFAR100_FINE.length, 100);
  assert.equal(new Set(CIFAR100_FINE).size, 100);
  assert.equal(CIFAR100_COARSE.length, 20);
  for (const d of Object.values(DATASETS)) {
    const f = d.format;
    assert.equal(d.classNames.length, f.classes, d.name);
    assert.equal(f.mean.length, f.channels, d.name);
    assert.equal(f.std.length, f.channels, d.name);
    assert.ok(f.pixelOffset + f.channels * f.height * f.width <= f.recordBytes, d.name);
  }
  assert.deepEqual([DATASETS.mnist.format.channels, DATASETS.mnist.format.height, DATASETS.mnist.format.width], [1, 28, 28]);
  assert.equal(DATASETS['fashion-mnist'].classNames[9], 'Ankle boot');
  assert.equal(DATASETS.cifar100.format.labelOffset, 1);
  assert.equal(DATASETS['cifar100-coarse'].format.labelOffset, 0);
});

test('IDX images and labels become one buffer of records: label byte, then the 784 pixels', () => {
  const files = makeIdxFiles({ train: 5, test: 3 });
  const map = new Map(Object.entries(files).map(([name, bytes]) => [name, { name, bytes }]));
  const { train, test: testFiles } = recordFiles(DATASETS.mnist, map);
  assert.equal(train.length, 1);
  assert.equal(train[0].bytes.length, 5 * 785);
  assert.equal(testFiles[0].bytes.length, 3 * 785);
  for (let i = 0; i < 5; i++) {
    assert.equal(train[0].bytes[i * 785], files['train-labels-idx1-ubyte'][8 + i]);
    assert.deepEqual(train[0].bytes.subarray(i * 785 + 1, (i + 1) * 785), files['train-images-idx3-ubyte'].subarray(16 + i * 784, 16 + (i + 1) * 784));
  }
});

test('bad IDX bytes are refused naming the file: magic, truncation, trailing bytes, shape, count mismatch', () => {
  const files = makeIdxFiles({ train: 4, test: 2 });
  const refuse = (name, bytes, pattern) => {
    const map = new Map(Object.entries({ ...files, [name]: bytes }).map(([n, b]) => [n, { name: `dir/${n}`, bytes: b }]));
    assert.throws(() => recordFiles(DATASETS.mnist, map), (e) => e instanceof DatasetError && e.message.startsWith(`dir/${name}`) && pattern.test(e.message), name);
  };
  const images = files['train-images-idx3-ubyte'];
  const wrongMagic = images.slice();
  wrongMagic[3] = 0x01;
  refuse('train-images-idx3-ubyte', wrongMagic, /not an IDX images file: its magic number is 0x00000801, expected 0x00000803/);
  refuse('train-labels-idx1-ubyte', images, /not an IDX labels file: its magic number is 0x00000803, expected 0x00000801/);
  refuse('train-images-idx3-ubyte', gzipSync(images), /\(it is gzipped: name it \.gz\)/);
  refuse('train-images-idx3-ubyte', images.subarray(0, images.length - 10), /truncated: 3142 bytes, but its header says 4 images \(3152 bytes\)/);
  refuse('train-images-idx3-ubyte', images.subarray(0, 10), /truncated: 10 bytes, shorter than the 16-byte IDX header/);
  refuse('t10k-labels-idx1-ubyte', new Uint8Array(0), /file is empty/);
  refuse('train-images-idx3-ubyte', new Uint8Array([...images, 1, 2]), /2 bytes after the 4 images its header announces/);
  refuse('train-images-idx3-ubyte', encodeIdx([1, 32, 32], new Uint8Array(1024)), /holds images of 32x32 pixels; this data set's are 28x28/);
  refuse('train-images-idx3-ubyte', encodeIdx([3, 28, 28], new Uint8Array(3 * 784)), /holds 3 images but dir\/train-labels-idx1-ubyte holds 4 labels/);
});

test('recognition by file names; MNIST and Fashion-MNIST by the folder name, CIFAR-100 fine by default', () => {
  const idx = Object.keys(makeIdxFiles({ train: 1, test: 1 }));
  assert.equal(detectDataset('data/mnist', idx).dataset.name, 'mnist');
  assert.match(detectDataset('data/mnist', idx).note, /share their file names: MNIST chosen by the folder's name \(--dataset fashion-mnist chooses the other\)/);
  assert.equal(detectDataset('data/Fashion-MNIST/', idx.map((n) => `${n}.gz`)).dataset.name, 'fashion-mnist');
  assert.equal(detectDataset('data/x', idx, 'fashion-mnist').dataset.name, 'fashion-mnist');
  assert.equal(detectDataset('d', ['train.bin', 'test.bin', 'fine_label_names.txt']).dataset.name, 'cifar100');
  assert.equal(detectDataset('d', ['train.bin', 'test.bin'], 'cifar100-coarse').dataset.name, 'cifar100-coarse');
  assert.equal(detectDataset('d', ['data_batch_1.bin', 'test_batch.bin']).dataset.name, 'cifar10', 'a partial folder is read as its set, to name what is missing');
  assert.throws(() => detectDataset('d', ['notes.txt', 'photo.jpg']), /^DatasetError: d: no data set recognised\. Looked for CIFAR-10: data_batch_1\.bin.*CIFAR-100: train\.bin, test\.bin; MNIST: train-images-idx3-ubyte.*\(each may be \.gz\)/);
  assert.throws(() => detectDataset('d', idx, 'emnist'), /unknown data set 'emnist': one of cifar10, cifar100, cifar100-coarse, mnist, fashion-mnist/);
});

test('the CLI trains simplecnn on MNIST-format data, plain and gzipped, with the same result', () => {
  const args = ['--epochs', '2', '--batch-size', '32', '--workers', '1', '--seed', '3'];
  const plain = runCli(['--data', mnist, ...args]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.lines[0], /^Data: MNIST \(1x28x28, 10 classes\), 640 training and 200 test images\. MNIST and Fashion-MNIST share their file names/);
  const accuracy = plain.lines.filter((l) => l.startsWith('Test accuracy')).at(-1);
  const [, percent] = /^Test accuracy: ([\d.]+)% \(\d+\/200\)$/.exec(accuracy);
  assert.ok(Number(percent) > 80, `accuracy ${percent}% on an easy synthetic set`);
  assert.ok(plain.lines.includes('Per-class accuracy:'), plain.stdout);
  assert.ok(plain.lines.some((l) => /^ {2}7 +\d+\.\d%/.test(l)), 'a row per digit');
  const gz = runCli(['--data', mnistGz, ...args]);
  assert.equal(gz.status, 0, gz.stderr);
  assert.equal(gz.lines.filter((l) => l.startsWith('Test accuracy')).at(-1), accuracy, 'gzipped files gave another run');
  // Two workers train the same run (the peers get the converted records and their format).
  const two = jsonEvents(runCli(['--data', mnistGz, ...args, '--workers', '2', '--json']));
  assert.equal(`${(100 * two.at(-1).test_accuracy).toFixed(2)}%`, percent + '%');
});

test('every preset adapts to 1x28x28 (--print-model uses the data\'s shape); a layer that does not fit is named', () => {
  for (const [model, flat] of [['simplecnn', '256'], ['convnetjs', '180'], ['resnet', '64']]) {
    const r = runCli(['--print-model', '--data', fashion, '--model', model]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.lines[0], `${model} for Fashion-MNIST (1x28x28, 10 classes):`);
    assert.ok(r.lines.some((l) => l.startsWith('input ') && l.includes('1×28×28')), r.stdout);
    assert.ok(r.lines.some((l) => /^flatten\d* +flatten +(\d+)/.exec(l)?.[1] === flat), `${model}: flatten to ${flat}\n${r.stdout}`);
  }
  const fixed = path.join(dir, 'fixed.txt');
  writeFileSync(fixed, 'conv(6, 5)\nrelu\nmaxpool(2)\nconv(16, 5)\nrelu\nmaxpool(2)\nflatten\nfc1: Linear(400, 120)\nrelu\nlinear(classes)\n');
  assertRefused(runCli(['--data', fashion, '--model', fixed, '--epochs', '1']), 2, /fixed\.txt: line 8: linear fc1: Linear expects in_features 400 but its input has 256$/);
  const deep = path.join(dir, 'deep.txt');
  writeFileSync(deep, 'conv(6, 5)\nmaxpool(2)\nconv(16, 5)\nmaxpool(2)\nconv(16, 5)\nflatten\nlinear(classes)\n');
  assertRefused(runCli(['--data', fashion, '--model', deep, '--epochs', '1']), 2, /deep\.txt: line 5: conv conv3: kernel 5 is larger than its input 4x4/);
});

test('Fashion-MNIST by its folder name, with its class names; --dataset chooses', () => {
  const r = runCli(['--data', fashion, '--epochs', '1', '--batch-size', '16', '--workers', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.lines[0], /^Data: Fashion-MNIST \(1x28x28, 10 classes\), 64 training and 32 test images\. .*--dataset mnist chooses the other/);
  assert.ok(r.lines.some((l) => l.startsWith('  Ankle boot ')), r.stdout);
  const chosen = runCli(['--data', mnist, '--dataset', 'fashion-mnist', '--epochs', '1', '--workers', '1', '--limit-train', '32']);
  assert.equal(chosen.status, 0, chosen.stderr);
  assert.match(chosen.lines[0], /^Data: Fashion-MNIST \(1x28x28, 10 classes\), 32 training and 200 test images$/);
});

test('CIFAR-100: 100 fine classes by default, 20 coarse with --dataset, names from its meta files', () => {
  const fine = runCli(['--data', cifar100, '--epochs', '1', '--workers', '1', '--json']);
  assert.equal(fine.status, 0, fine.stderr);
  const text = runCli(['--data', cifar100, '--epochs', '1', '--workers', '1']);
  assert.match(text.lines[0], /^Data: CIFAR-100, 100 fine classes \(3x32x32, 100 classes\), 128 training and 64 test images\. CIFAR-100 with its 100 fine labels \(--dataset cifar100-coarse for the 20 coarse ones\)$/);
  assert.ok(text.lines.includes('Per-class accuracy, the 10 lowest of 100 classes:'), text.stdout);
  assert.ok(text.lines.some((l) => CIFAR100_FINE.includes(l.trim().split(/\s+/)[0])), 'fine class names');
  const coarse = runCli(['--data', cifar100, '--dataset', 'cifar100-coarse', '--epochs', '1', '--workers', '1']);
  assert.equal(coarse.status, 0, coarse.stderr);
  assert.match(coarse.lines[0], /^Data: CIFAR-100, 20 coarse classes \(3x32x32, 20 classes\)/);
  assert.ok(coarse.lines.some((l) => l.startsWith('  large_man-made_outdoor_things ')), coarse.stdout);
  // Meta names that do not fit the labels are refused by name.
  const badMeta = copyWith(cifar100, 'fine_label_names.txt', 'apple\npear\n');
  assertRefused(runCli(['--data', badMeta, '--epochs', '1']), 1, /fine_label_names\.txt: 2 class names, expected 100 for CIFAR-100/);
  const badRecord = copyWith(cifar100, 'test.bin', new Uint8Array(3074 * 2 + 5));
  assertRefused(runCli(['--data', badRecord, '--epochs', '1']), 1, /test\.bin: size 6153 bytes is not a multiple of the 3074-byte CIFAR-100 record/);
  const badLabel = new Uint8Array(3074 * 2);
  badLabel[3074 + 1] = 100;
  assertRefused(runCli(['--data', copyWith(cifar100, 'train.bin', badLabel), '--epochs', '1']), 1, /train\.bin: record 1 .* label 100; labels must be 0\.\.99/);
});

test('the CLI refuses bad MNIST files naming each, gzipped or not, before training', () => {
  const files = makeIdxFiles({ train: 8, test: 4 });
  const images = files['t10k-images-idx3-ubyte'];
  const named = (folder, name) => new RegExp(`^webtrain: ${path.join(folder, name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[: ]`);
  const cases = [
    ['t10k-images-idx3-ubyte', images.subarray(0, 100), mnist, /truncated: 100 bytes, but its header says 4 images/],
    ['t10k-labels-idx1-ubyte', images, mnist, /not an IDX labels file: its magic number is 0x00000803/],
    ['train-labels-idx1-ubyte', encodeIdx([5], new Uint8Array(5)), mnist, /holds 640 images but .*train-labels-idx1-ubyte holds 5 labels/],
    ['t10k-images-idx3-ubyte.gz', gzipSync(images.subarray(0, 50)), mnistGz, /truncated: 50 bytes, .* \(once gunzipped\)/],
    ['t10k-images-idx3-ubyte.gz', images, mnistGz, /not gzipped \(it does not start with gzip's 1f 8b\)/],
    ['t10k-images-idx3-ubyte.gz', gzipSync(images).subarray(0, 40), mnistGz, /not a readable gzip file/],
  ];
  for (const [name, bytes, from, pattern] of cases) {
    const folder = copyWith(from, name, bytes);
    const r = runCli(['--data', folder, '--epochs', '1']);
    const file = name.startsWith('train-labels') ? 'train-images-idx3-ubyte' : name;
    assertRefused(r, 1, pattern);
    assert.match(r.stderr, named(folder, file), `${name}: ${r.stderr}`);
  }
  const badLabel = encodeIdx([200], new Uint8Array(200).fill(3));
  badLabel[8 + 7] = 12;
  const folder = copyWith(mnist, 't10k-labels-idx1-ubyte', badLabel);
  assertRefused(runCli(['--data', folder, '--epochs', '1']), 1, /t10k-labels-idx1-ubyte: record 7 .* label 12; labels must be 0\.\.9/);
  // A missing file is named; an unknown folder lists what was looked for.
  const missing = copyWith(mnist, 'train-labels-idx1-ubyte', null);
  assertRefused(runCli(['--data', missing, '--epochs', '1']), 1, /train-labels-idx1-ubyte: MNIST file \(the folder must hold .*\) not found/);
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  assertRefused(runCli(['--data', empty, '--epochs', '1']), 1, /empty: no data set recognised\. Looked for CIFAR-10: .*; CIFAR-100: .*; MNIST: .*; Fashion-MNIST: /);
  assertRefused(runCli(['--data', mnist, '--dataset', 'mnist2']), 2, /--dataset: expected one of cifar10, cifar100, cifar100-coarse, mnist, fashion-mnist, got 'mnist2'/);
});

test('a checkpoint of an MNIST run is refused on CIFAR-10 data, naming both shapes', () => {
  const ckpt = path.join(dir, 'mnist.ckpt');
  const r = runCli(['--data', fashion, '--epochs', '1', '--workers', '1', '--checkpoint', ckpt, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const cifar = writeSyntheticCifar(path.join(dir, 'cifar'), { perTrainFile: 20, test: 20 });
  assertRefused(runCli(['--data', cifar, '--resume', ckpt, '--epochs', '2']), 1, /the model takes 1x28x28 images in 10 classes; the data has 3x32x32 images in 10 classes/);
});

test('class statistics: per-class accuracy and the most confused pairs, at any class count', () => {
  const K = 3;
  const confusion = Int32Array.from([5, 3, 0, 1, 4, 0, 0, 6, 2]);
  assert.deepEqual(perClassAccuracy(confusion, K).map((r) => [r.correct, r.total]), [[5, 8], [4, 5], [2, 8]]);
  assert.deepEqual(confusedPairs(confusion, K, 2).map((p) => [p.truth, p.predicted, p.count]), [[2, 1, 6], [0, 1, 3]]);
});

// Debian's dataset-fashion-mnist package (.ci/setup installs it): the real, gzipped IDX files.
const REAL_FASHION = '/usr/share/datasets/fashion-mnist';
const realFashionSkip = !existsSync(REAL_FASHION) && `${REAL_FASHION} not found (apt-get install dataset-fashion-mnist)`;

test('real Fashion-MNIST: recognised by its folder, one epoch on 10,000 images reaches > 70%', { skip: realFashionSkip }, (t) => {
  const r = runCli(['--data', REAL_FASHION, '--epochs', '1', '--limit-train', '10000', '--workers', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.lines[0], /^Data: Fashion-MNIST \(1x28x28, 10 classes\), 10000 training and 10000 test images\./);
  const [, percent] = /^Test accuracy: ([\d.]+)% \(\d+\/10000\)$/.exec(r.lines.find((l) => l.startsWith('Test accuracy')));
  t.diagnostic(`test accuracy ${percent}%`);
  assert.ok(Number(percent) > 70, `accuracy ${percent}%`);
  assert.ok(r.lines.some((l) => l.startsWith('  Ankle boot ')), r.stdout);
});

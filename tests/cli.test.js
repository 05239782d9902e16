// The headless CLI end to end on a generated CIFAR-format data set: the reference's output lines,
// JSON events, learning, determinism, weights files and its errors for bad options.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

let dir, data;
before(() => {
  dir = tempDir('webtrain-cli-');
  // 5 x 700 training records at batch 32 = 110 steps per epoch: one 100-step report per epoch.
  data = writeSyntheticCifar(path.join(dir, 'data'), { perTrainFile: 700, test: 500, seed: 7 });
});

const base = () => ['--data', data, '--batch-size', '32'];

test('text output follows the PyTorch reference format', () => {
  const r = runCli([...base(), '--epochs', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lossLines = r.lines.filter((l) => l.startsWith('Epoch'));
  assert.equal(lossLines.length, 2);
  assert.match(lossLines[0], /^Epoch \[1\/2\], Step \[100\/110\], Loss: \d+\.\d{4}$/);
  assert.match(lossLines[1], /^Epoch \[2\/2\], Step \[100\/110\], Loss: \d+\.\d{4}$/);
  const acc = r.lines.filter((l) => l.startsWith('Test accuracy'));
  assert.equal(acc.length, 2);
  assert.match(acc[1], /^Test accuracy: \d+\.\d{2}% \(\d+\/500\)$/);
  assert.match(r.lines[r.lines.indexOf(acc[0]) + 1], /^Throughput: training \d+ samples\/s, evaluation \d+ samples\/s/);
});

test('JSON events: the loss falls, accuracy ends far above chance, one seed gives one run', () => {
  const args = [...base(), '--epochs', '3', '--json', '--seed', '5'];
  const first = jsonEvents(runCli(args));
  const again = jsonEvents(runCli(args));
  const losses = first.filter((e) => e.event === 'loss');
  assert.deepEqual(Object.keys(losses[0]), ['event', 'epoch', 'step', 'steps', 'loss']);
  assert.equal(losses.length, 3);
  assert.ok(losses[2].loss < 0.5 * losses[0].loss, `loss did not fall: ${losses.map((e) => e.loss)}`);
  const epochs = first.filter((e) => e.event === 'epoch');
  assert.equal(epochs.length, 3);
  for (const key of ['epoch', 'test_accuracy', 'correct', 'total', 'test_loss', 'train_samples_per_s', 'elapsed_s']) {
    assert.ok(key in epochs[0], `epoch event lacks ${key}`);
  }
  assert.ok(epochs[2].test_accuracy > 0.6, `accuracy ${epochs[2].test_accuracy}`);
  assert.equal(epochs[2].total, 500);
  const strip = (events) => events.map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...rest }) => rest);
  assert.deepEqual(strip(again), strip(first), 'same seed, different run');
  const other = jsonEvents(runCli([...base(), '--epochs', '1', '--json', '--seed', '6']));
  assert.notEqual(other[0].loss, losses[0].loss, 'another seed gave the same losses');
});

test('--limit-train, --limit-test and --no-shuffle', () => {
  const r = jsonEvents(runCli([...base(), '--epochs', '1', '--json', '--limit-train', '3300', '--limit-test', '120', '--no-shuffle']));
  assert.deepEqual(r.map((e) => e.event), ['loss', 'epoch']);
  assert.equal(r[0].steps, 104); // ceil(3300 / 32): the last partial batch is kept
  assert.equal(r[1].total, 120);
});

test('weights export and import round-trip in the PyTorch layout', () => {
  const file = path.join(dir, 'w.bin');
  const trained = jsonEvents(runCli([...base(), '--epochs', '1', '--json', '--export-weights', file]));
  assert.equal(statSync(file).size, 248024);
  const evaluated = jsonEvents(runCli([...base(), '--epochs', '0', '--json', '--import-weights', file]));
  assert.equal(evaluated.length, 1);
  assert.equal(evaluated[0].event, 'eval');
  assert.equal(evaluated[0].correct, trained.at(-1).correct);
  // Round trip through the engine is bit-exact.
  const copy = path.join(dir, 'w2.bin');
  runCli([...base(), '--epochs', '0', '--json', '--import-weights', file, '--export-weights', copy]);
  assert.deepEqual(readFileSync(copy), readFileSync(file));
});

/** One line on stderr naming what is wrong, the expected exit status, nothing on stdout. */
function assertUserError(r, status, pattern) {
  assert.equal(r.status, status, `exit status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

test('bad options end with status 2 and one line naming the option', () => {
  assertUserError(runCli([...base(), '--epochs', 'abc']), 2, /^webtrain: --epochs: expected an integer .* got 'abc'$/);
  assertUserError(runCli([...base(), '--batch-size', '0']), 2, /--batch-size: expected an integer from 1/);
  assertUserError(runCli([...base(), '--lr', '-1']), 2, /--lr: expected a positive number, got '-1'/);
  assertUserError(runCli([...base(), '--lr', 'nan']), 2, /--lr/);
  assertUserError(runCli([...base(), '--seed', '1.5']), 2, /--seed/);
  assertUserError(runCli([...base(), '--frobnicate']), 2, /frobnicate/);
  assertUserError(runCli(['--epochs', '1']), 2, /--data DIR is required/);
});

test('bad weights files are refused with the file named', () => {
  const short = path.join(dir, 'short.bin');
  writeFileSync(short, new Uint8Array(1000));
  assertUserError(runCli([...base(), '--epochs', '0', '--import-weights', short]), 1, new RegExp(`${short}: weights file is 1000 bytes; a simplecnn weights file \\(62,006 float32 parameters\\) is 248024 bytes`));
  const nan = path.join(dir, 'nan.bin');
  const values = new Float32Array(62006);
  values[17] = NaN;
  writeFileSync(nan, new Uint8Array(values.buffer));
  assertUserError(runCli([...base(), '--epochs', '0', '--import-weights', nan]), 1, /non-finite value at parameter 17/);
  assertUserError(runCli([...base(), '--epochs', '0', '--import-weights', path.join(dir, 'nope.bin')]), 1, /nope\.bin: weights file not found/);
});

// The CLI's recipe options: --help lists each with its default, a description's @ lines are the
// run's defaults and options override them, bad values are usage errors naming the option, a
// resumed run keeps its recipe, and SGD with Nesterov, a schedule, label smoothing, groups and the
// lookahead average gives the same run with 1 and 2 workers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { createEngine } from '../web/engine.js';
import { RECIPE_FIELDS } from '../web/recipe.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

let dir, data, engine;
const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
// A small net with batch norm (its own parameter group) and a named conv (its bias frozen after an epoch).
const NET = `@optimizer sgd
@lr 0.02
@momentum 0.85
@nesterov true
@weight_decay 5e-4
@schedule triangular:start=0.2,peak=0.23,end=0.07
@label_smoothing 0.2
@batch_size 32
@epochs 2
@ema lookahead:every=3
@group batchnorm lr=4 weight_decay=0
@group stem.bias frozen_after=1
stem: conv(8, 3, padding=1)
batchnorm
relu
maxpool(4)
flatten
linear(classes)
`;
before(async () => {
  dir = tempDir('webtrain-cli-recipe-');
  data = writeSyntheticCifar(path.join(dir, 'data'), { perTrainFile: 100, test: 100, seed: 8 });
  writeFileSync(path.join(dir, 'net.txt'), NET);
  engine = await createEngine(wasm);
});

const strip = (events) => events.map(({ train_samples_per_s, eval_samples_per_s, elapsed_s, train_s, ...rest }) => rest);
const recipeOf = (file) => engine.checkpointRecipe(readFileSync(file), file);

test('--help lists every recipe option with its default', () => {
  const r = runCli(['--help']);
  assert.equal(r.status, 0);
  for (const f of RECIPE_FIELDS) {
    assert.match(r.stdout, new RegExp(`--${f.cli}\\b[^\\n]*(\\n\\s+[^\\n]*)?\\(default `), `--${f.cli} with its default`);
  }
  assert.match(r.stdout, /--optimizer NAME\s+adam, adamw, sgd \(default adam\)/);
  assert.match(r.stdout, /--tta NAME\s+test-time augmentation: none, flip, flip-translate \(default none\)/);
});

test("a description's @ lines are the run's defaults; options override them; the checkpoint keeps the recipe", () => {
  const ckpt = path.join(dir, 'preset.bin');
  const r = runCli(['--data', data, '--model', path.join(dir, 'net.txt'), '--epochs', '1', '--lr', '0.03', '--no-nesterov', '--workers', '1', '--json', '--checkpoint', ckpt]);
  assert.equal(r.status, 0, r.stderr);
  const recipe = recipeOf(ckpt);
  assert.equal(recipe.optimizer, 'sgd');
  assert.equal(recipe.lr, 0.03, '--lr overrides @lr');
  assert.equal(recipe.nesterov, false, '--no-nesterov overrides @nesterov true');
  assert.equal(recipe.epochs, 1);
  assert.equal(recipe.batchSize, 32, '@batch_size');
  assert.equal(recipe.labelSmoothing, 0.2);
  assert.deepEqual(recipe.schedule, { kind: 'triangular', start: 0.2, peak: 0.23, end: 0.07 });
  assert.equal(recipe.groups.length, 2);
  assert.deepEqual(jsonEvents(r).map((e) => e.event), ['epoch'], '16 steps of 32: no loss line');
  // Without options, the seed's defaults.
  const plain = path.join(dir, 'plain.bin');
  assert.equal(runCli(['--data', data, '--epochs', '1', '--limit-train', '64', '--workers', '1', '--checkpoint', plain]).status, 0);
  const seed = recipeOf(plain);
  assert.equal(seed.optimizer, 'adam');
  assert.equal(seed.lr, 0.001);
  assert.equal(seed.batchSize, 64);
});

test('--eval-every 0 evaluates only after the last epoch: the epochs before say so, and the weights are the same', () => {
  const common = ['--data', data, '--model', path.join(dir, 'net.txt'), '--limit-train', '128', '--workers', '1'];
  const w0 = path.join(dir, 'eval0.safetensors'), w1 = path.join(dir, 'eval1.safetensors');
  const skipped = runCli([...common, '--eval-every', '0', '--export', w0]);
  const every = runCli([...common, '--export', w1]);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.equal(every.status, 0, every.stderr);
  const lines = (r) => r.stdout.split('\n').filter((l) => /^(Epoch \[\d\/2\]: not|Test accuracy|Throughput)/.test(l));
  assert.deepEqual(lines(skipped).map((l) => l.replace(/\d+(\.\d+)?/g, 'N')), [
    'Epoch [N/N]: not evaluated (eval_every)', 'Throughput: training N samples/s (N s elapsed)',
    'Test accuracy: N% (N/N)', 'Throughput: training N samples/s, evaluation N samples/s (N s elapsed)',
  ]);
  assert.equal(lines(skipped)[2], lines(every)[2], 'the final evaluation is the same');
  assert.deepEqual(readFileSync(w0), readFileSync(w1), 'eval_every changed the training');
});

test('bad recipe options are usage errors naming the option', () => {
  const cases = [
    [['--optimizer', 'rmsprop'], /^webtrain: --optimizer: expected adam, adamw, sgd, got 'rmsprop'$/],
    [['--schedule', 'cosine:warm=0.1'], /^webtrain: --schedule: cosine takes warmup, min, not 'warm'$/],
    [['--momentum', '1'], /^webtrain: --momentum: expected a number from 0 below 1, got '1'$/],
    [['--label-smoothing', '-0.1'], /--label-smoothing: expected a number from 0 below 1/],
    [['--nesterov', '--no-nesterov'], /--nesterov and --no-nesterov contradict each other/],
    [['--tta', 'flips'], /--tta: expected none, flip, flip-translate, got 'flips'/],
    [['--eval-every', '1.5'], /--eval-every: expected an integer from 0 to 100000, got '1.5'/],
    [['--augment', 'flip=alternate,translate=x'], /--augment: translate=x is not valid in 'flip=alternate,translate=x'/],
    [['--ema', 'lookahead:rho=2'], /--ema: rho: expected a number from 0 to 1, got '2'/],
    [['--optimizer', 'sgd', '--nesterov', '--dampening', '0.1'], /nesterov needs a momentum above 0 and no dampening/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(['--data', data, '--epochs', '1', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status} ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
  }
  const r = runCli(['--data', data, '--epochs', '1', '--group', 'fc9 lr=2']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /@group fc9: matches no parameter of this net/);
});

test('SGD + Nesterov, a schedule, label smoothing, groups and the lookahead average: 2 workers give the run of 1, and a resumed run keeps its recipe', () => {
  const common = ['--data', data, '--model', path.join(dir, 'net.txt'), '--json', '--limit-train', '400', '--batch-size', '16'];
  const w1 = path.join(dir, 'one.safetensors'), w2 = path.join(dir, 'two.safetensors');
  const one = runCli([...common, '--workers', '1', '--export', w1]);
  const two = runCli([...common, '--workers', '2', '--export', w2]);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(two.status, 0, two.stderr);
  // The evaluation's loss is added up from each worker's mean (parallel.js), so its last bit may differ.
  const lossless = (events) => strip(events).map(({ test_loss: testLoss, ...rest }) => ({ ...rest, testLoss: testLoss === undefined ? undefined : Number(testLoss.toPrecision(12)) }));
  assert.deepEqual(lossless(jsonEvents(two)), lossless(jsonEvents(one)));
  assert.deepEqual(readFileSync(w2), readFileSync(w1), 'bit-identical weights');
  // The recipe learns: accuracy above chance on this synthetic set.
  assert.ok(jsonEvents(one).at(-1).test_accuracy > 0.3, `accuracy ${jsonEvents(one).at(-1).test_accuracy}`);
  // Resume mid-epoch from a checkpoint: the same tail, the same weights; a contradicting option is refused.
  const ckpt = path.join(dir, 'mid.bin');
  const head = runCli([...common, '--workers', '1', '--epochs', '1', '--checkpoint', ckpt, '--checkpoint-every', '7']);
  assert.equal(head.status, 0, head.stderr);
  const refused = runCli(['--data', data, '--resume', ckpt, '--optimizer', 'adam']);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--optimizer adam contradicts .*mid\.bin, which was saved with optimizer sgd/);
});

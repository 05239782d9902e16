// The standard data sets in the page (Debian's Chromium, headless, driven by playwright-core),
// all generated here: MNIST picked and fetched from a local URL (gzipped IDX files), Fashion-MNIST
// dropped as its four files, CIFAR-100's archive dropped (the picker follows it), and the views
// at 100 classes: per-class accuracy, the heat-map confusion matrix with hover and keys, the most
// confused pairs and the misclassified images, with axe-core finding nothing serious. Skips,
// saying why, where Chromium or playwright-core is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startServer } from '../src/node/serve.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { writeSyntheticIdx, writeSyntheticCifar100 } from './helpers/datasets.js';
import { launchBrowser, openPage as openPageIn, waitForState, axeFindings } from './helpers/browser.js';
import { CIFAR100_FINE } from '../web/datasets.js';

// The test server serves CIFAR-10 as data/cifar-10-batches-bin/ and MNIST as data/mnist/ (as npm start does).
const SERVED = 'data/cifar-10-batches-bin/';

let skipReason = null;
let browser, server, temp;

before(async () => {
  ({ browser, skipReason = null } = await launchBrowser());
  if (skipReason) return;
  temp = mkdtempSync(path.join(tmpdir(), 'webtrain-browser-datasets-'));
  const data = writeSyntheticCifar(path.join(temp, 'data'), { perTrainFile: 20, test: 20 });
  writeSyntheticIdx(path.join(temp, 'datasets', 'mnist'), { train: 400, test: 100, gzip: true });
  writeSyntheticIdx(path.join(temp, 'dropped-idx'), { train: 200, test: 60 });
  writeSyntheticCifar100(path.join(data, 'cifar-100-binary'), { train: 400, test: 300 });
  server = await startServer({ port: 0, dataDir: data, datasetsDir: path.join(temp, 'datasets') });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (temp) rmSync(temp, { recursive: true, force: true });
});

const openPage = (t, url) => openPageIn(browser, t, url);
const state = (page, ...states) => waitForState(page, states, { timeout: 90000 });

test('MNIST picked in the page: the URL follows, the model is checked for 1x28x28, it trains from gzipped IDX files with digit names', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=2&batch=16`);
  await state(page, 'idle');
  assert.equal(await page.inputValue('#data'), 'data/cifar-10-batches-bin/');
  await page.selectOption('#dataset', 'mnist');
  assert.equal(await page.inputValue('#data'), 'data/mnist/', 'the default data URL follows the data set');
  assert.match(page.url(), /[?&]dataset=mnist\b/);
  assert.match(await page.textContent('#start-info'), /^Start downloads MNIST \(11 MB, four files\) from this site \(\/data\/mnist\/\)/);
  assert.match(await page.textContent('#data-intro'), /^Start fetches MNIST for you/);
  assert.equal(await page.getAttribute('#limitTrain', 'placeholder'), 'all (60,000)');
  // The Model card's summary is for the chosen set's shape.
  await page.waitForFunction(() => /1×28×28/.test(document.getElementById('model-summary').textContent));
  // A missing folder: the 404 names the file and what the folder must hold.
  await page.fill('#data', `${SERVED}nowhere/`);
  await page.click('#start');
  await page.waitForSelector('#errors:visible');
  assert.match(await page.textContent('#error-list'), /nowhere\/t(rain|10k)-.*-idx\d-ubyte: HTTP 404 .* folder holding the four extracted MNIST files \(train-images-idx3-ubyte, .*\), gzipped \(\.gz\) or not/);
  await state(page, 'idle');
  await page.fill('#data', 'data/mnist/');
  await page.click('#start');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /# Data: 400 training and 100 test images of MNIST \(1x28x28, 10 classes\)/);
  assert.match(log, /^Test accuracy: \d+\.\d\d% \(\d+\/100\)$/m);
  const accuracy = Number((await page.textContent('#accuracy')).replace('%', ''));
  assert.ok(accuracy > 50, `accuracy ${accuracy}% on an easy synthetic set`);
  assert.deepEqual(await page.locator('#per-class .class-name').allTextContents(), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.equal(await page.locator('#confusion table tbody td').count(), 100);
  // Test images are drawn 28x28 from one grey plane, named by their digit.
  const first = page.locator('#image-grid canvas').first();
  assert.deepEqual(await first.evaluate((c) => [c.width, c.height]), [28, 28]);
  assert.match(await first.getAttribute('aria-label'), /^test image 1, a \d$/);
  const [r, g, b] = await first.evaluate((c) => Array.from(c.getContext('2d').getImageData(14, 14, 1, 1).data.slice(0, 3)));
  assert.ok(r === g && g === b, `grey pixels: ${r}, ${g}, ${b}`);
  assert.equal(await page.locator('#filters canvas').count(), 6, 'conv1 has 6 grey filters to show');
});

test('Fashion-MNIST dropped as its four plain files while Fashion-MNIST is picked: its class names', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=16&dataset=fashion-mnist`);
  await state(page, 'idle');
  const dir = path.join(temp, 'dropped-idx');
  await page.setInputFiles('#data-files', ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map((n) => path.join(dir, n)));
  await page.waitForSelector('#local-data:visible');
  assert.match(await page.textContent('#local-data'), /as Fashion-MNIST/);
  await page.click('#start');
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /# Data: 200 training and 60 test images of Fashion-MNIST/);
  const names = await page.locator('#per-class .class-name').allTextContents();
  assert.equal(names[9], 'Ankle boot');
  assert.match(await page.locator('#image-grid figure').first().getAttribute('title'), /true: (T-shirt\/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)$/);
  // A truncated file is refused naming it, and the loaded data stays.
  const bad = path.join(temp, 't10k-images-idx3-ubyte');
  writeFileSync(bad, readFileSync(path.join(dir, 't10k-images-idx3-ubyte')).subarray(0, 1000));
  await page.setInputFiles('#data-files', [...['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-labels-idx1-ubyte'].map((n) => path.join(dir, n)), bad]);
  await page.waitForSelector('#errors:visible');
  assert.match(await page.textContent('#error-list'), /t10k-images-idx3-ubyte: truncated: 1000 bytes, but its header says 60 images/);
});

test('100 classes: CIFAR-100 from its dropped archive; per-class list, heat map with hover and keys, confused pairs, misclassified images; axe finds nothing serious', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const archive = path.join(temp, 'cifar-100-binary.tar.gz');
  const tar = spawnSync('tar', ['-czf', archive, 'cifar-100-binary'], { cwd: path.join(temp, 'data') });
  if (tar.status !== 0) return t.skip(`tar failed: ${tar.stderr}`);
  const page = await openPage(t, `${server.url}?epochs=1&batch=16`);
  await state(page, 'idle');
  await page.setInputFiles('#data-files', archive);
  await page.waitForSelector('#local-data:visible');
  assert.equal(await page.inputValue('#dataset'), 'cifar100', 'the picker follows the dropped archive');
  assert.match(await page.textContent('#log'), /# The files are CIFAR-100 \(100 fine classes\)'s/);
  await page.click('#start');
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /# Data: 400 training and 300 test images of CIFAR-100 \(100 fine classes\) \(3x32x32, 100 classes\)/);
  // Per-class accuracy: every class, lowest first, in a keyboard-reachable scrolling box.
  assert.equal(await page.locator('#per-class tbody tr').count(), 100);
  assert.equal(await page.getAttribute('#per-class .scroll-box', 'tabindex'), '0');
  const percents = (await page.locator('#per-class tbody td.num').allTextContents()).filter((x) => x !== '—').map((x) => Number(x.replace('%', '')));
  assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'sorted lowest first');
  for (const name of await page.locator('#per-class .class-name').allTextContents()) assert.ok(CIFAR100_FINE.includes(name), name);
  // The matrix is a heat map, not a 100x100 table; hover and the arrow keys read a cell.
  assert.equal(await page.locator('#confusion table').count(), 0);
  const canvas = page.locator('#confusion canvas.heat-map-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  await canvas.hover({ position: { x: box.width * (2.5 / 100), y: box.height * (0.5 / 100) } });
  assert.match(await page.textContent('.heat-map-readout'), /^true apple, predicted baby: \d+ \((\d+\.\d%|—) of apple\)$/);
  await canvas.focus();
  await page.keyboard.press('ArrowDown');
  assert.match(await page.textContent('.heat-map-readout'), /^true aquarium_fish, predicted baby: \d+/);
  const pairs = await page.locator('#confusion .confused-pairs li').allTextContents();
  assert.ok(pairs.length > 0 && pairs.length <= 10, `${pairs.length} pairs`);
  assert.match(pairs[0], /^\S+ → \S+: \d+ \(\d+\.\d% of \S+\)$/);
  // The misclassified images: every one is wrong, and named by its classes.
  const wrong = page.locator('#mistakes figure');
  assert.ok(await wrong.count() > 0);
  assert.equal(await page.locator('#mistakes figure.right').count(), 0);
  assert.match(await wrong.first().getAttribute('title'), /^predicted: \S+, true: \S+$/);
  assert.deepEqual(await axeFindings(page), [], 'axe-core on the 100-class views');
});

// Debian's dataset-fashion-mnist package (.ci/setup installs it): the real, gzipped IDX files.
const REAL_FASHION = '/usr/share/datasets/fashion-mnist';
const realFashionSkip = !existsSync(REAL_FASHION) && `${REAL_FASHION} not found (apt-get install dataset-fashion-mnist)`;

test('real Fashion-MNIST dropped as its four .gz files: gunzipped in the page, 6,000 images of training reach > 65%', { skip: realFashionSkip }, async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=32&limitTrain=6000&dataset=fashion-mnist`);
  await state(page, 'idle');
  await page.setInputFiles('#data-files', ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map((n) => path.join(REAL_FASHION, `${n}.gz`)));
  await page.waitForSelector('#local-data:visible', { timeout: 60000 });
  assert.match(await page.textContent('#log'), /# Data: 60,000 training and 10,000 test images of Fashion-MNIST \(1x28x28, 10 classes\)/);
  await page.click('#start');
  await state(page, 'done');
  const accuracy = Number((await page.textContent('#accuracy')).replace('%', ''));
  t.diagnostic(`test accuracy ${accuracy}% after one epoch of 6,000 images`);
  assert.ok(accuracy > 65, `accuracy ${accuracy}%`);
});

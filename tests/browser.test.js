// The page in Debian's Chromium (headless, driven by playwright-core) against the site served on
// localhost with a small synthetic data set: training, pause/resume, results, weights, errors,
// dropped archive, sub-path, no-SIMD browsers. Skips, saying why, where Chromium or playwright-core
// is missing. Leaves a screenshot of the trained page in tests/artifacts/page.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { startServer, WEB_ROOT } from '../src/node/serve.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { ALL_FILES } from '../web/cifar.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const WEIGHTS_BYTES = 248024;
// 5 x 200 training records at batch 8: 125 steps per epoch, so each epoch logs one loss line.
const PER_TRAIN_FILE = 200;
const TEST_RECORDS = 200;

let skipReason = null;
let chromium;
let browser;
let server;
let subPathServer;
let temp;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    skipReason = `${CHROMIUM} not found (apt-get install -y chromium)`;
    return;
  }
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    skipReason = 'playwright-core is not installed (npm install)';
    return;
  }
  if (!existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) {
    skipReason = "web/webtrain.wasm is missing: run 'npm run build'";
    return;
  }
  if (!existsSync(path.join(WEB_ROOT, 'vendor', 'uPlot.esm.js'))) (await import('../src/node/vendor.js')).vendor();

  temp = mkdtempSync(path.join(tmpdir(), 'webtrain-browser-'));
  const data = writeSyntheticCifar(path.join(temp, 'data'), { perTrainFile: PER_TRAIN_FILE, test: TEST_RECORDS });
  // A copy with one truncated file, reachable as ?data=data/cifar-10-batches-bin/bad/.
  const bad = path.join(data, 'bad');
  mkdirSync(bad);
  for (const name of ALL_FILES) copyFileSync(path.join(data, name), path.join(bad, name));
  writeFileSync(path.join(bad, 'data_batch_3.bin'), readFileSync(path.join(data, 'data_batch_3.bin')).subarray(0, 5000));

  server = await startServer({ port: 0, dataDir: data });
  subPathServer = await startServer({ port: 0, dataDir: data, base: '/some/sub/path/' });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await subPathServer?.close();
  if (temp) rmSync(temp, { recursive: true, force: true });
});

/** A fresh page (own context: own cache storage) that fails the test on uncaught page errors. */
async function openPage(t, url) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  t.after(async () => {
    await context.close();
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  });
  if (url) await page.goto(url);
  return page;
}

const state = (page, ...states) => page.waitForSelector(states.map((s) => `body[data-state="${s}"]`).join(', '), { timeout: 60000 });
const globalStep = async (page) => Number(await page.getAttribute('#epoch-progress', 'data-global-step'));

async function downloadWeights(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-weights')]);
  assert.equal(download.suggestedFilename(), 'webtrain-weights.bin');
  return readFileSync(await download.path());
}

async function chooseWeights(page, file) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#load-weights-label')]);
  await chooser.setFiles(file);
}

test('Start trains: log, loss and accuracy charts, confusion matrix, images, filters; weights download and load back; a bad weights file keeps the model', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=2&batch=8&autostart=1`);
  await state(page, 'done');

  const log = await page.textContent('#log');
  assert.match(log, /^Epoch \[1\/2\], Step \[100\/125\], Loss: \d+\.\d{4}$/m);
  assert.match(log, /^Epoch \[2\/2\], Step \[100\/125\], Loss: \d+\.\d{4}$/m);
  assert.match(log, /^Test accuracy: \d+\.\d\d% \(\d+\/200\)$/m);
  assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '2');
  assert.equal(await page.getAttribute('#accuracy-chart', 'data-points'), '2');
  assert.equal(await page.locator('#loss-chart canvas').count(), 1, 'uPlot drew the loss chart');

  const accuracy = await page.textContent('#accuracy');
  assert.match(accuracy, /^\d+\.\d\d%$/);
  assert.equal(await page.locator('#confusion table tbody tr').count(), 10);
  assert.equal(await page.locator('#confusion table tbody td').count(), 100);
  const confusionTotal = (await page.locator('#confusion tbody td').allTextContents()).reduce((sum, n) => sum + Number(n), 0);
  assert.equal(confusionTotal, TEST_RECORDS, 'the confusion matrix covers the whole test set');
  assert.equal(await page.locator('#per-class tbody tr').count(), 10);
  assert.ok(await page.locator('#image-grid figure.tile.right, #image-grid figure.tile.wrong').count() > 0, 'test images carry predictions');
  assert.equal(await page.locator('#filters canvas').count(), 6);
  assert.equal(await page.locator('#errors').isHidden(), true);
  await page.screenshot({ path: path.join(ARTIFACTS, 'page.png'), fullPage: true });

  // Settings changes are mirrored into the address bar.
  await page.fill('#seed', '7');
  const query = await page.evaluate(() => location.search);
  assert.match(query, /[?&]seed=7(&|$)/);
  assert.match(query, /[?&]epochs=2(&|$)/);
  await page.fill('#epochs', '0');
  assert.match(await page.textContent('#epochs-error'), /Epochs: enter a whole number/);
  await page.fill('#epochs', '2');

  const weights = await downloadWeights(page);
  assert.equal(weights.byteLength, WEIGHTS_BYTES);
  const weightsFile = path.join(temp, 'trained.bin');
  writeFileSync(weightsFile, weights);

  await chooseWeights(page, weightsFile);
  await page.waitForSelector('#weights-info:has-text("Loaded trained.bin")');
  assert.equal(await page.textContent('#accuracy'), accuracy, 'the loaded weights score as the trained ones did');

  const badFile = path.join(temp, 'not-weights.bin');
  writeFileSync(badFile, Buffer.alloc(1000, 1));
  await chooseWeights(page, badFile);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /not-weights\.bin/);
  assert.match(errors, /model is kept/);
  assert.deepEqual(await downloadWeights(page), weights, 'the refused file left the model as it was');
});

test('Pause stops the steps and Resume continues them', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=200&batch=8&autostart=1`);
  await state(page, 'running');
  await page.waitForFunction(() => Number(document.getElementById('epoch-progress').dataset.globalStep) > 0);
  await page.click('#pause');
  await state(page, 'paused');
  assert.equal(await page.textContent('#pause'), 'Resume');
  const pausedAt = await globalStep(page);
  await page.waitForTimeout(600);
  assert.equal(await globalStep(page), pausedAt, 'no steps while paused');
  await page.click('#pause');
  await state(page, 'running');
  await page.waitForFunction((n) => Number(document.getElementById('epoch-progress').dataset.globalStep) > n, pausedAt);
  await page.click('#stop');
  await state(page, 'stopped');
  const stoppedAt = await globalStep(page);
  await page.waitForTimeout(300);
  assert.equal(await globalStep(page), stoppedAt, 'no steps after Stop');
  assert.equal(await page.isEnabled('#download-weights'), true, 'the stopped model can be downloaded');
});

test('a missing data file (404) is reported with its URL', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=missing-folder/&autostart=1`);
  await page.waitForSelector('#errors:visible');
  assert.match(await page.textContent('#error-list'), /http:\/\/localhost:\d+\/missing-folder\/(data_batch_\d|test_batch)\.bin: HTTP 404/);
  await state(page, 'idle');
});

test('a malformed data file is refused by the engine, naming the file', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=data/cifar-10-batches-bin/bad/&autostart=1`);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /bad\/data_batch_3\.bin: /);
  assert.doesNotMatch(errors, /data_batch_[1245]\.bin: /);
});

test('the official archive can be dropped in instead of fetching', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const tar = spawnSync('tar', ['-czf', path.join(temp, 'cifar-10-binary.tar.gz'), '--transform', 's,^data,cifar-10-batches-bin,', '--exclude', 'bad', 'data'], { cwd: temp });
  if (tar.status !== 0) return t.skip(`tar failed: ${tar.stderr}`);
  const page = await openPage(t, `${server.url}?data=nowhere/&epochs=1&batch=8`);
  await state(page, 'idle');
  await page.setInputFiles('#data-files', path.join(temp, 'cifar-10-binary.tar.gz'));
  await page.waitForSelector('#local-data:visible');
  await page.click('#start');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /# Data: 1,000 training and 200 test images/);
  assert.match(log, /^Test accuracy: /m);
  assert.equal(await page.locator('#errors').isHidden(), true);
});

test('the site works from a sub-path', async (t) => {
  if (skipReason) return t.skip(skipReason);
  assert.match(subPathServer.url, /\/some\/sub\/path\/$/);
  const page = await openPage(t, `${subPathServer.url}?epochs=1&batch=8&autostart=1`);
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /^Test accuracy: /m);
});

test('a browser without Wasm SIMD gets a plain message and no Start', async (t) => {
  if (skipReason) return t.skip(skipReason);
  assert.match(readFileSync(path.join(WEB_ROOT, 'app.js'), 'utf8'), /wasmSimdSupported\(\)/, 'the page checks up front');
  const page = await openPage(t);
  await page.addInitScript(() => { WebAssembly.validate = () => false; });
  await page.goto(`${server.url}?autostart=1`);
  await page.waitForSelector('#unsupported:visible');
  assert.match(await page.textContent('#unsupported'), /does not support WebAssembly SIMD/);
  assert.equal(await page.isDisabled('#start'), true);
});

test('the page runs under the Content-Security-Policy planned for it (no inline script or style)', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'";
  const page = await openPage(t);
  const violations = [];
  page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) violations.push(message.text()); });
  await page.route((url) => url.pathname === '/', async (route) => {
    const response = await route.fetch();
    const body = (await response.text()).replace('<meta charset="utf-8">', `<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${CSP}">`);
    await route.fulfill({ response, body });
  });
  await page.goto(`${server.url}?epochs=1&batch=8&autostart=1`);
  await state(page, 'done');
  assert.equal(await page.locator('meta[http-equiv="Content-Security-Policy"]').count(), 1);
  assert.equal(await page.locator('#confusion tbody td').count(), 100);
  assert.deepEqual(violations, []);
});

/** A raw GET (no URL normalisation on our side, so '..' reaches the server as written). */
function rawGet(port, rawPath) {
  return new Promise((resolve, reject) => {
    http.get({ host: 'localhost', port, path: rawPath }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], location: res.headers.location }));
    }).on('error', reject);
  });
}

test('the server sends the right MIME types, serves the data folder and refuses paths outside its roots', async () => {
  const data = mkdtempSync(path.join(tmpdir(), 'webtrain-serve-'));
  writeFileSync(path.join(data, 'test_batch.bin'), Buffer.alloc(3073));
  const local = await startServer({ port: 0, dataDir: data, base: '/sub/' });
  const port = local.server.address().port;
  try {
    assert.deepEqual(await rawGet(port, '/sub'), { status: 302, type: 'text/plain; charset=utf-8', location: '/sub/' });
    assert.equal((await rawGet(port, '/sub/')).type, 'text/html; charset=utf-8');
    assert.equal((await rawGet(port, '/sub/app.js')).type, 'text/javascript; charset=utf-8');
    if (existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) assert.equal((await rawGet(port, '/sub/webtrain.wasm')).type, 'application/wasm');
    assert.equal((await rawGet(port, '/sub/data/cifar-10-batches-bin/test_batch.bin')).status, 200);
    assert.equal((await rawGet(port, '/sub/data/cifar-10-batches-bin/data_batch_1.bin')).status, 404);
    for (const bad of ['/sub/../../etc/passwd', '/sub/%2e%2e/%2e%2e/etc/passwd', '/sub/..%2f..%2fpackage.json',
      '/sub/data/cifar-10-batches-bin/..%2f..%2f..%2fetc%2fpasswd', '/sub/%00', '/sub/%E0%A4%A']) {
      const { status } = await rawGet(port, bad);
      assert.ok([400, 403, 404].includes(status), `${bad}: status ${status}`);
    }
  } finally {
    await local.close();
    rmSync(data, { recursive: true, force: true });
  }
});

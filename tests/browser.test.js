// The page in Debian's Chromium (headless, driven by playwright-core) against the site served on
// localhost with a small synthetic data set: training, pause/resume, results, weights, errors,
// dropped archive, sub-path, no-SIMD browsers, data-parallel workers, checkpoints (autosave and
// resume after a reload, download/load, divergence, a crashed worker), the page's CSP, and the
// page as a newcomer meets it (what Start will do, asking before losing work, keyboard, axe-core,
// narrow screens). Skips, saying why, where Chromium or playwright-core is missing. Leaves
// screenshots in tests/artifacts/: the trained page (page.png), the resume offer, the first screen
// (first-screen.png, copied to web/screenshot.png for the README) and a run at 390 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { startServer, WEB_ROOT } from '../src/node/serve.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { launchBrowser, openPage as openPageIn, waitForState, dropFiles, AXE_SOURCE, axeFindings } from './helpers/browser.js';
import { ALL_FILES } from '../web/cifar.js';

const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const WEIGHTS_BYTES = 248024;
// A version 3 checkpoint of SimpleCNN: header, spec, description, 3 x 62,006 floats, CRC (745,608
// bytes), and the run's recipe as JSON text (its length at offset 128), padded to 4 bytes.
const CHECKPOINT_BYTES = (file) => 745608 + ((file.readUInt32LE(128) + 3) & ~3);
// 5 x 200 training records at batch 8: 125 steps per epoch, so each epoch logs one loss line.
const PER_TRAIN_FILE = 200;
const TEST_RECORDS = 200;
// A larger set for the runs that are interrupted: 5 x 400 records at batch 8, 250 steps per epoch,
// so an epoch lasts long enough to be caught in the middle. Reached as ?data=<BIG_DATA>.
const BIG_PER_TRAIN_FILE = 400;
const BIG_DATA = 'data/cifar-10-batches-bin/big/';

let skipReason = null;
let browser;
let server;
let subPathServer;
let temp;

before(async () => {
  ({ browser, skipReason = null } = await launchBrowser());
  if (skipReason) return;
  temp = mkdtempSync(path.join(tmpdir(), 'webtrain-browser-'));
  const data = writeSyntheticCifar(path.join(temp, 'data'), { perTrainFile: PER_TRAIN_FILE, test: TEST_RECORDS });
  // A copy with one truncated file, reachable as ?data=data/cifar-10-batches-bin/bad/.
  const bad = path.join(data, 'bad');
  mkdirSync(bad);
  for (const name of ALL_FILES) copyFileSync(path.join(data, name), path.join(bad, name));
  writeFileSync(path.join(bad, 'data_batch_3.bin'), readFileSync(path.join(data, 'data_batch_3.bin')).subarray(0, 5000));
  writeSyntheticCifar(path.join(data, 'big'), { perTrainFile: BIG_PER_TRAIN_FILE, test: TEST_RECORDS, seed: 11 });

  server = await startServer({ port: 0, dataDir: data });
  subPathServer = await startServer({ port: 0, dataDir: data, base: '/some/sub/path/' });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await subPathServer?.close();
  if (temp) rmSync(temp, { recursive: true, force: true });
});

const openPage = (t, url, viewport) => openPageIn(browser, t, url, viewport);
const state = (page, ...states) => waitForState(page, states);
const globalStep = async (page) => Number(await page.getAttribute('#epoch-progress', 'data-global-step'));

async function downloadWeights(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-weights')]);
  assert.equal(download.suggestedFilename(), 'webtrain-weights.bin');
  return readFileSync(await download.path());
}

async function chooseWeights(page, file) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#load-weights-button')]);
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
  // Per epoch: the 100-step mean, then the mean of the last 25 steps.
  assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '4');
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
  // Not "Resume": that is the saved-run offer's button, which means something else.
  assert.equal(await page.textContent('#pause'), 'Continue');
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
  assert.equal(await page.textContent('#samples-per-s'), '—', 'no live speed once stopped');
  assert.equal(await page.textContent('#eta'), '—', 'no ETA once stopped');
});

test('a missing data file (404) is reported with its URL and the right advice; the page does not then say Ready', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=missing-folder/&autostart=1`);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /http:\/\/localhost:\d+\/missing-folder\/(data_batch_\d|test_batch)\.bin: HTTP 404/);
  // The URL must hold the extracted files: the archive there would not do.
  assert.match(errors, /folder holding the six extracted CIFAR-10 files .* not cifar-10-binary\.tar\.gz itself/);
  await state(page, 'idle');
  assert.equal(await page.textContent('#status'), 'Data not loaded: see the errors');
  const rows = await page.locator('#file-progress .file-bytes').allTextContents();
  assert.ok(rows.some((text) => /^failed/.test(text)), `a row names the failure: ${rows}`);
  assert.ok(!rows.includes('waiting'), `no row goes back to "waiting": ${rows}`);
});

test('a data server without CORS headers, and one that cannot be reached, are told apart', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // Another origin (127.0.0.1, the page is on localhost) that answers everything, without CORS.
  const bare = http.createServer((req, res) => res.end('x'));
  await new Promise((resolve) => { bare.listen(0, '127.0.0.1', resolve); });
  t.after(() => bare.close());
  const page = await openPage(t, `${server.url}?data=http://127.0.0.1:${bare.address().port}/&autostart=1`);
  await page.waitForSelector('#errors:visible');
  assert.match(await page.textContent('#error-list'), /the server answered, but without the CORS header .*Access-Control-Allow-Origin/);
  await state(page, 'idle');

  const closed = await new Promise((resolve) => { const s = http.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
  const unreachable = await openPage(t, `${server.url}?data=http://127.0.0.1:${closed}/&autostart=1`);
  await unreachable.waitForSelector('#errors:visible');
  const message = await unreachable.textContent('#error-list');
  assert.match(message, /network error .*127\.0\.0\.1:\d+ could not be reached/);
  assert.doesNotMatch(message, /CORS/);
});

test('a malformed data file is refused, naming the file', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=data/cifar-10-batches-bin/bad/&autostart=1`);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /bad\/data_batch_3\.bin: /);
  assert.doesNotMatch(errors, /data_batch_[1245]\.bin: /);
  // The downloads were being written to Cache Storage in the background: none of them stays. The
  // page removes them once the writes have finished, which on a loaded machine can be after the
  // error shows: wait for that, up to 20 s.
  const badCached = () => page.evaluate(async () => (await Promise.all((await caches.keys()).map(async (name) => (await (await caches.open(name)).keys()).map((r) => r.url)))).flat().filter((url) => url.includes('/bad/')));
  let cached = await badCached();
  for (const deadline = Date.now() + 20_000; cached.length && Date.now() < deadline; cached = await badCached()) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(cached, [], 'files of the refused data set left in the cache');
});

test('the official archive can be dropped in instead of fetching', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const tar = spawnSync('tar', ['-czf', path.join(temp, 'cifar-10-binary.tar.gz'), '--transform', 's,^data,cifar-10-batches-bin,', '--exclude', 'bad', '--exclude', 'big', 'data'], { cwd: temp });
  if (tar.status !== 0) return t.skip(`tar failed: ${tar.stderr}`);
  const page = await openPage(t, `${server.url}?data=nowhere/&epochs=1&batch=8`);
  await state(page, 'idle');
  // One file alone (chosen) is refused; the archive (dropped) then loads, and the old error goes with it.
  await page.setInputFiles('#data-files', path.join(temp, 'data', 'test_batch.bin'));
  await page.waitForSelector('#errors:visible');
  await dropFiles(page, '#drop-zone', [path.join(temp, 'cifar-10-binary.tar.gz')]);
  await page.waitForSelector('#local-data:visible');
  assert.equal(await page.locator('#errors').isHidden(), true, 'the earlier drop error is cleared by the good load');
  await page.click('#start');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /# Data: 1,000 training and 200 test images/);
  assert.match(log, /^Test accuracy: /m);
  assert.equal(await page.locator('#errors').isHidden(), true);
});

test('an oversized file dropped or chosen is refused by its size, before it is read', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // Sparse 300 MB files: refused by File.size, they cost neither disk nor memory.
  const dropped = path.join(temp, 'oversized');
  mkdirSync(dropped, { recursive: true });
  for (const name of ALL_FILES) copyFileSync(path.join(temp, 'data', name), path.join(dropped, name));
  const big = path.join(dropped, 'data_batch_4.bin');
  const bigWeights = path.join(temp, 'big-weights.bin');
  for (const file of [big, bigWeights]) spawnSync('truncate', ['-s', String(300 * 1024 * 1024), file]);
  const page = await openPage(t, `${server.url}?data=nowhere/&epochs=1&batch=8`);
  await state(page, 'idle');
  // Notes the size of every File or Blob the page reads.
  await page.evaluate(() => {
    window.readSizes = [];
    for (const method of ['arrayBuffer', 'stream', 'text']) {
      const read = Blob.prototype[method];
      Blob.prototype[method] = function noted(...args) { window.readSizes.push(this.size); return read.apply(this, args); };
    }
  });
  await page.setInputFiles('#data-files', ALL_FILES.map((name) => path.join(dropped, name)));
  await page.waitForSelector('#errors:visible');
  assert.match(await page.textContent('#error-list'), /data_batch_4\.bin: size 314572800 bytes is not a multiple of the 3073-byte CIFAR-10 record/);
  assert.equal(await page.locator('#local-data').isHidden(), true, 'the refused files became the data source');
  await state(page, 'idle');

  await chooseWeights(page, bigWeights);
  await page.waitForSelector('#error-list:has-text("big-weights.bin: weights file is 314572800 bytes; a weights file of this model (62,006 float32 parameters) is 248024 bytes")');
  assert.match(await page.textContent('#weights-info'), /big-weights\.bin was refused/);
  assert.deepEqual(await page.evaluate(() => window.readSizes), [], 'files were read before all were judged');
  rmSync(dropped, { recursive: true, force: true });
  rmSync(bigWeights, { force: true });
});

test('a data file whose response lies about its length is refused, naming its URL', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // A server of our own on another origin (the page's CSP allows 127.0.0.1): it announces each
  // file's full length but sends only half of data_batch_2.bin, then closes the connection.
  const liar = net.createServer((socket) => {
    socket.once('data', (request) => {
      const name = /^GET \/lie\/([\w.]+) /.exec(request.toString('latin1'))?.[1];
      if (!ALL_FILES.includes(name)) return socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n');
      const bytes = readFileSync(path.join(temp, 'data', name));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n`);
      socket.end(name === 'data_batch_2.bin' ? bytes.subarray(0, bytes.length >> 1) : bytes);
    });
    socket.on('error', () => {});
  });
  await new Promise((resolve) => liar.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => liar.close(resolve)));
  const base = `http://127.0.0.1:${liar.address().port}/lie/`;
  const page = await openPage(t, `${server.url}?data=${encodeURIComponent(base)}&epochs=1&batch=8&autostart=1`);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  const announced = PER_TRAIN_FILE * 3073;
  assert.match(errors, new RegExp(`${base.replace(/[.]/g, '\\.')}data_batch_2\\.bin: .*the server announced ${announced} bytes \\(Content-Length\\)`));
  await state(page, 'idle');
  const cached = await page.evaluate(async () => Promise.all((await caches.keys()).map(async (name) => (await (await caches.open(name)).keys()).map((r) => r.url))));
  assert.deepEqual(cached.flat().filter((url) => url.includes('/lie/data_batch_2')), [], 'the short file was kept in the cache');
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

test('the page runs under its own Content-Security-Policy meta tag with no violation, and the policy is enforced', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const html = readFileSync(path.join(WEB_ROOT, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in index.html');
  assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style in index.html');
  const page = await openPage(t);
  const consoleViolations = [];
  page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) consoleViolations.push(message.text()); });
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`${server.url}?epochs=1&batch=8&workers=2&autostart=1`);
  await state(page, 'done');
  const policy = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert.ok(policy, 'the CSP meta tag is present');
  assert.match(policy, /script-src 'self' 'wasm-unsafe-eval';/);
  assert.match(policy, /default-src 'self'/);
  assert.doesNotMatch(policy, /unsafe-inline|'unsafe-eval'/);
  assert.equal(await page.locator('#confusion tbody td').count(), 100);
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(consoleViolations, []);
  // The policy really applies: an inline script added now is refused.
  await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true;';
    document.head.append(script);
  });
  await page.waitForFunction(() => window.cspViolations.length > 0);
  assert.equal(await page.evaluate(() => window.inlineRan), undefined);
  assert.match((await page.evaluate(() => window.cspViolations))[0], /^script-src/);
});

// ---------------------------------------------------------------- workers and checkpoints

const lossLines = (log) => log.split('\n').filter((line) => line.startsWith('Epoch ['));
const accuracyLines = (log) => log.split('\n').filter((line) => line.startsWith('Test accuracy: '));

/** Prints the first lines that differ, then fails. */
function assertSameLines(actual, expected, what) {
  const diffs = [];
  for (let i = 0; i < Math.max(actual.length, expected.length) && diffs.length < 5; i++) {
    if (actual[i] !== expected[i]) diffs.push(`line ${i + 1}: got ${actual[i] ?? '(none)'}, expected ${expected[i] ?? '(none)'}`);
  }
  assert.equal(diffs.length, 0, `${what} differ:\n${diffs.join('\n')}`);
}

async function downloadCheckpoint(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-checkpoint')]);
  assert.equal(download.suggestedFilename(), 'webtrain-checkpoint.bin');
  return readFileSync(await download.path());
}

async function chooseCheckpoint(page, file) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#load-checkpoint-button')]);
  await chooser.setFiles(file);
}

/** A whole run, uninterrupted: its log's loss and accuracy lines and final weights. */
async function completeRun(t, query) {
  const page = await openPage(t, `${server.url}?${query}&autostart=1`);
  await state(page, 'done');
  const log = await page.textContent('#log');
  return { page, log, losses: lossLines(log), accuracies: accuracyLines(log), weights: await downloadWeights(page) };
}

// Shared by the data-parallel test (which makes it) and the crashed-worker test (which compares).
// Batch 16 is two blocks of the gradient tree, so both workers compute part of every step.
const PARALLEL_RUN = `data=${BIG_DATA}&epochs=2&batch=16&seed=3&workers=2`;
let parallelReference = null;

test('workers=2 trains data-parallel to a good accuracy, exactly as one worker does', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const first = await completeRun(t, PARALLEL_RUN);
  assert.match(first.log, /^# Training 2 epoch\(s\), batch 16, lr 0\.001, seed 3, 2 workers: 125 steps per epoch$/m);
  assert.doesNotMatch(first.log, /not implemented/);
  assert.equal(first.losses.length, 2);
  const accuracy = Number(/^(\d+\.\d\d)%$/.exec(await first.page.textContent('#accuracy'))[1]);
  assert.ok(accuracy >= 60, `test accuracy ${accuracy}% after 2 epochs`);
  assert.equal(await first.page.locator('#errors').isHidden(), true);
  const solo = await completeRun(t, PARALLEL_RUN.replace('workers=2', 'workers=1'));
  assert.match(solo.log, /seed 3, 1 worker: 125 steps per epoch$/m);
  assertSameLines(solo.losses, first.losses, 'loss lines of 1 and 2 workers with the same seed');
  assert.deepEqual(solo.accuracies, first.accuracies);
  assert.ok(solo.weights.equals(first.weights), 'identical final weights with 1 and 2 workers');
  parallelReference = first;
});

test('a reload in the middle of epoch 3 offers the autosaved run, and Resume finishes it exactly as an uninterrupted run', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // Evaluated after epochs 2 and 4 only: the replayed log holds both kinds of epoch line.
  const run = `data=${BIG_DATA}&epochs=4&batch=8&seed=5&workers=1&evalEvery=2`;
  const reference = await completeRun(t, run);

  // debugStepMs: 10 ms between steps, so the run is still going when the click lands.
  const page = await openPage(t, `${server.url}?${run}&autosaveSeconds=0.1&debug=1&debugStepMs=10&autostart=1`);
  // Pausing saves a checkpoint; waiting for a line of epoch 3 first puts the stop inside epoch 3
  // (a slow click may land in epoch 4: that is a mid-run stop too).
  await page.waitForSelector('#log:has-text("Epoch [3/4], Step [100/250]")', { timeout: 60000 });
  await page.click('#pause');
  await state(page, 'paused');
  await page.waitForSelector('#autosave-info:text-matches("epoch [34]/4, step [0-9]")', { timeout: 60000 });
  await page.reload();
  await page.waitForSelector('#resume-offer:visible');
  // Paused first (to stop at a known place), so the page calls it a paused run left behind; the
  // crash test below covers a run interrupted while it was training.
  assert.equal(await page.textContent('#resume-title'), 'A paused run was left');
  const summary = await page.textContent('#resume-summary');
  assert.match(summary, /^Epoch [34] of 4, step \d+ of 250 · test accuracy so far \d+\.\d\d% \(after epoch 2\) · saved /);
  assert.match(await page.textContent('#log'), /autostart skipped/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'resume-offer.png'), clip: { x: 0, y: 0, width: 1400, height: 420 } });

  await page.click('#resume-run');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /^# Resumed at epoch [34], step \d+: 4 epoch\(s\), batch 8, lr 0\.001, seed 5, 1 worker: 250 steps per epoch$/m);
  // Loss lines and the epochs' 'not evaluated' lines, the saved ones replayed.
  assert.match(log, /^Epoch \[1\/4\]: not evaluated \(eval_every\)$/m);
  assertSameLines(lossLines(log), reference.losses, 'loss lines of the resumed and the uninterrupted run');
  assert.deepEqual(accuracyLines(log), reference.accuracies);
  assert.equal(await page.textContent('#accuracy'), await reference.page.textContent('#accuracy'));
  assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '12', 'the loss chart continued from the saved history');
  assert.equal(await page.getAttribute('#accuracy-chart', 'data-points'), '2');
  assert.ok((await downloadWeights(page)).equals(reference.weights), 'bit-identical final weights');
  assert.equal(await page.locator('#resume-offer').isHidden(), true, 'a finished run is not offered again');
  await page.reload();
  // The URL has autostart=1, which starts a new run when nothing is saved: the page may be past
  // idle already. It would skip autostart (and say so) if it still held a saved run.
  await state(page, 'idle', 'loading', 'running', 'done');
  assert.equal(await page.locator('#resume-offer').isHidden(), true);
  assert.doesNotMatch(await page.textContent('#log'), /autostart skipped/);
});

test('Download checkpoint and Load checkpoint restore a model; a corrupted checkpoint is refused and the model kept', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=8&seed=0&autostart=1`);
  await state(page, 'done');
  const checkpoint = await downloadCheckpoint(page);
  assert.equal(checkpoint.readUInt32LE(8), 3, 'version 3');
  assert.equal(checkpoint.byteLength, CHECKPOINT_BYTES(checkpoint));
  const trained = await downloadWeights(page);
  const accuracy = await page.textContent('#accuracy');
  const checkpointFile = path.join(temp, 'run.ckpt');
  writeFileSync(checkpointFile, checkpoint);

  await page.fill('#seed', '9');
  await page.click('#start');
  await page.click('#confirm button:text-is("Start a new run")');
  await state(page, 'done');
  assert.ok(!(await downloadWeights(page)).equals(trained), 'another seed, another model');

  await chooseCheckpoint(page, checkpointFile);
  await page.waitForSelector('#checkpoint-info:has-text("Loaded run.ckpt")');
  assert.match(await page.textContent('#checkpoint-info'), /a finished run of 1 epoch/);
  assert.ok((await downloadWeights(page)).equals(trained), 'the checkpoint brought back its weights');
  assert.equal(await page.textContent('#accuracy'), accuracy);

  const corrupted = Buffer.from(checkpoint);
  corrupted[corrupted.length >> 1] ^= 0x40;
  const corruptedFile = path.join(temp, 'corrupted.ckpt');
  writeFileSync(corruptedFile, corrupted);
  await chooseCheckpoint(page, corruptedFile);
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /corrupted\.ckpt: checkpoint is corrupted/);
  assert.match(errors, /model is kept/);
  assert.ok((await downloadWeights(page)).equals(trained), 'the refused file left the model as it was');
});

// lr=1e6 is not enough: with it this network's loss saturates near 4e37 but stays finite (the
// engine's log-softmax is stable and Adam moves each parameter by at most lr per step); 1e7 makes
// the loss NaN at step 2.
test('a diverging run (lr=10000000) stops with a message naming the step and offers its last good checkpoint with a lower learning rate', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=8&lr=10000000&autostart=1`);
  await page.waitForSelector('#errors:visible');
  await state(page, 'stopped');
  const message = await page.textContent('#error-list');
  assert.match(message, /training diverged at epoch 1, step \d+: .*Try a lower learning rate \(now 10000000\)/);
  await page.waitForSelector('#resume-offer:visible');
  assert.equal(await page.textContent('#resume-title'), 'Training diverged');
  assert.match(await page.textContent('#resume-summary'), /^Epoch 1 of 1, step 0 of 125 · no test accuracy yet/);
  assert.equal(await page.inputValue('#resume-lr'), '1000000');
  await page.fill('#resume-lr', '0.001');
  await page.click('#resume-run');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /^# Resumed at epoch 1, step 0: 1 epoch\(s\), batch 8, lr 0\.001, seed 0/m);
  assert.match(log, /^Test accuracy: \d+\.\d\d% \(\d+\/200\)$/m);
  assert.equal(await page.inputValue('#lr'), '0.001', 'the settings show the rate the run continued with');
});

test('a crashed training worker is reported and Resume continues from the last checkpoint without a reload', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!parallelReference) return t.skip('needs the data-parallel run of the test above');
  const page = await openPage(t, `${server.url}?${PARALLEL_RUN}&debug=1&debugStepMs=10&autosaveSeconds=0.02&autostart=1`);
  await page.waitForSelector('#autosave-info:text-matches("epoch 1/2, step [1-9]")', { timeout: 60000 });
  await page.click('#debug-crash-worker');
  await page.waitForSelector('#errors:visible');
  const errors = await page.textContent('#error-list');
  assert.match(errors, /The training worker crashed: Uncaught RuntimeError: unreachable/);
  assert.match(errors, /The last checkpoint \(epoch \d\/2, step \d+\/125\) is kept/);
  assert.equal(await page.textContent('#resume-title'), 'The training worker crashed');
  const navigations = await page.evaluate(() => performance.getEntriesByType('navigation').length);
  await page.click('#resume-run');
  await state(page, 'done');
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), navigations);
  const log = await page.textContent('#log');
  assertSameLines(lossLines(log), parallelReference.losses, 'loss lines after the crash and those of an uninterrupted run');
  assert.ok((await downloadWeights(page)).equals(parallelReference.weights), 'bit-identical final weights');
});

test('a crashed peer worker ends the run with an error and its last checkpoint on offer', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?${PARALLEL_RUN}&debug=1&debugStepMs=10&autosaveSeconds=0.02&autostart=1`);
  await page.waitForSelector('#autosave-info:text-matches("epoch 1/2, step [1-9]")', { timeout: 60000 });
  await page.click('#debug-crash-peer');
  await page.waitForSelector('#errors:visible');
  await state(page, 'stopped');
  assert.match(await page.textContent('#error-list'), /worker 1 crashed: terminated \(debug-crash\)/);
  assert.equal(await page.textContent('#resume-title'), 'Training stopped on an error');
  const stoppedAt = await globalStep(page);
  await page.waitForTimeout(300);
  assert.equal(await globalStep(page), stoppedAt, 'no steps after the peer crashed');
});

// ---------------------------------------------------------------- the page as a newcomer meets it

test('the first screen says what Start will do, where the data comes from and about how long; the data card does not ask for files', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, server.url);
  await state(page, 'idle');
  assert.doesNotMatch(await page.textContent('.tagline'), /WebAssembly|Web Worker/, 'the tagline says what the user gets, not how it is built');
  const info = await page.textContent('#start-info');
  assert.match(info, /^Start downloads CIFAR-10 \(176 MB, six files\) from this site \(\/data\/cifar-10-batches-bin\/\), once: this browser keeps a copy, then trains 5 epochs on 50,000 images: about \d+ (s|min \d+ s) on (a typical laptop|this machine), plus the download\./);
  assert.match(await page.textContent('.data-intro'), /^Start fetches CIFAR-10 for you\./);
  // The README's screenshot (web/screenshot.png is a copy of it).
  await page.screenshot({ path: path.join(ARTIFACTS, 'first-screen.png') });
  await page.fill('#epochs', '1');
  await page.fill('#limitTrain', '1000');
  assert.match(await page.textContent('#start-info'), /trains 1 epoch on 1,000 images/);
  // Every field names its messages for screen readers.
  for (const id of await page.locator('#settings input').evaluateAll((inputs) => inputs.map((i) => i.id))) {
    assert.match(await page.getAttribute(`#${id}`, 'aria-describedby') ?? '', new RegExp(`\\b${id}-error\\b`), `#${id} is described by its error text`);
  }
  // Valid but harmful values are said beside their field.
  await page.fill('#workers', '64');
  assert.match(await page.textContent('#workers-note'), /^This device has \d+ cores: more workers than cores trains slower/);
  await page.fill('#lr', '50');
  assert.match(await page.textContent('#lr-note'), /will probably diverge/);
});

for (const width of [1400, 390]) {
  test(`axe finds no serious or critical problem on the idle, running and finished page at ${width} px; at 390 px the progress is in sight after Start`, async (t) => {
    if (skipReason) return t.skip(skipReason);
    if (!AXE_SOURCE) return t.skip('axe-core is not installed (npm install)');
    const height = width === 390 ? 844 : 1000;
    const page = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=1&batch=8&limitTrain=1200&debug=1&debugStepMs=15`, { width, height });
    await state(page, 'idle');
    const findings = { idle: await axeFindings(page) };
    await page.click('#start');
    await state(page, 'running');
    await page.waitForFunction(() => Number(document.getElementById('epoch-progress').dataset.globalStep) > 5);
    // The sticky bar shows the run wherever the page is scrolled (Start is far down at 390 px).
    const bar = await page.locator('#runbar').boundingBox();
    assert.ok(bar && bar.y >= 0 && bar.y + bar.height <= height, `the progress bar is in the first screen: ${JSON.stringify(bar)}`);
    assert.match(await page.textContent('#runbar-text'), /^Training · Epoch 1\/1 · step \d+\/150 · \d+% · ETA /);
    if (width === 390) await page.screenshot({ path: path.join(ARTIFACTS, 'narrow-running.png') });
    findings.running = await axeFindings(page);
    await state(page, 'done');
    findings.done = await axeFindings(page);
    assert.deepEqual(findings, { idle: [], running: [], done: [] });
  });
}

test('keyboard only: start, pause, continue and stop a run, download its weights and load them back; focus never drops to the page', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=1&batch=8&debug=1&debugStepMs=15`);
  await state(page, 'idle');
  const focused = () => page.evaluate(() => {
    const e = document.activeElement;
    const box = e.getBoundingClientRect();
    return { id: e.id || e.tagName, width: box.width, height: box.height, outline: getComputedStyle(e).outlineStyle };
  });
  /** Tabs to the element with `id`, checking that every stop on the way is visible and ringed. */
  async function tabTo(id) {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press('Tab');
      const f = await focused();
      assert.ok(f.width > 4 && f.height > 4, `tab stop ${f.id} is ${f.width}×${f.height} px`);
      assert.notEqual(f.outline, 'none', `tab stop ${f.id} has a focus ring`);
      if (f.id === id) return;
    }
    assert.fail(`#${id} not reached by Tab`);
  }
  await tabTo('start');
  await page.keyboard.press('Enter');
  await state(page, 'running');
  assert.equal((await focused()).id, 'pause', 'focus goes to Pause once the run starts');
  await page.keyboard.press('Enter');
  await state(page, 'paused');
  assert.equal((await focused()).id, 'pause');
  const pausedAt = await globalStep(page);
  await page.keyboard.press('Enter');
  await state(page, 'running');
  await page.waitForFunction((n) => Number(document.getElementById('epoch-progress').dataset.globalStep) > n, pausedAt);
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'stop');
  await page.keyboard.press('Enter');
  await state(page, 'stopped');
  assert.equal((await focused()).id, 'start', 'focus goes back to Start after Stop');

  let chooserSeen;
  const chooserOpened = new Promise((resolve) => { chooserSeen = resolve; });
  page.on('filechooser', (chooser) => chooserSeen(chooser));
  await tabTo('download-weights');
  const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
  const weightsFile = path.join(temp, 'keyboard-weights.bin');
  writeFileSync(weightsFile, readFileSync(await download.path()));
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'load-weights-button');
  await page.keyboard.press('Enter');
  // Playwright intercepts file choosers once a listener exists; it is added long before the key
  // press, which would otherwise race the interception being switched on.
  const chooser = await chooserOpened;
  await chooser.setFiles(weightsFile);
  await page.waitForSelector('#weights-info:has-text("Loaded keyboard-weights.bin")');
  assert.match(await page.textContent('#start-info'), /starting from the weights in keyboard-weights\.bin/);
});

test('the two Load buttons and every other control have distinct names; the file inputs are not tab stops', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, server.url);
  await state(page, 'idle');
  const names = await page.locator('button:visible').allTextContents();
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], `duplicate button names: ${names}`);
  assert.ok(names.includes('Load weights…') && names.includes('Load checkpoint…'), names.join(', '));
  for (const id of ['load-weights', 'load-checkpoint', 'data-files']) assert.equal(await page.isHidden(`#${id}`), true, `#${id} is no tab stop`);
});

test('Start after Stop asks before discarding the saved run; Cancel and Escape keep it; Discard asks too', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=2&batch=8&debug=1&debugStepMs=10`);
  await page.click('#start');
  await page.waitForFunction(() => Number(document.getElementById('epoch-progress').dataset.globalStep) > 20);
  await page.click('#stop');
  await state(page, 'stopped');
  await page.waitForSelector('#resume-offer:visible');
  assert.equal(await page.textContent('#resume-run'), 'Resume run');
  assert.equal(await page.textContent('#start'), 'Start new run');

  await page.click('#start');
  await page.waitForSelector('#confirm[open]');
  assert.equal(await page.textContent('#confirm-title'), 'Start a new run?');
  assert.match(await page.textContent('#confirm-text'), /replaces the saved run \(epoch 1\/2, step \d+\/250\).*cannot be resumed afterwards/);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('confirm').open);
  await page.click('#start');
  await page.click('#confirm button:text-is("Cancel")');
  assert.equal(await page.locator('#resume-offer').isVisible(), true, 'the saved run is still offered');
  assert.equal(await page.getAttribute('body', 'data-state'), 'stopped');

  await page.click('#discard-run');
  await page.waitForSelector('#confirm[open]');
  assert.equal(await page.textContent('#confirm-title'), 'Discard the saved run?');
  await page.click('#confirm button:text-is("Cancel")');
  assert.equal(await page.locator('#resume-offer').isVisible(), true);
  await page.click('#discard-run');
  await page.click('#confirm button:text-is("Discard the saved run")');
  await page.waitForSelector('#resume-offer', { state: 'hidden' });
});

test('a reload in the middle of a run loses seconds, not the epoch, and the offer says how much', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=2&batch=8&debug=1&debugStepMs=15&autostart=1`);
  await state(page, 'running');
  await page.waitForFunction(() => Number(document.getElementById('epoch-progress').dataset.globalStep) > 160);
  const seen = await globalStep(page);
  await page.reload();
  await page.waitForSelector('#resume-offer:visible');
  const [, step] = /^Epoch 1 of 2, step (\d+) of 250/.exec(await page.textContent('#resume-summary')) ?? [];
  // The autosave runs every 2 s of wall time: at 15+ ms a step, at most about 140 steps behind.
  assert.ok(Number(step) >= seen - 140, `saved at step ${step}, the page was at ${seen} or later`);
  assert.match(await page.textContent('#resume-detail'), /(saved [\d\w ]+ before the page closed: the last \d+ steps? will be trained again|Nothing was lost)/);
});

test('hiding the page (another tab, a minimised window) saves the run at once', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // autosaveSeconds=600: no timed save during the test, so only the hiding can save it.
  const page = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=2&batch=8&debug=1&debugStepMs=15&autosaveSeconds=600&autostart=1`);
  await state(page, 'running');
  await page.waitForFunction(() => Number(document.getElementById('epoch-progress').dataset.globalStep) > 30);
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.waitForSelector('#autosave-info:text-matches("epoch 1/2, step ([3-9][0-9]|[0-9]{3})/250")', { timeout: 5000 });
});

test('Start after loading a finished checkpoint says it would start a new model and offers to continue the checkpoint, which then trains on', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=8&autostart=1`);
  await state(page, 'done');
  const checkpointFile = path.join(temp, 'finished.ckpt');
  writeFileSync(checkpointFile, await downloadCheckpoint(page));
  assert.match(await page.textContent('#checkpoint-info'), /: finished, 1\/1 epochs\.$/);
  await page.fill('#epochs', '5');
  await page.fill('#limitTrain', '800');
  await chooseCheckpoint(page, checkpointFile);
  await page.waitForSelector('#checkpoint-info:has-text("Loaded finished.ckpt")');
  // The settings now show the checkpoint's run, not the form's old values.
  assert.equal(await page.inputValue('#epochs'), '1');
  assert.equal(await page.inputValue('#limitTrain'), '1000');
  assert.match(await page.textContent('#resume-summary'), /^Finished: 1 of 1 epochs · test accuracy \d+\.\d\d%/);
  await page.click('#start');
  await page.waitForSelector('#confirm[open]');
  assert.match(await page.textContent('#confirm-text'), /trains a new model from scratch .* does not use the loaded checkpoint finished\.ckpt/);
  await page.click('#confirm button:text-is("Continue the checkpoint")');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /^# Resumed at epoch 2, step 0: 2 epoch\(s\)/m);
  assert.match(log, /^Epoch \[2\/2\], Step \[100\/125\]/m);
  assert.equal(accuracyLines(log).length, 1, 'the new epoch was evaluated');
});

test('a run with lr 50 stops as diverged, naming the step, instead of finishing at chance; accuracy at chance is flagged', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=8&lr=50`);
  await state(page, 'idle');
  assert.match(await page.textContent('#lr-note'), /will probably diverge/);
  await page.click('#start');
  await page.waitForSelector('#errors:visible');
  await state(page, 'stopped');
  assert.match(await page.textContent('#error-list'), /training diverged at epoch 1, step \d+: the running loss \S+ is above 100 × ln\(10\) = 230\.3\. Try a lower learning rate \(now 50\)/);
  assert.notEqual(await page.textContent('#status'), 'Finished');
  assert.equal(await page.textContent('#resume-title'), 'Training diverged');

  // A model that guesses one class for everything: at chance, and said so.
  const zeros = path.join(temp, 'zeros.bin');
  writeFileSync(zeros, Buffer.alloc(WEIGHTS_BYTES));
  await chooseWeights(page, zeros);
  await page.waitForSelector('#weights-info:has-text("Loaded zeros.bin")');
  assert.match(await page.textContent('#accuracy-note'), /^About chance \(10%\): the model has not learned/);
  assert.equal(await page.locator('#accuracy.at-chance').count(), 1);
});

test('a 50-step run draws its loss; both charts share their epoch ticks and describe themselves; the legend shows the latest point', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=2&batch=8&limitTrain=400&autostart=1`);
  await state(page, 'done');
  assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '2', 'one point per 50-step epoch');
  assert.equal(await page.getAttribute('#loss-chart', 'data-x-ticks'), '0,1,2');
  assert.equal(await page.getAttribute('#accuracy-chart', 'data-x-ticks'), '0,1,2');
  const plots = await page.locator('#loss-chart .u-over, #accuracy-chart .u-over').evaluateAll((overs) => overs.map((o) => { const b = o.getBoundingClientRect(); return [Math.round(b.left - o.closest('.chart').getBoundingClientRect().left), Math.round(b.width)]; }));
  assert.deepEqual(plots[0], plots[1], 'the plot areas line up');
  assert.match(await page.textContent('#loss-chart-summary'), /^2 points up to epoch 2\.00 of 2: loss from \d+\.\d{4} to \d+\.\d{4}\.$/);
  assert.match(await page.textContent('#loss-chart .u-legend'), /Loss:?\s*\d+\.\d{4}/);
  assert.doesNotMatch(await page.textContent('#accuracy-chart .u-legend'), /—/);
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

test('the Model panel: a preset from the URL, a bad description names its line and blocks Start, a custom net trains, its link reproduces it, its layers show, and its checkpoint switches the model back', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, `${server.url}?epochs=1&batch=16&limitTrain=160&limitTest=100&model=resnet`);
  await page.waitForSelector('#model-summary table', { state: 'attached' });
  assert.equal(await page.inputValue('#model-preset'), 'resnet');
  assert.ok((await page.$$eval('#model-summary tbody tr', (rows) => rows.length)) > 25, 'a row per layer');
  assert.match(await page.textContent('#model-summary tfoot'), /78,042/);
  await page.waitForSelector('#model-estimate:has-text("per epoch")');

  await page.click('.model-details summary');
  await page.fill('#model-text', 'conv(6, 5)\nrelu\nlinear(10)\n');
  await page.waitForSelector('#model-error:has-text("line 3")');
  assert.match(await page.textContent('#model-error'), /line 3: linear fc1: linear needs a flat input: add flatten before it/);
  assert.equal(await page.getAttribute('#model-text', 'aria-invalid'), 'true');
  assert.equal(await page.isDisabled('#start'), true, 'Start waits for a valid description');

  const custom = 'conv(4, 3, padding=1)\nbatchnorm\nrelu\nmaxpool(2)\nflatten\ndropout(0.1)\nlinear(classes)\n';
  await page.fill('#model-text', custom);
  await page.waitForSelector('#model-summary table', { state: 'attached' });
  assert.equal(await page.inputValue('#model-preset'), 'custom');
  await page.waitForFunction(() => !document.getElementById('start').disabled);
  const link = page.url();
  assert.match(link, /[?&]model=[A-Za-z0-9_-]{10,}/, 'a custom net is encoded in the URL');
  await page.click('#start');
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /Test accuracy: \d/);

  await page.click('#show-activations');
  await page.waitForSelector('#activations .activation-layer');
  const layers = await page.$$eval('#activations .activation-layer h3', (h) => h.map((x) => x.textContent));
  assert.equal(layers[0], 'conv1 · conv · 4×32×32');
  assert.equal(layers.length, 7);
  assert.ok((await page.$$('#activations canvas[aria-label]')).length >= 4, 'feature maps are drawn and named');

  const checkpointFile = path.join(temp, 'custom.ckpt');
  writeFileSync(checkpointFile, await downloadCheckpoint(page));
  await page.selectOption('#model-preset', 'simplecnn');
  await page.waitForFunction(() => document.getElementById('model-text').value.startsWith('# SimpleCNN'));
  await chooseCheckpoint(page, checkpointFile);
  await page.waitForSelector('#confirm[open]');
  assert.match(await page.textContent('#confirm'), /holds another model than the one in the editor: layer 1 \(conv1\)/);
  await page.click('#confirm button:text-is("Switch to its model and load")');
  await page.waitForSelector('#checkpoint-info:has-text("Loaded custom.ckpt")');
  assert.equal(await page.inputValue('#model-text'), custom, 'the panel shows the checkpoint\'s model');

  const again = await openPage(t, link);
  await again.waitForSelector('#model-summary table', { state: 'attached' });
  assert.equal(await again.inputValue('#model-text'), custom, 'the link reproduces the description');
});

test('two tabs never overwrite each other\'s saved run: each keeps its own, and a new tab offers only a run no open tab holds', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const first = await openPage(t, `${server.url}?data=${BIG_DATA}&epochs=1&batch=8&seed=1&autosaveSeconds=0.1&debug=1&debugStepMs=10&autostart=1`);
  await first.waitForSelector('#autosave-info:text-matches("epoch 1/1, step [1-9]")', { timeout: 60000 });
  await first.click('#pause');
  await state(first, 'paused');
  // A second tab of the same site (same IndexedDB): the first tab's run is not offered to it.
  const second = await first.context().newPage();
  await second.goto(`${server.url}?epochs=1&batch=8&seed=2&autosaveSeconds=0.1`);
  await state(second, 'idle');
  await second.waitForTimeout(500);
  assert.equal(await second.locator('#resume-offer').isHidden(), true, 'the first tab holds its run');
  await second.click('#start');
  await state(second, 'done');
  const saved = await second.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('webtrain');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const request = open.result.transaction('runs').objectStore('runs').getAll();
      request.onsuccess = () => resolve(request.result.map((r) => r.runState.seed));
    };
  }));
  assert.deepEqual(saved, [1], 'the first tab\'s paused run is still saved; the second tab\'s finished run removed only its own');
  // The first tab closes: a new tab now offers its run.
  await first.close();
  const third = await second.context().newPage();
  await third.goto(server.url);
  await third.waitForSelector('#resume-offer:visible');
  assert.match(await third.textContent('#resume-detail'), /seed 1/);
  await third.close();
  await second.close();
});

test('the resnet preset (batch norm, residual blocks) trains in the page with 2 workers exactly as with 1', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const query = 'epochs=1&batch=32&limitTrain=256&limitTest=100&seed=5&model=resnet';
  const runWith = async (workers) => {
    const page = await openPage(t, `${server.url}?${query}&workers=${workers}&autostart=1`);
    await state(page, 'done');
    const log = await page.textContent('#log');
    const checkpoint = await downloadCheckpoint(page);
    // From the parameters on: parameters, Adam's moments and running statistics (the header
    // records the worker count, so it differs).
    const view = new DataView(checkpoint.buffer, checkpoint.byteOffset);
    const floatsAt = 256 + 4 * view.getUint32(24, true) + ((view.getUint32(28, true) + 3) & ~3);
    return { log, state: checkpoint.subarray(floatsAt, checkpoint.length - 4) };
  };
  const two = await runWith(2);
  assert.match(two.log, /seed 5, 2 workers: 8 steps per epoch/);
  const one = await runWith(1);
  assert.deepEqual(accuracyLines(two.log), accuracyLines(one.log));
  assert.ok(Buffer.from(two.state).equals(Buffer.from(one.state)), 'identical parameters, Adam state and running statistics with 1 and 2 workers');
});

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

// The weights panel's exports in Debian's Chromium (playwright-core, never a downloaded browser):
// after a short run, safetensors, ONNX and model.py download with their sizes shown and names
// holding the model and its accuracy; the safetensors file loads back with the same accuracy,
// and a corrupt one is refused with the model kept. Skips, saying why, without Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startServer, WEB_ROOT } from '../src/node/serve.js';
import { writeSyntheticCifar } from './helpers/synthetic.js';
import { parseSafetensors } from '../web/safetensors.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let skipReason = null, browser, server, temp;
before(async () => {
  if (!existsSync(CHROMIUM)) { skipReason = `${CHROMIUM} not found (apt-get install -y chromium)`; return; }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    skipReason = 'playwright-core is not installed (npm install)';
    return;
  }
  if (!existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) { skipReason = "web/webtrain.wasm is missing: run 'npm run build'"; return; }
  if (!existsSync(path.join(WEB_ROOT, 'vendor', 'uPlot.esm.js'))) (await import('../src/node/vendor.js')).vendor();
  temp = mkdtempSync(path.join(tmpdir(), 'webtrain-browser-export-'));
  const data = writeSyntheticCifar(path.join(temp, 'data'), { perTrainFile: 100, test: 100 });
  server = await startServer({ port: 0, dataDir: data });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
});
after(async () => {
  await browser?.close();
  await server?.close();
  if (temp) rmSync(temp, { recursive: true, force: true });
});

test('the weights panel exports safetensors, ONNX and model.py, and loads safetensors back', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  t.after(() => context.close());
  await page.goto(`${server.url}?epochs=1&batch=8&autostart=1`);
  await page.waitForSelector('body[data-state="done"]', { timeout: 60000 });
  await page.waitForSelector('#export-safetensors:enabled');
  const accuracy = await page.textContent('#accuracy');
  const pct = `${Number.parseFloat(accuracy).toFixed(1)}pct`;
  assert.match(await page.textContent('#export-safetensors-size'), /^24\d\.\d KB$/);
  assert.match(await page.textContent('#export-onnx-size'), /^24\d\.\d KB$/);
  assert.match(await page.textContent('#export-py-size'), /^\d\.\d KB$/);
  assert.match(await page.textContent('#export-raw-size'), /^242\.2 KB$/);

  const download = async (id) => {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
    return { name: d.suggestedFilename(), bytes: readFileSync(await d.path()) };
  };
  const safetensors = await download('export-safetensors');
  assert.equal(safetensors.name, `webtrain-simplecnn-${pct}.safetensors`);
  const { tensors, metadata } = parseSafetensors(safetensors.bytes);
  assert.equal(tensors.size, 10);
  assert.equal(metadata.test_accuracy.slice(0, 4), (Number.parseFloat(accuracy) / 100).toFixed(4).slice(0, 4));
  const onnx = await download('export-onnx');
  assert.equal(onnx.name, `webtrain-simplecnn-${pct}.onnx`);
  assert.equal(onnx.bytes[0], 0x08);
  const py = await download('export-py');
  assert.equal(py.name, `webtrain_simplecnn_${pct.replace('.', '_')}.py`);
  assert.match(py.bytes.toString(), /class Model\(nn\.Module\)/);
  await page.waitForSelector(`#export-info:has-text("Downloaded ${py.name}")`);

  const choose = async (file) => {
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#load-safetensors-button')]);
    await chooser.setFiles(file);
  };
  const good = path.join(temp, 'trained.safetensors');
  writeFileSync(good, safetensors.bytes);
  await choose(good);
  await page.waitForSelector('#export-info:has-text("Loaded trained.safetensors")');
  assert.equal(await page.textContent('#accuracy'), accuracy, 'the loaded file scores as the trained model did');

  const bad = path.join(temp, 'bad.safetensors');
  writeFileSync(bad, safetensors.bytes.subarray(0, 1000));
  await choose(bad);
  await page.waitForSelector('#export-info:has-text("bad.safetensors was refused")');
  assert.match(await page.textContent('#error-list'), /bad\.safetensors: .*model is kept|model is kept.*bad\.safetensors/s);
  assert.deepEqual((await download('export-safetensors')).bytes, safetensors.bytes, 'the refused file left the model as it was');
  assert.deepEqual(pageErrors, []);
});

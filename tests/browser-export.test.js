// The weights panel's exports in Debian's Chromium (playwright-core, never a downloaded browser):
// after a short run, safetensors, ONNX and model.py download with their sizes shown and names
// holding the model and its accuracy; the safetensors file loads back with the same accuracy,
// and a corrupt one is refused with the model kept. Skips, saying why, without Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { browserFixture, openPage, waitForState } from './helpers/browser.js';
import { parseSafetensors } from '../web/safetensors.js';

const env = browserFixture('browser-export');

test('the weights panel exports safetensors, ONNX and model.py, and loads safetensors back', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(env.browser, t, `${env.server.url}?epochs=1&batch=8&autostart=1`);
  await waitForState(page, ['done']);
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
  const good = path.join(env.temp, 'trained.safetensors');
  writeFileSync(good, safetensors.bytes);
  await choose(good);
  await page.waitForSelector('#export-info:has-text("Loaded trained.safetensors")');
  assert.equal(await page.textContent('#accuracy'), accuracy, 'the loaded file scores as the trained model did');

  const bad = path.join(env.temp, 'bad.safetensors');
  writeFileSync(bad, safetensors.bytes.subarray(0, 1000));
  await choose(bad);
  await page.waitForSelector('#export-info:has-text("bad.safetensors was refused")');
  assert.match(await page.textContent('#error-list'), /bad\.safetensors: .*model is kept|model is kept.*bad\.safetensors/s);
  assert.deepEqual((await download('export-safetensors')).bytes, safetensors.bytes, 'the refused file left the model as it was');
});

// What the browser tests share: Debian's Chromium driven by playwright-core (or why a test must
// skip), a fresh page per test that fails it on uncaught page errors, waiting for the page's
// state with a report of where it was instead, and axe-core's serious findings.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { before, after } from 'node:test';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { startServer, WEB_ROOT } from '../../src/node/serve.js';
import { writeSyntheticCifar } from './synthetic.js';

export const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** { browser } launched headless, or { skipReason } saying what is missing. */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) return { skipReason: `${CHROMIUM} not found (apt-get install -y chromium)` };
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    return { skipReason: 'playwright-core is not installed (npm install)' };
  }
  if (!existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) return { skipReason: "web/webtrain.wasm is missing: run 'npm run build'" };
  if (!existsSync(path.join(WEB_ROOT, 'vendor', 'uPlot.esm.js'))) (await import('../../src/node/vendor.js')).vendor();
  return { browser: await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS }) };
}

/** A fresh page (own context: own cache storage) that fails the test on uncaught page errors. */
export async function openPage(browser, t, url, { width = 1400, height = 1000 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
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

/** Waits for the page to reach one of `states`; on a timeout, says where it was instead. */
export async function waitForState(page, states, { timeout = 60000 } = {}) {
  try {
    await page.waitForSelector(states.map((s) => `body[data-state="${s}"]`).join(', '), { timeout });
  } catch (error) {
    const where = await page.evaluate(() => ({
      state: document.body.dataset.state, errors: document.getElementById('error-list').textContent,
      progress: document.getElementById('progress-label').textContent, log: document.getElementById('log').textContent.slice(-600),
    })).catch(() => ({}));
    throw new Error(`waiting for state ${states.join(' or ')}: ${error.message.split('\n')[0]}; the page is at ${JSON.stringify(where)}`);
  }
}

/**
 * Drops `files` on `selector` as a user would: a dragover (the zone shows `.over`), then a drop
 * event with a DataTransfer holding them.
 */
export async function dropFiles(page, selector, files) {
  const dataTransfer = await page.evaluateHandle((list) => {
    const transfer = new DataTransfer();
    for (const { name, base64 } of list) transfer.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name));
    return transfer;
  }, files.map((file) => ({ name: path.basename(file), base64: readFileSync(file).toString('base64') })));
  await page.dispatchEvent(selector, 'dragover', { dataTransfer });
  assert.ok(await page.$eval(selector, (zone) => zone.classList.contains('over')), `${selector} does not show .over while files are dragged over it`);
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
  assert.ok(!(await page.$eval(selector, (zone) => zone.classList.contains('over'))), `${selector} still shows .over after the drop`);
}

export const AXE_SOURCE = (() => {
  try {
    return readFileSync(fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');
  } catch {
    return null;
  }
})();

/** axe-core's serious and critical findings on the page as it is now, one line each. */
export async function axeFindings(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return violations.filter((v) => ['serious', 'critical'].includes(v.impact))
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')} (${v.nodes[0].failureSummary.replace(/\s+/g, ' ').slice(0, 160)})`);
}

/**
 * Registers before/after hooks for a test file; the returned object's fields fill in before the
 * tests run: { skipReason, browser, server (with .url), temp } with a server of synthetic CIFAR-10,
 * or of an empty data folder with `cifar: false` (for tests that bring their own data). `setup(env)`
 * then makes what the file's tests share (a file's own before hook would not wait for this one).
 */
export function browserFixture(name, { perTrainFile = 100, test = 100, cifar = true, setup = null } = {}) {
  const env = { skipReason: null, browser: null, server: null, temp: null };
  before(async () => {
    const launched = await launchBrowser();
    if (launched.skipReason) { env.skipReason = launched.skipReason; return; }
    env.browser = launched.browser;
    env.temp = mkdtempSync(path.join(tmpdir(), `webtrain-${name}-`));
    const data = path.join(env.temp, 'data');
    if (cifar) writeSyntheticCifar(data, { perTrainFile, test });
    else mkdirSync(data);
    env.server = await startServer({ port: 0, dataDir: data });
    await setup?.(env);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
    if (env.temp) rmSync(env.temp, { recursive: true, force: true });
  });
  return env;
}

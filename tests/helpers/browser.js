// What the smaller browser test files share: Debian's Chromium through playwright-core (never a
// downloaded browser), a server of synthetic CIFAR-10, and pages that fail the test on uncaught
// errors. Skips, saying why, without Chromium, playwright-core or a build.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startServer, WEB_ROOT } from '../../src/node/serve.js';
import { writeSyntheticCifar } from './synthetic.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Registers before/after hooks; the returned object's fields fill in before the tests run:
 * { skipReason, browser, server (with .url), temp }.
 */
export function browserFixture(name, { perTrainFile = 100, test = 100 } = {}) {
  const env = { skipReason: null, browser: null, server: null, temp: null };
  before(async () => {
    if (!existsSync(CHROMIUM)) { env.skipReason = `${CHROMIUM} not found (apt-get install -y chromium)`; return; }
    let chromium;
    try {
      ({ chromium } = await import('playwright-core'));
    } catch {
      env.skipReason = 'playwright-core is not installed (npm install)';
      return;
    }
    if (!existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) { env.skipReason = "web/webtrain.wasm is missing: run 'npm run build'"; return; }
    if (!existsSync(path.join(WEB_ROOT, 'vendor', 'uPlot.esm.js'))) (await import('../../src/node/vendor.js')).vendor();
    env.temp = mkdtempSync(path.join(tmpdir(), `webtrain-${name}-`));
    const data = writeSyntheticCifar(path.join(env.temp, 'data'), { perTrainFile, test });
    env.server = await startServer({ port: 0, dataDir: data });
    env.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
    if (env.temp) rmSync(env.temp, { recursive: true, force: true });
  });
  return env;
}

/** A page of `browser` in its own context (own cache storage) at `url` (if given); uncaught errors in it fail test `t`. */
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

// `npm run bench:page -- [--model NAME] [--seed N] [WORKERS ...]`: a full run in the page, as a
// user would start it (the preset's settings, Start), in Debian's headless Chromium, once per
// worker count (default 1). Without --model: the reference run (simplecnn). Prints the time from
// Start to Finished, the part of it spent training (from the log's throughput lines), each
// epoch's accuracy line and the final one. Measures; asserts nothing.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

import { startServer } from './serve.js';
import { realDataDir, realDataAvailable, realDataSkipMessage } from '../../tests/helpers/real-data.js';

if (!realDataAvailable) {
  console.error(`bench:page: ${realDataSkipMessage}`);
  process.exit(1);
}
if (!existsSync('/usr/bin/chromium')) {
  console.error('bench:page: /usr/bin/chromium not found (apt-get install -y chromium)');
  process.exit(1);
}
const args = process.argv.slice(2), query = new URLSearchParams();
for (const name of ['model', 'seed']) {
  const at = args.indexOf(`--${name}`);
  if (at < 0) continue;
  if (!args[at + 1]) {
    console.error(`bench:page: --${name} needs a value`);
    process.exit(2);
  }
  query.set(name, args[at + 1]);
  args.splice(at, 2);
}
const workerCounts = args.length ? args : ['1'];
const { url, close } = await startServer({ port: 0, dataDir: realDataDir });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (const workers of workerCounts) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    query.set('workers', workers);
    await page.goto(`${url}?${query}`);
    await page.waitForSelector('#start:not([disabled])');
    const t0 = performance.now();
    await page.click('#start');
    await page.waitForSelector('body[data-state="done"]', { timeout: 30 * 60 * 1000 });
    const seconds = (performance.now() - t0) / 1000;
    const log = (await page.textContent('#log')).split('\n');
    const accuracies = log.filter((l) => l.startsWith('Test accuracy'));
    const accuracy = accuracies.at(-1);
    for (const line of accuracies.slice(0, -1)) console.log(`  ${line}`);
    // Per epoch: 50,000 images / training samples/s = seconds spent training.
    const trainSeconds = log.map((l) => /^Throughput: training (\d+) samples\/s/.exec(l)).filter(Boolean)
      .reduce((sum, m) => sum + 50000 / Number(m[1]), 0);
    const rates = log.filter((l) => l.startsWith('Throughput')).map((l) => /training (\d+)/.exec(l)[1]).join(', ');
    console.log(`page ${query}: ${seconds.toFixed(1)} s from Start to Finished (data fetch included), about ${trainSeconds.toFixed(1)} s of it training (samples/s per epoch: ${rates}); ${accuracy}`);
    await page.close();
  }
} finally {
  await browser.close();
  await close();
}

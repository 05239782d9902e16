// `npm run bench:page -- [--model NAME] [--seed N] [--PARAM VALUE ...] [WORKERS ...]`: a full run
// in the page, as a user would start it (the preset's settings, Start), in Debian's headless
// Chromium, once per worker count (default 1). Without --model: the reference run (simplecnn).
// Any --PARAM VALUE becomes the page's URL parameter (epochs, limitTrain, autosaveSeconds ...).
// Prints the time from Start to Finished, the part of it spent training (from the log's
// throughput lines), the CPU time the page's main thread took meanwhile (charts, log, autosave
// writes: it shares the cores with the workers), and each epoch's accuracy and throughput lines.
// Measures; asserts nothing.
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
// Every `--name value` becomes the page's URL parameter `name` (model, seed, epochs, limitTrain,
// limitTest, autosaveSeconds, any recipe field ...), as a user's link would set it.
for (let at = args.findIndex((a) => a.startsWith('--')); at >= 0; at = args.findIndex((a) => a.startsWith('--'))) {
  const name = args[at].slice(2);
  if (!name || args[at + 1] === undefined) {
    console.error(`bench:page: ${args[at]} needs a value`);
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
    // The page's main thread (charts, log, autosave writes) shares the two cores with the workers.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const busy = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
    const busy0 = await busy();
    const t0 = performance.now();
    await page.click('#start');
    await page.waitForSelector('body[data-state="done"]', { timeout: 30 * 60 * 1000 });
    const seconds = (performance.now() - t0) / 1000;
    const mainBusy = (await busy()) - busy0;
    const log = (await page.textContent('#log')).split('\n');
    const accuracies = log.filter((l) => l.startsWith('Test accuracy'));
    const accuracy = accuracies.at(-1);
    // Each epoch's accuracy and throughput lines (evaluation samples/s: test images, or with TTA
    // images whose views all ran), the final ones included.
    for (const line of log.filter((l) => l.startsWith('Test accuracy') || /^Epoch \[\d+\/\d+\]: not evaluated/.test(l) || l.startsWith('Throughput'))) console.log(`  ${line}`);
    // Per epoch: the training images (50,000 unless limitTrain) / training samples/s = seconds spent training.
    const images = Number(query.get('limitTrain')) || 50000;
    const trainSeconds = log.map((l) => /^Throughput: training (\d+) samples\/s/.exec(l)).filter(Boolean)
      .reduce((sum, m) => sum + images / Number(m[1]), 0);
    const rates = log.filter((l) => l.startsWith('Throughput')).map((l) => /training (\d+)/.exec(l)[1]).join(', ');
    console.log(`page ${query}: ${seconds.toFixed(1)} s from Start to Finished (data fetch included), about ${trainSeconds.toFixed(1)} s of it training (samples/s per epoch: ${rates}); main thread busy ${mainBusy.toFixed(1)} s; ${accuracy}`);
    await page.close();
  }
} finally {
  await browser.close();
  await close();
}

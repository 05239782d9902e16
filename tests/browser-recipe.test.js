// The page's recipe (Playwright with /usr/bin/chromium): every recipe setting has a field, the
// fields round-trip through the URL, a bad value is named beside its field and blocks Start, the
// schedule is plotted before the run and marked during it, and the run's checkpoint holds the
// page's recipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { WEB_ROOT } from '../src/node/serve.js';
import { RECIPE_FIELDS } from '../web/recipe.js';
import { createEngine } from '../web/engine.js';
import { browserFixture, openPage as open } from './helpers/browser.js';

const env = browserFixture('browser-recipe');
const openPage = (t, url) => open(env.browser, t, url);

const PANEL = RECIPE_FIELDS.filter((f) => !['epochs', 'batchSize', 'lr'].includes(f.key));

test('every recipe setting has a field; they round-trip through the URL; the schedule is plotted and marked during the run; the checkpoint holds the recipe', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const query = 'epochs=2&batch=25&limitTrain=500&lr=0.05&optimizer=sgd&nesterov=true&momentum=0.85&schedule=triangular%3Astart%3D0.2%2Cpeak%3D0.23%2Cend%3D0.07'
    + '&labelSmoothing=0.2&ema=lookahead%3Aevery%3D3&groups=bias+lr%3D2&weightDecay=0.0005&evalEvery=0';
  const page = await openPage(t, `${env.server.url}?${query}`);
  for (const f of PANEL) assert.ok(await page.$(`#recipe-${f.key}`), `a field for ${f.key}`);
  assert.equal(await page.inputValue('#recipe-optimizer'), 'sgd');
  assert.equal(await page.inputValue('#recipe-schedule'), 'triangular:start=0.2,peak=0.23,end=0.07');
  assert.equal(await page.inputValue('#recipe-groups'), 'bias lr=2');
  assert.equal(await page.getAttribute('#recipe-tta', 'placeholder'), 'none');

  // The plot before the run: 2 epochs of ceil(500 / 25) = 20 steps.
  await page.waitForFunction(() => document.getElementById('schedule-chart').dataset.totalSteps === '40');
  assert.ok(await page.$('#schedule-chart canvas'), 'the schedule chart is drawn');
  assert.match(await page.textContent('#schedule-summary'), /Learning rate over 40 steps \(triangular\): from 0\.01 to 5\.00e-3, highest 0\.05/);

  // Editing a field updates the URL and the plot; a bad value is named and blocks Start.
  await page.fill('#recipe-tta', 'flip');
  await page.fill('#recipe-schedule', 'cosine:warmup=0.1');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('schedule') === 'cosine:warmup=0.1');
  assert.equal(new URL(page.url()).searchParams.get('tta'), 'flip');
  assert.match(await page.textContent('#schedule-summary'), /\(cosine\)/);
  await page.fill('#recipe-optimizer', 'rmsprop');
  assert.match(await page.textContent('#recipe-optimizer-error'), /Optimizer: expected adam, adamw, sgd, got 'rmsprop'/);
  assert.equal(await page.getAttribute('#recipe-optimizer', 'aria-invalid'), 'true');
  await page.fill('#recipe-optimizer', 'sgd');
  await page.fill('#recipe-tta', '');
  await page.fill('#recipe-schedule', 'triangular:start=0.2,peak=0.23,end=0.07');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('schedule') === 'triangular:start=0.2,peak=0.23,end=0.07');

  // A fresh page from the address bar shows the same fields.
  const again = await openPage(t, page.url());
  for (const f of PANEL) assert.equal(await again.inputValue(`#recipe-${f.key}`), await page.inputValue(`#recipe-${f.key}`), f.key);

  // The run: the plot marks the steps done; the checkpoint holds the page's recipe.
  await page.click('#start');
  await page.waitForSelector('body[data-state="done"]', { timeout: 120000 });
  assert.equal(await page.getAttribute('#schedule-chart', 'data-done'), '40');
  assert.equal(await page.textContent('#schedule-now'), 'Run complete');
  // evalEvery=0: the first epoch says it was not evaluated; the last one's accuracy is shown.
  const logText = await page.textContent('#log');
  assert.match(logText, /Epoch \[1\/2\]: not evaluated \(eval_every\)/);
  assert.equal(logText.match(/Test accuracy: /g)?.length, 1, logText);
  assert.match(await page.textContent('#accuracy'), /^\d+\.\d\d%$/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-checkpoint')]);
  const bytes = readFileSync(await download.path());
  const engine = await createEngine(readFileSync(path.join(WEB_ROOT, 'webtrain.wasm')));
  const recipe = engine.checkpointRecipe(bytes);
  assert.equal(recipe.optimizer, 'sgd');
  assert.equal(recipe.nesterov, true);
  assert.equal(recipe.lr, 0.05);
  assert.equal(recipe.batchSize, 25);
  assert.equal(recipe.labelSmoothing, 0.2);
  assert.deepEqual(recipe.ema, { kind: 'lookahead', every: 3, rho: 0.95, power: 3, start_epoch: 0 });
  assert.deepEqual(recipe.groups.map((g) => g.select), ['bias']);
  assert.equal(recipe.evalEvery, 0);
});

test('?model=fast alone sets the preset recipe: its epochs, batch and lr in the fields, its @ lines as placeholders; Start says how long it takes here', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(t, `${env.server.url}?model=fast`);
  await page.waitForFunction(() => document.getElementById('batch').value === '256', null, { timeout: 30000 });
  assert.equal(await page.inputValue('#epochs'), '5');
  assert.equal(await page.inputValue('#lr'), '0.375');
  assert.equal(new URL(page.url()).searchParams.get('model'), 'fast', 'the link names the preset, which carries the recipe');
  assert.equal(await page.getAttribute('#recipe-optimizer', 'placeholder'), 'sgd');
  assert.equal(await page.getAttribute('#recipe-tta', 'placeholder'), 'flip-translate');
  assert.equal(await page.getAttribute('#recipe-ttaOn', 'placeholder'), 'last');
  assert.equal(await page.getAttribute('#recipe-evalEvery', 'placeholder'), '0');
  // The time Start announces is the model's (from the measured peak), not a SimpleCNN guess:
  // 5 epochs of a 146 MFLOP step take minutes, not seconds.
  await page.waitForFunction(() => /on this machine/.test(document.getElementById('start-info').textContent), null, { timeout: 30000 });
  const info = await page.textContent('#start-info');
  assert.match(info, /trains 5 epochs on 50,000 images: about (\d+ min \d+ s|\d+ h \d+ min) on this machine/);
  // The same figure per epoch as the Model card's estimate.
  assert.match(await page.textContent('#model-estimate'), /per epoch of 50,000 images/);
});

// Your own images in the page (Debian's Chromium, headless): a folder chosen or dropped, a .zip and
// a .tar of it, decoded in image-worker.js into the same record bytes `npm run pack` writes; the
// set trains, and is still there after a reload; every bad input refused with its message; a
// storage quota too small for the set; and 100,000 32x32 colour images training within 512 MB of
// Wasm memory per worker. Skips, saying why, where Chromium or playwright-core is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { browserFixture, openPage as openPageIn, waitForState, dropFiles } from './helpers/browser.js';
import { writeImageFolder, encodePng, makePixels, pillowAvailable } from './helpers/images.js';
import { makeRecords } from './helpers/synthetic.js';
import { META_FILE, TRAIN_FILE, TEST_FILE, recordsThatFit } from '../web/image-records.js';

const PACK = new URL('../src/node/pack.js', import.meta.url).pathname;
const MB = 2 ** 20;

let temp;
let folder; // the generated image folder: { dir, images, corrupt, unsupported, jpegs }
// The server's data folder is empty: every run here trains on the images the test brings.
const env = browserFixture('images', {
  cifar: false,
  setup: () => {
    temp = env.temp;
    if (pillowAvailable !== true) console.log(`# JPEGs left out: ${pillowAvailable}`);
    folder = writeImageFolder(path.join(temp, 'pets'));
  },
});

/** The page at `query`, once it is idle. */
async function openPage(t, query = '') {
  const page = await openPageIn(env.browser, t, `${env.server.url}${query}`);
  await page.waitForSelector('body[data-state="idle"]');
  return page;
}

const state = (page, ...states) => waitForState(page, states, { timeout: 120000 });

/** Waits for the image panel to finish: the set's line, or the error. */
async function imagesDone(page, { timeout = 120000 } = {}) {
  await page.waitForFunction(() => /^(Done|Not loaded)/.test(document.getElementById('image-progress').textContent)
    || !document.getElementById('image-set-row').hidden, null, { timeout });
  return page.evaluate(() => ({
    progress: document.getElementById('image-progress').textContent,
    set: document.getElementById('image-set-row').hidden ? null : document.getElementById('image-set').textContent,
    errors: document.getElementById('error-list').textContent,
  }));
}

/** The records and metadata the page keeps in the Origin Private File System. */
async function storedSet(page) {
  const stored = await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle('webtrain-images');
    const read = async (name) => new Uint8Array(await (await (await dir.getFileHandle(name)).getFile()).arrayBuffer());
    const toBase64 = (bytes) => {
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(s);
    };
    return { train: toBase64(await read('train.bin')), test: toBase64(await read('test.bin')), meta: new TextDecoder().decode(await read('webtrain-images.json')) };
  });
  return { train: Buffer.from(stored.train, 'base64'), test: Buffer.from(stored.test, 'base64'), meta: JSON.parse(stored.meta) };
}

/** The metadata of a packed 3x32x32 set of 10 classes (for records made directly). */
function packedMeta(fields) {
  return {
    kind: 'webtrain-images', version: 1, source: 'generated', channels: 3, height: 32, width: 32, recordBytes: 3073, labelOffset: 0, pixelOffset: 1,
    classes: 10, classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
    mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], split: { seed: 0, testFraction: 0.1 },
    counts: { train: [], test: [] }, files: { train: TRAIN_FILE, test: TEST_FILE }, skipped: { count: 0, first: [] }, ...fields,
  };
}

function pack(dir, out, ...options) {
  const r = spawnSync(process.execPath, [PACK, dir, out, ...options], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pack failed: ${r.stderr}`);
  return r.stdout;
}

/** The first differing bytes of two record files, for the failure message. */
function firstMismatches(got, want, recordBytes) {
  const out = [];
  for (let i = 0; i < Math.max(got.length, want.length) && out.length < 5; i++) {
    if (got[i] !== want[i]) out.push(`record ${Math.floor(i / recordBytes)} byte ${i % recordBytes}: page ${got[i]}, pack ${want[i]}`);
  }
  return out.join('; ');
}

function assertSameSet(pageSet, dir) {
  const want = { train: readFileSync(path.join(dir, TRAIN_FILE)), test: readFileSync(path.join(dir, TEST_FILE)), meta: JSON.parse(readFileSync(path.join(dir, META_FILE), 'utf8')) };
  const { id, source, ...pageMeta } = pageSet.meta;
  const { source: packSource, ...packMeta } = want.meta;
  assert.deepEqual(pageMeta, packMeta, 'the page\'s metadata differs from pack\'s');
  assert.ok(pageSet.train.equals(want.train), `train records differ: ${firstMismatches(pageSet.train, want.train, want.meta.recordBytes)}`);
  assert.ok(pageSet.test.equals(want.test), `test records differ: ${firstMismatches(pageSet.test, want.test, want.meta.recordBytes)}`);
}

test('a chosen folder is decoded in a worker into the same records as npm run pack, trains, and is still there after a reload', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(t, '?epochs=1&batch=8&workers=2');
  // Every text the progress line shows, however briefly.
  await page.evaluate(() => {
    window.progressTexts = [];
    const line = document.getElementById('image-progress');
    new MutationObserver(() => window.progressTexts.push(line.textContent)).observe(line, { childList: true, characterData: true, subtree: true });
  });
  await page.setInputFiles('#image-folder', folder.dir);
  const shown = await imagesDone(page);
  const progress = await page.evaluate(() => window.progressTexts);
  assert.ok(progress.some((text) => new RegExp(`^Decoding: ${folder.images + 1} of ${folder.images + 1} files · [\\d,]+ images/s · 1 skipped: cats/broken\\.png \\(could not be decoded: `).test(text)), progress.join('\n'));
  assert.match(shown.progress, new RegExp(`^Done: ${folder.images} images\\. 2 skipped: cats/broken\\.png \\(could not be decoded: .*\\), dogs/notes\\.txt \\(not a PNG or JPEG file\\)`));
  assert.match(shown.set, /^pets: 3 classes \(birds, cats, dogs\), \d+ training and 3 test images, 32×32 colour, kept in this browser/);
  assert.match(await page.textContent('#start-info'), /uses your images \(pets: 3 classes/);

  const out = path.join(temp, 'packed');
  const printed = pack(folder.dir, out);
  assert.match(printed, /cats\/broken\.png \(could not be decoded: /);
  assertSameSet(await storedSet(page), out);

  await page.click('#start');
  await state(page, 'done');
  const log = await page.textContent('#log');
  assert.match(log, /# Data: your images \(pets\), 3 classes, \d+ training and 3 test images of 3x32x32/);
  assert.match(log, /^Test accuracy: \d+\.\d\d% \(\d\/3\)$/m);
  // The test images are captioned with the folder names.
  const truths = await page.$$eval('#image-grid .truth', (nodes) => nodes.map((n) => n.textContent));
  assert.equal(truths.length, 3);
  assert.ok(truths.every((name) => ['birds', 'cats', 'dogs'].includes(name)), truths.join(', '));

  await page.reload();
  await page.waitForSelector('body[data-state="idle"]');
  await page.waitForFunction(() => !document.getElementById('image-set-row').hidden);
  assert.match(await page.textContent('#image-set'), /^pets: 3 classes/);
  assert.match(await page.textContent('#start-info'), /uses your images/);
  assert.equal(await page.textContent('#image-progress'), '', 'nothing is decoded again');
  // A new run after the reload trains on the kept records.
  await page.click('#start');
  const discard = page.getByRole('button', { name: 'Discard it and start' });
  await discard.waitFor({ timeout: 5000 }).then(() => discard.click(), () => {});
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /# Data: your images \(pets\), 3 classes/);
});

test('grey and another size: the same bytes as pack --grey --size 20; a .zip (dropped) and a .tar (chosen) of the folder give the same records', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(t);
  await page.fill('#image-size', '20');
  await page.selectOption('#image-colour', '1');
  await page.fill('#image-test', '20');
  await page.fill('#image-seed', '5');
  await page.setInputFiles('#image-folder', folder.dir);
  const shown = await imagesDone(page);
  assert.match(shown.set, /20×20 grey/);
  const out = path.join(temp, 'packed-grey');
  pack(folder.dir, out, '--grey', '--size', '20', '--test-fraction', '0.2', '--seed', '5');
  assertSameSet(await storedSet(page), out);

  // Archives: zip (deflated) and tar, made by Python's standard library.
  const zip = path.join(temp, 'pets.zip'), tar = path.join(temp, 'pets.tar');
  const r = spawnSync('/usr/bin/python3', ['-c', `
import shutil, sys
shutil.make_archive(sys.argv[1][:-4], 'zip', sys.argv[3], 'pets')
shutil.make_archive(sys.argv[2][:-4], 'tar', sys.argv[3], 'pets')`, zip, tar, temp], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const archive of [zip, tar]) {
    // The last set's "Done" must not count for this one (a small archive can be decoded before a
    // poll would see "Reading" or "Decoding").
    await page.evaluate(() => { document.getElementById('image-progress').textContent = 'waiting for the test'; });
    if (archive === zip) await dropFiles(page, '#image-drop-zone', [archive]);
    else await page.setInputFiles('#image-archive', archive);
    await page.waitForFunction(() => /^(Done|Not loaded)/.test(document.getElementById('image-progress').textContent), null, { timeout: 120000 });
    const done = await imagesDone(page);
    assert.match(done.set, new RegExp(`^pets: 3 classes .*20×20 grey`), `${path.basename(archive)}: ${JSON.stringify(done)}`);
    assertSameSet(await storedSet(page), out);
  }
});

test('bad input is refused with its message and the page keeps running: one class, an empty class folder, a folder of nothing but corrupt files, more images than fit, a label past the classes, a damaged archive', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(t);
  const png = encodePng(8, 8, 3, makePixels(8, 8, 3, 1));
  const make = (name, files) => {
    const dir = path.join(temp, name);
    for (const [rel, bytes] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), bytes);
    }
    return dir;
  };
  const cases = [
    [make('one-class', { 'cats/a.png': png, 'cats/b.png': png }), /one class folder \(cats\): put the images in at least 2 folders/],
    [make('empty-class', { 'cats/a.png': png, 'dogs/notes.txt': 'x' }), /the class folder dogs has no PNG or JPEG image/],
    [make('all-corrupt', { 'cats/a.png': png, 'dogs/b.png': 'not a png' }), /the class folder dogs has no image that could be decoded/],
  ];
  for (const [dir, message] of cases) {
    await page.setInputFiles('#image-folder', dir);
    const shown = await imagesDone(page);
    assert.match(shown.progress, message, path.basename(dir));
    assert.match(shown.errors, message);
  }
  // A packed folder claiming more images than fit in a worker's Wasm memory.
  const fit = recordsThatFit(3073);
  const big = make('too-many', {
    [META_FILE]: JSON.stringify(packedMeta({ trainCount: fit, testCount: 1 })),
    [TRAIN_FILE]: '', [TEST_FILE]: '',
  });
  await page.setInputFiles('#image-folder', big);
  const refused = await imagesDone(page);
  assert.match(refused.progress, new RegExp(`${(fit + 1).toLocaleString('en')} images of 3,073 bytes each do not fit .* at most ${fit.toLocaleString('en')} fit`));
  // A packed folder with a label past its classes.
  const labels = make('bad-label', {
    [META_FILE]: JSON.stringify(packedMeta({ trainCount: 2, testCount: 1 })),
    [TRAIN_FILE]: Buffer.concat([Buffer.alloc(3073), Buffer.from([10]), Buffer.alloc(3072)]), [TEST_FILE]: Buffer.alloc(3073),
  });
  await page.setInputFiles('#image-folder', labels);
  assert.match((await imagesDone(page)).progress, /bad-label\/train\.bin: record 1 has label 10, but there are 10 classes/);
  // A damaged zip.
  const zip = path.join(temp, 'damaged.zip');
  writeFileSync(zip, 'PK\x03\x04 this is not really a zip');
  await page.setInputFiles('#image-archive', zip);
  assert.match((await imagesDone(page)).progress, /damaged\.zip: not a zip archive/);
  assert.equal(await page.getAttribute('body', 'data-state'), 'idle');
});

test('a storage quota too small for the set says how much is needed; the page keeps the set for this session and trains', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const page = await openPage(t, '?epochs=1&batch=8');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(env.server.url).origin, quotaSize: 20000 });
  await page.setInputFiles('#image-folder', folder.dir);
  const shown = await imagesDone(page);
  assert.match(shown.errors, /the images are not kept across reloads: storing them needs 8\d\.\d KB, and (this site may store only|the browser refused the space)/);
  assert.match(shown.set, /not kept across reloads/);
  await page.click('#start');
  await state(page, 'done');
  assert.match(await page.textContent('#log'), /^Test accuracy: /m);
});

test('100,000 32x32 colour training images (and 10,000 test images) train in the page within 512 MB of Wasm memory per worker', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  // Records made directly (the decode path is tested above), as `npm run pack` lays them out.
  const dir = path.join(temp, 'hundred-k');
  mkdirSync(dir);
  const train = 100000, testCount = 10000, recordBytes = 3073;
  const writeRecords = (name, count, seed) => {
    const fd = openSync(path.join(dir, name), 'w');
    for (let done = 0; done < count; done += 10000) writeSync(fd, makeRecords(Math.min(10000, count - done), seed + done));
    closeSync(fd);
  };
  writeRecords(TRAIN_FILE, train, 1);
  writeRecords(TEST_FILE, testCount, 7);
  writeFileSync(path.join(dir, META_FILE), JSON.stringify(packedMeta({ source: 'hundred-k', trainCount: train, testCount })));
  const page = await openPage(t, '?epochs=1&batch=64&limitTrain=640&limitTest=640&workers=1');
  await page.setInputFiles('#image-folder', dir);
  const shown = await imagesDone(page, { timeout: 300000 });
  assert.match(shown.set ?? '', /^hundred-k: 10 classes .* 100,000 training and 10,000 test images, 32×32 colour/, JSON.stringify(shown));
  await page.click('#start');
  await state(page, 'done');
  const log = await page.textContent('#log');
  const data = /# Data: your images \(hundred-k\), 10 classes, 100,000 training and 10,000 test images of 3x32x32 \(Wasm memory (\d+\.\d) MB\)/.exec(log);
  assert.ok(data, log.slice(0, 800));
  const wasm = Number(await page.getAttribute('#epoch-progress', 'data-wasm-bytes'));
  const loadedMb = Number(data[1]);
  console.log(`# 100,000 training and 10,000 test images (${((train + testCount) * recordBytes / MB).toFixed(1)} MB of records): Wasm memory ${loadedMb} MB after loading${wasm ? `, ${(wasm / MB).toFixed(1)} MB after training` : ''}`);
  assert.ok(loadedMb <= 512, `Wasm memory ${loadedMb} MB after loading`);
  assert.ok(wasm > 0 && wasm <= 512 * MB, `Wasm memory ${(wasm / MB).toFixed(1)} MB after training`);
  assert.match(log, /^Test accuracy: \d+\.\d\d% \(\d+\/640\)$/m);
});

test('partly transparent pixels: composited on white, within 1 of pack (the canvas stores premultiplied alpha)', async (t) => {
  if (env.skipReason) return t.skip(env.skipReason);
  const dir = path.join(temp, 'alpha');
  for (const [name, pattern] of [['left', 0], ['right', 1]]) {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const w = 30 + 7 * i, h = 26 + 3 * i, pixels = makePixels(w, h, 4, 50 + i, pattern);
      for (let k = 3; k < pixels.length; k += 4) pixels[k] = (k * 13) % 256; // every alpha value
      writeFileSync(path.join(dir, name, `${i}.png`), encodePng(w, h, 4, pixels));
    }
  }
  const page = await openPage(t);
  await page.fill('#image-test', '34');
  await page.setInputFiles('#image-folder', dir);
  await imagesDone(page);
  const out = path.join(temp, 'alpha-packed');
  pack(dir, out, '--test-fraction', '0.34');
  const got = await storedSet(page), want = readFileSync(path.join(out, TRAIN_FILE));
  assert.equal(got.train.length, want.length);
  let differ = 0, most = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got.train[i] - want[i]);
    if (d) differ++;
    most = Math.max(most, d);
  }
  console.log(`# partly transparent PNGs: ${differ} of ${want.length} bytes differ, by at most ${most}`);
  assert.ok(most <= 1, `bytes differ by up to ${most}`);
});

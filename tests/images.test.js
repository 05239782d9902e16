// Your own images without a browser: the shared crop-and-resize against a plain floating-point
// reference, class folders from paths, the seeded stratified split, the zip and tar listings, and
// `npm run pack` / `train --data OUT` on a folder generated here (PNGs from a tiny encoder, JPEGs
// from Pillow), with every bad input it must refuse. The page's side is browser-images.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import {
  cropResize, classifyPaths, stratifiedSplit, recordStats, recordsThatFit, checkFits, META_FILE, TRAIN_FILE, TEST_FILE,
  WASM_MEMORY_LIMIT, MAX_CLASSES,
} from '../web/image-records.js';
import { listZip, listTar } from '../web/image-archive.js';
import { readEntries } from '../web/image-panel.js';
import { writeImageFolder, encodePng, makePixels, pillowAvailable } from './helpers/images.js';
import { runCli, jsonEvents } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

const PACK = new URL('../src/node/pack.js', import.meta.url).pathname;
const WASM = new URL('../web/webtrain.wasm', import.meta.url).pathname;

function pack(...args) {
  return spawnSync(process.execPath, [PACK, ...args], { encoding: 'utf8' });
}

/** The crop and box filter in floating point, straight from its definition. */
function referenceResize(rgba, width, height, size) {
  const side = Math.min(width, height), x0 = Math.floor((width - side) / 2), y0 = Math.floor((height - side) / 2);
  const scale = side / size, out = [];
  for (let c = 0; c < 3; c++) {
    for (let oy = 0; oy < size; oy++) {
      for (let ox = 0; ox < size; ox++) {
        let sum = 0, area = 0;
        for (let y = 0; y < side; y++) {
          const wy = Math.max(0, Math.min(y + 1, (oy + 1) * scale) - Math.max(y, oy * scale));
          if (!wy) continue;
          for (let x = 0; x < side; x++) {
            const wx = Math.max(0, Math.min(x + 1, (ox + 1) * scale) - Math.max(x, ox * scale));
            if (!wx) continue;
            const p = ((y0 + y) * width + x0 + x) * 4, a = rgba[p + 3] / 255;
            sum += wx * wy * (rgba[p + c] * a + 255 * (1 - a));
            area += wx * wy;
          }
        }
        out.push(sum / area);
      }
    }
  }
  return out;
}

test('crop and resize: within rounding of the floating-point box filter, for shrinking, enlarging, odd crops and alpha', () => {
  const cases = [[40, 30, 32], [32, 32, 32], [17, 50, 32], [100, 20, 8], [7, 9, 16], [64, 48, 20], [1, 1, 8]];
  for (const [w, h, size] of cases) {
    const rgba = makePixels(w, h, 4, w * h, 2);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = (i * 37) % 256; // every alpha value
    const out = new Uint8Array(3 * size * size);
    cropResize(rgba, w, h, size, 3, out, 0);
    const want = referenceResize(rgba, w, h, size);
    const bad = [];
    want.forEach((v, i) => { if (Math.abs(out[i] - v) > 0.5 + 1e-9 && bad.length < 5) bad.push(`${i}: ${out[i]} vs ${v.toFixed(3)}`); });
    assert.deepEqual(bad, [], `${w}x${h} -> ${size}: first mismatches`);
  }
  // Same size: the pixels themselves; transparent: white; grey: BT.601 luma.
  const rgba = makePixels(8, 8, 4, 3, 0).map((v, i) => (i % 4 === 3 ? 255 : v));
  const same = new Uint8Array(192);
  cropResize(rgba, 8, 8, 8, 3, same, 0);
  for (let k = 0; k < 64; k++) assert.deepEqual([same[k], same[64 + k], same[128 + k]], [...rgba.subarray(4 * k, 4 * k + 3)]);
  const clear = new Uint8Array(16).fill(0);
  const white = new Uint8Array(3);
  cropResize(clear, 2, 2, 1, 3, white, 0);
  assert.deepEqual([...white], [255, 255, 255]);
  const grey = new Uint8Array(1);
  cropResize(new Uint8Array([200, 100, 50, 255]), 1, 1, 1, 1, grey, 0);
  assert.equal(grey[0], Math.floor((299 * 200 + 587 * 100 + 114 * 50 + 500) / 1000));
});

test('class folders: the common top folder dropped, names sorted, hidden files ignored, loose and unsupported files reported', () => {
  const r = classifyPaths(['pets/dogs/b.png', 'pets/cats/x/a.JPG', 'pets/cats/a.png', 'pets/.DS_Store', 'pets/readme.txt', 'pets/Birds/c.jpeg', 'pets/dogs/n.txt', '__MACOSX/pets/dogs/._b.png'], ['pets/empty']);
  assert.equal(r.prefix, 'pets/');
  assert.deepEqual(r.classNames, ['Birds', 'cats', 'dogs', 'empty']); // UTF-16 code unit order: capitals first
  assert.deepEqual(r.files, [
    { path: 'pets/Birds/c.jpeg', label: 0 }, { path: 'pets/cats/a.png', label: 1 }, { path: 'pets/cats/x/a.JPG', label: 1 }, { path: 'pets/dogs/b.png', label: 2 },
  ]);
  assert.deepEqual(r.unsupported, ['pets/dogs/n.txt']);
  assert.deepEqual(r.loose, ['pets/readme.txt']);
  // An archive of the class folders themselves: no top folder to drop.
  assert.deepEqual(classifyPaths(['a/1.png', 'b/2.png']).classNames, ['a', 'b']);
  assert.deepEqual(classifyPaths(['only/1.png', 'only/2.png']).classNames, ['only']);
});

test('the split is stratified, seeded and the same every time; a new seed gives another', () => {
  const labels = Array.from({ length: 1000 }, (_, i) => (i < 700 ? 0 : i < 950 ? 1 : 2));
  const a = stratifiedSplit(labels, 3, 0.1, 0), b = stratifiedSplit(labels, 3, 0.1, 0), c = stratifiedSplit(labels, 3, 0.1, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.test, c.test);
  const perClass = (indices) => [0, 1, 2].map((k) => indices.filter((i) => labels[i] === k).length);
  assert.deepEqual(perClass(a.test), [70, 25, 5]);
  assert.deepEqual(perClass(a.train), [630, 225, 45]);
  assert.equal(new Set([...a.train, ...a.test]).size, 1000);
});

test('mean and std from a histogram match the direct computation', () => {
  const records = new Uint8Array(3 * (1 + 2 * 4));
  records.set([0, 0, 255, 10, 20, 100, 100, 100, 100, 1, 5, 6, 7, 8, 1, 1, 1, 1, 2, 9, 9, 9, 9, 0, 0, 0, 0]);
  const { mean, std, perClass } = recordStats(records, 9, 2, 3);
  assert.deepEqual(perClass, [1, 1, 1]);
  const plane = (c) => [0, 1, 2].flatMap((r) => [...records.subarray(r * 9 + 1 + c * 4, r * 9 + 5 + c * 4)].map((v) => v / 255));
  for (let c = 0; c < 2; c++) {
    const v = plane(c), m = v.reduce((s, x) => s + x, 0) / v.length;
    assert.ok(Math.abs(mean[c] - m) < 1e-6);
    assert.ok(Math.abs(std[c] - Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length)) < 1e-6);
  }
});

test('the memory ceiling is computed from the Wasm limit in CMakeLists.txt and refuses with the count that fits', () => {
  const cmake = readFileSync(new URL('../CMakeLists.txt', import.meta.url), 'utf8');
  const max = /-sMAXIMUM_MEMORY=(\d+)GB/.exec(cmake);
  assert.ok(max, 'CMakeLists.txt sets -sMAXIMUM_MEMORY in GB');
  assert.equal(WASM_MEMORY_LIMIT, Number(max[1]) * 2 ** 30);
  const fit = recordsThatFit(3073);
  assert.ok(fit >= 100000, `at least 100,000 32x32x3 images fit (${fit})`);
  checkFits(fit, 3073);
  assert.throws(() => checkFits(fit + 1, 3073), new RegExp(`at most ${fit.toLocaleString('en')} fit`));
});

test('zip (stored and deflated) and tar listings give the files and their bytes', async () => {
  const dir = tempDir('webtrain-archive-');
  mkdirSync(path.join(dir, 'set', 'a'), { recursive: true });
  mkdirSync(path.join(dir, 'set', 'b'), { recursive: true });
  const one = encodePng(5, 4, 3, makePixels(5, 4, 3, 1)), two = Buffer.from('x'.repeat(5000));
  writeFileSync(path.join(dir, 'set', 'a', 'one.png'), one);
  writeFileSync(path.join(dir, 'set', 'b', `${'long-name-'.repeat(12)}.png`), two);
  const r = spawnSync('/usr/bin/python3', ['-c', `
import zipfile, tarfile, os, sys
d = sys.argv[1]
with zipfile.ZipFile(os.path.join(d, 'set.zip'), 'w') as z:
    z.write(os.path.join(d, 'set/a'), 'set/a/')
    z.write(os.path.join(d, 'set/a/one.png'), 'set/a/one.png', zipfile.ZIP_STORED)
    for f in os.listdir(os.path.join(d, 'set/b')): z.write(os.path.join(d, 'set/b', f), 'set/b/' + f, zipfile.ZIP_DEFLATED)
with tarfile.open(os.path.join(d, 'set.tar'), 'w', format=tarfile.GNU_FORMAT) as t: t.add(os.path.join(d, 'set'), 'set')
with tarfile.open(os.path.join(d, 'pax.tar'), 'w', format=tarfile.PAX_FORMAT) as t: t.add(os.path.join(d, 'set'), 'set')
`, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  for (const name of ['set.zip', 'set.tar', 'pax.tar']) {
    const blob = new Blob([readFileSync(path.join(dir, name))]);
    const listed = await (name.endsWith('.zip') ? listZip(Object.assign(blob, { name })) : listTar(blob, name));
    const files = new Map();
    for (const f of listed.files) files.set(f.path, Buffer.from(await (await f.blob()).arrayBuffer()));
    assert.deepEqual([...files.keys()].sort(), ['set/a/one.png', `set/b/${'long-name-'.repeat(12)}.png`], name);
    assert.ok(files.get('set/a/one.png').equals(one), name);
    assert.ok(files.get(`set/b/${'long-name-'.repeat(12)}.png`).equals(two), name);
    assert.ok(listed.folders.some((f) => f.replace(/\/$/, '') === 'set/a'), `${name}: folders ${listed.folders}`);
  }
  const truncated = new Blob([readFileSync(path.join(dir, 'set.tar')).subarray(0, 1500)]);
  await assert.rejects(listTar(truncated, 'cut.tar'), /cut\.tar: the archive is truncated/);
  await assert.rejects(listZip(Object.assign(new Blob(['PK no zip here']), { name: 'bad.zip' })), /bad\.zip: not a zip archive/);
});

test('npm run pack: counts per class, skipped files named, records and metadata; train --data OUT trains on them', () => {
  if (pillowAvailable !== true) console.log(`# JPEGs left out: ${pillowAvailable}`);
  const dir = tempDir('webtrain-pack-');
  const folder = writeImageFolder(path.join(dir, 'pets'));
  const out = path.join(dir, 'out');
  const r = pack(folder.dir, out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Packed ${folder.images} images of 3 classes as 3x32x32 into .* \\(25 train, 3 test, seed 0\\):$`, 'm'));
  assert.match(r.stdout, /^ {4}0 birds +11 images \(10 train, 1 test\)$/m);
  assert.match(r.stdout, /^ {2}cats\/broken\.png \(could not be decoded: .+\)$/m);
  assert.match(r.stdout, /^ {2}dogs\/notes\.txt \(not a PNG or JPEG file\)$/m);
  const meta = JSON.parse(readFileSync(path.join(out, META_FILE), 'utf8'));
  assert.deepEqual(meta.classNames, ['birds', 'cats', 'dogs']);
  assert.deepEqual([meta.channels, meta.height, meta.width, meta.recordBytes], [3, 32, 32, 3073]);
  assert.deepEqual(meta.split, { seed: 0, testFraction: 0.1 });
  assert.equal(meta.skipped.count, 2);
  assert.equal(readFileSync(path.join(out, TRAIN_FILE)).length, meta.trainCount * 3073);
  assert.equal(readFileSync(path.join(out, TEST_FILE)).length, meta.testCount * 3073);
  // Packing again gives the same bytes.
  const again = path.join(dir, 'again');
  assert.equal(pack(folder.dir, again).status, 0);
  for (const f of [TRAIN_FILE, TEST_FILE, META_FILE]) assert.ok(readFileSync(path.join(out, f)).equals(readFileSync(path.join(again, f))), f);

  if (!existsSync(WASM)) return;
  const trained = runCli(['--data', out, '--epochs', '1', '--batch-size', '5', '--workers', '2', '--json']);
  assert.equal(trained.status, 0, trained.stderr);
  const epoch = jsonEvents(trained).find((e) => e.event === 'epoch');
  assert.equal(epoch.total, 3);
  const grey = path.join(dir, 'grey');
  assert.equal(pack(folder.dir, grey, '--grey', '--size', '28').status, 0);
  const summary = runCli(['--data', grey, '--print-model']);
  assert.match(summary.stdout, /simplecnn for .*grey \(1x28x28, 3 classes\)/);
});

test('pack refuses bad input with a message: one class, an empty class folder, undecodable classes, 257 classes, bad options; train refuses a damaged packed folder', () => {
  const dir = tempDir('webtrain-pack-bad-');
  const png = encodePng(4, 4, 3, makePixels(4, 4, 3, 9));
  const make = (name, files, folders = []) => {
    const root = path.join(dir, name);
    for (const f of folders) mkdirSync(path.join(root, f), { recursive: true });
    for (const [rel, bytes] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), bytes);
    }
    return root;
  };
  const refused = (args, message) => {
    const r = pack(...args);
    assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(path.join(args[1] ?? '', META_FILE)), 'nothing written');
  };
  refused([make('one', { 'cats/a.png': png }), path.join(dir, 'o1')], /one class folder \(cats\): put the images in at least 2 folders/);
  refused([make('none', { 'a.png': png }), path.join(dir, 'o2')], /found no class folder/);
  refused([make('empty', { 'cats/a.png': png }, ['dogs']), path.join(dir, 'o3')], /the class folder dogs has no PNG or JPEG image/);
  refused([make('corrupt', { 'cats/a.png': png, 'dogs/b.jpg': 'not a jpeg' }), path.join(dir, 'o4')], /the class folder dogs has no image that could be decoded/);
  const many = Object.fromEntries(Array.from({ length: MAX_CLASSES + 1 }, (_, i) => [`c${i}/x.png`, png]));
  refused([make('many', many), path.join(dir, 'o5')], /found 257 class folders: at most 256 are allowed \(a label is one byte\)/);
  refused([path.join(dir, 'missing'), path.join(dir, 'o6')], /missing: cannot read the folder \(ENOENT\)/);
  refused([make('ok', { 'a/1.png': png, 'b/2.png': png }), path.join(dir, 'o7'), '--size', '4'], /--size 4: an integer from 8 to 256/);
  refused([path.join(dir, 'ok'), path.join(dir, 'o8'), '--test-fraction', '1'], /--test-fraction 1: a number between 0 and 1/);

  const good = path.join(dir, 'good');
  assert.equal(pack(make('two', { 'a/1.png': png, 'a/2.png': png, 'b/3.png': png, 'b/4.png': png }), good, '--test-fraction', '0.5').status, 0);
  if (!existsSync(WASM)) return;
  writeFileSync(path.join(good, TEST_FILE), readFileSync(path.join(good, TEST_FILE)).subarray(0, 100));
  let r = runCli(['--data', good, '--epochs', '1']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /test\.bin: size 100 bytes is not a multiple of the 3073-byte 3x32x32 image record/);
  const meta = JSON.parse(readFileSync(path.join(good, META_FILE), 'utf8'));
  writeFileSync(path.join(good, META_FILE), JSON.stringify({ ...meta, channels: 2 }));
  r = runCli(['--data', good, '--epochs', '1']);
  assert.match(r.stderr, /webtrain-images\.json: channels must be 1 or 3, not 2/);
  writeFileSync(path.join(good, META_FILE), '{ not json');
  r = runCli(['--data', good, '--epochs', '1']);
  assert.match(r.stderr, /webtrain-images\.json: not valid JSON/);
});

test('a dropped folder is walked through its entries, every batch of every folder, empty folders included', async () => {
  // FileSystemEntry stand-ins: a reader hands out at most 100 entries a call, as Chromium's does.
  const file = (name) => ({ name, isDirectory: false, file: (resolve) => setTimeout(() => resolve({ name })) });
  const folder = (name, children) => ({
    name, isDirectory: true,
    createReader: () => {
      let at = 0;
      return { readEntries: (resolve) => setTimeout(() => { const batch = children.slice(at, at + 100); at += batch.length; resolve(batch); }) };
    },
  });
  const many = Array.from({ length: 250 }, (_, i) => file(`${i}.png`));
  const { files, folders } = await readEntries([folder('pets', [folder('cats', many), folder('dogs', [file('a.jpg'), folder('deep', [file('b.png')])]), folder('empty', [])])]);
  assert.deepEqual(folders, ['pets', 'pets/cats', 'pets/dogs', 'pets/dogs/deep', 'pets/empty']);
  assert.equal(files.length, 252);
  assert.deepEqual(files.slice(-2).map((f) => f.path), ['pets/dogs/a.jpg', 'pets/dogs/deep/b.png']);
  assert.equal(files[249].file.name, '249.png');
  const { classNames } = classifyPaths(files.map((f) => f.path), folders);
  assert.deepEqual(classNames, ['cats', 'dogs', 'empty']);
});

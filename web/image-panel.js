// "Your images" in the Data panel: a dropped or chosen folder (one subfolder per class), a .zip or
// .tar of one, or a folder made by `npm run pack`, turned into records by image-worker.js (off the
// main thread) with progress; the set is kept in the Origin Private File System (image-store.js)
// and comes back after a reload. data-panel.js makes it the data source and sends it to training.
import { SIZE_RANGE, listNames } from './image-records.js';
import { ARCHIVE_NAME } from './image-archive.js';
import { storedImageMeta, readImageSet, clearImageSet } from './image-store.js';
import { formatBytes } from './format.js';
import { wireDropZone } from './drop-zone.js';

const $ = (id) => document.getElementById(id);

let hooks = null;   // { onSet(set | null), showError(message), clearErrors(), busy() }
let current = null; // { meta, train, test } (ArrayBuffers while not yet handed over) | { meta }
let decoding = null; // the decode worker while it runs

/** hooks: onSet(set) when a set was made or found (null: forgotten), showError, clearErrors, busy(). */
export async function setupImagePanel(pageHooks) {
  hooks = pageHooks;
  $('choose-image-folder').addEventListener('click', () => $('image-folder').click());
  $('choose-image-archive').addEventListener('click', () => $('image-archive').click());
  $('image-folder').addEventListener('change', (event) => {
    const files = [...event.target.files];
    event.target.value = '';
    fromFiles(files.map((file) => ({ path: file.webkitRelativePath || file.name, file })), []);
  });
  $('image-archive').addEventListener('change', (event) => {
    const [file] = event.target.files;
    event.target.value = '';
    if (file) makeSet({ archive: file, source: file.name.replace(ARCHIVE_NAME, '') });
  });
  wireDropZone($('image-drop-zone'), (files, entries) => {
    if (entries.some((e) => e.isDirectory)) readEntries(entries).then(({ files: found, folders }) => fromFiles(found, folders), (error) => fail(error));
    else fromFiles(files.map((file) => ({ path: file.name, file })), []);
  });
  $('image-forget').addEventListener('click', forget);
  $('image-use').addEventListener('click', () => current && hooks.onSet(current));
  const meta = await storedImageMeta().catch(() => null);
  if (meta) {
    current = { meta };
    show(meta, { ok: true });
    hooks.onSet(current);
  }
}

/** The set data-panel.js should train on, its records read from storage if needed. */
export async function imageRecords(id) {
  if (!current || current.meta.id !== id) {
    const meta = await storedImageMeta();
    if (!meta || meta.id !== id) throw new Error('The images this run trained on are no longer kept in this browser: drop the folder again, then press Resume run.');
    current = { meta };
  }
  if (current.train) return current;
  return { meta: current.meta, ...(await readImageSet(current.meta)) };
}

/** The set's records were handed to the worker: keep them only if they are not stored. */
export function handedOver(set) {
  if (current?.meta === set.meta && current.stored) current = { meta: set.meta };
}

function fromFiles(files, folders) {
  if (!files.length) return;
  const archives = files.filter((f) => ARCHIVE_NAME.test(f.file.name));
  if (files.length === 1 && archives.length === 1) {
    makeSet({ archive: files[0].file, source: files[0].file.name.replace(ARCHIVE_NAME, '') });
    return;
  }
  const top = files[0].path.split('/')[0];
  makeSet({ entries: files, folders, source: files.every((f) => f.path.startsWith(`${top}/`)) ? top : 'your images' });
}

/**
 * Walks dropped entries (webkitGetAsEntry): { files: [{ path, file }], folders: [path] }. A
 * folder's reader gives its entries in batches (Chromium: 100) until an empty one.
 */
export async function readEntries(entries) {
  const files = [], folders = [];
  const all = (reader) => new Promise((resolve, reject) => {
    const out = [];
    const more = () => reader.readEntries((batch) => (batch.length ? (out.push(...batch), more()) : resolve(out)), reject);
    more();
  });
  const visit = async (entry, prefix) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      folders.push(path);
      for (const child of await all(entry.createReader())) await visit(child, path);
    } else {
      files.push({ path, file: await new Promise((resolve, reject) => entry.file(resolve, reject)) });
    }
  };
  for (const entry of entries) await visit(entry, '');
  return { files, folders };
}

function readOptions() {
  const size = Number($('image-size').value), testPercent = Number($('image-test').value), seed = Number($('image-seed').value);
  const problems = [];
  if (!Number.isInteger(size) || size < SIZE_RANGE[0] || size > SIZE_RANGE[1]) problems.push(`Image size: a whole number from ${SIZE_RANGE[0]} to ${SIZE_RANGE[1]}.`);
  if (!(testPercent >= 1 && testPercent <= 90)) problems.push('Test %: a number from 1 to 90.');
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) problems.push('Split seed: a whole number from 0 to 4294967295.');
  if (problems.length) throw new Error(problems.join(' '));
  return { size, channels: Number($('image-colour').value), testFraction: testPercent / 100, seed };
}

function fail(error) {
  $('image-progress').textContent = `Not loaded: ${error.message}`;
  hooks.showError(`Your images: ${error.message}`);
}

/** Decodes in image-worker.js; the result becomes the data source. */
function makeSet(input) {
  if (decoding) return; // one folder at a time: the one being decoded finishes first
  if (hooks.busy()) {
    fail(new Error('a run is going on: stop it first, then drop the images again'));
    return;
  }
  let options;
  try {
    options = readOptions();
  } catch (error) {
    fail(error);
    return;
  }
  hooks.clearErrors();
  const worker = new Worker(new URL('./image-worker.js', import.meta.url), { type: 'module' });
  decoding = worker;
  $('image-progress').textContent = 'Reading the files…';
  const finish = () => {
    worker.terminate();
    decoding = null;
  };
  worker.onmessage = ({ data }) => {
    if (data.type === 'progress') {
      const skipped = data.skipped ? ` · ${data.skipped} skipped: ${data.firstSkipped}` : '';
      $('image-progress').textContent = `Decoding: ${data.done.toLocaleString('en')} of ${data.total.toLocaleString('en')} files · ${Math.round(data.imagesPerSecond).toLocaleString('en')} images/s${skipped}`;
      return;
    }
    finish();
    if (data.type === 'error') {
      fail(new Error(data.message));
      return;
    }
    current = { meta: data.meta, train: data.train, test: data.test, stored: data.stored.ok };
    const skipped = data.meta.skipped?.count ? ` ${data.meta.skipped.count} skipped: ${data.skipped}.` : '';
    $('image-progress').textContent = `Done: ${(data.meta.trainCount + data.meta.testCount).toLocaleString('en')} images.${skipped}`;
    show(data.meta, data.stored);
    if (!data.stored.ok) hooks.showError(`Your images: ${data.stored.message}`);
    hooks.onSet(current);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    finish();
    fail(new Error(`the image decoder stopped (${event.message || 'its script failed to load'})`));
  };
  worker.postMessage({ ...input, ...options });
}

function show(meta, stored) {
  const shape = `${meta.width}×${meta.height} ${meta.channels === 1 ? 'grey' : 'colour'}`;
  const bytes = (meta.trainCount + meta.testCount) * meta.recordBytes;
  const where = stored.ok ? `kept in this browser (${formatBytes(bytes)})` : 'not kept across reloads';
  $('image-set').textContent = `${meta.source || 'Your images'}: ${meta.classes} classes (${listNames(meta.classNames, 8)}), ${meta.trainCount.toLocaleString('en')} training and ${meta.testCount.toLocaleString('en')} test images, ${shape}, ${where}.`;
  $('image-set-row').hidden = false;
}

async function forget() {
  current = null;
  $('image-set-row').hidden = true;
  $('image-progress').textContent = '';
  hooks.onSet(null);
  await clearImageSet().catch((error) => hooks.showError(`Could not remove the stored images: ${error.message}`));
}

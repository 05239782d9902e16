// The Data panel: gets the six CIFAR-10 files into the training worker, fetched from the data URL
// (per-file progress, kept in Cache Storage by data-source.js) or dropped/chosen by the user, and
// shows what it has: progress rows that end in "failed" or "not loaded" rather than "waiting",
// the bytes stored in this browser, and the files in use. The page gives it its hooks once.
import { ALL_FILES, OFFICIAL_ARCHIVE } from './cifar.js';
import * as P from './protocol.js';
import { fetchFiles, readLocalFiles, clearCache, cachedBytes, cacheAvailable, fileUrls } from './data-source.js';
import { renderImageGrid } from './visuals.js';
import { WorkerError } from './worker-client.js';
import { formatBytes } from './format.js';
import { setupImagePanel, imageRecords, handedOver } from './image-panel.js';
import { formatOfMeta } from './image-records.js';

const $ = (id) => document.getElementById(id);

/** The six files' size: 60,000 records of 3,073 bytes. */
export const CIFAR_BYTES = 60000 * 3073;

let hooks = null;        // { request, log, showError, clearErrors, onChange, busy }
let dataKey = null;      // what the worker holds: 'url:<base>' or 'local:<n>'
let localFiles = null;   // { key, files, names } when chosen files are the data source
let localLoads = 0;
let abortLoad = null;
let failed = false;      // the last attempt to get the data failed
let sample = null;       // the first test images and labels, for the grid
let lastBase = null;     // the data URL last checked against the cache
const cachedBases = new Set(); // data URLs whose six files are all in Cache Storage
let imageSet = null;     // { meta } of your images (image-panel.js) when they are the data source

/** hooks: request (worker-client), log(line, className), showError(message, scope),
 * clearErrors(scope), onChange() after anything Start's description depends on changed, busy()
 * (a run or a load is going on: a dropped image folder waits). */
export function setupDataPanel(pageHooks) {
  hooks = pageHooks;
  $('drop-zone').title = `The six files from ${OFFICIAL_ARCHIVE}: ${ALL_FILES.join(', ')}`;
  $('clear-cache').addEventListener('click', async () => {
    await clearCache().catch((error) => hooks.showError(`Could not clear the stored data: ${error.message}`, 'data'));
    updateCacheSize();
  });
  setupImagePanel({
    onSet: (set) => {
      imageSet = set ? { meta: set.meta } : null;
      if (set && localFiles) {
        localFiles = null;
        $('local-data').hidden = true;
      }
      $('image-use').hidden = Boolean(set);
      hooks.onChange();
    },
    showError: (message) => hooks.showError(message, 'data'),
    clearErrors: () => hooks.clearErrors('data'),
    busy: () => hooks.busy?.() ?? false,
  }).catch((error) => hooks.showError(`Your stored images could not be read: ${error.message}`, 'data'));
}

export const dataFailed = () => failed;
export const dataSample = () => sample;
export const usingLocalFiles = () => localFiles !== null;

/** The worker was lost with its data: the next run loads it again. */
export function forgetWorkerData() { dataKey = null; }

/** Stops a download in progress. */
export function abortDataLoad() { abortLoad?.(); }

/** The data URL was edited: fetch from it again instead of the chosen files. */
export function useDataUrl() {
  if (imageSet && !localFiles) {
    imageSet = null;
    $('image-use').hidden = false;
  }
  if (!localFiles) return;
  localFiles = null;
  $('local-data').hidden = true;
}

/** Where the data comes from: the URL in the settings, or the files the user chose. */
export function currentSource(settings) {
  if (imageSet) return { kind: 'images', id: imageSet.meta.id, names: [imageSet.meta.source || 'your images'] };
  return localFiles ? { kind: 'local', names: localFiles.names } : { kind: 'url', url: settings.data };
}

/** What Start does for the data from `base`, for the first screen: { text, download }. */
export function describeDataFor(base) {
  if (imageSet) {
    const m = imageSet.meta;
    return { text: `uses your images (${m.source || 'dropped'}: ${m.classes} classes, ${m.trainCount.toLocaleString('en')} training images, ${m.channels}×${m.height}×${m.width})`, download: false };
  }
  if (localFiles) return { text: `uses your files (${localFiles.names.join(', ')})`, download: false };
  if (dataKey === `url:${base}`) return { text: 'uses the CIFAR-10 data already loaded', download: false };
  const url = new URL(base);
  const where = url.origin === location.origin ? `this site (${url.pathname})` : `${url.host}${url.pathname}`;
  if (cachedBases.has(base)) return { text: `uses the CIFAR-10 copy kept in this browser (from ${where})`, download: false };
  return { text: `downloads CIFAR-10 (${Math.round(CIFAR_BYTES / 2 ** 20)} MB, six files) from ${where}, once: this browser keeps a copy`, download: true };
}

/** Gets `source`'s data into the worker unless it holds it already. */
export async function ensureData(source) {
  if (source.kind === 'images') {
    if (dataKey !== `images:${source.id}`) await sendImageSet(await imageRecords(source.id));
    return;
  }
  if (source.kind === 'url') {
    if (dataKey !== `url:${source.url}`) await loadFromUrl(source.url);
    return;
  }
  if (localFiles && dataKey === localFiles.key) return;
  if (!localFiles) {
    throw new Error(`This run trained on files you chose (${source.names.join(', ')}). Choose or drop them again, then press Resume run.`);
  }
  const files = await readLocalFiles(localFiles.files, { onProgress: progressRows() });
  await sendData(files, localFiles.key);
}

/** Dropped or chosen files: read, checked by the engine, then the data source. Throws on failure. */
export async function loadLocalFiles(fileList) {
  const onProgress = progressRows();
  try {
    const files = await readLocalFiles(fileList, { onProgress });
    const key = `local:${++localLoads}`;
    await sendData(files, key);
    // The File objects stay readable for this page's life: a new worker can be given them again.
    const names = [...fileList].map((f) => f.name);
    localFiles = { key, files: [...fileList], names };
    imageSet = null; // the dropped CIFAR-10 files replace your images as the source (they stay stored)
    $('image-use').hidden = false;
    $('local-data').textContent = `Using your files (${names.join(', ')}). Edit the data URL to fetch from there instead.`;
    $('local-data').hidden = false;
  } catch (error) {
    onProgress.fail(error);
    failed = true;
    throw error;
  }
}

/** Shows the bytes kept in Cache Storage, and whether `base`'s files are all there. */
export async function updateCacheSize(base) {
  if (!cacheAvailable) {
    $('cache-size').textContent = 'not available (needs https or localhost)';
    $('clear-cache').disabled = true;
    return;
  }
  try {
    $('cache-size').textContent = formatBytes(await cachedBytes());
  } catch (error) {
    $('cache-size').textContent = `unknown (${error.message})`;
  }
  await checkCachedData(base);
}

export async function checkCachedData(base = lastBase) {
  lastBase = base;
  if (!base || !cacheAvailable) return;
  try {
    const hits = await Promise.all(fileUrls(base).map((url) => caches.match(url)));
    if (hits.every(Boolean)) cachedBases.add(base);
    else cachedBases.delete(base);
  } catch {
    cachedBases.delete(base);
  }
  hooks.onChange();
}

/**
 * One row per file with a labelled progress bar; returns onProgress, with .fail(error) to mark
 * the file that failed and the others as not loaded (never back to "waiting").
 */
function progressRows() {
  const list = $('file-progress');
  list.replaceChildren();
  const rows = new Map();
  for (const name of ALL_FILES) {
    const item = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'file-name';
    label.textContent = name;
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute('aria-label', `${name} loaded`);
    const text = document.createElement('span');
    text.className = 'file-bytes';
    text.textContent = 'waiting';
    item.append(label, bar, text);
    list.appendChild(item);
    rows.set(name, { item, bar, text });
  }
  const onProgress = (name, loaded, total, fromCache) => {
    const row = rows.get(name);
    if (!row) return;
    if (total) {
      row.bar.max = total;
      row.bar.value = loaded;
      row.text.textContent = `${formatBytes(loaded)} / ${formatBytes(total)} · ${Math.floor((100 * loaded) / total)}%`;
    } else {
      row.bar.removeAttribute('value');
      row.text.textContent = formatBytes(loaded);
    }
    if (fromCache) row.text.textContent = `${formatBytes(total)} · from this browser`;
    row.item.classList.toggle('complete', total > 0 && loaded === total);
  };
  onProgress.fail = (error) => {
    for (const [name, row] of rows) {
      const named = error.message.includes(name);
      if (row.item.classList.contains('complete') && !named) continue;
      row.item.classList.toggle('failed', named);
      row.text.textContent = named ? 'failed: see the errors above' : error.name === 'AbortError' ? 'stopped' : 'not loaded';
    }
  };
  return onProgress;
}

/** Hands the six files to the worker, which validates them with the C reader. */
async function sendData(files, key) {
  const buffers = ALL_FILES.map((name) => files.get(name));
  const train = ALL_FILES.slice(0, 5).map((name, i) => ({ name: nameOf(key, name), buffer: buffers[i] }));
  const test = { name: nameOf(key, ALL_FILES[5]), buffer: buffers[5] };
  dataKey = null;
  const reply = await hooks.request(P.LOAD_DATA, { train, test }, buffers);
  dataKey = key;
  sample = reply.sample;
  failed = false;
  hooks.clearErrors('data');
  renderImageGrid($('image-grid'), sample, null);
  $('image-grid').classList.remove('placeholder');
  hooks.log(`# Data: ${reply.trainCount.toLocaleString('en')} training and ${reply.testCount.toLocaleString('en')} test images`, 'log-info');
}

/** Your images' records to the worker, in their own format (shape, classes, mean and std). */
async function sendImageSet(set) {
  const { meta } = set;
  const stored = set.stored !== false;
  // Stored records can be read again; records that are not must stay in the page for a new worker.
  const train = stored ? set.train : set.train.slice(0), test = stored ? set.test : set.test.slice(0);
  dataKey = null;
  const name = meta.source || 'your images';
  const reply = await hooks.request(P.LOAD_DATA, {
    train: [{ name: `${name}/${meta.files.train}`, buffer: train }], test: { name: `${name}/${meta.files.test}`, buffer: test }, format: formatOfMeta(meta),
  }, [train, test]);
  handedOver(set);
  dataKey = `images:${meta.id}`;
  failed = false;
  hooks.clearErrors('data');
  // The image grid draws 3 x 32 x 32 records; other shapes keep the placeholder for now.
  sample = meta.channels === 3 && meta.height === 32 && meta.width === 32 ? { ...reply.sample, classNames: meta.classNames } : null;
  if (sample) {
    renderImageGrid($('image-grid'), sample, null);
    $('image-grid').classList.remove('placeholder');
  }
  hooks.log(`# Data: your images (${name}), ${meta.classes} classes, ${reply.trainCount.toLocaleString('en')} training and ${reply.testCount.toLocaleString('en')} test images of ${meta.channels}x${meta.height}x${meta.width} (Wasm memory ${formatBytes(reply.wasmBytes)})`, 'log-info');
}

/** Errors name the file by its URL when it was fetched, by its name when it was dropped. */
function nameOf(key, file) {
  return key.startsWith('url:') ? new URL(file, key.slice(4)).href : file;
}

async function loadFromUrl(base) {
  const controller = new AbortController();
  abortLoad = () => controller.abort();
  const cacheWrites = []; // training starts without waiting for them
  const onProgress = progressRows();
  try {
    const files = await fetchFiles(base, { onProgress, signal: controller.signal, cacheWrites });
    await sendData(files, `url:${base}`);
  } catch (error) {
    onProgress.fail(error);
    if (error.name !== 'AbortError') failed = true;
    // A file the engine refused must not come back from the cache on the next try: let the
    // writes finish, then remove what they wrote.
    if (error instanceof WorkerError && error.scope === 'data') {
      await Promise.all(cacheWrites);
      await clearCache(base).catch(() => {});
    }
    throw error;
  } finally {
    abortLoad = null;
    Promise.all(cacheWrites).then(() => updateCacheSize(base));
  }
}

// The Data panel: gets the chosen data set's files (web/datasets.js) into the training worker,
// fetched from the data URL (per-file progress, kept in Cache Storage by data-source.js) or
// dropped/chosen by the user, converted to the engine's records, and shows what it has: progress
// rows that end in "failed" or "not loaded" rather than "waiting", the bytes stored in this
// browser, and the files in use. The page gives it its hooks once.
import * as P from './protocol.js';
import { DATASETS, recordFiles, detectDataset, plainNameOf, DatasetError } from './datasets.js';
import { fetchFiles, readLocalFiles, clearCache, cachedBytes, cacheAvailable, allCached, DataError } from './data-source.js';
import { renderImageGrid } from './visuals.js';
import { WorkerError } from './worker-client.js';
import { formatBytes } from './format.js';
import { setupImagePanel, imageRecords, handedOver } from './image-panel.js';
import { formatOfMeta } from './image-records.js';

const $ = (id) => document.getElementById(id);

let hooks = null;        // { request, log, showError, clearErrors, onChange, dataset, onDataset, busy }
let dataKey = null;      // what the worker holds: 'url:<data set>:<base>', 'local:<n>' or 'images:<id>'
let localFiles = null;   // { key, files, names, dataset } when chosen files are the data source
let loaded = DATASETS.cifar10; // the data set the worker holds (or last held)
let localLoads = 0;
let abortLoad = null;
let failed = false;      // the last attempt to get the data failed
let sample = null;       // the first test images and labels, for the grid
let lastBase = null;     // the data URL last checked against the cache
const cachedBases = new Set(); // data URLs whose six files are all in Cache Storage
let imageSet = null;     // { meta } of your images (image-panel.js) when they are the data source

/** hooks: request (worker-client), log(line, className), showError(message, scope),
 * clearErrors(scope), onChange() after anything Start's description depends on changed,
 * dataset() the data set chosen in the settings, onDataset(dataset) when dropped files are
 * another data set's (the picker follows them), busy() (a run or a load is going on: a dropped
 * image folder waits). */
export function setupDataPanel(pageHooks) {
  hooks = pageHooks;
  showDropHint(hooks.dataset());
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
      hooks.onFormat?.(); // the model card checks the description against the images' shape
    },
    showError: (message) => hooks.showError(message, 'data'),
    clearErrors: () => hooks.clearErrors('data'),
    busy: () => hooks.busy?.() ?? false,
  }).catch((error) => hooks.showError(`Your stored images could not be read: ${error.message}`, 'data'));
}

export const dataFailed = () => failed;
export const dataSample = () => sample;
/** The class names of the data in the worker (the chosen set's before any is loaded). */
export const dataClassNames = () => (imageSet ? imageSet.meta.classNames : (dataKey ? loaded : hooks.dataset()).classNames);
/** The records' format of your images when they are the source (null otherwise): the model card checks against it. */
export const imageSetFormat = () => (imageSet ? formatOfMeta(imageSet.meta) : null);

/** The drop zone names the chosen data set's files. */
export function showDropHint(dataset) {
  $('drop-zone').title = `${dataset.title}: ${dataset.archive ? `${dataset.archive}, or its files ` : ''}${dataset.files.join(', ')}${dataset.gzip ? ' (gzipped or not)' : ''}`;
}
export const usingLocalFiles = () => localFiles !== null;

/** The worker was lost with its data: the next run loads it again. */
export function forgetWorkerData() { dataKey = null; }

/** Stops a download in progress. */
export function abortDataLoad() { abortLoad?.(); }

/**
 * Another data set was chosen: files dropped for one that shares their names (MNIST and
 * Fashion-MNIST, CIFAR-100's two label sets) are read again as the new one; other files no longer
 * apply, and the data URL is used.
 */
export function chooseDataset(dataset) {
  if (!localFiles) return;
  if (localFiles.dataset.files.join() !== dataset.files.join()) {
    useDataUrl();
    return;
  }
  localFiles = { ...localFiles, dataset, key: `local:${++localLoads}` };
  $('local-data').textContent = `Using your files (${localFiles.names.join(', ')}) as ${dataset.title}. Edit the data URL to fetch from there instead.`;
}

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
  return localFiles ? { kind: 'local', names: localFiles.names, dataset: localFiles.dataset.name } : { kind: 'url', url: settings.data, dataset: settings.dataset ?? 'cifar10' };
}

/** A source's data set (a run saved before there was a choice: CIFAR-10). */
const datasetOf = (source) => DATASETS[source.dataset] ?? DATASETS.cifar10;
const urlKey = (dataset, base) => `url:${dataset.name}:${base}`;

/** What Start does for the data from `base`, for the first screen: { text, download }. */
export function describeDataFor(base, dataset = hooks.dataset()) {
  if (imageSet) {
    const m = imageSet.meta;
    return { text: `uses your images (${m.source || 'dropped'}: ${m.classes} classes, ${m.trainCount.toLocaleString('en')} training images, ${m.channels}×${m.height}×${m.width})`, download: false };
  }
  if (localFiles) return { text: `uses your files (${localFiles.names.join(', ')})`, download: false };
  const title = dataset.title;
  if (dataKey === urlKey(dataset, base)) return { text: `uses the ${title} data already loaded`, download: false };
  const url = new URL(base);
  const where = url.origin === location.origin ? `this site (${url.pathname})` : `${url.host}${url.pathname}`;
  if (cachedBases.has(urlKey(dataset, base))) return { text: `uses the ${title} copy kept in this browser (from ${where})`, download: false };
  const count = ['no', 'one', 'two', 'three', 'four', 'five', 'six'][dataset.files.length];
  return { text: `downloads ${title} (${Math.round(dataset.downloadBytes / 2 ** 20)} MB, ${count} files) from ${where}, once: this browser keeps a copy`, download: true };
}

/** Gets `source`'s data into the worker unless it holds it already. */
export async function ensureData(source) {
  if (source.kind === 'images') {
    if (dataKey !== `images:${source.id}`) await sendImageSet(await imageRecords(source.id));
    return;
  }
  if (source.kind === 'url') {
    const dataset = datasetOf(source);
    if (dataKey !== urlKey(dataset, source.url)) await loadFromUrl(source.url, dataset);
    return;
  }
  if (localFiles && dataKey === localFiles.key) return;
  if (!localFiles) {
    throw new Error(`This run trained on files you chose (${source.names.join(', ')}). Choose or drop them again, then press Resume run.`);
  }
  const { dataset } = localFiles;
  const files = await readLocalFiles(localFiles.files, { dataset, onProgress: progressRows(dataset) });
  await sendData(files, localFiles.key, dataset);
}

/**
 * The data set of dropped files: the chosen one when they include any of its files (or its
 * archive), else the one their names say (CIFAR-100 fine and MNIST first among twins).
 */
function datasetOfFiles(files) {
  const chosen = hooks.dataset();
  const names = files.map((f) => f.name.replace(/^.*[\\/]/, ''));
  const archive = names.find((n) => /\.(tar\.gz|tgz|tar)$/i.test(n));
  if (archive) {
    if (chosen.archive === archive.replace(/\.(tgz|tar)$/i, '.tar.gz')) return chosen;
    return Object.values(DATASETS).find((d) => d.archive && archive.startsWith(d.archive.replace(/\.tar\.gz$/, ''))) ?? chosen;
  }
  if (names.some((n) => plainNameOf(chosen, n))) return chosen;
  try {
    return detectDataset('the dropped files', names).dataset;
  } catch (error) {
    if (error instanceof DatasetError) return chosen; // the reader then names what is missing
    throw error;
  }
}

/** Dropped or chosen files: read, checked by the engine, then the data source. Throws on failure. */
export async function loadLocalFiles(fileList) {
  const dataset = datasetOfFiles([...fileList]);
  if (dataset !== hooks.dataset()) hooks.onDataset(dataset);
  const onProgress = progressRows(dataset);
  try {
    const files = await readLocalFiles(fileList, { dataset, onProgress });
    const key = `local:${++localLoads}`;
    await sendData(files, key, dataset);
    // The File objects stay readable for this page's life: a new worker can be given them again.
    const names = [...fileList].map((f) => f.name);
    localFiles = { key, files: [...fileList], names, dataset };
    imageSet = null; // the dropped files replace your images as the source (they stay stored)
    $('image-use').hidden = false;
    $('local-data').textContent = `Using your files (${names.join(', ')}) as ${dataset.title}. Edit the data URL to fetch from there instead.`;
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
  const dataset = hooks.dataset();
  const key = urlKey(dataset, base);
  try {
    if (await allCached(base, dataset)) cachedBases.add(key);
    else cachedBases.delete(key);
  } catch {
    cachedBases.delete(key);
  }
  hooks.onChange();
}

/**
 * One row per file with a labelled progress bar; returns onProgress, with .fail(error) to mark
 * the file that failed and the others as not loaded (never back to "waiting").
 */
function progressRows(dataset) {
  const list = $('file-progress');
  list.replaceChildren();
  const rows = new Map();
  for (const name of dataset.files) {
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

/**
 * Hands the data set's records to the worker, which validates them with the C reader. `files`:
 * Map(plain name -> Uint8Array); IDX files are converted to records here (a bad one is named).
 */
async function sendData(files, key, dataset) {
  const named = new Map([...files].map(([name, bytes]) => [name, { name: nameOf(key, name), bytes }]));
  let records;
  try {
    records = recordFiles(dataset, named);
  } catch (error) {
    throw error instanceof DatasetError ? new DataError(error.message, { bad: true }) : error;
  }
  // Each record file goes over in its own buffer (a copy only when it is a view of a larger one).
  const own = ({ name, bytes }) => ({ name, buffer: bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer });
  const train = records.train.map(own);
  const [test] = records.test.map(own);
  dataKey = null;
  const reply = await hooks.request(P.LOAD_DATA, { train, test, format: dataset.format }, [...train, test].map((f) => f.buffer));
  dataKey = key;
  loaded = dataset;
  sample = reply.sample;
  failed = false;
  hooks.clearErrors('data');
  renderImageGrid($('image-grid'), sample, null, dataset.classNames);
  $('image-grid').classList.remove('placeholder');
  const f = dataset.format;
  hooks.log(`# Data: ${reply.trainCount.toLocaleString('en')} training and ${reply.testCount.toLocaleString('en')} test images of ${dataset.title} (${f.channels}x${f.height}x${f.width}, ${f.classes} classes)`, 'log-info');
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
  sample = { ...reply.sample, classNames: meta.classNames };
  renderImageGrid($('image-grid'), sample, null, meta.classNames);
  $('image-grid').classList.remove('placeholder');
  hooks.log(`# Data: your images (${name}), ${meta.classes} classes, ${reply.trainCount.toLocaleString('en')} training and ${reply.testCount.toLocaleString('en')} test images of ${meta.channels}x${meta.height}x${meta.width} (Wasm memory ${formatBytes(reply.wasmBytes)})`, 'log-info');
}

/** Errors name the file by its URL when it was fetched, by its name when it was dropped. */
function nameOf(key, file) {
  return key.startsWith('url:') ? new URL(file, key.replace(/^url:[^:]*:/, '')).href : file;
}

async function loadFromUrl(base, dataset) {
  const controller = new AbortController();
  abortLoad = () => controller.abort();
  const cacheWrites = []; // training starts without waiting for them
  const onProgress = progressRows(dataset);
  try {
    const files = await fetchFiles(base, { dataset, onProgress, signal: controller.signal, cacheWrites });
    await sendData(files, urlKey(dataset, base), dataset);
  } catch (error) {
    onProgress.fail(error);
    if (error.name !== 'AbortError') failed = true;
    // A file the engine refused must not come back from the cache on the next try: let the
    // writes finish, then remove what they wrote.
    if ((error instanceof WorkerError && error.scope === 'data') || error.bad) {
      await Promise.all(cacheWrites);
      await clearCache(base, dataset).catch(() => {});
    }
    throw error;
  } finally {
    abortLoad = null;
    Promise.all(cacheWrites).then(() => updateCacheSize(base));
  }
}

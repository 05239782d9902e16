// The page: settings, controls and the live view. Training runs in worker.js; this file only sends
// it messages (protocol.js) and draws what comes back. It never touches Wasm memory.
import { wasmSimdSupported } from './engine.js';
import { ALL_FILES, CLASS_NAMES, OFFICIAL_ARCHIVE } from './cifar.js';
import { formatLoss, formatAccuracy, TRAINING_DEFAULTS } from './trainer.js';
import * as P from './protocol.js';
import { fetchFiles, readLocalFiles, clearCache, cachedBytes, cacheAvailable } from './data-source.js';
import { renderPerClass, renderConfusion, renderImageGrid, renderFilters } from './visuals.js';
import { loadSavedRun, saveRun, clearSavedRun } from './store.js';
import { readBlob, WEIGHTS_RULE, CHECKPOINT_RULE } from './file-limits.js';

const $ = (id) => document.getElementById(id);

// Page options that are not settings of a run: kept in the URL, never written by the page.
const PAGE_QUERY = new URLSearchParams(location.search);
/** debug=1 shows a button that crashes the training worker, to try the recovery; with it,
 * debugStepMs=N makes the worker wait N ms after each step (tests use it to act mid-run). */
const DEBUG = PAGE_QUERY.get('debug') === '1';
const DEBUG_STEP_MS = DEBUG ? Number(PAGE_QUERY.get('debugStepMs')) || 0 : 0;
/** autosaveSeconds=N: seconds of training between two checkpoints kept in IndexedDB. */
const AUTOSAVE_SECONDS = (() => {
  const value = Number(PAGE_QUERY.get('autosaveSeconds'));
  return PAGE_QUERY.has('autosaveSeconds') && Number.isFinite(value) && value > 0 ? value : P.AUTOSAVE_SECONDS;
})();

// ---------------------------------------------------------------- settings

const DEFAULT_WORKERS = Math.max(1, (navigator.hardwareConcurrency || 2) - 1);
const DEFAULTS = {
  epochs: String(TRAINING_DEFAULTS.epochs), batch: String(TRAINING_DEFAULTS.batchSize), lr: String(TRAINING_DEFAULTS.lr),
  seed: String(TRAINING_DEFAULTS.seed), limitTrain: '', limitTest: '', workers: String(DEFAULT_WORKERS),
  data: 'data/cifar-10-batches-bin/',
};
const FIELDS = Object.keys(DEFAULTS);
// Always written to the URL, so a copied link reproduces the run even if the defaults change.
const ALWAYS_IN_URL = ['epochs', 'batch', 'lr', 'seed'];

function integerField(label, min, max, { optional = false } = {}) {
  return (text) => {
    if (optional && text === '') return { value: null };
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      return { error: `${label}: enter a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}${optional ? ', or leave empty for all' : ''}.` };
    }
    return { value: Number(text) };
  };
}

const VALIDATORS = {
  epochs: integerField('Epochs', 1, 1000),
  batch: integerField('Batch size', 1, 4096),
  // No upper bound: a rate that makes training diverge is caught by the divergence guard.
  lr: (text) => {
    const value = Number(text);
    if (text === '' || !Number.isFinite(value) || value <= 0) return { error: 'Learning rate: enter a positive number such as 0.001.' };
    return { value };
  },
  seed: integerField('Seed', 0, 0xffffffff),
  limitTrain: integerField('Training images', 1, 50000, { optional: true }),
  limitTest: integerField('Test images', 1, 10000, { optional: true }),
  workers: integerField('Workers', 1, 64),
  data: (text) => {
    if (text === '') return { error: `Data URL: enter the folder holding ${ALL_FILES.join(', ')}.` };
    let url;
    try {
      url = new URL(text.endsWith('/') ? text : `${text}/`, document.baseURI);
    } catch {
      return { error: `Data URL: '${text}' is not a URL.` };
    }
    // What the page's Content-Security-Policy (connect-src in index.html) lets it fetch.
    const local = ['localhost', '127.0.0.1'].includes(url.hostname);
    if (url.origin !== location.origin && url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) {
      return { error: 'Data URL: this page fetches data from its own site, over https, or from localhost only.' };
    }
    return { value: url.href };
  },
};

function fieldText(name) { return $(name).value.trim(); }

/** Validates every field, showing each message next to its field; returns the values or null. */
function readSettings() {
  const values = {};
  let ok = true;
  for (const name of FIELDS) {
    const { value, error } = VALIDATORS[name](fieldText(name));
    $(`${name}-error`).textContent = error ?? '';
    $(name).setAttribute('aria-invalid', error ? 'true' : 'false');
    if (error) ok = false;
    else values[name] = value;
  }
  return ok ? values : null;
}

function applyQuery() {
  const query = new URLSearchParams(location.search);
  for (const name of FIELDS) $(name).value = query.get(name) ?? DEFAULTS[name];
}

/** Mirrors the fields into the address bar, keeping parameters this page doesn't own. */
function writeQuery() {
  const query = new URLSearchParams(location.search);
  for (const name of FIELDS) {
    const text = fieldText(name);
    if (ALWAYS_IN_URL.includes(name) || (text !== DEFAULTS[name] && text !== '')) query.set(name, text);
    else query.delete(name);
  }
  history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`);
}

// ---------------------------------------------------------------- state and errors

let state = 'idle'; // idle | loading | running | paused | stopped | done | unsupported
let hasModel = false;
let dataKey = null;        // what the worker holds: 'url:<base>' or 'local:<n>'
let localFiles = null;     // { key, names } when dropped files are the data source
let abortLoading = null;
let sample = null;         // first test images and labels, for the grid
let runInfo = null;
// The run in progress and what its checkpoints are saved with: { settings, source }.
let currentRun = null;
let runHistory = [];          // this run's loss and accuracy lines so far: { kind: 'loss' | 'epoch', ... }
let lastEpoch = null;      // the newest EPOCH message (confusion matrix, predictions, filters)
// The run that can be resumed, as kept in IndexedDB: { savedAt, checkpoint, runState, settings,
// source, history, lastEpoch, status, message, name, accuracy }. status: 'running' | 'paused' |
// 'stopped' | 'diverged' | 'failed' | 'crashed' | 'loaded'.
let savedRun = null;

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  const busy = next === 'loading' || next === 'running' || next === 'paused';
  $('start').disabled = busy || next === 'unsupported';
  $('start').textContent = next === 'done' || next === 'stopped' ? 'Start again' : 'Start';
  $('pause').disabled = !(next === 'running' || next === 'paused');
  $('pause').textContent = next === 'paused' ? 'Resume' : 'Pause';
  $('stop').disabled = !busy;
  $('download-weights').disabled = !hasModel || next === 'loading' || next === 'unsupported';
  $('download-checkpoint').disabled = !(hasModel || savedRun) || next === 'loading' || next === 'unsupported';
  const loadDisabled = busy || next === 'unsupported';
  for (const what of ['weights', 'checkpoint']) {
    $(`load-${what}`).disabled = loadDisabled;
    $(`load-${what}-label`).classList.toggle('disabled', loadDisabled);
  }
  for (const name of FIELDS) $(name).disabled = busy;
  $('data-files').disabled = busy || next === 'unsupported';
  $('drop-zone').classList.toggle('disabled', busy);
  const labels = {
    idle: 'Ready', loading: 'Loading data…', running: 'Training', paused: 'Paused', stopped: 'Stopped',
    done: 'Finished', unsupported: 'Unsupported browser',
  };
  $('status').textContent = labels[next];
  $('status').className = `status status-${next}`;
  updateResumeOffer();
}

function showError(message) {
  const item = document.createElement('li');
  const text = document.createElement('span');
  text.textContent = message;
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.className = 'small dismiss';
  dismiss.textContent = 'Dismiss';
  dismiss.addEventListener('click', () => {
    item.remove();
    $('errors').hidden = $('error-list').children.length === 0;
  });
  item.append(text, dismiss);
  $('error-list').appendChild(item);
  $('errors').hidden = false;
  log(`error: ${message}`, 'log-error');
}

function clearErrors() {
  $('error-list').replaceChildren();
  $('errors').hidden = true;
}

function log(line, className) {
  const pre = $('log');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const span = document.createElement('span');
  if (className) span.className = className;
  span.textContent = `${line}\n`;
  pre.appendChild(span);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// ---------------------------------------------------------------- the worker

let worker = null;
let nextId = 1;
const pending = new Map();

/** An ERROR reply from the worker; `scope` says what failed ('data', 'run', 'weights'). */
class WorkerError extends Error {
  constructor({ scope, message }) {
    super(message);
    this.scope = scope;
  }
}

function ensureWorker() {
  if (worker) return worker;
  const debugQuery = DEBUG_STEP_MS ? `?debug=1&stepMs=${DEBUG_STEP_MS}` : '?debug=1';
  worker = new Worker(new URL(DEBUG ? `./worker.js${debugQuery}` : './worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = ({ data }) => {
    if (data.type === P.STATE) onState(data.state);
    if (data.replyTo) {
      const request = pending.get(data.replyTo);
      pending.delete(data.replyTo);
      if (data.type === P.ERROR) request?.reject(new WorkerError(data));
      else request?.resolve(data);
    } else {
      onEvent(data);
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    const where = event.filename ? ` (${event.filename}:${event.lineno})` : '';
    workerLost(`The training worker crashed: ${event.message || 'its script failed to load (worker.js or a module it imports)'}${where}.`, true);
  };
  worker.onmessageerror = () => workerLost('A message from the training worker could not be read (messageerror).');
  return worker;
}

/**
 * The worker is gone with its data and model: say so, keep the run's last checkpoint on offer and
 * start a new worker on the next request (files the user chose are read again from their File
 * objects, fetched data comes from the browser's cache).
 */
function workerLost(message, crashed = false) {
  worker?.terminate();
  worker = null;
  dataKey = null;
  hasModel = false;
  for (const request of pending.values()) request.reject(new WorkerError({ scope: 'lost', message }));
  pending.clear();
  const wasTraining = ['running', 'paused', 'loading'].includes(state) && currentRun;
  if (crashed && wasTraining && savedRun) {
    updateSavedRun({ status: 'crashed', message });
    message += ` The last checkpoint (${describePosition(savedRun.runState)}) is kept: Resume continues from it.`;
  }
  currentRun = null;
  showError(message);
  setState(hasModel || savedRun ? 'stopped' : 'idle');
}

/** Shows a failed request's message, except when the worker was lost (already reported). */
function showFailure(error, prefix = '') {
  if (error.scope !== 'lost') showError(`${prefix}${error.message}`);
}

function request(type, payload = {}, transfer = []) {
  const w = ensureWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ type, id, ...payload }, transfer);
  });
}

function onState(next) {
  if (next === 'done' && runInfo) {
    log(`# Finished in ${formatDuration((performance.now() - runInfo.startedAt) / 1000)}`, 'log-info');
  }
  if (next === 'done') {
    // Nothing left to resume; Download checkpoint still gives the finished run's.
    currentRun = null;
    discardSavedRun();
    $('autosave-info').textContent = 'Finished: the autosaved checkpoint is no longer needed and was removed.';
  }
  if (next === 'stopped') currentRun = null;
  if (next === 'stopped' && state === 'stopped') return;
  setState(next);
}

function onEvent(message) {
  switch (message.type) {
    case P.PROGRESS: return showProgress(message);
    case P.LOSS: return showLoss(message);
    case P.EPOCH: return showEpoch(message);
    case P.CHECKPOINT: return keepCheckpoint(message);
    case P.ERROR: return onWorkerError(message);
    default: return undefined;
  }
}

// ---------------------------------------------------------------- data

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
    const text = document.createElement('span');
    text.className = 'file-bytes';
    text.textContent = 'waiting';
    item.append(label, bar, text);
    list.appendChild(item);
    rows.set(name, { item, bar, text });
  }
  return (name, loaded, total, fromCache) => {
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
}

/** Hands the six files to the worker, which validates them with the C reader. */
async function sendData(files, key) {
  const buffers = ALL_FILES.map((name) => files.get(name));
  const train = ALL_FILES.slice(0, 5).map((name, i) => ({ name: nameOf(key, name), buffer: buffers[i] }));
  const test = { name: nameOf(key, ALL_FILES[5]), buffer: buffers[5] };
  dataKey = null;
  const reply = await request(P.LOAD_DATA, { train, test }, buffers);
  dataKey = key;
  sample = reply.sample;
  renderImageGrid($('image-grid'), sample, null);
  $('image-grid').classList.remove('placeholder');
  log(`# Data: ${reply.trainCount.toLocaleString('en')} training and ${reply.testCount.toLocaleString('en')} test images`, 'log-info');
}

/** Errors name the file by its URL when it was fetched, by its name when it was dropped. */
function nameOf(key, file) {
  return key.startsWith('url:') ? new URL(file, key.slice(4)).href : file;
}

async function loadFromUrl(base) {
  const controller = new AbortController();
  abortLoading = () => controller.abort();
  const cacheWrites = []; // training starts without waiting for them
  try {
    const files = await fetchFiles(base, { onProgress: progressRows(), signal: controller.signal, cacheWrites });
    await sendData(files, `url:${base}`);
  } catch (error) {
    // A file the engine refused must not come back from the cache on the next try: let the
    // writes finish, then remove what they wrote.
    if (error instanceof WorkerError && error.scope === 'data') {
      await Promise.all(cacheWrites);
      await clearCache(base).catch(() => {});
    }
    throw error;
  } finally {
    abortLoading = null;
    Promise.all(cacheWrites).then(updateCacheSize);
  }
}

async function loadLocal(fileList) {
  if (!fileList.length || (state !== 'idle' && state !== 'stopped' && state !== 'done')) return;
  setState('loading');
  try {
    const files = await readLocalFiles(fileList, { onProgress: progressRows() });
    const key = `local:${nextId}`;
    await sendData(files, key);
    // The File objects stay readable for this page's life: a new worker can be given them again.
    const names = [...fileList].map((f) => f.name);
    localFiles = { key, files: [...fileList], names };
    $('local-data').textContent = `Using your files (${names.join(', ')}). Edit the data URL to fetch from there instead.`;
    $('local-data').hidden = false;
  } catch (error) {
    showFailure(error);
  } finally {
    setState(state === 'loading' ? (hasModel ? 'stopped' : 'idle') : state);
  }
}

async function updateCacheSize() {
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
}

/** Where the data comes from: the URL in the settings, or the files the user chose. */
function currentSource(settings) {
  return localFiles ? { kind: 'local', names: localFiles.names } : { kind: 'url', url: settings.data };
}

/** Gets `source`'s data into the worker unless it holds it already. */
async function ensureData(source) {
  if (source.kind === 'url') {
    if (dataKey !== `url:${source.url}`) await loadFromUrl(source.url);
    return;
  }
  if (localFiles && dataKey === localFiles.key) return;
  if (!localFiles) {
    throw new Error(`This run trained on files you chose (${source.names.join(', ')}). Choose or drop them again, then press Resume.`);
  }
  const files = await readLocalFiles(localFiles.files, { onProgress: progressRows() });
  await sendData(files, localFiles.key);
}

// ---------------------------------------------------------------- training

async function start() {
  const settings = readSettings();
  if (!settings) {
    $('status').textContent = 'Fix the settings';
    return;
  }
  clearErrors();
  setState('loading');
  try {
    const source = currentSource(settings);
    await ensureData(source);
    if (state !== 'loading') return; // stopped while loading
    resetRunView(settings);
    runHistory = [];
    lastEpoch = null;
    currentRun = { settings, source };
    const started = await request(P.START, {
      epochs: settings.epochs, batchSize: settings.batch, lr: settings.lr, seed: settings.seed,
      limitTrain: settings.limitTrain, limitTest: settings.limitTest, workers: settings.workers,
      autosaveSeconds: AUTOSAVE_SECONDS,
    });
    runStarted(started);
  } catch (error) {
    currentRun = null;
    if (error.name !== 'AbortError') showFailure(error);
    if (state === 'loading') setState(hasModel ? 'stopped' : 'idle');
  }
}

/** After RUN_STARTED, fresh or resumed. */
function runStarted(started) {
  hasModel = true;
  runInfo = { ...started, startedAt: performance.now() };
  if (state !== 'loading') { // Stop was pressed while the run was starting
    request(P.STOP).catch(() => {});
    return;
  }
  $('counts').textContent = `${started.trainCount.toLocaleString('en')} / ${started.testCount.toLocaleString('en')}`;
  const workers = `${started.workersUsed} worker${started.workersUsed === 1 ? '' : 's'}`;
  const what = `${started.epochs} epoch(s), batch ${started.batchSize}, lr ${started.lr}, seed ${started.seed}, ${workers}: ${started.stepsPerEpoch} steps per epoch`;
  if (started.resumed) {
    log(`# Resumed at epoch ${started.resumed.epoch + 1}, step ${started.resumed.step}: ${what}`, 'log-info');
  } else {
    log(`# Training ${what}${started.fromWeights ? `, starting from ${started.fromWeights}` : ''}`, 'log-info');
  }
}

// ---------------------------------------------------------------- checkpoints and resuming

/** A CHECKPOINT event: becomes the saved run, with everything the page needs to continue it. */
function keepCheckpoint({ reason, runState, buffer }) {
  if (!currentRun) return;
  const status = { stop: 'stopped', pause: 'paused' }[reason] ?? 'running';
  savedRun = {
    savedAt: Date.now(), checkpoint: new Uint8Array(buffer), runState,
    settings: { ...currentRun.settings, lr: runState.adam.lr }, source: currentRun.source,
    history: runHistory.slice(), lastEpoch, status, message: null, name: null, accuracy: null,
  };
  persistSavedRun();
  $('autosave-info').textContent = `Checkpoint kept in this browser: ${describePosition(runState)}, ${formatTime(savedRun.savedAt)}.`;
}

function updateSavedRun(changes) {
  if (!savedRun) return;
  savedRun = { ...savedRun, ...changes };
  persistSavedRun();
}

let storageWarned = false;

function persistSavedRun() {
  saveRun(savedRun).catch((error) => {
    if (storageWarned) return;
    storageWarned = true;
    showError(`Checkpoints cannot be kept in this browser's storage (${error.message}): a reload or a closed tab loses the run. Download checkpoint keeps one by hand.`);
  });
}

function discardSavedRun() {
  savedRun = null;
  clearSavedRun().catch(() => {});
  setState(state);
}

/** An ERROR event: a run that failed mid-way; its last checkpoint is offered (status set here). */
function onWorkerError({ message, scope, diverged }) {
  showError(message);
  if (scope !== 'run' || !currentRun || !savedRun) return;
  updateSavedRun({ status: diverged ? 'diverged' : 'failed', message });
}

function stepsPerEpochOf(runState) {
  return Math.ceil(runState.trainCount / runState.batchSize);
}

function describePosition(runState) {
  return `epoch ${Math.min(runState.epoch + 1, runState.epochs)}/${runState.epochs}, step ${runState.step}/${stepsPerEpochOf(runState)}`;
}

const OFFER_TITLES = {
  running: 'A run was interrupted', paused: 'A paused run was left', stopped: 'The run was stopped',
  diverged: 'Training diverged', failed: 'Training stopped on an error', crashed: 'The training worker crashed',
  loaded: 'Checkpoint loaded',
};

/** Shows the saved run (position, accuracy so far, why it stopped) whenever nothing is running. */
function updateResumeOffer() {
  const show = Boolean(savedRun) && !['loading', 'running', 'paused', 'unsupported'].includes(state);
  $('resume-offer').hidden = !show;
  if (!show) return;
  const r = savedRun;
  const epochs = r.history.filter((e) => e.kind === 'epoch');
  const best = epochs.at(-1);
  let accuracy = 'no test accuracy yet';
  if (best) accuracy = `test accuracy so far ${(100 * best.test_accuracy).toFixed(2)}% (after epoch ${best.epoch})`;
  else if (r.accuracy != null) accuracy = `test accuracy ${(100 * r.accuracy).toFixed(2)}%`;
  $('resume-title').textContent = r.status === 'loaded' ? `Checkpoint ${r.name} loaded` : OFFER_TITLES[r.status] ?? 'A saved run';
  $('resume-summary').textContent = `Epoch ${Math.min(r.runState.epoch + 1, r.runState.epochs)} of ${r.runState.epochs}, step ${r.runState.step} of ${stepsPerEpochOf(r.runState)} · ${accuracy} · saved ${formatTime(r.savedAt)}`;
  const data = r.source.kind === 'url' ? r.source.url : `your files (${r.source.names.join(', ')})`;
  const why = {
    running: 'It was training when this page was closed or reloaded.',
    paused: 'It was paused when this page was closed or reloaded.',
    stopped: 'Resume continues it from the step where it stopped.',
    diverged: 'Resume continues from the last good checkpoint, before the step that diverged, with the learning rate set here.',
    failed: 'Resume continues from the last checkpoint.',
    crashed: 'Resume starts a new worker and continues from the last checkpoint.',
    loaded: 'Resume continues this run exactly where the checkpoint was taken.',
  }[r.status] ?? '';
  $('resume-detail').textContent = `${why} Data: ${data}. Batch ${r.settings.batch}, lr ${r.settings.lr}, seed ${r.settings.seed}, ${r.settings.workers} worker(s).`;
  const lrRow = r.status === 'diverged';
  if (lrRow && $('resume-lr-row').hidden) $('resume-lr').value = String(r.settings.lr / 10);
  $('resume-lr-row').hidden = !lrRow;
}

/** Resume: the saved run's data, settings and history back in the page, its checkpoint in the worker. */
async function resumeSaved() {
  const record = savedRun;
  if (!record) return;
  let { lr } = record.settings;
  if (record.status === 'diverged') {
    const checked = VALIDATORS.lr($('resume-lr').value.trim());
    $('resume-lr-error').textContent = checked.error ?? '';
    if (checked.error) return;
    lr = checked.value;
  }
  const settings = { ...record.settings, lr };
  showSettings(settings, record.source);
  clearErrors();
  setState('loading');
  try {
    await ensureData(record.source);
    if (state !== 'loading') return;
    restoreRunView(record, settings);
    currentRun = { settings, source: record.source };
    const checkpoint = record.checkpoint.slice(); // the record keeps its copy until the next save
    const started = await request(P.START, {
      epochs: settings.epochs, lr, limitTest: settings.limitTest, autosaveSeconds: AUTOSAVE_SECONDS,
      checkpoint: { name: record.name ?? 'the saved checkpoint', buffer: checkpoint.buffer },
    }, [checkpoint.buffer]);
    runStarted(started);
  } catch (error) {
    currentRun = null;
    if (error.name !== 'AbortError') showFailure(error, 'Could not resume: ');
    if (state === 'loading') setState(hasModel ? 'stopped' : 'idle');
  }
}

/** The form and address bar show the settings of the run being resumed. */
function showSettings(settings, source) {
  const text = { ...settings, limitTrain: settings.limitTrain ?? '', limitTest: settings.limitTest ?? '' };
  for (const name of FIELDS) {
    if (name === 'data' && source.kind !== 'url') continue;
    // The default folder goes back into the form as the default text, so the URL stays short.
    const data = source.url === VALIDATORS.data(DEFAULTS.data).value ? DEFAULTS.data : source.url;
    $(name).value = String(name === 'data' ? data : text[name]);
  }
  readSettings();
  writeQuery();
}

/** The log, charts and results as they were when the checkpoint was taken. */
function restoreRunView(record, settings) {
  resetRunView(settings);
  $('log').replaceChildren();
  log(`# Resuming the run saved ${formatTime(record.savedAt)} (${describePosition(record.runState)})`, 'log-info');
  runHistory = record.history.slice();
  lastEpoch = record.lastEpoch;
  for (const e of runHistory) {
    if (e.kind === 'loss') {
      log(formatLoss(e));
      charts?.addLoss(e);
    } else {
      log(formatAccuracy(e));
      charts?.addAccuracy(e);
    }
  }
  updateChartCounts();
  if (lastEpoch) {
    showEvaluation(lastEpoch, `after epoch ${lastEpoch.epoch}`);
    renderFilters($('filters'), lastEpoch.conv1);
    $('filters').classList.remove('placeholder');
  }
  const steps = stepsPerEpochOf(record.runState);
  $('epoch-progress').max = steps;
  $('epoch-progress').value = record.runState.step;
  $('epoch-progress').dataset.globalStep = String(record.runState.epoch * steps + record.runState.step);
  $('progress-label').textContent = `Epoch ${record.runState.epoch + 1}/${settings.epochs} · step ${record.runState.step}/${steps}`;
}

async function downloadCheckpoint() {
  let bytes = savedRun?.checkpoint;
  let runState = savedRun?.runState;
  if (hasModel) {
    try {
      const reply = await request(P.EXPORT_CHECKPOINT);
      bytes = new Uint8Array(reply.buffer);
      runState = reply.runState;
    } catch (error) {
      if (!bytes) return showFailure(error);
    }
  }
  if (!bytes) return undefined;
  saveFile(bytes, 'webtrain-checkpoint.bin');
  $('checkpoint-info').textContent = `Downloaded webtrain-checkpoint.bin (${formatBytes(bytes.byteLength)}): ${describePosition(runState)}.`;
  return undefined;
}

async function loadCheckpoint(file) {
  try {
    const buffer = await readBlob(file, file.name, 'checkpoint', CHECKPOINT_RULE);
    const bytes = new Uint8Array(buffer.slice(0)); // kept for Resume; `buffer` goes to the worker
    const reply = await request(P.LOAD_CHECKPOINT, { name: file.name, buffer }, [buffer]);
    hasModel = true;
    renderFilters($('filters'), reply.conv1);
    $('filters').classList.remove('placeholder');
    const e = reply.evaluation;
    if (e) showEvaluation(e, `with ${file.name}`);
    const s = reply.runState;
    const finished = s.epoch >= s.epochs;
    const form = readSettings();
    if (!finished) {
      savedRun = {
        savedAt: Date.now(), checkpoint: bytes, runState: s,
        settings: {
          epochs: s.epochs, batch: s.batchSize, lr: s.adam.lr, seed: s.seed, workers: Math.max(1, s.workers),
          limitTrain: s.trainCount, limitTest: form?.limitTest ?? null, data: form?.data ?? DEFAULTS.data,
        },
        source: currentSource(form ?? { data: DEFAULTS.data }),
        history: [], lastEpoch: null, status: 'loaded', message: null, name: file.name, accuracy: e?.test_accuracy ?? null,
      };
      persistSavedRun();
    }
    const result = e ? ` Test accuracy ${(100 * e.test_accuracy).toFixed(2)}% (${e.correct}/${e.total}).` : '';
    $('checkpoint-info').textContent = `Loaded ${file.name}: ${finished ? `a finished run of ${s.epochs} epoch(s)` : `${describePosition(s)}; Resume continues it`}.${result}`;
    log(`# Loaded checkpoint ${file.name} (${describePosition(s)})${e ? `: ${formatAccuracy(e)}` : ''}`, 'log-info');
    setState(state);
  } catch (error) {
    if (error.scope === 'lost') return;
    showError(`Checkpoint not loaded, the current model is kept. ${error.message}`);
    $('checkpoint-info').textContent = `${file.name} was refused; the current model is kept.`;
  }
}

function resetRunView(settings) {
  charts?.reset(settings.epochs);
  updateChartCounts();
  $('epoch-progress').value = 0;
  $('epoch-progress').dataset.globalStep = '0';
  $('progress-label').textContent = `Epoch 1/${settings.epochs}`;
  $('samples-per-s').textContent = '—';
  $('eta').textContent = '—';
  $('overall').textContent = '0%';
  $('accuracy').textContent = '—';
}

function showProgress(p) {
  const bar = $('epoch-progress');
  bar.max = p.steps;
  bar.value = p.step === 0 && p.globalStep > 0 ? p.steps : p.step;
  bar.dataset.globalStep = String(p.globalStep);
  const epoch = p.step === 0 && p.globalStep > 0 ? Math.min(p.epoch, p.epochs) : p.epoch;
  $('progress-label').textContent = `Epoch ${epoch}/${p.epochs} · step ${p.step === 0 && p.globalStep > 0 ? p.steps : p.step}/${p.steps}`;
  $('samples-per-s').textContent = p.samplesPerSecond ? Math.round(p.samplesPerSecond).toLocaleString('en') : '—';
  $('eta').textContent = p.etaSeconds == null ? '—' : p.globalStep === p.totalSteps ? 'done' : formatDuration(p.etaSeconds);
  $('overall').textContent = `${Math.floor((100 * p.globalStep) / p.totalSteps)}%`;
}

function showLoss(e) {
  runHistory.push({ kind: 'loss', epoch: e.epoch, epochs: e.epochs, step: e.step, steps: e.steps, loss: e.loss });
  log(formatLoss(e));
  charts?.addLoss(e);
  updateChartCounts();
}

function showEpoch(e) {
  runHistory.push({ kind: 'epoch', epoch: e.epoch, epochs: e.epochs, test_accuracy: e.test_accuracy, correct: e.correct, total: e.total, test_loss: e.test_loss });
  lastEpoch = e;
  log(formatAccuracy(e));
  log(`Throughput: training ${e.train_samples_per_s.toFixed(0)} samples/s, evaluation ${e.eval_samples_per_s.toFixed(0)} samples/s (${e.elapsed_s.toFixed(1)} s elapsed)`);
  charts?.addAccuracy(e);
  updateChartCounts();
  showEvaluation(e, `after epoch ${e.epoch}`);
  renderFilters($('filters'), e.conv1);
  $('filters').classList.remove('placeholder');
}

/** Accuracy headline, per-class table, confusion matrix and the image grid's predictions. */
function showEvaluation(e, when) {
  $('accuracy').textContent = `${(100 * e.test_accuracy).toFixed(2)}%`;
  $('accuracy').title = `${e.correct}/${e.total} test images right ${when}`;
  renderPerClass($('per-class'), e.confusion);
  renderConfusion($('confusion'), e.confusion);
  for (const id of ['per-class', 'confusion']) $(id).classList.remove('placeholder');
  if (sample) renderImageGrid($('image-grid'), sample, e.predictions);
}

function updateChartCounts() {
  if (!charts) return;
  $('loss-chart').dataset.points = String(charts.lossPoints);
  $('accuracy-chart').dataset.points = String(charts.accuracyPoints);
}

async function togglePause() {
  try {
    await request(state === 'paused' ? P.RESUME : P.PAUSE);
  } catch (error) {
    showFailure(error);
  }
}

async function stop() {
  if (state === 'loading') {
    abortLoading?.();
    setState(hasModel ? 'stopped' : 'idle');
    return;
  }
  try {
    await request(P.STOP);
    log('# Stopped', 'log-info');
  } catch (error) {
    showFailure(error);
  }
}

// ---------------------------------------------------------------- weights

async function downloadWeights() {
  try {
    const { buffer } = await request(P.EXPORT_WEIGHTS);
    saveFile(buffer, 'webtrain-weights.bin');
    $('weights-info').textContent = `Downloaded webtrain-weights.bin (${formatBytes(buffer.byteLength)}).`;
  } catch (error) {
    showFailure(error);
  }
}

function saveFile(data, name) {
  const url = URL.createObjectURL(new Blob([data], { type: 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function loadWeights(file) {
  const batch = VALIDATORS.batch(fieldText('batch')).value ?? TRAINING_DEFAULTS.batchSize;
  try {
    const buffer = await readBlob(file, file.name, 'weights file', WEIGHTS_RULE);
    const reply = await request(P.LOAD_WEIGHTS, { name: file.name, buffer, batchSize: batch }, [buffer]);
    hasModel = true;
    setState(state);
    renderFilters($('filters'), reply.conv1);
    $('filters').classList.remove('placeholder');
    const e = reply.evaluation;
    if (e) showEvaluation(e, `with ${file.name}`);
    const result = e ? ` Test accuracy ${(100 * e.test_accuracy).toFixed(2)}% (${e.correct}/${e.total}).` : '';
    $('weights-info').textContent = `Loaded ${file.name}; the next Start trains on from these weights.${result}`;
    log(`# Loaded weights from ${file.name}${e ? `: ${formatAccuracy(e)}` : ''}`, 'log-info');
  } catch (error) {
    if (error.scope === 'lost') return;
    showError(`Weights not loaded, the current model is kept. ${error.message}`);
    $('weights-info').textContent = `${file.name} was refused; the current model is kept.`;
  }
}

// ---------------------------------------------------------------- formatting

function formatBytes(n) {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

function formatTime(ms) {
  return new Date(ms).toLocaleTimeString('en-GB');
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// ---------------------------------------------------------------- wiring

let charts = null;

async function loadCharts() {
  try {
    const { createCharts } = await import('./chart.js');
    charts = createCharts($('loss-chart'), $('accuracy-chart'));
    charts.reset(VALIDATORS.epochs(fieldText('epochs')).value ?? TRAINING_DEFAULTS.epochs);
    updateChartCounts();
  } catch (error) {
    showError(`The chart library did not load (${error.message}). Build the site with 'npm run build', which copies uPlot into web/vendor/.`);
  }
}

function wire() {
  $('start').addEventListener('click', start);
  $('pause').addEventListener('click', togglePause);
  $('stop').addEventListener('click', stop);
  $('download-weights').addEventListener('click', downloadWeights);
  $('load-weights').addEventListener('change', (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (file) loadWeights(file);
  });
  $('download-checkpoint').addEventListener('click', downloadCheckpoint);
  $('load-checkpoint').addEventListener('change', (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (file) loadCheckpoint(file);
  });
  $('resume-run').addEventListener('click', resumeSaved);
  $('start-fresh').addEventListener('click', start);
  if (DEBUG) {
    // No reply is registered: the worker answers by dying (or, for a peer, by an ERROR event).
    for (const target of ['worker', 'peer']) {
      $(`debug-crash-${target}`).hidden = false;
      $(`debug-crash-${target}`).addEventListener('click', () => ensureWorker().postMessage({ type: P.DEBUG_CRASH, id: 0, target }));
    }
  }
  $('settings').addEventListener('input', (event) => {
    if (event.target.id === 'data' && localFiles) {
      localFiles = null;
      $('local-data').hidden = true;
    }
    readSettings();
    writeQuery();
  });
  $('settings').addEventListener('submit', (event) => event.preventDefault());
  $('data-files').addEventListener('change', (event) => {
    const files = [...event.target.files];
    event.target.value = '';
    loadLocal(files);
  });
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    loadLocal(event.dataTransfer.files);
  });
  $('clear-cache').addEventListener('click', async () => {
    await clearCache().catch((error) => showError(`Could not clear the stored data: ${error.message}`));
    updateCacheSize();
  });
}

async function main() {
  $('boot-notice').remove();
  applyQuery();
  wire();
  readSettings();
  if (!wasmSimdSupported()) {
    $('unsupported').textContent = 'This browser cannot run webtrain: it does not support WebAssembly SIMD, which the training engine is compiled for. '
      + 'Use a current version of Chrome, Edge, Firefox or Safari (16.4 or later).';
    $('unsupported').hidden = false;
    setState('unsupported');
    return;
  }
  setState('idle');
  $('drop-zone').title = `The six files from ${OFFICIAL_ARCHIVE}: ${ALL_FILES.join(', ')}`;
  $('counts').title = `Classes: ${CLASS_NAMES.join(', ')}`;
  updateCacheSize();
  await loadCharts();
  try {
    savedRun = await loadSavedRun();
  } catch (error) {
    showError(`The saved run could not be read from this browser's storage (${error.message}).`);
  }
  setState(state);
  if (PAGE_QUERY.get('autostart') === '1') {
    // A link with autostart must not silently replace a run that can be resumed.
    if (savedRun) log('# autostart skipped: a saved run can be resumed (or press Start fresh)', 'log-info');
    else start();
  }
}

main().catch((error) => showError(`The page failed to start: ${error.message}`));

// The page: settings, controls and the live view. Training runs in worker.js; this file only sends
// it messages (protocol.js) and draws what comes back. It never touches Wasm memory.
import { wasmSimdSupported } from './engine.js';
import { ALL_FILES, CLASS_NAMES, OFFICIAL_ARCHIVE } from './cifar.js';
import { formatLoss, formatAccuracy, TRAINING_DEFAULTS } from './trainer.js';
import * as P from './protocol.js';
import { fetchFiles, readLocalFiles, clearCache, cachedBytes, cacheAvailable } from './data-source.js';
import { renderPerClass, renderConfusion, renderImageGrid, renderFilters } from './visuals.js';

const $ = (id) => document.getElementById(id);

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
  lr: (text) => {
    const value = Number(text);
    if (text === '' || !Number.isFinite(value) || value <= 0 || value > 10) return { error: 'Learning rate: enter a positive number such as 0.001.' };
    return { value };
  },
  seed: integerField('Seed', 0, 0xffffffff),
  limitTrain: integerField('Training images', 1, 50000, { optional: true }),
  limitTest: integerField('Test images', 1, 10000, { optional: true }),
  workers: integerField('Workers', 1, 64),
  data: (text) => {
    if (text === '') return { error: `Data URL: enter the folder holding ${ALL_FILES.join(', ')}.` };
    try {
      return { value: new URL(text.endsWith('/') ? text : `${text}/`, document.baseURI).href };
    } catch {
      return { error: `Data URL: '${text}' is not a URL.` };
    }
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
  const loadDisabled = busy || next === 'unsupported';
  $('load-weights').disabled = loadDisabled;
  $('load-weights-label').classList.toggle('disabled', loadDisabled);
  for (const name of FIELDS) $(name).disabled = busy;
  $('data-files').disabled = busy || next === 'unsupported';
  $('drop-zone').classList.toggle('disabled', busy);
  const labels = {
    idle: 'Ready', loading: 'Loading data…', running: 'Training', paused: 'Paused', stopped: 'Stopped',
    done: 'Finished', unsupported: 'Unsupported browser',
  };
  $('status').textContent = labels[next];
  $('status').className = `status status-${next}`;
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
  worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
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
    workerLost(`The training worker crashed: ${event.message || 'its script failed to load (worker.js or a module it imports)'}${where}.`);
  };
  worker.onmessageerror = () => workerLost('A message from the training worker could not be read (messageerror).');
  return worker;
}

/** The worker is gone with its data and model: say so and start clean next time. */
function workerLost(message) {
  worker?.terminate();
  worker = null;
  dataKey = null;
  localFiles = null;
  $('local-data').hidden = true;
  hasModel = false;
  for (const request of pending.values()) request.reject(new WorkerError({ scope: 'worker', message }));
  pending.clear();
  showError(message);
  setState('stopped');
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
  if (next === 'stopped' && state === 'stopped') return;
  setState(next);
}

function onEvent(message) {
  switch (message.type) {
    case P.PROGRESS: return showProgress(message);
    case P.LOSS: return showLoss(message);
    case P.EPOCH: return showEpoch(message);
    case P.ERROR: return showError(message.message);
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
  try {
    const files = await fetchFiles(base, { onProgress: progressRows(), signal: controller.signal });
    await sendData(files, `url:${base}`);
  } catch (error) {
    // A file the engine refused must not come back from the cache on the next try.
    if (error instanceof WorkerError && error.scope === 'data') await clearCache(base).catch(() => {});
    throw error;
  } finally {
    abortLoading = null;
    updateCacheSize();
  }
}

async function loadLocal(fileList) {
  if (!fileList.length || (state !== 'idle' && state !== 'stopped' && state !== 'done')) return;
  setState('loading');
  try {
    const files = await readLocalFiles(fileList, { onProgress: progressRows() });
    const key = `local:${nextId}`;
    await sendData(files, key);
    localFiles = { key };
    const names = [...fileList].map((f) => f.name).join(', ');
    $('local-data').textContent = `Using your files (${names}). Edit the data URL to fetch from there instead.`;
    $('local-data').hidden = false;
  } catch (error) {
    showError(error.message);
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
    const key = localFiles ? localFiles.key : `url:${settings.data}`;
    if (dataKey !== key) await loadFromUrl(settings.data);
    if (state !== 'loading') return; // stopped while loading
    resetRunView(settings);
    const started = await request(P.START, {
      epochs: settings.epochs, batchSize: settings.batch, lr: settings.lr, seed: settings.seed,
      limitTrain: settings.limitTrain, limitTest: settings.limitTest, workers: settings.workers,
    });
    hasModel = true;
    runInfo = { ...started, startedAt: performance.now() };
    $('counts').textContent = `${started.trainCount.toLocaleString('en')} / ${started.testCount.toLocaleString('en')}`;
    log(`# Training ${started.epochs} epoch(s), batch ${started.batchSize}, lr ${settings.lr}, seed ${settings.seed}: ${started.stepsPerEpoch} steps per epoch`
      + (started.fromWeights ? `, starting from ${started.fromWeights}` : ''), 'log-info');
    if (settings.workers > started.workersUsed) {
      log(`# ${settings.workers} workers requested; data-parallel training is not implemented yet, so ${started.workersUsed} worker trains`, 'log-info');
    }
  } catch (error) {
    if (error.name !== 'AbortError') showError(error.message);
    if (state === 'loading') setState(hasModel ? 'stopped' : 'idle');
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
  log(formatLoss(e));
  charts?.addLoss(e);
  updateChartCounts();
}

function showEpoch(e) {
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
    showError(error.message);
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
    showError(error.message);
  }
}

// ---------------------------------------------------------------- weights

async function downloadWeights() {
  try {
    const { buffer } = await request(P.EXPORT_WEIGHTS);
    const url = URL.createObjectURL(new Blob([buffer], { type: 'application/octet-stream' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = 'webtrain-weights.bin';
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    $('weights-info').textContent = `Downloaded webtrain-weights.bin (${formatBytes(buffer.byteLength)}).`;
  } catch (error) {
    showError(error.message);
  }
}

async function loadWeights(file) {
  const batch = VALIDATORS.batch(fieldText('batch')).value ?? TRAINING_DEFAULTS.batchSize;
  try {
    const buffer = await file.arrayBuffer();
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
  if (new URLSearchParams(location.search).get('autostart') === '1') start();
}

main().catch((error) => showError(`The page failed to start: ${error.message}`));

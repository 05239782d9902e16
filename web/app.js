// The page: controls, the live view and the state machine that ties the panels together. Training
// runs in worker.js; this file only sends it messages (protocol.js) and draws what comes back. It
// never touches Wasm memory. Panels live in their own modules: settings.js (the run's fields),
// dialog.js (asking before losing work), data-panel.js, data-source.js and data-errors.js (getting
// the data set chosen in the settings: datasets.js),
// visuals.js and chart.js (results). A new panel (a model picker, say) gets its own module and a
// card in index.html's side column, and reads or sets the run through the functions here.
import { wasmSimdSupported } from './engine.js';
import { formatLoss, formatAccuracy, formatEpoch, formatThroughput, TRAINING_DEFAULTS } from './trainer.js';
import * as P from './protocol.js';
import { renderPerClass, renderConfusion, renderImageGrid, renderMistakes, renderFilters } from './visuals.js';
import { createModelPanel, renderActivations } from './model-panel.js';
import {
  setupDataPanel, ensureData, loadLocalFiles, currentSource, describeDataFor, dataFailed, dataSample,
  forgetWorkerData, abortDataLoad, useDataUrl, updateCacheSize, checkCachedData, dataClassNames, imageSetFormat, showDropHint, chooseDataset,
} from './data-panel.js';
import { loadSavedRun, saveRun, clearSavedRun } from './store.js';
import { readBlob, weightsRule, CHECKPOINT_RULE } from './file-limits.js';
import {
  DEFAULTS, FIELDS, VALIDATORS, CORES, fieldText, readSettings, applyQuery, writeQuery, showSettings, setFieldsDisabled,
  chosenDataset, datasetChanged,
} from './settings.js';
import {
  setupRecipePanel, readRecipeOverrides, pageRecipe, setDescription, descriptionSetting, writeRecipeQuery, showRecipe,
  setRecipeFieldsDisabled, plotSchedule, markScheduleProgress, defaultPlot,
} from './recipe-panel.js';
import { RecipeError, evaluationPasses } from './recipe.js';
import { parseDescription as parseModelText } from './model-description.js';
import { ask } from './dialog.js';
import { wireDropZone } from './drop-zone.js';
import { createWorkerClient } from './worker-client.js';
import { formatBytes, formatTime, formatDuration } from './format.js';
import { createExportPanel } from './export-panel.js';
import { AutosavePacer, AUTOSAVE_BYTES_PER_S } from './autosave-pacer.js';

const $ = (id) => document.getElementById(id);

// Page options that are not settings of a run: kept in the URL, never written by the page.
const PAGE_QUERY = new URLSearchParams(location.search);
/** debug=1 shows a button that crashes the training worker, to try the recovery; with it,
 * debugStepMs=N makes the worker wait N ms after each step (tests use it to act mid-run). */
const DEBUG = PAGE_QUERY.get('debug') === '1';
const DEBUG_STEP_MS = DEBUG ? Number(PAGE_QUERY.get('debugStepMs')) || 0 : 0;
/**
 * autosaveSeconds=N: seconds between two checkpoints kept in IndexedDB while a run trains. A
 * checkpoint is 728 KB for SimpleCNN and takes milliseconds, so the default is short: a reload loses seconds.
 * A bigger model's timed saves are spaced further (autosavePacer).
 */
const AUTOSAVE_ASKED = (() => {
  const value = Number(PAGE_QUERY.get('autosaveSeconds'));
  return PAGE_QUERY.has('autosaveSeconds') && Number.isFinite(value) && value > 0 ? value : null;
})();
const AUTOSAVE_SECONDS = AUTOSAVE_ASKED ?? 2;
/**
 * The timed autosaves (by the clock here, and the worker's by training time): with the default
 * interval, a big checkpoint is kept less often (AutosavePacer). Saves at an epoch's end, on
 * pause, stop and when the page is hidden or closed are never put off, nor are timed ones when
 * the URL sets autosaveSeconds.
 */
const AUTOSAVE_RATE = AUTOSAVE_ASKED ? Infinity : AUTOSAVE_BYTES_PER_S;
const autosavePacer = new AutosavePacer(AUTOSAVE_SECONDS, AUTOSAVE_RATE);
/** Training samples per second per worker assumed before a run has measured its own (a 2020s laptop). */
const ASSUMED_SAMPLES_PER_S = 6000;
/** Where the page was when it was closed (localStorage, written on pagehide): tells the resume
 * offer how much training the saved checkpoint is behind. */
const LAST_SEEN_KEY = 'webtrain-last-seen';
/** Test accuracy under this many times chance (1/classes) is flagged as "not learned". */
const CHANCE_MARGIN = 1.5;

// ---------------------------------------------------------------- state and errors

let state = 'idle'; // idle | loading | running | paused | stopped | done | unsupported
let hasModel = false;
let runInfo = null;
// The run in progress and what its checkpoints are saved with: { settings, source }.
let currentRun = null;
let runHistory = [];          // this run's loss and accuracy lines so far: { kind: 'loss' | 'epoch' | 'unevaluated', ... }
let lastEpoch = null;      // the newest EPOCH message (confusion matrix, predictions, filters)
// The run that can be resumed, as kept in IndexedDB: { savedAt, checkpoint, runState, settings,
// source, history, lastEpoch, status, message, name, accuracy }. status: 'running' | 'paused' |
// 'stopped' | 'diverged' | 'failed' | 'crashed' | 'loaded'.
let savedRun = null;
let pendingWeights = null; // the name of weights loaded since the last run: the next Start trains on from them
let modelPanel = null;     // the Model panel (model-panel.js): the description every run trains
let exportPanel = null; // the weights panel's exports (export-panel.js), made by wire()

const STATUS_LABELS = {
  idle: 'Ready', loading: 'Loading data…', running: 'Training', paused: 'Paused', stopped: 'Stopped',
  done: 'Finished', unsupported: 'Unsupported browser',
};
// Where keyboard focus goes when the control it was on is disabled by a state change.
const FOCUS_AFTER = { loading: 'stop', running: 'pause', paused: 'pause', stopped: 'start', done: 'start', idle: 'start' };

function setState(next) {
  const previous = state;
  state = next;
  document.body.dataset.state = next;
  const busy = next === 'loading' || next === 'running' || next === 'paused';
  $('start').disabled = busy || next === 'unsupported' || (modelPanel !== null && !modelPanel.valid);
  modelPanel?.setDisabled(busy);
  $('show-activations').disabled = !hasModel || next === 'loading' || next === 'unsupported';
  $('start').textContent = hasModel || savedRun ? 'Start new run' : 'Start';
  $('pause').disabled = !(next === 'running' || next === 'paused');
  $('pause').textContent = next === 'paused' ? 'Continue' : 'Pause';
  $('stop').disabled = !busy;
  $('download-weights').disabled = !hasModel || next === 'loading' || next === 'unsupported';
  $('download-checkpoint').disabled = !(hasModel || savedRun) || next === 'loading' || next === 'unsupported';
  const loadDisabled = busy || next === 'unsupported';
  for (const what of ['weights', 'checkpoint']) $(`load-${what}-button`).disabled = loadDisabled;
  exportPanel?.setLoadDisabled(loadDisabled);
  if (!busy || next === 'paused') exportPanel?.refresh(hasModel && next !== 'loading' && next !== 'unsupported');
  setFieldsDisabled(busy);
  setRecipeFieldsDisabled(busy);
  $('choose-data-files').disabled = busy || next === 'unsupported';
  $('drop-zone').classList.toggle('disabled', busy);
  const failed = next === 'idle' && dataFailed();
  $('status').textContent = failed ? 'Data not loaded: see the errors' : STATUS_LABELS[next];
  $('status').className = `status status-${failed ? 'failed' : next}`;
  if (!busy) {
    // A run's live numbers mean nothing once it has ended.
    $('samples-per-s').textContent = '—';
    $('eta').textContent = '—';
  }
  $('runbar').hidden = !busy;
  if (next === 'loading') runbarPosition = '';
  updateRunbar();
  updateResumeOffer();
  updateStartInfo();
  moveFocus(previous, next);
}

/** Keeps keyboard focus on a usable control when the one it was on is disabled (Start, Stop). */
function moveFocus(previous, next) {
  if (previous === next || !FOCUS_AFTER[next]) return;
  const active = document.activeElement;
  const lost = !active || active === document.body || active.disabled;
  const fromControls = active && ['start', 'pause', 'stop', 'resume-run'].includes(active.id);
  if ((lost || fromControls) && !$('confirm').open) {
    const target = $(FOCUS_AFTER[next]);
    if (!target.disabled) target.focus();
  }
}

/** scope: what the error is about ('data', 'weights', 'checkpoint', 'run'); a later success of
 * the same kind clears it (clearErrors(scope)), so an old failure doesn't outlive its cause. */
function showError(message, scope = 'run') {
  const item = document.createElement('li');
  item.dataset.scope = scope;
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

function clearErrors(scope) {
  for (const item of [...$('error-list').children]) if (!scope || item.dataset.scope === scope) item.remove();
  $('errors').hidden = $('error-list').children.length === 0;
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

const debugQuery = DEBUG_STEP_MS ? `?debug=1&stepMs=${DEBUG_STEP_MS}` : '?debug=1';
const client = createWorkerClient({
  url: new URL(DEBUG ? `./worker.js${debugQuery}` : './worker.js', import.meta.url),
  onState, onEvent, onLost: workerLost,
});
const request = client.request;

/**
 * The worker is gone with its data and model: say so, keep the run's last checkpoint on offer and
 * start a new worker on the next request (files the user chose are read again from their File
 * objects, fetched data comes from the browser's cache).
 */
function workerLost(message, crashed = false) {
  client.terminate(message);
  forgetWorkerData();
  hasModel = false;
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
  if (error.scope !== 'lost') showError(`${prefix}${error.message}`, error.scope ?? (error.name === 'DataError' ? 'data' : 'run'));
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

// ---------------------------------------------------------------- data (data-panel.js)

/** Dropped or chosen files become the data source, unless a run is busy. */
async function loadLocal(fileList) {
  if (!fileList.length || !['idle', 'stopped', 'done'].includes(state)) return;
  setState('loading');
  try {
    await loadLocalFiles(fileList);
  } catch (error) {
    showFailure(error);
  } finally {
    setState(state === 'loading' ? (hasModel ? 'stopped' : 'idle') : state);
  }
}

// ---------------------------------------------------------------- training

async function start() {
  const settings = readSettings();
  const overrides = readRecipeOverrides();
  if (!settings || !overrides) {
    $('status').textContent = 'Fix the settings';
    document.querySelector('#settings [aria-invalid="true"]')?.focus();
    return;
  }
  let recipe;
  try {
    recipe = pageRecipe(settings);
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    showError(`The recipe does not work: ${error.message}`, 'run');
    return;
  }
  const choice = await confirmNewRun();
  if (choice === 'resume') return resumeSaved();
  if (choice !== 'new') return undefined;
  clearErrors('run');
  setState('loading');
  try {
    const source = currentSource(settings);
    await ensureData(source);
    if (state !== 'loading') return undefined; // stopped while loading
    resetRunView(settings);
    runHistory = [];
    lastEpoch = null;
    currentRun = { settings: { ...settings, model: modelPanel.text }, source };
    const started = await request(P.START, {
      epochs: settings.epochs, batchSize: settings.batch, lr: settings.lr, seed: settings.seed,
      limitTrain: settings.limitTrain, limitTest: settings.limitTest, workers: settings.workers,
      autosaveSeconds: AUTOSAVE_SECONDS, autosaveBytesPerSecond: AUTOSAVE_RATE, model: modelPanel.text, recipe,
    });
    runStarted(started);
  } catch (error) {
    currentRun = null;
    if (error.name !== 'AbortError') showFailure(error);
    if (state === 'loading') setState(hasModel ? 'stopped' : 'idle');
  }
  return undefined;
}

/**
 * Start makes a new model (or trains on from weights just loaded). Before that replaces a saved
 * run, a loaded checkpoint or the model in the page, it asks, and offers to continue instead.
 * Resolves to 'new', 'resume' or 'cancel'.
 */
async function confirmNewRun() {
  if (savedRun) {
    const r = savedRun;
    if (r.status === 'loaded') {
      return ask({
        title: 'Start a new model?',
        text: `Start trains a new model from scratch with the settings shown. It does not use the loaded checkpoint ${r.name} (${describeSaved(r)}), which is then discarded. To train that model further, continue it instead.`,
        actions: [{ label: 'Continue the checkpoint', value: 'resume', primary: true }, { label: 'Start a new model', value: 'new' }],
      });
    }
    return ask({
      title: 'Start a new run?',
      text: `A new run replaces the saved run (${describeSaved(r)}), which cannot be resumed afterwards. To carry on with it, resume it instead.`,
      actions: [{ label: 'Resume saved run', value: 'resume', primary: true }, { label: 'Discard it and start', value: 'new' }],
    });
  }
  if (hasModel && !pendingWeights) {
    const accuracy = $('accuracy').textContent === '—' ? '' : ` (test accuracy ${$('accuracy').textContent})`;
    return ask({
      title: 'Start a new run?',
      text: `A new run replaces the model in this page${accuracy}. To keep it, download its weights or checkpoint first.`,
      actions: [{ label: 'Start a new run', value: 'new', primary: true }],
    });
  }
  return 'new';
}

/** After RUN_STARTED, fresh or resumed. */
function runStarted(started) {
  hasModel = true;
  pendingWeights = null;
  runInfo = { ...started, startedAt: performance.now() };
  if (state !== 'loading') { // Stop was pressed while the run was starting
    request(P.STOP).catch(() => {});
    return;
  }
  $('counts').textContent = `${started.trainCount.toLocaleString('en')} / ${started.testCount.toLocaleString('en')}`;
  if (started.recipe) {
    const done = started.resumed ? started.resumed.epoch * started.stepsPerEpoch + started.resumed.step : 0;
    plotSchedule(started.recipe, started.epochs * started.stepsPerEpoch, started.stepsPerEpoch, done);
  }
  const workers = `${started.workersUsed} worker${started.workersUsed === 1 ? '' : 's'}`;
  const what = `${started.epochs} epoch(s), batch ${started.batchSize}, lr ${started.lr}, seed ${started.seed}, ${workers}: ${started.stepsPerEpoch} steps per epoch`;
  if (started.resumed) {
    log(`# Resumed at epoch ${started.resumed.epoch + 1}, step ${started.resumed.step}: ${what}`, 'log-info');
  } else {
    log(`# Training ${what}${started.fromWeights ? `, starting from ${started.fromWeights}` : ''}`, 'log-info');
  }
}

/** What Start will do, in the first screen: where the data comes from, how big, about how long. */
function updateStartInfo() {
  const info = $('start-info');
  if (['loading', 'running', 'paused', 'unsupported'].includes(state)) {
    info.textContent = '';
    return;
  }
  const v = Object.fromEntries(FIELDS.map((name) => [name, VALIDATORS[name](fieldText(name)).value]));
  if (FIELDS.some((name) => v[name] === undefined)) {
    info.textContent = 'Fix the settings marked above to start.';
    return;
  }
  const { text: data, download } = describeDataFor(v.data);
  const images = v.limitTrain ?? chosenDataset().trainImages;
  const tests = v.limitTest ?? chosenDataset().testImages;
  const workers = Math.min(v.workers, CORES);
  // The model's own speed on this machine (the Model card's estimate); before it is known, a
  // SimpleCNN-sized guess where extra workers help less than linearly.
  const known = modelPanel?.trainingRate(workers);
  const rate = known?.rate ?? ASSUMED_SAMPLES_PER_S * (1 + 0.75 * (workers - 1));
  // An evaluation is a forward pass (a third of a training step) per test-time view.
  let evaluations = v.epochs;
  try {
    evaluations = evaluationPasses(pageRecipe(v), v.epochs);
  } catch {
    // a bad recipe field is named beside itself; estimate without it
  }
  const seconds = v.epochs * images / rate + evaluations * tests / (3 * rate);
  const from = pendingWeights ? `, starting from the weights in ${pendingWeights}` : '';
  info.textContent = `Start ${data}, then trains ${v.epochs} epoch${v.epochs === 1 ? '' : 's'} on ${images.toLocaleString('en')} images${from}: `
    + `about ${formatDuration(seconds)} ${known ? 'on this machine' : 'on a typical laptop'}${download ? ', plus the download' : ''}. The ETA appears once it runs.`;
}

// ---------------------------------------------------------------- checkpoints and resuming

/** A CHECKPOINT event (or an autosave's export): becomes the saved run, with everything the page needs to continue it. */
function keepCheckpoint({ reason, runState, buffer }) {
  if (!currentRun) return;
  if (reason === 'interval' && autosavePacer.tooSoon(performance.now())) return;
  const status = { stop: 'stopped', pause: 'paused' }[reason] ?? 'running';
  savedRun = {
    savedAt: Date.now(), checkpoint: new Uint8Array(buffer), runState,
    settings: { ...currentRun.settings, lr: runState.adam.lr }, source: currentRun.source,
    history: runHistory.slice(), lastEpoch, status, message: null, name: null, accuracy: null,
  };
  autosavePacer.saved(performance.now(), buffer.byteLength);
  persistSavedRun();
  $('autosave-info').textContent = `Checkpoint kept in this browser: ${describePosition(runState)}, ${formatTime(savedRun.savedAt)}.`;
}

let autosaveInFlight = false;

/**
 * Saves the live run now (between two steps), whatever the worker's own schedule: every
 * AUTOSAVE_SECONDS of wall time, and when the page is hidden or closed. A write that the closing
 * page cuts short leaves the previous checkpoint, never a broken one (one IndexedDB transaction).
 */
async function autosaveNow({ timed = false } = {}) {
  if (state !== 'running' || !currentRun || autosaveInFlight || (timed && autosavePacer.tooSoon(performance.now()))) return;
  autosaveInFlight = true;
  try {
    const reply = await request(P.EXPORT_CHECKPOINT);
    if (state === 'running') keepCheckpoint({ reason: timed ? 'interval' : 'now', runState: reply.runState, buffer: reply.buffer });
  } catch {
    // The run ended meanwhile, or the worker was lost (reported elsewhere).
  } finally {
    autosaveInFlight = false;
  }
}

/** On pagehide: where the run was, so the resume offer can say how much the checkpoint is behind. */
function rememberLastSeen() {
  if (!currentRun || !['running', 'paused'].includes(state)) return;
  const globalStep = Number($('epoch-progress').dataset.globalStep) || 0;
  try {
    localStorage.setItem(LAST_SEEN_KEY, JSON.stringify({ globalStep, at: Date.now() }));
  } catch {
    // No localStorage: the offer then only says when the checkpoint was taken.
  }
}

/** The pagehide note, read once at load: { globalStep, at } or null. */
function takeLastSeen() {
  try {
    const seen = JSON.parse(localStorage.getItem(LAST_SEEN_KEY) ?? 'null');
    localStorage.removeItem(LAST_SEEN_KEY);
    return seen;
  } catch {
    return null;
  }
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

async function askDiscard() {
  if (!savedRun) return;
  const choice = await ask({
    title: 'Discard the saved run?',
    text: `The saved run (${describeSaved(savedRun)}) is deleted from this browser and cannot be resumed. The model in this page, if any, stays until the next Start.`,
    actions: [{ label: 'Discard the saved run', value: 'discard' }],
  });
  if (choice !== 'discard') return;
  log('# Discarded the saved run', 'log-info');
  discardSavedRun();
  $('autosave-info').textContent = '';
  $('start').focus();
}

/** An ERROR event: a run that failed mid-way; its last checkpoint is offered (status set here). */
function onWorkerError({ message, scope, diverged }) {
  showError(message, scope);
  if (scope !== 'run' || !currentRun || !savedRun) return;
  updateSavedRun({ status: diverged ? 'diverged' : 'failed', message });
}

function stepsPerEpochOf(runState) {
  return Math.ceil(runState.trainCount / runState.batchSize);
}

const isFinished = (runState) => runState.epoch >= runState.epochs;

function describePosition(runState) {
  if (isFinished(runState)) return `finished, ${runState.epochs}/${runState.epochs} epochs`;
  return `epoch ${runState.epoch + 1}/${runState.epochs}, step ${runState.step}/${stepsPerEpochOf(runState)}`;
}

/** A saved run in a few words, for the questions that would discard it. */
function describeSaved(r) {
  const latest = r.history.filter((e) => e.kind === 'epoch').at(-1);
  const accuracy = latest?.test_accuracy ?? r.accuracy;
  return `${describePosition(r.runState)}${accuracy == null ? '' : `, test accuracy ${(100 * accuracy).toFixed(2)}%`}`;
}

const OFFER_TITLES = {
  running: 'A run was interrupted', paused: 'A paused run was left', stopped: 'The run was stopped',
  diverged: 'Training diverged', failed: 'Training stopped on an error', crashed: 'The training worker crashed',
  loaded: 'Checkpoint loaded',
};

/** How much the checkpoint is behind where the page was when it closed, if the page said. */
function describeLoss(r) {
  if (!['running', 'paused'].includes(r.status) || !r.lastSeen) return '';
  const saved = r.runState.epoch * stepsPerEpochOf(r.runState) + r.runState.step;
  const steps = r.lastSeen.globalStep - saved;
  if (steps <= 0) return ' Nothing was lost: it was saved at the step where the page closed.';
  const seconds = Math.max(0, (r.lastSeen.at - r.savedAt) / 1000);
  return ` It was saved ${formatDuration(seconds)} before the page closed: the last ${steps} step${steps === 1 ? '' : 's'} will be trained again.`;
}

/** Shows the saved run (position, accuracy so far, why it stopped) whenever nothing is running. */
function updateResumeOffer() {
  const show = Boolean(savedRun) && !['loading', 'running', 'paused', 'unsupported'].includes(state);
  $('resume-offer').hidden = !show;
  if (!show) return;
  const r = savedRun;
  const s = r.runState;
  const epochs = r.history.filter((e) => e.kind === 'epoch');
  const best = epochs.at(-1);
  let accuracy = 'no test accuracy yet';
  if (best) accuracy = `test accuracy so far ${(100 * best.test_accuracy).toFixed(2)}% (after epoch ${best.epoch})`;
  else if (r.accuracy != null) accuracy = `test accuracy ${(100 * r.accuracy).toFixed(2)}%`;
  const finished = isFinished(s);
  $('resume-title').textContent = r.status === 'loaded' ? `Checkpoint ${r.name} loaded` : OFFER_TITLES[r.status] ?? 'A saved run';
  const position = finished ? `Finished: ${s.epochs} of ${s.epochs} epochs` : `Epoch ${s.epoch + 1} of ${s.epochs}, step ${s.step} of ${stepsPerEpochOf(s)}`;
  $('resume-summary').textContent = `${position} · ${accuracy} · saved ${formatTime(r.savedAt)}`;
  const data = r.source.kind === 'url' ? r.source.url : `your files (${r.source.names.join(', ')})`;
  const why = {
    running: 'It was training when this page was closed or reloaded.',
    paused: 'It was paused when this page was closed or reloaded.',
    stopped: 'Resume run continues it from the step where it stopped.',
    diverged: 'Resume run continues from the last good checkpoint, before the step that diverged, with the learning rate set here.',
    failed: 'Resume run continues from the last checkpoint.',
    crashed: 'Resume run starts a new worker and continues from the last checkpoint.',
    loaded: finished ? 'Continue training trains this model for more epochs, exactly as if its run had been longer.' : 'Resume run continues this run exactly where the checkpoint was taken.',
  }[r.status] ?? '';
  $('resume-detail').textContent = `${why}${describeLoss(r)} Data: ${data}. Batch ${r.settings.batch}, lr ${r.settings.lr}, seed ${r.settings.seed}, ${r.settings.workers} worker(s).`;
  $('resume-run').textContent = finished ? 'Continue training' : 'Resume run';
  const lrRow = r.status === 'diverged';
  if (lrRow && $('resume-lr-row').hidden) $('resume-lr').value = String(r.settings.lr / 10);
  $('resume-lr-row').hidden = !lrRow;
  if (finished && $('resume-epochs-row').hidden) $('resume-epochs').value = String(s.epochs + 1);
  $('resume-epochs-row').hidden = !finished;
}

/** Resume: the saved run's data, settings and history back in the page, its checkpoint in the worker. */
async function resumeSaved() {
  const record = savedRun;
  if (!record) return;
  let { lr, epochs } = record.settings;
  if (record.status === 'diverged') {
    const checked = VALIDATORS.lr($('resume-lr').value.trim());
    $('resume-lr-error').textContent = checked.error ?? '';
    $('resume-lr').setAttribute('aria-invalid', checked.error ? 'true' : 'false');
    if (checked.error) return $('resume-lr').focus();
    lr = checked.value;
  }
  if (isFinished(record.runState)) {
    const done = record.runState.epochs;
    let { value, error } = VALIDATORS.epochs($('resume-epochs').value.trim());
    if (!error && value <= done) error = `Train to epoch: enter more than ${done}, the epochs this model has trained.`;
    $('resume-epochs-error').textContent = error ?? '';
    $('resume-epochs').setAttribute('aria-invalid', error ? 'true' : 'false');
    if (error) return $('resume-epochs').focus();
    epochs = value;
  }
  const settings = { ...record.settings, lr, epochs };
  showSettings(settings, record.source);
  if (record.settings.model) await modelPanel.setText(record.settings.model);
  clearErrors('run');
  setState('loading');
  try {
    await ensureData(record.source);
    if (state !== 'loading') return undefined;
    restoreRunView(record, settings);
    currentRun = { settings, source: record.source };
    const checkpoint = record.checkpoint.slice(); // the record keeps its copy until the next save
    const started = await request(P.START, {
      epochs, lr, limitTest: settings.limitTest, autosaveSeconds: AUTOSAVE_SECONDS, autosaveBytesPerSecond: AUTOSAVE_RATE,
      checkpoint: { name: record.name ?? 'the saved checkpoint', buffer: checkpoint.buffer },
    }, [checkpoint.buffer]);
    runStarted(started);
  } catch (error) {
    currentRun = null;
    if (error.name !== 'AbortError') showFailure(error, 'Could not resume: ');
    if (state === 'loading') setState(hasModel ? 'stopped' : 'idle');
  }
  return undefined;
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
      if (!e.partial) log(formatLoss(e));
      charts?.addLoss(e);
    } else if (e.kind === 'unevaluated') {
      log(formatEpoch({ ...e, evaluated: false }));
    } else {
      log(formatAccuracy(e));
      charts?.addAccuracy(e);
    }
  }
  updateChartCounts();
  if (lastEpoch) {
    showEvaluation(lastEpoch, `after epoch ${lastEpoch.epoch}`);
    renderFilters($('filters'), lastEpoch.conv1, lastEpoch.conv1Shape);
    $('filters').classList.remove('placeholder');
  }
  const s = record.runState;
  const steps = stepsPerEpochOf(s);
  const finished = isFinished(s);
  $('epoch-progress').max = steps;
  $('epoch-progress').value = finished ? steps : s.step;
  $('epoch-progress').dataset.globalStep = String(s.epoch * steps + s.step);
  $('progress-label').textContent = finished ? describePosition(s) : `Epoch ${s.epoch + 1}/${settings.epochs} · step ${s.step}/${steps}`;
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
    const reply = await request(P.LOAD_CHECKPOINT, { name: file.name, buffer, model: modelPanel.text }, [buffer]);
    await modelPanel.setText(reply.model);
    hasModel = true;
    pendingWeights = null;
    clearErrors('checkpoint');
    renderFilters($('filters'), reply.conv1, reply.conv1Shape);
    $('filters').classList.remove('placeholder');
    const e = reply.evaluation;
    if (e) showEvaluation(e, `with ${file.name}`);
    const s = reply.runState;
    const form = readSettings();
    const settings = {
      epochs: s.epochs, batch: s.batchSize, lr: s.adam.lr, seed: s.seed, workers: Math.max(1, s.workers),
      limitTrain: s.trainCount, limitTest: form?.limitTest ?? null, data: form?.data ?? VALIDATORS.data(DEFAULTS.data).value,
    };
    const source = currentSource(form ?? { data: settings.data });
    // The form shows the run the checkpoint continues, so its numbers agree with the offer's.
    showSettings(settings, source);
    savedRun = {
      savedAt: Date.now(), checkpoint: bytes, runState: s, settings, source,
      history: [], lastEpoch: null, status: 'loaded', message: null, name: file.name, accuracy: e?.test_accuracy ?? null,
    };
    persistSavedRun();
    const result = e ? ` Test accuracy ${(100 * e.test_accuracy).toFixed(2)}% (${e.correct}/${e.total}).` : '';
    const next = isFinished(s) ? 'Continue training trains it for more epochs' : 'Resume run continues it';
    $('checkpoint-info').textContent = `Loaded ${file.name}: ${isFinished(s) ? `a finished run of ${s.epochs} epoch(s)` : describePosition(s)}; ${next}.${result}`;
    log(`# Loaded checkpoint ${file.name} (${describePosition(s)})${e ? `: ${formatAccuracy(e)}` : ''}`, 'log-info');
    setState(state);
  } catch (error) {
    if (error.scope === 'lost') return;
    if (error.checkpointModel) {
      const choice = await ask({
        title: 'The checkpoint holds another model',
        text: `${error.message} Switch the Model panel to the checkpoint's model and load it?`,
        actions: [{ label: 'Switch to its model and load', value: 'switch', primary: true }, { label: 'Keep my model', value: 'keep' }],
      });
      if (choice === 'switch') {
        await modelPanel.setText(error.checkpointModel);
        await loadCheckpoint(file);
        return;
      }
    }
    showError(`Checkpoint not loaded, the current model is kept. ${error.message}`, 'checkpoint');
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
  showAccuracyNote(null);
  $('runbar-progress').value = 0;
}

/** Seconds of a run before its ETA is shown: the first estimates swing by minutes. */
const ETA_AFTER_SECONDS = 3;

function showProgress(p) {
  if (p.samplesPerSecond > 0) modelPanel?.measured(p.samplesPerSecond, runInfo?.workersUsed ?? 1);
  const bar = $('epoch-progress');
  const ended = p.step === 0 && p.globalStep > 0;
  bar.max = p.steps;
  bar.value = ended ? p.steps : p.step;
  bar.dataset.globalStep = String(p.globalStep);
  markScheduleProgress(p.globalStep);
  const epoch = ended ? Math.min(p.epoch, p.epochs) : p.epoch;
  const position = `Epoch ${epoch}/${p.epochs} · step ${ended ? p.steps : p.step}/${p.steps}`;
  $('progress-label').textContent = position;
  $('samples-per-s').textContent = p.samplesPerSecond ? Math.round(p.samplesPerSecond).toLocaleString('en') : '—';
  const settling = runInfo && (performance.now() - runInfo.startedAt) / 1000 < ETA_AFTER_SECONDS;
  let eta = '—';
  if (p.globalStep === p.totalSteps) eta = 'done';
  else if (settling) eta = 'estimating…';
  else if (p.etaSeconds != null) eta = formatDuration(p.etaSeconds);
  $('eta').textContent = eta;
  const overall = Math.floor((100 * p.globalStep) / p.totalSteps);
  $('overall').textContent = `${overall}%`;
  $('runbar-progress').max = p.totalSteps;
  $('runbar-progress').value = p.globalStep;
  runbarPosition = `${position} · ${overall}% · ETA ${eta}`;
  updateRunbar();
}

let runbarPosition = '';

/** The sticky bar: the state and where the run is, in sight wherever the page is scrolled. */
function updateRunbar() {
  $('runbar-text').textContent = [STATUS_LABELS[state], runbarPosition].filter(Boolean).join(' · ');
}

function showLoss(e) {
  runHistory.push({ kind: 'loss', epoch: e.epoch, epochs: e.epochs, step: e.step, steps: e.steps, loss: e.loss });
  log(formatLoss(e));
  charts?.addLoss(e);
  updateChartCounts();
}

function showEpoch(e) {
  if (e.wasmBytes) $('epoch-progress').dataset.wasmBytes = String(e.wasmBytes); // the worker's Wasm memory, for tests
  if (e.partial_loss) {
    // The epoch's last steps, after its last loss line: a point on the chart, not a log line
    // (the log keeps the CLI's lines), so a 50-step epoch still draws its loss.
    const tail = { kind: 'loss', partial: true, epoch: e.epoch, epochs: e.epochs, step: runInfo?.stepsPerEpoch ?? 1, steps: runInfo?.stepsPerEpoch ?? 1, loss: e.partial_loss.loss };
    runHistory.push(tail);
    charts?.addLoss(tail);
  }
  log(formatEpoch(e));
  log(formatThroughput(e));
  renderFilters($('filters'), e.conv1, e.conv1Shape);
  $('filters').classList.remove('placeholder');
  if (!e.evaluated) { // the recipe's eval_every skipped this epoch's evaluation: its line only
    runHistory.push({ kind: 'unevaluated', epoch: e.epoch, epochs: e.epochs });
    return;
  }
  runHistory.push({ kind: 'epoch', epoch: e.epoch, epochs: e.epochs, test_accuracy: e.test_accuracy, correct: e.correct, total: e.total, test_loss: e.test_loss, tta: e.tta, plain_accuracy: e.plain_accuracy });
  lastEpoch = e;
  charts?.addAccuracy(e);
  updateChartCounts();
  showEvaluation(e, `after epoch ${e.epoch}`);
  exportPanel?.refresh(true); // the file names carry the new accuracy
}

/** Accuracy headline, per-class table, confusion matrix and the image grid's predictions. */
function showEvaluation(e, when) {
  $('accuracy').textContent = `${(100 * e.test_accuracy).toFixed(2)}%`;
  $('accuracy').title = `${e.correct}/${e.total} test images right ${when}`;
  showAccuracyNote(e.test_accuracy);
  const names = dataClassNames();
  renderPerClass($('per-class'), e.confusion, names);
  renderConfusion($('confusion'), e.confusion, names);
  renderMistakes($('mistakes'), e.mistakes, names);
  for (const id of ['per-class', 'confusion', 'mistakes']) $(id).classList.remove('placeholder');
  if (dataSample()) renderImageGrid($('image-grid'), dataSample(), e.predictions, names);
}

/** Accuracy no better than guessing is flagged, not shown as a success. */
function showAccuracyNote(accuracy) {
  const chance = 1 / dataClassNames().length;
  const atChance = accuracy != null && accuracy < CHANCE_MARGIN * chance;
  $('accuracy').classList.toggle('at-chance', atChance);
  $('accuracy-note').textContent = atChance ? `About chance (${(100 * chance).toFixed(0)}%): the model has not learned. Try a lower learning rate or more epochs.` : '';
}

function updateChartCounts() {
  if (!charts) return;
  $('loss-chart-summary').textContent = charts.lossSummary;
  $('accuracy-chart-summary').textContent = charts.accuracySummary;
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
    abortDataLoad();
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

/** Weights loaded (raw or, from the export panel, safetensors): shown in `infoId`. */
function weightsLoaded(reply, file, infoId) {
  hasModel = true;
  pendingWeights = file.name;
  clearErrors('weights');
  setState(state);
  renderFilters($('filters'), reply.conv1, reply.conv1Shape);
  $('filters').classList.remove('placeholder');
  const e = reply.evaluation;
  if (e) showEvaluation(e, `with ${file.name}`);
  const result = e ? ` Test accuracy ${(100 * e.test_accuracy).toFixed(2)}% (${e.correct}/${e.total}).` : '';
  $(infoId).textContent = `Loaded ${file.name}; the next Start trains on from these weights.${result}`;
  log(`# Loaded weights from ${file.name}${e ? `: ${formatAccuracy(e)}` : ''}`, 'log-info');
}

async function loadWeights(file) {
  const batch = VALIDATORS.batch(fieldText('batch')).value ?? TRAINING_DEFAULTS.batchSize;
  try {
    // Judged by the size the model in the Model panel needs (the default SimpleCNN's until it has checked).
    const params = modelPanel.summary?.totals.params ?? 62006;
    const rule = weightsRule(params, `a weights file of this model (${params.toLocaleString('en')} float32 parameters)`);
    const buffer = await readBlob(file, file.name, 'weights file', rule);
    const reply = await request(P.LOAD_WEIGHTS, { name: file.name, buffer, batchSize: batch, model: modelPanel.text }, [buffer]);
    weightsLoaded(reply, file, 'weights-info');
  } catch (error) {
    if (error.scope === 'lost') return;
    showError(`Weights not loaded, the current model is kept. ${error.message}`, 'weights');
    $('weights-info').textContent = `${file.name} was refused; the current model is kept.`;
  }
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
  exportPanel = createExportPanel({
    request, saveFile, onLoaded: (reply, file) => weightsLoaded(reply, file, 'export-info'), onError: (message) => showError(message, 'weights'),
    batchSize: () => VALIDATORS.batch(fieldText('batch')).value ?? TRAINING_DEFAULTS.batchSize,
    modelText: () => modelPanel?.text,
    switchModel: async (fileModel, message) => {
      const choice = await ask({
        title: 'The file holds another model',
        text: `${message} Switch the Model panel to the file's model and load it?`,
        actions: [{ label: 'Switch to its model and load', value: 'switch', primary: true }, { label: 'Keep my model', value: 'keep' }],
      });
      if (choice === 'switch') await modelPanel.setText(fileModel);
      return choice === 'switch';
    },
  });
  $('start').addEventListener('click', start);
  $('pause').addEventListener('click', togglePause);
  $('stop').addEventListener('click', stop);
  $('download-weights').addEventListener('click', downloadWeights);
  $('load-weights-button').addEventListener('click', () => $('load-weights').click());
  $('load-checkpoint-button').addEventListener('click', () => $('load-checkpoint').click());
  $('choose-data-files').addEventListener('click', () => $('data-files').click());
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
  $('discard-run').addEventListener('click', askDiscard);
  // Autosave by the clock (the worker's own schedule counts training time only), and whenever the
  // page may be about to go: hidden, or closed/reloaded.
  setInterval(() => autosaveNow({ timed: true }), AUTOSAVE_SECONDS * 1000);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') autosaveNow(); });
  window.addEventListener('pagehide', () => {
    rememberLastSeen();
    autosaveNow();
  });
  if (DEBUG) {
    // No reply is registered: the worker answers by dying (or, for a peer, by an ERROR event).
    for (const target of ['worker', 'peer']) {
      $(`debug-crash-${target}`).hidden = false;
      $(`debug-crash-${target}`).addEventListener('click', () => client.post({ type: P.DEBUG_CRASH, id: 0, target }));
    }
  }
  $('settings').addEventListener('input', (event) => {
    if (event.target.id === 'dataset') onDatasetChosen();
    if (event.target.id === 'data') useDataUrl();
    readSettings();
    readRecipeOverrides();
    writeQuery();
    writeRecipeUrl();
    refreshSchedule();
    updateStartInfo();
    if (event.target.id === 'data') checkCachedData(VALIDATORS.data(fieldText('data')).value);
  });
  $('settings').addEventListener('submit', (event) => event.preventDefault());
  $('data-files').addEventListener('change', (event) => {
    const files = [...event.target.files];
    event.target.value = '';
    loadLocal(files);
  });
  wireDropZone($('drop-zone'), (files) => loadLocal(files));
}

let shownDataset = null; // the data set the form showed before its last change

/** The data set picker changed (or dropped files chose another set): the URL, model check and hints follow. */
function onDatasetChosen() {
  const previous = shownDataset;
  shownDataset = chosenDataset();
  if (previous === shownDataset) return;
  datasetChanged(previous);
  chooseDataset(shownDataset); // dropped files apply if they are this set's too
  readSettings();
  writeQuery();
  showDataset();
  modelPanel.recheck();
  checkCachedData(VALIDATORS.data(fieldText('data')).value);
  updateStartInfo();
}

/** What the page says about the chosen data set outside the form. */
function showDataset() {
  const dataset = chosenDataset();
  $('counts').title = `Classes: ${dataset.classNames.join(', ')}`;
  $('limitTrain').placeholder = `all (${dataset.trainImages.toLocaleString('en')})`;
  $('limitTest').placeholder = `all (${dataset.testImages.toLocaleString('en')})`;
  showDropHint(dataset);
  $('data-intro').textContent = `Start fetches ${dataset.title} for you. Already have it on this computer?`;
}

// ---------------------------------------------------------------- recipe

/** The recipe fields' part of the address bar (settings.js writes the rest). */
function writeRecipeUrl() {
  const query = new URLSearchParams(location.search);
  writeRecipeQuery(query);
  history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`);
}

/** The schedule plot for the settings as they stand (not during a run: it shows the run's). */
function refreshSchedule() {
  if (['loading', 'running', 'paused'].includes(state)) return;
  const settings = readSettings();
  if (settings) defaultPlot(settings, settings.limitTrain ?? 50000);
}

/**
 * The model description changed: its @ lines are the recipe's defaults (placeholders), and its
 * epochs, batch size and lr fill those fields while they hold the page's defaults.
 */
function modelChanged() {
  let json = null;
  try {
    json = parseModelText(modelPanel.text ?? '');
  } catch {
    json = null; // the model panel shows the error
  }
  setDescription(json);
  for (const [name, key] of [['epochs', 'epochs'], ['batch', 'batchSize'], ['lr', 'lr']]) {
    const value = descriptionSetting(key);
    if (value !== undefined && fieldText(name) === DEFAULTS[name] && !new URLSearchParams(location.search).has(name)) $(name).value = String(value);
  }
  readSettings();
  refreshSchedule();
}

/** The activation view: every layer's output for the chosen test image, with the model in the page. */
async function showActivations() {
  const index = Number($('activation-index').value);
  if (!Number.isInteger(index) || index < 0 || index > 47) return;
  try {
    const reply = await request(P.ACTIVATIONS, { index });
    renderActivations($('activations'), reply);
    $('activations').classList.remove('placeholder');
  } catch (error) {
    showFailure(error);
  }
}

async function main() {
  $('boot-notice').remove();
  applyQuery();
  setupRecipePanel();
  setupDataPanel({
    request, log, showError, clearErrors, onChange: updateStartInfo, dataset: chosenDataset,
    onDataset: (dataset) => {
      $('dataset').value = dataset.name;
      onDatasetChosen();
      log(`# The files are ${dataset.title}'s: the data set is now ${dataset.title}`, 'log-info');
    },
    busy: () => !['idle', 'stopped', 'done'].includes(state),
    onFormat: () => modelPanel?.recheck(),
  });
  modelPanel = createModelPanel({
    request,
    onChange: () => {
      setState(state);
      modelChanged();
      updateStartInfo();
    },
    trainImages: () => readSettings()?.limitTrain ?? chosenDataset().trainImages,
    format: () => imageSetFormat() ?? chosenDataset().format,
    workers: () => readSettings()?.workers ?? 1,
  });
  $('show-activations').addEventListener('click', showActivations);
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
  modelPanel.init().catch((error) => showError(`The model panel could not start: ${error.message}`));
  shownDataset = chosenDataset();
  showDataset();
  updateCacheSize(VALIDATORS.data(fieldText('data')).value);
  await loadCharts();
  try {
    savedRun = await loadSavedRun();
  } catch (error) {
    showError(`The saved run could not be read from this browser's storage (${error.message}).`);
  }
  const lastSeen = takeLastSeen();
  if (savedRun && lastSeen) savedRun.lastSeen = lastSeen;
  setState(state);
  if (PAGE_QUERY.get('autostart') === '1') {
    // A link with autostart must not silently replace a run that can be resumed.
    if (savedRun) log('# autostart skipped: a saved run can be resumed (or discarded)', 'log-info');
    else start();
  }
}

main().catch((error) => showError(`The page failed to start: ${error.message}`));

// The training worker: owns the Wasm engine, the data sets, the model and the training run (with
// its data-parallel peer workers), and talks to the page only through the messages documented in
// protocol.js.
import { createEngine, EngineError, CIFAR10_FORMAT } from './engine.js';
import { loadPreset, parseDescription, describeDifference, DescriptionError } from './model-description.js';
import { createModelFromDescription, attachDescription, summarize, layerType } from './model-spec.js';
import { TrainingRun, DivergenceError } from './trainer.js';
import { DataParallelStepper } from './parallel.js';
import * as P from './protocol.js';
import { importSafetensors, safetensorsDescription } from './safetensors.js';
import { MODEL_FILE_KINDS, modelFile, downloadName, modelNameOf } from './model-files.js';
import { checkFits } from './image-records.js';
import { autosaveGapMs } from './autosave-pacer.js';
import { evaluationPasses } from './recipe.js';
import { TTA_VIEWS } from './augment.js';

// Set only when the page was opened with debug=1 (it then loads worker.js?debug=1).
const DEBUG = new URL(self.location.href).searchParams.get('debug') === '1';
// With debug=1, stepMs=N waits N ms after each step (untimed): tests use it to act in mid-run
// on a machine that trains their small runs in a fraction of a second.
const DEBUG_STEP_MS = DEBUG ? Number(new URL(self.location.href).searchParams.get('stepMs')) || 0 : 0;

let enginePromise = null;
let train = null;      // full data sets; a run uses views limited to limitTrain/limitTest
let test = null;
let describeFormat = null; // the data set the page has chosen (DESCRIBE), until data is loaded
let model = null;
let run = null;
let paused = false;
let pendingWeights = null; // { name, bytes, kind, text } loaded after the last run: the next run starts from them
let modelAccuracy = null;  // the model's last test accuracy, for the names of its exported files
let lastCheckpoint = null; // { bytes, runState }: the newest good checkpoint made or loaded
let lastEvalRate = 0; // test images' forward passes per second in the last evaluation
let samplesBeforeRun = 0;  // samples a resumed run had already trained, left out of samples/s
let autosaveMs = P.AUTOSAVE_SECONDS * 1000;
let autosaveRate = Infinity; // checkpoint bytes per second of training at most (autosave-pacer.js)
let nextSaveMs = autosaveMs; // of training, after the last save
let msSinceSave = 0;
let crashRequested = false;
let peers = [];            // the current run's peer endpoints

/**
 * Created once, on first use: fetching and compiling the module is the slow part of starting.
 * The compiled module is kept too: peer workers are instantiated from it without compiling again.
 */
function getEngine() {
  enginePromise ??= (async () => {
    const url = new URL('./webtrain.wasm', import.meta.url);
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new Error(`${url}: network error (${error.message})`);
    }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText} (build the site with 'npm run build')`);
    const module = await WebAssembly.compile(await response.arrayBuffer());
    return { engine: await createEngine(module), module };
  })();
  enginePromise.catch(() => { enginePromise = null; });
  return enginePromise;
}

function post(type, payload = {}, transfer = []) {
  self.postMessage({ type, ...payload }, transfer);
}

function reply(id, type, payload = {}, transfer = []) {
  self.postMessage({ type, replyTo: id, ...payload }, transfer);
}

/** A limited view of a loaded data set: same records in Wasm memory, fewer of them. */
function limited(dataset, limit) {
  return dataset.limited(limit);
}

/** A copy of a data set's records, to transfer to a peer worker. */
function recordsOf(engine, dataset, name) {
  return { name, bytes: dataset.bytes() };
}

/** The first convolution's filters when they see the image itself (1 or 3 input channels), for the
 * page to draw: { data, shape }; null for a net without one. */
function conv1Of(m) {
  const t = m.tensors.find((x) => x.role === 'weight' && x.shape.length === 4);
  if (!t || (t.shape[1] !== 3 && t.shape[1] !== 1)) return null;
  return m.paramsView().slice(t.offset, t.offset + t.count);
}

/** The shape of what conv1Of gives, or null. */
function conv1ShapeOf(m) {
  const t = m.tensors.find((x) => x.role === 'weight' && x.shape.length === 4);
  return t && (t.shape[1] === 3 || t.shape[1] === 1) ? t.shape : null;
}

let presetText = null; // the default model's description, fetched once
/** The description text of a run: the page's, or the default preset's. */
async function descriptionOf(text) {
  if (text) return text;
  presetText ??= await loadPreset('simplecnn');
  return presetText;
}

/** This machine's Wasm SIMD multiply-add peak in GFLOP/s (wt_bench_peak), measured once. */
let peakGflops = null;
function measurePeak(engine) {
  if (peakGflops) return peakGflops;
  engine.wasm.wt_bench_peak(1000); // warm up
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const flops = engine.wasm.wt_bench_peak(200000);
    best = Math.max(best, flops / ((performance.now() - t0) / 1000) / 1e9);
  }
  peakGflops = best;
  return peakGflops;
}

/** The data's shape, classes and normalisation: the loaded data's, else the chosen data set's. */
const dataFormat = () => train?.format ?? describeFormat ?? CIFAR10_FORMAT;

/** DESCRIBE: the summary of a description (a throwaway model of it), or its error with the line. */
async function describe(id, { text, format }) {
  const { engine } = await getEngine();
  if (format) describeFormat = format;
  let candidate;
  try {
    candidate = createModelFromDescription(engine, text, format ?? dataFormat(), { maxBatch: 1 });
  } catch (error) {
    reply(id, P.ERROR, { scope: 'model', message: error.message, line: error.line ?? null });
    return;
  }
  try {
    reply(id, P.DESCRIBED, { summary: summarize(candidate), peakGflops: measurePeak(engine) });
  } finally {
    candidate.destroy();
  }
}

/** ACTIVATIONS: every layer's output for one test image, with the current model. */
async function activations(id, { index }) {
  const { engine } = await getEngine();
  if (!model) throw new RangeError('there is no model yet: start a run or load a model first');
  if (!test || !(index >= 0 && index < test.count)) throw new RangeError('no such test image: load the data first');
  const f = test.format, pixels = test.image(index);
  const x = new Float32Array(pixels.length);
  const plane = f.height * f.width;
  for (let i = 0; i < pixels.length; i++) {
    const c = Math.floor(i / plane);
    x[i] = (Math.fround(pixels[i] / 255) - f.mean[c]) / f.std[c];
  }
  const { logits, activations: maps } = model.run(x, 1, { activations: true });
  const names = model.layerNames ?? model.layers.map((_, i) => `layer ${i + 1}`);
  const layers = model.layers.map((l, i) => ({ name: names[i], type: layerType(l.kind), shape: l.shape, data: maps[i] }));
  reply(id, P.ACTIVATIONS_DATA, { index, label: test.label(index), logits, layers }, maps.map((m) => m.buffer));
}

/** A model from a description; a bad description is refused with its line. */
function modelFrom(engine, text, { maxBatch, seed }) {
  try {
    return createModelFromDescription(engine, text, dataFormat(), { maxBatch, seed });
  } catch (error) {
    if (error instanceof DescriptionError) throw new RangeError(`the model description: ${error.message}`);
    throw error;
  }
}

function samplePredictions(predictions) {
  return predictions.slice(0, P.SAMPLE_IMAGES);
}

async function loadData(id, { train: trainFiles, test: testFile, format = CIFAR10_FORMAT }) {
  const { engine } = await getEngine();
  await stopRun();
  const toFiles = (files) => files.map(({ name, buffer }) => ({ name, bytes: new Uint8Array(buffer) }));
  const count = [...trainFiles, testFile].reduce((n, f) => n + f.buffer.byteLength / format.recordBytes, 0);
  checkFits(count, format.recordBytes, 'records');
  // Validate both before replacing either, so a bad file leaves the loaded data as it was.
  const newTrain = engine.loadDataset(toFiles(trainFiles), { format });
  let newTest;
  try {
    newTest = engine.loadDataset(toFiles([testFile]), { format });
  } catch (error) {
    newTrain.free();
    throw error;
  }
  train?.free();
  test?.free();
  train = newTrain;
  test = newTest;
  const sample = imagesOf(Array.from({ length: Math.min(P.SAMPLE_IMAGES, test.count) }, (_, i) => i));
  reply(id, P.DATA_LOADED, { trainCount: train.count, testCount: test.count, sample, wasmBytes: engine.memoryBytes }, [sample.images.buffer, sample.labels.buffer]);
}

/** Test images `indices` for the page to draw: { images (planes, one after another), labels, shape }. */
function imagesOf(indices) {
  const f = test.format, size = test.imageBytes;
  const images = new Uint8Array(indices.length * size), labels = new Uint8Array(indices.length);
  indices.forEach((index, i) => {
    images.set(test.image(index), i * size);
    labels[i] = test.label(index);
  });
  return { images, labels, indices: Int32Array.from(indices), shape: [f.channels, f.height, f.width] };
}

/** The first SAMPLE_IMAGES misclassified test images, with what the model predicted for each. */
function mistakesOf(predictions) {
  const labels = test.labels();
  const picked = [];
  for (let i = 0; i < predictions.length && picked.length < P.SAMPLE_IMAGES; i++) if (predictions[i] !== labels[i]) picked.push(i);
  const gallery = imagesOf(picked);
  gallery.predicted = Uint8Array.from(picked, (i) => predictions[i]);
  return gallery;
}

/**
 * A peer worker wrapped as parallel.js's endpoint. Its error event is cancelled here (so it does
 * not also count as this worker crashing) and reported to the stepper, now and on every later post.
 */
function peerEndpoint() {
  const peer = new Worker(new URL('./peer-worker.js', import.meta.url), { type: 'module' });
  let failure = null;
  let onError = () => {};
  const fail = (error) => {
    failure ??= error;
    onError(failure);
  };
  peer.addEventListener('error', (event) => {
    event.preventDefault();
    fail(new Error(event.message || 'its script failed to load (peer-worker.js or a module it imports)'));
  });
  peer.addEventListener('messageerror', () => fail(new Error('one of its messages could not be read')));
  return {
    post: (msg, transfer) => {
      if (failure) queueMicrotask(() => onError(failure));
      else peer.postMessage(msg, transfer);
    },
    onMessage: (handler) => { peer.onmessage = (event) => handler(event.data); },
    onError: (handler) => { onError = handler; },
    close: () => peer.terminate(),
    /** For DEBUG_CRASH: dies and is reported as a crashed peer is. */
    kill: (message) => {
      peer.terminate();
      fail(new Error(message));
    },
  };
}

/** workers - 1 peers holding copies of the run's data and the model's state, ready to step. */
async function startPeers(engine, module, workers, runTrain, runTest, options) {
  const endpoints = Array.from({ length: workers - 1 }, peerEndpoint);
  const stepper = new DataParallelStepper(engine, model, runTrain, endpoints);
  try {
    await stepper.init({
      module,
      trainFiles: [recordsOf(engine, runTrain, 'training records')],
      testFiles: [recordsOf(engine, runTest, 'test records')],
      seed: options.seed, shuffle: options.shuffle, lr: options.lr, augment: options.augment, transferFiles: true, // copies made for the peers
    });
  } catch (error) {
    stepper.close();
    throw error;
  }
  peers = endpoints;
  return stepper;
}

/** Reads a checkpoint's run state without touching the model (a small throwaway one parses it). */
function readCheckpoint(engine, bytes, name) {
  const { spec, text } = engine.describeCheckpoint(bytes, name);
  const probe = engine.createModel({ spec, text, maxBatch: 1 });
  try {
    return probe.loadCheckpoint(bytes, name);
  } finally {
    probe.destroy();
  }
}

/** A model holding the checkpoint, sized for its batch size; the current model is left alone. */
function modelFromCheckpoint(engine, bytes, name) {
  const runState = readCheckpoint(engine, bytes, name);
  const { spec, text } = engine.describeCheckpoint(bytes, name);
  const candidate = engine.createModel({ spec, text, maxBatch: runState.batchSize, seed: runState.seed });
  try {
    attachDescription(candidate, parseDescription(text || presetText));
  } catch {
    // A checkpoint's text that does not parse (made elsewhere): the model trains, unnamed.
  }
  try {
    candidate.loadCheckpoint(bytes, name);
  } catch (error) {
    candidate.destroy();
    throw error;
  }
  return { candidate, runState };
}

let startGeneration = 0;

async function start(id, options) {
  const { engine, module } = await getEngine();
  if (!train || !test) throw new RangeError('no data loaded');
  await stopRun();
  const generation = ++startGeneration;
  let settings = {
    epochs: options.epochs, batchSize: options.batchSize, lr: options.lr, seed: options.seed, shuffle: true,
    workers: options.workers ?? 1, limitTrain: options.limitTrain, limitTest: options.limitTest,
    recipe: options.recipe ?? {}, // the page's recipe (recipe.js); epochs, batchSize and lr above override it
  };
  let next, resume = null, fromWeights = null;
  if (options.checkpoint) {
    const { name, buffer } = options.checkpoint;
    await descriptionOf(null); // a version 1 checkpoint is named from the simplecnn preset
    const { candidate, runState } = modelFromCheckpoint(engine, new Uint8Array(buffer), name);
    if (runState.trainCount > train.count) {
      candidate.destroy();
      throw new RangeError(`${name} continues a run over ${runState.trainCount.toLocaleString('en')} training images; the loaded data has ${train.count.toLocaleString('en')}`);
    }
    next = candidate;
    resume = runState;
    settings = {
      ...settings, batchSize: runState.batchSize, seed: runState.seed, shuffle: runState.shuffle,
      workers: Math.max(1, runState.workers || 1), limitTrain: runState.trainCount,
      epochs: options.epochs ?? runState.epochs, lr: options.lr ?? runState.adam.lr,
      // A checkpoint's own recipe (version 3) continues; the page may change epochs and lr.
      recipe: runState.recipe ?? options.recipe ?? {},
    };
  } else {
    // Safetensors weights bring their model, unless the page names one.
    const text = options.model ?? (pendingWeights?.kind === 'safetensors' ? pendingWeights.text : null);
    next = modelFrom(engine, await descriptionOf(text), { maxBatch: settings.batchSize, seed: settings.seed });
    fromWeights = pendingWeights?.name ?? null;
    try {
      if (pendingWeights?.kind === 'safetensors') importSafetensors(next, pendingWeights.bytes, pendingWeights.name);
      else if (pendingWeights) next.importWeights(pendingWeights.bytes, pendingWeights.name);
    } catch (error) {
      next.destroy();
      throw error;
    }
    if (!fromWeights) modelAccuracy = null;
  }
  model?.destroy();
  model = next;
  pendingWeights = null;
  const runTrain = limited(train, settings.limitTrain);
  const runTest = limited(test, settings.limitTest);
  const candidateRun = new TrainingRun(engine, model, { ...settings, train: runTrain, test: runTest, resume, whiten: !fromWeights });
  try {
    if (settings.workers > 1 && !candidateRun.done) {
      candidateRun.stepper = await startPeers(engine, module, settings.workers, runTrain, runTest, { ...settings, augment: candidateRun.options.augment });
    }
  } catch (error) {
    candidateRun.dispose();
    throw new Error(`starting ${settings.workers - 1} peer worker(s): ${error.message}`);
  }
  if (generation !== startGeneration) { // stopped or restarted while the peers started
    candidateRun.stepper?.close();
    candidateRun.dispose();
    throw new RangeError('the run was stopped while its workers were starting');
  }
  run = candidateRun;
  paused = false;
  lastEvalRate = 0;
  samplesBeforeRun = run.epoch * runTrain.count + Math.min(run.step * settings.batchSize, runTrain.count);
  autosaveMs = 1000 * (options.autosaveSeconds > 0 ? options.autosaveSeconds : P.AUTOSAVE_SECONDS);
  autosaveRate = options.autosaveBytesPerSecond > 0 ? options.autosaveBytesPerSecond : Infinity;
  reply(id, P.RUN_STARTED, {
    stepsPerEpoch: run.stepsPerEpoch, epochs: settings.epochs, batchSize: settings.batchSize, lr: settings.lr, recipe: run.recipe,
    seed: settings.seed, trainCount: runTrain.count, testCount: runTest.count,
    workersUsed: run.stepper ? run.stepper.workers : 1, fromWeights,
    resumed: resume ? { epoch: resume.epoch, step: resume.step } : null,
  });
  autosave('start');
  post(P.STATE, { state: 'running' });
  scheduleSlice();
}

/** Checkpoints the run (between two steps) for the page to keep. */
function autosave(reason) {
  const bytes = run.checkpoint();
  const runState = run.runState();
  lastCheckpoint = { bytes, runState };
  const copy = bytes.slice();
  post(P.CHECKPOINT, { reason, runState, buffer: copy.buffer }, [copy.buffer]);
  msSinceSave = 0;
  nextSaveMs = autosaveGapMs(autosaveMs / 1000, bytes.byteLength, autosaveRate);
}

/** Ends the run, its peers and its slices. Waits (a little) for a slice in flight to end first. */
async function stopRun({ checkpoint = false } = {}) {
  if (!run) return;
  paused = true;
  const finished = await Promise.race([betweenSteps().then(() => true), delay(5000).then(() => false)]);
  if (!run) return;
  if (checkpoint && finished && !run.done) autosave('stop');
  endRun();
}

function endRun() {
  run?.stepper?.close();
  run?.dispose();
  run = null;
  peers = [];
  paused = false;
  scheduledSlice = 0;
  sliceInFlight = null;
}

const delay = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Yielding through a MessageChannel (not setTimeout, which is clamped) lets PAUSE and STOP, queued
// behind the current slice, run before the next one. One slice at a time: `scheduledSlice` is the
// token of the slice posted and not yet finished (0: none); ending a run clears it, so a slice of
// an old run that finishes late (its peers gone) schedules nothing.
const sliceChannel = new MessageChannel();
let scheduledSlice = 0;
let nextSliceToken = 1;
let sliceInFlight = null; // the promise of the slice being run

// Not async: a debug crash must be a real uncaught error of this worker, not a rejected promise.
sliceChannel.port1.onmessage = ({ data: token }) => {
  if (token !== scheduledSlice) return;
  if (crashRequested) debugTrap();
  const slice = runSlice(run);
  sliceInFlight = slice;
  slice.then(() => {
    if (sliceInFlight === slice) sliceInFlight = null;
    if (token !== scheduledSlice) return;
    scheduledSlice = 0;
    if (run && !paused) scheduleSlice();
  });
};

function scheduleSlice() {
  if (scheduledSlice || !run) return;
  scheduledSlice = nextSliceToken++;
  sliceChannel.port2.postMessage(scheduledSlice);
}

/** Resolves when no step is under way (with peers, a step awaits their gradients). */
async function betweenSteps() {
  while (sliceInFlight) await sliceInFlight;
}

async function runSlice(current) {
  if (!current || paused) return;
  const started = performance.now();
  try {
    while (!current.done && !paused && performance.now() - started < P.SLICE_MS) {
      const stepStarted = performance.now();
      // runStep resolves at once on this thread; with data-parallel peers it really waits.
      const events = await current.runStep();
      if (run !== current) return; // stopped meanwhile
      msSinceSave += performance.now() - stepStarted;
      for (const event of events) emit(event);
      if (DEBUG_STEP_MS) await delay(DEBUG_STEP_MS); // PAUSE and STOP can arrive meanwhile
      const epochEnded = events.some((e) => e.event === 'epoch');
      if (!current.done && (epochEnded || msSinceSave >= nextSaveMs)) autosave(epochEnded ? 'epoch' : 'interval');
      // An epoch's evaluation may have taken a while: let waiting messages in.
      if (epochEnded) break;
    }
  } catch (error) {
    if (run !== current) return;
    endRun();
    // The model may hold non-finite values now; lastCheckpoint is the last good state.
    const diverged = error instanceof DivergenceError ? { epoch: error.epoch, step: error.step } : null;
    post(P.ERROR, { scope: 'run', message: messageOf(error), diverged });
    post(P.STATE, { state: 'stopped' });
    return;
  }
  postProgress();
  if (current.done) {
    lastCheckpoint = { bytes: current.checkpoint(), runState: current.runState() };
    endRun();
    post(P.STATE, { state: 'done' });
  }
}

function emit(event) {
  if (event.event === 'loss') {
    post(P.LOSS, event);
    return;
  }
  const { detail, ...summary } = event;
  const conv1 = conv1Of(model);
  const message = { ...summary, conv1, conv1Shape: conv1ShapeOf(model), wasmBytes: model.engine.memoryBytes };
  const transfer = conv1 ? [conv1.buffer] : [];
  if (event.evaluated) {
    // Forward passes per second: a test-time augmented evaluation makes several per image.
    lastEvalRate = summary.eval_samples_per_s * TTA_VIEWS[summary.tta];
    modelAccuracy = summary.test_accuracy;
    Object.assign(message, { confusion: detail.confusion, predictions: samplePredictions(detail.predictions), mistakes: mistakesOf(detail.predictions) });
    transfer.push(message.confusion.buffer, message.predictions.buffer, message.mistakes.images.buffer);
  }
  post(P.EPOCH, message, transfer);
}

function postProgress() {
  const { epochs, batchSize } = run.options;
  const totalSteps = epochs * run.stepsPerEpoch;
  const globalStep = run.globalStep;
  const trainedSeconds = run.totalTrainMs / 1000;
  const samplesDone = run.epoch * run.train.count + Math.min(run.step * batchSize, run.train.count);
  const samplesPerSecond = trainedSeconds > 0 ? (samplesDone - samplesBeforeRun) / trainedSeconds : 0;
  let etaSeconds = null;
  if (samplesPerSecond > 0) {
    // A forward pass costs about a third of a training step until an evaluation has been timed.
    const passRate = lastEvalRate || 3 * samplesPerSecond;
    const passesLeft = evaluationPasses(run.recipe, epochs, run.epoch);
    etaSeconds = (epochs * run.train.count - samplesDone) / samplesPerSecond + (passesLeft * run.test.count) / passRate;
  }
  post(P.PROGRESS, {
    epoch: Math.min(run.epoch + 1, epochs), epochs, step: run.step, steps: run.stepsPerEpoch,
    globalStep, totalSteps, samplesPerSecond, etaSeconds,
  });
}

function exportWeights(id) {
  if (!model) throw new RangeError('there is no model yet: train or load weights first');
  const bytes = model.exportWeights();
  reply(id, P.WEIGHTS, { buffer: bytes.buffer }, [bytes.buffer]);
}

function evaluationOf(m) {
  if (!test) return null;
  const r = m.evaluate(test);
  modelAccuracy = r.accuracy;
  return {
    test_accuracy: r.accuracy, correct: r.correct, total: r.total, test_loss: r.loss, tta: r.tta,
    confusion: r.confusion, predictions: samplePredictions(r.predictions), mistakes: mistakesOf(r.predictions),
  };
}

async function loadWeights(id, data) {
  const { name, buffer, batchSize } = data;
  const { engine } = await getEngine();
  if (run) throw new RangeError('stop the training run before loading weights');
  const bytes = new Uint8Array(buffer);
  // Imported into a fresh model first, so a refused file leaves the current model untouched.
  const candidate = modelFrom(engine, await descriptionOf(data.model), { maxBatch: batchSize, seed: 0 });
  try {
    candidate.importWeights(bytes, name);
  } catch (error) {
    candidate.destroy();
    throw error;
  }
  model?.destroy();
  model = candidate;
  pendingWeights = { name, bytes };
  reply(id, P.WEIGHTS_LOADED, { name, conv1: conv1Of(model), conv1Shape: conv1ShapeOf(model), evaluation: evaluationOf(model) });
}

/**
 * The model as a file of each kind: { files: [{ kind, name, size, problem, buffer? }] }; with
 * `kind`, that one file's bytes (transferred). A kind the model cannot be has `problem`.
 */
async function exportModel(id, { kind = null }) {
  await betweenSteps();
  if (!model) throw new RangeError('there is no model yet: train or load weights first');
  const name = await modelNameOf(model);
  const files = [], transfer = [];
  for (const k of kind ? [kind] : Object.keys(MODEL_FILE_KINDS)) {
    const file = { kind: k, name: downloadName(name, modelAccuracy, k), size: null, problem: null };
    try {
      const bytes = modelFile(model, k, { format: dataFormat(), accuracy: modelAccuracy });
      file.size = bytes.byteLength;
      if (kind) {
        file.buffer = bytes.buffer;
        transfer.push(bytes.buffer);
      }
    } catch (error) {
      if (kind) throw error;
      file.problem = error.message;
    }
    files.push(file);
  }
  reply(id, P.MODEL_FILES, { files }, transfer);
}

/** Loads safetensors into a fresh model (the page's, else the one the file names), kept on success. */
async function loadSafetensors(id, { name, buffer, batchSize, model: wanted }) {
  const { engine } = await getEngine();
  if (run) throw new RangeError('stop the training run before loading weights');
  const bytes = new Uint8Array(buffer);
  const named = safetensorsDescription(bytes, name);
  const text = await descriptionOf(wanted ?? named);
  const candidate = modelFrom(engine, text, { maxBatch: batchSize, seed: 0 });
  try {
    importSafetensors(candidate, bytes, name);
  } catch (error) {
    candidate.destroy();
    reply(id, P.ERROR, { scope: 'weights', message: error.message, fileModel: named });
    return;
  }
  model?.destroy();
  model = candidate;
  pendingWeights = { name, bytes, kind: 'safetensors', text };
  reply(id, P.WEIGHTS_LOADED, { name, model: text, conv1: conv1Of(model), conv1Shape: conv1ShapeOf(model), evaluation: evaluationOf(model) });
}

async function exportCheckpoint(id) {
  await betweenSteps();
  const saved = run ? { bytes: run.checkpoint(), runState: run.runState() } : lastCheckpoint;
  if (!saved) throw new RangeError('there is no checkpoint yet: start a run or load a checkpoint first');
  const copy = saved.bytes.slice();
  reply(id, P.CHECKPOINT_DATA, { buffer: copy.buffer, runState: saved.runState }, [copy.buffer]);
}

/** The description text a checkpoint carries (a version 1 file: SimpleCNN's preset). */
async function checkpointText(engine, bytes, name) {
  const { text } = engine.describeCheckpoint(bytes, name);
  return text || (await descriptionOf(null));
}

async function loadCheckpoint(id, { name, buffer, model: wanted }) {
  const { engine } = await getEngine();
  if (run) throw new RangeError('stop the training run before loading a checkpoint');
  const bytes = new Uint8Array(buffer);
  const saved = await checkpointText(engine, bytes, name);
  if (wanted) {
    let difference = null;
    try {
      difference = describeDifference(parseDescription(wanted), parseDescription(saved));
    } catch {
      difference = 'the model in the editor does not parse';
    }
    if (difference) {
      reply(id, P.ERROR, { scope: 'checkpoint', message: `${name} holds another model than the one in the editor: ${difference}.`, checkpointModel: saved });
      return;
    }
  }
  const { candidate, runState } = modelFromCheckpoint(engine, bytes, name);
  model?.destroy();
  model = candidate;
  pendingWeights = null;
  lastCheckpoint = { bytes, runState };
  reply(id, P.CHECKPOINT_LOADED, { name, runState, model: saved, conv1: conv1Of(model), conv1Shape: conv1ShapeOf(model), evaluation: evaluationOf(model) });
}

// A module whose only function executes `unreachable`: calling it is a genuine Wasm trap.
const TRAP_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export it as "f"
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable, end
]);

function debugTrap() {
  crashRequested = false;
  new WebAssembly.Instance(new WebAssembly.Module(TRAP_MODULE)).exports.f();
}

function debugCrash({ target }) {
  if (!DEBUG) throw new RangeError("debug messages are ignored unless the page's URL has debug=1");
  if (target === 'peer') {
    if (!peers.length) throw new RangeError('this run has no peer workers to crash');
    peers[0].kill('terminated (debug-crash)');
    return;
  }
  crashRequested = true;
  // With no slice coming, trap from a timer: an uncaught error all the same.
  if (!scheduledSlice) setTimeout(debugTrap, 0);
}

function messageOf(error) {
  if (error instanceof EngineError || error instanceof RangeError) return error.message;
  return error?.message ?? String(error);
}

const SCOPES = {
  [P.LOAD_DATA]: 'data', [P.START]: 'run', [P.EXPORT_WEIGHTS]: 'weights', [P.LOAD_WEIGHTS]: 'weights',
  [P.EXPORT_MODEL]: 'weights', [P.LOAD_SAFETENSORS]: 'weights',
  [P.EXPORT_CHECKPOINT]: 'checkpoint', [P.LOAD_CHECKPOINT]: 'checkpoint', [P.DESCRIBE]: 'model', [P.ACTIVATIONS]: 'model',
};

self.onmessage = async ({ data }) => {
  const { type, id } = data;
  try {
    switch (type) {
      case P.LOAD_DATA: await loadData(id, data); break;
      case P.START: await start(id, data); break;
      case P.PAUSE:
        paused = true;
        await betweenSteps();
        if (run && paused && !run.done) autosave('pause');
        reply(id, P.STATE, { state: run ? 'paused' : 'stopped' });
        break;
      case P.RESUME:
        paused = false;
        reply(id, P.STATE, { state: run ? 'running' : 'stopped' });
        scheduleSlice();
        break;
      case P.STOP:
        startGeneration++;
        await stopRun({ checkpoint: true });
        reply(id, P.STATE, { state: 'stopped' });
        break;
      case P.EXPORT_WEIGHTS: exportWeights(id); break;
      case P.LOAD_WEIGHTS: await loadWeights(id, data); break;
      case P.EXPORT_MODEL: await exportModel(id, data); break;
      case P.LOAD_SAFETENSORS: await loadSafetensors(id, data); break;
      case P.EXPORT_CHECKPOINT: await exportCheckpoint(id); break;
      case P.LOAD_CHECKPOINT: await loadCheckpoint(id, data); break;
      case P.DEBUG_CRASH: debugCrash(data); break;
      case P.DESCRIBE: await describe(id, data); break;
      case P.ACTIVATIONS: await activations(id, data); break;
      default: throw new Error(`unknown message type '${type}'`);
    }
  } catch (error) {
    reply(id, P.ERROR, { scope: SCOPES[type] ?? 'worker', message: messageOf(error) });
  }
};

// The training worker: owns the Wasm engine, the data sets, the model and the training run, and
// talks to the page only through the messages documented in protocol.js.
import { createEngine, Dataset, EngineError } from './engine.js';
import { TrainingRun } from './trainer.js';
import * as P from './protocol.js';

const CONV1_FLOATS = 6 * 3 * 5 * 5;

let enginePromise = null;
let train = null;      // full data sets; a run uses views limited to limitTrain/limitTest
let test = null;
let model = null;
let run = null;
let paused = false;
let pendingWeights = null; // { name, bytes } loaded after the last run: the next run starts from them
let lastEvalRate = 0;

/** Created once, on first use: fetching and compiling the module is the slow part of starting. */
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
    return createEngine(await response.arrayBuffer());
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

/** A limited view of a loaded data set: same records in Wasm memory, fewer of them; never freed. */
function limited(dataset, limit) {
  if (!limit || limit >= dataset.count) return dataset;
  return new Dataset(dataset.engine, dataset.ptr, limit, dataset.names);
}

function conv1Of(m) {
  return m.paramsView().slice(0, CONV1_FLOATS);
}

function samplePredictions(predictions) {
  return predictions.slice(0, P.SAMPLE_IMAGES);
}

async function loadData(id, { train: trainFiles, test: testFile }) {
  const engine = await getEngine();
  stopRun();
  const toFiles = (files) => files.map(({ name, buffer }) => ({ name, bytes: new Uint8Array(buffer) }));
  // Validate both before replacing either, so a bad file leaves the loaded data as it was.
  const newTrain = engine.loadDataset(toFiles(trainFiles));
  let newTest;
  try {
    newTest = engine.loadDataset(toFiles([testFile]));
  } catch (error) {
    newTrain.free();
    throw error;
  }
  train?.free();
  test?.free();
  train = newTrain;
  test = newTest;
  const n = Math.min(P.SAMPLE_IMAGES, test.count);
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) images.set(test.image(i), i * 3072);
  const labels = test.labels().slice(0, n);
  reply(id, P.DATA_LOADED, { trainCount: train.count, testCount: test.count, sample: { images, labels } }, [images.buffer, labels.buffer]);
}

async function start(id, options) {
  const engine = await getEngine();
  if (!train || !test) throw new RangeError('no data loaded');
  stopRun();
  model?.destroy();
  model = null;
  model = engine.createModel({ maxBatch: options.batchSize, seed: options.seed });
  const fromWeights = pendingWeights?.name ?? null;
  if (pendingWeights) model.importWeights(pendingWeights.bytes, pendingWeights.name);
  pendingWeights = null;
  run = new TrainingRun(engine, model, {
    train: limited(train, options.limitTrain),
    test: limited(test, options.limitTest),
    epochs: options.epochs,
    batchSize: options.batchSize,
    lr: options.lr,
    seed: options.seed,
  });
  paused = false;
  lastEvalRate = 0;
  reply(id, P.RUN_STARTED, {
    stepsPerEpoch: run.stepsPerEpoch, epochs: options.epochs, batchSize: options.batchSize,
    trainCount: run.train.count, testCount: run.test.count,
    // Data-parallel training across several workers is a later issue; one worker trains for now.
    workersUsed: 1, fromWeights,
  });
  post(P.STATE, { state: 'running' });
  scheduleSlice();
}

function stopRun() {
  run?.dispose();
  run = null;
  paused = false;
}

// Yielding through a MessageChannel (not setTimeout, which is clamped) lets PAUSE and STOP, queued
// behind the current slice, run before the next one. One slice at a time: `sliceActive` covers a
// slice from being scheduled until it has finished, awaits included.
const sliceChannel = new MessageChannel();
let sliceActive = false;
sliceChannel.port1.onmessage = async () => {
  await runSlice();
  sliceActive = false;
  if (run && !paused) scheduleSlice();
};

function scheduleSlice() {
  if (sliceActive) return;
  sliceActive = true;
  sliceChannel.port2.postMessage(null);
}

async function runSlice() {
  const current = run;
  if (!current || paused) return;
  const started = performance.now();
  try {
    while (!current.done && !paused && performance.now() - started < P.SLICE_MS) {
      // runStep resolves at once on this thread; with data-parallel peers it really waits.
      const events = await current.runStep();
      if (run !== current) return; // stopped meanwhile
      for (const event of events) emit(event);
      // An epoch's evaluation may have taken a while: let waiting messages in.
      if (events.some((e) => e.event === 'epoch')) break;
    }
  } catch (error) {
    if (run !== current) return;
    stopRun();
    post(P.ERROR, { scope: 'run', message: messageOf(error) });
    post(P.STATE, { state: 'stopped' });
    return;
  }
  postProgress();
  if (current.done) {
    stopRun();
    post(P.STATE, { state: 'done' });
  }
}

function emit(event) {
  if (event.event === 'loss') {
    post(P.LOSS, event);
    return;
  }
  const { detail, ...summary } = event;
  lastEvalRate = summary.eval_samples_per_s;
  const confusion = detail.confusion;
  const predictions = samplePredictions(detail.predictions);
  const conv1 = conv1Of(model);
  post(P.EPOCH, { ...summary, confusion, predictions, conv1 }, [confusion.buffer, predictions.buffer, conv1.buffer]);
}

function postProgress() {
  const { epochs, batchSize } = run.options;
  const totalSteps = epochs * run.stepsPerEpoch;
  const globalStep = run.globalStep;
  const trainedSeconds = run.totalTrainMs / 1000;
  const samplesDone = run.epoch * run.train.count + Math.min(run.step * batchSize, run.train.count);
  const samplesPerSecond = trainedSeconds > 0 ? samplesDone / trainedSeconds : 0;
  let etaSeconds = null;
  if (samplesPerSecond > 0) {
    // A forward pass costs about a third of a training step until an evaluation has been timed.
    const evalRate = lastEvalRate || 3 * samplesPerSecond;
    const evalsLeft = epochs - run.epoch;
    etaSeconds = (epochs * run.train.count - samplesDone) / samplesPerSecond + (evalsLeft * run.test.count) / evalRate;
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

async function loadWeights(id, { name, buffer, batchSize }) {
  const engine = await getEngine();
  if (run) throw new RangeError('stop the training run before loading weights');
  const bytes = new Uint8Array(buffer);
  // Imported into a fresh model first, so a refused file leaves the current model untouched.
  const candidate = engine.createModel({ maxBatch: batchSize, seed: 0 });
  try {
    candidate.importWeights(bytes, name);
  } catch (error) {
    candidate.destroy();
    throw error;
  }
  model?.destroy();
  model = candidate;
  pendingWeights = { name, bytes };
  let evaluation = null;
  if (test) {
    const r = model.evaluate(test);
    evaluation = {
      test_accuracy: r.accuracy, correct: r.correct, total: r.total, test_loss: r.loss,
      confusion: r.confusion, predictions: samplePredictions(r.predictions),
    };
  }
  const conv1 = conv1Of(model);
  reply(id, P.WEIGHTS_LOADED, { name, conv1, evaluation });
}

function messageOf(error) {
  if (error instanceof EngineError || error instanceof RangeError) return error.message;
  return error?.message ?? String(error);
}

const SCOPES = { [P.LOAD_DATA]: 'data', [P.START]: 'run', [P.EXPORT_WEIGHTS]: 'weights', [P.LOAD_WEIGHTS]: 'weights' };

self.onmessage = async ({ data }) => {
  const { type, id } = data;
  try {
    switch (type) {
      case P.LOAD_DATA: await loadData(id, data); break;
      case P.START: await start(id, data); break;
      case P.PAUSE:
        paused = true;
        reply(id, P.STATE, { state: run ? 'paused' : 'stopped' });
        break;
      case P.RESUME:
        paused = false;
        reply(id, P.STATE, { state: run ? 'running' : 'stopped' });
        if (run) scheduleSlice();
        break;
      case P.STOP:
        stopRun();
        reply(id, P.STATE, { state: 'stopped' });
        break;
      case P.EXPORT_WEIGHTS: exportWeights(id); break;
      case P.LOAD_WEIGHTS: await loadWeights(id, data); break;
      default: throw new Error(`unknown message type '${type}'`);
    }
  } catch (error) {
    reply(id, P.ERROR, { scope: SCOPES[type] ?? 'worker', message: messageOf(error) });
  }
};

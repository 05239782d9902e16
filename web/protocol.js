// The one message protocol between the page (app.js) and the training worker (worker.js): both
// import these names, so a message type is spelled in exactly one place.
//
// Every page -> worker message carries `id` (a number). The worker answers a request with one
// message whose `replyTo` is that id: its own reply type, or ERROR. Messages without `replyTo` are
// events the worker sends on its own while training.
//
// Page -> worker (requests)
//   LOAD_DATA      { train: [{ name, buffer }], test: { name, buffer }, format }   buffers are
//                  transferred: records as format says (datasets.js; CIFAR10_FORMAT by default, or
//                  an image set's, image-records.js formatOfMeta); more records than fit in the
//                  worker's Wasm memory are refused, saying how many fit
//                  -> DATA_LOADED { trainCount, testCount, sample: { images, labels, indices, shape }, wasmBytes }
//                     sample: the first SAMPLE_IMAGES test images (Uint8Array, C planes of H x W
//                     bytes each, shape [C, H, W]) and their labels, for the image grid;
//                     wasmBytes: the worker's Wasm memory now
//                  -> ERROR { scope: 'data', message }   message starts with the file's name
//   DESCRIBE       { text, format }   a model description (model-description.js) to check against
//                  `format` (the chosen data set's; kept for later checks), else the loaded data's
//                  shape (CIFAR-10's before any), without touching the model in use; START and the
//                  weights loaders make models for the loaded data's shape
//                  -> DESCRIBED { summary, peakGflops }   summary: model-spec.js summarize() (rows,
//                     totals, input, classes); peakGflops: this machine's Wasm SIMD multiply-add peak
//                     (measured once), for the page's time estimate
//                  -> ERROR { scope: 'model', message, line }   line: the description's line, or null
//   ACTIVATIONS    { index }   every layer's output for test image `index`, with the current model
//                  -> ACTIVATIONS_DATA { index, label, layers: [{ name, type, shape, data }] }
//                  -> ERROR { scope: 'model', message }   no model or no data yet
//   START          { epochs, batchSize, lr, seed, limitTrain, limitTest, workers, autosaveSeconds,
//                    autosaveBytesPerSecond, checkpoint, model }   model: the description text
//                  (default: the simplecnn preset)
//                  limits are integers or null (all records). workers: the total count; with more
//                  than one, this worker starts workers - 1 peer workers (peer-worker.js) and trains
//                  data-parallel (parallel.js). Without `checkpoint` a fresh model is made from
//                  `seed`, or from the weights last loaded with LOAD_WEIGHTS if that came after the
//                  last run. checkpoint: { name, buffer } (transferred) resumes that run exactly: its
//                  batch size, seed, shuffle, worker count and training-record count come from the
//                  file; epochs, lr and limitTest from this message (a different lr after a
//                  divergence, say). A CHECKPOINT event follows at once, after every epoch and after
//                  every autosaveSeconds of training, or after a checkpoint of N bytes not before
//                  N / autosaveBytesPerSecond seconds (absent: no limit; autosave-pacer.js).
//                  -> RUN_STARTED { stepsPerEpoch, epochs, batchSize, lr, seed, trainCount, testCount,
//                                   workersUsed, fromWeights, resumed: { epoch, step } | null }
//                  -> ERROR { scope: 'run', message }
//   PAUSE          {}  -> CHECKPOINT event, then STATE { state: 'paused' }   training stops between two steps
//   RESUME         {}  -> STATE { state: 'running' }
//   STOP           {}  -> CHECKPOINT event, then STATE { state: 'stopped' }   the model is kept
//                  (weights can be downloaded; the checkpoint resumes the run where it stopped)
//   EXPORT_CHECKPOINT {}  -> CHECKPOINT_DATA { buffer, runState }   the live run's checkpoint (taken
//                     between two steps), else the last one made or loaded; buffer transferred
//                  -> ERROR { scope: 'checkpoint', message }   when there is none
//   LOAD_CHECKPOINT { name, buffer, model }   buffer transferred; refused while a run is active.
//                  model: the page's description text; a checkpoint of another model is refused
//                  naming the difference, with its own description in `checkpointModel`
//                  -> CHECKPOINT_LOADED { name, runState, model, conv1, evaluation }   the model now
//                     holds the checkpoint's weights; model: the checkpoint's description text;
//                     evaluation as for WEIGHTS_LOADED
//                  -> ERROR { scope: 'checkpoint', message, checkpointModel }
//                  -> ERROR { scope: 'checkpoint', message }   the engine's message; the model is kept
//   DEBUG_CRASH    { target }  honoured only by a worker started as worker.js?debug=1 (the page does
//                  that when its own URL has debug=1). target 'worker': the worker executes a Wasm
//                  `unreachable` outside any handler, inside the step loop when a run is active, so it
//                  dies as a real trap would (the page sees the Worker's error event). target 'peer':
//                  the first peer worker is terminated and reported as crashed, so the run ends with
//                  an ERROR event as on a real peer crash. No reply on success.
//   EXPORT_WEIGHTS {}  -> WEIGHTS { buffer }   the PyTorch-compatible raw float32 file, transferred
//                  -> ERROR { scope: 'weights', message }   when there is no model yet
//   LOAD_WEIGHTS   { name, buffer, batchSize, model }   buffer transferred; model: description text
//                  -> WEIGHTS_LOADED { name, conv1, evaluation }   evaluation: EVALUATION payload or
//                     null when no test set is loaded yet
//                  -> ERROR { scope: 'weights', message }   the engine's message; the model is kept
//   EXPORT_MODEL   { kind }   kind: 'safetensors' | 'onnx' | 'py' | 'raw' (model-files.js), or
//                  none for the sizes of all of them
//                  -> MODEL_FILES { files: [{ kind, name, size, problem, buffer }] }   name: the
//                     download's name (the model and its last test accuracy); problem: why the
//                     model has no file of that kind (raw weights of a net with batch norm);
//                     buffer (transferred) only for the one kind asked for
//                  -> ERROR { scope: 'weights', message }   when there is no model yet
//   LOAD_SAFETENSORS { name, buffer, batchSize, model }   buffer transferred; model: the page's
//                  description text, else the model the file names (its metadata), else SimpleCNN;
//                  the next Start trains on from these weights (and their model)
//                  -> WEIGHTS_LOADED { name, model, conv1, evaluation }   model: the description used
//                  -> ERROR { scope: 'weights', message, fileModel }   the model is kept; fileModel:
//                     the description the file names, or null
//
// Worker -> page (events, no replyTo)
//   STATE          { state }   'running' | 'paused' | 'stopped' | 'done'
//   PROGRESS       { epoch, epochs, step, steps, globalStep, totalSteps, samplesPerSecond, etaSeconds }
//                  after every slice of steps (~SLICE_MS), for the progress bar
//   LOSS           { epoch, epochs, step, steps, loss }   every 100 steps: the mean of those steps'
//                  losses, as the CLI prints it (formatLoss)
//   EPOCH          { epoch, epochs, evaluated, test_accuracy, correct, total, test_loss, tta,
//                    train_samples_per_s, eval_samples_per_s, elapsed_s, confusion, predictions,
//                    conv1, wasmBytes }
//                  after each epoch (and its evaluation on the test set). With evaluated false
//                  (the recipe's eval_every skipped it) only epoch, epochs, train_samples_per_s,
//                  train_s, elapsed_s, partial_loss, conv1 and wasmBytes. confusion: Int32Array(K * K),
//                  [true * K + predicted] for K classes; predictions: Uint8Array of the first
//                  SAMPLE_IMAGES test images; mistakes: the first SAMPLE_IMAGES misclassified test
//                  images, as DATA_LOADED's sample with `predicted`; conv1: the first conv's weight
//                  when it sees the image (1 or 3 channels), conv1Shape its shape; wasmBytes: the
//                  worker's Wasm memory
//   CHECKPOINT     { reason, runState, buffer }   reason: 'start' | 'epoch' | 'interval' | 'pause' |
//                  'stop'. A checkpoint of the run between two steps (Model.saveCheckpoint, transferred)
//                  for the page to keep; runState as Model.loadCheckpoint returns it. Every LOSS and
//                  EPOCH event sent before it is part of the state it saves; none after it is.
//   ERROR          { scope, message, diverged }   also without replyTo, e.g. a step failing mid-run
//                  (scope 'run'); the run is then stopped. diverged: { epoch, step } (1-based) when
//                  the loss or a parameter stopped being finite; the last CHECKPOINT is still good.

export const LOAD_DATA = 'load-data';
export const DATA_LOADED = 'data-loaded';
export const START = 'start';
export const RUN_STARTED = 'run-started';
export const PAUSE = 'pause';
export const RESUME = 'resume';
export const STOP = 'stop';
export const EXPORT_WEIGHTS = 'export-weights';
export const WEIGHTS = 'weights';
export const LOAD_WEIGHTS = 'load-weights';
export const WEIGHTS_LOADED = 'weights-loaded';
export const EXPORT_MODEL = 'export-model';
export const MODEL_FILES = 'model-files';
export const LOAD_SAFETENSORS = 'load-safetensors';
export const EXPORT_CHECKPOINT = 'export-checkpoint';
export const CHECKPOINT_DATA = 'checkpoint-data';
export const LOAD_CHECKPOINT = 'load-checkpoint';
export const CHECKPOINT_LOADED = 'checkpoint-loaded';
export const DEBUG_CRASH = 'debug-crash';
export const DESCRIBE = 'describe';
export const DESCRIBED = 'described';
export const ACTIVATIONS = 'activations';
export const ACTIVATIONS_DATA = 'activations-data';

export const STATE = 'state';
export const PROGRESS = 'progress';
export const LOSS = 'loss';
export const EPOCH = 'epoch';
export const CHECKPOINT = 'checkpoint';
export const ERROR = 'error';

/** Test images sent to the page for the prediction grid. */
export const SAMPLE_IMAGES = 48;

/** Seconds of training between two autosaved checkpoints, unless the page's URL says otherwise. */
export const AUTOSAVE_SECONDS = 120;

/** How long the worker trains before yielding so PAUSE and STOP are handled promptly. */
export const SLICE_MS = 50;

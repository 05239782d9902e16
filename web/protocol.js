// The one message protocol between the page (app.js) and the training worker (worker.js): both
// import these names, so a message type is spelled in exactly one place.
//
// Every page -> worker message carries `id` (a number). The worker answers a request with one
// message whose `replyTo` is that id: its own reply type, or ERROR. Messages without `replyTo` are
// events the worker sends on its own while training.
//
// Page -> worker (requests)
//   LOAD_DATA      { train: [{ name, buffer }], test: { name, buffer } }   buffers are transferred
//                  -> DATA_LOADED { trainCount, testCount, sample: { images, labels } }
//                     sample: the first SAMPLE_IMAGES test images (Uint8Array, 3072 bytes each, R, G, B
//                     planes) and their labels, for the image grid
//                  -> ERROR { scope: 'data', message }   message starts with the file's name
//   START          { epochs, batchSize, lr, seed, limitTrain, limitTest, workers }
//                  limits are integers or null (all records). A fresh model is made from `seed`,
//                  or from the weights last loaded with LOAD_WEIGHTS if that came after the last run.
//                  -> RUN_STARTED { stepsPerEpoch, epochs, batchSize, trainCount, testCount, workersUsed, fromWeights }
//                  -> ERROR { scope: 'run', message }
//   PAUSE          {}  -> STATE { state: 'paused' }    training stops between two steps
//   RESUME         {}  -> STATE { state: 'running' }
//   STOP           {}  -> STATE { state: 'stopped' }   the model is kept (weights can be downloaded)
//   EXPORT_WEIGHTS {}  -> WEIGHTS { buffer }   the PyTorch-compatible raw float32 file, transferred
//                  -> ERROR { scope: 'weights', message }   when there is no model yet
//   LOAD_WEIGHTS   { name, buffer, batchSize }   buffer transferred
//                  -> WEIGHTS_LOADED { name, conv1, evaluation }   evaluation: EVALUATION payload or
//                     null when no test set is loaded yet
//                  -> ERROR { scope: 'weights', message }   the engine's message; the model is kept
//
// Worker -> page (events, no replyTo)
//   STATE          { state }   'running' | 'paused' | 'stopped' | 'done'
//   PROGRESS       { epoch, epochs, step, steps, globalStep, totalSteps, samplesPerSecond, etaSeconds }
//                  after every slice of steps (~SLICE_MS), for the progress bar
//   LOSS           { epoch, epochs, step, steps, loss }   every 100 steps: the mean of those steps'
//                  losses, as the CLI prints it (formatLoss)
//   EPOCH          { epoch, epochs, test_accuracy, correct, total, test_loss, train_samples_per_s,
//                    eval_samples_per_s, elapsed_s, confusion, predictions, conv1 }
//                  after each epoch's evaluation on the test set. confusion: Int32Array(100),
//                  [true * 10 + predicted]; predictions: Uint8Array of the first SAMPLE_IMAGES test
//                  images; conv1: Float32Array(450), conv1.weight (6, 3, 5, 5)
//   ERROR          { scope, message }   also without replyTo, e.g. a step failing mid-run
//                  (scope 'run'); the run is then stopped

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

export const STATE = 'state';
export const PROGRESS = 'progress';
export const LOSS = 'loss';
export const EPOCH = 'epoch';
export const ERROR = 'error';

/** Test images sent to the page for the prediction grid. */
export const SAMPLE_IMAGES = 48;

/** How long the worker trains before yielding so PAUSE and STOP are handled promptly. */
export const SLICE_MS = 50;

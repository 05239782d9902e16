#!/usr/bin/env node
// webtrain's headless trainer: `npm run --silent train -- --data DIR [options]`. Same engine,
// same training loop as the page's worker; prints the PyTorch reference's lines.
import { open, rename, unlink } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import path from 'node:path';

import { createEngine, EngineError, CIFAR10_FORMAT } from '../../web/engine.js';
import { parseDescription, describeDifference, DescriptionError, PRESETS, loadPreset } from '../../web/model-description.js';
import { createModelFromDescription, attachDescription, summarize, formatSummary } from '../../web/model-spec.js';
import { importSafetensors, safetensorsDescription, safetensorsDataBytes, SafetensorsError } from '../../web/safetensors.js';
import { MODEL_FILE_KINDS, kindOfFile, modelFile } from '../../web/model-files.js';
import { ALL_FILES, TRAIN_FILES, TEST_FILE, OFFICIAL_ARCHIVE } from '../../web/cifar.js';
import { TrainingRun, TRAINING_DEFAULTS, DivergenceError, formatLoss, formatAccuracy } from '../../web/trainer.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { startPeerWorkers } from './peer.js';
import { readCheckedFile, checkedSize, FileRefusedError, atMost, RECORDS_RULE, CHECKPOINT_RULE } from './files.js';
import { weightsRule, safetensorsRule, DESCRIPTION_RULE } from '../../web/file-limits.js';

/** All cores but one, at least one: the default number of training workers. */
export const DEFAULT_WORKERS = Math.max(1, availableParallelism() - 1);

const USAGE = `usage: npm run --silent train -- --data DIR [options]

  --data DIR              folder with data_batch_1.bin ... data_batch_5.bin and test_batch.bin
  --model NAME|FILE       the network: a preset (${PRESETS.map((p) => p.name).join(', ')}; default simplecnn)
                          or a description file (see the README's "Describing a network")
  --print-model           print the model's summary table (layers, shapes, parameters, MFLOP) and exit
  --epochs N              epochs to train (default 5; 0 = only evaluate)
  --batch-size N          images per step (default 64)
  --lr X                  Adam learning rate (default 0.001)
  --seed N                seed for initial weights and shuffling (default 0)
  --limit-train N         use only the first N training records
  --limit-test N          use only the first N test records
  --no-shuffle            keep the training records in file order
  --workers N             data-parallel training workers (default: all cores but one = ${DEFAULT_WORKERS})
  --import FILE           start from a .safetensors file (weights, batch-norm statistics); without
                          --model, the model it names. Repeatable: applied in order
  --export FILE           write the model after training (or with --epochs 0, as loaded), by the
                          extension: .safetensors (PyTorch's state_dict), .onnx (inference graph on
                          uint8 pixels) or .py (the PyTorch module). Repeatable; with --epochs 0
                          and no --data, only converts
  --import-weights FILE   start from a raw float32 weights file in state_dict order (SimpleCNN: 248,024 bytes)
  --export-weights FILE   write the trained weights in that format (nets without batch norm)
  --checkpoint FILE       save the whole training state to FILE after every epoch (atomically)
  --checkpoint-every N    ... and also every N steps
  --resume FILE           continue the run saved in a checkpoint (its seed, batch size, lr and
                          shuffle apply; --epochs may extend it)
  --json                  one JSON object per line instead of text
  --help                  this text`;

/** A mistake the user can fix; printed as one line, exit status 2 for usage, 1 otherwise. */
class UserError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function parseInteger(name, text, min, max = Number.MAX_SAFE_INTEGER) {
  if (!/^\d+$/.test(text ?? '') || Number(text) < min || Number(text) > max) {
    throw new UserError(`--${name}: expected an integer from ${min} to ${max}, got '${text}'`, 2);
  }
  return Number(text);
}

const STRING_OPTIONS = ['data', 'model', 'epochs', 'batch-size', 'lr', 'seed', 'limit-train', 'limit-test', 'import', 'export', 'import-weights', 'export-weights', 'workers', 'checkpoint', 'checkpoint-every', 'resume'];


function parseOptions(argv) {
  // `--lr -1` is a (bad) value, not an option: join it so the option's own check reports it.
  const args = [];
  for (let i = 0; i < argv.length; i++) {
    if (STRING_OPTIONS.includes(argv[i].slice(2)) && /^-[\d.]/.test(argv[i + 1] ?? '')) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        data: { type: 'string' }, model: { type: 'string' }, 'print-model': { type: 'boolean' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' },
        lr: { type: 'string' }, seed: { type: 'string' }, 'limit-train': { type: 'string' },
        'limit-test': { type: 'string' }, 'no-shuffle': { type: 'boolean' },
        'import-weights': { type: 'string' }, 'export-weights': { type: 'string' },
        import: { type: 'string', multiple: true }, export: { type: 'string', multiple: true },
        workers: { type: 'string' }, checkpoint: { type: 'string' }, 'checkpoint-every': { type: 'string' },
        resume: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UserError(`${error.message.split('\n')[0]} (see --help)`, 2);
  }
  const v = parsed.values;
  if (v.help) return { help: true };
  if (v['print-model']) return { printModel: true, model: v.model ?? 'simplecnn' };
  const exports = v.export ?? [], imports = v.import ?? [];
  for (const file of exports) {
    if (!kindOfFile(file)) throw new UserError(`--export ${file}: the extension must be .safetensors, .onnx or .py (it chooses the format)`, 2);
  }
  for (const file of imports) {
    if (kindOfFile(file) !== 'safetensors') throw new UserError(`--import ${file}: takes a .safetensors file (raw float32 weights: --import-weights)`, 2);
  }
  if (imports.length && v.resume) throw new UserError('--import and --resume cannot be combined: the checkpoint holds the weights', 2);
  if (imports.length && v['import-weights']) throw new UserError('--import and --import-weights cannot be combined: choose one file to start from', 2);
  const convertOnly = !v.data && v.epochs !== undefined && Number(v.epochs) === 0 && exports.length > 0;
  if (!v.data && !convertOnly) throw new UserError('--data DIR is required: the folder holding the CIFAR-10 .bin files', 2);
  const lr = v.lr === undefined ? TRAINING_DEFAULTS.lr : Number(v.lr);
  if (v.lr !== undefined && (v.lr.trim() === '' || !Number.isFinite(lr) || lr <= 0)) {
    throw new UserError(`--lr: expected a positive number, got '${v.lr}'`, 2);
  }
  if (v['checkpoint-every'] !== undefined && !v.checkpoint) throw new UserError('--checkpoint-every needs --checkpoint FILE', 2);
  return {
    data: v.data,
    model: v.model ?? 'simplecnn',
    epochs: v.epochs === undefined ? TRAINING_DEFAULTS.epochs : parseInteger('epochs', v.epochs, 0, 100000),
    batchSize: v['batch-size'] === undefined ? TRAINING_DEFAULTS.batchSize : parseInteger('batch-size', v['batch-size'], 1, 4096),
    lr,
    seed: v.seed === undefined ? TRAINING_DEFAULTS.seed : parseInteger('seed', v.seed, 0, 0xffffffff),
    limitTrain: v['limit-train'] === undefined ? Infinity : parseInteger('limit-train', v['limit-train'], 1),
    limitTest: v['limit-test'] === undefined ? Infinity : parseInteger('limit-test', v['limit-test'], 1),
    shuffle: !v['no-shuffle'],
    workers: v.workers === undefined ? DEFAULT_WORKERS : parseInteger('workers', v.workers, 1, 64),
    importWeights: v['import-weights'],
    checkpoint: v.checkpoint,
    checkpointEvery: v['checkpoint-every'] === undefined ? 0 : parseInteger('checkpoint-every', v['checkpoint-every'], 1),
    resume: v.resume,
    given: new Set(Object.keys(v)),
    exportWeights: v['export-weights'],
    imports,
    exports,
    convertOnly,
    json: Boolean(v.json),
  };
}

/** A resumed run takes its settings from the checkpoint; a contradicting option is an error. */
function applyCheckpointSettings(options, state, file) {
  const pairs = [['seed', 'seed', state.seed], ['batch-size', 'batchSize', state.batchSize], ['lr', 'lr', state.adam.lr], ['no-shuffle', 'shuffle', state.shuffle]];
  for (const [flag, key, saved] of pairs) {
    if (options.given.has(flag) && options[key] !== saved) {
      throw new UserError(`--${flag} ${flag === 'no-shuffle' ? '' : `${options[key]} `}contradicts ${file}, which was saved with ${key} ${saved}`, 2);
    }
    options[key] = saved;
  }
  if (!options.given.has('epochs')) options.epochs = state.epochs;
  if (!options.given.has('limit-train')) options.limitTrain = state.trainCount;
  if (!options.given.has('workers')) options.workers = state.workers;
  if (options.importWeights) throw new UserError('--import-weights and --resume cannot be combined: the checkpoint holds the weights', 2);
}

/** Reads a file the user named, refused (status 1) unless it is a regular file `rule` accepts. */
async function readInput(file, what, rule) {
  try {
    return await readCheckedFile(file, what, rule);
  } catch (error) {
    throw error instanceof FileRefusedError ? new UserError(error.message) : error;
  }
}

/** The text of --model: a preset's, or a description file's (read within its ceiling). */
async function modelText(model) {
  if (PRESETS.some((p) => p.name === model)) return { text: await loadPreset(model), name: model };
  if (!/[./\\]/.test(model)) {
    const known = PRESETS.map((p) => p.name).join(', ');
    const exists = await checkedSize(model, 'model description', DESCRIPTION_RULE).then(() => true, () => false);
    if (!exists) throw new UserError(`--model ${model}: not a preset (${known}) and no such file`, 2);
  }
  return { text: new TextDecoder().decode(await readInput(model, 'model description', DESCRIPTION_RULE)), name: model };
}

/** A model of the engine from a description; a bad description is a usage error naming the line. */
function buildModel(engine, { text, name }, options) {
  try {
    return createModelFromDescription(engine, text, CIFAR10_FORMAT, { maxBatch: options.batchSize ?? 64, seed: options.seed ?? 0 });
  } catch (error) {
    if (error instanceof DescriptionError) throw new UserError(`${name}: ${error.message}`, 2);
    throw error;
  }
}

/** The model a checkpoint holds, made from its own spec; --model, if given, must describe the same net. */
function modelFromCheckpoint(engine, bytes, file, requested, options) {
  const { spec, text } = engine.describeCheckpoint(bytes, file);
  if (requested) {
    const saved = text ? parseDescription(text) : null;
    const wanted = parseDescription(requested.text);
    const difference = saved ? describeDifference(wanted, saved) : null;
    if (difference) throw new UserError(`--model ${requested.name} differs from the model saved in ${file}: ${difference}`, 2);
  }
  return engine.createModel({ spec, text, maxBatch: options.batchSize, seed: options.seed });
}

/** The most the six CIFAR-10 files may hold together: twice CIFAR-10, well inside Wasm's 1 GB. */
const DATA_SET_CEILING = 2 * 60000 * 3073;

/** The compiled module, shared by this thread and the peer workers. */
async function compileModule() {
  const wasmPath = new URL('../../web/webtrain.wasm', import.meta.url);
  let bytes;
  try {
    bytes = await readCheckedFile(wasmPath.pathname, 'Wasm module', atMost(16 << 20, 'webtrain.wasm'));
  } catch (error) {
    throw new UserError(`${error.message}: build it first with 'npm run build'`);
  }
  return WebAssembly.compile(bytes);
}

/** Starts workers - 1 peers (this thread is the first worker); null for one worker. */
async function startPeers(count, model, train, trainFiles, testFiles, module, options) {
  if (count <= 1) return null;
  const stepper = new DataParallelStepper(model.engine, model, train, startPeerWorkers(count - 1));
  try {
    await stepper.init({
      module, trainFiles, testFiles, limit: options.limitTrain, testLimit: options.limitTest,
      seed: options.seed, shuffle: options.shuffle, lr: options.lr, augment: options.augment,
    });
  } catch (error) {
    stepper.close();
    throw error;
  }
  return stepper;
}

async function loadData(engine, dir, { limitTrain, limitTest }) {
  const what = `CIFAR-10 file (the folder must hold ${ALL_FILES.join(', ')} from ${OFFICIAL_ARCHIVE})`;
  // Every file is judged before any is read, so a bad last file costs no reading of the others.
  let total = 0;
  for (const name of ALL_FILES) {
    try {
      total += await checkedSize(path.join(dir, name), what, RECORDS_RULE);
    } catch (error) {
      throw error instanceof FileRefusedError ? new UserError(error.message) : error;
    }
  }
  if (total > DATA_SET_CEILING) throw new UserError(`${dir}: the six CIFAR-10 files hold ${total} bytes, more than the ${DATA_SET_CEILING}-byte ceiling (120000 records)`);
  const read = async (name) => {
    const file = path.join(dir, name);
    return { name: file, bytes: await readInput(file, what, RECORDS_RULE) };
  };
  const trainFiles = [];
  for (const name of TRAIN_FILES) trainFiles.push(await read(name));
  const testFile = await read(TEST_FILE);
  // Each file is validated by the C reader; its name prefixes any error.
  const train = engine.loadDataset(trainFiles, { limit: limitTrain });
  const test = engine.loadDataset([testFile], { limit: limitTest });
  return { train, test, trainFiles, testFiles: [testFile] };
}

/** Writes a temporary file, flushes it to disk, then renames it over `file`: a crash at any
 * moment leaves either the old file or the new one, never half of one. */
async function writeFileAtomic(file, bytes, what) {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw new UserError(`${file}: cannot write ${what} (${error.code ?? error.message})`);
  }
}

export async function main(argv, out = process.stdout) {
  const options = parseOptions(argv);
  if (options.help) {
    out.write(`${USAGE}\n`);
    return;
  }
  const module = await compileModule();
  const engine = await createEngine(module);
  if (options.printModel) {
    const model = buildModel(engine, await modelText(options.model), {});
    out.write(`${options.model} for CIFAR-10 (3x32x32, 10 classes):\n${formatSummary(summarize(model))}\n`);
    return;
  }
  const print = options.json
    ? (event) => out.write(`${JSON.stringify(event)}\n`)
    : (event) => {
      if (event.event === 'loss') out.write(`${formatLoss(event)}\n`);
      else {
        out.write(`${formatAccuracy(event)}\n`);
        const train = event.train_samples_per_s ? `training ${event.train_samples_per_s.toFixed(0)} samples/s, ` : '';
        out.write(`Throughput: ${train}evaluation ${event.eval_samples_per_s.toFixed(0)} samples/s (${event.elapsed_s.toFixed(1)} s elapsed)\n`);
      }
    };

  let resume = null, model;
  let description = options.resume && !options.given.has('model') ? null : await modelText(options.model);
  if (options.imports.length && !options.given.has('model')) description = (await modelOfImport(options.imports[0])) ?? description;
  if (options.resume) {
    const bytes = await readInput(options.resume, 'checkpoint', CHECKPOINT_RULE);
    // Read once into a throwaway model to learn the run's batch size and seed.
    const probe = modelFromCheckpoint(engine, bytes, options.resume, description, { batchSize: 1, seed: 0 });
    try {
      resume = probe.loadCheckpoint(bytes, options.resume);
    } finally {
      probe.destroy();
    }
    applyCheckpointSettings(options, resume, options.resume);
    model = modelFromCheckpoint(engine, bytes, options.resume, null, options);
    model.loadCheckpoint(bytes, options.resume);
  }
  model ??= buildModel(engine, description, options);
  if (options.importWeights) {
    const rule = weightsRule(model.paramCount, `a ${options.model} weights file (${model.paramCount.toLocaleString('en')} float32 parameters)`);
    model.importWeights(await readInput(options.importWeights, 'weights file', rule), options.importWeights);
  }
  for (const file of options.imports) {
    const bytes = await readInput(file, 'safetensors file', safetensorsRule(safetensorsDataBytes(model)));
    try {
      importSafetensors(model, bytes, file);
    } catch (error) {
      if (!(error instanceof SafetensorsError)) throw error;
      const hint = !options.given.has('model') && /another model/.test(error.message) ? ' (name its model with --model)' : '';
      throw new UserError(`${error.message}${hint}`);
    }
  }
  if (options.convertOnly) {
    await writeExports(model, options.exports, null);
    return;
  }
  const { train, test, trainFiles, testFiles } = await loadData(engine, options.data, options);

  const workers = options.epochs > 0 ? options.workers : 1;
  let run;
  try {
    run = new TrainingRun(engine, model, { train, test, ...options, resume, workers, whiten: !options.importWeights && !options.imports.length });
  } catch (error) {
    throw new UserError(`${options.resume ?? 'training'}: ${error.message}`);
  }
  const stepper = run.done ? null : await startPeers(workers, model, train, trainFiles, testFiles, module, options);
  run.stepper = stepper;
  let lastCheckpoint = null; // where the newest good checkpoint of this run is
  if (options.resume) lastCheckpoint = options.resume;
  const saveCheckpoint = async () => {
    await writeFileAtomic(options.checkpoint, run.checkpoint(), 'checkpoint');
    lastCheckpoint = options.checkpoint;
  };
  let accuracy = null; // the last test accuracy, for the exported files' metadata
  if (options.epochs === 0) {
    const result = await run.evaluate();
    accuracy = result.summary.test_accuracy;
    print({ event: 'eval', ...result.summary, eval_samples_per_s: result.samplesPerSecond, elapsed_s: (performance.now() - run.startedAt) / 1000 });
  } else {
    try {
      while (!run.done) {
        let events;
        try {
          events = await run.runStep();
        } catch (error) {
          if (!(error instanceof DivergenceError)) throw error;
          const kept = lastCheckpoint ? ` The last good checkpoint is ${lastCheckpoint} (resume with --resume ${lastCheckpoint} --lr ...).` : '';
          throw new UserError(`${error.message}${kept}`);
        }
        for (const event of events) {
          const { detail, ...summary } = event;
          if (event.event === 'epoch') accuracy = event.test_accuracy;
          print(options.json ? withoutDisplayFields(summary) : summary);
        }
        const epochEnded = events.some((e) => e.event === 'epoch');
        if (options.checkpoint && (epochEnded || (options.checkpointEvery && run.globalStep % options.checkpointEvery === 0))) {
          await saveCheckpoint();
        }
      }
    } finally {
      stepper?.close();
    }
  }
  if (options.exportWeights) {
    let bytes;
    try {
      bytes = model.exportWeights();
    } catch (error) {
      throw new UserError(`--export-weights: ${error.message}`);
    }
    await writeFileAtomic(options.exportWeights, bytes, 'weights');
  }
  await writeExports(model, options.exports, accuracy);
}

/** The description a safetensors file carries (webtrain writes it), as --model would give it. */
async function modelOfImport(file) {
  const bytes = await readInput(file, 'safetensors file', safetensorsRule());
  let text;
  try {
    text = safetensorsDescription(bytes, file);
  } catch (error) {
    throw error instanceof SafetensorsError ? new UserError(error.message) : error;
  }
  return text === null ? null : { text, name: `the model in ${file}` };
}

/** Writes each --export file in the format its extension names; `accuracy` goes in the metadata. */
async function writeExports(model, files, accuracy) {
  if (!files.length) return;
  // A model made from a checkpoint's spec gets its description (version 1: SimpleCNN's).
  if (!model.description) attachDescription(model, parseDescription(model.source().text || await loadPreset('simplecnn')));
  for (const file of files) {
    const kind = kindOfFile(file);
    await writeFileAtomic(file, modelFile(model, kind, { format: CIFAR10_FORMAT, accuracy }), MODEL_FILE_KINDS[kind].label);
  }
}

/** JSON lines carry the fields documented in the README, not the text formatter's extras. */
function withoutDisplayFields(event) {
  const { epochs, partial_loss: partialLoss, ...rest } = event;
  return rest;
}

const isMain = import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  main(process.argv.slice(2)).catch((error) => {
    const known = error instanceof UserError || error instanceof EngineError || error instanceof DescriptionError;
    if (error instanceof DescriptionError) error.exitCode = 2;
    process.stderr.write(`webtrain: ${known ? error.message : error.stack}\n`);
    process.exitCode = error.exitCode ?? 1;
  });
}

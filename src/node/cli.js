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
import { importSafetensors, safetensorsModel, safetensorsDataBytes, SafetensorsError } from '../../web/safetensors.js';
import { MODEL_FILE_KINDS, kindOfFile, modelFile } from '../../web/model-files.js';
import { DATASETS, DATASET_NAMES, DatasetError } from '../../web/datasets.js';
import { formatClassReport } from '../../web/class-stats.js';
import { TrainingRun, TRAINING_DEFAULTS, DivergenceError, formatLoss, formatEpoch, formatThroughput } from '../../web/trainer.js';
import { RECIPE_FIELDS, RecipeError, resolveRecipe, defaultRecipe, formatField } from '../../web/recipe.js';
import { DataParallelStepper } from '../../web/parallel.js';
import { startPeerWorkers } from './peer.js';
import { readCheckedFile, checkedSize, FileRefusedError, atMost, CHECKPOINT_RULE } from './files.js';
import { readDataset, detectFolder } from './data.js';
import { weightsRule, safetensorsRule, DESCRIPTION_RULE } from '../../web/file-limits.js';
import { isPackedDir, loadPacked } from './packed.js';
import { ImageSetError } from '../../web/image-records.js';

/** All cores but one, at least one: the default number of training workers. */
export const DEFAULT_WORKERS = Math.max(1, availableParallelism() - 1);

const USAGE = `usage: npm run --silent train -- --data DIR [options]

  --data DIR              the data set's folder, recognised by its files: CIFAR-10 (data_batch_1.bin
                          ... test_batch.bin), CIFAR-100 (train.bin, test.bin), MNIST or Fashion-MNIST
                          (train-images-idx3-ubyte and the three others, each may be .gz), or your
                          images packed by 'npm run pack' (it holds webtrain-images.json)
  --dataset NAME          which data set DIR holds: ${DATASET_NAMES.join(', ')}. Needed
                          to read CIFAR-100's 20 coarse labels; MNIST and Fashion-MNIST share file
                          names: without it, a folder whose name contains "fashion" is Fashion-MNIST
  --model NAME|FILE       the network: a preset (${PRESETS.map((p) => p.name).join(', ')}; default simplecnn)
                          or a description file (see the README's "Describing a network")
  --print-model           print the model's summary table (layers, shapes, parameters, MFLOP) and exit;
                          for --data's shape and classes when given (CIFAR-10's otherwise)
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
  --resume FILE           continue the run saved in a checkpoint (its seed, recipe and shuffle
                          apply; --epochs may extend it)
  --json                  one JSON object per line instead of text
  --help                  this text

The recipe (README "Training recipes"). A preset's or description's @ lines are its defaults;
these options override them. Defaults shown are webtrain's own (the seed's run):
${recipeUsage()}`;

/** One usage line per recipe setting: its option, what it takes, its default. */
function recipeUsage() {
  const base = defaultRecipe();
  return RECIPE_FIELDS.map((f) => {
    const boolean = typeof f.default === 'boolean';
    const arg = f.many ? 'RULE' : typeof f.default === 'number' ? (Number.isInteger(f.default) && f.key !== 'lr' ? 'N' : 'X') : typeof f.default === 'string' ? 'NAME' : 'SPEC';
    const flag = boolean ? `--${f.cli}, --no-${f.cli}` : `--${f.cli} ${arg}`;
    const shown = f.many ? 'none' : formatField(f.key, base[f.key]);
    const note = f.key === 'epochs' ? '; 0 = only evaluate' : '';
    const text = `${f.help} (default ${shown}${note})`;
    return flag.length < 24 ? `  ${flag.padEnd(24)}${text}` : `  ${flag}\n${' '.repeat(26)}${text}`;
  }).join('\n');
}

const BOOLEAN_RECIPE = RECIPE_FIELDS.filter((f) => typeof f.default === 'boolean');
const VALUE_RECIPE = RECIPE_FIELDS.filter((f) => typeof f.default !== 'boolean');

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

const STRING_OPTIONS = ['data', 'dataset', 'model', 'seed', 'limit-train', 'limit-test', 'import', 'export', 'import-weights', 'export-weights', 'workers', 'checkpoint', 'checkpoint-every', 'resume', ...VALUE_RECIPE.map((f) => f.cli)];


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
        data: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' }, 'print-model': { type: 'boolean' }, seed: { type: 'string' }, 'limit-train': { type: 'string' },
        ...Object.fromEntries(VALUE_RECIPE.map((f) => [f.cli, { type: 'string', multiple: Boolean(f.many) }])),
        ...Object.fromEntries(BOOLEAN_RECIPE.flatMap((f) => [[f.cli, { type: 'boolean' }], [`no-${f.cli}`, { type: 'boolean' }]])),
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
  if (v.dataset !== undefined && !DATASET_NAMES.includes(v.dataset)) throw new UserError(`--dataset: expected one of ${DATASET_NAMES.join(', ')}, got '${v.dataset}'`, 2);
  if (v.dataset !== undefined && !v.data) throw new UserError('--dataset needs --data DIR, the folder holding its files', 2);
  if (v['print-model']) return { printModel: true, model: v.model ?? 'simplecnn', data: v.data, dataset: v.dataset ?? null };
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
  if (!v.data && !convertOnly) throw new UserError('--data DIR is required: the folder holding the data set (CIFAR-10, CIFAR-100, MNIST or Fashion-MNIST)', 2);
  if (v['checkpoint-every'] !== undefined && !v.checkpoint) throw new UserError('--checkpoint-every needs --checkpoint FILE', 2);
  return {
    data: v.data,
    dataset: v.dataset ?? null,
    model: v.model ?? 'simplecnn',
    recipe: recipeOptions(v),
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

/** The recipe settings given on the command line, checked: recipe key -> value. */
function recipeOptions(v) {
  const out = {};
  try {
    for (const f of VALUE_RECIPE) {
      if (v[f.cli] === undefined) continue;
      out[f.key] = f.many ? v[f.cli].map((x) => f.parse(x, `--${f.cli}`)) : f.parse(v[f.cli], `--${f.cli}`);
    }
    for (const f of BOOLEAN_RECIPE) {
      if (v[f.cli] && v[`no-${f.cli}`]) throw new RecipeError(`--${f.cli} and --no-${f.cli} contradict each other`);
      if (v[f.cli] || v[`no-${f.cli}`]) out[f.key] = Boolean(v[f.cli]);
    }
  } catch (error) {
    throw error instanceof RecipeError ? new UserError(error.message, 2) : error;
  }
  return out;
}

/** The run's recipe: the description's @ lines, then the command line's options. */
function runRecipe(description, options) {
  try {
    return resolveRecipe(description ? parseDescription(description.text) : null, options.recipe);
  } catch (error) {
    if (error instanceof RecipeError) throw new UserError(`${description?.name ?? 'recipe'}: ${error.message}`, 2);
    throw error;
  }
}

/**
 * A resumed run takes its settings from the checkpoint (its recipe; before version 3, Adam at
 * the saved lr and batch size); a contradicting option is an error. --epochs may extend it.
 */
function applyCheckpointSettings(options, state, file) {
  const saved = state.recipe ?? resolveRecipe(null, { lr: state.adam.lr, batchSize: state.batchSize, epochs: state.epochs });
  const pairs = [['seed', 'seed', state.seed], ['no-shuffle', 'shuffle', state.shuffle]];
  for (const [flag, key, value] of pairs) {
    if (options.given.has(flag) && options[key] !== value) {
      throw new UserError(`--${flag} ${flag === 'no-shuffle' ? '' : `${options[key]} `}contradicts ${file}, which was saved with ${key} ${value}`, 2);
    }
    options[key] = value;
  }
  for (const [key, value] of Object.entries(options.recipe)) {
    if (key === 'epochs') continue;
    if (JSON.stringify(value) !== JSON.stringify(saved[key])) {
      const f = RECIPE_FIELDS.find((x) => x.key === key);
      throw new UserError(`--${f.cli} ${[].concat(formatField(key, value)).join(' ')} contradicts ${file}, which was saved with ${f.setting} ${[].concat(formatField(key, saved[key])).join(' ') || 'none'}`, 2);
    }
  }
  options.runRecipe = { ...saved, epochs: options.recipe.epochs ?? state.epochs };
  options.batchSize = saved.batchSize;
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

/**
 * A model of the engine from a description for the data's `format`; a bad description, or one
 * that does not fit the data's shape, is a usage error naming the line and the layer.
 */
function buildModel(engine, { text, name }, options, format = CIFAR10_FORMAT) {
  try {
    return createModelFromDescription(engine, text, format, { maxBatch: options.batchSize ?? 64, seed: options.seed ?? 0 });
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
      seed: options.seed, shuffle: options.shuffle, lr: options.runRecipe.lr, augment: options.runRecipe.augment,
    });
  } catch (error) {
    stepper.close();
    throw error;
  }
  return stepper;
}

/** A packed image folder (npm run pack): its records, validated by the C reader like CIFAR's. */
function loadPackedData(engine, packed, { limitTrain, limitTest }) {
  const train = engine.loadDataset(packed.trainFiles, { limit: limitTrain, format: packed.format });
  const test = engine.loadDataset(packed.testFiles, { limit: limitTest, format: packed.format });
  return { train, test, trainFiles: packed.trainFiles, testFiles: packed.testFiles, classNames: packed.classNames };
}

/** The data set in `dir`, read, checked by the C reader (a bad file is named) and loaded. */
async function loadData(engine, dir, { dataset: wanted, limitTrain, limitTest }) {
  let data;
  try {
    data = await readDataset(dir, wanted);
  } catch (error) {
    throw error instanceof FileRefusedError || error instanceof DatasetError ? new UserError(error.message) : error;
  }
  const { format } = data.dataset;
  const train = engine.loadDataset(data.train, { limit: limitTrain, format });
  const test = engine.loadDataset(data.test, { limit: limitTest, format });
  return { ...data, train, test, trainFiles: data.train, testFiles: data.test };
}

/** The data set a folder holds, from its file names only (for --print-model). */
async function datasetOf(dir, wanted) {
  try {
    if (isPackedDir(dir)) {
      if (wanted) throw new UserError(`--dataset ${wanted}: ${dir} holds images packed by 'npm run pack' (webtrain-images.json), not ${wanted}`, 2);
      const packed = await loadPacked(dir);
      return { dataset: { name: 'images', title: `your images (${dir})`, format: packed.format, classNames: packed.classNames, packed }, note: null };
    }
    return await detectFolder(dir, wanted);
  } catch (error) {
    throw error instanceof DatasetError || error instanceof ImageSetError || error instanceof FileRefusedError ? new UserError(error.message) : error;
  }
}

/** "MNIST (1x28x28, 10 classes)". */
const describeShape = (title, f) => `${title.replace(/ \((.*)\)$/, ", $1")} (${f.channels}x${f.height}x${f.width}, ${f.classes} classes)`;

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
    const { dataset } = options.data ? await datasetOf(options.data, options.dataset) : { dataset: DATASETS.cifar10 };
    const model = buildModel(engine, await modelText(options.model), {}, dataset.format);
    out.write(`${options.model} for ${describeShape(dataset.title, dataset.format)}:\n${formatSummary(summarize(model))}\n`);
    return;
  }
  const print = options.json
    ? (event) => out.write(`${JSON.stringify(event)}\n`)
    : (event) => {
      if (event.event === 'loss') out.write(`${formatLoss(event)}\n`);
      else out.write(`${formatEpoch(event)}\n${formatThroughput(event)}\n`);
    };

  // The data set decides the model's input shape and classes: recognised first, read later.
  let { dataset, note } = options.data ? await datasetOf(options.data, options.dataset) : { dataset: DATASETS.cifar10, note: null };
  let resume = null, model;
  let description = options.resume && !options.given.has('model') ? null : await modelText(options.model);
  if (options.imports.length && (!options.given.has('model') || options.convertOnly)) {
    const imported = await modelOfImport(options.imports[0]);
    if (!options.given.has('model')) description = imported.description ?? description;
    // Converting without data: the model is for the data the file was made for.
    if (!options.data && imported.format) dataset = { ...dataset, format: { ...dataset.format, ...imported.format } };
  }
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
  } else {
    options.runRecipe = runRecipe(description, options);
    options.batchSize = options.runRecipe.batchSize;
  }
  const recipe = options.runRecipe;
  model ??= buildModel(engine, description, options, dataset.format);
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
    // Without data, the files take the normalisation the model was built with (its checkpoint's,
    // its imported file's, else CIFAR-10's).
    await writeExports(model, options.exports, null, { ...model.format, ...model.normalization });
    return;
  }
  const { train, test, trainFiles, testFiles, classNames } = dataset.packed
    ? loadPackedData(engine, dataset.packed, options) : await loadData(engine, options.data, { ...options, dataset: dataset.name });

  const workers = recipe.epochs > 0 ? options.workers : 1;
  let run;
  try {
    run = new TrainingRun(engine, model, {
      train, test, seed: options.seed, shuffle: options.shuffle, recipe, resume, workers, whiten: !options.importWeights && !options.imports.length,
    });
  } catch (error) {
    throw new UserError(`${options.resume ?? 'training'}: ${error.message}`);
  }
  if (!options.json) {
    out.write(`Data: ${describeShape(dataset.title, dataset.format)}, ${train.count} training and ${test.count} test images${note ? `. ${note}` : ''}\n`);
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
  let confusion = null; // the last evaluation's, for the per-class report
  if (recipe.epochs === 0) {
    const result = await run.evaluate();
    accuracy = result.summary.test_accuracy;
    confusion = result.confusion;
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
          if (event.event === 'epoch' && event.evaluated) {
            accuracy = event.test_accuracy;
            confusion = detail.confusion;
          }
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
  if (confusion && !options.json) out.write(`${formatClassReport(confusion, classNames)}\n`);
  if (options.exportWeights) {
    let bytes;
    try {
      bytes = model.exportWeights();
    } catch (error) {
      throw new UserError(`--export-weights: ${error.message}`);
    }
    await writeFileAtomic(options.exportWeights, bytes, 'weights');
  }
  await writeExports(model, options.exports, accuracy, dataset.format);
}

/** The description a safetensors file carries (webtrain writes it), as --model would give it. */
/** The model description and data format a safetensors file carries (each null when it has none). */
async function modelOfImport(file) {
  const bytes = await readInput(file, 'safetensors file', safetensorsRule());
  let text, format;
  try {
    ({ text, format } = safetensorsModel(bytes, file));
  } catch (error) {
    throw error instanceof SafetensorsError ? new UserError(error.message) : error;
  }
  return { description: text === null ? null : { text, name: `the model in ${file}` }, format };
}

/** Writes each --export file in the format its extension names; `accuracy` goes in the metadata. */
async function writeExports(model, files, accuracy, format = CIFAR10_FORMAT) {
  if (!files.length) return;
  // A model made from a checkpoint's spec gets its description (version 1: SimpleCNN's).
  if (!model.description) attachDescription(model, parseDescription(model.source().text || await loadPreset('simplecnn')));
  for (const file of files) {
    const kind = kindOfFile(file);
    await writeFileAtomic(file, modelFile(model, kind, { format, accuracy }), MODEL_FILE_KINDS[kind].label);
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

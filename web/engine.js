// The bridge to the C engine: instantiates webtrain.wasm (the same file in Node and in a Worker)
// and wraps its exports in a Model and a Dataset that own their Wasm memory.
import { MAX_PARAM_GROUPS, checkRecipe, RecipeError } from './recipe.js';
import { augmentWords, parseTta, TTA_MODES } from './augment.js';

/**
 * Where a data set's records keep their label and pixels, and what the pixels are: CIFAR-10's
 * binary files are 3,073-byte records of a label byte and 3 planes of 32x32.
 */
export const CIFAR10_FORMAT = Object.freeze({
  recordBytes: 3073, labelOffset: 0, pixelOffset: 1, channels: 3, height: 32, width: 32, classes: 10,
  mean: Object.freeze([0.5, 0.5, 0.5]), std: Object.freeze([0.5, 0.5, 0.5]),
});

/** Fixed slots of wt_model_profile_slots, before each layer's forward and backward. */
const PROFILE_FIXED = Object.freeze(['decode', 'loss', 'grad tree', 'update']);

/** wt_tensor_info roles: the state_dict suffix of each. */
export const TENSOR_ROLES = Object.freeze(['weight', 'bias', 'running_mean', 'running_var']);

const STATUS_NAMES = ['ok', 'invalid argument', 'out of memory', 'bad data', 'non-finite value'];

/** A failure reported by the C engine; `code` is the wt_status value. */
/**
 * A copy of a view of Wasm memory in its own buffer. Not TypedArray.slice: on a view of Wasm
 * memory that is far slower (0.46 ms for 248 KB in Node, 1.5 ms in Chromium) than new + set.
 */
export function copyOut(view) {
  const out = new view.constructor(view.length);
  out.set(view);
  return out;
}

export class EngineError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    this.status = STATUS_NAMES[code] ?? `status ${code}`;
  }
}

/** The smallest module using a SIMD128 instruction: validates only where Wasm SIMD works. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function wasmSimdSupported() {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

/**
 * Instantiates the engine from the module's bytes (ArrayBuffer or typed array) or a compiled
 * WebAssembly.Module.
 */
export async function createEngine(source) {
  const module = source instanceof WebAssembly.Module ? source : await WebAssembly.compile(source);
  const known = {
    env: { emscripten_notify_memory_growth: () => {}, wt_clock_ms: () => performance.now() },
  };
  // Another Emscripten release may import a little more of its runtime (WASI file calls, say).
  // The engine never needs them: such a call fails loudly, naming itself, rather than the load.
  const imports = { env: { ...known.env } };
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== 'function' || known[from]?.[name]) continue;
    imports[from] ??= {};
    imports[from][name] = () => { throw new Error(`webtrain.wasm called the unexpected import ${from}.${name}`); };
  }
  const instance = await WebAssembly.instantiate(module, imports);
  instance.exports._initialize?.();
  return new Engine(instance.exports);
}

export class Engine {
  constructor(exports) {
    this.wasm = exports;
  }

  /** Wasm memory grows; a view is only valid until the next call that may allocate. */
  get heapU8() { return new Uint8Array(this.wasm.memory.buffer); }
  get heapF32() { return new Float32Array(this.wasm.memory.buffer); }
  get heapU32() { return new Uint32Array(this.wasm.memory.buffer); }
  get heapI32() { return new Int32Array(this.wasm.memory.buffer); }
  get heapF64() { return new Float64Array(this.wasm.memory.buffer); }
  get memoryBytes() { return this.wasm.memory.buffer.byteLength; }
  /** Bytes allocated from the Wasm heap right now. */
  get heapBytesInUse() { return this.wasm.wt_heap_bytes_in_use(); }

  lastError() {
    const ptr = this.wasm.wt_last_error();
    const bytes = this.heapU8;
    let end = ptr;
    while (bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(ptr, end));
  }

  /** Throws an EngineError for a non-zero status, prefixed with what was being done. */
  check(status, context) {
    if (status !== 0) {
      const message = this.lastError();
      throw new EngineError(context ? `${context}: ${message}` : message, status);
    }
  }

  alloc(bytes) {
    const ptr = this.wasm.wt_alloc(bytes);
    if (!ptr) throw new EngineError(`out of Wasm memory allocating ${bytes} bytes`, 2);
    return ptr;
  }

  free(ptr) { this.wasm.wt_free(ptr); }

  /**
   * A model from a spec (Int32Array, web/model-spec.js) and the description text it came from
   * (kept in checkpoints). Errors name the spec node ("node N: ..."); model-spec.js maps them to
   * the description's lines.
   */
  createModel({ spec, text = '', maxBatch = 64, seed = 0 }) {
    if (!(spec instanceof Int32Array)) throw new TypeError('createModel: spec must be an Int32Array (web/model-spec.js)');
    const textBytes = new TextEncoder().encode(text);
    const out = this.alloc(4), specPtr = this.alloc(4 * spec.length), textPtr = this.alloc(Math.max(textBytes.length, 1));
    try {
      this.heapI32.set(spec, specPtr >> 2);
      this.heapU8.set(textBytes, textPtr);
      this.check(this.wasm.wt_model_create(out, specPtr, spec.length, textPtr, textBytes.length, maxBatch, seed >>> 0), 'creating the model');
      return new Model(this, this.heapU32[out >> 2]);
    } finally {
      this.free(out);
      this.free(specPtr);
      this.free(textPtr);
    }
  }

  /** The model a checkpoint file is for: { spec: Int32Array, text } (text '' for version 1). */
  describeCheckpoint(bytes, name = 'checkpoint') {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const ptr = this.alloc(Math.max(data.byteLength, 1)), out = this.alloc(16);
    try {
      this.heapU8.set(data, ptr);
      this.check(this.wasm.wt_checkpoint_describe(ptr, data.byteLength, out, out + 4, out + 8, out + 12), name);
      const [specPtr, words, textPtr, textBytes] = this.heapU32.subarray(out >> 2, (out >> 2) + 4);
      return {
        spec: copyOut(this.heapI32.subarray(specPtr >> 2, (specPtr >> 2) + words)),
        text: new TextDecoder().decode(this.heapU8.subarray(textPtr, textPtr + textBytes)),
        recipe: this.#checkpointRecipe(ptr, data.byteLength, out, name),
      };
    } finally {
      this.free(ptr);
      this.free(out);
    }
  }

  /**
   * The recipe of the checkpoint at ptr (checked by recipe.js), or null for a version 1 or 2
   * file; `out` is 8 bytes of scratch. Throws an EngineError (bad data) naming `name`.
   */
  #checkpointRecipe(ptr, bytes, out, name) {
    this.check(this.wasm.wt_checkpoint_recipe(ptr, bytes, out, out + 4), name);
    const [recipePtr, recipeBytes] = this.heapU32.subarray(out >> 2, (out >> 2) + 2);
    if (!recipeBytes) return null;
    try {
      return checkRecipe(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(this.heapU8.subarray(recipePtr, recipePtr + recipeBytes))), 'recipe');
    } catch (error) {
      if (!(error instanceof RecipeError || error instanceof SyntaxError || error instanceof TypeError)) throw error;
      throw new EngineError(`${name}: the checkpoint's recipe is not valid: ${error.message}`, 3);
    }
  }

  /** The recipe of a checkpoint file (null before version 3); throws on a bad file. */
  checkpointRecipe(bytes, name = 'checkpoint') {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const ptr = this.alloc(Math.max(data.byteLength, 1)), out = this.alloc(8);
    try {
      this.heapU8.set(data, ptr);
      return this.#checkpointRecipe(ptr, data.byteLength, out, name);
    } finally {
      this.free(ptr);
      this.free(out);
    }
  }

  /**
   * Copies record files into one Wasm buffer, each validated by the C reader: a bad file is
   * refused with its name and nothing is kept. `files` is [{ name, bytes: Uint8Array }].
   * `limit` keeps only the first N records overall. `format`: the records' layout (CIFAR10_FORMAT).
   */
  loadDataset(files, { limit = Infinity, format = CIFAR10_FORMAT } = {}) {
    let total = 0;
    for (const { bytes } of files) total += bytes.byteLength;
    const ptr = this.alloc(Math.max(total, 1));
    let offset = 0;
    let count = 0;
    const out = this.alloc(4);
    try {
      for (const { name, bytes } of files) {
        this.heapU8.set(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), ptr + offset);
        this.check(this.wasm.wt_records_check(ptr + offset, bytes.byteLength, format.recordBytes, format.labelOffset, format.classes, out), name);
        count += this.heapI32[out >> 2];
        offset += bytes.byteLength;
      }
    } catch (error) {
      this.free(ptr);
      throw error;
    } finally {
      this.free(out);
    }
    return new Dataset(this, ptr, Math.min(count, limit), files.map((f) => f.name), format);
  }

  /** The gradient tree's split point (wt_grad_tree_mid). */
  gradTreeMid(lo, hi) { return this.wasm.wt_grad_tree_mid(lo, hi); }

  /** The shuffle of epoch `epoch` (0-based) for `seed`, written into Wasm memory at ptr. */
  writePermutation(ptr, n, seed, epoch) {
    this.check(this.wasm.wt_epoch_permutation(ptr, n, seed >>> 0, epoch), 'shuffling');
  }
}

/** Validated records living in Wasm memory, with their wt_records descriptor. */
export class Dataset {
  constructor(engine, ptr, count, names, format = CIFAR10_FORMAT) {
    this.engine = engine;
    this.ptr = ptr;
    this.count = count;
    this.names = names;
    this.format = format;
    this.recordBytes = format.recordBytes;
    this.imageBytes = format.channels * format.height * format.width;
    // wt_records: data, count, record_bytes, label_offset, pixel_offset.
    this.descriptor = engine.alloc(20);
    engine.heapI32.set([ptr, count, format.recordBytes, format.labelOffset, format.pixelOffset], this.descriptor >> 2);
  }

  /** The same records, fewer of them (the first `limit`): shares the memory, has its own descriptor. */
  limited(limit) {
    if (!limit || limit >= this.count) return this;
    const view = new Dataset(this.engine, this.ptr, limit, this.names, this.format);
    view.isView = true;
    return view;
  }

  label(i) { return this.engine.heapU8[this.ptr + i * this.recordBytes + this.format.labelOffset]; }

  /** A copy of record i's pixel bytes (planes). */
  image(i) {
    const start = this.ptr + i * this.recordBytes + this.format.pixelOffset;
    return copyOut(this.engine.heapU8.subarray(start, start + this.imageBytes));
  }

  labels() {
    const heap = this.engine.heapU8;
    const out = new Uint8Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = heap[this.ptr + i * this.recordBytes + this.format.labelOffset];
    return out;
  }

  /** A copy of the records' bytes, e.g. to hand to a peer worker. */
  bytes() {
    return copyOut(this.engine.heapU8.subarray(this.ptr, this.ptr + this.count * this.recordBytes));
  }

  free() {
    if (this.descriptor) this.engine.free(this.descriptor);
    this.descriptor = 0;
    if (this.ptr && !this.isView) this.engine.free(this.ptr);
    this.ptr = 0;
  }
}

/** wt_run_state's layout (checked by a static assertion in src/checkpoint.c). */
const RUN_STATE = { bytes: 80, ints: ['epoch', 'step', 'epochs', 'batchSize', 'shuffle', 'workers', 'seed', 'trainCount', 'windowCount'], windowSum: 40, adam: 48 };

function writeRunState(engine, ptr, s) {
  const i32 = engine.heapI32, f64 = engine.heapF64;
  RUN_STATE.ints.forEach((key, i) => { i32[(ptr >> 2) + i] = key === 'shuffle' ? Number(Boolean(s[key])) : s[key]; });
  f64[(ptr + RUN_STATE.windowSum) >> 3] = s.windowSum;
  f64.set([s.adam.lr, s.adam.beta1, s.adam.beta2, s.adam.eps], (ptr + RUN_STATE.adam) >> 3);
}

function readRunState(engine, ptr) {
  const i32 = engine.heapI32, f64 = engine.heapF64;
  const s = Object.fromEntries(RUN_STATE.ints.map((key, i) => [key, i32[(ptr >> 2) + i]]));
  s.seed >>>= 0;
  s.shuffle = s.shuffle === 1;
  s.windowSum = f64[(ptr + RUN_STATE.windowSum) >> 3];
  const [lr, beta1, beta2, eps] = f64.slice((ptr + RUN_STATE.adam) >> 3, ((ptr + RUN_STATE.adam) >> 3) + 4);
  s.adam = { lr, beta1, beta2, eps };
  return s;
}

export const ADAM_DEFAULTS = Object.freeze({ lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8 });

/** wt_optimizer values, and wt_optim_config's layout (checked by a static assertion in src/model.c). */
export const OPTIMIZERS = Object.freeze(['adam', 'adamw', 'sgd']);
const OPTIM_CONFIG = { bytes: 56 + 24 * MAX_PARAM_GROUPS, doubles: 16, groups: 56, groupBytes: 24 };

/**
 * Writes one step's optimizer settings: { kind: 'adam'|'adamw'|'sgd', beta1, beta2, eps,
 * momentum, dampening, nesterov, decoupled, groups: [{ lr, weightDecay, frozen }] } (group 0 is
 * every tensor's unless setTensorGroups said otherwise).
 */
function writeOptimConfig(engine, ptr, c) {
  const kind = OPTIMIZERS.indexOf(c.kind ?? 'adam');
  if (kind < 0) throw new RangeError(`unknown optimizer '${c.kind}' (known: ${OPTIMIZERS.join(', ')})`);
  const groups = c.groups ?? [];
  if (groups.length < 1 || groups.length > MAX_PARAM_GROUPS) throw new RangeError(`${groups.length} parameter groups; 1 to ${MAX_PARAM_GROUPS} are allowed`);
  const i32 = engine.heapI32, f64 = engine.heapF64;
  i32.set([kind, Number(Boolean(c.nesterov)), Number(Boolean(c.decoupled)), groups.length], ptr >> 2);
  f64.set([c.beta1 ?? ADAM_DEFAULTS.beta1, c.beta2 ?? ADAM_DEFAULTS.beta2, c.eps ?? ADAM_DEFAULTS.eps, c.momentum ?? 0, c.dampening ?? 0],
    (ptr + OPTIM_CONFIG.doubles) >> 3);
  groups.forEach((g, k) => {
    const at = ptr + OPTIM_CONFIG.groups + k * OPTIM_CONFIG.groupBytes;
    f64.set([g.lr, g.weightDecay ?? 0], at >> 3);
    i32.set([Number(Boolean(g.frozen)), 0], (at + 16) >> 2);
  });
}

export class Model {
  constructor(engine, ptr) {
    this.engine = engine;
    this.ptr = ptr;
    const w = engine.wasm;
    this.maxBatch = w.wt_model_max_batch(ptr);
    this.block = w.wt_model_block(ptr);
    this.seed = w.wt_model_seed(ptr) >>> 0;
    this.paramCount = w.wt_model_param_count(ptr);
    this.gradCount = w.wt_model_grad_count(ptr);
    this.runningCount = w.wt_model_running_count(ptr);
    const f = w.wt_model_data_format(ptr) >> 2;
    const [channels, height, width, classes] = engine.heapI32.subarray(f, f + 4);
    this.format = { channels, height, width, classes };
    // The normalisation the spec was built with (float32 in the engine; 7 digits give it back).
    const floats = engine.heapF32.subarray(f + 4, f + 12), digits = (x) => Number(x.toPrecision(7));
    this.normalization = { mean: Array.from(floats.subarray(0, channels), digits), std: Array.from(floats.subarray(4, 4 + channels), digits) };
    this.classes = classes;
    // Scratch that lives as long as the model: Adam settings, step indices, result slots, info.
    this.optimPtr = engine.alloc(OPTIM_CONFIG.bytes);
    this.indicesPtr = engine.alloc(4 * this.maxBatch);
    this.slotPtr = engine.alloc(64);
    this.setAdam(ADAM_DEFAULTS);
    this.tensors = this.#tensorTable();
    this.layers = this.#layerTable();
  }

  /** wt_tensor_info of every tensor: { layer, role, shape, offset, count, trainable }. */
  #tensorTable() {
    const w = this.engine.wasm, out = [];
    for (let i = 0; w.wt_model_tensor_info(this.ptr, i, this.slotPtr); i++) {
      const v = this.engine.heapI32.subarray(this.slotPtr >> 2, (this.slotPtr >> 2) + 10);
      out.push({ layer: v[0], role: TENSOR_ROLES[v[1]], shape: Array.from(v.subarray(3, 3 + v[2])), offset: v[7], count: v[8], trainable: v[9] === 1 });
    }
    return out;
  }

  /** wt_layer_info of every layer: { node, kind, shape: [c, h, w] or [n], params, flops }. */
  #layerTable() {
    const w = this.engine.wasm, out = [];
    for (let i = 0; w.wt_model_layer_info(this.ptr, i, this.slotPtr); i++) {
      const v = this.engine.heapI32.subarray(this.slotPtr >> 2, (this.slotPtr >> 2) + 7);
      const flops = this.engine.heapF64[(this.slotPtr + 32) >> 3];
      out.push({ node: v[0], kind: v[1], shape: v[5] ? [v[2]] : [v[2], v[3], v[4]], params: v[6], flops });
    }
    return out;
  }

  /** The spec and description text the model was made from (to make the same model elsewhere). */
  source() {
    const e = this.engine, out = this.slotPtr;
    const specPtr = e.wasm.wt_model_spec(this.ptr, out);
    const words = e.heapU32[out >> 2];
    const spec = copyOut(e.heapI32.subarray(specPtr >> 2, (specPtr >> 2) + words));
    const textPtr = e.wasm.wt_model_text(this.ptr, out);
    const text = new TextDecoder().decode(e.heapU8.subarray(textPtr, textPtr + e.heapU32[out >> 2]));
    return { spec, text };
  }

  /** Time slot names of a profile: the fixed ones, then each layer's forward and backward. */
  profileSlots(layerNames = this.layers.map((l, i) => `layer ${i}`)) {
    return [...PROFILE_FIXED, ...layerNames.flatMap((name) => [`${name} fwd`, `${name} bwd`])];
  }

  /** The optimizer settings of the next updates (see writeOptimConfig); checked at the update. */
  setOptimizer(config) {
    if (typeof this.engine.wasm.wt_model_set_tensor_group !== 'function') {
      // A build from before the optimizers (npm run bench:ab compares with one) reads wt_adam_config.
      if ((config.kind ?? 'adam') !== 'adam' || config.groups.length !== 1) throw new RangeError('this webtrain.wasm has only Adam with one group');
      this.engine.heapF64.set([config.groups[0].lr, config.beta1 ?? ADAM_DEFAULTS.beta1, config.beta2 ?? ADAM_DEFAULTS.beta2, config.eps ?? ADAM_DEFAULTS.eps], this.optimPtr >> 3);
      return;
    }
    writeOptimConfig(this.engine, this.optimPtr, config);
  }

  /** Adam with one group: the seed's optimizer. */
  setAdam({ lr = ADAM_DEFAULTS.lr, beta1 = ADAM_DEFAULTS.beta1, beta2 = ADAM_DEFAULTS.beta2, eps = ADAM_DEFAULTS.eps } = {}) {
    this.setOptimizer({ kind: 'adam', beta1, beta2, eps, groups: [{ lr }] });
  }

  /** groupOfTensor[i]: the parameter group of tensor i (of this.tensors). */
  setTensorGroups(groupOfTensor) {
    groupOfTensor.forEach((g, i) => this.engine.check(this.engine.wasm.wt_model_set_tensor_group(this.ptr, i, g), 'parameter groups'));
    this.groupOfTensor = Array.from(groupOfTensor);
  }

  setLabelSmoothing(s) {
    this.engine.check(this.engine.wasm.wt_model_set_label_smoothing(this.ptr, s), 'label smoothing');
    this.labelSmoothing = s;
  }

  /** The optimizer the model's state belongs to ('adam', 'adamw' or 'sgd'). */
  get optimizer() { return OPTIMIZERS[this.engine.wasm.wt_model_optimizer(this.ptr)]; }

  /** The weights' moving average: start it from the weights (or drop it), update it, swap it in. */
  get emaActive() { return this.engine.wasm.wt_model_ema_active(this.ptr) === 1; }
  emaReset(active = true) { this.engine.wasm.wt_model_ema_reset(this.ptr, active ? 1 : 0); }
  emaUpdate(decay, copyBack = false) {
    this.engine.check(this.engine.wasm.wt_model_ema_update(this.ptr, decay, copyBack ? 1 : 0), 'weights average');
  }
  emaSwap() { this.engine.check(this.engine.wasm.wt_model_ema_swap(this.ptr), 'weights average'); }
  /** fn() with the average swapped in when `use` (evaluation with a plain EMA); returns its result. */
  withAverage(use, fn) {
    if (use) this.emaSwap();
    try {
      return fn();
    } finally {
      if (use) this.emaSwap();
    }
  }
  /** A copy of the average: parameters then running statistics. */
  ema() { return copyOut(this.#floats(this.engine.wasm.wt_model_ema, this.paramCount + this.runningCount)); }

  get adamSteps() { return this.engine.wasm.wt_model_adam_step_count(this.ptr); }
  get statSteps() { return this.engine.wasm.wt_model_stat_steps(this.ptr); }

  #floats(fn, count = this.paramCount) {
    const start = fn(this.ptr) >> 2;
    return this.engine.heapF32.subarray(start, start + count);
  }

  /** Live views (valid until Wasm memory grows) and copies of the flat buffers. */
  paramsView() { return this.#floats(this.engine.wasm.wt_model_params); }
  gradsView() { return this.#floats(this.engine.wasm.wt_model_grads, this.gradCount); }
  runningView() { return this.#floats(this.engine.wasm.wt_model_running, this.runningCount); }
  params() { return copyOut(this.paramsView()); }
  grads() { return copyOut(this.gradsView()); }
  running() { return copyOut(this.runningView()); }
  get gradsPtr() { return this.engine.wasm.wt_model_grads(this.ptr); }

  /** Parameters, running statistics and the optimizer's state, copied out. */
  exportState() {
    const w = this.engine.wasm;
    return {
      params: this.params(), running: this.running(),
      adamM: copyOut(this.#floats(w.wt_model_adam_m)), adamV: copyOut(this.#floats(w.wt_model_adam_v)),
      adamSteps: this.adamSteps, statSteps: this.statSteps,
      ema: this.emaActive ? this.ema() : null,
      groupOfTensor: this.groupOfTensor ?? null, labelSmoothing: this.labelSmoothing ?? 0,
    };
  }

  /** Restores what exportState() returned. */
  importState({ params, running = new Float32Array(0), adamM, adamV, adamSteps, statSteps = 0, ema = null, groupOfTensor = null, labelSmoothing = 0 }) {
    const w = this.engine.wasm;
    for (const [name, a, n] of [['params', params, this.paramCount], ['adamM', adamM, this.paramCount], ['adamV', adamV, this.paramCount], ['running', running, this.runningCount]]) {
      if (a?.length !== n) throw new RangeError(`model state: ${name} must hold ${n} floats`);
    }
    this.engine.check(w.wt_model_set_adam_step_count(this.ptr, adamSteps), 'model state');
    this.engine.check(w.wt_model_set_stat_steps(this.ptr, statSteps), 'model state');
    this.paramsView().set(params);
    this.runningView().set(running);
    this.#floats(w.wt_model_adam_m).set(adamM);
    this.#floats(w.wt_model_adam_v).set(adamV);
    if (ema && ema.length !== this.paramCount + this.runningCount) throw new RangeError(`model state: ema must hold ${this.paramCount + this.runningCount} floats`);
    this.emaReset(Boolean(ema));
    if (ema) this.#floats(w.wt_model_ema, ema.length).set(ema);
    if (groupOfTensor) this.setTensorGroups(groupOfTensor);
    this.setLabelSmoothing(labelSmoothing);
  }

  /**
   * A checkpoint file (Uint8Array) of this model and `runState`: { epoch, step, epochs,
   * batchSize, shuffle, workers, seed, trainCount, windowCount, windowSum, adam: {lr, ...},
   * recipe } (recipe: the run's recipe, saved as JSON text; may be absent).
   */
  saveCheckpoint(runState) {
    const e = this.engine;
    const recipe = runState.recipe ? new TextEncoder().encode(JSON.stringify(runState.recipe)) : new Uint8Array(0);
    const bytes = e.wasm.wt_checkpoint_bytes(this.ptr, recipe.length);
    const state = e.alloc(RUN_STATE.bytes), out = e.alloc(bytes), recipePtr = e.alloc(Math.max(recipe.length, 1));
    try {
      writeRunState(e, state, runState);
      e.heapU8.set(recipe, recipePtr);
      e.check(e.wasm.wt_checkpoint_save(this.ptr, state, recipePtr, recipe.length, out, bytes), 'saving checkpoint');
      return copyOut(e.heapU8.subarray(out, out + bytes));
    } finally {
      e.free(state);
      e.free(out);
      e.free(recipePtr);
    }
  }

  /** Restores a checkpoint into this model and returns its run state; refuses (and keeps the
   * model) on any problem, with `name` in the message. */
  loadCheckpoint(bytes, name = 'checkpoint') {
    const e = this.engine;
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const state = e.alloc(RUN_STATE.bytes), ptr = e.alloc(Math.max(data.byteLength, 1));
    try {
      e.heapU8.set(data, ptr);
      const recipe = e.checkpointRecipe(data, name); // checked before the model changes
      e.check(e.wasm.wt_checkpoint_load(this.ptr, state, ptr, data.byteLength), name);
      return { ...readRunState(e, state), recipe };
    } finally {
      e.free(state);
      e.free(ptr);
    }
  }

  /** The raw weights file: every parameter as little-endian float32 in state_dict order. */
  exportWeights() {
    if (this.runningCount) throw new RangeError('this net has batch-norm running statistics, which a raw weights file does not hold: use a checkpoint (or safetensors)');
    return new Uint8Array(this.params().buffer);
  }

  /** Loads a weights file; a wrong size or non-finite value is refused and the model kept. */
  importWeights(bytes, name = 'weights file') {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const ptr = this.engine.alloc(Math.max(data.byteLength, 1));
    try {
      this.engine.heapU8.set(data, ptr);
      this.engine.check(this.engine.wasm.wt_model_load_weights(this.ptr, ptr, data.byteLength), name);
    } finally {
      this.engine.free(ptr);
    }
  }

  /** Logits of the last block run (up to `block` images). */
  logits(count) {
    const start = this.engine.wasm.wt_model_logits(this.ptr) >> 2;
    return copyOut(this.engine.heapF32.subarray(start, start + count * this.classes));
  }

  #indices(indices) {
    if (indices.length > this.maxBatch) throw new RangeError(`batch of ${indices.length} exceeds ${this.maxBatch}`);
    this.engine.heapU32.set(indices, this.indicesPtr >> 2);
    return this.indicesPtr;
  }

  /** Summed cross-entropy (training mode) of the records at `indices` (array or Uint32Array). */
  forward(dataset, indices) {
    const w = this.engine.wasm;
    this.engine.check(w.wt_model_forward(this.ptr, dataset.descriptor, this.#indices(indices), indices.length, this.slotPtr), 'forward');
    return this.engine.heapF64[this.slotPtr >> 3];
  }

  /**
   * Node [lo, hi) of the gradient tree (see wt_model_gradient in webtrain.h) of the `batch`
   * indices at indicesPtr, scaled by 1/batch, written over the gradCount floats at dstPtr
   * (default: this model's gradients). `step` keys the dropout masks. Returns the summed loss.
   */
  gradientAt(dataset, indicesPtr, batch, lo, hi, step = 0, dstPtr = this.gradsPtr) {
    const w = this.engine.wasm;
    this.engine.check(w.wt_model_gradient(this.ptr, dataset.descriptor, indicesPtr, batch, lo, hi, 1 / batch, step, dstPtr, this.slotPtr), 'gradient');
    return this.engine.heapF64[this.slotPtr >> 3];
  }

  /** The whole batch's gradient (the tree's root) into this model's gradients. */
  gradient(dataset, indices, step = 0) {
    return this.gradientAt(dataset, this.#indices(indices), indices.length, 0, this.blocks(indices.length), step);
  }

  /** Blocks of a batch in the gradient tree. */
  blocks(batch) { return Math.ceil(batch / this.block); }

  /** The optimizer step from the gradients, and the running statistics (groups: blocks in the batch). */
  update(groups) {
    this.engine.check(this.engine.wasm.wt_model_update(this.ptr, this.optimPtr, groups), 'optimizer update');
  }

  /**
   * One training step on `batch` indices read from Wasm memory at indicesPtr (e.g. a slice of an
   * epoch permutation); returns the mean loss.
   */
  trainStepAt(dataset, indicesPtr, batch, step = 0) {
    const w = this.engine.wasm;
    const status = w.wt_model_train_step(this.ptr, dataset.descriptor, indicesPtr, batch, step, this.optimPtr, this.slotPtr);
    this.engine.check(status, 'training step');
    return this.engine.heapF32[this.slotPtr >> 2];
  }

  trainStep(dataset, indices, step = 0) {
    return this.trainStepAt(dataset, this.#indices(indices), indices.length, step);
  }

  /**
   * Augments training images from now on (web/augment.js: { flip, translate, padding, cutout } or
   * its text), drawn from (seed, epoch, record): the run's seed, so every worker agrees.
   */
  setAugment(augment, seed) {
    const e = this.engine;
    e.heapU32[this.slotPtr >> 2] = seed >>> 0;
    e.heapI32.set(augmentWords(augment), (this.slotPtr >> 2) + 1);
    e.check(e.wasm.wt_model_set_augment(this.ptr, this.slotPtr), 'augmentation');
  }

  /** The epoch (0-based) whose augmentation the next training steps get. */
  setEpoch(epoch) { this.engine.check(this.engine.wasm.wt_model_set_epoch(this.ptr, epoch), 'epoch'); }

  /**
   * The images the net sees for `indices` (normalised; with train, augmented as the current
   * epoch's training steps are): a Float32Array (n, C, H, W).
   */
  decode(dataset, indices, { train = false } = {}) {
    const e = this.engine, n = indices.length, size = this.format.channels * this.format.height * this.format.width;
    const idx = e.alloc(4 * n), out = e.alloc(4 * n * size);
    try {
      e.heapU32.set(indices, idx >> 2);
      e.check(e.wasm.wt_model_decode(this.ptr, dataset.descriptor, idx, n, train ? 1 : 0, out), 'decode');
      return copyOut(e.heapF32.subarray(out >> 2, (out >> 2) + n * size));
    } finally {
      e.free(idx);
      e.free(out);
    }
  }

  /**
   * Computes the weights of the net's whitening convs from the dataset's first images (at the
   * start of a run, not on resume). Returns the number of layers whitened.
   */
  initWhitening(dataset) {
    const e = this.engine;
    e.check(e.wasm.wt_model_init_whitening(this.ptr, dataset.descriptor, this.slotPtr), 'whitening');
    return e.heapI32[this.slotPtr >> 2];
  }

  /**
   * Accuracy, mean loss, confusion matrix (confusion[true * classes + predicted]) and every
   * prediction over the dataset's records [offset, offset + count) (default: all of them), with
   * the test-time augmentation `tta` (web/augment.js TTA_MODES), which the result names;
   * plainCorrect and plainAccuracy: those of the images themselves (the first view, no extra cost).
   */
  evaluate(dataset, { offset = 0, count = dataset.count - offset, tta = 'none' } = {}) {
    const engine = this.engine, K = this.classes;
    if (!(offset >= 0 && count >= 0 && offset + count <= dataset.count)) {
      throw new RangeError(`records ${offset}..${offset + count} are outside the ${dataset.count} loaded`);
    }
    engine.check(engine.wasm.wt_model_set_tta(this.ptr, TTA_MODES.indexOf(parseTta(tta))), 'evaluation');
    const scratch = engine.alloc(16 + 4 * K * K + Math.max(count, 1));
    const correctPtr = scratch, plainPtr = scratch + 4, lossPtr = scratch + 8, confusionPtr = scratch + 16, predPtr = scratch + 16 + 4 * K * K;
    try {
      engine.heapU8.fill(0, scratch, predPtr);
      engine.check(engine.wasm.wt_model_evaluate(this.ptr, dataset.descriptor, offset, count, correctPtr, lossPtr, confusionPtr, predPtr, plainPtr), 'evaluation');
      const correct = engine.heapI32[correctPtr >> 2], plainCorrect = engine.heapI32[plainPtr >> 2];
      return {
        correct,
        plainCorrect,
        total: count,
        tta,
        accuracy: count ? correct / count : 0,
        plainAccuracy: count ? plainCorrect / count : 0,
        loss: count ? engine.heapF64[lossPtr >> 3] / count : 0,
        confusion: copyOut(engine.heapI32.subarray(confusionPtr >> 2, (confusionPtr >> 2) + K * K)),
        predictions: copyOut(engine.heapU8.subarray(predPtr, predPtr + count)),
      };
    } finally {
      engine.free(scratch);
    }
  }

  /**
   * Runs the net on n normalised images (Float32Array, n*C*H*W): the logits, and with
   * `activations` every layer's output for image 0 (an array of Float32Array, one per layer).
   */
  run(x, n, { train = false, activations = false } = {}) {
    // Per image, the net's output: its last layer's (the logits, or a headless net's last map).
    const e = this.engine, K = this.layers.at(-1).shape.reduce((a, b) => a * b, 1);
    const actFloats = activations ? this.layers.reduce((sum, l) => sum + l.shape.reduce((a, b) => a * b, 1), 0) : 0;
    const xPtr = e.alloc(4 * x.length), yPtr = e.alloc(4 * n * K), aPtr = actFloats ? e.alloc(4 * actFloats) : 0;
    try {
      e.heapF32.set(x, xPtr >> 2);
      e.check(e.wasm.wt_model_run(this.ptr, xPtr, n, train ? 1 : 0, yPtr, aPtr), 'run');
      const logits = copyOut(e.heapF32.subarray(yPtr >> 2, (yPtr >> 2) + n * K));
      if (!activations) return { logits };
      let at = aPtr >> 2;
      const maps = this.layers.map((l) => {
        const size = l.shape.reduce((a, b) => a * b, 1);
        const out = copyOut(e.heapF32.subarray(at, at + size));
        at += size;
        return out;
      });
      return { logits, activations: maps };
    } finally {
      e.free(xPtr);
      e.free(yPtr);
      if (aPtr) e.free(aPtr);
    }
  }

  /**
   * Forward then backward of n <= block images through every layer (not the loss): the output y
   * of the last layer, and for the upstream gradient dy the input gradient dx and the parameter
   * gradients (gradsView(), with the batch statistics after them). For the per-layer tests.
   */
  runBackward(x, n, dy, { train = true } = {}) {
    const e = this.engine;
    const inSize = x.length / n, outSize = dy.length / n;
    const xPtr = e.alloc(4 * x.length), yPtr = e.alloc(4 * dy.length), dyPtr = e.alloc(4 * dy.length), dxPtr = e.alloc(4 * x.length);
    try {
      e.heapF32.set(x, xPtr >> 2);
      e.heapF32.set(dy, dyPtr >> 2);
      e.check(e.wasm.wt_model_run_backward(this.ptr, xPtr, n, train ? 1 : 0, yPtr, dyPtr, dxPtr), 'run backward');
      return {
        y: copyOut(e.heapF32.subarray(yPtr >> 2, (yPtr >> 2) + n * outSize)),
        dx: copyOut(e.heapF32.subarray(dxPtr >> 2, (dxPtr >> 2) + n * inSize)),
      };
    } finally {
      for (const p of [xPtr, yPtr, dyPtr, dxPtr]) e.free(p);
    }
  }

  /** Starts adding per-layer times to a fresh table; returns a function that reads it (ms). */
  startProfile(layerNames) {
    const names = this.profileSlots(layerNames);
    const slots = this.engine.alloc(8 * names.length);
    this.engine.heapF64.fill(0, slots >> 3, (slots >> 3) + names.length);
    this.engine.wasm.wt_model_set_profile(this.ptr, slots);
    return () => Object.fromEntries(names.map((name, i) => [name, this.engine.heapF64[(slots >> 3) + i]]));
  }

  stopProfile() { this.engine.wasm.wt_model_set_profile(this.ptr, 0); }

  destroy() {
    if (!this.ptr) return;
    const e = this.engine;
    e.free(this.optimPtr);
    e.free(this.indicesPtr);
    e.free(this.slotPtr);
    e.wasm.wt_model_destroy(this.ptr);
    this.ptr = 0;
  }
}

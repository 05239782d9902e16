// The bridge to the C engine: instantiates webtrain.wasm (the same file in Node and in a Worker)
// and wraps its exports in a Model and a Dataset that own their Wasm memory.

export const PARAM_COUNT = 62006;
export const RECORD_BYTES = 3073;
export const IMAGE_BYTES = 3072;
export const NUM_CLASSES = 10;
export const WEIGHTS_BYTES = PARAM_COUNT * 4;

/** PyTorch state_dict order and shapes of the 62,006 parameters. */
export const PARAM_TENSORS = Object.freeze([
  ['conv1.weight', [6, 3, 5, 5]], ['conv1.bias', [6]],
  ['conv2.weight', [16, 6, 5, 5]], ['conv2.bias', [16]],
  ['fc1.weight', [120, 400]], ['fc1.bias', [120]],
  ['fc2.weight', [84, 120]], ['fc2.bias', [84]],
  ['fc3.weight', [10, 84]], ['fc3.bias', [10]],
]);

/** wt_profile_slot order. */
export const PROFILE_SLOTS = Object.freeze([
  'decode', 'conv1 fwd', 'pool1 fwd', 'conv2 fwd', 'pool2 fwd', 'fc fwd', 'loss', 'fc bwd',
  'pool2 bwd', 'conv2 bwd', 'pool1 bwd', 'conv1 bwd', 'grad tree', 'adam',
]);

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

  createModel({ maxBatch = 64, seed = 0 } = {}) {
    const out = this.alloc(4);
    try {
      this.check(this.wasm.wt_model_create(out, maxBatch, seed >>> 0), 'creating the model');
      return new Model(this, this.heapU32[out >> 2]);
    } finally {
      this.free(out);
    }
  }

  /**
   * Copies CIFAR-10 files into one Wasm buffer, each validated by the C reader: a bad file is
   * refused with its name and nothing is kept. `files` is [{ name, bytes: Uint8Array }].
   * `limit` keeps only the first N records overall.
   */
  loadDataset(files, { limit = Infinity } = {}) {
    let total = 0;
    for (const { bytes } of files) total += bytes.byteLength;
    const ptr = this.alloc(Math.max(total, 1));
    let offset = 0;
    let count = 0;
    const out = this.alloc(4);
    try {
      for (const { name, bytes } of files) {
        this.heapU8.set(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), ptr + offset);
        this.check(this.wasm.wt_records_check(ptr + offset, bytes.byteLength, out), name);
        count += this.heapI32[out >> 2];
        offset += bytes.byteLength;
      }
    } catch (error) {
      this.free(ptr);
      throw error;
    } finally {
      this.free(out);
    }
    return new Dataset(this, ptr, Math.min(count, limit), files.map((f) => f.name));
  }

  /** Blocks of a batch in the gradient tree (wt_model_gradient), and the tree's split point. */
  gradBlocks(batch) { return Math.ceil(batch / this.wasm.wt_grad_block()); }
  gradTreeMid(lo, hi) { return this.wasm.wt_grad_tree_mid(lo, hi); }

  /** The shuffle of epoch `epoch` (0-based) for `seed`, written into Wasm memory at ptr. */
  writePermutation(ptr, n, seed, epoch) {
    this.check(this.wasm.wt_epoch_permutation(ptr, n, seed >>> 0, epoch), 'shuffling');
  }
}

/** Validated CIFAR-10 records living in Wasm memory. */
export class Dataset {
  constructor(engine, ptr, count, names) {
    this.engine = engine;
    this.ptr = ptr;
    this.count = count;
    this.names = names;
  }

  label(i) { return this.engine.heapU8[this.ptr + i * RECORD_BYTES]; }

  /** A copy of record i's 3072 pixel bytes (R, G, B planes). */
  image(i) {
    const start = this.ptr + i * RECORD_BYTES + 1;
    return copyOut(this.engine.heapU8.subarray(start, start + IMAGE_BYTES));
  }

  labels() {
    const heap = this.engine.heapU8;
    const out = new Uint8Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = heap[this.ptr + i * RECORD_BYTES];
    return out;
  }

  free() {
    if (this.ptr) this.engine.free(this.ptr);
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

export class Model {
  constructor(engine, ptr) {
    this.engine = engine;
    this.ptr = ptr;
    const w = engine.wasm;
    this.maxBatch = w.wt_model_max_batch(ptr);
    // Scratch that lives as long as the model: Adam settings, step indices, result slots.
    this.adamPtr = engine.alloc(32);
    this.indicesPtr = engine.alloc(4 * this.maxBatch);
    this.slotPtr = engine.alloc(16);
    this.setAdam(ADAM_DEFAULTS);
  }

  setAdam({ lr = ADAM_DEFAULTS.lr, beta1 = ADAM_DEFAULTS.beta1, beta2 = ADAM_DEFAULTS.beta2, eps = ADAM_DEFAULTS.eps } = {}) {
    this.engine.heapF64.set([lr, beta1, beta2, eps], this.adamPtr >> 3);
  }

  get adamSteps() { return this.engine.wasm.wt_model_adam_step_count(this.ptr); }

  #floats(fn) {
    const start = fn(this.ptr) >> 2;
    return this.engine.heapF32.subarray(start, start + PARAM_COUNT);
  }

  /** Live views (valid until Wasm memory grows) and copies of the flat buffers. */
  paramsView() { return this.#floats(this.engine.wasm.wt_model_params); }
  gradsView() { return this.#floats(this.engine.wasm.wt_model_grads); }
  params() { return copyOut(this.paramsView()); }
  grads() { return copyOut(this.gradsView()); }

  /** Parameters and Adam's state, copied out: { params, adamM, adamV, adamSteps }. */
  exportState() {
    const w = this.engine.wasm;
    return {
      params: this.params(),
      adamM: copyOut(this.#floats(w.wt_model_adam_m)),
      adamV: copyOut(this.#floats(w.wt_model_adam_v)),
      adamSteps: this.adamSteps,
    };
  }

  /** Restores what exportState() returned (arrays of PARAM_COUNT floats). */
  importState({ params, adamM, adamV, adamSteps }) {
    const w = this.engine.wasm;
    for (const [name, a] of [['params', params], ['adamM', adamM], ['adamV', adamV]]) {
      if (a?.length !== PARAM_COUNT) throw new RangeError(`model state: ${name} must hold ${PARAM_COUNT} floats`);
    }
    this.engine.check(w.wt_model_set_adam_step_count(this.ptr, adamSteps), 'model state');
    this.paramsView().set(params);
    this.#floats(w.wt_model_adam_m).set(adamM);
    this.#floats(w.wt_model_adam_v).set(adamV);
  }

  /**
   * A checkpoint file (Uint8Array) of this model and `runState`: { epoch, step, epochs,
   * batchSize, shuffle, workers, seed, trainCount, windowCount, windowSum, adam: {lr, ...} }.
   */
  saveCheckpoint(runState) {
    const e = this.engine;
    const bytes = e.wasm.wt_checkpoint_bytes();
    const state = e.alloc(RUN_STATE.bytes), out = e.alloc(bytes);
    try {
      writeRunState(e, state, runState);
      e.check(e.wasm.wt_checkpoint_save(this.ptr, state, out, bytes), 'saving checkpoint');
      return copyOut(e.heapU8.subarray(out, out + bytes));
    } finally {
      e.free(state);
      e.free(out);
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
      e.check(e.wasm.wt_checkpoint_load(this.ptr, state, ptr, data.byteLength), name);
      return readRunState(e, state);
    } finally {
      e.free(state);
      e.free(ptr);
    }
  }

  /** The PyTorch-compatible weights file: 62,006 little-endian float32 in state_dict order. */
  exportWeights() {
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

  logits(batch) {
    const start = this.engine.wasm.wt_model_logits(this.ptr) >> 2;
    return copyOut(this.engine.heapF32.subarray(start, start + batch * NUM_CLASSES));
  }

  #indices(indices) {
    if (indices.length > this.maxBatch) throw new RangeError(`batch of ${indices.length} exceeds ${this.maxBatch}`);
    this.engine.heapU32.set(indices, this.indicesPtr >> 2);
    return this.indicesPtr;
  }

  /** Summed cross-entropy of the records at `indices` (array or Uint32Array). */
  forward(dataset, indices) {
    const w = this.engine.wasm;
    this.engine.check(w.wt_model_forward(this.ptr, dataset.ptr, dataset.count, this.#indices(indices), indices.length, this.slotPtr), 'forward');
    return this.engine.heapF64[this.slotPtr >> 3];
  }

  zeroGrads() { this.engine.wasm.wt_model_zero_grads(this.ptr); }

  /** Accumulates lossScale * gradient of the summed loss; returns the summed loss. */
  backward(dataset, indices, lossScale) {
    const w = this.engine.wasm;
    this.engine.check(w.wt_model_backward(this.ptr, dataset.ptr, dataset.count, this.#indices(indices), indices.length, lossScale, this.slotPtr), 'backward');
    return this.engine.heapF64[this.slotPtr >> 3];
  }

  /**
   * Node [lo, hi) of the gradient tree (see wt_model_gradient in webtrain.h) of the `batch`
   * indices at indicesPtr, scaled by 1/batch, written over the PARAM_COUNT floats at dstPtr
   * (default: this model's gradients). Returns the node's summed loss.
   */
  gradientAt(dataset, indicesPtr, batch, lo, hi, dstPtr = this.engine.wasm.wt_model_grads(this.ptr)) {
    const w = this.engine.wasm;
    this.engine.check(w.wt_model_gradient(this.ptr, dataset.ptr, dataset.count, indicesPtr, batch, lo, hi, 1 / batch, dstPtr, this.slotPtr), 'gradient');
    return this.engine.heapF64[this.slotPtr >> 3];
  }

  adamUpdate() {
    this.engine.check(this.engine.wasm.wt_model_adam_update(this.ptr, this.adamPtr), 'Adam update');
  }

  /**
   * One training step on `batch` indices read from Wasm memory at indicesPtr (e.g. a slice of an
   * epoch permutation); returns the mean loss.
   */
  trainStepAt(dataset, indicesPtr, batch) {
    const w = this.engine.wasm;
    const status = w.wt_model_train_step(this.ptr, dataset.ptr, dataset.count, indicesPtr, batch, this.adamPtr, this.slotPtr);
    this.engine.check(status, 'training step');
    return this.engine.heapF32[this.slotPtr >> 2];
  }

  trainStep(dataset, indices) {
    return this.trainStepAt(dataset, this.#indices(indices), indices.length);
  }

  /**
   * Accuracy, mean loss, confusion matrix (confusion[true * 10 + predicted]) and every
   * prediction over the dataset's records [offset, offset + count) (default: all of them).
   */
  evaluate(dataset, { offset = 0, count = dataset.count - offset } = {}) {
    const engine = this.engine;
    if (!(offset >= 0 && count >= 0 && offset + count <= dataset.count)) {
      throw new RangeError(`records ${offset}..${offset + count} are outside the ${dataset.count} loaded`);
    }
    const scratch = engine.alloc(16 + 400 + Math.max(count, 1));
    const correctPtr = scratch, lossPtr = scratch + 8, confusionPtr = scratch + 16, predPtr = scratch + 416;
    try {
      engine.heapU8.fill(0, scratch, scratch + 416);
      const records = dataset.ptr + offset * RECORD_BYTES;
      engine.check(engine.wasm.wt_model_evaluate(this.ptr, records, count, correctPtr, lossPtr, confusionPtr, predPtr), 'evaluation');
      const correct = engine.heapI32[correctPtr >> 2];
      return {
        correct,
        total: count,
        accuracy: count ? correct / count : 0,
        loss: count ? engine.heapF64[lossPtr >> 3] / count : 0,
        confusion: copyOut(engine.heapI32.subarray(confusionPtr >> 2, (confusionPtr >> 2) + 100)),
        predictions: copyOut(engine.heapU8.subarray(predPtr, predPtr + count)),
      };
    } finally {
      engine.free(scratch);
    }
  }

  /** Starts adding per-layer times to a fresh table; returns a function that reads it (ms). */
  startProfile() {
    const slots = this.engine.alloc(8 * PROFILE_SLOTS.length);
    this.engine.heapF64.fill(0, slots >> 3, (slots >> 3) + PROFILE_SLOTS.length);
    this.engine.wasm.wt_model_set_profile(this.ptr, slots);
    return () => Object.fromEntries(PROFILE_SLOTS.map((name, i) => [name, this.engine.heapF64[(slots >> 3) + i]]));
  }

  stopProfile() { this.engine.wasm.wt_model_set_profile(this.ptr, 0); }

  destroy() {
    if (!this.ptr) return;
    const e = this.engine;
    e.free(this.adamPtr);
    e.free(this.indicesPtr);
    e.free(this.slotPtr);
    e.wasm.wt_model_destroy(this.ptr);
    this.ptr = 0;
  }
}

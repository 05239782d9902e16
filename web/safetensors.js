// The safetensors format (huggingface/safetensors): a model's state_dict that PyTorch loads with
// `safetensors.torch.load_file`, written and read here with no dependency. A file is a u64
// little-endian header length n, n bytes of JSON header (padded with spaces to a multiple of 8),
// then the tensors' bytes, every byte of which belongs to exactly one tensor.
import { describeDifference, formatDescription, parseDescription } from './model-description.js';

/** The largest header read: the format's own limit (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the format defines (so a file of another dtype is named, not misread). */
const DTYPE_BYTES = Object.freeze({
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
});

/** A file refused by the reader; the message names the file and the problem. Nothing was loaded. */
export class SafetensorsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

const INT32_MAX = 0x7fffffff;

/**
 * The model's state_dict as PyTorch names it, in state_dict order: [{ name, dtype, shape, count,
 * tensor }], tensor being the engine's (null for a count). Batch norm's num_batches_tracked (one
 * count for the whole model in webtrain) follows each running_var.
 */
function stateEntries(model) {
  if (!model.tensorNames) throw new TypeError('safetensors: the model needs its description (createModelFromDescription or attachDescription)');
  const entries = [];
  model.tensors.forEach((t, i) => {
    const name = model.tensorNames[i];
    entries.push({ name, dtype: 'F32', shape: t.shape, count: t.count, tensor: t });
    if (t.role === 'running_var') {
      entries.push({ name: `${name.slice(0, -'running_var'.length)}num_batches_tracked`, dtype: 'I64', shape: [], count: 1, tensor: null });
    }
  });
  return entries;
}

const elements = (shape) => shape.reduce((a, b) => a * b, 1);

/** The data format of a model as metadata: shape, classes and the normalisation of the pixels. */
function dataFormat(model, format) {
  const { channels, height, width, classes } = model.format;
  return { channels, height, width, classes, mean: Array.from(format?.mean ?? []), std: Array.from(format?.std ?? []) };
}

/**
 * The model's weights, running statistics and batch counts as a safetensors file (Uint8Array).
 * `__metadata__` holds `format: pt` (what PyTorch tools expect), the model description
 * (`webtrain.model`), the data format and normalisation (`webtrain.data`, JSON) and `metadata`'s
 * own entries, all as strings. F32 tensors in state_dict order; the I64 counts come first in the
 * byte buffer so that every tensor starts at a multiple of its element size.
 */
export function exportSafetensors(model, { metadata = {}, format = null } = {}) {
  const entries = stateEntries(model);
  const text = model.source().text || formatDescription(model.description);
  const meta = { format: 'pt', 'webtrain.model': text, 'webtrain.data': JSON.stringify(dataFormat(model, format)) };
  for (const [key, value] of Object.entries(metadata)) meta[key] = String(value);
  const header = { __metadata__: meta };
  let at = 0;
  const place = (e) => { e.begin = at; at += e.count * DTYPE_BYTES[e.dtype]; };
  entries.filter((e) => e.dtype === 'I64').forEach(place);
  entries.filter((e) => e.dtype === 'F32').forEach(place);
  for (const e of entries) header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.begin + e.count * DTYPE_BYTES[e.dtype]] };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + at);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded); // the format's padding: spaces
  const base = 8 + padded;
  const params = model.paramsView(), running = model.runningView();
  for (const e of entries) {
    if (e.dtype === 'I64') {
      view.setBigInt64(base + e.begin, BigInt(model.statSteps), true);
      continue;
    }
    const source = e.tensor.role === 'weight' || e.tensor.role === 'bias' ? params : running;
    const values = source.subarray(e.tensor.offset, e.tensor.offset + e.count);
    for (let i = 0; i < values.length; i++) view.setFloat32(base + e.begin + 4 * i, values[i], true);
  }
  return out;
}

/**
 * The structure of a safetensors file, checked against the format's rules alone: { metadata,
 * tensors: Map name -> { dtype, shape, begin, end } (offsets into the file) }. Throws a
 * SafetensorsError naming `name` and the first problem.
 */
export function parseSafetensors(bytes, name = 'safetensors file') {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const fail = (problem) => { throw new SafetensorsError(`${name}: ${problem}`); };
  if (data.length < 8) fail(`${data.length} bytes is too short for a safetensors file (it starts with an 8-byte header length)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) fail(`its header length ${declared} is more than the format's ${MAX_HEADER_BYTES}-byte limit: not a safetensors file?`);
  const n = Number(declared);
  if (n < 2) fail(`its header length is ${n} bytes, too short for the JSON header`);
  if (8 + n > data.length) fail(`truncated: the header length says ${n} bytes but only ${data.length - 8} follow`);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(8, 8 + n));
  } catch {
    fail('its header is not UTF-8 text');
  }
  if (text[0] !== '{') fail('its header does not start with \'{\': not a safetensors file?');
  let header;
  try {
    header = JSON.parse(text);
  } catch (error) {
    fail(`its header is not valid JSON (${error.message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('its header is not a JSON object');
  let metadata = {};
  if ('__metadata__' in header) {
    metadata = header.__metadata__;
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) fail('its __metadata__ is not an object of strings');
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(`its __metadata__ entry '${key}' is not a string`);
    }
  }
  const dataStart = 8 + n, dataBytes = data.length - dataStart;
  const tensors = new Map();
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const where = `tensor '${key}'`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(`${where} is not an object with dtype, shape and data_offsets`);
    for (const field of Object.keys(info)) {
      if (!['dtype', 'shape', 'data_offsets'].includes(field)) fail(`${where} has an unknown field '${field}'`);
    }
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) fail(`${where} has an unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${where} has a shape that is not a list of whole numbers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${where} has data_offsets that are not two whole numbers [begin, end]`);
    }
    const [begin, end] = offsets;
    if (begin > end) fail(`${where} has data_offsets [${begin}, ${end}] that end before they begin`);
    if (end > dataBytes) fail(`${where} has data_offsets [${begin}, ${end}] beyond the ${dataBytes} bytes of tensor data (truncated?)`);
    const expected = elements(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) fail(`${where} (${dtype}, shape [${shape.join(', ')}]) needs ${expected} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}`);
    tensors.set(key, { dtype, shape, begin: dataStart + begin, end: dataStart + end, offsets });
  }
  // Every byte of the buffer belongs to exactly one tensor: no overlap, no hole, nothing after.
  const sorted = [...tensors.entries()].sort((a, b) => a[1].offsets[0] - b[1].offsets[0] || a[1].offsets[1] - b[1].offsets[1]);
  let at = 0, previous = null;
  for (const [key, t] of sorted) {
    const [begin, end] = t.offsets;
    if (begin < at) fail(`tensor '${key}' at bytes [${begin}, ${end}] overlaps tensor '${previous}'`);
    if (begin > at) fail(`bytes ${at}..${begin} of the tensor data belong to no tensor (a hole before '${key}')`);
    at = end;
    previous = key;
  }
  if (at !== dataBytes) fail(`${dataBytes - at} bytes after the last tensor belong to no tensor (trailing bytes)`);
  return { metadata, tensors };
}

/** The model description a file's metadata carries, or null. */
export function safetensorsDescription(bytes, name) {
  const { metadata } = parseSafetensors(bytes, name);
  return typeof metadata['webtrain.model'] === 'string' ? metadata['webtrain.model'] : null;
}

/**
 * The data format a webtrain file was made for (`webtrain.data`: channels, height, width,
 * classes, mean, std), or null when it has none (a file from PyTorch). A malformed entry is
 * refused naming the file.
 */
export function safetensorsDataFormat(bytes, name) {
  return dataFormatOf(parseSafetensors(bytes, name).metadata, name);
}

/** The model description (text or null) and the data format (or null) of a file, read in one parse. */
export function safetensorsModel(bytes, name) {
  const { metadata } = parseSafetensors(bytes, name);
  return { text: typeof metadata['webtrain.model'] === 'string' ? metadata['webtrain.model'] : null, format: dataFormatOf(metadata, name) };
}

function dataFormatOf(metadata, name) {
  if (typeof metadata['webtrain.data'] !== 'string') return null;
  const fail = (problem) => { throw new SafetensorsError(`${name}: its __metadata__ entry 'webtrain.data' ${problem}`); };
  let d;
  try {
    d = JSON.parse(metadata['webtrain.data']);
  } catch {
    fail('is not JSON');
  }
  if (!d || typeof d !== 'object') fail('is not an object');
  for (const key of ['channels', 'height', 'width', 'classes']) {
    if (!Number.isInteger(d[key]) || d[key] < 1 || d[key] > 65536) fail(`has no valid ${key} (got ${JSON.stringify(d[key])})`);
  }
  for (const key of ['mean', 'std']) {
    const v = d[key];
    if (!Array.isArray(v) || v.length !== d.channels || !v.every((x) => Number.isFinite(x) && (key === 'mean' || x > 0))) {
      fail(`has no valid ${key}: expected ${d.channels} ${key === 'std' ? 'positive ' : ''}numbers, one per channel (got ${JSON.stringify(v)})`);
    }
  }
  const { channels, height, width, classes, mean, std } = d;
  return { channels, height, width, classes, mean, std };
}

const listed = (names, max = 3) => names.slice(0, max).map((n) => `'${n}'`).join(', ') + (names.length > max ? ` and ${names.length - max} more` : '');

/**
 * Loads a safetensors file into the model: its weights, running statistics and batch count (the
 * largest num_batches_tracked). Everything is checked before anything is written, so on any
 * refusal (a SafetensorsError naming `name`) the model is untouched. Adam's moments start afresh,
 * as after loading a raw weights file. Returns { tensors, metadata }.
 */
export function importSafetensors(model, bytes, name = 'safetensors file') {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const fail = (problem) => { throw new SafetensorsError(`${name}: ${problem}`); };
  const { metadata, tensors } = parseSafetensors(data, name);
  const entries = stateEntries(model);
  const expected = new Set(entries.map((e) => e.name));
  const unknown = [...tensors.keys()].filter((k) => !expected.has(k));
  const missing = entries.filter((e) => !tensors.has(e.name)).map((e) => e.name);
  if (missing.length || unknown.length) {
    const parts = [];
    if (missing.length) parts.push(`lacks ${listed(missing)}`);
    if (unknown.length) parts.push(`has tensors this model does not: ${listed(unknown)}`);
    fail(`${parts.join('; ')}; is it for another model?`);
  }
  // A file that names its model must name this one (a file from PyTorch names none).
  if (typeof metadata['webtrain.model'] === 'string' && model.description) {
    let saved = null;
    try {
      saved = parseDescription(metadata['webtrain.model']);
    } catch (error) {
      fail(`its model description (metadata 'webtrain.model') does not parse: ${error.message}`);
    }
    const difference = describeDifference(model.description, saved);
    if (difference) fail(`it holds another model: ${difference}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const params = new Float32Array(model.paramCount), running = new Float32Array(model.runningCount);
  let statSteps = 0;
  for (const e of entries) {
    const t = tensors.get(e.name);
    if (t.dtype !== e.dtype) fail(`tensor '${e.name}' is ${t.dtype}, expected ${e.dtype}${e.dtype === 'F32' ? ' (convert it with .float() before saving)' : ''}`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      fail(`tensor '${e.name}' has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
    }
    if (e.dtype === 'I64') {
      const steps = view.getBigInt64(t.begin, true);
      if (steps < 0n || steps > BigInt(INT32_MAX)) fail(`tensor '${e.name}' is ${steps}, expected a count from 0 to ${INT32_MAX}`);
      statSteps = Math.max(statSteps, Number(steps));
      continue;
    }
    const target = e.tensor.role === 'weight' || e.tensor.role === 'bias' ? params : running;
    for (let i = 0; i < e.count; i++) {
      const v = view.getFloat32(t.begin + 4 * i, true);
      if (!Number.isFinite(v)) fail(`tensor '${e.name}' holds a non-finite value (${v}) at element ${i}`);
      if (e.tensor.role === 'running_var' && v < 0) fail(`tensor '${e.name}' holds a negative variance (${v}) at element ${i}`);
      target[e.tensor.offset + i] = v;
    }
  }
  const zeros = new Float32Array(model.paramCount);
  model.importState({ params, running, adamM: zeros, adamV: zeros, adamSteps: 0, statSteps });
  return { tensors: entries.length, metadata };
}

/** Bytes of tensor data in this model's safetensors file (for the reader's size rule). */
export function safetensorsDataBytes(model) {
  return stateEntries(model).reduce((sum, e) => sum + e.count * DTYPE_BYTES[e.dtype], 0);
}

// The model description format (README "Describing a network"): text -> JSON form, JSON -> canonical
// text, the first difference between two nets, the compact encoding for `?model=` links, the presets.
// Plain ES module (its one dependency, recipe.js, reads the training settings a description may
// carry as `@` lines): the page, the workers and Node import it alike.
//
// The parser checks everything that does not need shapes; shape inference (output shapes,
// parameter counts, "kernel larger than its input") is the C engine's, from the JSON form.
import { RECIPE_SETTING_KEYS, readRecipeSetting, isListField, RecipeError, formatField, recipeSettingName } from './recipe.js';

export const FORMAT = 'webtrain-model/1';
export const MAX_CHARS = 100000;
export const MAX_LAYERS = 256;
export const MAX_DEPTH = 8;

/** A description the user must fix. `.line` is 1-based, or null when no one line is at fault. */
export class DescriptionError extends Error {
  constructor(line, message) {
    super(line == null ? message : `line ${line}: ${message}`);
    this.name = 'DescriptionError';
    this.line = line ?? null;
  }
}

/** Thrown by a validator; the caller adds the line and the layer. */
class ArgumentProblem extends Error {}

// ---------------------------------------------------------------------------------------------
// Validators: (value, name) -> the value for the JSON form, or throw ArgumentProblem.

/** What the user wrote, shortened for a message (a line can be 100,000 characters long). */
function clip(text, max = 40) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A value as the user would write it, for messages. */
function show(value) {
  if (Array.isArray(value)) return clip(`(${value.map(show).join(', ')})`);
  if (typeof value === 'string') return value === 'classes' ? value : `'${clip(value)}'`;
  if (value === null) return 'None';
  return String(value);
}

function whole(lo, hi) {
  return (v, name) => {
    if (!Number.isInteger(v) || v < lo) throw new ArgumentProblem(`${name} must be a whole number >= ${lo}, got ${show(v)}`);
    if (v > hi) throw new ArgumentProblem(`${name} must be at most ${hi}, got ${show(v)}`);
    return v;
  };
}

/** A number, or a pair of equal numbers as PyTorch allows for kernel_size, stride and padding. */
function square(inner) {
  return (v, name) => {
    if (!Array.isArray(v)) return inner(v, name);
    if (v.length !== 2) throw new ArgumentProblem(`${name} must be a number or a pair, got ${show(v)}`);
    const [a, b] = [inner(v[0], name), inner(v[1], name)];
    if (a !== b) throw new ArgumentProblem(`only square kernels are supported, got ${name}=${show(v)}`);
    return a;
  };
}

const count = whole(1, 65536);

function countOrClasses(v, name) {
  return v === 'classes' ? v : count(v, name);
}

function boolean(v, name) {
  if (typeof v !== 'boolean') throw new ArgumentProblem(`${name} must be true or false, got ${show(v)}`);
  return v;
}

function oneOf(...choices) {
  return (v, name) => {
    if (!choices.includes(v)) throw new ArgumentProblem(`${name} must be ${choices.map(show).join(' or ')}, got ${show(v)}`);
    return v;
  };
}

/** A finite number that passes `ok`; `range` says which in words. */
function decimal(ok, range) {
  return (v, name) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new ArgumentProblem(`${name} must be ${range}, got ${show(v)}`);
    }
    return v;
  };
}

/** Accepted only with PyTorch's default value (given as one of `allowed`); anything else is refused. */
function onlyDefault(...allowed) {
  const same = (a, b) => show(a) === show(b);
  return (v, name) => {
    if (!allowed.some((a) => same(a, v))) throw new ArgumentProblem(`${name}=${show(v)} is not supported (only ${show(allowed[0])})`);
    return v;
  };
}

function convPadding(v, name) {
  if (v === 'same') return v;
  if (v === 'valid') return 0;
  return square(whole(0, 64))(v, name);
}

/** None means "the kernel size", as in PyTorch's pools. */
function poolStride(v, name) {
  return v === null ? null : square(whole(1, 64))(v, name);
}

function momentum(v, name) {
  if (v === null) throw new ArgumentProblem(`${name}=None (a cumulative average) is not supported`);
  return decimal((x) => x >= 0 && x <= 1, 'a number from 0 to 1')(v, name);
}

// ---------------------------------------------------------------------------------------------
// The layer table. Per type: `auto`, the prefix of automatic names; `args`, in JSON order, each
// { name, default (absent = required), check, store: false (accepted and checked, not in the JSON),
// input: true (the input size: only forms that list it take it, and they require it),
// byForm: true (not an argument: each form sets it) }; `forms`, the names it is written with (the
// short one first), each with its positional order; `finish`, checks that need several arguments.

const kernel = square(whole(1, 64));
const POOL_ARGS = [
  { name: 'kernel_size', check: kernel },
  { name: 'stride', default: null, check: poolStride },
  { name: 'padding', default: 0, check: square(whole(0, 64)) },
];
const IGNORED_INPLACE = { name: 'inplace', default: false, check: boolean, store: false };

function finishPool(layer, form) {
  if (layer.stride === null) layer.stride = layer.kernel_size;
  if (2 * layer.padding > layer.kernel_size) {
    throw new ArgumentProblem(`${form}: padding must be at most half of kernel_size (as in PyTorch), got padding=${layer.padding} with kernel_size=${layer.kernel_size}`);
  }
}

const CONV_EXTRAS = ['dilation', 'groups', 'bias', 'padding_mode'];
const GLOBAL_POOL_ARGS = [{ name: 'output_size', default: 1, check: onlyDefault(1, [1, 1]), store: false }];

export const LAYER_TYPES = [
  {
    type: 'conv', auto: 'conv',
    args: [
      { name: 'in_channels', default: null, check: count, input: true },
      { name: 'out_channels', check: countOrClasses },
      { name: 'kernel_size', check: kernel },
      { name: 'stride', default: 1, check: square(whole(1, 64)) },
      { name: 'padding', default: 0, check: convPadding },
      { name: 'bias', default: true, check: boolean },
      { name: 'dilation', default: 1, check: onlyDefault(1, [1, 1]), store: false },
      { name: 'groups', default: 1, check: onlyDefault(1), store: false },
      { name: 'padding_mode', default: 'zeros', check: onlyDefault('zeros'), store: false },
      { name: 'init', default: 'default', check: oneOf('default', 'dirac', 'whiten') },
      { name: 'whiten_images', default: 5000, check: whole(1, 10000000) },
      { name: 'whiten_eps', default: 5e-4, check: decimal((x) => x > 0, 'a number > 0') },
    ],
    forms: [
      { name: 'conv', positional: ['out_channels', 'kernel_size', 'stride', 'padding', 'bias'] },
      { name: 'Conv2d', positional: ['in_channels', 'out_channels', 'kernel_size', 'stride', 'padding', ...CONV_EXTRAS] },
      { name: 'LazyConv2d', positional: ['out_channels', 'kernel_size', 'stride', 'padding', ...CONV_EXTRAS] },
    ],
    finish(layer) {
      if (layer.padding === 'same' && layer.stride !== 1) throw new ArgumentProblem(`padding='same' needs stride 1 (as in PyTorch)`);
      if (layer.init !== 'whiten' && (layer.whiten_images !== 5000 || layer.whiten_eps !== 5e-4)) {
        throw new ArgumentProblem(`whiten_images and whiten_eps apply only with init='whiten'`);
      }
    },
  },
  {
    type: 'linear', auto: 'fc',
    args: [
      { name: 'in_features', default: null, check: count, input: true },
      { name: 'out_features', check: countOrClasses },
      { name: 'bias', default: true, check: boolean },
    ],
    forms: [
      { name: 'linear', positional: ['out_features', 'bias'] },
      { name: 'Linear', positional: ['in_features', 'out_features', 'bias'] },
      { name: 'LazyLinear', positional: ['out_features', 'bias'] },
    ],
  },
  {
    type: 'relu', auto: 'relu',
    args: [IGNORED_INPLACE],
    forms: [{ name: 'relu', positional: [] }, { name: 'ReLU', positional: ['inplace'] }],
  },
  {
    type: 'gelu', auto: 'gelu',
    args: [{ name: 'approximate', default: 'none', check: oneOf('none', 'tanh') }],
    forms: [{ name: 'gelu', positional: ['approximate'] }, { name: 'GELU', positional: ['approximate'] }],
  },
  {
    type: 'maxpool', auto: 'pool',
    args: [
      ...POOL_ARGS,
      { name: 'dilation', default: 1, check: onlyDefault(1, [1, 1]), store: false },
      { name: 'return_indices', default: false, check: onlyDefault(false), store: false },
      { name: 'ceil_mode', default: false, check: onlyDefault(false), store: false },
    ],
    forms: [
      { name: 'maxpool', positional: ['kernel_size', 'stride', 'padding'] },
      { name: 'MaxPool2d', positional: ['kernel_size', 'stride', 'padding', 'dilation', 'return_indices', 'ceil_mode'] },
    ],
    finish: finishPool,
  },
  {
    type: 'avgpool', auto: 'avgpool',
    args: [
      ...POOL_ARGS,
      { name: 'ceil_mode', default: false, check: onlyDefault(false), store: false },
      { name: 'count_include_pad', default: true, check: onlyDefault(true), store: false },
      { name: 'divisor_override', default: null, check: onlyDefault(null), store: false },
    ],
    forms: [
      { name: 'avgpool', positional: ['kernel_size', 'stride', 'padding'] },
      { name: 'AvgPool2d', positional: ['kernel_size', 'stride', 'padding', 'ceil_mode', 'count_include_pad', 'divisor_override'] },
    ],
    finish: finishPool,
  },
  {
    type: 'globalavgpool', auto: 'gap',
    args: GLOBAL_POOL_ARGS,
    forms: [{ name: 'globalavgpool', positional: [] }, { name: 'AdaptiveAvgPool2d', positional: ['output_size'], required: ['output_size'] }],
  },
  {
    type: 'globalmaxpool', auto: 'gmp',
    args: GLOBAL_POOL_ARGS,
    forms: [{ name: 'globalmaxpool', positional: [] }, { name: 'AdaptiveMaxPool2d', positional: ['output_size'], required: ['output_size'] }],
  },
  {
    type: 'batchnorm', auto: 'bn',
    args: [
      { name: 'num_features', default: null, check: count, input: true },
      { name: 'dims', default: null, byForm: true },
      { name: 'eps', default: 1e-5, check: decimal((x) => x > 0, 'a number > 0') },
      { name: 'momentum', default: 0.1, check: momentum },
      { name: 'affine', default: true, check: boolean },
      { name: 'track_running_stats', default: true, check: onlyDefault(true), store: false },
      { name: 'weight', default: 'trainable', check: oneOf('trainable', 'frozen') },
    ],
    forms: [
      { name: 'batchnorm', positional: ['eps', 'momentum', 'affine'] },
      { name: 'BatchNorm2d', positional: ['num_features', 'eps', 'momentum', 'affine', 'track_running_stats'], set: { dims: 2 } },
      { name: 'BatchNorm1d', positional: ['num_features', 'eps', 'momentum', 'affine', 'track_running_stats'], set: { dims: 1 } },
      { name: 'LazyBatchNorm2d', positional: ['eps', 'momentum', 'affine', 'track_running_stats'], set: { dims: 2 } },
      { name: 'LazyBatchNorm1d', positional: ['eps', 'momentum', 'affine', 'track_running_stats'], set: { dims: 1 } },
    ],
    finish(layer) {
      if (layer.weight === 'frozen' && !layer.affine) throw new ArgumentProblem(`weight='frozen' needs affine=True (without affine there is no weight)`);
    },
  },
  {
    type: 'dropout', auto: 'drop',
    args: [{ name: 'p', default: 0.5, check: decimal((x) => x >= 0 && x < 1, 'a number from 0 up to (not including) 1') }, IGNORED_INPLACE],
    forms: [{ name: 'dropout', positional: ['p'] }, { name: 'Dropout', positional: ['p', 'inplace'] }],
  },
  {
    type: 'flatten', auto: 'flatten',
    args: [
      { name: 'start_dim', default: 1, check: onlyDefault(1), store: false },
      { name: 'end_dim', default: -1, check: onlyDefault(-1), store: false },
    ],
    forms: [{ name: 'flatten', positional: ['start_dim', 'end_dim'] }, { name: 'Flatten', positional: ['start_dim', 'end_dim'] }],
  },
  {
    type: 'scale', auto: 'scale',
    args: [{ name: 'factor', check: decimal(() => true, 'a finite number') }],
    forms: [{ name: 'scale', positional: ['factor'] }],
  },
];

/** The residual block is structure, not a layer type of the table: it has a body and a shortcut. */
const RESIDUAL = { type: 'residual', auto: 'res' };
const AUTO_PREFIX = Object.fromEntries([...LAYER_TYPES, RESIDUAL].map((t) => [t.type, t.auto]));

/**
 * The form a type word names. Case does not matter, except that `Linear` (PyTorch's, in_features
 * first) and `linear` (lazy) differ only in case: an exact match wins, then the short form.
 */
function findForm(word) {
  let caseless = null;
  for (const entry of LAYER_TYPES) {
    for (const form of entry.forms) {
      if (form.name === word) return { entry, form };
      if (!caseless && form.name.toLowerCase() === word.toLowerCase()) caseless = { entry, form };
    }
  }
  return caseless;
}

// ---------------------------------------------------------------------------------------------
// The settings table: `@key value` lines. Adding a setting is one entry.

export const SETTINGS = [
  { key: 'ghost_batch', default: 8, check: whole(1, 1024), help: 'images per gradient-tree block; batch-norm statistics are computed over each block' },
  { key: 'normalize', default: 'data', check: normalizeSetting, help: "the input's Normalize(mean, std): 'data' (the data set's own) or per-channel 'MEAN,MEAN,MEAN/STD,STD,STD'" },
];

/** `@normalize`: 'data', or 'M,.../S,...' (1 to 4 channels, std > 0), kept in a canonical form. */
function normalizeSetting(v, name) {
  const example = `e.g. ${name} '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616'`;
  if (typeof v !== 'string') throw new ArgumentProblem(`${name} takes 'data' or 'MEAN,.../STD,...' in quotes, ${example}`);
  if (v === 'data') return v;
  const parts = v.replace(/\s+/g, '').split('/');
  const lists = parts.map((p) => p.split(',').map((x) => (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(x) ? Number(x) : NaN)));
  if (parts.length !== 2 || lists.some((l) => l.some((x) => !Number.isFinite(x)))) {
    throw new ArgumentProblem(`${name} '${clip(v)}' is not 'data' or 'MEAN,.../STD,...' (${example})`);
  }
  const [mean, std] = lists;
  if (mean.length !== std.length || mean.length > 4) throw new ArgumentProblem(`${name} needs as many stds as means, one per channel (at most 4), got ${mean.length} and ${std.length}`);
  if (std.some((x) => x <= 0)) throw new ArgumentProblem(`${name}: every std must be above 0`);
  return `${mean.join(',')}/${std.join(',')}`;
}

/**
 * The input normalisation a description asks for on data of `format` ({ channels, mean, std }):
 * its `@normalize` values, or the data set's own. Throws a DescriptionError when the channel
 * counts differ.
 */
export function normalizationOf(json, format) {
  const value = json.settings?.normalize ?? 'data';
  if (value === 'data') return { mean: Array.from(format.mean ?? []), std: Array.from(format.std ?? []) };
  const [mean, std] = value.split('/').map((p) => p.split(',').map(Number));
  if (mean.length !== format.channels) {
    throw new DescriptionError(null, `@normalize gives ${mean.length} channel${mean.length === 1 ? '' : 's'}, but the data's images have ${format.channels}`);
  }
  return { mean, std };
}

function defaultSettings() {
  return Object.fromEntries(SETTINGS.map((s) => [s.key, s.default]));
}

// ---------------------------------------------------------------------------------------------
// Suggestions for misspelt names.

function editDistance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

function closest(word, candidates) {
  let best = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

function unknown(what, word, candidates) {
  const guess = word.length <= 40 ? closest(word, candidates) : null;
  return `unknown ${what} '${clip(word)}' (${guess ? `did you mean ${guess}? ` : ''}known: ${candidates.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Reading one line: comments, tokens, values.

/** The line without its comment (a `#` outside quotes starts one). */
function stripComment(text) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) { if (c === quote) quote = null; } else if (c === "'" || c === '"') quote = c;
    else if (c === '#') return text.slice(0, i);
  }
  return text;
}

const SPACE = /\s*/y;
const TOKEN = /([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])|([A-Za-z_][\w.]*)|'([^']*)'|"([^"]*)"|([(),=])|(\S)/y;

/** Tokens: { kind: 'number' | 'word' | 'string' | 'punct', value, text }. */
function tokenize(text, fail) {
  const tokens = [];
  for (let at = 0; ; at = TOKEN.lastIndex) {
    SPACE.lastIndex = at;
    SPACE.exec(text);
    if (SPACE.lastIndex >= text.length) return tokens;
    TOKEN.lastIndex = SPACE.lastIndex;
    const m = TOKEN.exec(text);
    if (m[1] !== undefined) tokens.push({ kind: 'number', value: Number(m[1]), text: m[1] });
    else if (m[2] !== undefined) tokens.push({ kind: 'word', value: m[2], text: m[2] });
    else if (m[3] !== undefined || m[4] !== undefined) tokens.push({ kind: 'string', value: m[3] ?? m[4], text: m[0].trim() });
    else if (m[5] !== undefined) tokens.push({ kind: 'punct', value: m[5], text: m[5] });
    else if (m[6] === "'" || m[6] === '"') fail(`a string is not closed: ${clip(text.slice(TOKEN.lastIndex - 1).trim())}`);
    else fail(`unexpected '${m[6]}'`);
  }
}

/** Reads tokens as one layer call `type[(args)]` or as one value (for settings). */
class TokenReader {
  constructor(tokens, fail) { this.tokens = tokens; this.at = 0; this.fail = fail; }
  peek() { return this.tokens[this.at]; }
  next() { return this.tokens[this.at++]; }
  isPunct(p) { const t = this.peek(); return t !== undefined && t.kind === 'punct' && t.value === p; }
  done() { return this.at >= this.tokens.length; }

  /** A number, boolean, None, string or bare word, or a tuple of them. */
  value(inTuple = false) {
    const t = this.next();
    if (t === undefined) this.fail('a value is missing at the end of the line');
    if (t.kind === 'number' || t.kind === 'string') return t.value;
    if (t.kind === 'word') {
      if (/^(true|True)$/.test(t.value)) return true;
      if (/^(false|False)$/.test(t.value)) return false;
      if (/^(None|null)$/.test(t.value)) return null;
      return t.value;
    }
    if (t.value === '(' && !inTuple) {
      const items = [];
      while (!this.isPunct(')')) {
        items.push(this.value(true));
        this.separator();
      }
      this.next();
      return items;
    }
    return this.fail(`unexpected '${clip(t.text)}'`);
  }

  /** After a value in parentheses: ',' or the closing ')'. */
  separator() {
    if (this.done()) this.fail(`')' is missing at the end of the line`);
    if (!this.isPunct(')')) this.expect(',');
  }

  expect(p) {
    const t = this.next();
    if (t === undefined) this.fail(`'${p}' is missing at the end of the line`);
    if (t.kind !== 'punct' || t.value !== p) this.fail(`expected '${p}' before '${clip(t.text)}'`);
  }

  /** `(a, b, key=value,)` -> { positional: [...], keywords: [[key, value], ...] } */
  argumentList() {
    const positional = [];
    const keywords = [];
    this.expect('(');
    while (!this.isPunct(')')) {
      if (this.done()) this.fail(`')' is missing at the end of the line`);
      const t = this.peek();
      const u = this.tokens[this.at + 1];
      if (t && t.kind === 'word' && u && u.kind === 'punct' && u.value === '=') {
        this.at += 2;
        keywords.push([t.value, this.value()]);
      } else {
        if (keywords.length) this.fail('a positional argument cannot follow a keyword argument');
        positional.push(this.value());
      }
      this.separator();
    }
    this.next();
    return { positional, keywords };
  }
}

const IDENTIFIER = /^[A-Za-z_]\w*$/;

/**
 * `name: rest`, or as pasted from PyTorch, `self.name = rest`, `name = rest` or `(name): rest` (a
 * printed module) -> [name | null, rest]
 */
function splitName(text) {
  const colon = /^(?:\(([^\s:()=,'"]+)\)|([^\s:()=,'"]+))\s*:(.*)$/.exec(text);
  if (colon) return [colon[1] ?? colon[2], colon[3].trim()];
  const assign = /^(?:self\.)?([A-Za-z_]\w*)\s*=(?!=)(.*)$/.exec(text);
  if (assign) return [assign[1], assign[2].trim()];
  return [null, text];
}

/** The type word without `nn.` / `torch.nn.`. */
function typeWord(word) {
  return word.replace(/^(torch\.)?nn\./i, '');
}

// ---------------------------------------------------------------------------------------------
// Building one layer from its call.

function buildLayer(entry, form, call, line) {
  const problem = (message) => new DescriptionError(line, `${form.name}: ${message}`);
  const accepted = entry.args.filter((a) => !a.byForm && (!a.input || form.positional.includes(a.name)));
  const names = accepted.map((a) => a.name);
  const given = new Map();
  if (call.positional.length > form.positional.length) {
    const list = form.positional.length ? `at most ${form.positional.length}: ${form.positional.join(', ')}` : 'none';
    throw problem(`too many positional arguments (${list})`);
  }
  call.positional.forEach((v, i) => given.set(form.positional[i], v));
  for (const [key, v] of call.keywords) {
    const input = entry.args.find((a) => a.input && a.name === key);
    if (input && !names.includes(key)) {
      const full = entry.forms.find((f) => f.positional.includes(key));
      throw problem(`${key} is inferred from the input; ${full.name}(${full.positional.slice(0, 2).join(', ')}, ...) states it`);
    }
    if (!names.includes(key)) {
      const guess = key.length <= 40 ? closest(key, names) : null;
      throw problem(`unknown argument '${clip(key)}' (${guess ? `did you mean ${guess}?` : `known: ${names.join(', ') || 'none'}`})`);
    }
    if (given.has(key)) throw problem(`${clip(key)} is given twice`);
    given.set(key, v);
  }
  const layer = { type: entry.type, name: null, path: null, line };
  for (const arg of entry.args) {
    let value;
    if (arg.byForm) value = form.set?.[arg.name] ?? arg.default;
    else if (given.has(arg.name)) {
      try {
        value = arg.check(given.get(arg.name), arg.name);
      } catch (e) {
        if (e instanceof ArgumentProblem) throw problem(e.message);
        throw e;
      }
    } else if (!('default' in arg) || (arg.input && form.positional.includes(arg.name)) || form.required?.includes(arg.name)) {
      const input = entry.args.find((a) => a.input && form.positional.includes(a.name));
      const lazy = input && call.positional.length < form.positional.indexOf(arg.name) + 1
        ? ` (${form.name} takes ${input.name} first; ${entry.forms[0].name}(...) infers it)` : '';
      throw problem(`missing ${arg.name}${lazy}`);
    } else value = arg.default;
    if (arg.store !== false) layer[arg.name] = value;
  }
  try {
    entry.finish?.(layer, form.name);
  } catch (e) {
    if (e instanceof ArgumentProblem) throw new DescriptionError(line, e.message);
    throw e;
  }
  return layer;
}

// ---------------------------------------------------------------------------------------------
// Names: an explicit `name:` or a per-kind counter within the block level that skips taken names.

/** layers: [{ type, name: explicit name or null }] of one level -> the final names. */
function levelNames(layers) {
  const taken = new Set(layers.map((l) => l.name).filter((n) => n !== null));
  const counters = new Map();
  return layers.map((l) => {
    if (l.name !== null) return l.name;
    const prefix = AUTO_PREFIX[l.type];
    let n = counters.get(prefix) ?? 0;
    do n++; while (taken.has(prefix + n));
    counters.set(prefix, n);
    taken.add(prefix + n);
    return prefix + n;
  });
}

function assignNames(list, explicitNames, parentPath) {
  const names = levelNames(list.map((l) => ({ type: l.type, name: explicitNames.get(l) ?? null })));
  list.forEach((layer, i) => {
    layer.name = names[i];
    layer.path = parentPath ? `${parentPath}.${layer.name}` : layer.name;
    if (layer.type === 'residual') {
      assignNames(layer.body, explicitNames, layer.path);
      assignNames(layer.shortcut, explicitNames, `${layer.path}.shortcut`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The parser.

/** `@key value` -> [key, checked value]; `fail(message)` throws for the line. */
function readSetting(content, fail) {
  const [, key, text] = /^@(\w*)\s*(.*)$/.exec(content);
  if (!key) fail(`a setting is written '@key value', e.g. '@ghost_batch 16'`);
  if (RECIPE_SETTING_KEYS.includes(key)) {
    try {
      return ['recipe', readRecipeSetting(key, text)];
    } catch (e) {
      if (e instanceof RecipeError) fail(e.message);
      throw e;
    }
  }
  const setting = SETTINGS.find((s) => s.key === key);
  if (!setting) fail(unknown('setting', `@${key}`, [...SETTINGS.map((s) => `@${s.key}`), ...RECIPE_SETTING_KEYS.map((k) => `@${k}`)]));
  if (!text) fail(`@${key} needs a value, e.g. '@${key} ${setting.default}'`);
  const reader = new TokenReader(tokenize(text, fail), fail);
  const value = reader.value();
  if (!reader.done()) fail(`@${key} takes one value, got '${clip(text)}'`);
  try {
    return [key, setting.check(value, `@${key}`)];
  } catch (e) {
    if (e instanceof ArgumentProblem) fail(e.message);
    throw e;
  }
}

/** Text -> { format, settings, layers } (the JSON form); throws DescriptionError. */
export function parseDescription(text) {
  if (typeof text !== 'string') throw new DescriptionError(null, 'the description must be text');
  if (text.length > MAX_CHARS) {
    throw new DescriptionError(null, `the description is too long (${text.length} characters; at most ${MAX_CHARS})`);
  }
  const settings = defaultSettings();
  const settingLines = new Map();
  const recipe = {}, recipeLines = new Map(); // training settings (recipe.js keys) and their lines
  const layers = [];
  // The open residual blocks, innermost last: { layer, inShortcut, outerLevel, outerNames }.
  const stack = [];
  const explicitNames = new Map(); // layer -> its written name
  let level = layers; // the list the next layer goes into
  let levelNamesUsed = new Map(); // its written names -> their lines
  let layerCount = 0;

  const lines = text.split(/\r\n|\n|\r/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const fail = (message) => { throw new DescriptionError(line, message); };
    const content = stripComment(raw).trim();
    if (content === '') return;

    if (content.startsWith('@')) {
      const [key, value] = readSetting(content, fail);
      if (key === 'recipe') { // a training setting: the run's default, not the net's
        const [field, fieldValue] = value;
        if (isListField(field)) {
          (recipe[field] ??= []).push(fieldValue);
        } else {
          if (recipeLines.has(field)) fail(`${content.split(/\s/)[0]} is already set on line ${recipeLines.get(field)}`);
          recipe[field] = fieldValue;
          recipeLines.set(field, line);
        }
        return;
      }
      if (settingLines.has(key)) fail(`@${key} is already set on line ${settingLines.get(key)}`);
      settings[key] = value;
      settingLines.set(key, line);
      return;
    }

    const [name, rest] = splitName(content);
    const tokens = tokenize(rest, fail);
    const reader = new TokenReader(tokens, fail);
    const head = reader.next();
    if (head === undefined || head.kind !== 'word') {
      fail(`cannot read '${clip(content)}': expected a layer such as conv(16, 3) or relu`);
    }
    const word = typeWord(head.value);
    const keyword = word.toLowerCase();
    const hasArguments = reader.isPunct('(');
    const call = hasArguments ? reader.argumentList() : { positional: [], keywords: [] };
    if (!reader.done()) fail(`unexpected '${clip(reader.peek().text)}' after ${hasArguments ? 'the arguments' : `'${clip(word)}'`}`);
    const noArguments = (what) => {
      if (call.positional.length || call.keywords.length) fail(`${what} takes no arguments`);
    };

    if (keyword === 'shortcut' || keyword === 'end') {
      if (name !== null) fail(`'${keyword}' cannot have a name`);
      noArguments(`'${keyword}'`);
      const block = stack.at(-1);
      if (!block) fail(`'${keyword}' without an open residual block`);
      if (block.layer.body.length === 0) {
        throw new DescriptionError(block.layer.line, `residual block has no layers before '${keyword}' on line ${line}`);
      }
      if (keyword === 'shortcut') {
        if (block.inShortcut) fail(`a second 'shortcut' in the residual block opened on line ${block.layer.line}`);
        block.inShortcut = true;
        level = block.layer.shortcut;
        levelNamesUsed = new Map();
      } else {
        stack.pop();
        level = block.outerLevel;
        levelNamesUsed = block.outerNames;
      }
      return;
    }

    let layer;
    if (keyword === 'residual') {
      noArguments('residual');
      if (stack.length >= MAX_DEPTH) fail(`residual blocks nest too deep (at most ${MAX_DEPTH} levels)`);
      layer = { type: 'residual', name: null, path: null, line, body: [], shortcut: [] };
    } else {
      const known = findForm(word);
      if (!known) fail(unknown('layer', word, [...LAYER_TYPES.map((t) => t.type), 'residual']));
      layer = buildLayer(known.entry, known.form, call, line);
    }
    if (++layerCount > MAX_LAYERS) fail(`too many layers (at most ${MAX_LAYERS})`);
    if (name !== null) {
      if (!IDENTIFIER.test(name)) fail(`the name '${clip(name)}' is not a Python identifier (letters, digits and _, not starting with a digit)`);
      if (name === 'shortcut') fail(`the name 'shortcut' is reserved for a residual block's shortcut branch`);
      if (levelNamesUsed.has(name)) fail(`the name '${name}' is already used on line ${levelNamesUsed.get(name)}`);
      levelNamesUsed.set(name, line);
      explicitNames.set(layer, name);
    }
    level.push(layer);
    if (layer.type === 'residual') {
      stack.push({ layer, inShortcut: false, outerLevel: level, outerNames: levelNamesUsed });
      level = layer.body;
      levelNamesUsed = new Map();
    }
  });

  if (stack.length) {
    throw new DescriptionError(stack.at(-1).layer.line, `residual block opened here is never closed (add 'end')`);
  }
  if (layers.length === 0) throw new DescriptionError(null, 'the description has no layers');
  assignNames(layers, explicitNames, '');
  return { format: FORMAT, settings, layers, ...(Object.keys(recipe).length ? { recipe } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The canonical text.

function writeValue(v) {
  if (typeof v === 'string') return v === 'classes' ? v : `'${v}'`;
  return String(v);
}

/** The argument's default for this layer (a pool's stride defaults to its kernel size). */
function defaultOf(arg, layer) {
  return arg.name === 'stride' && arg.default === null ? layer.kernel_size : arg.default;
}

function writeLayer(layer) {
  const entry = LAYER_TYPES.find((t) => t.type === layer.type);
  if (!entry) throw new Error(`formatDescription: unknown layer type '${layer.type}'`);
  const stored = entry.args.filter((a) => a.store !== false);
  const form = entry.forms.find((f) => stored.every((a) =>
    (a.byForm ? (f.set?.[a.name] ?? a.default) === layer[a.name] : true) &&
    (a.input ? f.positional.includes(a.name) === (layer[a.name] !== null) : true)));
  if (!form) throw new Error(`formatDescription: no way to write ${layer.path ?? layer.type}`);
  const required = (a) => !('default' in a) || (a.input && form.positional.includes(a.name));
  const positional = form.positional.filter((n) => stored.some((a) => a.name === n && required(a)));
  const parts = positional.map((n) => writeValue(layer[n]));
  for (const a of stored) {
    if (a.byForm || positional.includes(a.name) || layer[a.name] === defaultOf(a, layer)) continue;
    parts.push(`${a.name}=${writeValue(layer[a.name])}`);
  }
  return parts.length ? `${form.name}(${parts.join(', ')})` : form.name;
}

/** Which layers of one level need `name:` so that automatic naming gives every name back. */
function namesToWrite(list) {
  const written = new Set(list.filter((l) => !new RegExp(`^${AUTO_PREFIX[l.type]}\\d+$`).test(l.name)));
  for (;;) {
    const names = levelNames(list.map((l) => ({ type: l.type, name: written.has(l) ? l.name : null })));
    const wrong = list.filter((l, i) => names[i] !== l.name && !written.has(l));
    if (wrong.length === 0) return written;
    wrong.forEach((l) => written.add(l));
  }
}

function writeLevel(list, indent, out) {
  const named = namesToWrite(list);
  for (const layer of list) {
    const prefix = indent + (named.has(layer) ? `${layer.name}: ` : '');
    if (layer.type !== 'residual') {
      out.push(prefix + writeLayer(layer));
      continue;
    }
    out.push(`${prefix}residual`);
    writeLevel(layer.body, `${indent}  `, out);
    if (layer.shortcut.length) {
      out.push(`${indent}shortcut`);
      writeLevel(layer.shortcut, `${indent}  `, out);
    }
    out.push(`${indent}end`);
  }
}

/** JSON form -> canonical text: non-default settings, one layer per line, blocks indented. */
export function formatDescription(json) {
  const out = [];
  for (const [key, value] of Object.entries(json.settings ?? {})) {
    const setting = SETTINGS.find((s) => s.key === key);
    if (!setting) throw new Error(`formatDescription: unknown setting '${key}'`);
    if (value !== setting.default) out.push(`@${key} ${writeValue(value)}`);
  }
  for (const [key, value] of Object.entries(json.recipe ?? {})) {
    for (const text of [].concat(formatField(key, value))) out.push(`@${recipeSettingName(key)} ${text}`);
  }
  writeLevel(json.layers, '', out);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Differences between two nets.

const STRUCTURE_KEYS = new Set(['type', 'name', 'path', 'line', 'body', 'shortcut']);

function showField(v) {
  if (v === null) return 'inferred';
  if (v === undefined) return 'absent';
  return show(v);
}

/**
 * null when the two JSON forms describe the same net (lines and comments aside), else one
 * sentence naming the first difference. "layer N" counts layer lines in order, blocks included.
 */
export function describeDifference(a, b) {
  if (a.format !== b.format) return `format ${a.format} here, ${b.format} in the other`;
  const keys = [...new Set([...SETTINGS.map((s) => s.key), ...Object.keys(a.settings ?? {}), ...Object.keys(b.settings ?? {})])];
  for (const key of keys) {
    // A setting left out is at its default (descriptions saved before it existed).
    const fallback = SETTINGS.find((s) => s.key === key)?.default;
    const [x, y] = [a.settings?.[key] ?? fallback, b.settings?.[key] ?? fallback];
    if (x !== y) return `setting ${key}: ${x === undefined ? 'not set' : show(x)} here, ${y === undefined ? 'not set' : show(y)} in the other`;
  }
  return listDifference(a.layers, b.layers, { index: 0 }, null);
}

/** where: null at the top, else { block: the residual, part: 'body' | 'shortcut' }. */
function listDifference(xs, ys, counter, where) {
  const common = Math.min(xs.length, ys.length);
  for (let i = 0; i < common; i++) {
    const difference = layerDifference(xs[i], ys[i], counter);
    if (difference) return difference;
  }
  if (xs.length === ys.length) return null;
  const extra = Math.abs(xs.length - ys.length);
  const who = xs.length > ys.length ? 'this one has' : 'the other has';
  const layers = `${extra} more layer${extra === 1 ? '' : 's'}`;
  if (common > 0) return `${who} ${layers} after ${xs[common - 1].path}`;
  if (where === null) return `${who} ${layers}`;
  if (where.part === 'shortcut') {
    const identity = xs.length ? "the other's is the identity" : 'here it is the identity';
    return `${who} ${layers} in the shortcut of ${where.block.path} (${identity})`;
  }
  return `${who} ${layers} at the start of ${where.block.path}`;
}

function layerDifference(x, y, counter) {
  const n = ++counter.index;
  if (x.type !== y.type) return `layer ${n}: ${x.path} (${x.type}) here, ${y.path} (${y.type}) in the other`;
  if (x.name !== y.name) return `layer ${n} (${x.type}): named ${x.name} here, ${y.name} in the other`;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => !STRUCTURE_KEYS.has(k));
  for (const key of keys) {
    if (x[key] !== y[key]) return `layer ${n} (${x.path}): ${key} ${showField(x[key])} here, ${showField(y[key])} in the other`;
  }
  if (x.type !== 'residual') return null;
  return listDifference(x.body, y.body, counter, { block: x, part: 'body' }) ??
    listDifference(x.shortcut, y.shortcut, counter, { block: x, part: 'shortcut' });
}

// ---------------------------------------------------------------------------------------------
// Compact encoding for `?model=...` links: deflate-raw, then base64url without padding.

// Base64url of deflate output for a description of MAX_CHARS characters of up to 4 UTF-8 bytes each.
const MAX_ENCODED = Math.ceil((MAX_CHARS * 4 * 1.01 + 64) * 4 / 3);

async function pipeBytes(bytes, transform, maxBytes = Infinity) {
  const reader = new Blob([bytes]).stream().pipeThrough(transform).getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function toBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Description text -> a URL-safe string (A-Z a-z 0-9 - _). */
export async function encodeForUrl(text) {
  if (text.length > MAX_CHARS) throw new DescriptionError(null, `the description is too long for a link (${text.length} characters; at most ${MAX_CHARS})`);
  const compressed = await pipeBytes(new TextEncoder().encode(text), new CompressionStream('deflate-raw'));
  return toBase64Url(compressed);
}

/** The inverse of encodeForUrl; refuses anything that is not such an encoding (DescriptionError). */
export async function decodeFromUrl(encoded) {
  const refuse = (why) => new DescriptionError(null, `the model in the link cannot be read: ${why}`);
  if (typeof encoded !== 'string' || encoded === '') throw refuse('it is empty');
  if (encoded.length > MAX_ENCODED) throw refuse(`it is too long (${encoded.length} characters)`);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw refuse('it has characters other than A-Z, a-z, 0-9, - and _ (was the link cut or changed?)');
  let bytes;
  try {
    const binary = atob(encoded.replace(/-/g, '+').replace(/_/g, '/'));
    bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    throw refuse('its length is not that of an encoding (was the link cut?)');
  }
  let inflated;
  try {
    inflated = await pipeBytes(bytes, new DecompressionStream('deflate-raw'), MAX_CHARS * 4);
  } catch {
    throw refuse('it is not compressed data (was the link cut or changed?)');
  }
  if (inflated === null) throw refuse(`it unpacks to more than ${MAX_CHARS} characters`);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(inflated);
  } catch {
    throw refuse('it does not unpack to text');
  }
  if (text.length > MAX_CHARS) throw refuse(`it unpacks to more than ${MAX_CHARS} characters`);
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) throw refuse('it unpacks to binary data, not a description');
  return text;
}

// ---------------------------------------------------------------------------------------------
// Presets: description files in web/models/.

export const PRESETS = [
  { name: 'simplecnn', default: true, description: "the seed's net, PyTorch's CIFAR-10 tutorial CNN: two 5×5 convolutions, three linear layers" },
  { name: 'convnetjs', description: "ConvNetJS's CIFAR-10 demo net: three 5×5 convolutions with pooling, then a linear classifier" },
  { name: 'resnet', description: 'a small ResNet: batch norm and three residual stages of 16, 32 and 64 channels' },
  { name: 'fast', description: "airbench's net at widths 32/96/96: a frozen 2×2 whitening conv, three conv–pool–batch-norm–GELU blocks (0.29M parameters)" },
];

/** The URL of a preset's file, relative to this module (works in the page, workers and Node). */
export function presetUrl(name) {
  if (!PRESETS.some((p) => p.name === name)) throw new DescriptionError(null, unknown('preset', name, PRESETS.map((p) => p.name)));
  return new URL(`models/${name}.txt`, import.meta.url);
}

/** A preset's text: fetched in the page and workers, read from disk under Node (file: URLs). */
export async function loadPreset(name) {
  const url = presetUrl(name);
  if (url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return readFile(url, 'utf8');
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return response.text();
}

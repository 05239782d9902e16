// The training recipe: every setting of a run besides the net and the data, with its default,
// its check, and its text form. One table serves the `@` lines of a description (a preset's
// defaults), the CLI's options and the page's URL, in that order of precedence (the later
// overrides). The defaults are the seed's run: Adam at lr 0.001, 5 epochs of batch 64, plain
// cross-entropy, a constant lr, no augmentation, no test-time augmentation, no moving average.
import { RecipeError, parseSchedule, formatSchedule, parseEma, formatEma, readOptions } from './schedule.js';
import { NO_AUGMENT, TTA_MODES, TTA_VIEWS, parseAugment, formatAugment } from './augment.js';

/** Parameter groups an optimizer step takes (WT_MAX_PARAM_GROUPS in include/webtrain.h). */
export const MAX_PARAM_GROUPS = 8;

export { RecipeError };

const OPTIMIZER_NAMES = ['adam', 'adamw', 'sgd'];
const TTA_ON = ['every', 'last'];

function number(text, what, { min = -Infinity, max = Infinity, integer = false, openMin = false, openMax = false } = {}) {
  const x = typeof text === 'number' ? text : String(text ?? '').trim() === '' ? NaN : Number(text);
  const low = openMin ? x > min : x >= min, high = openMax ? x < max : x <= max;
  if (!Number.isFinite(x) || !low || !high || (integer && !Number.isInteger(x))) {
    const range = [min > -Infinity ? `${openMin ? 'above' : 'from'} ${min}` : '', max < Infinity ? `${openMax ? 'below' : 'to'} ${max}` : ''].filter(Boolean).join(' ');
    const kind = min === 0 && openMin && max === Infinity && !integer ? 'a positive number' : `${integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`;
    throw new RecipeError(`${what}: expected ${kind}, got '${text}'`);
  }
  return x;
}

function boolean(text, what) {
  if (typeof text === 'boolean') return text;
  const t = String(text).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new RecipeError(`${what}: expected true or false, got '${text}'`);
}

function oneOf(names) {
  return (text, what) => {
    const t = String(text).trim().toLowerCase();
    if (!names.includes(t)) throw new RecipeError(`${what}: expected ${names.join(', ')}, got '${text}'`);
    return t;
  };
}

// ---- augmentation and test-time augmentation: their text form is augment.js's ----

/** augment.js's parser with the recipe's error type. */
function recipeAugment(source, what = 'augment') {
  try {
    return parseAugment(source, what);
  } catch (error) {
    throw error instanceof RangeError ? new RecipeError(error.message) : error;
  }
}

// ---- parameter groups: SELECTOR [lr=SCALE] [weight_decay=X] [frozen=true] [frozen_after=EPOCHS] ----
//
// SELECTOR: batchnorm, batchnorm.weight, batchnorm.bias (batch-norm parameters), bias, weight
// (every bias / weight), or a state_dict name or prefix from the description (conv1,
// res2.shortcut, conv1.bias). The first group whose selector matches a tensor takes it; the
// others stay in the default group (the recipe's lr and weight decay). lr is a factor on the
// recipe's lr; weight_decay replaces the recipe's; frozen_after=E trains the group for E epochs.

const GROUP_KEYS = ['lr', 'weight_decay', 'frozen', 'frozen_after'];

export function parseGroup(source, what = 'group') {
  if (source && typeof source === 'object') return parseGroup(formatGroup(source), what);
  const [selector, ...parts] = String(source).trim().split(/\s+/);
  if (!selector || selector.includes('=')) throw new RecipeError(`${what}: starts with what it selects (batchnorm, bias, weight or a layer name), e.g. 'batchnorm lr=64 weight_decay=0'`);
  const g = { select: selector, lr: 1, weight_decay: null, frozen: false, frozen_after: null };
  for (const part of parts) {
    const m = /^([\w]+)=(\S+)$/.exec(part);
    if (!m || !GROUP_KEYS.includes(m[1])) throw new RecipeError(`${what}: expected ${GROUP_KEYS.map((k) => `${k}=...`).join(', ')}; got '${part}'`);
    if (m[1] === 'lr') g.lr = number(m[2], `${what}: lr (a factor on the recipe's lr)`, { min: 0, openMin: true });
    else if (m[1] === 'weight_decay') g.weight_decay = number(m[2], `${what}: weight_decay`, { min: 0 });
    else if (m[1] === 'frozen') g.frozen = boolean(m[2], `${what}: frozen`);
    else g.frozen_after = number(m[2], `${what}: frozen_after (epochs)`, { min: 0, integer: true });
  }
  return g;
}

export function formatGroup(g) {
  const parts = [g.select];
  if (g.lr !== 1) parts.push(`lr=${g.lr}`);
  if (g.weight_decay !== null && g.weight_decay !== undefined) parts.push(`weight_decay=${g.weight_decay}`);
  if (g.frozen) parts.push('frozen=true');
  if (g.frozen_after !== null && g.frozen_after !== undefined) parts.push(`frozen_after=${g.frozen_after}`);
  return parts.join(' ');
}

/**
 * The recipe's settings. key: the recipe object's; setting: the `@` line's; cli: the option's
 * (`--cli`); url: the page's query parameter. parse(text or value, what) -> value;
 * format(value) -> text. `many`: repeatable (a list).
 */
export const RECIPE_FIELDS = Object.freeze([
  { key: 'optimizer', setting: 'optimizer', default: 'adam', parse: oneOf(OPTIMIZER_NAMES), help: `${OPTIMIZER_NAMES.join(', ')}` },
  { key: 'lr', setting: 'lr', default: 0.001, parse: (t, w) => number(t, w, { min: 0, openMin: true }), help: 'learning rate (before the schedule)' },
  { key: 'momentum', setting: 'momentum', default: 0.9, parse: (t, w) => number(t, w, { min: 0, max: 1, openMax: true }), help: 'SGD momentum' },
  { key: 'dampening', setting: 'dampening', default: 0, parse: (t, w) => number(t, w, { min: 0, max: 1 }), help: 'SGD dampening' },
  { key: 'nesterov', setting: 'nesterov', default: false, parse: boolean, help: 'SGD with Nesterov momentum' },
  { key: 'beta1', setting: 'beta1', default: 0.9, parse: (t, w) => number(t, w, { min: 0, max: 1, openMax: true }), help: 'Adam beta1' },
  { key: 'beta2', setting: 'beta2', default: 0.999, parse: (t, w) => number(t, w, { min: 0, max: 1, openMax: true }), help: 'Adam beta2' },
  { key: 'eps', setting: 'eps', default: 1e-8, parse: (t, w) => number(t, w, { min: 0, openMin: true }), help: 'Adam epsilon' },
  { key: 'weightDecay', setting: 'weight_decay', default: 0, parse: (t, w) => number(t, w, { min: 0 }), help: 'weight decay' },
  { key: 'decoupledWeightDecay', setting: 'decoupled_weight_decay', default: false, parse: boolean, help: 'decay as p *= 1 - lr * wd (AdamW always does)' },
  { key: 'schedule', setting: 'schedule', default: Object.freeze({ kind: 'constant' }), parse: parseSchedule, format: formatSchedule, help: 'constant, step:every=E,gamma=G, cosine:warmup=W,min=M, triangular:start=S,peak=P,end=E, piecewise:X=F,...' },
  { key: 'labelSmoothing', setting: 'label_smoothing', default: 0, parse: (t, w) => number(t, w, { min: 0, max: 1, openMax: true }), help: 'label smoothing of the training loss' },
  { key: 'epochs', setting: 'epochs', default: 5, parse: (t, w) => number(t, w, { min: 0, max: 100000, integer: true }), help: 'epochs to train' },
  { key: 'batchSize', setting: 'batch_size', default: 64, parse: (t, w) => number(t, w, { min: 1, max: 4096, integer: true }), help: 'images per step' },
  { key: 'augment', setting: 'augment', default: NO_AUGMENT, parse: recipeAugment, format: formatAugment, help: "none, airbench, or flip[=random|alternate],translate=N,padding=reflect|zero,cutout=N" },
  { key: 'tta', setting: 'tta', default: 'none', parse: oneOf(TTA_MODES), help: `test-time augmentation: ${TTA_MODES.join(', ')}` },
  { key: 'ttaOn', setting: 'tta_on', default: 'every', parse: oneOf(TTA_ON), help: 'which evaluations use the test-time augmentation: every (each epoch\'s), last (the run\'s final one; the others plain, 1/6 of the cost with flip-translate)' },
  { key: 'evalEvery', setting: 'eval_every', default: 1, parse: (t, w) => number(t, w, { min: 0, max: 100000, integer: true }), help: 'evaluate on the test set after every N-th epoch and always after the last; 0: only after the last' },
  { key: 'ema', setting: 'ema', default: Object.freeze({ kind: 'none' }), parse: parseEma, format: formatEma, help: 'none, lookahead:every=5,rho=0.95,power=3,start_epoch=0, plain:decay=0.999,every=1,start_epoch=0' },
  { key: 'groups', setting: 'group', default: Object.freeze([]), many: true, parse: parseGroup, format: formatGroup, help: 'a parameter group: SELECTOR lr=FACTOR weight_decay=X frozen=true frozen_after=E (repeatable)' },
].map((f) => Object.freeze({ cli: f.setting.replace(/_/g, '-'), url: f.key, format: (v) => String(v), ...f })));

export const RECIPE_SETTING_KEYS = Object.freeze(RECIPE_FIELDS.map((f) => f.setting));

const fieldOf = (key) => RECIPE_FIELDS.find((f) => f.key === key);
const clone = (v) => (v && typeof v === 'object' ? JSON.parse(JSON.stringify(v)) : v);

/** Every setting at its default. */
export function defaultRecipe() {
  return Object.fromEntries(RECIPE_FIELDS.map((f) => [f.key, clone(f.default)]));
}

/** A field's value as text (its `@` line's value, its URL parameter). */
export function formatField(key, value) {
  const f = fieldOf(key);
  return f.many ? value.map((v) => f.format(v)) : f.format(value);
}

/**
 * Checks a recipe object (from JSON, a checkpoint, a message) and returns it complete: missing
 * keys take their defaults; an unknown key or a bad value throws a RecipeError naming it.
 */
export function checkRecipe(recipe, where = 'recipe') {
  if (!recipe || typeof recipe !== 'object' || Array.isArray(recipe)) throw new RecipeError(`${where}: expected an object`);
  const out = defaultRecipe();
  for (const [key, value] of Object.entries(recipe)) {
    const f = fieldOf(key);
    if (!f) throw new RecipeError(`${where}: unknown setting '${key}' (known: ${RECIPE_FIELDS.map((x) => x.key).join(', ')})`);
    if (f.many) {
      if (!Array.isArray(value)) throw new RecipeError(`${where}: ${key} must be a list`);
      out[key] = value.map((v) => f.parse(v, `${where}: ${key}`));
    } else {
      out[key] = f.parse(value, `${where}: ${key}`);
    }
  }
  if (out.groups.length > MAX_PARAM_GROUPS - 1) throw new RecipeError(`${where}: at most ${MAX_PARAM_GROUPS - 1} parameter groups (besides the default), got ${out.groups.length}`);
  if (out.nesterov && out.optimizer === 'sgd' && !(out.momentum > 0 && out.dampening === 0)) {
    throw new RecipeError(`${where}: nesterov needs a momentum above 0 and no dampening (momentum ${out.momentum}, dampening ${out.dampening})`);
  }
  return out;
}

/** `@key value` of a recipe setting -> [recipe key, value]; throws a RecipeError. */
export function readRecipeSetting(setting, text) {
  const f = RECIPE_FIELDS.find((x) => x.setting === setting);
  if (!f) throw new RecipeError(`unknown recipe setting @${setting}`);
  if (String(text).trim() === '') throw new RecipeError(`@${setting} needs a value, e.g. '@${setting} ${f.many ? 'batchnorm lr=64' : formatField(f.key, f.default)}'`);
  return [f.key, f.parse(text, `@${setting}`)];
}

/**
 * Whether a run of `epochs` epochs evaluates after epoch `epoch` (1-based): after the last
 * always, and after every evalEvery-th (none other with evalEvery 0).
 */
export function evaluatesAfter(recipe, epoch, epochs) {
  return epoch === epochs || (recipe.evalEvery > 0 && epoch % recipe.evalEvery === 0);
}

/** Which test-time augmentation an evaluation uses: the run's final one (final) or another. */
export function ttaOf(recipe, final) {
  return final || recipe.ttaOn === 'every' ? recipe.tta : 'none';
}

/**
 * Forward passes per test image in the evaluations after epochs from+1 .. epochs (a test-time
 * view is a pass): what an estimate of the run's evaluation time multiplies.
 */
export function evaluationPasses(recipe, epochs, from = 0) {
  let passes = 0;
  for (let e = from + 1; e <= epochs; e++) {
    if (evaluatesAfter(recipe, e, epochs)) passes += TTA_VIEWS[ttaOf(recipe, e === epochs)];
  }
  return passes;
}

/** The `@` setting that writes a recipe key (weightDecay -> weight_decay). */
export const recipeSettingName = (key) => fieldOf(key)?.setting;

/** Whether a recipe key is repeatable (its `@` lines add up to a list). */
export const isListField = (key) => Boolean(fieldOf(key)?.many);

/**
 * The recipe of a run: the defaults, then a description's `@` settings (json.recipe), then
 * `overrides` (CLI options or the page's settings: recipe keys to values or text).
 */
export function resolveRecipe(description = null, overrides = {}) {
  const out = defaultRecipe();
  Object.assign(out, clone(description?.recipe ?? {}));
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const f = fieldOf(key);
    if (!f) throw new RecipeError(`unknown recipe setting '${key}'`);
    out[key] = f.many ? [].concat(value).map((v) => f.parse(v, f.setting)) : f.parse(value, f.setting);
  }
  return checkRecipe(out);
}

/** The `@` lines that set what differs from the defaults (a preset's recipe as text). */
export function recipeLines(recipe) {
  const base = defaultRecipe(), out = [];
  for (const f of RECIPE_FIELDS) {
    if (JSON.stringify(recipe[f.key]) === JSON.stringify(base[f.key])) continue;
    for (const text of [].concat(formatField(f.key, recipe[f.key]))) out.push(`@${f.setting} ${text}`);
  }
  return out;
}

/** Recipe <-> URL query parameters (only what differs from `base`, by default the defaults). */
export function recipeToParams(recipe, params = new URLSearchParams(), base = defaultRecipe()) {
  for (const f of RECIPE_FIELDS) {
    params.delete(f.url);
    if (JSON.stringify(recipe[f.key]) === JSON.stringify(base[f.key])) continue;
    for (const text of [].concat(formatField(f.key, recipe[f.key]))) params.append(f.url, text);
  }
  return params;
}

/** The recipe keys a URL sets, as overrides for resolveRecipe; throws a RecipeError naming the parameter. */
export function recipeFromParams(params) {
  const out = {};
  for (const f of RECIPE_FIELDS) {
    const values = params.getAll(f.url);
    if (!values.length) continue;
    out[f.key] = f.many ? values.map((v) => f.parse(v, `URL parameter ${f.url}`)) : f.parse(values.at(-1), `URL parameter ${f.url}`);
  }
  return out;
}

// ---- parameter groups of a model ----

/**
 * Which group each tensor of `model` is in, from the recipe's group rules: { groupOfTensor,
 * groups: [{ lrScale, weightDecay, frozen, frozenAfter }] } with group 0 the default. A rule that
 * matches no tensor is an error (a misspelt layer name would otherwise do nothing).
 */
export function resolveGroups(recipe, model) {
  const names = model.tensorNames ?? model.tensors.map((_, i) => `tensor${i}`);
  // Batch-norm parameters: those of a layer that keeps running statistics.
  const normLayers = new Set(model.tensors.filter((t) => t.role === 'running_mean').map((t) => t.layer));
  const groups = [{ lrScale: 1, weightDecay: recipe.weightDecay, frozen: false, frozenAfter: null }];
  for (const g of recipe.groups) {
    groups.push({ lrScale: g.lr, weightDecay: g.weight_decay ?? recipe.weightDecay, frozen: g.frozen, frozenAfter: g.frozen_after });
  }
  const matches = (rule, i) => {
    const t = model.tensors[i], name = names[i], bn = normLayers.has(t.layer);
    switch (rule.select) {
      case 'batchnorm': return bn;
      case 'batchnorm.weight': return bn && t.role === 'weight';
      case 'batchnorm.bias': return bn && t.role === 'bias';
      case 'bias': return t.role === 'bias';
      case 'weight': return t.role === 'weight';
      default: return name === rule.select || name.startsWith(`${rule.select}.`);
    }
  };
  const groupOfTensor = model.tensors.map(() => 0);
  const used = recipe.groups.map(() => false);
  model.tensors.forEach((t, i) => {
    if (t.role !== 'weight' && t.role !== 'bias') return;
    const k = recipe.groups.findIndex((rule) => matches(rule, i));
    if (k >= 0) {
      groupOfTensor[i] = k + 1;
      used[k] = true;
    }
  });
  const unused = used.indexOf(false);
  if (unused >= 0) {
    throw new RecipeError(`@group ${recipe.groups[unused].select}: matches no parameter of this net (known names: ${[...new Set(names.map((n) => n.replace(/\.[^.]*$/, '')))].slice(0, 12).join(', ')}; or batchnorm, bias, weight)`);
  }
  return { groupOfTensor, groups };
}

/** The optimizer settings (Model.setOptimizer) for a step at schedule factor `factor` in epoch `epoch` (0-based). */
export function optimizerConfig(recipe, groups, factor, epoch) {
  return {
    kind: recipe.optimizer, beta1: recipe.beta1, beta2: recipe.beta2, eps: recipe.eps,
    momentum: recipe.optimizer === 'sgd' ? recipe.momentum : 0, dampening: recipe.dampening,
    nesterov: recipe.optimizer === 'sgd' && recipe.nesterov, decoupled: recipe.decoupledWeightDecay || recipe.optimizer === 'adamw',
    // torch: a group's lr is its initial lr (recipe lr x its factor) times the schedule's factor.
    groups: groups.map((g) => ({
      lr: (recipe.lr * g.lrScale) * factor, weightDecay: g.weightDecay,
      frozen: g.frozen || (g.frozenAfter !== null && epoch >= g.frozenAfter),
    })),
  };
}

// The recipe part of the Settings panel: one field per recipe setting (recipe.js) besides
// epochs, batch size and lr (settings.js has those), each checked beside itself, mirrored in the
// address bar, with the model description's `@` values as placeholders; and the plot of the
// learning rate over the run's steps (schedule.js), before the run and, with the steps done
// marked, during it.
import uPlot from './vendor/uPlot.esm.js';
import { RECIPE_FIELDS, RecipeError, formatField, resolveRecipe } from './recipe.js';
import { scheduleCurve, scheduleFactor } from './schedule.js';

const $ = (id) => document.getElementById(id);
/** What settings.js owns: epochs, batch (batchSize) and lr. */
const OWNED_ELSEWHERE = new Set(['epochs', 'batchSize', 'lr']);
export const PANEL_FIELDS = RECIPE_FIELDS.filter((f) => !OWNED_ELSEWHERE.has(f.key));
const id = (f) => `recipe-${f.key}`;
const LABELS = {
  optimizer: 'Optimizer', momentum: 'Momentum (SGD)', dampening: 'Dampening (SGD)', nesterov: 'Nesterov (SGD)',
  beta1: 'Beta 1 (Adam)', beta2: 'Beta 2 (Adam)', eps: 'Epsilon (Adam)', weightDecay: 'Weight decay',
  decoupledWeightDecay: 'Decoupled weight decay', schedule: 'LR schedule', labelSmoothing: 'Label smoothing',
  augment: 'Augmentation', tta: 'Test-time augmentation', ttaOn: 'TTA on which evaluations', evalEvery: 'Evaluate every N epochs', ema: 'Weights average (EMA)', groups: 'Parameter groups',
};

let description = null; // the model description's JSON form (its recipe lines are the defaults)
let chart = null;
let curve = null; // { steps, factors, lr, totalSteps, stepsPerEpoch } of the plotted run

/** Builds the fields into the settings form (before its Data URL row) and the schedule plot. */
export function setupRecipePanel() {
  const form = $('settings');
  const before = $('data')?.previousElementSibling ?? null; // the Data URL label
  const fields = document.createDocumentFragment();
  for (const f of PANEL_FIELDS) {
    const label = document.createElement('label');
    label.htmlFor = id(f);
    label.textContent = LABELS[f.key] ?? f.key;
    const input = document.createElement('input');
    Object.assign(input, { id: id(f), name: f.url, type: 'text', spellcheck: false, autocomplete: 'off', title: f.help });
    input.setAttribute('aria-describedby', `${id(f)}-error`);
    const error = document.createElement('small');
    error.className = 'field-error';
    error.id = `${id(f)}-error`;
    if (f.many) label.classList.add('wide'), input.classList.add('wide'), error.classList.add('wide');
    fields.append(label, input, error);
  }
  form.insertBefore(fields, before);
  applyRecipeQuery();
}

/** The fields' text -> the recipe settings they set ({ key: value }); errors shown; null if any. */
export function readRecipeOverrides() {
  const out = {};
  let ok = true;
  for (const f of PANEL_FIELDS) {
    const input = $(id(f)), text = input.value.trim();
    let error = '';
    if (text !== '') {
      try {
        out[f.key] = f.many ? text.split(';').map((t) => t.trim()).filter(Boolean).map((t) => f.parse(t, LABELS[f.key])) : f.parse(text, LABELS[f.key]);
      } catch (e) {
        if (!(e instanceof RecipeError)) throw e;
        error = `${e.message}.`;
        ok = false;
      }
    }
    $(`${id(f)}-error`).textContent = error;
    input.setAttribute('aria-invalid', error ? 'true' : 'false');
  }
  return ok ? out : null;
}

/**
 * The run's recipe: defaults, the description's @ lines, the fields, then epochs, batch size
 * and lr from settings.js. Throws a RecipeError (a group rule that contradicts, say).
 */
export function pageRecipe({ epochs, batch, lr } = {}) {
  const overrides = readRecipeOverrides() ?? {};
  return resolveRecipe(description, { ...overrides, epochs, batchSize: batch, lr });
}

/** The model description changed: its recipe values become the fields' placeholders. */
export function setDescription(json) {
  description = json;
  const base = resolveRecipe(json, {});
  for (const f of PANEL_FIELDS) $(id(f)).placeholder = [].concat(formatField(f.key, base[f.key])).join('; ') || 'none';
}

/** The description's value of epochs, batchSize or lr, if it sets it. */
export function descriptionSetting(key) { return description?.recipe?.[key]; }

export function applyRecipeQuery() {
  const query = new URLSearchParams(location.search);
  for (const f of PANEL_FIELDS) $(id(f)).value = query.getAll(f.url).join('; ');
}

/** Writes the fields that are set into `query` (URLSearchParams) and removes the others. */
export function writeRecipeQuery(query) {
  for (const f of PANEL_FIELDS) {
    query.delete(f.url);
    const text = $(id(f)).value.trim();
    if (text === '') continue;
    for (const part of f.many ? text.split(';').map((t) => t.trim()).filter(Boolean) : [text]) query.append(f.url, part);
  }
}

/** A finished or resumed run's recipe back into the fields (only what differs from the description's). */
export function showRecipe(recipe) {
  const base = resolveRecipe(description, {});
  for (const f of PANEL_FIELDS) {
    const same = JSON.stringify(recipe[f.key]) === JSON.stringify(base[f.key]);
    $(id(f)).value = same ? '' : [].concat(formatField(f.key, recipe[f.key])).join('; ');
  }
}

export function setRecipeFieldsDisabled(disabled) {
  for (const f of PANEL_FIELDS) $(id(f)).disabled = disabled;
}

// ---- the schedule plot ----

/**
 * Plots lr against steps for `recipe` over `totalSteps` steps of `stepsPerEpoch`; `done` (steps
 * done) draws the part already run as a second line.
 */
export function plotSchedule(recipe, totalSteps, stepsPerEpoch, done = 0) {
  const container = $('schedule-chart');
  if (!container) return;
  const { steps, factors } = scheduleCurve(recipe.schedule, totalSteps, stepsPerEpoch);
  curve = { steps, factors, lr: recipe.lr, totalSteps, stepsPerEpoch, schedule: recipe.schedule };
  const lrs = factors.map((f) => recipe.lr * f);
  const ran = lrs.map((v, i) => (steps[i] < done ? v : null));
  const data = [steps, lrs, ran];
  const summary = `Learning rate over ${totalSteps.toLocaleString('en')} steps (${recipe.schedule.kind}): from ${format(lrs[0])} to ${format(lrs.at(-1))}, highest ${format(Math.max(...lrs))}.`;
  container.setAttribute('aria-label', summary);
  $('schedule-summary').textContent = summary;
  container.dataset.totalSteps = String(totalSteps);
  container.dataset.done = String(done);
  if (chart) {
    chart.setData(data);
    return;
  }
  chart = new uPlot({
    width: Math.max(container.clientWidth, 200),
    height: 160,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, (max || 1) * 1.05] } },
    axes: [
      { label: 'step', stroke: '#4b5563', grid: { stroke: '#e5e7eb' } },
      { label: 'learning rate', size: 64, stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, values: (u, ticks) => ticks.map(format) },
    ],
    series: [
      { label: 'step' },
      { label: 'planned', stroke: '#9ca3af', width: 1.5, value: (u, v) => (v === null ? '—' : format(v)) },
      { label: 'done', stroke: '#2563eb', width: 2.5, value: (u, v) => (v === null ? '—' : format(v)) },
    ],
    legend: { show: true },
  }, data, container);
}

/** Marks the steps done on the plotted schedule (during a run). */
export function markScheduleProgress(done) {
  if (!curve) return;
  const container = $('schedule-chart');
  if (Number(container.dataset.done) === done) return;
  container.dataset.done = String(done);
  const lrs = curve.factors.map((f) => curve.lr * f);
  chart?.setData([curve.steps, lrs, lrs.map((v, i) => (curve.steps[i] < done ? v : null))]);
  $('schedule-now').textContent = done < curve.totalSteps
    ? `Step ${done.toLocaleString('en')}: lr ${format(curve.lr * scheduleFactor(curve.schedule, done, curve.totalSteps, curve.stepsPerEpoch))}`
    : 'Run complete';
}

function format(v) {
  if (v === 0) return '0';
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

/** The recipe of the settings as they stand, or null with the message (for the plot before a run). */
export function defaultPlot(settings, trainImages) {
  try {
    const recipe = pageRecipe(settings);
    const stepsPerEpoch = Math.ceil(trainImages / recipe.batchSize);
    plotSchedule(recipe, recipe.epochs * stepsPerEpoch, stepsPerEpoch);
    return recipe;
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    $('schedule-summary').textContent = error.message;
    return null;
  }
}


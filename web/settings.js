// The Settings panel: the run's fields, their checks (each message beside its field), hints about
// values that work but hurt, and the mirror of the fields in the address bar, so a link reproduces
// a run.
import { DATASETS } from './datasets.js';
import { TRAINING_DEFAULTS } from './trainer.js';

const $ = (id) => document.getElementById(id);

export const CORES = navigator.hardwareConcurrency || 2;
const DEFAULT_WORKERS = Math.max(1, CORES - 1);
export const DEFAULTS = {
  epochs: String(TRAINING_DEFAULTS.epochs), batch: String(TRAINING_DEFAULTS.batchSize), lr: String(TRAINING_DEFAULTS.lr),
  seed: String(TRAINING_DEFAULTS.seed), limitTrain: '', limitTest: '', workers: String(DEFAULT_WORKERS),
  dataset: 'cifar10', data: 'data/cifar-10-batches-bin/',
};
/** The data URL a data set is fetched from unless the user says otherwise: its folder under data/. */
export const defaultDataUrl = (dataset) => `data/${dataset.folder}/`;
/** The data set chosen in the form. */
export const chosenDataset = () => DATASETS[$('dataset').value] ?? DATASETS.cifar10;
/** A field's default; the data URL's depends on the data set. */
const defaultOf = (name) => (name === 'data' ? defaultDataUrl(chosenDataset()) : DEFAULTS[name]);
export const FIELDS = Object.keys(DEFAULTS);
// Always written to the URL, so a copied link reproduces the run even if the defaults change.
const ALWAYS_IN_URL = ['epochs', 'batch', 'lr', 'seed'];
/** Above this, Adam on this network all but always diverges; the field says so before Start. */
const HIGH_LR = 0.1;

function integerField(label, min, max, { optional = false } = {}) {
  return (text) => {
    if (optional && text === '') return { value: null };
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      return { error: `${label}: enter a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}${optional ? ', or leave empty for all' : ''}.` };
    }
    return { value: Number(text) };
  };
}

export const VALIDATORS = {
  epochs: integerField('Epochs', 1, 1000),
  batch: integerField('Batch size', 1, 4096),
  // No upper bound: a rate that makes training diverge is caught by the divergence guard (and
  // the field warns about it first).
  lr: (text) => {
    const value = Number(text);
    if (text === '' || !Number.isFinite(value) || value <= 0) return { error: 'Learning rate: enter a positive number such as 0.001.' };
    return { value };
  },
  seed: integerField('Seed', 0, 0xffffffff),
  limitTrain: integerField('Training images', 1, 60000, { optional: true }),
  limitTest: integerField('Test images', 1, 10000, { optional: true }),
  workers: integerField('Workers', 1, 64),
  dataset: (text) => (DATASETS[text] ? { value: text } : { error: `Data set: choose one of ${Object.values(DATASETS).map((d) => d.title).join(', ')}.` }),
  data: (text) => {
    if (text === '') return { error: `Data URL: enter the folder holding ${chosenDataset().files.join(', ')}.` };
    let url;
    try {
      url = new URL(text.endsWith('/') ? text : `${text}/`, document.baseURI);
    } catch {
      return { error: `Data URL: '${text}' is not a URL.` };
    }
    // What the page's Content-Security-Policy (connect-src in index.html) lets it fetch.
    const local = ['localhost', '127.0.0.1'].includes(url.hostname);
    if (url.origin !== location.origin && url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) {
      return { error: 'Data URL: this page fetches data from its own site, over https, or from localhost only.' };
    }
    return { value: url.href };
  },
};

/** Values that are valid but probably not what the user wants: said beside the field. */
const NOTES = {
  lr: (value) => (value > HIGH_LR ? `Much higher than usual for Adam (0.0001 to 0.01): training will probably diverge, and then stops.` : ''),
  workers: (value) => (value > CORES ? `This device has ${CORES} cores: more workers than cores trains slower, not faster.` : ''),
};

export function fieldText(name) { return $(name).value.trim(); }

/** Validates every field, showing each message next to its field; returns the values or null. */
export function readSettings() {
  const values = {};
  let ok = true;
  for (const name of FIELDS) {
    const { value, error } = VALIDATORS[name](fieldText(name));
    $(`${name}-error`).textContent = error ?? '';
    $(name).setAttribute('aria-invalid', error ? 'true' : 'false');
    if (NOTES[name]) $(`${name}-note`).textContent = error ? '' : NOTES[name](value);
    if (error) ok = false;
    else values[name] = value;
  }
  return ok ? values : null;
}

export function applyQuery() {
  const query = new URLSearchParams(location.search);
  for (const name of FIELDS) $(name).value = query.get(name) ?? defaultOf(name);
  if ($('dataset').value === '') $('dataset').value = DEFAULTS.dataset; // an unknown name in the URL
}

/**
 * The data set picker changed from `previous`: a data URL still at the previous set's default
 * follows to the new set's.
 */
export function datasetChanged(previous) {
  if (fieldText('data') === defaultDataUrl(previous)) $('data').value = defaultDataUrl(chosenDataset());
}

/** Mirrors the fields into the address bar, keeping parameters this page doesn't own. */
export function writeQuery() {
  const query = new URLSearchParams(location.search);
  for (const name of FIELDS) {
    const text = fieldText(name);
    if (ALWAYS_IN_URL.includes(name) || (text !== defaultOf(name) && text !== '')) query.set(name, text);
    else query.delete(name);
  }
  history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`);
}

/** The form and address bar show `settings` (a resumed run's, a loaded checkpoint's). */
export function showSettings(settings, source) {
  const text = { ...settings, limitTrain: settings.limitTrain ?? '', limitTest: settings.limitTest ?? '', dataset: source?.dataset ?? settings.dataset ?? DEFAULTS.dataset };
  $('dataset').value = text.dataset; // first: the data URL's default depends on it
  for (const name of FIELDS) {
    if (name === 'data' && source?.kind !== 'url') continue;
    // The default folder goes back into the form as the default text, so the URL stays short.
    const data = source.url === VALIDATORS.data(defaultOf('data')).value ? defaultOf('data') : source.url;
    $(name).value = String(name === 'data' ? data : text[name]);
  }
  readSettings();
  writeQuery();
}

export function setFieldsDisabled(disabled) {
  for (const name of FIELDS) $(name).disabled = disabled;
}

// The Model panel: a preset picker and an editor for the network's description (the format in
// model-description.js), checked as the user types by the worker (which plans it with the engine,
// so shape errors come with their line too), the summary table (layers, output shapes,
// parameters, MFLOP per image) and an estimate of the time per epoch. The model goes in the page's
// URL (`model=resnet`, or a compact encoding of a custom text), so a link reproduces the run. It
// never touches Wasm: everything it knows of the engine comes through `request` (protocol.js).
import { PRESETS, loadPreset, encodeForUrl, decodeFromUrl } from './model-description.js';
import * as P from './protocol.js';

const DEFAULT_PRESET = 'simplecnn';
const CHECK_DELAY_MS = 250;
// A training step costs about three forward passes; a whole step runs at roughly half the
// machine's multiply-add peak (`npm run bench`: SimpleCNN's about 0.4, fast's about 0.7).
const STEP_FLOPS_PER_FORWARD = 3;
const EFFICIENCY = 0.5;

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * Wires the panel. `request(type, payload)` sends a message to the worker (a promise of its
 * reply); `onChange({ valid, text, summary })` hears every check; `trainImages()` and `workers()`
 * give the settings the estimate uses; `format()` the chosen data set's shape and classes, which
 * the description is checked against.
 */
export function createModelPanel({ request, onChange = () => {}, trainImages = () => 50000, workers = () => 1, format = () => undefined }) {
  const preset = $('model-preset'), editor = $('model-text'), error = $('model-error');
  const summaryBox = $('model-summary'), estimate = $('model-estimate');
  const presetTexts = new Map();
  let state = { valid: false, text: '', summary: null, peakGflops: null, checking: false };
  let timer = 0, generation = 0;
  let measured = null; // { text, samplesPerSecond, workers } of the last run

  for (const p of PRESETS) preset.append(new Option(`${p.name}: ${p.description}`, p.name));
  preset.append(new Option('custom (edited)', 'custom'));

  async function presetText(name) {
    if (!presetTexts.has(name)) presetTexts.set(name, await loadPreset(name));
    return presetTexts.get(name);
  }

  function presetOf(text) {
    for (const [name, t] of presetTexts) if (t === text) return name;
    return 'custom';
  }

  function showError(message, line) {
    error.textContent = message;
    editor.setAttribute('aria-invalid', message ? 'true' : 'false');
    editor.dataset.errorLine = line ?? '';
  }

  function renderSummary(summary) {
    const table = el('table', 'summary-table');
    table.append(el('caption', 'visually-hidden', 'The network layer by layer'));
    const head = el('tr');
    for (const h of ['layer', 'type', 'output', 'parameters', 'MFLOP']) {
      const th = el('th', null, h);
      th.scope = 'col';
      head.append(th);
    }
    const thead = el('thead');
    thead.append(head);
    const body = el('tbody');
    const row = (cells, className) => {
      const tr = el('tr', className);
      cells.forEach((c, i) => tr.append(el(i === 0 ? 'th' : 'td', i >= 3 ? 'num' : null, c)));
      tr.firstChild.scope = 'row';
      body.append(tr);
    };
    row(['input', '', summary.input.join('×'), '', '']);
    for (const r of summary.rows) {
      row([r.name, r.type, r.shape.join('×'), r.params ? r.params.toLocaleString('en') : '', r.mflops ? r.mflops.toFixed(2) : ''], r.params ? 'has-params' : null);
    }
    const foot = el('tfoot');
    const total = el('tr');
    total.append(el('th', null, 'total'), el('td'), el('td', null, `${summary.classes} classes`),
      el('td', 'num', summary.totals.params.toLocaleString('en')), el('td', 'num', summary.totals.mflops.toFixed(2)));
    total.firstChild.scope = 'row';
    foot.append(total);
    table.append(thead, body, foot);
    summaryBox.replaceChildren(table);
  }

  /**
   * This model's training samples/s with n workers and how it was found: the last run's measured
   * speed, else from the machine's measured peak; null while the model is invalid or unchecked.
   */
  function trainingRate(n) {
    if (!state.valid || !state.summary) return null;
    if (measured && measured.text === state.text && measured.samplesPerSecond > 0) {
      return { rate: measured.samplesPerSecond * (n / measured.workers), how: 'from this model\'s measured speed' };
    }
    if (!state.peakGflops) return null;
    const flopsPerImage = state.summary.totals.mflops * 1e6 * STEP_FLOPS_PER_FORWARD;
    return { rate: (EFFICIENCY * state.peakGflops * 1e9 * n) / flopsPerImage, how: `estimated from this machine's measured peak of ${state.peakGflops.toFixed(0)} GFLOP/s per core` };
  }

  function renderEstimate() {
    const images = trainImages(), n = workers(), r = trainingRate(n);
    estimate.textContent = r
      ? `About ${formatDuration(images / r.rate)} per epoch of ${images.toLocaleString('en')} images with ${n} worker${n === 1 ? '' : 's'} (${r.how}).`
      : '';
  }

  async function check() {
    const text = editor.value;
    const mine = ++generation;
    state = { ...state, checking: true };
    try {
      const reply = await request(P.DESCRIBE, { text, format: format() });
      if (mine !== generation) return;
      state = { valid: true, text, summary: reply.summary, peakGflops: reply.peakGflops, checking: false };
      showError('', null);
      renderSummary(reply.summary);
    } catch (failure) {
      if (mine !== generation) return;
      if (failure.scope === 'lost') return;
      state = { ...state, valid: false, text, summary: null, checking: false };
      showError(failure.message, failure.line);
      summaryBox.replaceChildren(el('p', 'muted', 'Fix the description to see its layers.'));
    }
    renderEstimate();
    onChange(state);
  }

  function scheduleCheck() {
    clearTimeout(timer);
    state = { ...state, valid: false };
    onChange(state);
    timer = setTimeout(check, CHECK_DELAY_MS);
  }

  async function setText(text, { write = true } = {}) {
    editor.value = text;
    preset.value = presetOf(text);
    if (write) await writeUrl();
    await check();
  }

  /** Mirrors the model into the address bar: a preset's name, or the encoded text. */
  async function writeUrl() {
    const query = new URLSearchParams(location.search);
    const name = presetOf(editor.value);
    if (name === DEFAULT_PRESET) query.delete('model');
    else query.set('model', name !== 'custom' ? name : await encodeForUrl(editor.value));
    history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`);
  }

  preset.addEventListener('change', async () => {
    if (preset.value === 'custom') return;
    await setText(await presetText(preset.value));
  });
  editor.addEventListener('input', () => {
    preset.value = presetOf(editor.value);
    writeUrl();
    scheduleCheck();
  });

  return {
    /** Reads `model=` from the URL (a preset name or an encoded text); the default preset otherwise. */
    async init() {
      await Promise.all(PRESETS.map((p) => presetText(p.name)));
      const wanted = new URLSearchParams(location.search).get('model');
      let text = presetTexts.get(DEFAULT_PRESET);
      if (wanted && presetTexts.has(wanted)) text = presetTexts.get(wanted);
      else if (wanted) {
        try {
          text = await decodeFromUrl(wanted);
        } catch (failure) {
          showError(`The model in the link could not be read (${failure.message}); showing the default.`, null);
        }
      }
      await setText(text, { write: false });
    },
    setText,
    /** The data set changed: check the description against its shape. */
    recheck: () => check(),
    get text() { return editor.value; },
    get valid() { return state.valid; },
    get summary() { return state.summary; },
    /** The editor is locked while a run uses the model. */
    setDisabled(disabled) {
      editor.readOnly = disabled;
      preset.disabled = disabled;
    },
    trainingRate,
    /** A run's measured speed, for the estimate of the same model. */
    measured(samplesPerSecond, workerCount) {
      measured = { text: editor.value, samplesPerSecond, workers: workerCount };
      renderEstimate();
    },
  };
}

/**
 * The activation view: each layer's output for one test image, as ConvNetJS shows it. Image-shaped
 * outputs are drawn a channel per tile (up to `maxChannels`), vectors as a strip of cells.
 */
export function renderActivations(container, { index, layers }, { maxChannels = 16 } = {}) {
  const list = el('div', 'activations');
  for (const layer of layers) {
    const section = el('section', 'activation-layer');
    const [c, h = 1, w = 1] = layer.shape;
    section.append(el('h3', null, `${layer.name} · ${layer.type} · ${layer.shape.join('×')}`));
    const tiles = el('div', 'activation-tiles');
    const image = layer.shape.length === 3 && h * w > 1;
    const count = image ? Math.min(c, maxChannels) : 1;
    for (let k = 0; k < count; k++) {
      const values = image ? layer.data.subarray(k * h * w, (k + 1) * h * w) : layer.data;
      const width = image ? w : Math.min(values.length, 64);
      const height = image ? h : Math.ceil(values.length / width);
      let min = Infinity, max = -Infinity;
      for (const v of values) { min = Math.min(min, v); max = Math.max(max, v); }
      const scale = max > min ? 255 / (max - min) : 0;
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      canvas.className = 'activation-map';
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `${layer.name}${image ? `, channel ${k + 1} of ${c}` : ''}: values from ${min.toPrecision(3)} to ${max.toPrecision(3)}`);
      const ctx = canvas.getContext('2d');
      const pixels = ctx.createImageData(width, height);
      for (let i = 0; i < values.length; i++) {
        const g = Math.round((values[i] - min) * scale);
        pixels.data.set([g, g, g, 255], 4 * i);
      }
      ctx.putImageData(pixels, 0, 0);
      tiles.append(canvas);
    }
    if (image && c > count) tiles.append(el('span', 'muted', `+${c - count} more channels`));
    section.append(tiles);
    list.append(section);
  }
  container.replaceChildren(el('p', 'muted', `Test image ${index}: each layer's output, brighter = larger.`), list);
}

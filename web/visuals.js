// The results panels drawn from plain data the worker sends: per-class accuracy, the confusion
// matrix (a table up to 12 classes, a heat map with hover and keys beyond), the most confused
// pairs, test images with their predicted and true labels, the misclassified test images, and
// conv1's filters as images. Images are drawn from uint8 planes of any channel count.
import { CLASS_NAMES } from './cifar.js';
import { perClassAccuracy, confusedPairs } from './class-stats.js';

/** Above this many classes the confusion matrix is a heat map instead of a table of numbers. */
const TABLE_MAX_CLASSES = 12;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const percent = (x) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);

/**
 * Per-class accuracy rows with a bar each; confusion[true * classes + predicted]. Beyond 12
 * classes the rows are sorted worst first, in a scrolling box.
 */
export function renderPerClass(container, confusion, classNames = CLASS_NAMES) {
  const classes = classNames.length;
  let rows = perClassAccuracy(confusion, classes);
  const many = classes > TABLE_MAX_CLASSES;
  if (many) rows = [...rows].sort((a, b) => (a.accuracy ?? 2) - (b.accuracy ?? 2) || a.index - b.index);
  const table = el('table', 'per-class');
  if (many) table.appendChild(el('caption', null, `${classes} classes, lowest accuracy first`));
  const head = table.createTHead().insertRow();
  for (const h of ['Class', 'Accuracy']) head.appendChild(el('th', null, h));
  head.appendChild(el('th')).appendChild(el('span', 'visually-hidden', 'Bar'));
  const body = table.createTBody();
  for (const r of rows) {
    const row = body.insertRow();
    row.appendChild(el('td', 'class-name', classNames[r.index]));
    const cell = el('td', 'num', percent(r.accuracy));
    if (r.total) cell.title = `${r.correct} of ${r.total}`;
    row.appendChild(cell);
    const barCell = el('td', 'bar-cell');
    const bar = el('div', 'bar');
    bar.style.width = `${(100 * (r.accuracy ?? 0)).toFixed(1)}%`;
    barCell.appendChild(bar);
    row.appendChild(barCell);
  }
  if (!many) {
    container.replaceChildren(table);
    return;
  }
  const box = el('div', 'scroll-box');
  box.tabIndex = 0; // a scrolling region must be reachable by keyboard
  box.setAttribute('role', 'region');
  box.setAttribute('aria-label', 'Per-class accuracy of every class');
  box.appendChild(table);
  container.replaceChildren(box);
}

/** The confusion matrix: a table of counts up to 12 classes, a heat map beyond; then the most confused pairs. */
export function renderConfusion(container, confusion, classNames = CLASS_NAMES) {
  const matrix = classNames.length > TABLE_MAX_CLASSES ? confusionHeatMap(confusion, classNames) : confusionTable(confusion, classNames);
  container.replaceChildren(matrix, confusedPairsList(confusion, classNames));
}

function confusionTable(confusion, classNames) {
  const classes = classNames.length;
  const table = el('table', 'confusion');
  table.appendChild(el('caption', null, 'Rows: true class · columns: predicted class'));
  const head = table.createTHead().insertRow();
  head.appendChild(el('th', 'corner', 'true \\ pred'));
  for (const name of classNames) {
    const th = el('th', 'col-head', name.slice(0, 5));
    th.title = name;
    head.appendChild(th);
  }
  const body = table.createTBody();
  classNames.forEach((name, t) => {
    const row = body.insertRow();
    row.appendChild(el('th', 'row-head', name));
    let total = 0;
    for (let p = 0; p < classes; p++) total += confusion[t * classes + p];
    for (let p = 0; p < classes; p++) {
      const count = confusion[t * classes + p];
      const share = total ? count / total : 0;
      const cell = el('td', t === p ? 'diag' : 'off', String(count));
      cell.title = `true ${name}, predicted ${classNames[p]}: ${count}`;
      // Diagonal in green, mistakes in red, stronger with the share of the row; the number in
      // black or white, whichever stands out more (at least 4.6:1 on any shade).
      const background = cellColor(t === p, share);
      cell.style.backgroundColor = `rgb(${background.join(', ')})`;
      cell.classList.add(whiteContrast(background) > blackContrast(background) ? 'strong' : 'dark-text');
      row.appendChild(cell);
    }
  });
  return table;
}

const cellColor = (diagonal, share) => mix(diagonal ? [5, 150, 105] : [220, 38, 38], diagonal ? 0.08 + 0.8 * share : 0.9 * share);

/**
 * A heat map of the matrix, one square per (true, predicted) pair shaded by its share of the true
 * class. Hovering or moving with the arrow keys (it takes focus) names the pair and its count.
 */
function confusionHeatMap(confusion, classNames) {
  const classes = classNames.length;
  const cell = Math.max(3, Math.floor(400 / classes));
  const totals = perClassAccuracy(confusion, classes).map((r) => r.total);
  const figure = el('figure', 'heat-map');
  const canvas = el('canvas', 'heat-map-canvas');
  canvas.width = canvas.height = classes * cell;
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'img');
  const correct = perClassAccuracy(confusion, classes).reduce((n, r) => n + r.correct, 0);
  const all = totals.reduce((a, b) => a + b, 0);
  canvas.setAttribute('aria-label', `Confusion matrix of ${classes} classes as a heat map: rows are the true class, columns the predicted class; ${correct} of ${all} on the diagonal. Hover or use the arrow keys to read a cell; the most confused pairs are listed below.`);
  const ctx = canvas.getContext('2d');
  for (let t = 0; t < classes; t++) {
    for (let p = 0; p < classes; p++) {
      const count = confusion[t * classes + p];
      const share = totals[t] ? count / totals[t] : 0;
      ctx.fillStyle = `rgb(${cellColor(t === p, Math.min(1, t === p ? share : 3 * share)).join(', ')})`;
      ctx.fillRect(p * cell, t * cell, cell, cell);
    }
  }
  const readout = el('figcaption', 'heat-map-readout', 'Rows: true class · columns: predicted class. Hover a cell to read it.');
  readout.setAttribute('aria-live', 'polite');
  let at = null;
  const show = (t, p) => {
    at = [t, p];
    const count = confusion[t * classes + p];
    readout.textContent = `true ${classNames[t]}, predicted ${classNames[p]}: ${count} (${percent(totals[t] ? count / totals[t] : null)} of ${classNames[t]})`;
  };
  canvas.addEventListener('mousemove', (event) => {
    const box = canvas.getBoundingClientRect();
    const p = Math.floor(((event.clientX - box.left) / box.width) * classes);
    const t = Math.floor(((event.clientY - box.top) / box.height) * classes);
    if (t >= 0 && t < classes && p >= 0 && p < classes) show(t, p);
  });
  canvas.addEventListener('keydown', (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const [t, p] = at ?? [0, -move[1]];
    show(Math.min(classes - 1, Math.max(0, t + move[0])), Math.min(classes - 1, Math.max(0, p + move[1])));
  });
  figure.append(canvas, readout);
  return figure;
}

/** The most frequent mistakes, as a list anyone can read (and a screen reader can). */
function confusedPairsList(confusion, classNames, limit = 10) {
  const pairs = confusedPairs(confusion, classNames.length, limit);
  const section = el('div', 'confused-pairs');
  section.appendChild(el('h3', null, 'Most confused pairs'));
  if (!pairs.length) {
    section.appendChild(el('p', 'muted', 'No mistakes.'));
    return section;
  }
  const list = el('ol');
  for (const m of pairs) list.appendChild(el('li', null, `${classNames[m.truth]} → ${classNames[m.predicted]}: ${m.count} (${percent(m.share)} of ${classNames[m.truth]})`));
  section.appendChild(list);
  return section;
}

/** `color` over white at `alpha`, as the browser would paint it. */
function mix(color, alpha) {
  return color.map((c) => Math.round(255 + (c - 255) * alpha));
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
const whiteContrast = (rgb) => 1.05 / (luminance(rgb) + 0.05);
const blackContrast = (rgb) => (luminance(rgb) + 0.05) / 0.05;

/**
 * A width x height canvas from `channels` planes of byte values given by value(index): one plane
 * is grey, three are R, G, B (more: the first three; two: R and G).
 */
function planarCanvas(className, [channels, height, width], value, label) {
  const canvas = el('canvas', className);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(width, height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = channels === 1 ? value(i) : c < channels ? value(c * plane + i) : 0;
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/**
 * Test images with true labels, and predictions when there are some. sample: { images, labels,
 * shape: [C, H, W], indices, classNames }; predictions[i] is image i's, or sample.predicted when it has them.
 */
export function renderImageGrid(container, sample, predictions, classNames = sample.classNames ?? CLASS_NAMES) {
  const grid = el('div', 'image-grid');
  const n = sample.labels.length;
  const shape = sample.shape ?? [3, 32, 32];
  const bytesPer = shape[0] * shape[1] * shape[2];
  for (let i = 0; i < n; i++) {
    const truth = sample.labels[i];
    const predicted = predictions ? predictions[i] : null;
    const figure = el('figure', predicted == null ? 'tile' : predicted === truth ? 'tile right' : 'tile wrong');
    const bytes = sample.images.subarray(i * bytesPer, (i + 1) * bytesPer);
    const number = sample.indices ? sample.indices[i] + 1 : i + 1;
    figure.appendChild(planarCanvas('cifar-image', shape, (k) => bytes[k], `test image ${number}, a ${classNames[truth]}`));
    const caption = el('figcaption');
    caption.appendChild(el('span', 'pred', predicted == null ? '—' : classNames[predicted]));
    caption.appendChild(el('span', 'truth', classNames[truth]));
    figure.title = predicted == null ? `true: ${classNames[truth]}` : `predicted: ${classNames[predicted]}, true: ${classNames[truth]}`;
    figure.appendChild(caption);
    grid.appendChild(figure);
  }
  container.replaceChildren(grid);
}

/** The misclassified test images (the worker's `mistakes`: a sample with `predicted`). */
export function renderMistakes(container, mistakes, classNames = CLASS_NAMES) {
  if (!mistakes?.labels.length) {
    container.replaceChildren(el('p', 'muted', mistakes ? 'No test image was misclassified.' : 'After the first epoch.'));
    return;
  }
  renderImageGrid(container, mistakes, mistakes.predicted, classNames);
}

/**
 * The first convolution's filters (weight (OC, C, K, K) with C 1 or 3, from `shape`, or SimpleCNN's
 * (6, 3, 5, 5)) as small images, at most 16 of them, each scaled to its own range so the pattern
 * shows whatever the weights' magnitude; a net whose first layer is not a conv on the image has none.
 */
export function renderFilters(container, conv1, shape = null) {
  if (!conv1) {
    container.replaceChildren(el('p', 'muted', 'This network does not start with a convolution on the image: no filters to show.'));
    return;
  }
  const C = shape ? shape[1] : 3, K = shape ? shape[2] : 5, taps = C * K * K, count = Math.min(16, Math.floor(conv1.length / taps));
  const row = el('div', 'filters');
  for (let f = 0; f < count; f++) {
    const w = conv1.subarray(f * taps, (f + 1) * taps);
    let min = Infinity, max = -Infinity;
    for (const v of w) { min = Math.min(min, v); max = Math.max(max, v); }
    const scale = max > min ? 255 / (max - min) : 0;
    const canvas = planarCanvas('filter', [C, K, K], (k) => Math.round((w[k] - min) * scale), `conv1 filter ${f + 1}, ${K} by ${K} pixels in ${C === 1 ? 'grey' : 'colour'}`);
    const figure = el('figure', 'filter-tile');
    figure.appendChild(canvas);
    figure.appendChild(el('figcaption', null, `filter ${f + 1}`));
    row.appendChild(figure);
  }
  container.replaceChildren(row);
}

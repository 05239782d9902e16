// The results panels drawn from plain data the worker sends: per-class accuracy, the confusion
// matrix, test images with their predicted and true labels, and conv1's filters as images.
import { CLASS_NAMES } from './cifar.js';

const IMAGE_BYTES = 3072;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Per-class accuracy rows with a bar each; confusion is Int32Array(100), [true * 10 + predicted]. */
export function renderPerClass(container, confusion) {
  const table = el('table', 'per-class');
  const head = table.createTHead().insertRow();
  for (const h of ['Class', 'Accuracy']) head.appendChild(el('th', null, h));
  head.appendChild(el('th')).appendChild(el('span', 'visually-hidden', 'Bar'));
  const body = table.createTBody();
  CLASS_NAMES.forEach((name, t) => {
    let total = 0;
    for (let p = 0; p < 10; p++) total += confusion[t * 10 + p];
    const accuracy = total ? confusion[t * 10 + t] / total : 0;
    const row = body.insertRow();
    row.appendChild(el('td', 'class-name', name));
    row.appendChild(el('td', 'num', total ? `${(100 * accuracy).toFixed(1)}%` : '—'));
    const barCell = el('td', 'bar-cell');
    const bar = el('div', 'bar');
    bar.style.width = `${(100 * accuracy).toFixed(1)}%`;
    barCell.appendChild(bar);
    row.appendChild(barCell);
  });
  container.replaceChildren(table);
}

/** The 10x10 confusion matrix, cells shaded by their share of the true class. */
export function renderConfusion(container, confusion) {
  const table = el('table', 'confusion');
  table.appendChild(el('caption', null, 'Rows: true class · columns: predicted class'));
  const head = table.createTHead().insertRow();
  head.appendChild(el('th', 'corner', 'true \\ pred'));
  for (const name of CLASS_NAMES) {
    const th = el('th', 'col-head', name.slice(0, 5));
    th.title = name;
    head.appendChild(th);
  }
  const body = table.createTBody();
  CLASS_NAMES.forEach((name, t) => {
    const row = body.insertRow();
    row.appendChild(el('th', 'row-head', name));
    let total = 0;
    for (let p = 0; p < 10; p++) total += confusion[t * 10 + p];
    for (let p = 0; p < 10; p++) {
      const count = confusion[t * 10 + p];
      const share = total ? count / total : 0;
      const cell = el('td', t === p ? 'diag' : 'off', String(count));
      cell.title = `true ${name}, predicted ${CLASS_NAMES[p]}: ${count}`;
      // Diagonal in green, mistakes in red, stronger with the share of the row; the number in
      // black or white, whichever stands out more (at least 4.6:1 on any shade).
      const background = mix(t === p ? [5, 150, 105] : [220, 38, 38], t === p ? 0.08 + 0.8 * share : 0.9 * share);
      cell.style.backgroundColor = `rgb(${background.join(', ')})`;
      cell.classList.add(whiteContrast(background) > blackContrast(background) ? 'strong' : 'dark-text');
      row.appendChild(cell);
    }
  });
  container.replaceChildren(table);
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

/** A size x size canvas from three planes (R, G, B) of byte values given by value(index). */
function planarCanvas(className, size, value, label) {
  const canvas = el('canvas', className);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(size, size);
  const plane = size * size;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = value(c * plane + i);
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/** Test images with true labels, and predictions when there are some; sample.classNames, if given, names the labels. */
export function renderImageGrid(container, sample, predictions) {
  const grid = el('div', 'image-grid');
  const n = sample.labels.length;
  const names = sample.classNames ?? CLASS_NAMES;
  for (let i = 0; i < n; i++) {
    const truth = sample.labels[i];
    const predicted = predictions ? predictions[i] : null;
    const figure = el('figure', predicted == null ? 'tile' : predicted === truth ? 'tile right' : 'tile wrong');
    const bytes = sample.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
    figure.appendChild(planarCanvas('cifar-image', 32, (k) => bytes[k], `test image ${i + 1}, a ${names[truth]}`));
    const caption = el('figcaption');
    caption.appendChild(el('span', 'pred', predicted == null ? '—' : names[predicted]));
    caption.appendChild(el('span', 'truth', names[truth]));
    figure.title = predicted == null ? `true: ${names[truth]}` : `predicted: ${names[predicted]}, true: ${names[truth]}`;
    figure.appendChild(caption);
    grid.appendChild(figure);
  }
  container.replaceChildren(grid);
}

/**
 * conv1.weight (6, 3, 5, 5) as six 5x5 colour images, each scaled to its own range so the
 * pattern shows whatever the weights' magnitude.
 */
/**
 * The first convolution's filters (weight (OC, 3, K, K), K from `shape` or the seed's 5) as small
 * colour images, at most 16 of them; a net whose first layer is not a conv on the image has none.
 */
export function renderFilters(container, conv1, shape = null) {
  if (!conv1) {
    container.replaceChildren(el('p', 'muted', 'This network does not start with a convolution on the image: no filters to show.'));
    return;
  }
  const K = shape ? shape[2] : 5, taps = 3 * K * K, count = Math.min(16, Math.floor(conv1.length / taps));
  const row = el('div', 'filters');
  for (let f = 0; f < count; f++) {
    const w = conv1.subarray(f * taps, (f + 1) * taps);
    let min = Infinity, max = -Infinity;
    for (const v of w) { min = Math.min(min, v); max = Math.max(max, v); }
    const scale = max > min ? 255 / (max - min) : 0;
    const canvas = planarCanvas('filter', K, (k) => Math.round((w[k] - min) * scale), `conv1 filter ${f + 1}, ${K} by ${K} pixels in colour`);
    const figure = el('figure', 'filter-tile');
    figure.appendChild(canvas);
    figure.appendChild(el('figcaption', null, `filter ${f + 1}`));
    row.appendChild(figure);
  }
  container.replaceChildren(row);
}

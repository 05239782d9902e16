// Your own images as uint8 records: the pure functions the page's decode worker (image-worker.js)
// and the CLI's `pack` (src/node/pack.js) share, so the same decoded pixels give the same bytes in
// both. Only the decoder differs (createImageBitmap in the page, sharp in Node; both libjpeg-turbo
// and libpng, checked bit for bit by tests/images.test.js and tests/browser-images.test.js).
//
// A record is CIFAR's layout: one label byte, then C planes of H x W (R, G, B or one grey plane).

/** The metadata file beside the record files; its name is how a packed folder is recognised. */
export const META_FILE = 'webtrain-images.json';
export const TRAIN_FILE = 'train.bin';
export const TEST_FILE = 'test.bin';
export const META_KIND = 'webtrain-images';
export const META_VERSION = 1;

export const IMAGE_DEFAULTS = Object.freeze({ size: 32, channels: 3, testFraction: 0.1, seed: 0 });
export const SIZE_RANGE = Object.freeze([8, 256]);
/** Labels are one byte. */
export const MAX_CLASSES = 256;
/** Images with a longer side are skipped: keeps the resize's integer sums exact in doubles. */
export const MAX_SIDE = 20000;
/** File names listed with a count ("and 12 more"). */
export const LISTED_NAMES = 5;
const EXTENSIONS = /\.(png|jpe?g)$/i;

/**
 * The Wasm memory one worker may grow to (-sMAXIMUM_MEMORY in CMakeLists.txt, checked by a
 * test), and what is kept back from the records for the model, its activations and scratch.
 */
export const WASM_MEMORY_LIMIT = 2 ** 30;
export const WASM_MODEL_RESERVE = 192 * 2 ** 20;

/** A failure of the input itself (no classes, an empty class, too many images): refuse, name it. */
export class ImageSetError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ImageSetError';
  }
}

export function recordBytesOf(size, channels) { return 1 + channels * size * size; }

/** How many records of this size fit in one worker's Wasm memory beside the model. */
export function recordsThatFit(recordBytes, limit = WASM_MEMORY_LIMIT) {
  return Math.floor((limit - WASM_MODEL_RESERVE) / recordBytes);
}

/** Throws, saying how many fit, when `count` records of `recordBytes` would not fit. */
export function checkFits(count, recordBytes, what = 'images') {
  const fit = recordsThatFit(recordBytes);
  if (count > fit) {
    throw new ImageSetError(`${count.toLocaleString('en')} ${what} of ${recordBytes.toLocaleString('en')} bytes each do not fit in a training worker's ${WASM_MEMORY_LIMIT / 2 ** 20} MB of WebAssembly memory: at most ${fit.toLocaleString('en')} fit (${WASM_MODEL_RESERVE / 2 ** 20} MB is kept for the model). Use fewer images or a smaller input size.`);
  }
}

/** "a.png, b.jpg and 3 more". */
export function listNames(names, max = LISTED_NAMES) {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * Sorts paths ("root/class/x.png", "class/x.png") into classes. A common top folder is dropped
 * when everything is under it (a dropped folder or an archive of one). The class is the first
 * folder below that; files deeper inside it belong to it too. Names starting with '.' and
 * __MACOSX/ are ignored. `folders`: folder paths seen (so an empty class folder is noticed).
 * Returns { classNames (sorted by UTF-16 code units, JavaScript's default sort), files: [{ path,
 * label }] in class then path order, unsupported: paths that are not .png/.jpg/.jpeg, loose:
 * files outside any class folder, prefix: the top folder dropped ('' or 'name/') }.
 */
export function classifyPaths(paths, folders = []) {
  const clean = (p) => p.replace(/\\/g, '/').replace(/^\/+|\/+$/g, '');
  const hidden = (parts) => parts.some((s) => s.startsWith('.') || s === '__MACOSX');
  const files = paths.map(clean).filter((p) => p && !hidden(p.split('/')));
  const dirs = folders.map(clean).filter((p) => p && !hidden(p.split('/')));
  // The common top folder (a dropped folder, an archive of one): every path is below it and some
  // file is two folders down in it.
  let prefix = '';
  const tops = new Set([...files, ...dirs].map((p) => p.split('/')[0]));
  if (tops.size === 1 && files.every((p) => p.includes('/')) && files.some((p) => p.split('/').length >= 3)) prefix = `${[...tops][0]}/`;
  const strip = (p) => (p.startsWith(prefix) ? p.slice(prefix.length) : '');
  const classSet = new Set();
  for (const d of dirs) {
    const rest = strip(d);
    if (rest) classSet.add(rest.split('/')[0]);
  }
  const loose = [], unsupported = [], found = [];
  for (const p of files) {
    const parts = strip(p).split('/');
    if (parts.length < 2) { loose.push(p); continue; }
    classSet.add(parts[0]);
    if (!EXTENSIONS.test(p)) { unsupported.push(p); continue; }
    found.push({ path: p, className: parts[0] });
  }
  const classNames = [...classSet].sort();
  const index = new Map(classNames.map((name, i) => [name, i]));
  found.sort((a, b) => index.get(a.className) - index.get(b.className) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { classNames, files: found.map(({ path, className }) => ({ path, label: index.get(className) })), unsupported, loose, prefix };
}

/** Refuses fewer than 2 classes, more than 256, or a class with no image; `counts` per class. */
export function checkClasses(classNames, counts, what = 'no PNG or JPEG image') {
  if (classNames.length < 2) {
    throw new ImageSetError(`found ${classNames.length === 0 ? 'no class folder' : `one class folder (${classNames[0]})`}: put the images in at least 2 folders, one per class (e.g. cats/ and dogs/)`);
  }
  if (classNames.length > MAX_CLASSES) throw new ImageSetError(`found ${classNames.length} class folders: at most ${MAX_CLASSES} are allowed (a label is one byte)`);
  const empty = classNames.filter((_, i) => !counts[i]);
  if (empty.length) throw new ImageSetError(`the class folder${empty.length > 1 ? 's' : ''} ${listNames(empty)} ${empty.length > 1 ? 'have' : 'has'} ${what}: remove ${empty.length > 1 ? 'them' : 'it'} or add images`);
}

/**
 * Centre-crops RGBA pixels (width x height, 4 bytes a pixel, not premultiplied) to a square and
 * box-filters it to size x size, writing `channels` planes at out[offset...]. Each output pixel is
 * the area-weighted mean of the source pixels it covers, after compositing each on white:
 * sum(weight * (c * a + 255 * (255 - a))) / (255 * total weight), rounded half up. All sums are
 * integers below 2^53, so the result is exact and the same in every JavaScript engine.
 * Grey (channels 1): BT.601 luma of the rounded RGB, (299 R + 587 G + 114 B + 500) / 1000 floored.
 */
export function cropResize(rgba, width, height, size, channels, out, offset) {
  const side = Math.min(width, height);
  const x0 = Math.floor((width - side) / 2), y0 = Math.floor((height - side) / 2);
  // Source pixel i spans [i * size, (i + 1) * size) and output pixel o spans [o * side,
  // (o + 1) * side) on a common integer axis: their overlap is the weight.
  const spans = boxSpans(side, size);
  // Horizontal pass: rows x size x 3 sums of weight * composited value.
  const rows = new Float64Array(side * size * 3);
  for (let y = 0; y < side; y++) {
    const src = ((y0 + y) * width + x0) * 4;
    for (let o = 0; o < size; o++) {
      let r = 0, g = 0, b = 0;
      for (const [i, w] of spans[o]) {
        const p = src + i * 4, a = rgba[p + 3], white = 255 * (255 - a);
        r += w * (rgba[p] * a + white);
        g += w * (rgba[p + 1] * a + white);
        b += w * (rgba[p + 2] * a + white);
      }
      const t = (y * size + o) * 3;
      rows[t] = r; rows[t + 1] = g; rows[t + 2] = b;
    }
  }
  const plane = size * size, divisor = 255 * side * side;
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      let r = 0, g = 0, b = 0;
      for (const [i, w] of spans[oy]) {
        const t = (i * size + ox) * 3;
        r += w * rows[t]; g += w * rows[t + 1]; b += w * rows[t + 2];
      }
      // Round half up: floor((2 * sum + divisor) / (2 * divisor)), still exact integers.
      const R = Math.floor((2 * r + divisor) / (2 * divisor));
      const G = Math.floor((2 * g + divisor) / (2 * divisor));
      const B = Math.floor((2 * b + divisor) / (2 * divisor));
      const k = offset + oy * size + ox;
      if (channels === 1) out[k] = Math.floor((299 * R + 587 * G + 114 * B + 500) / 1000);
      else {
        out[k] = R; out[k + plane] = G; out[k + 2 * plane] = B;
      }
    }
  }
}

/** For each of `size` output pixels, the [source index, overlap] pairs over `side` source pixels. */
function boxSpans(side, size) {
  const spans = [];
  for (let o = 0; o < size; o++) {
    const lo = o * side, hi = (o + 1) * side, list = [];
    for (let i = Math.floor(lo / size); i * size < hi; i++) {
      const w = Math.min(hi, (i + 1) * size) - Math.max(lo, i * size);
      if (w > 0) list.push([i, w]);
    }
    spans.push(list);
  }
  return spans;
}

/** splitmix32: a small seeded generator, the same sequence everywhere. */
function random32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Fisher-Yates with `next` (uniform enough for a split: modulo bias is below 2^-20 here). */
function shuffle(list, next) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/**
 * The seeded split, stratified by class: in each class (records in their given order), a
 * shuffle with the seed, then round(count * testFraction) go to the test set. Each set is then
 * shuffled (so --limit-train takes a mix of classes). Returns { train, test } record indices.
 */
export function stratifiedSplit(labels, classes, testFraction, seed) {
  const byClass = Array.from({ length: classes }, () => []);
  labels.forEach((label, i) => byClass[label].push(i));
  const next = random32(seed);
  const train = [], test = [];
  for (const members of byClass) {
    shuffle(members, next);
    const n = Math.round(members.length * testFraction);
    test.push(...members.slice(0, n));
    train.push(...members.slice(n));
  }
  return { train: shuffle(train, next), test: shuffle(test, next) };
}

/** Copies the records `order` picks from `records` into a new buffer. */
export function gather(records, recordBytes, order) {
  const out = new Uint8Array(order.length * recordBytes);
  order.forEach((r, i) => out.set(records.subarray(r * recordBytes, (r + 1) * recordBytes), i * recordBytes));
  return out;
}

/**
 * Per-channel mean and standard deviation of the pixels / 255, from a histogram of each channel
 * (exact, the same in every engine); and the records per class.
 */
export function recordStats(records, recordBytes, channels, classes) {
  const plane = (recordBytes - 1) / channels, count = records.length / recordBytes;
  const hist = Array.from({ length: channels }, () => new Float64Array(256));
  const perClass = new Array(classes).fill(0);
  for (let r = 0; r < count; r++) {
    const base = r * recordBytes;
    perClass[records[base]]++;
    for (let c = 0; c < channels; c++) {
      const h = hist[c], start = base + 1 + c * plane;
      for (let k = start; k < start + plane; k++) h[records[k]]++;
    }
  }
  const mean = [], std = [];
  for (const h of hist) {
    let n = 0, sum = 0;
    for (let v = 0; v < 256; v++) { n += h[v]; sum += h[v] * v; }
    const m = n ? sum / n / 255 : 0.5;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += h[v] * (v / 255 - m) ** 2;
    const s = n ? Math.sqrt(sq / n) : 0.5;
    mean.push(Number(m.toFixed(6)));
    std.push(Number(Math.max(s, 1e-3).toFixed(6)));
  }
  return { mean, std, perClass };
}

/**
 * Splits the decoded records (label order, skipped ones already left out) and describes them:
 * { train, test: Uint8Array records, meta } where meta is the JSON written as META_FILE.
 */
export function buildImageSet(records, { size, channels, classNames, testFraction, seed, skipped = [], skippedCount = skipped.length, source = '' }) {
  const recordBytes = recordBytesOf(size, channels);
  const count = records.length / recordBytes;
  const labels = new Uint8Array(count);
  for (let r = 0; r < count; r++) labels[r] = records[r * recordBytes];
  const { train: trainOrder, test: testOrder } = stratifiedSplit(labels, classNames.length, testFraction, seed);
  if (!testOrder.length) throw new ImageSetError(`a test fraction of ${testFraction} leaves no test image out of ${count}: raise it`);
  if (!trainOrder.length) throw new ImageSetError(`a test fraction of ${testFraction} leaves no training image out of ${count}: lower it`);
  const train = gather(records, recordBytes, trainOrder), test = gather(records, recordBytes, testOrder);
  const trainStats = recordStats(train, recordBytes, channels, classNames.length);
  const testStats = recordStats(test, recordBytes, channels, classNames.length);
  const meta = {
    kind: META_KIND, version: META_VERSION, source,
    channels, height: size, width: size, recordBytes, labelOffset: 0, pixelOffset: 1,
    classes: classNames.length, classNames, mean: trainStats.mean, std: trainStats.std,
    split: { seed, testFraction }, trainCount: trainOrder.length, testCount: testOrder.length,
    counts: { train: trainStats.perClass, test: testStats.perClass },
    files: { train: TRAIN_FILE, test: TEST_FILE },
    skipped: { count: skippedCount, first: skipped.slice(0, LISTED_NAMES).map(({ path, reason }) => ({ path, reason })) },
  };
  return { train, test, meta };
}

/** The engine's record format (engine.js Dataset) of a packed set's metadata. */
export function formatOfMeta(meta) {
  return Object.freeze({
    recordBytes: meta.recordBytes, labelOffset: meta.labelOffset, pixelOffset: meta.pixelOffset,
    channels: meta.channels, height: meta.height, width: meta.width, classes: meta.classes,
    mean: Object.freeze([...meta.mean]), std: Object.freeze([...meta.std]),
    classNames: Object.freeze([...meta.classNames]),
  });
}

/** Checks a metadata file's fields; `name` prefixes the message. Returns the metadata. */
export function checkMeta(meta, name) {
  const fail = (what) => { throw new ImageSetError(`${name}: ${what}`); };
  if (!meta || typeof meta !== 'object' || meta.kind !== META_KIND) fail(`not a webtrain image set (kind must be "${META_KIND}")`);
  if (meta.version !== META_VERSION) fail(`version ${meta.version} is not supported (this webtrain reads version ${META_VERSION})`);
  if (![1, 3].includes(meta.channels)) fail(`channels must be 1 or 3, not ${meta.channels}`);
  const size = meta.height;
  if (!Number.isInteger(size) || size < SIZE_RANGE[0] || size > SIZE_RANGE[1] || meta.width !== size) fail(`height and width must be equal integers in ${SIZE_RANGE.join('..')}`);
  if (meta.recordBytes !== recordBytesOf(size, meta.channels) || meta.labelOffset !== 0 || meta.pixelOffset !== 1) fail('recordBytes, labelOffset or pixelOffset do not match the shape');
  if (!Array.isArray(meta.classNames) || meta.classNames.length !== meta.classes || meta.classes < 2 || meta.classes > MAX_CLASSES) fail(`classNames must list the ${meta.classes} classes (2..${MAX_CLASSES})`);
  for (const key of ['mean', 'std']) {
    if (!Array.isArray(meta[key]) || meta[key].length !== meta.channels || !meta[key].every((v) => Number.isFinite(v) && (key === 'mean' || v > 0))) fail(`${key} must hold ${meta.channels} finite number(s)`);
  }
  for (const key of ['trainCount', 'testCount']) if (!Number.isInteger(meta[key]) || meta[key] < 1) fail(`${key} must be a positive integer`);
  return meta;
}

/**
 * Decodes and packs `items` ([{ path, label, problem }]) into records, in their order, leaving
 * out the ones that fail. decode(item) resolves to { data: RGBA bytes, width, height } (the
 * decoder is the caller's: createImageBitmap in the page, sharp in Node). A few at a time, so a
 * decoder that works off-thread keeps busy. onProgress({ done, total, packed, skipped, elapsedMs })
 * now and then. Returns { records (trimmed), counts per class, skipped: [{ path, reason }] }.
 */
export async function packImages(items, { size, channels, classes, decode, onProgress = () => {}, concurrency = 4, now = () => performance.now() }) {
  const recordBytes = recordBytesOf(size, channels);
  checkFits(items.length, recordBytes);
  const records = new Uint8Array(items.length * recordBytes);
  const slots = new Int32Array(items.length).fill(-1); // record slot of item i, -1 if skipped
  const skipped = [];
  const counts = new Array(classes).fill(0);
  const start = now();
  let next = 0, done = 0, lastReport = start;
  const report = () => onProgress({ done, total: items.length, packed: done - skipped.length, skipped, elapsedMs: now() - start });
  const one = async (i) => {
    const item = items[i];
    if (item.problem) return item.problem;
    let image;
    try {
      image = await decode(item);
    } catch (error) {
      return { reason: 'could not be decoded', detail: String(error?.message ?? error).split('\n')[0].replace(/[:\s.]+$/, '') };
    }
    const { data, width, height } = image;
    if (!(width > 0 && height > 0) || data.length !== width * height * 4) return 'could not be decoded (no pixels)';
    if (Math.max(width, height) > MAX_SIDE) return `${width}x${height} is larger than ${MAX_SIDE} pixels a side`;
    records[i * recordBytes] = item.label;
    cropResize(data, width, height, size, channels, records, i * recordBytes + 1);
    slots[i] = i;
    counts[item.label]++;
    return null;
  };
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const problem = await one(i);
      // The reason is the same in every decoder (it goes in the metadata); the detail is the decoder's.
      if (problem) skipped.push({ path: items[i].path, index: i, ...(typeof problem === 'string' ? { reason: problem } : problem) });
      done++;
      if (now() - lastReport > 200) { lastReport = now(); report(); }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  report();
  skipped.sort((a, b) => a.index - b.index);
  // Close the gaps the skipped images left, keeping the order.
  let kept = 0;
  for (let i = 0; i < items.length; i++) {
    if (slots[i] < 0) continue;
    if (kept !== i) records.copyWithin(kept * recordBytes, i * recordBytes, (i + 1) * recordBytes);
    kept++;
  }
  return { records: records.subarray(0, kept * recordBytes), counts, skipped: skipped.map(({ index, ...rest }) => rest) };
}

/** "bad.png (could not be decoded: not a PNG)": a skipped file with its reason and the decoder's detail. */
export function describeSkip({ path, reason, detail }) {
  return `${path} (${reason}${detail ? `: ${detail}` : ''})`;
}

/**
 * The whole pipeline after listing: classes from the paths, checks, decode, pack, split.
 * paths: [{ path, ...whatever decode needs }]. Returns buildImageSet's { train, test, meta } and
 * the skipped files.
 */
export async function packFolder(entries, folders, { size = IMAGE_DEFAULTS.size, channels = IMAGE_DEFAULTS.channels, testFraction = IMAGE_DEFAULTS.testFraction, seed = IMAGE_DEFAULTS.seed, source = '', decode, onProgress, concurrency }) {
  const byPath = new Map(entries.map((e) => [e.path.replace(/\\/g, '/').replace(/^\/+/, ''), e]));
  const { classNames, files, unsupported, loose, prefix } = classifyPaths([...byPath.keys()], folders);
  const candidates = new Array(classNames.length).fill(0);
  for (const f of files) candidates[f.label]++;
  checkClasses(classNames, candidates);
  const items = files.map((f) => ({ ...byPath.get(f.path), path: f.path, label: f.label, problem: byPath.get(f.path).problem ?? null }));
  // Files are named as inside the dropped folder, as pack names them inside DIR.
  const inside = (p) => p.slice(prefix.length);
  const report = onProgress && ((p) => onProgress({ ...p, skipped: p.skipped.map((skip) => ({ ...skip, path: inside(skip.path) })) }));
  const result = await packImages(items, { size, channels, classes: classNames.length, decode, onProgress: report, concurrency });
  checkClasses(classNames, result.counts, 'no image that could be decoded');
  const skipped = [
    ...result.skipped.map((s) => ({ ...s, path: inside(s.path) })),
    ...unsupported.map((path) => ({ path: inside(path), reason: 'not a PNG or JPEG file' })),
    ...loose.map((path) => ({ path, reason: 'not inside a class folder' })),
  ];
  const set = buildImageSet(result.records, { size, channels, classNames, testFraction, seed, skipped, source });
  return { ...set, skipped, counts: result.counts };
}

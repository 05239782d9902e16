// The standard data sets webtrain reads, for the CLI and the page alike: each one's official file
// names, class names, input shape, normalisation, size rules, and the conversion of its files into
// the engine's records (wt_records: a label byte and C planes of H x W pixel bytes per record).
// CIFAR files are records already; MNIST's IDX pairs (images, labels) are interleaved into one
// uint8 buffer, with no JS object per image. Gunzipping is the caller's (zlib in Node,
// DecompressionStream in the page): this module sees the plain bytes.
import { ALL_FILES as CIFAR10_FILES, TRAIN_FILES as CIFAR10_TRAIN, TEST_FILE as CIFAR10_TEST, CLASS_NAMES as CIFAR10_CLASSES } from './cifar.js';
import { CIFAR10_FORMAT } from './engine.js';
import { RECORDS_RULE, MAX_RECORDS_PER_FILE, wholeRecords, atMost } from './file-limits.js';

/** A file of a data set the user can fix: the message starts with the file's name. */
export class DatasetError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DatasetError';
  }
}

export const CIFAR100_FINE = Object.freeze(`apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster
man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail
snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip
turtle wardrobe whale willow_tree wolf woman worm`.split(/\s+/));
export const CIFAR100_COARSE = Object.freeze(`aquatic_mammals fish flowers food_containers fruit_and_vegetables
household_electrical_devices household_furniture insects large_carnivores large_man-made_outdoor_things
large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people reptiles
small_mammals trees vehicles_1 vehicles_2`.split(/\s+/));

const IDX_FILES = Object.freeze(['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']);
/** IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), the number of dimensions. */
const IDX_IMAGES_MAGIC = 0x00000803;
const IDX_LABELS_MAGIC = 0x00000801;
const IDX_IMAGES_HEADER = 16;
const IDX_LABELS_HEADER = 8;

/** The records of a 28x28 grey IDX set: a label byte, then the 784 pixels. */
const idxFormat = (mean, std) => Object.freeze({
  recordBytes: 785, labelOffset: 0, pixelOffset: 1, channels: 1, height: 28, width: 28, classes: 10,
  mean: Object.freeze([mean]), std: Object.freeze([std]),
});

const CIFAR100_RECORD_BYTES = 3074;
const CIFAR100_RULE = wholeRecords(CIFAR100_RECORD_BYTES, MAX_RECORDS_PER_FILE, 'CIFAR-100 record');
// The mean and standard deviation of CIFAR-100's training pixels, per channel (the usual values).
const cifar100Format = (labelOffset, classes) => Object.freeze({
  recordBytes: CIFAR100_RECORD_BYTES, labelOffset, pixelOffset: 2, channels: 3, height: 32, width: 32, classes,
  mean: Object.freeze([0.5071, 0.4865, 0.4409]), std: Object.freeze([0.2673, 0.2564, 0.2762]),
});

/**
 * The size rule of an IDX file: its header (magic, then a big-endian u32 per dimension) states
 * the size, which must be the file's; the image size must be the data set's. `kind` 'images' or 'labels'.
 */
export function idxRule(kind, height, width, maxCount = MAX_RECORDS_PER_FILE) {
  const images = kind === 'images';
  const headerBytes = images ? IDX_IMAGES_HEADER : IDX_LABELS_HEADER;
  const itemBytes = images ? height * width : 1;
  return {
    ceiling: headerBytes + maxCount * itemBytes,
    headBytes: headerBytes,
    judge(size, head) {
      const header = readIdxHeader(head, kind, size);
      if (typeof header === 'string') return header;
      const [count, rows, cols] = header.dims;
      if (images && (rows !== height || cols !== width)) return `holds images of ${rows}x${cols} pixels; this data set's are ${height}x${width}`;
      if (count > maxCount) return `its header says ${count} ${kind}, more than the ${maxCount} a file may hold`;
      const expected = headerBytes + count * itemBytes;
      if (size < expected) return `truncated: ${size} bytes, but its header says ${count} ${kind} (${expected} bytes)`;
      if (size > expected) return `${size - expected} bytes after the ${count} ${kind} its header announces (${expected} bytes): not an IDX ${kind} file?`;
      return size;
    },
  };
}

/** { dims } of an IDX header, or what is wrong with it (the text after "NAME: "). */
function readIdxHeader(head, kind, size) {
  const [magic, dimCount, headerBytes] = kind === 'images' ? [IDX_IMAGES_MAGIC, 3, IDX_IMAGES_HEADER] : [IDX_LABELS_MAGIC, 1, IDX_LABELS_HEADER];
  const hex = (n) => `0x${n.toString(16).padStart(8, '0')}`;
  if (head.length < 4) return `truncated: ${size} bytes, shorter than an IDX header`;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    const gzip = head[0] === 0x1f && head[1] === 0x8b ? ' (it is gzipped: name it .gz)' : '';
    return `not an IDX ${kind} file: its magic number is ${hex(found)}, expected ${hex(magic)}${gzip}`;
  }
  if (head.length < headerBytes) return `truncated: ${size} bytes, shorter than the ${headerBytes}-byte IDX header`;
  const dims = [];
  for (let i = 0; i < dimCount; i++) dims.push(view.getUint32(4 + 4 * i, false));
  return { dims };
}

const IDX_OFFICIAL = 'https://ossci-datasets.s3.amazonaws.com/mnist/';

/** CIFAR-100 read with its fine or its coarse labels: the same files, another label byte. */
function cifar100Entry(name, labels, meta, classNames, format) {
  return Object.freeze({
    name, title: `CIFAR-100 (${labels} classes)`, kind: 'records', folder: 'cifar-100-binary',
    downloadBytes: 184_440_000,
    trainImages: 50_000, testImages: 10_000,
    files: Object.freeze(['train.bin', 'test.bin']), train: ['train.bin'], test: ['test.bin'], gzip: false, meta,
    archive: 'cifar-100-binary.tar.gz', officialUrl: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    classNames, format, rule: () => CIFAR100_RULE,
  });
}

/**
 * The data sets, by the name --dataset and the page use. `files`: the names a folder holds
 * (`gzip`: each may also be NAME.gz); `train`/`test`: which of them make which set; `rule(name)`:
 * the size rule of a file's plain bytes; `folder`: the usual folder name under data/;
 * `downloadBytes`: what the page fetches (the official files; IDX ones gzipped); `trainImages`,
 * `testImages`: the official sets' sizes.
 */
export const DATASETS = Object.freeze({
  cifar10: Object.freeze({
    name: 'cifar10', title: 'CIFAR-10', kind: 'records', folder: 'cifar-10-batches-bin',
    trainImages: 50_000, testImages: 10_000,
    downloadBytes: 184_380_000,
    files: CIFAR10_FILES, train: CIFAR10_TRAIN, test: [CIFAR10_TEST], gzip: false,
    archive: 'cifar-10-binary.tar.gz', officialUrl: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    classNames: CIFAR10_CLASSES, format: CIFAR10_FORMAT, rule: () => RECORDS_RULE,
  }),
  cifar100: cifar100Entry('cifar100', '100 fine', 'fine_label_names.txt', CIFAR100_FINE, cifar100Format(1, 100)),
  'cifar100-coarse': cifar100Entry('cifar100-coarse', '20 coarse', 'coarse_label_names.txt', CIFAR100_COARSE, cifar100Format(0, 20)),
  mnist: Object.freeze({
    name: 'mnist', title: 'MNIST', kind: 'idx', folder: 'mnist',
    trainImages: 60_000, testImages: 10_000,
    downloadBytes: 11_594_722,
    files: IDX_FILES, train: IDX_FILES.slice(0, 2), test: IDX_FILES.slice(2), gzip: true,
    officialUrl: IDX_OFFICIAL,
    classNames: Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']),
    // torchvision's MNIST normalisation.
    format: idxFormat(0.1307, 0.3081), rule: (name) => idxRule(/images/.test(name) ? 'images' : 'labels', 28, 28),
  }),
  'fashion-mnist': Object.freeze({
    name: 'fashion-mnist', title: 'Fashion-MNIST', kind: 'idx', folder: 'fashion-mnist',
    trainImages: 60_000, testImages: 10_000,
    downloadBytes: 30_878_645,
    files: IDX_FILES, train: IDX_FILES.slice(0, 2), test: IDX_FILES.slice(2), gzip: true,
    officialUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    classNames: Object.freeze(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']),
    format: idxFormat(0.2860, 0.3530), rule: (name) => idxRule(/images/.test(name) ? 'images' : 'labels', 28, 28),
  }),
});

export const DATASET_NAMES = Object.freeze(Object.keys(DATASETS));

/** The data set called `name`, or a DatasetError listing the known names. */
export function datasetNamed(name) {
  const dataset = DATASETS[name];
  if (!dataset) throw new DatasetError(`unknown data set '${name}': one of ${DATASET_NAMES.join(', ')}`);
  return dataset;
}

/** The ceiling of a gzipped file of `dataset`: its plain ceiling and a little (gzip can grow data). */
export function gzipRule(dataset, name) {
  const plain = dataset.rule(name).ceiling;
  return atMost(plain + (plain >> 6) + 4096, `a gzipped ${dataset.title} file`);
}

/** The file `name` (plain, or NAME.gz where allowed) is one of `dataset`'s: its plain name, or null. */
export function plainNameOf(dataset, name) {
  const base = name.replace(/^.*[\\/]/, '');
  if (dataset.files.includes(base)) return base;
  if (dataset.gzip && base.endsWith('.gz') && dataset.files.includes(base.slice(0, -3))) return base.slice(0, -3);
  return null;
}

/** Bytes that start as gzip does (1f 8b): gunzip them, whatever the file's name says. */
export const isGzip = (bytes) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/**
 * Which data set a folder holds, from its file names and (for twins that share file names) its
 * own name: { dataset, note }, or a DatasetError that says which files were looked for. `wanted`
 * (--dataset) decides when given. The set with the most of its files present wins, so a folder
 * missing one file is read as that set and the missing file is named. The rule for twins:
 * CIFAR-100 means its 100 fine classes; the IDX names mean Fashion-MNIST when the folder's name
 * contains "fashion", MNIST otherwise. `note` says when the rule chose.
 */
export function detectDataset(dir, names, wanted = null) {
  if (wanted) return { dataset: datasetNamed(wanted), note: null };
  const present = (d) => new Set(names.map((n) => plainNameOf(d, n)).filter(Boolean)).size;
  const ranked = Object.values(DATASETS).map((d) => [d, present(d)]).filter(([, n]) => n > 0);
  if (!ranked.length) {
    const looked = [...new Set(Object.values(DATASETS).map((d) => `${d.title.replace(/ \(.*/, '')}: ${describeFiles(d)}`))].join('; ');
    throw new DatasetError(`${dir}: no data set recognised. Looked for ${looked}`);
  }
  ranked.sort((a, b) => b[1] - a[1]); // stable: fine before coarse, MNIST before Fashion-MNIST
  const best = ranked[0][0];
  if (best.kind === 'idx') {
    const fashion = /fashion/i.test(dir.replace(/[\\/]+$/, '').replace(/^.*[\\/]/, ''));
    const dataset = DATASETS[fashion ? 'fashion-mnist' : 'mnist'];
    const other = fashion ? 'mnist' : 'fashion-mnist';
    return { dataset, note: `MNIST and Fashion-MNIST share their file names: ${dataset.title} chosen by the folder's name (--dataset ${other} chooses the other)` };
  }
  const note = best.name === 'cifar100' ? 'CIFAR-100 with its 100 fine labels (--dataset cifar100-coarse for the 20 coarse ones)' : null;
  return { dataset: best, note };
}

/** The files a data set's folder holds, for messages. */
export function describeFiles(dataset) {
  return `${dataset.files.join(', ')}${dataset.gzip ? ' (each may be .gz)' : ''}`;
}

/**
 * The engine's record files of `dataset` from its plain files: `files` maps each plain name to
 * { name (for messages), bytes: Uint8Array }. Returns { train, test }, each [{ name, bytes }] for
 * Engine.loadDataset with dataset.format. An IDX file is judged by its rule here (magic, shape,
 * size) and the images and labels must agree in count; the C reader then checks every label.
 */
export function recordFiles(dataset, files) {
  const get = (plain) => {
    const file = files.get(plain);
    if (!file) throw new DatasetError(`${plain}: missing (${dataset.title} needs ${describeFiles(dataset)})`);
    return file;
  };
  if (dataset.kind === 'records') {
    return {
      train: dataset.train.map((n) => get(n)),
      test: dataset.test.map((n) => get(n)),
    };
  }
  const pair = ([imagesName, labelsName]) => [idxRecords(dataset, get(imagesName), get(labelsName), imagesName, labelsName)];
  return { train: pair(dataset.train), test: pair(dataset.test) };
}

/** One IDX images file and its labels as records of dataset.format: a label byte, the pixels. */
function idxRecords(dataset, images, labels, imagesPlain, labelsPlain) {
  for (const [file, plain] of [[images, imagesPlain], [labels, labelsPlain]]) {
    const rule = dataset.rule(plain);
    const verdict = file.bytes.length === 0 ? 'file is empty (0 bytes)' : rule.judge(file.bytes.length, file.bytes.subarray(0, rule.headBytes));
    if (typeof verdict === 'string') throw new DatasetError(`${file.name}: ${verdict}`);
  }
  const view = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = view(images.bytes).getUint32(4, false);
  const labelCount = view(labels.bytes).getUint32(4, false);
  if (count !== labelCount) throw new DatasetError(`${images.name} holds ${count} images but ${labels.name} holds ${labelCount} labels: they must be the same set`);
  const { recordBytes, labelOffset, pixelOffset } = dataset.format;
  const pixels = dataset.format.channels * dataset.format.height * dataset.format.width;
  const out = new Uint8Array(count * recordBytes);
  const src = images.bytes, labelBytes = labels.bytes;
  for (let i = 0; i < count; i++) {
    out[i * recordBytes + labelOffset] = labelBytes[IDX_LABELS_HEADER + i];
    out.set(src.subarray(IDX_IMAGES_HEADER + i * pixels, IDX_IMAGES_HEADER + (i + 1) * pixels), i * recordBytes + pixelOffset);
  }
  // The labels are what the C reader checks, so its message names the labels file.
  return { name: labels.name, bytes: out };
}

/** Class names from CIFAR-100's meta file (one a line); a file that does not fit is refused by name. */
export function classNamesFromMeta(dataset, text, name) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (lines.length !== dataset.format.classes) throw new DatasetError(`${name}: ${lines.length} class names, expected ${dataset.format.classes} for ${dataset.title}`);
  return Object.freeze(lines);
}

/** Builds IDX file bytes (for tests and tools): `dims` [n] for labels, [n, rows, cols] for images. */
export function encodeIdx(dims, data) {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, dims.length === 1 ? IDX_LABELS_MAGIC : IDX_IMAGES_MAGIC, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, header);
  return out;
}

// Small learnable data sets in the official formats of MNIST (IDX, gzipped or not) and CIFAR-100
// (binary records of a coarse and a fine label), generated at test time.
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

import { encodeIdx, CIFAR100_FINE, CIFAR100_COARSE } from '../../web/datasets.js';
import { makeRandom } from './synthetic.js';

/** `count` 28x28 grey images and their labels: class k is a bright bar at row or column 2 + 2.4k. */
export function makeIdxImages(count, seed = 1) {
  const random = makeRandom(seed);
  const images = new Uint8Array(count * 784), labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = Math.floor(random() * 10);
    labels[i] = label;
    const at = 2 + Math.round(2.4 * label);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const on = Math.abs((label % 2 ? x : y) - at) <= 1 ? 180 : 0;
        images[i * 784 + y * 28 + x] = Math.min(255, Math.round(on + random() * 60));
      }
    }
  }
  return { images, labels };
}

/** The four IDX files as { name: bytes } (plain names). */
export function makeIdxFiles({ train = 200, test = 100, seed = 1 } = {}) {
  const a = makeIdxImages(train, seed), b = makeIdxImages(test, seed + 100);
  return {
    'train-images-idx3-ubyte': encodeIdx([train, 28, 28], a.images),
    'train-labels-idx1-ubyte': encodeIdx([train], a.labels),
    't10k-images-idx3-ubyte': encodeIdx([test, 28, 28], b.images),
    't10k-labels-idx1-ubyte': encodeIdx([test], b.labels),
  };
}

/** Writes the four IDX files into `dir` (gzipped as NAME.gz when `gzip`); returns dir. */
export function writeSyntheticIdx(dir, { gzip = false, ...options } = {}) {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(makeIdxFiles(options))) {
    writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  }
  return dir;
}

/** `count` CIFAR-100 records: coarse label, fine label (fine % 20 = coarse here), 3072 pixels. */
export function makeCifar100Records(count, seed = 1) {
  const random = makeRandom(seed);
  const out = new Uint8Array(count * 3074);
  for (let i = 0; i < count; i++) {
    const fine = Math.floor(random() * 100);
    const r = i * 3074;
    out[r] = fine % 20;
    out[r + 1] = fine;
    for (let k = 0; k < 3072; k++) out[r + 2 + k] = (fine * 7 + k * (1 + (fine % 5))) & 255;
  }
  return out;
}

/** train.bin, test.bin and the two label-name files of the binary version; returns dir. */
export function writeSyntheticCifar100(dir, { train = 200, test = 100, seed = 1 } = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'train.bin'), makeCifar100Records(train, seed));
  writeFileSync(path.join(dir, 'test.bin'), makeCifar100Records(test, seed + 100));
  writeFileSync(path.join(dir, 'fine_label_names.txt'), `${CIFAR100_FINE.join('\n')}\n`);
  writeFileSync(path.join(dir, 'coarse_label_names.txt'), `${CIFAR100_COARSE.join('\n')}\n`);
  return dir;
}

// A small learnable data set in the CIFAR-10 binary format, for tests that must not need the
// real files: each class is a distinct colour and stripe pattern under seeded noise.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { TRAIN_FILES, TEST_FILE } from '../../web/cifar.js';

/** Deterministic xorshift32 stream, so every run writes the same bytes. */
export function makeRandom(seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

/** `count` records; label i % 10 unless labels are given. */
export function makeRecords(count, seed = 1) {
  const random = makeRandom(seed);
  const out = new Uint8Array(count * 3073);
  for (let i = 0; i < count; i++) {
    const label = Math.floor(random() * 10);
    const rec = out.subarray(i * 3073, (i + 1) * 3073);
    rec[0] = label;
    for (let c = 0; c < 3; c++) {
      const base = 40 + 20 * ((label * (c + 3)) % 10);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const stripe = ((label % 2 ? x : y) >> (1 + (label % 3))) & 1 ? 50 : -50;
          const noise = (random() - 0.5) * 120;
          rec[1 + c * 1024 + y * 32 + x] = Math.max(0, Math.min(255, Math.round(base + stripe + noise)));
        }
      }
    }
  }
  return out;
}

/** Writes the six files of a synthetic CIFAR-10 folder; returns its path. */
export function writeSyntheticCifar(dir, { perTrainFile = 200, test = 200, seed = 1 } = {}) {
  mkdirSync(dir, { recursive: true });
  TRAIN_FILES.forEach((name, i) => writeFileSync(path.join(dir, name), makeRecords(perTrainFile, seed + i)));
  writeFileSync(path.join(dir, TEST_FILE), makeRecords(test, seed + 100));
  return dir;
}

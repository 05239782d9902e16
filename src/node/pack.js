#!/usr/bin/env node
// `npm run --silent pack -- DIR OUT`: a folder of images, one subfolder per class, becomes record
// files and a metadata file in OUT (web/image-records.js, the same code as the page), decoded by
// sharp (libvips with libjpeg-turbo and libpng: the same bytes as Chromium's decoders).
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import path from 'node:path';

import { packFolder, describeSkip, IMAGE_DEFAULTS, SIZE_RANGE, META_FILE, TRAIN_FILE, TEST_FILE, ImageSetError } from '../../web/image-records.js';

const USAGE = `usage: npm run --silent pack -- DIR OUT [options]

  DIR               a folder with one subfolder of PNG or JPEG images per class
                    (the folder names, sorted, are the class names)
  OUT               the folder to write ${TRAIN_FILE}, ${TEST_FILE} and ${META_FILE} into
  --size N          images are centre-cropped to a square and resized to N x N (default ${IMAGE_DEFAULTS.size})
  --grey            one grey channel instead of colour
  --test-fraction X the share of each class kept for testing (default ${IMAGE_DEFAULTS.testFraction})
  --seed N          the split's seed (default ${IMAGE_DEFAULTS.seed})
  --help            this text`;

class UsageError extends Error {}

function parseOptions(argv) {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { size: { type: 'string' }, grey: { type: 'boolean' }, 'test-fraction': { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) return { help: true };
  if (positionals.length !== 2) throw new UsageError('give the image folder and the output folder: pack DIR OUT');
  const size = values.size === undefined ? IMAGE_DEFAULTS.size : Number(values.size);
  if (!Number.isInteger(size) || size < SIZE_RANGE[0] || size > SIZE_RANGE[1]) throw new UsageError(`--size ${values.size}: an integer from ${SIZE_RANGE[0]} to ${SIZE_RANGE[1]}`);
  const testFraction = values['test-fraction'] === undefined ? IMAGE_DEFAULTS.testFraction : Number(values['test-fraction']);
  if (!(testFraction > 0 && testFraction < 1)) throw new UsageError(`--test-fraction ${values['test-fraction']}: a number between 0 and 1`);
  const seed = values.seed === undefined ? IMAGE_DEFAULTS.seed : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`--seed ${values.seed}: an integer from 0 to 4294967295`);
  return { dir: positionals[0], out: positionals[1], size, channels: values.grey ? 1 : 3, testFraction, seed };
}

/** Every file and folder under `dir`, as paths relative to it with '/'. */
async function walk(dir) {
  const files = [], folders = [];
  const visit = async (rel) => {
    let entries;
    try {
      entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (error) {
      throw new ImageSetError(`${path.join(dir, rel) || dir}: cannot read the folder (${error.code ?? error.message})`);
    }
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        folders.push(child);
        await visit(child);
      } else if (entry.isFile()) files.push(child);
    }
  };
  await visit('');
  return { files, folders };
}

/** sharp, loaded only when packing (the trainer does not need it). */
async function sharpDecoder() {
  let sharp;
  try {
    sharp = (await import('sharp')).default;
  } catch (error) {
    throw new Error(`the image decoder 'sharp' is not installed (${error.message}): run 'npm ci'`);
  }
  sharp.cache(false);
  return async (file) => {
    // ensureAlpha: always RGBA; no colour conversion or orientation: the bytes as stored, like
    // createImageBitmap with colorSpaceConversion 'none'.
    const { data, info } = await sharp(file, { failOn: 'error', limitInputPixels: false }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
  };
}

/** Packs `dir` into `out`; prints per-class counts and skipped files to `log`. Returns the metadata. */
export async function pack({ dir, out, size, channels, testFraction, seed }, log = (line) => process.stdout.write(`${line}\n`)) {
  const { files, folders } = await walk(dir);
  const decode = await sharpDecoder();
  const entries = files.map((rel) => ({ path: rel, file: path.join(dir, rel) }));
  const set = await packFolder(entries, folders, {
    size, channels, testFraction, seed, source: path.basename(path.resolve(dir)),
    decode: (item) => decode(item.file), concurrency: 2,
  });
  await mkdir(out, { recursive: true });
  // The metadata last, each file renamed into place: a folder with the metadata is complete.
  const put = async (name, bytes) => {
    const temp = path.join(out, `.${name}.partial`);
    await writeFile(temp, bytes);
    await rename(temp, path.join(out, name));
  };
  await put(TRAIN_FILE, set.train);
  await put(TEST_FILE, set.test);
  await put(META_FILE, `${JSON.stringify(set.meta, null, 1)}\n`);
  const { meta } = set;
  log(`Packed ${(meta.trainCount + meta.testCount).toLocaleString('en')} images of ${meta.classes} classes as ${meta.channels}x${meta.height}x${meta.width} into ${out} (${meta.trainCount} train, ${meta.testCount} test, seed ${seed}):`);
  const width = Math.max(...meta.classNames.map((n) => n.length));
  meta.classNames.forEach((name, i) => log(`  ${String(i).padStart(3)} ${name.padEnd(width)}  ${String(set.counts[i]).padStart(6)} images (${meta.counts.train[i]} train, ${meta.counts.test[i]} test)`));
  if (set.skipped.length) {
    log(`Skipped ${set.skipped.length} file${set.skipped.length === 1 ? '' : 's'}:`);
    for (const s of set.skipped) log(`  ${describeSkip(s)}`);
  }
  log(`Mean ${meta.mean.join(', ')}, std ${meta.std.join(', ')}. Train on it: npm run --silent train -- --data ${out}`);
  return meta;
}

export async function main(argv) {
  let options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`pack: ${error.message}\n${error instanceof UsageError ? '' : `${USAGE}\n`}`);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    await pack(options);
  } catch (error) {
    process.stderr.write(`pack: ${error.message}\n`);
    process.exitCode = 1;
  }
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href;
if (isMain) main(process.argv.slice(2));

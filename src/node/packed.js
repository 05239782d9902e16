// Reads a folder made by `npm run pack` (or kept by the page): its metadata file, then the train
// and test record files, each judged by its size before it is read. The CLI's one hook for image
// sets: loadPacked(dir) gives { train, test, format, classNames } like the other data sets.
import { existsSync } from 'node:fs';
import path from 'node:path';

import { readCheckedFile, FileRefusedError, atMost } from './files.js';
import { wholeRecords } from '../../web/file-limits.js';
import { META_FILE, checkMeta, formatOfMeta, recordsThatFit, ImageSetError } from '../../web/image-records.js';

/** A folder holding webtrain-images.json. */
export function isPackedDir(dir) {
  return existsSync(path.join(dir, META_FILE));
}

/** The metadata of a packed folder, checked; throws ImageSetError / FileRefusedError naming the file. */
export async function readPackedMeta(dir) {
  const file = path.join(dir, META_FILE);
  const text = new TextDecoder().decode(await readCheckedFile(file, 'image set metadata', atMost(1 << 20, 'image set metadata')));
  let meta;
  try {
    meta = JSON.parse(text);
  } catch (error) {
    throw new ImageSetError(`${file}: not valid JSON (${error.message})`);
  }
  return checkMeta(meta, file);
}

/**
 * The packed set in `dir`: { format (engine.js record format with classNames), classNames, meta,
 * trainFiles, testFiles: [{ name, bytes }] } ready for engine.loadDataset.
 */
export async function loadPacked(dir) {
  const meta = await readPackedMeta(dir);
  const format = formatOfMeta(meta);
  const fit = recordsThatFit(meta.recordBytes);
  const read = async (key, count) => {
    const file = path.join(dir, meta.files?.[key] ?? `${key}.bin`);
    const rule = wholeRecords(meta.recordBytes, fit, `${meta.channels}x${meta.height}x${meta.width} image record`);
    const bytes = await readCheckedFile(file, `${key} records`, rule);
    if (bytes.byteLength !== count * meta.recordBytes) {
      throw new FileRefusedError(`${file}: holds ${bytes.byteLength / meta.recordBytes} records, but ${META_FILE} says ${count}`);
    }
    return { name: file, bytes };
  };
  const trainFile = await read('train', meta.trainCount);
  const testFile = await read('test', meta.testCount);
  return { format, classNames: meta.classNames, meta, trainFiles: [trainFile], testFiles: [testFile] };
}

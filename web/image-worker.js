// The page's image decoder: a dropped folder's files (or a .zip/.tar of one) become uint8
// records here, off the main thread, with createImageBitmap and an OffscreenCanvas; then the set
// is split, described and kept in the Origin Private File System (image-store.js). A dropped
// folder made by `npm run pack` is only checked and kept.
//
// Page -> worker: { entries: [{ path, file }], folders: [path], archive: File | null, size,
//   channels, testFraction, seed, source }
// Worker -> page: { type: 'progress', done, total, skipped, firstSkipped, imagesPerSecond }
//   { type: 'done', meta, train, test (ArrayBuffers, transferred), skipped (the first few, named),
//     stored: { ok, message } }
//   { type: 'error', message }
import { packFolder, listNames, describeSkip, META_FILE, TRAIN_FILE, TEST_FILE, checkMeta, checkFits, ImageSetError } from './image-records.js';
import { listArchive } from './image-archive.js';
import { storeImageSet } from './image-store.js';

/** RGBA of an image as stored: no colour conversion, alpha not premultiplied by the decoder. */
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    return { data: context.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height };
  } finally {
    bitmap.close();
  }
}

/** A folder `npm run pack` made (or this page kept): checked, not decoded again. */
async function readPacked(entries) {
  const find = (name) => entries.find((e) => e.path.split('/').pop() === name);
  const metaFile = find(META_FILE);
  let meta;
  try {
    meta = JSON.parse(await metaFile.file.text());
  } catch (error) {
    throw new ImageSetError(`${metaFile.path}: not valid JSON (${error.message})`);
  }
  checkMeta(meta, metaFile.path);
  checkFits(meta.trainCount + meta.testCount, meta.recordBytes);
  const read = async (name, count) => {
    const entry = find(meta.files?.[name.replace('.bin', '')] ?? name);
    if (!entry) throw new ImageSetError(`${metaFile.path} is there but ${name} is missing: drop the whole folder 'npm run pack' made`);
    if (entry.file.size !== count * meta.recordBytes) throw new ImageSetError(`${entry.path}: ${entry.file.size} bytes, but ${META_FILE} says ${count} records of ${meta.recordBytes} bytes`);
    const buffer = await entry.file.arrayBuffer(), bytes = new Uint8Array(buffer);
    // Labels are checked here, before the set is kept, not only when a run loads it.
    for (let r = 0; r < count; r++) {
      const label = bytes[r * meta.recordBytes];
      if (label >= meta.classes) throw new ImageSetError(`${entry.path}: record ${r} has label ${label}, but there are ${meta.classes} classes`);
    }
    return buffer;
  };
  return { meta, train: await read(TRAIN_FILE, meta.trainCount), test: await read(TEST_FILE, meta.testCount), skipped: listNames((meta.skipped?.first ?? []).map(describeSkip), 3) };
}

async function build(message) {
  const { size, channels, testFraction, seed, source } = message;
  let { entries, folders = [] } = message;
  if (message.archive) {
    const listed = await listArchive(message.archive);
    entries = listed.files.map(({ path, blob, problem }) => ({ path, open: blob, problem }));
    folders = listed.folders;
  } else if (entries.some((e) => e.path.split('/').pop() === META_FILE)) {
    return readPacked(entries);
  }
  let lastDone = 0;
  const set = await packFolder(entries, folders, {
    size, channels, testFraction, seed, source,
    decode: async (item) => decode(item.file ?? await item.open()),
    onProgress: ({ done, total, skipped, elapsedMs }) => {
      if (done === lastDone && done !== total) return;
      lastDone = done;
      postMessage({
        type: 'progress', done, total, skipped: skipped.length,
        firstSkipped: listNames(skipped.map(describeSkip), 3),
        imagesPerSecond: elapsedMs > 0 ? (1000 * done) / elapsedMs : 0,
      });
    },
  });
  return { meta: set.meta, train: set.train.buffer, test: set.test.buffer, skipped: listNames(set.skipped.map(describeSkip), 3) };
}

onmessage = async ({ data }) => {
  try {
    const set = await build(data);
    set.meta.id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`; // runs name the set they trained on
    let stored;
    try {
      await storeImageSet(set.meta, set.train, set.test);
      stored = { ok: true, message: '' };
    } catch (error) {
      stored = { ok: false, message: error.message };
    }
    postMessage({ type: 'done', ...set, stored }, [set.train, set.test]);
  } catch (error) {
    postMessage({ type: 'error', message: error instanceof ImageSetError ? error.message : `${error.name}: ${error.message}` });
  }
};

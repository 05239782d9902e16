// Keeps the last image set (records and metadata) in the Origin Private File System, so a reload
// neither decodes again nor asks for the folder again. One set at a time, in one folder; the
// metadata is written last and removed first, so a set without it is never read half-written.
import { META_FILE, TRAIN_FILE, TEST_FILE, checkMeta } from './image-records.js';
import { formatBytes } from './format.js';

const FOLDER = 'webtrain-images';

export const opfsAvailable = typeof navigator === 'object' && typeof navigator.storage?.getDirectory === 'function';

/** A storage failure the user can act on: says how much space is needed. */
export class StorageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StorageError';
  }
}

async function folder(create) {
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(FOLDER, { create });
  } catch (error) {
    if (!create && error.name === 'NotFoundError') return null;
    throw error;
  }
}

async function writeFile(dir, name, data) {
  const handle = await dir.getFileHandle(name, { create: true });
  if (typeof handle.createWritable === 'function') {
    const writable = await handle.createWritable();
    try {
      await writable.write(data);
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => {});
      throw error;
    }
    return;
  }
  // Safari has only the synchronous handle, and only in workers (this runs in image-worker.js).
  const access = await handle.createSyncAccessHandle();
  try {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    access.truncate(0);
    if (access.write(bytes, { at: 0 }) !== bytes.byteLength) throw new DOMException('short write', 'QuotaExceededError');
    access.flush();
  } finally {
    access.close();
  }
}

/** Bytes the stored set takes now (0 when none). */
export async function storedImageBytes() {
  if (!opfsAvailable) return 0;
  const dir = await folder(false).catch(() => null);
  if (!dir) return 0;
  let total = 0;
  for await (const handle of dir.values()) if (handle.kind === 'file') total += (await handle.getFile()).size;
  return total;
}

/**
 * Replaces the stored set. Throws StorageError, after removing what it wrote, when the browser
 * has no room: the message says how much is needed and how much is free.
 */
export async function storeImageSet(meta, train, test) {
  if (!opfsAvailable) throw new StorageError('this browser has no Origin Private File System: the images are not kept across reloads');
  const metaText = JSON.stringify(meta);
  const needed = train.byteLength + test.byteLength + metaText.length;
  const refuse = (why) => new StorageError(`the images are not kept across reloads: storing them needs ${formatBytes(needed)}, and ${why} (free space in the browser's storage, or use fewer or smaller images)`);
  let free = Infinity;
  try {
    const replaced = await storedImageBytes();
    const estimate = await navigator.storage.estimate?.().catch(() => null);
    if (estimate) free = estimate.quota - estimate.usage + replaced;
    if (needed > free) throw refuse(`this site may store only ${formatBytes(Math.max(0, free))} more`);
    await clearImageSet();
    const dir = await folder(true);
    await writeFile(dir, TRAIN_FILE, train);
    await writeFile(dir, TEST_FILE, test);
    await writeFile(dir, META_FILE, metaText);
  } catch (error) {
    if (error instanceof StorageError) throw error;
    await clearImageSet().catch(() => {});
    if (error.name === 'QuotaExceededError') throw refuse(`the browser refused the space${Number.isFinite(free) ? ` (it reports ${formatBytes(Math.max(0, free))} free)` : ''}`);
    throw new StorageError(`the images are not kept across reloads: writing them failed (${error.name}: ${error.message})`);
  }
}

/** The stored set's metadata, or null (none, or unreadable: then it is removed). */
export async function storedImageMeta() {
  if (!opfsAvailable) return null;
  const dir = await folder(false).catch(() => null);
  if (!dir) return null;
  try {
    const file = await (await dir.getFileHandle(META_FILE)).getFile();
    return checkMeta(JSON.parse(await file.text()), `the stored ${META_FILE}`);
  } catch {
    return null;
  }
}

/** The stored records: { train, test } ArrayBuffers, checked against the metadata's counts. */
export async function readImageSet(meta) {
  const dir = await folder(false);
  if (!dir) throw new StorageError('the stored images are gone (the browser\'s storage was cleared): drop the folder again');
  const read = async (name, count) => {
    const file = await (await dir.getFileHandle(name)).getFile();
    if (file.size !== count * meta.recordBytes) throw new StorageError(`the stored ${name} has ${file.size} bytes, not ${count} records: drop the folder again`);
    return file.arrayBuffer();
  };
  return { train: await read(TRAIN_FILE, meta.trainCount), test: await read(TEST_FILE, meta.testCount) };
}

export async function clearImageSet() {
  if (!opfsAvailable) return;
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(FOLDER, { recursive: true }).catch((error) => {
    if (error.name !== 'NotFoundError') throw error;
  });
}

// Where the page gets the six CIFAR-10 files: fetched from a base URL with per-file progress (kept
// in Cache Storage so a reload doesn't fetch 180 MB again), or dropped/picked as the .bin files or
// the official cifar-10-binary.tar.gz, which is gunzipped and untarred here.
import { ALL_FILES, OFFICIAL_ARCHIVE } from './cifar.js';
import { RECORDS_RULE, ARCHIVE_RULE, FileSizeError, judgeSize, declaredLength, readResponse, readBlob } from './file-limits.js';
import { describeFetchFailure, notFoundAdvice } from './data-errors.js';

const CACHE_NAME = 'webtrain-cifar-10';
const WHAT = 'CIFAR-10 file';

/** A failure the user can act on; the message names the URL or file. */
export class DataError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DataError';
  }
}

/** Cache Storage exists only in secure contexts (https, localhost). */
export const cacheAvailable = typeof caches === 'object' && typeof isSecureContext === 'boolean' && isSecureContext;

/** The absolute URL of each file under `base` (resolved against the page). */
export function fileUrls(base) {
  const dir = new URL(base.endsWith('/') ? base : `${base}/`, document.baseURI);
  return ALL_FILES.map((name) => new URL(name, dir).href);
}

/**
 * Fetches the six files under `base`; onProgress(name, loaded, total, fromCache) after every
 * chunk. Returns Map(name -> ArrayBuffer). Throws DataError naming the URL that failed.
 * Downloaded files are written to Cache Storage in the background: the promise of each write
 * (never rejecting) is pushed onto `cacheWrites`.
 */
export async function fetchFiles(base, { onProgress = () => {}, signal, cacheWrites = [] } = {}) {
  const urls = fileUrls(base);
  const cache = cacheAvailable ? await caches.open(CACHE_NAME).catch(() => null) : null;
  // The first failure cancels the other downloads, as does the caller's signal.
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal?.addEventListener('abort', abort);
  // Two at a time: keeps the connection busy without six 30 MB bodies in flight at once.
  const results = new Map();
  let next = 0;
  const worker = async () => {
    while (next < urls.length && !controller.signal.aborted) {
      const i = next++;
      results.set(ALL_FILES[i], await fetchOne(urls[i], ALL_FILES[i], cache, onProgress, controller.signal, cacheWrites));
    }
  };
  try {
    await Promise.all([worker(), worker()].map((p) => p.catch((error) => { abort(); throw error; })));
  } catch (error) {
    // A file refused for its size must not leave the rest of its set in the cache.
    if (error instanceof FileSizeError) {
      await Promise.all(cacheWrites);
      await clearCache(base).catch(() => {});
    }
    throw error;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  if (signal?.aborted) throw new DOMException('stopped', 'AbortError');
  return new Map(ALL_FILES.map((name) => [name, results.get(name)]));
}

async function fetchOne(url, name, cache, onProgress, signal, cacheWrites) {
  const cached = await cache?.match(url).catch(() => null);
  if (cached) {
    const buffer = await readResponse(cached, url, WHAT, RECORDS_RULE);
    onProgress(name, buffer.byteLength, buffer.byteLength, true);
    return buffer;
  }
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new DataError(await describeFetchFailure(url, error));
  }
  if (!response.ok) {
    throw new DataError(`${url}: HTTP ${response.status} ${response.statusText || ''}`.trim()
      + (response.status === 404 ? notFoundAdvice() : ''));
  }
  // The size is judged from Content-Length before anything is read or cached. The cache gets its
  // own branch of the body, so the bytes are not copied by our code. Its write (about a second
  // for 30 MB) finishes in the background: neither the next download nor the training waits for
  // it, and a failed write (a refused or aborted download errors both branches) stores nothing.
  declaredLength(response, url, WHAT, RECORDS_RULE);
  if (cache) cacheWrites.push(cache.put(url, response.clone()).catch(() => {}));
  return readResponse(response, url, WHAT, RECORDS_RULE, (loaded, total) => onProgress(name, loaded, total, false));
}

/** Removes cached files under `base` (after they failed validation) or, without base, all. */
export async function clearCache(base) {
  if (!cacheAvailable) return;
  if (!base) {
    await caches.delete(CACHE_NAME);
    return;
  }
  const cache = await caches.open(CACHE_NAME);
  await Promise.all(fileUrls(base).map((url) => cache.delete(url)));
}

/** Bytes held in the cache. */
export async function cachedBytes() {
  if (!cacheAvailable) return null;
  const cache = await caches.open(CACHE_NAME);
  let total = 0;
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    const length = Number(response?.headers.get('content-length'));
    total += length || (response ? (await response.blob()).size : 0);
  }
  return total;
}

/**
 * Reads dropped or picked files: the six .bin files, or the official archive (.tar.gz / .tgz /
 * .tar). onProgress(name, loaded, total). Returns Map(name -> ArrayBuffer) with all six files.
 */
export async function readLocalFiles(fileList, { onProgress = () => {} } = {}) {
  const files = [...fileList];
  const archive = files.find((f) => /\.(tar\.gz|tgz|tar)$/i.test(f.name));
  const found = new Map();
  if (archive) {
    await untarCifar(archive, found, onProgress);
  } else {
    const wanted = files.filter((file) => ALL_FILES.includes(file.name.replace(/^.*[\\/]/, '')));
    // Every file is judged by its size before any is read.
    for (const file of wanted) {
      const verdict = judgeSize(RECORDS_RULE, file.size, null, WHAT);
      if (verdict.problem) throw new FileSizeError(`${file.name}: ${verdict.problem}`);
    }
    for (const file of wanted) {
      const name = file.name.replace(/^.*[\\/]/, '');
      found.set(name, await readBlob(file, file.name, WHAT, RECORDS_RULE));
      onProgress(name, file.size, file.size);
    }
  }
  const missing = ALL_FILES.filter((name) => !found.has(name));
  if (missing.length) {
    const what = archive ? `${archive.name} has no` : 'missing';
    const got = archive ? '' : ` (got: ${files.map((f) => f.name).join(', ') || 'nothing'})`;
    throw new DataError(`${what} ${missing.join(', ')}${got}. Drop the six CIFAR-10 .bin files together, or ${OFFICIAL_ARCHIVE}.`);
  }
  return found;
}

/** Streams the archive through gunzip and a tar reader, keeping only the six CIFAR files. */
async function untarCifar(file, found, onProgress) {
  const verdict = judgeSize(ARCHIVE_RULE, file.size, null, 'CIFAR-10 archive');
  if (verdict.problem) throw new FileSizeError(`${file.name}: ${verdict.problem}`);
  let stream = file.stream();
  if (!/\.tar$/i.test(file.name)) {
    if (typeof DecompressionStream !== 'function') throw new DataError(`${file.name}: this browser cannot gunzip (no DecompressionStream); extract it and drop the six .bin files`);
    stream = stream.pipeThrough(new DecompressionStream('gzip'));
  }
  const tar = new TarReader((name, bytes) => {
    const base = name.replace(/^.*\//, '');
    if (ALL_FILES.includes(base)) found.set(base, bytes.buffer);
  }, (name, loaded, total) => {
    const base = name.replace(/^.*\//, '');
    if (ALL_FILES.includes(base)) onProgress(base, loaded, total);
  });
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      tar.push(value);
      if (tar.ended) break;
    }
  } catch (error) {
    if (error instanceof DataError || error instanceof FileSizeError) throw new DataError(`${file.name}: ${error.message}`);
    throw new DataError(`${file.name}: not a readable gzip archive (${error.message})`);
  }
  if (!tar.ended && tar.inMember) throw new DataError(`${file.name}: the archive is truncated`);
}

/** The longest GNU long name kept (Linux paths are at most 4096 bytes). */
const LONG_NAME_CEILING = 65536;

/**
 * A streaming reader of POSIX/GNU tar: headers are 512-byte blocks, each member's data is padded
 * to a multiple of 512, and two zero blocks end the archive.
 */
class TarReader {
  constructor(onFile, onProgress) {
    this.onFile = onFile;
    this.onProgress = onProgress;
    this.header = new Uint8Array(512);
    this.headerFill = 0;
    this.member = null;  // { name, data: Uint8Array|null, size, written }
    this.skip = 0;       // padding bytes still to skip
    this.longName = null;
    this.ended = false;
  }

  get inMember() { return this.member !== null || this.skip > 0; }

  push(chunk) {
    let pos = 0;
    while (pos < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
      } else if (this.member) {
        const m = this.member;
        const n = Math.min(m.size - m.written, chunk.length - pos);
        if (m.data) m.data.set(chunk.subarray(pos, pos + n), m.written);
        m.written += n;
        pos += n;
        if (m.data) this.onProgress(m.name, m.written, m.size);
        if (m.written === m.size) this.#endMember();
      } else {
        const n = Math.min(512 - this.headerFill, chunk.length - pos);
        this.header.set(chunk.subarray(pos, pos + n), this.headerFill);
        this.headerFill += n;
        pos += n;
        if (this.headerFill === 512) {
          this.headerFill = 0;
          this.#startMember();
        }
      }
    }
  }

  #startMember() {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      this.ended = true; // the first of the two end blocks is enough
      return;
    }
    const text = (start, length) => {
      let end = start;
      while (end < start + length && h[end] !== 0) end++;
      return new TextDecoder().decode(h.subarray(start, end));
    };
    const sizeText = text(124, 12).trim();
    const size = parseInt(sizeText || '0', 8);
    if (!Number.isFinite(size) || /[^0-7 ]/.test(sizeText)) throw new DataError('not a tar archive (bad header)');
    const type = String.fromCharCode(h[156] || 48);
    const prefix = text(257, 6).startsWith('ustar') ? text(345, 155) : '';
    let name = prefix ? `${prefix}/${text(0, 100)}` : text(0, 100);
    if (this.longName) { name = this.longName; this.longName = null; }
    const isFile = type === '0' || type === '7';
    const isLongName = type === 'L';
    const wanted = isFile && /(^|\/)(data_batch_[1-5]|test_batch)\.bin$/.test(name);
    // A member is judged by the size its header gives before room is made for it.
    if (wanted) {
      const verdict = judgeSize(RECORDS_RULE, size, null, WHAT);
      if (verdict.problem) throw new FileSizeError(`${name}: ${verdict.problem}`);
    }
    if (isLongName && size > LONG_NAME_CEILING) throw new DataError(`a long file name of ${size} bytes, more than the ${LONG_NAME_CEILING} allowed`);
    this.member = { name, size, written: 0, data: wanted || isLongName ? new Uint8Array(size) : null, isLongName };
    if (size === 0) this.#endMember();
  }

  #endMember() {
    const m = this.member;
    this.member = null;
    this.skip = (512 - (m.size % 512)) % 512;
    if (m.isLongName) this.longName = new TextDecoder().decode(m.data).replace(/\0.*$/s, '');
    else if (m.data) this.onFile(m.name, m.data);
  }
}

// Where the page gets a data set's files (web/datasets.js): fetched from a base URL with per-file
// progress (kept in Cache Storage so a reload doesn't fetch them again), or dropped/picked as the
// files or the official archive (.tar.gz), which is gunzipped and untarred here. Gzipped IDX files
// are gunzipped with DecompressionStream, within the plain file's ceiling.
import { DATASETS, plainNameOf, gzipRule, isGzip, describeFiles } from './datasets.js';
import { ARCHIVE_RULE, FileSizeError, atMost, judgeSize, declaredLength, readResponse, readBlob } from './file-limits.js';
import { describeFetchFailure, notFoundAdvice } from './data-errors.js';

const CACHE_NAME = 'webtrain-cifar-10'; // the first data set's name, kept so stored copies stay found
const CIFAR10 = DATASETS.cifar10;

/** A failure the user can act on; the message names the URL or file. */
export class DataError extends Error {
  /** `bad`: the file's bytes are wrong (not the network): a cached copy must go. */
  constructor(message, { bad = false } = {}) {
    super(message);
    this.name = 'DataError';
    this.bad = bad;
  }
}

/** Cache Storage exists only in secure contexts (https, localhost). */
export const cacheAvailable = typeof caches === 'object' && typeof isSecureContext === 'boolean' && isSecureContext;

/** "CIFAR-10 file", "MNIST file": what a file is called in size messages. */
const whatOf = (dataset) => `${dataset.title.replace(/ \(.*/, '')} file`;

/**
 * The URLs each of the data set's files may have under `base`: [[url, ...]] per file, in the order
 * tried (a gzipped IDX file first, as the official sites serve them).
 */
export function fileUrls(base, dataset = CIFAR10) {
  const dir = new URL(base.endsWith('/') ? base : `${base}/`, document.baseURI);
  return dataset.files.map((name) => (dataset.gzip ? [`${name}.gz`, name] : [name]).map((n) => new URL(n, dir).href));
}

/** The size rule of a file's bytes as they arrive: gzipped, or the plain file's own. */
const arrivalRule = (dataset, plain, gzipped) => (gzipped ? gzipRule(dataset, plain) : dataset.rule(plain));

/**
 * Fetches the data set's files under `base`; onProgress(name, loaded, total, fromCache) after
 * every chunk. Returns Map(plain name -> Uint8Array), gunzipped. Throws DataError naming the URL
 * that failed. Downloaded files are written to Cache Storage in the background: the promise of
 * each write (never rejecting) is pushed onto `cacheWrites`.
 */
export async function fetchFiles(base, { dataset = CIFAR10, onProgress = () => {}, signal, cacheWrites = [] } = {}) {
  const urls = fileUrls(base, dataset);
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
      const name = dataset.files[i];
      results.set(name, await fetchFirst(urls[i], name, dataset, cache, onProgress, controller.signal, cacheWrites));
    }
  };
  try {
    await Promise.all([worker(), worker()].map((p) => p.catch((error) => { abort(); throw error; })));
  } catch (error) {
    // A file refused for its size must not leave the rest of its set in the cache.
    if (error instanceof FileSizeError || error.bad) {
      await Promise.all(cacheWrites);
      await clearCache(base, dataset).catch(() => {});
    }
    throw error;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  if (signal?.aborted) throw new DOMException('stopped', 'AbortError');
  return new Map(dataset.files.map((name) => [name, results.get(name)]));
}

/** The first of a file's URLs that exists (a 404 tries the next), gunzipped when gzipped. */
async function fetchFirst(urls, name, dataset, cache, onProgress, signal, cacheWrites) {
  for (let i = 0; i < urls.length; i++) {
    const gzipped = urls[i].endsWith('.gz');
    const bytes = await fetchOne(urls[i], name, arrivalRule(dataset, name, gzipped), dataset, cache, onProgress, signal, cacheWrites, i < urls.length - 1);
    if (bytes) return plainBytes(bytes, urls[i], dataset, name);
  }
  return null; // not reached: the last URL's 404 throws
}

/** One URL's bytes, or null for a 404 when `orNext` (another URL is to be tried). */
async function fetchOne(url, name, rule, dataset, cache, onProgress, signal, cacheWrites, orNext) {
  const what = whatOf(dataset);
  const cached = await cache?.match(url).catch(() => null);
  if (cached) {
    const buffer = await readResponse(cached, url, what, rule);
    onProgress(name, buffer.byteLength, buffer.byteLength, true);
    return new Uint8Array(buffer);
  }
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new DataError(await describeFetchFailure(url, error));
  }
  if (response.status === 404 && orNext) {
    response.body?.cancel().catch(() => {});
    return null;
  }
  if (!response.ok) {
    throw new DataError(`${url}: HTTP ${response.status} ${response.statusText || ''}`.trim()
      + (response.status === 404 ? notFoundAdvice(dataset) : ''));
  }
  // The size is judged from Content-Length before anything is read or cached. The cache gets its
  // own branch of the body, so the bytes are not copied by our code. Its write (about a second
  // for 30 MB) finishes in the background: neither the next download nor the training waits for
  // it, and a failed write (a refused or aborted download errors both branches) stores nothing.
  declaredLength(response, url, what, rule);
  // Not once another file failed: its clean-up may already have swept the cache, and a small body
  // received whole before the abort would still be stored.
  if (signal.aborted) throw new DOMException('stopped', 'AbortError');
  if (cache) cacheWrites.push(cache.put(url, response.clone()).catch(() => {}));
  return new Uint8Array(await readResponse(response, url, what, rule, (loaded, total) => onProgress(name, loaded, total, false)));
}

/**
 * A file's plain bytes: gunzipped when they start as gzip does (whatever the name says: a server
 * may have gunzipped them already), then judged by the plain file's rule. `name` names it in errors.
 */
export async function plainBytes(bytes, name, dataset, plain) {
  const rule = dataset.rule(plain);
  if (!isGzip(bytes)) {
    if (rule.headBytes) { // an IDX file states its size: judge it now (records are judged in C)
      const verdict = judgeSize(rule, bytes.length, bytes.subarray(0, rule.headBytes), whatOf(dataset));
      if (verdict.problem) throw new DataError(`${name}: ${verdict.problem}`, { bad: true });
    }
    return bytes;
  }
  if (!dataset.gzip) throw new DataError(`${name}: is gzipped; ${dataset.title} files are not (drop the archive, or the extracted files)`);
  if (typeof DecompressionStream !== 'function') throw new DataError(`${name}: this browser cannot gunzip (no DecompressionStream); gunzip the files and drop them`);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const chunks = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > rule.ceiling) {
        reader.cancel().catch(() => {});
        throw new FileSizeError(`${name}: more than ${rule.ceiling} bytes once gunzipped, the ceiling for a ${whatOf(dataset)}`);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof FileSizeError) throw error;
    throw new DataError(`${name}: not a readable gzip file (${error.message})`, { bad: true });
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  const verdict = judgeSize(rule, total, out.subarray(0, rule.headBytes), whatOf(dataset));
  if (verdict.problem) throw new DataError(`${name}: ${verdict.problem} (once gunzipped)`, { bad: true });
  return out;
}

/** Removes cached files of `dataset` under `base` (after they failed validation) or, without base, all. */
export async function clearCache(base, dataset = CIFAR10) {
  if (!cacheAvailable) return;
  if (!base) {
    await caches.delete(CACHE_NAME);
    return;
  }
  const cache = await caches.open(CACHE_NAME);
  await Promise.all(fileUrls(base, dataset).flat().map((url) => cache.delete(url)));
}

/** Whether every file of `dataset` under `base` is in the cache (under one of its URLs). */
export async function allCached(base, dataset = CIFAR10) {
  if (!cacheAvailable) return false;
  const hits = await Promise.all(fileUrls(base, dataset).map(async (urls) => (await Promise.all(urls.map((url) => caches.match(url)))).some(Boolean)));
  return hits.every(Boolean);
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
 * Reads dropped or picked files of `dataset`: its files (IDX ones gzipped or not), or its
 * official archive (.tar.gz / .tgz / .tar). onProgress(name, loaded, total). Returns
 * Map(plain name -> Uint8Array) with all of the data set's files.
 */
export async function readLocalFiles(fileList, { dataset = CIFAR10, onProgress = () => {} } = {}) {
  const files = [...fileList];
  const archive = files.find((f) => /\.(tar\.gz|tgz|tar)$/i.test(f.name));
  const found = new Map();
  if (archive) {
    await untar(archive, dataset, found, onProgress);
    for (const [plain, { name, bytes }] of found) found.set(plain, await plainBytes(bytes, name, dataset, plain));
  } else {
    const wanted = files.filter((file) => plainNameOf(dataset, file.name));
    const ruleOf = (file) => {
      const plain = plainNameOf(dataset, file.name);
      const rule = arrivalRule(dataset, plain, file.name.endsWith('.gz'));
      // An IDX file's header is judged once read; its size is bounded now.
      return rule.headBytes ? atMost(rule.ceiling, whatOf(dataset)) : rule;
    };
    // Every file is judged by its size before any is read.
    for (const file of wanted) {
      const verdict = judgeSize(ruleOf(file), file.size, null, whatOf(dataset));
      if (verdict.problem) throw new FileSizeError(`${file.name}: ${verdict.problem}`);
    }
    for (const file of wanted) {
      const plain = plainNameOf(dataset, file.name);
      const bytes = new Uint8Array(await readBlob(file, file.name, whatOf(dataset), ruleOf(file)));
      found.set(plain, await plainBytes(bytes, file.name, dataset, plain));
      onProgress(plain, file.size, file.size);
    }
  }
  const missing = dataset.files.filter((name) => !found.has(name));
  if (missing.length) {
    const what = archive ? `${archive.name} has no` : 'missing';
    const got = archive ? '' : ` (got: ${files.map((f) => f.name).join(', ') || 'nothing'})`;
    const drop = dataset.archive ? `, or ${dataset.archive}` : '';
    throw new DataError(`${what} ${missing.join(', ')}${got}. Drop the ${dataset.title} files together (${describeFiles(dataset)})${drop}.`);
  }
  return found;
}

/** Streams the archive through gunzip and a tar reader, keeping only the data set's files. */
async function untar(file, dataset, found, onProgress) {
  const verdict = judgeSize(ARCHIVE_RULE, file.size, null, `${dataset.title.replace(/ \(.*/, '')} archive`);
  if (verdict.problem) throw new FileSizeError(`${file.name}: ${verdict.problem}`);
  let stream = file.stream();
  if (!/\.tar$/i.test(file.name)) {
    if (typeof DecompressionStream !== 'function') throw new DataError(`${file.name}: this browser cannot gunzip (no DecompressionStream); extract it and drop the files`);
    stream = stream.pipeThrough(new DecompressionStream('gzip'));
  }
  // A member is judged by the size its header gives before room is made for it.
  const ruleOf = (name) => {
    const plain = plainNameOf(dataset, name);
    if (!plain) return null;
    const rule = arrivalRule(dataset, plain, name.endsWith('.gz'));
    return rule.headBytes ? atMost(rule.ceiling, whatOf(dataset)) : rule;
  };
  const tar = new TarReader((name, bytes) => {
    const plain = plainNameOf(dataset, name);
    if (plain) found.set(plain, { name: `${file.name}: ${name}`, bytes });
  }, (name, loaded, total) => {
    const plain = plainNameOf(dataset, name);
    if (plain) onProgress(plain, loaded, total);
  }, ruleOf, whatOf(dataset));
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
  /** ruleOf(name): the size rule of a member to keep, or null to skip it; `what` names its kind. */
  constructor(onFile, onProgress, ruleOf, what) {
    this.onFile = onFile;
    this.onProgress = onProgress;
    this.ruleOf = ruleOf;
    this.what = what;
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
    const rule = isFile ? this.ruleOf(name) : null;
    const wanted = rule !== null;
    // A member is judged by the size its header gives before room is made for it.
    if (wanted) {
      const verdict = judgeSize(rule, size, null, this.what);
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

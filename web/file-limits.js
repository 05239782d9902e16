// The size rule of every file webtrain reads, and the page's readers that apply them: a file or a
// download is judged by its size before its bytes are read, and a download of unknown length is
// stopped at its format's ceiling. The CLI and the server apply the same rules (src/node/files.js).
import { CIFAR10_FORMAT } from './engine.js';

const RECORD_BYTES = CIFAR10_FORMAT.recordBytes;
/** SimpleCNN's 62,006 parameters: its raw weights file and version 1 checkpoints. */
const SIMPLECNN_WEIGHTS_BYTES = 62006 * 4;

/**
 * A size rule is { ceiling, headBytes, judge }: `ceiling` bounds a read whose size is
 * not known in advance; `head` holds the first `headBytes` bytes (fewer in a shorter file) for a
 * format that states its own size; judge(size, head, what) returns the number of bytes to read
 * (at most `size`) or why a file of that size is refused, as the text after "NAME: ". A new
 * reader states its rule, nothing else.
 */

/** Exactly `bytes` bytes, e.g. a weights file. `label` names the format: 'a SimpleCNN weights file'. */
export function exactSize(bytes, label) {
  return {
    ceiling: bytes,
    headBytes: 0,
    judge: (size, head, what) => (size === bytes ? size : `${what} is ${size} bytes; ${label} is ${bytes} bytes`),
  };
}

/** A whole, non-zero number of fixed-size records, at most `maxRecords` of them. */
export function wholeRecords(recordBytes, maxRecords, label) {
  return {
    ceiling: recordBytes * maxRecords,
    headBytes: 0,
    judge: (size) => {
      const whole = Math.floor(size / recordBytes), left = size % recordBytes;
      if (left) return `size ${size} bytes is not a multiple of the ${recordBytes}-byte ${label} (${whole} whole record${whole === 1 ? '' : 's'} and ${left} byte${left === 1 ? '' : 's'} left over)`;
      if (whole > maxRecords) return `size ${size} bytes is ${whole} records, more than the ${maxRecords} a file may hold (${recordBytes * maxRecords} bytes)`;
      return size;
    },
  };
}

/** Any size up to `ceiling` bytes, for formats without a fixed size (archives, text, images). */
export function atMost(ceiling, label) {
  return {
    ceiling,
    headBytes: 0,
    judge: (size, head, what) => (size <= ceiling ? size : `${what} is ${size} bytes, more than the ${ceiling}-byte ceiling for ${label}`),
  };
}

/** The most records a CIFAR-10 file may hold: the whole training set in one file. */
export const MAX_RECORDS_PER_FILE = 60000;
export const RECORDS_RULE = wholeRecords(RECORD_BYTES, MAX_RECORDS_PER_FILE, 'CIFAR-10 record');
/** A raw weights file of a net with `paramCount` parameters. */
export const weightsRule = (paramCount, label = 'this net\'s weights file') => exactSize(4 * paramCount, label);
export const WEIGHTS_RULE = weightsRule(62006, 'a SimpleCNN weights file');
/** A model description (text). */
export const DESCRIPTION_RULE = atMost(100000, 'a model description');
/** A dropped cifar-10-binary.tar.gz (the official one is 170 MB). */
export const ARCHIVE_RULE = atMost(1 << 30, 'a CIFAR-10 archive');

/** The largest checkpoint read (versions 2 and 3 embed the model, so their size varies). */
export const CHECKPOINT_CEILING = 1 << 30;
const CHECKPOINT_MAGIC = [0x57, 0x54, 0x43, 0x4b, 0x50, 0x54, 0x0d, 0x0a]; // "WTCKPT\r\n"
/** Version 1 is SimpleCNN's fixed layout: 128-byte header, params and Adam's m and v, CRC-32. */
const CHECKPOINT_V1_BYTES = 128 + 3 * SIMPLECNN_WEIGHTS_BYTES + 4;
/** Enough of a file with an unknown version for the C loader to name the version it refuses. */
const CHECKPOINT_PREFIX_BYTES = 4096;

/**
 * A checkpoint states its size in its header: version 1 is 744,204 bytes; versions 2 and 3 hold its
 * total size as a u64 at offset 16 (magic, u32 version, u32 header size, u64 file size). A file
 * that is no checkpoint, or of another version, is read only as far as the C loader needs to say so.
 */
export const CHECKPOINT_RULE = {
  ceiling: CHECKPOINT_CEILING,
  headBytes: 24,
  judge(size, head, what) {
    if (head.length < 12 || CHECKPOINT_MAGIC.some((b, i) => head[i] !== b)) return Math.min(size, CHECKPOINT_PREFIX_BYTES);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const version = view.getUint32(8, true);
    let expected;
    if (version === 1) expected = CHECKPOINT_V1_BYTES;
    else if ((version === 2 || version === 3) && head.length >= 24) expected = Number(view.getBigUint64(16, true));
    else return Math.min(size, CHECKPOINT_PREFIX_BYTES);
    if (expected > CHECKPOINT_CEILING) return `${what} is ${size} bytes, and its header says ${expected}: more than the ${CHECKPOINT_CEILING}-byte ceiling for a checkpoint`;
    if (size !== expected) return `checkpoint ${size < expected ? 'truncated' : 'has trailing bytes'}: ${size} bytes, expected ${expected} (version ${version})`;
    return size;
  },
};

/** safetensors' own limit on its JSON header (MAX_HEADER_SIZE in the format's reader). */
const SAFETENSORS_MAX_HEADER = 100_000_000;

/**
 * A safetensors file: a u64 header length, the header, the tensors. The header length is judged
 * first (at most the format's 100 MB, within the file); with `dataBytes`, the tensor bytes this
 * model's file holds, a file holding more is refused before it is read. Without it (the model is
 * not known yet), up to the checkpoint ceiling. A file shorter than it says is read whole, for
 * the reader to say what is missing.
 */
export function safetensorsRule(dataBytes = null) {
  const ceiling = dataBytes === null ? CHECKPOINT_CEILING : 8 + SAFETENSORS_MAX_HEADER + dataBytes;
  return {
    ceiling,
    headBytes: 8,
    judge(size, head, what) {
      if (size > ceiling) return `${what} is ${size} bytes, more than the ${ceiling}-byte ceiling for ${dataBytes === null ? 'a safetensors file' : 'this model\'s safetensors file'}`;
      if (head.length < 8) return size;
      const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
      if (n > BigInt(SAFETENSORS_MAX_HEADER)) return `its header length ${n} is more than the ${SAFETENSORS_MAX_HEADER}-byte limit of the safetensors format: not a safetensors file?`;
      if (n < 2n) return 8; // no header at all: the reader says so from the length alone
      const tensorBytes = size - 8 - Number(n);
      if (dataBytes !== null && tensorBytes > dataBytes) return `holds ${tensorBytes} bytes of tensors after its header, more than this model's ${dataBytes}: it is another model's file, or has trailing bytes`;
      return size;
    },
  };
}

/** The file or download was refused for its size; the message names it. */
export class FileSizeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FileSizeError';
  }
}

/** A download that broke off; not a verdict on the file. */
export class DownloadError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DownloadError';
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Applies `rule` to a file of `size` bytes whose first bytes are `head`. Returns { bytes } to read,
 * or { problem }: the text after "NAME: ". An empty file is refused whatever the rule.
 */
export function judgeSize(rule, size, head, what) {
  if (size === 0) return { problem: `file is empty (0 bytes), expected a ${what}` };
  const verdict = rule.judge(size, head ?? EMPTY, what);
  return typeof verdict === 'string' ? { problem: verdict } : { bytes: verdict };
}

/** Reads a File or Blob the page was given, after judging its size: one copy, or a refusal. */
export async function readBlob(blob, name, what, rule) {
  const head = rule.headBytes ? new Uint8Array(await blob.slice(0, rule.headBytes).arrayBuffer()) : EMPTY;
  const verdict = judgeSize(rule, blob.size, head, what);
  if (verdict.problem) throw new FileSizeError(`${name}: ${verdict.problem}`);
  return (verdict.bytes === blob.size ? blob : blob.slice(0, verdict.bytes)).arrayBuffer();
}

/**
 * The Content-Length of a Response (null when absent, or when the body is compressed: it then
 * says nothing of the decoded size), refused unless `rule` accepts it; the body is then cancelled.
 */
export function declaredLength(response, url, what, rule) {
  const encoding = response.headers.get('content-encoding');
  const text = encoding && encoding !== 'identity' ? null : response.headers.get('content-length');
  if (text === null || !/^\d+$/.test(text.trim())) return null;
  const declared = Number(text);
  let problem = null;
  if (declared > rule.ceiling) problem = `its Content-Length of ${declared} bytes is more than the ${rule.ceiling}-byte ceiling for a ${what}`;
  // A rule that reads its own header (a checkpoint) can only judge the bytes themselves.
  else if (!rule.headBytes) problem = judgeSize(rule, declared, EMPTY, what).problem;
  if (!problem) return declared;
  if (!response.bodyUsed) response.body?.cancel().catch(() => {});
  throw new FileSizeError(`${url}: ${problem}${problem.includes('Content-Length') ? '' : ' (its Content-Length)'}`);
}

/**
 * Reads a fetched Response into one ArrayBuffer. Its Content-Length is judged before the body is
 * read, and the body must then be exactly that long; without one (or with a compressed body, whose
 * length says nothing of the decoded size) the body is read up to the rule's ceiling and judged
 * at its end. `url` names it in errors; onChunk(loaded, total) follows the download.
 */
export async function readResponse(response, url, what, rule, onChunk = () => {}) {
  const declared = declaredLength(response, url, what, rule);
  let reader = null;
  const refuse = (message) => {
    reader?.cancel().catch(() => {});
    return new FileSizeError(`${url}: ${message}`);
  };
  const limit = declared ?? rule.ceiling;
  // With a known length the bytes go straight into their one buffer; otherwise chunks are kept
  // until the end and joined once (the chunks are dropped as they are copied).
  const buffer = declared !== null ? new Uint8Array(declared) : null;
  const chunks = [];
  let loaded = 0;
  reader = response.body?.getReader() ?? null;
  while (reader) {
    let result;
    try {
      result = await reader.read();
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      const got = declared !== null ? `: the server announced ${declared} bytes (Content-Length) and sent ${loaded}` : ` after ${loaded} bytes`;
      throw new DownloadError(`${url}: download interrupted${got} (${error.message})`);
    }
    if (result.done) break;
    const chunk = result.value;
    if (loaded + chunk.byteLength > limit) {
      throw refuse(declared !== null
        ? `the server announced ${declared} bytes (Content-Length) but sent more`
        : `more than the ${limit}-byte ceiling for a ${what}; the download was stopped there`);
    }
    if (buffer) buffer.set(chunk, loaded);
    else chunks.push(chunk);
    loaded += chunk.byteLength;
    onChunk(loaded, declared ?? 0);
  }
  if (declared !== null && loaded !== declared) throw refuse(`the server announced ${declared} bytes (Content-Length) but sent ${loaded}`);
  let bytes = buffer;
  if (!bytes) {
    bytes = new Uint8Array(loaded);
    let offset = 0;
    for (let i = 0; i < chunks.length; i++) {
      bytes.set(chunks[i], offset);
      offset += chunks[i].byteLength;
      chunks[i] = null;
    }
  }
  const verdict = judgeSize(rule, loaded, bytes.subarray(0, rule.headBytes), what);
  if (verdict.problem) throw new FileSizeError(`${url}: ${verdict.problem}`);
  return verdict.bytes === bytes.byteLength ? bytes.buffer : bytes.slice(0, verdict.bytes).buffer;
}

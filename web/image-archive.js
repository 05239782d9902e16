// Lists the files in a dropped .zip, .tar or .tar.gz of image folders without reading them all
// into memory: each entry becomes a Blob (a slice of the archive, inflated when it is read).
// Plain web APIs only (Blob, DecompressionStream), so the page's decode worker and Node both run it.
import { ImageSetError } from './image-records.js';

export const ARCHIVE_NAME = /\.(zip|tar|tar\.gz|tgz)$/i;

/** { files: [{ path, blob: () => Promise<Blob> }], folders: [path] } of the archive `file`. */
export async function listArchive(file) {
  if (/\.zip$/i.test(file.name)) return listZip(file);
  if (/\.(tar\.gz|tgz)$/i.test(file.name)) {
    if (typeof DecompressionStream !== 'function') throw new ImageSetError(`${file.name}: this browser cannot gunzip; extract the archive and drop the folder`);
    let inflated;
    try {
      inflated = await new Response(file.stream().pipeThrough(new DecompressionStream('gzip'))).blob();
    } catch (error) {
      throw new ImageSetError(`${file.name}: not a readable gzip file (${error.message})`);
    }
    return listTar(inflated, file.name);
  }
  return listTar(file, file.name);
}

const u16 = (v, o) => v.getUint16(o, true);
const u32 = (v, o) => v.getUint32(o, true);

/** A zip's central directory; entries stored (method 0) or deflated (method 8). */
export async function listZip(file) {
  const name = file.name;
  const tailStart = Math.max(0, file.size - 65557);
  const tail = new DataView(await file.slice(tailStart).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new ImageSetError(`${name}: not a zip archive (no end of central directory record)`);
  const entries = u16(tail, eocd + 10), cdSize = u32(tail, eocd + 12), cdOffset = u32(tail, eocd + 16);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw new ImageSetError(`${name}: ZIP64 archives (over 4 GB or 65,535 files) are not supported: drop the extracted folder, or a .tar`);
  if (cdOffset + cdSize > file.size) throw new ImageSetError(`${name}: the archive is truncated (its directory lies past the end)`);
  const cd = new DataView(await file.slice(cdOffset, cdOffset + cdSize).arrayBuffer());
  const decoder = new TextDecoder();
  const files = [], folders = [];
  let p = 0;
  for (let k = 0; k < entries; k++) {
    if (p + 46 > cd.byteLength || u32(cd, p) !== 0x02014b50) throw new ImageSetError(`${name}: the zip directory is damaged at entry ${k + 1}`);
    const flags = u16(cd, p + 8), method = u16(cd, p + 10), compressed = u32(cd, p + 20);
    const nameLength = u16(cd, p + 28), extra = u16(cd, p + 30), comment = u16(cd, p + 32), local = u32(cd, p + 42);
    const path = decoder.decode(new Uint8Array(cd.buffer, p + 46, nameLength));
    p += 46 + nameLength + extra + comment;
    if (path.endsWith('/')) { folders.push(path); continue; }
    let problem = null;
    if (flags & 1) problem = 'encrypted';
    else if (method !== 0 && method !== 8) problem = `compression method ${method} is not supported`;
    files.push({ path, problem, blob: () => zipEntry(file, local, compressed, method, `${name}: ${path}`) });
  }
  return { files, folders };
}

async function zipEntry(file, local, compressed, method, what) {
  const header = new DataView(await file.slice(local, local + 30).arrayBuffer());
  if (header.byteLength < 30 || u32(header, 0) !== 0x04034b50) throw new Error(`${what}: damaged local header`);
  const start = local + 30 + u16(header, 26) + u16(header, 28);
  const data = file.slice(start, start + compressed);
  if (method === 0) return data;
  return new Response(data.stream().pipeThrough(new DecompressionStream('deflate-raw'))).blob();
}

/** A POSIX/GNU/pax tar, read header by header in 1 MB windows. */
export async function listTar(file, name = file.name) {
  const files = [], folders = [];
  const decoder = new TextDecoder();
  let windowStart = 0, window = new Uint8Array(0);
  const read = async (pos, length) => {
    if (pos < windowStart || pos + length > windowStart + window.length) {
      windowStart = pos;
      window = new Uint8Array(await file.slice(pos, pos + Math.max(length, 1 << 20)).arrayBuffer());
    }
    return window.subarray(pos - windowStart, pos - windowStart + length);
  };
  const text = (h, start, length) => {
    let end = start;
    while (end < start + length && h[end] !== 0) end++;
    return decoder.decode(h.subarray(start, end));
  };
  let pos = 0, longName = null;
  while (pos + 512 <= file.size) {
    const h = await read(pos, 512);
    if (h.every((b) => b === 0)) return { files, folders };
    const sizeText = text(h, 124, 12).trim();
    if (/[^0-7]/.test(sizeText)) throw new ImageSetError(`${name}: not a tar archive (bad header at byte ${pos})`);
    const size = parseInt(sizeText || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = text(h, 257, 6).startsWith('ustar') ? text(h, 345, 155) : '';
    let path = prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100);
    if (longName) { path = longName; longName = null; }
    const data = pos + 512;
    if (data + size > file.size) throw new ImageSetError(`${name}: the archive is truncated (${path} runs past the end)`);
    if (type === 'L' || type === 'x') {
      if (size > 1 << 20) throw new ImageSetError(`${name}: a ${size}-byte header entry is too long`);
      const body = decoder.decode(await read(data, size));
      longName = type === 'L' ? body.replace(/\0.*$/s, '') : (/(?:^|\n)\d+ path=([^\n]*)\n/.exec(body)?.[1] ?? null);
    } else if (type === '5') folders.push(path);
    else if (type === '0' || type === '7') {
      const blob = file.slice(data, data + size);
      files.push({ path, problem: null, blob: async () => blob });
    }
    pos = data + Math.ceil(size / 512) * 512;
  }
  if (pos < file.size) throw new ImageSetError(`${name}: the archive is truncated (it ends inside a header)`);
  if (files.length === 0) throw new ImageSetError(`${name}: not a tar archive, or one without files`);
  return { files, folders };
}

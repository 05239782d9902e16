// Every file the CLI and the server read goes through here: `stat` first, so a device, pipe,
// socket or folder is refused before it is opened (a pipe with no writer would block the open);
// then the size is judged by the format's rule (web/file-limits.js) before a byte is read, and
// exactly the bytes the rule allows are read, in bounded chunks.
import { stat, open } from 'node:fs/promises';
import { constants } from 'node:fs';

import { judgeSize } from '../../web/file-limits.js';

export { exactSize, wholeRecords, atMost, RECORDS_RULE, WEIGHTS_RULE, CHECKPOINT_RULE } from '../../web/file-limits.js';

/** A file refused before (or while) it was read; the message names it and says why. */
export class FileRefusedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FileRefusedError';
  }
}

const READ_CHUNK = 1 << 20;

function kindOf(info) {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a named pipe (FIFO)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

function refuseUnlessRegular(file, info, what) {
  if (!info.isFile()) throw new FileRefusedError(`${file}: is ${kindOf(info)}, not a ${what}`);
}

/** stat(file), refusing anything but a regular file. `what` names the format: 'weights file'. */
export async function statRegularFile(file, what) {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if (error.code === 'ENOENT') throw new FileRefusedError(`${file}: ${what} not found`);
    throw new FileRefusedError(`${file}: cannot read ${what} (${error.code ?? error.message})`);
  }
  refuseUnlessRegular(file, info, what);
  return info;
}

/** The size of a regular file, refused unless `rule` accepts it (a rule that needs no header). */
export async function checkedSize(file, what, rule) {
  const { size } = await statRegularFile(file, what);
  const verdict = judgeSize(rule, size, null, what);
  if (verdict.problem) throw new FileRefusedError(`${file}: ${verdict.problem}`);
  return size;
}

/**
 * Opens a regular file for reading; resolves to { handle, size } (the caller closes the handle).
 * O_NONBLOCK makes an open never wait, should the path have become a pipe since the stat; the
 * opened file is checked again, so what is read is what was judged.
 */
export async function openRegularFile(file, what) {
  await statRegularFile(file, what);
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw new FileRefusedError(`${file}: cannot read ${what} (${error.code ?? error.message})`);
  }
  try {
    const info = await handle.stat();
    refuseUnlessRegular(file, info, what);
    return { handle, size: info.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function readAt(handle, file, count) {
  const bytes = new Uint8Array(count);
  let offset = 0;
  while (offset < count) {
    const { bytesRead } = await handle.read(bytes, offset, Math.min(READ_CHUNK, count - offset), offset);
    if (bytesRead === 0) throw new FileRefusedError(`${file}: ended after ${offset} of ${count} bytes: it changed while being read`);
    offset += bytesRead;
  }
  return bytes;
}

/** Reads a file that `rule` accepts, judged by its size (and header) before the rest is read. */
export async function readCheckedFile(file, what, rule) {
  const { handle, size } = await openRegularFile(file, what);
  try {
    const head = rule.headBytes && size ? await readAt(handle, file, Math.min(rule.headBytes, size)) : null;
    const verdict = judgeSize(rule, size, head, what);
    if (verdict.problem) throw new FileRefusedError(`${file}: ${verdict.problem}`);
    return await readAt(handle, file, verdict.bytes);
  } catch (error) {
    if (error instanceof FileRefusedError) throw error;
    throw new FileRefusedError(`${file}: cannot read ${what} (${error.code ?? error.message})`);
  } finally {
    await handle.close();
  }
}

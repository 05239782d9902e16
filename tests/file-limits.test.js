// Every reader refuses before it reads: each file the CLI and the server open (weights,
// checkpoint, CIFAR-10 files) is refused at once, with one line naming it, when it is a device, a
// pipe with no writer, a folder, a file of a size its format cannot have, or empty, and peak
// memory stays that of a normal run. Also the size rules and the Response reader the page uses.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, cpSync, symlinkSync, rmSync } from 'node:fs';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { writeSyntheticCifar } from './helpers/synthetic.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { startServer } from '../src/node/serve.js';
import { ALL_FILES } from '../web/cifar.js';
import { CIFAR10_FORMAT } from '../web/engine.js';

const WEIGHTS_BYTES = 62006 * 4; // SimpleCNN's
const RECORD_BYTES = CIFAR10_FORMAT.recordBytes;
import {
  RECORDS_RULE, WEIGHTS_RULE, CHECKPOINT_RULE, CHECKPOINT_CEILING, MAX_RECORDS_PER_FILE, judgeSize, readResponse, readBlob,
  FileSizeError, DownloadError,
} from '../web/file-limits.js';

const cli = fileURLToPath(new URL('../src/node/cli.js', import.meta.url));
const BIG = 300 * 1024 * 1024; // the 300 MB file, made sparse: it costs no disk
const CHECKPOINT_V1_BYTES = 744204;
const HANG_LIMIT_MS = 15000; // a reader that blocks is killed here, and its case fails

let dir, data, hostile, zeroWeights;
before(() => {
  dir = tempDir('webtrain-limits-');
  data = writeSyntheticCifar(path.join(dir, 'data'), { perTrainFile: 40, test: 40, seed: 2 });
  zeroWeights = path.join(dir, 'zero-weights.bin');
  writeFileSync(zeroWeights, new Uint8Array(WEIGHTS_BYTES));
  const at = (name) => path.join(dir, name);
  execFileSync('mkfifo', [at('fifo')]);
  mkdirSync(at('folder'));
  writeFileSync(at('empty.bin'), '');
  execFileSync('truncate', ['-s', String(BIG), at('big.bin')]);
  hostile = [
    ['/dev/zero', /is a character device, not a/],
    [at('fifo'), /is a named pipe \(FIFO\), not a/],
    [at('folder'), /is a directory, not a/],
    [at('empty.bin'), /file is empty \(0 bytes\), expected a/],
  ];
});

// Loaded before the CLI: prints its peak resident set size as the last line of stderr.
const REPORT_PEAK = `data:text/javascript,process.on('exit', () => process.stderr.write('maxrss-kb=' + process.resourceUsage().maxRSS + '\\n'))`;

/** The CLI, killed if it has not ended within HANG_LIMIT_MS; `measure` adds its peak RSS. */
function run(args, { measure = false } = {}) {
  const argv = [...(measure ? ['--import', REPORT_PEAK] : []), cli, ...args];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: HANG_LIMIT_MS, killSignal: 'SIGKILL' });
  let stderr = r.stderr ?? '';
  let maxRssKb = null;
  const m = stderr.match(/maxrss-kb=(\d+)\n$/);
  if (m) {
    maxRssKb = Number(m[1]);
    stderr = stderr.slice(0, m.index);
  }
  if (measure && r.signal === null) assert.notEqual(maxRssKb, null, `no peak RSS reported: ${r.stderr}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr, maxRssKb };
}

/** Ended at once, status 1, nothing on stdout, one line naming `file` that matches `pattern`. */
function assertRefused(r, file, pattern, label) {
  assert.equal(r.signal, null, `${label}: still running after ${HANG_LIMIT_MS} ms (killed)`);
  assert.equal(r.status, 1, `${label}: exit status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '', `${label}: printed ${r.stdout}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${label}: expected one line, got:\n${r.stderr}`);
  assert.ok(lines[0].startsWith(`webtrain: ${file}: `), `${label}: ${lines[0]}`);
  assert.match(lines[0], pattern, label);
}

/** A peak no higher than a normal run's (10% for noise): nothing of the file was held. */
function assertNormalMemory(r, normal, label) {
  assert.ok(r.maxRssKb <= normal * 1.1, `${label}: peak RSS ${r.maxRssKb} kB, a normal run's is ${normal} kB`);
}

/** The peak RSS of a normal evaluation run reading the same kinds of file. */
function normalRunKb(extra = []) {
  const r = run(['--data', data, '--epochs', '0', ...extra], { measure: true });
  assert.equal(r.status, 0, r.stderr);
  return r.maxRssKb;
}

test('--import-weights: a device, a pipe with no writer, a folder, an empty file and a 300 MB file are refused at once', () => {
  for (const [file, pattern] of hostile) {
    assertRefused(run(['--data', data, '--epochs', '0', '--import-weights', file]), file, pattern, file);
  }
  const normal = normalRunKb(['--import-weights', zeroWeights]);
  const big = path.join(dir, 'big.bin');
  const r = run(['--data', data, '--epochs', '0', '--import-weights', big], { measure: true });
  assertRefused(r, big, new RegExp(`weights file is ${BIG} bytes; a simplecnn weights file \\(62,006 float32 parameters\\) is ${WEIGHTS_BYTES} bytes`), 'big weights');
  assertNormalMemory(r, normal, 'big weights');
});

test('--model FILE: a device, a pipe with no writer, a folder, an empty file and a 300 MB file are refused at once', () => {
  for (const [file, pattern] of hostile) {
    assertRefused(run(['--data', data, '--epochs', '0', '--model', file]), file, pattern, file);
  }
  const normal = normalRunKb();
  const big = path.join(dir, 'big.bin');
  const r = run(['--data', data, '--epochs', '0', '--model', big], { measure: true });
  assertRefused(r, big, new RegExp(`model description is ${BIG} bytes, more than the 100000-byte ceiling for a model description`), 'big description');
  assertNormalMemory(r, normal, 'big description');
});

test('--resume: a device, a pipe, a folder, an empty file, and oversized files of every header kind are refused at once', () => {
  for (const [file, pattern] of hostile) {
    assertRefused(run(['--data', data, '--resume', file]), file, pattern, file);
  }
  const checkpoint = path.join(dir, 'good.ckpt');
  const made = runCli(['--data', data, '--epochs', '1', '--batch-size', '16', '--checkpoint', checkpoint]);
  assert.equal(made.status, 0, made.stderr);
  const normal = normalRunKb(['--resume', checkpoint]);

  // A header, then a sparse 300 MB file: only the header (or a 4 KB prefix) may be read.
  const header = (version, total) => {
    const b = Buffer.alloc(24);
    b.write('WTCKPT\r\n', 0, 'latin1');
    b.writeUInt32LE(version, 8);
    b.writeUInt32LE(128, 12);
    if (total !== undefined) b.writeBigUInt64LE(BigInt(total), 16);
    return b;
  };
  const cases = [
    ['zeros.ckpt', null, /not a webtrain checkpoint/],
    ['v1-long.ckpt', header(1), new RegExp(`checkpoint has trailing bytes: ${BIG} bytes, expected ${CHECKPOINT_V1_BYTES} \\(version 1\\)`)],
    ['v2-huge.ckpt', header(2, 4 * CHECKPOINT_CEILING), new RegExp(`checkpoint is ${BIG} bytes, and its header says ${4 * CHECKPOINT_CEILING}: more than the ${CHECKPOINT_CEILING}-byte ceiling`)],
    ['v2-short.ckpt', header(2, BIG + 1), new RegExp(`checkpoint truncated: ${BIG} bytes, expected ${BIG + 1} \\(version 2\\)`)],
    ['v9.ckpt', header(9), /checkpoint format version 9 is not supported/],
  ];
  for (const [name, head, pattern] of cases) {
    const file = path.join(dir, name);
    writeFileSync(file, head ?? '');
    execFileSync('truncate', ['-s', String(BIG), file]);
    const r = run(['--data', data, '--resume', file], { measure: true });
    assertRefused(r, file, pattern, name);
    assertNormalMemory(r, normal, name);
    rmSync(file);
  }
});

test('--data: each hostile kind in place of a CIFAR-10 file is refused before any file is read', () => {
  const normal = normalRunKb();
  const sparse = (bytes) => (file) => execFileSync('truncate', ['-s', String(bytes), file]);
  const link = (target) => (file) => symlinkSync(target, file);
  const cases = [
    ['/dev/zero', link('/dev/zero'), /is a character device, not a CIFAR-10 file/],
    ['fifo', (file) => execFileSync('mkfifo', [file]), /is a named pipe \(FIFO\), not a CIFAR-10 file/],
    ['folder', (file) => mkdirSync(file), /is a directory, not a CIFAR-10 file/],
    ['empty', (file) => writeFileSync(file, ''), /file is empty/],
    ['300 MB', sparse(BIG), /size 314572800 bytes is not a multiple of the 3073-byte CIFAR-10 record/],
    ['too many records', sparse(RECORD_BYTES * (MAX_RECORDS_PER_FILE + 1)), new RegExp(`${MAX_RECORDS_PER_FILE + 1} records, more than the ${MAX_RECORDS_PER_FILE} a file may hold`)],
  ];
  for (const [label, make, pattern] of cases) {
    // The last file of the set is the bad one: the five before it must not be read first.
    const folder = path.join(dir, `data-${label.replace(/\W/g, '')}`);
    cpSync(data, folder, { recursive: true });
    const bad = path.join(folder, 'test_batch.bin');
    rmSync(bad);
    make(bad);
    const r = run(['--data', folder, '--epochs', '0'], { measure: true });
    assertRefused(r, bad, pattern, label);
    assertNormalMemory(r, normal, label);
    rmSync(folder, { recursive: true });
  }
  // Six files that are each acceptable but together more than the engine can hold.
  const folder = path.join(dir, 'data-huge');
  mkdirSync(folder);
  for (const name of ALL_FILES) sparse(RECORD_BYTES * MAX_RECORDS_PER_FILE)(path.join(folder, name));
  const r = run(['--data', folder, '--epochs', '0'], { measure: true });
  assertRefused(r, folder, /the six CIFAR-10 files hold \d+ bytes, more than the \d+-byte ceiling/, 'data set');
  assertNormalMemory(r, normal, 'data set');
  rmSync(folder, { recursive: true });
});

test('the server answers 404 at once for a pipe, a device or a folder in the data folder, and serves exactly the stat size', async () => {
  const served = path.join(dir, 'served');
  mkdirSync(served);
  execFileSync('mkfifo', [path.join(served, 'data_batch_1.bin')]);
  symlinkSync('/dev/zero', path.join(served, 'data_batch_2.bin'));
  writeFileSync(path.join(served, 'test_batch.bin'), new Uint8Array(3 * RECORD_BYTES));
  const server = await startServer({ port: 0, dataDir: served });
  try {
    const get = (name) => fetch(`${server.url}data/cifar-10-batches-bin/${name}`, { signal: AbortSignal.timeout(HANG_LIMIT_MS) });
    for (const name of ['data_batch_1.bin', 'data_batch_2.bin']) {
      const r = await get(name);
      assert.equal(r.status, 404, name);
      await r.body?.cancel();
    }
    const ok = await get('test_batch.bin');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-length'), String(3 * RECORD_BYTES));
    assert.equal((await ok.arrayBuffer()).byteLength, 3 * RECORD_BYTES);
  } finally {
    await server.close();
  }
});

test('size rules: exact, whole records, checkpoint headers, empty files', () => {
  assert.deepEqual(judgeSize(WEIGHTS_RULE, WEIGHTS_BYTES, null, 'weights file'), { bytes: WEIGHTS_BYTES });
  assert.match(judgeSize(WEIGHTS_RULE, WEIGHTS_BYTES + 1, null, 'weights file').problem, /^weights file is 248025 bytes; a SimpleCNN weights file is 248024 bytes$/);
  assert.deepEqual(judgeSize(RECORDS_RULE, 2 * RECORD_BYTES, null, 'CIFAR-10 file'), { bytes: 2 * RECORD_BYTES });
  assert.match(judgeSize(RECORDS_RULE, 2 * RECORD_BYTES + 100, null, 'x').problem, /2 whole records and 100 bytes left over/);
  assert.match(judgeSize(RECORDS_RULE, 0, null, 'CIFAR-10 file').problem, /^file is empty \(0 bytes\), expected a CIFAR-10 file$/);
  const head = new Uint8Array(24);
  head.set(new TextEncoder().encode('WTCKPT\r\n'));
  const view = new DataView(head.buffer);
  view.setUint32(8, 1, true);
  assert.deepEqual(judgeSize(CHECKPOINT_RULE, CHECKPOINT_V1_BYTES, head, 'checkpoint'), { bytes: CHECKPOINT_V1_BYTES });
  view.setUint32(8, 2, true);
  view.setBigUint64(16, 5000n, true);
  assert.deepEqual(judgeSize(CHECKPOINT_RULE, 5000, head, 'checkpoint'), { bytes: 5000 });
  assert.match(judgeSize(CHECKPOINT_RULE, 5001, head, 'checkpoint').problem, /has trailing bytes: 5001 bytes, expected 5000 \(version 2\)/);
  // No signature, or an unknown version: only a prefix is read, for the C loader to name the fault.
  assert.deepEqual(judgeSize(CHECKPOINT_RULE, BIG, new Uint8Array(24), 'checkpoint'), { bytes: 4096 });
  assert.deepEqual(judgeSize(CHECKPOINT_RULE, 100, new Uint8Array(24), 'checkpoint'), { bytes: 100 });
});

/** A Response whose body yields `chunks` (Uint8Arrays), counting how many were pulled. */
function responseOf(chunks, headers = {}) {
  const pulled = { count: 0 };
  let i = 0;
  const body = new ReadableStream({
    pull(controller) {
      pulled.count++;
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  }, { highWaterMark: 0 });
  return { response: new Response(body, { headers }), pulled };
}

test('the page\'s download reader: judged by Content-Length before reading, held to it, stopped at the ceiling without one', async () => {
  const record = new Uint8Array(RECORD_BYTES).fill(3);
  const url = 'http://example.test/data_batch_1.bin';
  const read = (response) => readResponse(response, url, 'CIFAR-10 file', RECORDS_RULE);

  const good = responseOf([record, record], { 'content-length': String(2 * RECORD_BYTES) });
  assert.equal((await read(good.response)).byteLength, 2 * RECORD_BYTES);

  const huge = responseOf([record], { 'content-length': String(BIG) });
  await assert.rejects(read(huge.response), (e) => e instanceof FileSizeError && /^http:\/\/example\.test\/data_batch_1\.bin: its Content-Length of 314572800 bytes is more than the \d+-byte ceiling/.test(e.message));
  assert.equal(huge.pulled.count, 0, 'the body of a refused response was read');

  const odd = responseOf([record], { 'content-length': String(RECORD_BYTES + 5) });
  await assert.rejects(read(odd.response), /not a multiple of the 3073-byte CIFAR-10 record .* \(its Content-Length\)/);
  assert.equal(odd.pulled.count, 0);

  const fewer = responseOf([record], { 'content-length': String(2 * RECORD_BYTES) });
  await assert.rejects(read(fewer.response), /announced 6146 bytes \(Content-Length\) but sent 3073/);
  const more = responseOf([record, record, record], { 'content-length': String(2 * RECORD_BYTES) });
  await assert.rejects(read(more.response), /announced 6146 bytes \(Content-Length\) but sent more/);

  // No Content-Length: read up to the ceiling, not a chunk beyond it.
  const chunk = new Uint8Array(RECORDS_RULE.ceiling / 4 + 1);
  const endless = responseOf(Array(100).fill(chunk));
  await assert.rejects(read(endless.response), /more than the 184380000-byte ceiling for a CIFAR-10 file; the download was stopped there/);
  assert.ok(endless.pulled.count <= 5, `${endless.pulled.count} chunks pulled`);
  const unknown = responseOf([record, record.subarray(0, 10)]);
  await assert.rejects(read(unknown.response), /1 whole record and 10 bytes left over/);

  const broken = new Response(new ReadableStream({ pull(c) { c.error(new TypeError('network error')); } }), { headers: { 'content-length': '6146' } });
  await assert.rejects(read(broken), (e) => e instanceof DownloadError && /interrupted: the server announced 6146 bytes \(Content-Length\) and sent 0 \(network error\)/.test(e.message));
});

test('the page\'s file reader: a File is judged by its size before it is read', async () => {
  const big = { size: BIG, slice: () => { throw new Error('read'); }, arrayBuffer: () => { throw new Error('read'); } };
  await assert.rejects(readBlob(big, 'w.bin', 'weights file', WEIGHTS_RULE), (e) => e instanceof FileSizeError && e.message === 'w.bin: weights file is 314572800 bytes; a SimpleCNN weights file is 248024 bytes');
  const ok = new Blob([new Uint8Array(WEIGHTS_BYTES)]);
  assert.equal((await readBlob(ok, 'w.bin', 'weights file', WEIGHTS_RULE)).byteLength, WEIGHTS_BYTES);
  const zeros = new Blob([new Uint8Array(10000)]); // no signature: 4 KB for the loader to refuse
  assert.equal((await readBlob(zeros, 'c.bin', 'checkpoint', CHECKPOINT_RULE)).byteLength, 4096);
});

test('a dropped archive is judged by its size, and each CIFAR-10 member by the size in its tar header before room is made for it', async () => {
  const { readLocalFiles } = await import('../web/data-source.js');
  const huge = { name: 'cifar-10-binary.tar.gz', size: 4 * 2 ** 30, stream: () => { throw new Error('read'); } };
  await assert.rejects(readLocalFiles([huge]), /^FileSizeError: cifar-10-binary\.tar\.gz: CIFAR-10 archive is 4294967296 bytes, more than the 1073741824-byte ceiling/);
  // One tar header announcing a 300 MB data_batch_1.bin, and nothing after it.
  const header = new Uint8Array(512);
  const put = (text, at) => header.set(new TextEncoder().encode(text), at);
  put('cifar-10-batches-bin/data_batch_1.bin', 0);
  put(`${BIG.toString(8).padStart(11, '0')}\0`, 124);
  put('0', 156);
  const tar = new File([header], 'cifar-10-binary.tar');
  await assert.rejects(readLocalFiles([tar]), /cifar-10-binary\.tar: cifar-10-batches-bin\/data_batch_1\.bin: size 314572800 bytes is not a multiple of the 3073-byte CIFAR-10 record/);
});

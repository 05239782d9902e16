// The CLI's data: which standard data set a --data folder holds (web/datasets.js), its files read
// within their size rules (every file judged by its size before any is read), gzipped IDX files
// gunzipped with zlib within the plain file's ceiling, and the records loaded into the engine.
import { readdir, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';

import { detectDataset, recordFiles, classNamesFromMeta, gzipRule, isGzip, describeFiles, DatasetError } from '../../web/datasets.js';
import { judgeSize, atMost } from '../../web/file-limits.js';
import { checkedSize, readCheckedFile, FileRefusedError } from './files.js';

/** The most a data set's files may hold together: twice CIFAR-10, well inside Wasm's 1 GB. */
export const DATA_SET_CEILING = 2 * 60000 * 3073;
const META_RULE = atMost(1 << 16, 'a class names file');
const NUMBER_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six'];

/** What a data set's file is called in messages: CIFAR-10's as before, with the folder it needs. */
function describeWhat(dataset) {
  const from = dataset.archive ? ` from ${dataset.archive}` : '';
  return `${dataset.title.replace(/ \(.*/, '')} file (the folder must hold ${describeFiles(dataset)}${from})`;
}

/** The folder's file names; a missing or unreadable folder is named. */
async function listFolder(dir) {
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    throw new DatasetError(`${dir}: ${error.code === 'ENOENT' ? 'no such folder' : `cannot read (${error.code ?? error.message})`}`);
  }
  if (!info.isDirectory()) throw new DatasetError(`${dir}: not a folder (--data takes the folder holding the data set's files)`);
  return readdir(dir);
}

/**
 * Reads the data set in `dir` (`wanted`: --dataset's name, or null to recognise it). Returns
 * { dataset, note, classNames, train, test } with train and test the record files
 * ([{ name, bytes }]) for Engine.loadDataset with dataset.format. Throws DatasetError or
 * FileRefusedError, each naming the folder or the file.
 */
export async function readDataset(dir, wanted = null) {
  const names = await listFolder(dir);
  const { dataset, note } = detectDataset(dir, names, wanted);
  const what = describeWhat(dataset);
  // Each file as found: plain if there, else gzipped (where the set allows), else the plain name
  // (whose stat then says "not found").
  const sources = dataset.files.map((plain) => {
    const gz = `${plain}.gz`;
    const gzipped = dataset.gzip && !names.includes(plain) && names.includes(gz);
    return { plain, file: path.join(dir, gzipped ? gz : plain), gzipped, rule: gzipped ? gzipRule(dataset, plain) : atMost(dataset.rule(plain).ceiling, what) };
  });
  let total = 0;
  for (const s of sources) {
    // A whole-records rule judges from the size alone; an IDX file's header is judged once read.
    const rule = s.gzipped || dataset.kind === 'idx' ? s.rule : dataset.rule(s.plain);
    total += await checkedSize(s.file, what, rule);
  }
  if (total > DATA_SET_CEILING) {
    const count = NUMBER_WORDS[sources.length] ?? String(sources.length);
    throw new DatasetError(`${dir}: the ${count} ${dataset.title.replace(/ \(.*/, '')} files hold ${total} bytes, more than the ${DATA_SET_CEILING}-byte ceiling (120000 records)`);
  }
  const files = new Map();
  for (const s of sources) files.set(s.plain, { name: s.file, bytes: await readPlain(s, dataset, what) });
  const { train, test } = recordFiles(dataset, files);
  return { dataset, note, classNames: await classNames(dataset, dir, names), train, test };
}

/** A file's plain bytes: read within its rule, and gunzipped within the plain file's ceiling. */
async function readPlain(source, dataset, what) {
  const rule = dataset.rule(source.plain);
  if (!source.gzipped) return readCheckedFile(source.file, what, rule);
  const packed = await readCheckedFile(source.file, what, source.rule);
  if (!isGzip(packed)) throw new DatasetError(`${source.file}: not gzipped (it does not start with gzip's 1f 8b): rename it without .gz if it is the plain file`);
  let bytes;
  try {
    bytes = new Uint8Array(gunzipSync(packed, { maxOutputLength: rule.ceiling + 1 }));
  } catch (error) {
    if (error.code === 'ERR_BUFFER_TOO_LARGE') throw new DatasetError(`${source.file}: more than ${rule.ceiling} bytes once gunzipped, the ceiling for a ${what.replace(/ \(.*/, '')}`);
    throw new DatasetError(`${source.file}: not a readable gzip file (${error.message})`);
  }
  const verdict = judgeSize(rule, bytes.length, bytes.subarray(0, rule.headBytes), what);
  if (verdict.problem) throw new DatasetError(`${source.file}: ${verdict.problem} (once gunzipped)`);
  return bytes;
}

/** The class names: CIFAR-100's meta file when the folder has it, else the data set's own. */
async function classNames(dataset, dir, names) {
  if (!dataset.meta || !names.includes(dataset.meta)) return dataset.classNames;
  const file = path.join(dir, dataset.meta);
  return classNamesFromMeta(dataset, new TextDecoder().decode(await readCheckedFile(file, 'class names file', META_RULE)), file);
}

export { DatasetError, FileRefusedError };

/** The data set a folder holds, from its file names alone: { dataset, note }. */
export async function detectFolder(dir, wanted = null) {
  return detectDataset(dir, await listFolder(dir), wanted);
}

// The CIFAR-10 reader, through the CLI and through the engine: every malformed file gives one
// clear error naming it, and nothing is half-loaded.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, cpSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { createEngine, EngineError } from '../web/engine.js';
import { writeSyntheticCifar, makeRecords } from './helpers/synthetic.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { createSimpleCnn } from './helpers/models.js';

let good;
before(() => {
  good = writeSyntheticCifar(tempDir('webtrain-data-'), { perTrainFile: 20, test: 20 });
});

/** A copy of the good folder with one file replaced (or removed when bytes is null). */
function folderWith(name, bytes) {
  const dir = tempDir('webtrain-bad-');
  cpSync(good, dir, { recursive: true });
  if (bytes === null) rmSync(path.join(dir, name));
  else writeFileSync(path.join(dir, name), bytes);
  return dir;
}

function assertDataError(dir, file, pattern) {
  const r = runCli(['--data', dir, '--epochs', '1']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '', 'training started on bad data');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0].startsWith(`webtrain: ${path.join(dir, file)}: `), lines[0]);
  assert.match(lines[0], pattern);
}

test('a missing file is named', () => {
  assertDataError(folderWith('data_batch_3.bin', null), 'data_batch_3.bin', /CIFAR-10 file .* not found/);
});

test('an empty file is refused', () => {
  assertDataError(folderWith('test_batch.bin', new Uint8Array(0)), 'test_batch.bin', /file is empty/);
});

test('a size that is not a whole number of records is refused', () => {
  const bytes = makeRecords(3).subarray(0, 3073 * 2 + 100);
  assertDataError(folderWith('data_batch_2.bin', bytes), 'data_batch_2.bin', /size 6246 bytes is not a multiple of the 3073-byte CIFAR-10 record \(2 whole records and 100 bytes left over\)/);
  // One record, one byte: singular nouns (the page once said "1 whole records").
  assertDataError(folderWith('data_batch_2.bin', makeRecords(2).subarray(0, 3073 + 1)), 'data_batch_2.bin', /\(1 whole record and 1 byte left over\)/);
});

test('a label above 9 is refused with its record', () => {
  const bytes = makeRecords(5);
  bytes[3 * 3073] = 10;
  assertDataError(folderWith('data_batch_5.bin', bytes), 'data_batch_5.bin', /record 3 \(byte offset 9219\) has label 10; labels must be 0\.\.9/);
});

test('a directory in place of a file is named', () => {
  const dir = folderWith('data_batch_1.bin', null);
  cpSync(good, path.join(dir, 'data_batch_1.bin'), { recursive: true });
  assertDataError(dir, 'data_batch_1.bin', /is a directory/);
});

test('the engine keeps nothing of a batch of files when one is bad', async () => {
  const engine = await createEngine(readFileSync(new URL('../web/webtrain.wasm', import.meta.url)));
  const ok = makeRecords(4);
  const bad = makeRecords(4);
  bad[0] = 200;
  const probe = engine.alloc(64); // the allocator hands back freed memory first
  engine.free(probe);
  assert.throws(() => engine.loadDataset([{ name: 'a.bin', bytes: ok }, { name: 'b.bin', bytes: bad }]),
    (e) => e instanceof EngineError && /^b\.bin: record 0 .* label 200/.test(e.message));
  const data = engine.loadDataset([{ name: 'a.bin', bytes: ok }, { name: 'c.bin', bytes: ok }]);
  assert.equal(data.count, 8);
  assert.equal(data.label(5), ok[3073]);
  assert.deepEqual(data.image(7), ok.subarray(3 * 3073 + 1, 4 * 3073));
  // Labels are checked again inside C at every step, whatever JavaScript did.
  const model = createSimpleCnn(engine, { maxBatch: 4 });
  engine.heapU8[data.ptr] = 42;
  assert.throws(() => model.trainStep(data, [0, 1]), /record 0 has label 42/);
  engine.heapU8[data.ptr] = ok[0];
  assert.throws(() => model.trainStep(data, [0, 8]), /record index 8 is past the 8 records/);
  assert.throws(() => model.trainStep(data, [1, 2, 3, 4, 5]), /batch of 5 exceeds 4/);
});

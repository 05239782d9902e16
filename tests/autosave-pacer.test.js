// The page's timed autosaves keep a big checkpoint less often (web/autosave-pacer.js).
import test from 'node:test';
import assert from 'node:assert/strict';

import { AutosavePacer, AUTOSAVE_BYTES_PER_S, autosaveGapMs } from '../web/autosave-pacer.js';

test('a timed autosave of a big checkpoint waits in proportion to its size', () => {
  const pacer = new AutosavePacer(2, 400_000);
  assert.equal(pacer.tooSoon(0), false, 'the first save is never put off');
  pacer.saved(5000, 3_500_000); // fast's: 8.75 s
  assert.equal(pacer.tooSoon(5000 + 2000), true);
  assert.equal(pacer.tooSoon(5000 + 8749), true);
  assert.equal(pacer.tooSoon(5000 + 8750), false);
});

test("a checkpoint that the rate allows within the timer's interval is saved at every tick", () => {
  const pacer = new AutosavePacer(2, 400_000);
  pacer.saved(1000, 728_000); // SimpleCNN's: 1.82 s < 2 s
  assert.equal(pacer.tooSoon(1000), false, "a tick just after another save (an epoch's end) still saves");
  assert.equal(pacer.tooSoon(1500), false);
});

test("the default keeps SimpleCNN's checkpoint at the 2 s timer's pace and spaces fast's", () => {
  assert.ok(728_000 / AUTOSAVE_BYTES_PER_S < 2, 'SimpleCNN would be saved less often than every 2 s');
  assert.ok(3_500_000 / AUTOSAVE_BYTES_PER_S >= 8, "fast's checkpoint would still be written more than every 8 s");
});

test('without a limit every timed autosave runs (autosaveSeconds set in the URL)', () => {
  const pacer = new AutosavePacer(2, Infinity);
  pacer.saved(1000, 50_000_000);
  assert.equal(pacer.tooSoon(1000), false);
});

test('a rate that is not a positive number is refused', () => {
  for (const bad of [0, -1, NaN, null]) assert.throws(() => new AutosavePacer(2, bad), /autosave rate must be > 0/);
});

test("the worker's training-time saves are spaced alike: the interval, or the checkpoint's size over the rate", () => {
  assert.equal(autosaveGapMs(2, 3_500_000, 400_000), 8750);
  assert.equal(autosaveGapMs(2, 728_000, 400_000), 2000);
  assert.equal(autosaveGapMs(2, 50_000_000, Infinity), 2000, 'no limit (autosaveSeconds in the URL)');
});

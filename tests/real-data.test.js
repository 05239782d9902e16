// A short run on the real CIFAR-10 files, when they are present: two epochs on the first 10,000
// training images must reach a sensible test accuracy.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runCli, jsonEvents } from './helpers/cli.js';
import { realDataDir, realDataAvailable, realDataSkipMessage } from './helpers/real-data.js';

test('two epochs on 10,000 real images reach > 35% test accuracy', { skip: !realDataAvailable && realDataSkipMessage }, (t) => {
  const r = runCli(['--data', realDataDir, '--epochs', '2', '--limit-train', '10000', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const events = jsonEvents(r);
  const epoch = events.filter((e) => e.event === 'epoch').at(-1);
  t.diagnostic(`test accuracy ${(100 * epoch.test_accuracy).toFixed(2)}% (${epoch.correct}/${epoch.total}), ${epoch.train_samples_per_s.toFixed(0)} samples/s`);
  assert.equal(epoch.total, 10000);
  assert.deepEqual(events.filter((e) => e.event === 'loss').map((e) => e.step), [100, 100]);
  assert.ok(epoch.test_accuracy > 0.35, `accuracy ${epoch.test_accuracy}`);
});

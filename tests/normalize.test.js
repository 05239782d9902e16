// @normalize: a description's own input normalisation (the fast preset's CIFAR-10 mean and std).
import { test } from 'node:test';
import assert from 'node:assert/strict';

test("@normalize: the description's mean and std go into the spec and the exported files, refused on another channel count", async () => {
  const { encodeSpec } = await import('../web/model-spec.js');
  const { normalizationOf, parseDescription: parse } = await import('../web/model-description.js');
  const { CIFAR10_FORMAT } = await import('../web/engine.js');
  const f32 = (x) => new Float32Array(new Int32Array([x]).buffer)[0];
  const json = parse("@normalize '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616'\nflatten\nlinear(classes)");
  const { spec } = encodeSpec(json, CIFAR10_FORMAT);
  assert.deepEqual([8, 9, 10, 12, 13, 14].map((i) => f32(spec[i])), [0.4914, 0.4822, 0.4465, 0.247, 0.2435, 0.2616].map(Math.fround));
  assert.deepEqual(normalizationOf(json, CIFAR10_FORMAT), { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
  const plain = encodeSpec(parse('flatten\nlinear(classes)'), CIFAR10_FORMAT).spec;
  assert.deepEqual([8, 12].map((i) => f32(plain[i])), [0.5, 0.5], "without @normalize, the data set's own");
  assert.throws(() => encodeSpec(json, { ...CIFAR10_FORMAT, channels: 1, mean: [0.5], std: [0.5] }), /@normalize gives 3 channels, but the data's images have 1/);
});

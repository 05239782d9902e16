// safetensors (web/safetensors.js): every preset round-trips bit for bit, the file follows the
// format's layout, every kind of corrupt file is refused by name with the model untouched, and a
// fuzzer mutates valid files thousands of times: each outcome is a clean refusal or a full load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { createEngine, CIFAR10_FORMAT } from '../web/engine.js';
import { createModelFromDescription } from '../web/model-spec.js';
import { exportSafetensors, importSafetensors, parseSafetensors, SafetensorsError } from '../web/safetensors.js';
import { createPresetModel } from './helpers/models.js';

const wasm = readFileSync(new URL('../web/webtrain.wasm', import.meta.url));
const engine = await createEngine(wasm);

/** Everything import may change: parameters, running statistics, counts, Adam's state. */
function snapshot(model) {
  const s = model.exportState();
  return { ...s, params: Buffer.from(s.params.buffer), running: Buffer.from(s.running.buffer), adamM: Buffer.from(s.adamM.buffer), adamV: Buffer.from(s.adamV.buffer) };
}
function assertUntouched(model, before, what) {
  const now = snapshot(model);
  for (const key of Object.keys(before)) {
    assert.ok(Buffer.isBuffer(before[key]) ? before[key].equals(now[key]) : before[key] === now[key], `${what}: ${key} changed after a refusal`);
  }
}

/** A model with trained-looking state: random parameters, running statistics, Adam steps. */
function populated(model, seed = 7) {
  let x = seed;
  const rand = () => { x = (x * 1103515245 + 12345) >>> 0; return x / 2 ** 32; };
  const params = model.params().map(() => rand() - 0.5);
  const running = model.running().map(() => rand() + 0.1); // means and variances alike
  model.importState({ params, running, adamM: params.map(() => rand() * 1e-3), adamV: params.map(() => rand() * 1e-6), adamSteps: 17, statSteps: 42 });
  return model;
}

/** A file's header object and the byte offset of its data (to edit headers in the tests). */
function header(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), dataStart: 8 + n };
}
/** The file with header `json` (re-padded) and data `data`. */
function withHeader(json, data) {
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const head = Buffer.from(text);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

test('every preset round-trips bit for bit, counts and statistics included', () => {
  for (const name of ['simplecnn', 'convnetjs', 'resnet']) {
    const a = populated(createPresetModel(engine, name, { seed: 1 }));
    const bytes = exportSafetensors(a, { metadata: { test_accuracy: '0.5' } });
    const b = createPresetModel(engine, name, { seed: 2 });
    importSafetensors(b, bytes, `${name}.safetensors`);
    assert.deepEqual(b.params(), a.params(), `${name}: parameters`);
    assert.deepEqual(b.running(), a.running(), `${name}: running statistics`);
    assert.equal(b.statSteps, a.runningCount ? 42 : 0, `${name}: num_batches_tracked`);
    assert.equal(b.adamSteps, 0, `${name}: Adam starts afresh`);
    a.destroy();
    b.destroy();
  }
});

test('the layout follows the format: u64 length, padded JSON, state_dict order, contiguous aligned data', () => {
  const model = populated(createPresetModel(engine, 'resnet'));
  const bytes = exportSafetensors(model, { metadata: { test_accuracy: 0.713 } });
  const { json, dataStart } = header(bytes);
  assert.equal(dataStart % 8, 0, 'header padded to 8 bytes');
  assert.match(new TextDecoder().decode(bytes.subarray(8, dataStart)), /^\{.*\} *$/s);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  assert.deepEqual(names.slice(0, 6), ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
  assert.deepEqual(names.filter((n) => !n.endsWith('num_batches_tracked')), model.tensorNames, 'state_dict order');
  assert.deepEqual(json['bn1.num_batches_tracked'], { dtype: 'I64', shape: [], data_offsets: json['bn1.num_batches_tracked'].data_offsets });
  assert.deepEqual(json['res2.shortcut.conv1.weight'].shape, [32, 16, 1, 1]);
  for (const name of names) {
    const { dtype, data_offsets: [begin] } = json[name];
    assert.equal(begin % (dtype === 'I64' ? 8 : 4), 0, `${name} is aligned`);
  }
  const meta = json.__metadata__;
  assert.equal(meta.format, 'pt');
  assert.equal(meta.test_accuracy, '0.713');
  assert.match(meta['webtrain.model'], /^# A small ResNet/);
  assert.deepEqual(JSON.parse(meta['webtrain.data']), { channels: 3, height: 32, width: 32, classes: 10, mean: [], std: [] });
  const total = Math.max(...names.map((n) => json[n].data_offsets[1]));
  assert.equal(bytes.length, dataStart + total);
  const withFormat = header(exportSafetensors(model, { format: CIFAR10_FORMAT })).json.__metadata__;
  assert.deepEqual(JSON.parse(withFormat['webtrain.data']).mean, [0.5, 0.5, 0.5]);
});

test('every kind of corrupt file is refused with its name and the model untouched', () => {
  const source = populated(createPresetModel(engine, 'resnet', { seed: 3 }), 11);
  const good = exportSafetensors(source);
  const { json, dataStart } = header(good);
  const data = good.subarray(dataStart);
  const edit = (change) => { const j = structuredClone(json); change(j); return withHeader(j, data); };
  const at = (name) => dataStart + json[name].data_offsets[0];
  const setFloat = (name, i, v) => { const b = good.slice(); new DataView(b.buffer).setFloat32(at(name) + 4 * i, v, true); return b; };
  const lengthSays = (n) => { const b = good.slice(); new DataView(b.buffer).setBigUint64(0, n, true); return b; };
  const other = exportSafetensors(createPresetModel(engine, 'simplecnn'));
  const relu2gelu = exportSafetensors(createModelFromDescription(engine, readFileSync(new URL('../web/models/resnet.txt', import.meta.url), 'utf8').replace(/^relu$/m, 'gelu'), CIFAR10_FORMAT));
  const kinds = [
    ['empty', new Uint8Array(0), /0 bytes is too short/],
    ['shorter than the length field', good.subarray(0, 5), /too short/],
    ['header length beyond the file', lengthSays(BigInt(good.length)), /truncated: the header length says/],
    ['header length over the limit', lengthSays(2n ** 63n), /more than the format's 100000000-byte limit/],
    ['header length of 0', lengthSays(0n), /too short for the JSON header/],
    ['truncated data', good.subarray(0, good.length - 3), /beyond the .* bytes of tensor data|belong to no tensor/],
    ['truncated header', good.subarray(0, 100), /truncated/],
    ['trailing garbage', Buffer.concat([good, Buffer.from('garbage!')]), /8 bytes after the last tensor belong to no tensor/],
    ['header not JSON', (() => { const b = good.slice(); b[9] = 0x2c; return b; })(), /not valid JSON/],
    ['header not UTF-8', (() => { const b = good.slice(); b[30] = 0xff; return b; })(), /not UTF-8/],
    ['header not an object', withHeader([1, 2], data), /does not start with '\{'/],
    ['metadata not strings', edit((j) => { j.__metadata__.n = 5; }), /__metadata__ entry 'n' is not a string/],
    ['unknown dtype', edit((j) => { j['fc1.bias'].dtype = 'F33'; }), /'fc1.bias' has an unknown dtype "F33"/],
    ['wrong dtype', edit((j) => { j['fc1.weight'].dtype = 'I32'; }), /'fc1.weight' is I32, expected F32/],
    ['F64 instead of F32', withHeader({ ...json, 'fc1.bias': { ...json['fc1.bias'], dtype: 'F64', shape: [5] } }, data), /'fc1.bias' is F64, expected F32 \(convert it with .float\(\)/],
    ['wrong shape, same size', edit((j) => { j['fc1.weight'].shape = [64, 10]; }), /'fc1.weight' has shape \[64, 10\], expected \[10, 64\]/],
    ['shape and offsets disagree', edit((j) => { j['fc1.weight'].shape = [10, 63]; }), /needs 2520 bytes but its data_offsets .* span 2560/],
    ['negative shape', edit((j) => { j['fc1.weight'].shape = [-10, -64]; }), /shape that is not a list of whole numbers/],
    ['missing tensor', edit((j) => { delete j['res3.bn2.running_var']; }), /bytes .* belong to no tensor|lacks 'res3.bn2.running_var'/],
    ['missing tensor, data too', (() => { const j = structuredClone(json); const [b, e] = j['bn1.num_batches_tracked'].data_offsets; delete j['bn1.num_batches_tracked']; for (const k of Object.keys(j)) if (j[k].data_offsets?.[0] >= e) j[k].data_offsets = j[k].data_offsets.map((o) => o - (e - b)); return withHeader(j, Buffer.concat([data.subarray(0, b), data.subarray(e)])); })(), /lacks 'bn1.num_batches_tracked'/],
    ['unknown tensor', withHeader({ ...json, 'extra.weight': { dtype: 'F32', shape: [1], data_offsets: [data.length, data.length + 4] } }, Buffer.concat([data, Buffer.alloc(4)])), /has tensors this model does not: 'extra.weight'/],
    ['another model', other, /lacks 'bn1.weight'.*another model/],
    ['another model with the same tensors', relu2gelu, /it holds another model: layer 3: relu1 \(relu\) here, gelu1 \(gelu\) in the other/],
    ['overlapping offsets', edit((j) => { j['fc1.bias'].data_offsets = j['fc1.weight'].data_offsets.map((o, i) => (i ? o - 2520 : o)); }), /overlaps|belong to no tensor/],
    ['offsets out of range', edit((j) => { j['fc1.bias'].data_offsets = [data.length, data.length + 40]; }), /beyond the .* bytes of tensor data/],
    ['offsets end before they begin', edit((j) => { const [b, e] = j['fc1.bias'].data_offsets; j['fc1.bias'].data_offsets = [e, b]; }), /end before they begin/],
    ['offsets not numbers', edit((j) => { j['fc1.bias'].data_offsets = ['0', 40]; }), /data_offsets that are not two whole numbers/],
    ['unknown field', edit((j) => { j['fc1.bias'].layout = 'strided'; }), /unknown field 'layout'/],
    ['NaN', setFloat('res2.conv1.weight', 5, NaN), /'res2.conv1.weight' holds a non-finite value \(NaN\) at element 5/],
    ['infinity', setFloat('fc1.bias', 9, -Infinity), /'fc1.bias' holds a non-finite value \(-Infinity\) at element 9/],
    ['negative variance', setFloat('res1.bn2.running_var', 3, -0.5), /'res1.bn2.running_var' holds a negative variance/],
    ['negative num_batches_tracked', (() => { const b = good.slice(); new DataView(b.buffer).setBigInt64(at('bn1.num_batches_tracked'), -1n, true); return b; })(), /'bn1.num_batches_tracked' is -1/],
    ['huge num_batches_tracked', (() => { const b = good.slice(); new DataView(b.buffer).setBigInt64(at('bn1.num_batches_tracked'), 2n ** 40n, true); return b; })(), /expected a count from 0 to 2147483647/],
  ];
  const model = populated(createPresetModel(engine, 'resnet', { seed: 4 }), 13);
  const before = snapshot(model);
  for (const [kind, bytes, message] of kinds) {
    assert.throws(() => importSafetensors(model, bytes, 'bad.safetensors'), (error) => {
      assert.ok(error instanceof SafetensorsError, `${kind}: a SafetensorsError, got ${error.stack}`);
      assert.match(error.message, /^bad\.safetensors: /, `${kind}: names the file`);
      assert.match(error.message, message, `${kind}`);
      return true;
    }, kind);
    assertUntouched(model, before, kind);
  }
  importSafetensors(model, good, 'good.safetensors');
  assert.deepEqual(model.params(), source.params());
});

/** The values a (valid) file holds for each name, to check a load was whole. */
function fileValues(bytes) {
  const { tensors } = parseSafetensors(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map();
  for (const [name, t] of tensors) {
    if (t.dtype === 'I64') out.set(name, [Number(view.getBigInt64(t.begin, true))]);
    else out.set(name, Array.from({ length: (t.end - t.begin) / 4 }, (_, i) => view.getFloat32(t.begin + 4 * i, true)));
  }
  return out;
}

test('fuzz: thousands of mutated files each end in a clean refusal or a whole load', (t) => {
  // A small net with every kind of tensor (conv bias-less, batch norm 2d and 1d, linear), so each
  // mutation is cheap and many land in the header.
  const text = 'conv(4, 3, bias=false)\nbatchnorm\nrelu\nmaxpool(4)\nflatten\nlinear(8)\nbatchnorm\nlinear(classes)\n';
  const model = populated(createModelFromDescription(engine, text, CIFAR10_FORMAT), 5);
  const good = exportSafetensors(model);
  const { json, dataStart } = header(good);
  const baseline = model.exportState();
  const before = snapshot(model);
  let seed = 12345;
  const rand = (n) => { seed = (seed * 1664525 + 1013904223) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
  const headerText = new TextDecoder().decode(good.subarray(8, dataStart));
  const mutations = [
    () => good.subarray(0, rand(good.length)),                                       // truncation
    () => { const b = good.slice(); for (let k = 1 + rand(4); k--;) b[rand(b.length)] ^= 1 << rand(8); return b; }, // bit flips
    () => { const b = good.slice(); const i = 8 + rand(dataStart - 8); b[i] ^= 1 << rand(8); return b; },          // a header bit
    () => { const b = good.slice(); for (let k = rand(16); k--;) b[rand(b.length)] = rand(256); return b; },       // random bytes
    () => { const b = good.slice(); b.set([rand(256), rand(256), rand(4)], rand(8)); return b; },                  // length field
    () => Buffer.concat([good, Buffer.alloc(1 + rand(16), rand(256))]),              // trailing bytes
    () => {                                                                          // header text edits
      const chars = '{}[]",:0123456789-eE. FI';
      let t = headerText;
      for (let k = 1 + rand(3); k--;) {
        const i = rand(t.length);
        t = rand(2) ? t.slice(0, i) + chars[rand(chars.length)] + t.slice(i + 1) : t.slice(0, i) + t.slice(i + 1 + rand(4));
      }
      const head = Buffer.from(t);
      const out = new Uint8Array(8 + head.length + good.length - dataStart);
      new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
      out.set(head, 8);
      out.set(good.subarray(dataStart), 8 + head.length);
      return out;
    },
    () => {                                                                          // structured edits
      const j = structuredClone(json);
      const names = Object.keys(j).filter((k) => k !== '__metadata__');
      const e = j[names[rand(names.length)]];
      const choice = rand(5);
      if (choice === 0) e.data_offsets[rand(2)] += rand(9) - 4;
      else if (choice === 1) e.shape = e.shape.length ? e.shape.map((d) => d + rand(3) - 1) : [1];
      else if (choice === 2) e.dtype = ['F16', 'BF16', 'F64', 'I64', 'F32', 'U8'][rand(6)];
      else if (choice === 3) delete j[names[rand(names.length)]];
      else j[`${names[rand(names.length)]}x`] = e;
      return withHeader(j, good.subarray(dataStart));
    },
    () => { const b = good.slice(); new DataView(b.buffer).setFloat32(dataStart + 4 * rand((b.length - dataStart) / 4), [NaN, Infinity, -1, 1e38][rand(4)], true); return b; },
  ];
  const counts = { refused: 0, loaded: 0 };
  const MUTATIONS = 3000;
  let i = 0;
  for (; i < MUTATIONS; i++) {
    const bytes = mutations[i % mutations.length]();
    try {
      importSafetensors(model, bytes, 'fuzz.safetensors');
    } catch (error) {
      if (!(error instanceof SafetensorsError)) assert.fail(`mutation ${i} (kind ${i % mutations.length}) crashed the reader: ${error.stack}`);
      assert.match(error.message, /^fuzz\.safetensors: ./);
      assertUntouched(model, before, `mutation ${i}`);
      counts.refused++;
      continue;
    }
    // Loaded: the model holds exactly what the file says, every tensor of it.
    const loaded = fileValues(exportSafetensors(model));
    for (const [name, values] of fileValues(bytes)) {
      if (name.endsWith('num_batches_tracked')) continue;
      assert.deepEqual(loaded.get(name), values, `mutation ${i}: ${name} loaded whole`);
    }
    counts.loaded++;
    model.importState(baseline);
  }
  t.diagnostic(`${i} mutations: ${counts.refused} refused, ${counts.loaded} loaded`);
  assert.ok(counts.refused > i / 2 && counts.loaded > 0, `refused ${counts.refused}, loaded ${counts.loaded} of ${i}`);
});

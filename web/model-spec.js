// From a parsed description (model-description.js) to the engine: the int32 spec the C engine
// plans from (its layout is documented in src/spec.c), a model made from a description with the
// engine's errors mapped back to the description's lines, the state_dict names of the model's
// tensors, and the summary table. Shapes, parameter counts and FLOPs come from the engine: this
// module mirrors none of them.
import { parseDescription, DescriptionError, normalizationOf } from './model-description.js';

const SPEC_MAGIC = 0x314e5457; // "WTN1"
const HEADER_WORDS = 20;
const NODE_WORDS = 10;

/** Node kinds (src/internal.h, WT_OP_*). */
export const KINDS = Object.freeze({
  conv: 1, linear: 2, relu: 3, gelu: 4, maxpool: 5, avgpool: 6, globalavgpool: 7, globalmaxpool: 8,
  batchnorm: 9, dropout: 10, flatten: 11, scale: 12, residual: 20, shortcut: 21, end: 22,
});
/** A conv's init (spec i6, src/internal.h WT_CONV_INIT_*). */
const CONV_INITS = ['default', 'dirac', 'whiten'];
const KIND_NAMES = Object.fromEntries(Object.entries(KINDS).map(([name, kind]) => [kind, name === 'end' ? 'add' : name]));

/** A layer's type for display: the description's name, 'add' for the residual block's join. */
export const layerType = (kind) => KIND_NAMES[kind];

const floatBits = (() => {
  const f = new Float32Array(1), i = new Int32Array(f.buffer);
  return (x) => { f[0] = x; return i[0]; };
})();

/**
 * The spec of a description for a data format ({ channels, height, width, classes, mean, std }).
 * Returns { spec: Int32Array, nodes }: nodes[i] is the JSON layer of spec node i (the residual's
 * for its 'residual', 'shortcut' and 'end' nodes), for error messages.
 */
export function encodeSpec(json, format, { head = true } = {}) {
  const nodes = [];
  const words = [];
  const resolve = (v) => (v === 'classes' ? format.classes : v);
  const push = (layer, kind, ints = [], floats = []) => {
    const node = new Array(NODE_WORDS).fill(0);
    node[0] = kind;
    ints.forEach((v, i) => { node[1 + i] = v ?? 0; });
    floats.forEach((v, i) => { node[8 + i] = floatBits(v); });
    words.push(...node);
    nodes.push(layer);
  };
  const walk = (layers) => {
    for (const l of layers) {
      switch (l.type) {
        case 'conv': {
          const whiten = l.init === 'whiten';
          push(l, KINDS.conv, [resolve(l.out_channels), l.kernel_size, l.stride, l.padding === 'same' ? -1 : l.padding, l.bias ? 1 : 0, l.in_channels ?? 0, CONV_INITS.indexOf(l.init ?? 'default')],
            whiten ? [l.whiten_eps, l.whiten_images] : []);
          break;
        }
        case 'linear':
          push(l, KINDS.linear, [resolve(l.out_features), 0, 0, 0, l.bias ? 1 : 0, l.in_features ?? 0]);
          break;
        case 'gelu': push(l, KINDS.gelu, [l.approximate === 'tanh' ? 1 : 0]); break;
        case 'maxpool': case 'avgpool':
          push(l, KINDS[l.type], [l.kernel_size, l.stride ?? l.kernel_size, l.padding]);
          break;
        case 'batchnorm':
          push(l, KINDS.batchnorm, [l.dims ?? 0, l.weight === 'frozen' ? 1 : 0, 0, 0, l.affine ? 1 : 0, l.num_features ?? 0], [l.eps, l.momentum]);
          break;
        case 'dropout': push(l, KINDS.dropout, [], [l.p]); break;
        case 'scale': push(l, KINDS.scale, [], [l.factor]); break;
        case 'residual':
          push(l, KINDS.residual);
          walk(l.body);
          if (l.shortcut.length) {
            push(l, KINDS.shortcut);
            walk(l.shortcut);
          }
          push(l, KINDS.end);
          break;
        default:
          if (!(l.type in KINDS)) throw new DescriptionError(l.line, `unknown layer '${l.type}'`, l.line);
          push(l, KINDS[l.type]);
      }
    }
  };
  walk(json.layers);
  const header = new Array(HEADER_WORDS).fill(0);
  header[0] = SPEC_MAGIC;
  header[1] = HEADER_WORDS;
  header[2] = format.channels;
  header[3] = format.height;
  header[4] = format.width;
  header[5] = format.classes;
  header[6] = json.settings?.ghost_batch ?? 8;
  header[7] = nodes.length;
  header[16] = head ? 0 : 1; // no loss head: per-layer tests
  // Normalisation of up to 4 image channels; a headless test net takes normalised input.
  const { mean, std } = head ? normalizationOf(json, format) : { mean: [], std: [] };
  for (let c = 0; head && c < Math.min(format.channels, 4); c++) {
    header[8 + c] = floatBits(mean[c] ?? 0.5);
    header[12 + c] = floatBits(std[c] ?? 0.5);
  }
  return { spec: Int32Array.from([...header, ...words]), nodes };
}

/** An engine error about node N, as the description's line: "line 7: conv conv2: ...". */
export function describeEngineError(error, nodes) {
  const match = /node (\d+): (.*)$/s.exec(error.message);
  const layer = match ? nodes[Number(match[1])] : null;
  if (!layer) return error;
  const what = `${layer.type}${layer.name ? ` ${layer.path ?? layer.name}` : ''}`;
  const described = new DescriptionError(layer.line, `${what}: ${match[2]}`);
  described.cause = error;
  return described;
}

/**
 * A model of the engine made from a description's text (or its parsed JSON) for a data format.
 * Throws a DescriptionError naming the line for a bad description, whether the parser or the
 * engine (shapes) finds the fault; nothing is half-built.
 */
export function createModelFromDescription(engine, source, format, { maxBatch = 64, seed = 0, head = true } = {}) {
  const json = typeof source === 'string' ? parseDescription(source) : source;
  const text = typeof source === 'string' ? source : '';
  const { spec, nodes } = encodeSpec(json, format, { head });
  let model;
  try {
    model = engine.createModel({ spec, text, maxBatch, seed });
  } catch (error) {
    throw describeEngineError(error, nodes);
  }
  return attachDescription(model, json, nodes);
}

/**
 * Gives a model made from a spec (a checkpoint's, say) its description: the JSON form, the spec
 * node of each layer, the state_dict names of its tensors and the names of its layers.
 */
export function attachDescription(model, json, nodes = encodeSpec(json, { ...model.format, mean: [], std: [] }).nodes) {
  model.description = json;
  model.nodes = nodes;
  model.tensorNames = tensorNames(model, nodes);
  model.layerNames = model.layers.map((l) => nodes[l.node].path ?? nodes[l.node].name);
  return model;
}

/** The state_dict name of each of the model's tensors (the engine's tensor table, in its order). */
export function tensorNames(model, nodes) {
  return model.tensors.map((t) => `${nodes[model.layers[t.layer].node].path}.${t.role}`);
}

/**
 * The summary table, as torchinfo prints it: one row per layer (name, type, output shape,
 * parameters, forward MFLOP per image), then the totals. `model` from createModelFromDescription.
 */
export function summarize(model) {
  const rows = model.layers.map((l, i) => {
    const node = model.nodes[l.node];
    const type = layerType(l.kind);
    return { name: model.layerNames[i], type, line: node.line, shape: l.shape, params: l.params, mflops: l.flops / 1e6 };
  });
  const totals = {
    params: model.paramCount,
    trainable: model.tensors.filter((t) => t.trainable).reduce((n, t) => n + t.count, 0),
    buffers: model.runningCount,
    mflops: rows.reduce((sum, r) => sum + r.mflops, 0),
  };
  return { rows, totals, input: [model.format.channels, model.format.height, model.format.width], classes: model.classes };
}

const shapeText = (shape) => shape.join('×');

/** The summary as a plain-text table (the CLI's --print-model). */
export function formatSummary({ rows, totals, input }) {
  const table = [['layer', 'type', 'output', 'params', 'MFLOP'], ['input', '', shapeText(input), '', '']];
  for (const r of rows) table.push([r.name, r.type, shapeText(r.shape), r.params ? r.params.toLocaleString('en') : '', r.mflops ? r.mflops.toFixed(3) : '']);
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const line = (row) => row.map((cell, c) => (c >= 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const rule = '-'.repeat(line(table[0]).length);
  return [
    line(table[0]), rule, ...table.slice(1).map(line), rule,
    `Parameters: ${totals.params.toLocaleString('en')} (${(totals.params * 4 / 1024).toFixed(1)} KiB as float32` +
      `${totals.trainable !== totals.params ? `; ${totals.trainable.toLocaleString('en')} trainable, the rest frozen` : ''})` +
      `${totals.buffers ? `; running statistics: ${totals.buffers.toLocaleString('en')}` : ''}`,
    `Forward: ${totals.mflops.toFixed(2)} MFLOP per image (a training step: about 3x that)`,
  ].join('\n');
}

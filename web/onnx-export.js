// ONNX export: a model as an inference graph (opset 13) that ONNX Runtime and other runtimes run.
// The input `pixels` is uint8 (N, C, H, W), raw pixels in record order; the graph casts and
// normalises them as webtrain does, so a caller feeds pixels straight from a canvas or a record.
// The output is `logits` (N, classes). The batch dimension is free. The few protobuf messages of
// onnx.proto are written by hand below (see the README for why no protobuf library).

export const OPSET = 13;
const IR_VERSION = 7; // the IR version of opset 13 (ONNX 1.8)

// onnx.proto's enums.
const DATA_TYPE = { FLOAT: 1, UINT8: 2, INT64: 7 };
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 };

// ---------------------------------------------------------------------------------------------
// Protocol buffers: a message is a list of fields, each a key (field number and wire type) and a
// value. Only what onnx.proto's messages here need: varints (wire 0), fixed32 floats (wire 5) and
// length-delimited bytes, strings and messages (wire 2). Repeated scalars are written unpacked,
// as proto2 (onnx.proto's syntax) defines them; every parser accepts that form.
// ---------------------------------------------------------------------------------------------

const utf8 = new TextEncoder();

/** A message under construction: fields appended in order, serialised once by bytes(). */
class Message {
  constructor() { this.parts = []; this.length = 0; }

  #push(part) { this.parts.push(part); this.length += part.length; }

  #varint(value) {
    let v = BigInt(value);
    if (v < 0n) v += 1n << 64n; // int64 as two's complement, ten bytes
    const out = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v) byte |= 0x80;
      out.push(byte);
    } while (v);
    this.#push(Uint8Array.from(out));
  }

  #key(field, wire) { this.#varint((field << 3) | wire); }

  int(field, value) { this.#key(field, 0); this.#varint(value); return this; }
  ints(field, values) { for (const v of values) this.int(field, v); return this; }

  float(field, value) {
    this.#key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#push(b);
    return this;
  }

  bytes(field, value) { this.#key(field, 2); this.#varint(value.length); this.#push(value); return this; }
  string(field, value) { return this.bytes(field, utf8.encode(value)); }
  message(field, m) { return this.bytes(field, m.toBytes()); }

  toBytes() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) { out.set(p, at); at += p.length; }
    return out;
  }
}

// onnx.proto field numbers, message by message.
const TensorProto = { dims: 1, data_type: 2, name: 8, raw_data: 9 };
const AttributeProto = { name: 1, f: 2, i: 3, s: 4, ints: 8, type: 20 };
const NodeProto = { input: 1, output: 2, name: 3, op_type: 4, attribute: 5 };
const GraphProto = { node: 1, name: 2, initializer: 5, doc_string: 10, input: 11, output: 12 };
const ValueInfoProto = { name: 1, type: 2 };
const TypeProto = { tensor_type: 1 };
const TypeProtoTensor = { elem_type: 1, shape: 2 };
const TensorShapeProto = { dim: 1 };
const Dimension = { dim_value: 1, dim_param: 2 };
const ModelProto = { ir_version: 1, producer_name: 2, producer_version: 3, doc_string: 6, graph: 7, opset_import: 8, metadata_props: 14 };
const OperatorSetIdProto = { version: 2 };
const StringStringEntryProto = { key: 1, value: 2 };

function tensorProto(name, dims, values) {
  const raw = new Uint8Array(4 * values.length);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return new Message().ints(TensorProto.dims, dims).int(TensorProto.data_type, DATA_TYPE.FLOAT)
    .string(TensorProto.name, name).bytes(TensorProto.raw_data, raw);
}

function attribute(name, value) {
  const m = new Message().string(AttributeProto.name, name);
  if (Array.isArray(value)) return m.ints(AttributeProto.ints, value).int(AttributeProto.type, ATTRIBUTE_TYPE.INTS);
  if (typeof value === 'string') return m.string(AttributeProto.s, value).int(AttributeProto.type, ATTRIBUTE_TYPE.STRING);
  if (typeof value === 'object') return m.float(AttributeProto.f, value.float).int(AttributeProto.type, ATTRIBUTE_TYPE.FLOAT);
  return m.int(AttributeProto.i, value).int(AttributeProto.type, ATTRIBUTE_TYPE.INT);
}

/** A float attribute's value (a bare number is an INT attribute). */
const asFloat = (v) => ({ float: v });

function valueInfo(name, elemType, dims) {
  const shape = new Message();
  for (const d of dims) {
    shape.message(TensorShapeProto.dim, typeof d === 'string'
      ? new Message().string(Dimension.dim_param, d) : new Message().int(Dimension.dim_value, d));
  }
  const tensor = new Message().int(TypeProtoTensor.elem_type, elemType).message(TypeProtoTensor.shape, shape);
  return new Message().string(ValueInfoProto.name, name)
    .message(ValueInfoProto.type, new Message().message(TypeProto.tensor_type, tensor));
}

// ---------------------------------------------------------------------------------------------
// The graph.
// ---------------------------------------------------------------------------------------------

/** Builds nodes and initializers, naming every value uniquely. */
class GraphBuilder {
  constructor() {
    this.nodes = [];
    this.initializers = [];
    this.used = new Set(['pixels', 'logits']); // the graph's input and output
  }

  unique(name) {
    let out = name, n = 1;
    while (this.used.has(out)) out = `${name}_${++n}`;
    this.used.add(out);
    return out;
  }

  constant(name, dims, values) {
    const unique = this.unique(name);
    this.initializers.push(tensorProto(unique, dims, values));
    return unique;
  }

  /** Adds a node; returns its output's name (`name`, made unique unless `exact`). */
  node(opType, inputs, name, attributes = {}, { exact = false } = {}) {
    const output = exact ? name : this.unique(name);
    const m = new Message();
    for (const input of inputs) m.string(NodeProto.input, input);
    m.string(NodeProto.output, output).string(NodeProto.name, output).string(NodeProto.op_type, opType);
    for (const [key, value] of Object.entries(attributes)) m.message(NodeProto.attribute, attribute(key, value));
    this.nodes.push(m);
    return output;
  }
}

/** The model's tensors by state_dict name: { shape, values } (copies). */
function tensorsByName(model) {
  const params = model.paramsView(), running = model.runningView();
  const out = new Map();
  model.tensors.forEach((t, i) => {
    const source = t.role === 'weight' || t.role === 'bias' ? params : running;
    out.set(model.tensorNames[i], { shape: t.shape, values: source.slice(t.offset, t.offset + t.count) });
  });
  return out;
}

/** Padding of a layer as ONNX's pads (begin, begin, end, end); 'same' is odd kernels only in webtrain. */
function pads(l) {
  const p = l.padding === 'same' ? (l.kernel_size - 1) / 2 : l.padding;
  return [p, p, p, p];
}

function emitLayers(g, layers, x, weights) {
  for (const l of layers) x = emitLayer(g, l, x, weights);
  return x;
}

function emitLayer(g, l, x, weights) {
  const path = l.path ?? l.name;
  const weight = (role) => {
    const name = `${path}.${role}`;
    const t = weights.get(name);
    if (!t) throw new Error(`onnx export: the model has no tensor '${name}'`);
    if (!g.used.has(name)) {
      g.used.add(name);
      g.initializers.push(tensorProto(name, t.shape, t.values));
    }
    return name;
  };
  switch (l.type) {
    case 'conv': {
      const inputs = [x, weight('weight'), ...(l.bias ? [weight('bias')] : [])];
      return g.node('Conv', inputs, path, { kernel_shape: [l.kernel_size, l.kernel_size], strides: [l.stride, l.stride], pads: pads(l), dilations: [1, 1], group: 1 });
    }
    case 'linear':
      return g.node('Gemm', [x, weight('weight'), ...(l.bias ? [weight('bias')] : [])], path, { transB: 1 });
    case 'relu': return g.node('Relu', [x], path);
    case 'gelu': {
      // Opset 13 has no Gelu: x * 0.5 * (1 + erf(x / sqrt 2)), or the tanh form, as webtrain computes them.
      const half = g.node('Mul', [x, g.constant(`${path}.half`, [], [0.5])], `${path}.half_x`);
      let inner;
      if (l.approximate === 'tanh') {
        const cube = g.node('Mul', [g.node('Mul', [x, x], `${path}.x2`), x], `${path}.x3`);
        const poly = g.node('Add', [x, g.node('Mul', [cube, g.constant(`${path}.c`, [], [0.044715])], `${path}.cx3`)], `${path}.poly`);
        inner = g.node('Tanh', [g.node('Mul', [poly, g.constant(`${path}.sqrt_2_over_pi`, [], [Math.sqrt(2 / Math.PI)])], `${path}.scaled`)], `${path}.tanh`);
      } else {
        inner = g.node('Erf', [g.node('Mul', [x, g.constant(`${path}.sqrt1_2`, [], [Math.SQRT1_2])], `${path}.scaled`)], `${path}.erf`);
      }
      return g.node('Mul', [half, g.node('Add', [inner, g.constant(`${path}.one`, [], [1])], `${path}.one_plus`)], path);
    }
    case 'maxpool':
    case 'avgpool': {
      const stride = l.stride ?? l.kernel_size;
      const attributes = { kernel_shape: [l.kernel_size, l.kernel_size], strides: [stride, stride], pads: pads(l) };
      if (l.type === 'avgpool') attributes.count_include_pad = 1; // PyTorch's default, and webtrain's
      return g.node(l.type === 'maxpool' ? 'MaxPool' : 'AveragePool', [x], path, attributes);
    }
    case 'globalavgpool': return g.node('GlobalAveragePool', [x], path);
    case 'globalmaxpool': return g.node('GlobalMaxPool', [x], path);
    case 'batchnorm': {
      const n = weights.get(`${path}.running_mean`).shape[0];
      const scale = l.affine ? weight('weight') : g.constant(`${path}.ones`, [n], new Float32Array(n).fill(1));
      const bias = l.affine ? weight('bias') : g.constant(`${path}.zeros`, [n], new Float32Array(n));
      return g.node('BatchNormalization', [x, scale, bias, weight('running_mean'), weight('running_var')], path, { epsilon: asFloat(l.eps) });
    }
    case 'dropout': return x; // inference: the identity
    case 'flatten': return g.node('Flatten', [x], path, { axis: 1 });
    case 'scale': return g.node('Mul', [x, g.constant(`${path}.factor`, [], [l.factor])], path);
    case 'residual': {
      const body = emitLayers(g, l.body, x, weights);
      const shortcut = emitLayers(g, l.shortcut, x, weights);
      return g.node('Add', [body, shortcut], path);
    }
    default:
      throw new Error(`onnx export: layer type '${l.type}' has no ONNX form`);
  }
}

/**
 * The model as an ONNX file (Uint8Array). `format` gives the pixels' normalisation ({ mean, std }
 * per channel, as CIFAR10_FORMAT); `metadata` string pairs go into the model's metadata_props,
 * beside the model description.
 */
export function exportOnnx(model, { format, metadata = {}, version = '' } = {}) {
  if (!model.description || !model.tensorNames) throw new TypeError('onnx export: the model needs its description (createModelFromDescription or attachDescription)');
  const { channels, height, width, classes } = model.format;
  const perChannel = (v) => Array.from({ length: channels }, (_, c) => (Array.isArray(v) || ArrayBuffer.isView(v) ? v[c] : v));
  const mean = perChannel(format?.mean ?? 0.5), std = perChannel(format?.std ?? 0.5);
  const g = new GraphBuilder();
  // As the engine's table: ((float)v / 255 - mean[c]) / std[c], each step in float32.
  let x = g.node('Cast', ['pixels'], 'pixels_float', { to: DATA_TYPE.FLOAT });
  x = g.node('Div', [x, g.constant('255', [], [255])], 'unit');
  x = g.node('Sub', [x, g.constant('mean', [1, channels, 1, 1], mean)], 'centred');
  x = g.node('Div', [x, g.constant('std', [1, channels, 1, 1], std)], 'input');
  x = emitLayers(g, model.description.layers, x, tensorsByName(model));
  // The last value is renamed `logits` by an Identity, so layer names stay the description's.
  g.node('Identity', [x], 'logits', {}, { exact: true });

  const graph = new Message();
  for (const n of g.nodes) graph.message(GraphProto.node, n);
  graph.string(GraphProto.name, 'webtrain');
  for (const t of g.initializers) graph.message(GraphProto.initializer, t);
  graph.string(GraphProto.doc_string, 'pixels: uint8 (N, C, H, W) raw pixels; logits: float (N, classes)');
  graph.message(GraphProto.input, valueInfo('pixels', DATA_TYPE.UINT8, ['N', channels, height, width]));
  graph.message(GraphProto.output, valueInfo('logits', DATA_TYPE.FLOAT, ['N', classes]));

  const text = model.source().text;
  const props = { 'webtrain.model': text, ...Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, String(v)])) };
  const out = new Message()
    .int(ModelProto.ir_version, IR_VERSION)
    .string(ModelProto.producer_name, 'webtrain')
    .string(ModelProto.producer_version, version)
    .message(ModelProto.graph, graph)
    .message(ModelProto.opset_import, new Message().int(OperatorSetIdProto.version, OPSET));
  for (const [key, value] of Object.entries(props)) {
    if (value) out.message(ModelProto.metadata_props, new Message().string(StringStringEntryProto.key, key).string(StringStringEntryProto.value, value));
  }
  return out.toBytes();
}

// The model description format (web/model-description.js): every layer type and alias with its
// defaults, every error with its line, names, the canonical text, differences, link encoding and
// the presets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

import {
  parseDescription, formatDescription, describeDifference, encodeForUrl, decodeFromUrl,
  DescriptionError, PRESETS, presetUrl, loadPreset, LAYER_TYPES, SETTINGS, FORMAT,
} from '../web/model-description.js';

/** The one layer a one-line description gives, without name, path and line. */
function layerOf(text) {
  const { layers } = parseDescription(text);
  assert.equal(layers.length, 1, text);
  const { name, path, line, ...rest } = layers[0];
  return rest;
}

/** The start of a text for a failure message. */
function excerpt(text) {
  return text.length > 300 ? `${text.slice(0, 300)}… (${text.length} characters)` : text;
}

function errorOf(text) {
  try {
    parseDescription(text);
  } catch (e) {
    assert.ok(e instanceof DescriptionError, `not a DescriptionError: ${e.stack}`);
    return e;
  }
  assert.fail(`no error for:\n${excerpt(text)}`);
}

function assertError(text, line, message) {
  const e = errorOf(text);
  assert.ok(e.message.length < 400, `a message of ${e.message.length} characters: ${excerpt(e.message)}`);
  assert.equal(e.line, line, `${excerpt(e.message)}\nfor:\n${excerpt(text)}`);
  const expected = line === null ? message : `line ${line}: ${message}`;
  if (message instanceof RegExp) assert.match(e.message, message);
  else assert.equal(e.message, expected);
}

/** Every layer of a JSON form, in description order (body before shortcut). */
function allLayers(layers, out = []) {
  for (const l of layers) {
    out.push(l);
    if (l.type === 'residual') { allLayers(l.body, out); allLayers(l.shortcut, out); }
  }
  return out;
}

function withoutLines(json) {
  return JSON.parse(JSON.stringify(json, (key, value) => (key === 'line' ? undefined : value)));
}

function presetText(name) {
  return readFileSync(presetUrl(name), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Layer types, their PyTorch names and their defaults.

const CONV_DEFAULTS = { type: 'conv', in_channels: null, stride: 1, padding: 0, bias: true, init: 'default', whiten_images: 5000, whiten_eps: 5e-4 };
const BN_DEFAULTS = { type: 'batchnorm', num_features: null, dims: null, eps: 1e-5, momentum: 0.1, affine: true, weight: 'trainable' };

// The spec's JSON fields per type, in its order.
const SPEC_FIELDS = {
  conv: ['in_channels', 'out_channels', 'kernel_size', 'stride', 'padding', 'bias', 'init', 'whiten_images', 'whiten_eps'],
  linear: ['in_features', 'out_features', 'bias'],
  relu: [], gelu: ['approximate'], flatten: [], globalavgpool: [], globalmaxpool: [],
  maxpool: ['kernel_size', 'stride', 'padding'], avgpool: ['kernel_size', 'stride', 'padding'],
  batchnorm: ['num_features', 'dims', 'eps', 'momentum', 'affine', 'weight'],
  dropout: ['p'], scale: ['factor'],
};

const LAYER_CASES = [
  ['conv(16, 3)', { ...CONV_DEFAULTS, out_channels: 16, kernel_size: 3 }],
  ['conv(16, 3, 2, 1, false)', { ...CONV_DEFAULTS, out_channels: 16, kernel_size: 3, stride: 2, padding: 1, bias: false }],
  ['conv(16, 3, padding=same)', { ...CONV_DEFAULTS, out_channels: 16, kernel_size: 3, padding: 'same' }],
  ["conv(16, 3, padding='valid')", { ...CONV_DEFAULTS, out_channels: 16, kernel_size: 3, padding: 0 }],
  ['conv(classes, kernel_size=(1, 1), stride=(2, 2), padding=(0, 0),)', { ...CONV_DEFAULTS, out_channels: 'classes', kernel_size: 1, stride: 2 }],
  ['nn.Conv2d(3, 6, 5)', { ...CONV_DEFAULTS, in_channels: 3, out_channels: 6, kernel_size: 5 }],
  ["Conv2d(3, 6, 5, 1, 2, 1, 1, False, 'zeros')", { ...CONV_DEFAULTS, in_channels: 3, out_channels: 6, kernel_size: 5, padding: 2, bias: false }],
  ['torch.nn.conv2D(in_channels=3, out_channels=6, kernel_size=(5, 5), dilation=(1, 1), groups=1)', { ...CONV_DEFAULTS, in_channels: 3, out_channels: 6, kernel_size: 5 }],
  ['LazyConv2d(8, 3, bias=False)', { ...CONV_DEFAULTS, out_channels: 8, kernel_size: 3, bias: false }],
  ["conv(32, 3, padding=1, bias=false, init='dirac')", { ...CONV_DEFAULTS, out_channels: 32, kernel_size: 3, padding: 1, bias: false, init: 'dirac' }],
  ["conv(24, 2, init='whiten', whiten_images=100, whiten_eps=1e-3)", { ...CONV_DEFAULTS, out_channels: 24, kernel_size: 2, init: 'whiten', whiten_images: 100, whiten_eps: 1e-3 }],
  ['linear(120)', { type: 'linear', in_features: null, out_features: 120, bias: true }],
  ['linear(classes, false)', { type: 'linear', in_features: null, out_features: 'classes', bias: false }],
  ['nn.Linear(400, 120)', { type: 'linear', in_features: 400, out_features: 120, bias: true }],
  ['Linear(in_features=400, out_features=120, bias=True)', { type: 'linear', in_features: 400, out_features: 120, bias: true }],
  ['LINEAR(7)', { type: 'linear', in_features: null, out_features: 7, bias: true }],
  ['LazyLinear(10, bias=false)', { type: 'linear', in_features: null, out_features: 10, bias: false }],
  ['relu', { type: 'relu' }],
  ['nn.ReLU(inplace=True)', { type: 'relu' }],
  ['ReLU(True)', { type: 'relu' }],
  ['gelu', { type: 'gelu', approximate: 'none' }],
  ["nn.GELU(approximate='tanh')", { type: 'gelu', approximate: 'tanh' }],
  ['gelu("none")', { type: 'gelu', approximate: 'none' }],
  ['maxpool(2)', { type: 'maxpool', kernel_size: 2, stride: 2, padding: 0 }],
  ['maxpool(3, 2, 1)', { type: 'maxpool', kernel_size: 3, stride: 2, padding: 1 }],
  ['nn.MaxPool2d(kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False)', { type: 'maxpool', kernel_size: 2, stride: 2, padding: 0 }],
  ['MaxPool2d((2, 2), (1, 1))', { type: 'maxpool', kernel_size: 2, stride: 1, padding: 0 }],
  ['avgpool(2)', { type: 'avgpool', kernel_size: 2, stride: 2, padding: 0 }],
  ['nn.AvgPool2d(4, stride=2, padding=2, count_include_pad=True)', { type: 'avgpool', kernel_size: 4, stride: 2, padding: 2 }],
  ['globalavgpool', { type: 'globalavgpool' }],
  ['nn.AdaptiveAvgPool2d((1, 1))', { type: 'globalavgpool' }],
  ['AdaptiveAvgPool2d(output_size=1)', { type: 'globalavgpool' }],
  ['globalmaxpool()', { type: 'globalmaxpool' }],
  ['nn.AdaptiveMaxPool2d(1)', { type: 'globalmaxpool' }],
  ['batchnorm', BN_DEFAULTS],
  ['batchnorm(1e-3, 0.01, false)', { ...BN_DEFAULTS, eps: 1e-3, momentum: 0.01, affine: false }],
  ['batchnorm(momentum=0, eps=.5)', { ...BN_DEFAULTS, eps: 0.5, momentum: 0 }],
  ['nn.BatchNorm2d(16)', { ...BN_DEFAULTS, num_features: 16, dims: 2 }],
  ['BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)', { ...BN_DEFAULTS, num_features: 16, dims: 2 }],
  ['nn.BatchNorm1d(120, affine=False)', { ...BN_DEFAULTS, num_features: 120, dims: 1, affine: false }],
  ['LazyBatchNorm2d()', { ...BN_DEFAULTS, dims: 2 }],
  ['LazyBatchNorm1d(momentum=1)', { ...BN_DEFAULTS, dims: 1, momentum: 1 }],
  ['batchnorm(eps=1e-12, momentum=0.4, weight=frozen)', { ...BN_DEFAULTS, eps: 1e-12, momentum: 0.4, weight: 'frozen' }],
  ['dropout', { type: 'dropout', p: 0.5 }],
  ['dropout(0)', { type: 'dropout', p: 0 }],
  ['nn.Dropout(p=0.25, inplace=False)', { type: 'dropout', p: 0.25 }],
  ['flatten', { type: 'flatten' }],
  ['nn.Flatten(start_dim=1, end_dim=-1)', { type: 'flatten' }],
  ['Flatten(1)', { type: 'flatten' }],
  ['scale(0.125)', { type: 'scale', factor: 0.125 }],
  ['scale(factor=-2)', { type: 'scale', factor: -2 }],
  ['scale(-1.5e-3)', { type: 'scale', factor: -1.5e-3 }],
];

test('every layer type and PyTorch name gives its JSON form with the defaults filled in', () => {
  for (const [text, expected] of LAYER_CASES) {
    assert.deepEqual(layerOf(text), expected, text);
    // The JSON form lists type, name, path, line, then the fields in the spec's order.
    assert.deepEqual(Object.keys(parseDescription(text).layers[0]), ['type', 'name', 'path', 'line', ...SPEC_FIELDS[expected.type]], text);
  }
  const covered = new Set(LAYER_CASES.map(([text]) => text.replace(/^(torch\.)?nn\./i, '').match(/^\w+/)[0].toLowerCase()));
  for (const t of LAYER_TYPES) {
    for (const form of t.forms) assert.ok(covered.has(form.name.toLowerCase()), `no case for ${form.name}`);
  }
});

test('lines: comments, blank lines, indentation, trailing commas, settings', () => {
  const json = parseDescription([
    '# a comment line',
    '',
    '   @ghost_batch 32   # images per block',
    '\tconv(4, 3,)   # conv1',
    '',
    "  gelu('tanh')  # a '#' inside quotes is not a comment: 'tanh' still read",
  ].join('\r\n'));
  assert.equal(json.format, FORMAT);
  assert.deepEqual(json.settings, { ghost_batch: 32, normalize: 'data' });
  assert.deepEqual(json.layers.map((l) => [l.path, l.line]), [['conv1', 4], ['gelu1', 6]]);
  assert.deepEqual(parseDescription('relu').settings, { ghost_batch: 8, normalize: 'data' }, 'defaults filled in');
  assert.deepEqual(Object.keys(parseDescription('relu').settings), SETTINGS.map((s) => s.key));
  assertError("gelu('no#ne')  # the first '#' is quoted", 1, "gelu: approximate must be 'none' or 'tanh', got 'no#ne'");
});

// ---------------------------------------------------------------------------------------------
// Errors: each with its line and its words.

const KNOWN_LAYERS = 'known: conv, linear, relu, gelu, maxpool, avgpool, globalavgpool, globalmaxpool, batchnorm, dropout, flatten, scale, residual';

const ERROR_CASES = [
  // [text, line, message]
  ['relu\nrelu\nconv(6, 5)\nrelu\nrelu\nrelu\nconv3d(6, 5)', 7, `unknown layer 'conv3d' (did you mean conv? ${KNOWN_LAYERS})`],
  ['Transformer(6, 5)', 1, `unknown layer 'Transformer' (${KNOWN_LAYERS})`],
  ['lienar(10)', 1, `unknown layer 'lienar' (did you mean linear? ${KNOWN_LAYERS})`],
  ['relu\n\nconv(16)', 3, 'conv: missing kernel_size'],
  ['conv(kernel_size=3)', 1, 'conv: missing out_channels'],
  ['Linear(120)', 1, 'Linear: missing out_features (Linear takes in_features first; linear(...) infers it)'],
  ['nn.BatchNorm2d()', 1, 'BatchNorm2d: missing num_features (BatchNorm2d takes num_features first; batchnorm(...) infers it)'],
  ['scale', 1, 'scale: missing factor'],
  ['nn.AdaptiveAvgPool2d()', 1, 'AdaptiveAvgPool2d: missing output_size'],
  ['relu\nrelu\nconv(16, kernal_size=3)', 3, "conv: unknown argument 'kernal_size' (did you mean kernel_size?)"],
  ['conv(16, 3, colour=1)', 1, "conv: unknown argument 'colour' (known: out_channels, kernel_size, stride, padding, bias, dilation, groups, padding_mode, init, whiten_images, whiten_eps)"],
  ["conv(16, 3, init='xavier')", 1, "conv: init must be 'default' or 'dirac' or 'whiten', got 'xavier'"],
  ['conv(16, 3, whiten_images=10)', 1, "whiten_images and whiten_eps apply only with init='whiten'"],
  ['batchnorm(affine=false, weight=frozen)', 1, "weight='frozen' needs affine=True (without affine there is no weight)"],
  ['conv(16, 3, in_channels=3)', 1, 'conv: in_channels is inferred from the input; Conv2d(in_channels, out_channels, ...) states it'],
  ['LazyBatchNorm2d(num_features=3)', 1, 'LazyBatchNorm2d: num_features is inferred from the input; BatchNorm2d(num_features, eps, ...) states it'],
  ['relu(1)', 1, 'relu: too many positional arguments (none)'],
  ['conv(1, 2, 3, 4, true, 6)', 1, 'conv: too many positional arguments (at most 5: out_channels, kernel_size, stride, padding, bias)'],
  ['conv(16, 3, stride=1, stride=2)', 1, 'conv: stride is given twice'],
  ['conv(16, 3, 1, stride=2)', 1, 'conv: stride is given twice'],
  ['conv(16, kernel_size=3, 1)', 1, 'a positional argument cannot follow a keyword argument'],
  ['relu\nrelu\nrelu\nconv(16, 3, stride=0)', 4, 'conv: stride must be a whole number >= 1, got 0'],
  ['conv(16, 3, stride=65)', 1, 'conv: stride must be at most 64, got 65'],
  ['conv(16, 65)', 1, 'conv: kernel_size must be at most 64, got 65'],
  ['conv(16, 1.5)', 1, 'conv: kernel_size must be a whole number >= 1, got 1.5'],
  ['conv(0, 3)', 1, 'conv: out_channels must be a whole number >= 1, got 0'],
  ['conv(65537, 3)', 1, 'conv: out_channels must be at most 65536, got 65537'],
  ["conv('sixteen', 3)", 1, "conv: out_channels must be a whole number >= 1, got 'sixteen'"],
  ['conv(16, 3, padding=-1)', 1, 'conv: padding must be a whole number >= 0, got -1'],
  ['conv(16, 3, padding=65)', 1, 'conv: padding must be at most 64, got 65'],
  ['conv(16, 3, padding=full)', 1, "conv: padding must be a whole number >= 0, got 'full'"],
  ['conv(16, (3, 5))', 1, 'conv: only square kernels are supported, got kernel_size=(3, 5)'],
  ['conv(16, 3, stride=(1, 2))', 1, 'conv: only square kernels are supported, got stride=(1, 2)'],
  ['conv(16, (3, 3, 3))', 1, 'conv: kernel_size must be a number or a pair, got (3, 3, 3)'],
  ['conv(16, 3, bias=1)', 1, 'conv: bias must be true or false, got 1'],
  ['conv(16, 3, groups=2)', 1, 'conv: groups=2 is not supported (only 1)'],
  ['Conv2d(3, 16, 3, dilation=2)', 1, 'Conv2d: dilation=2 is not supported (only 1)'],
  ["Conv2d(3, 16, 3, padding_mode='reflect')", 1, "Conv2d: padding_mode='reflect' is not supported (only 'zeros')"],
  ['Linear(0, 10)', 1, 'Linear: in_features must be a whole number >= 1, got 0'],
  ['Linear(classes, 10)', 1, 'Linear: in_features must be a whole number >= 1, got classes'],
  ['relu\nrelu\nrelu\nrelu\nconv(16, 3, stride=2, padding=same)', 5, "padding='same' needs stride 1 (as in PyTorch)"],
  ["gelu('erf')", 1, "gelu: approximate must be 'none' or 'tanh', got 'erf'"],
  ['relu(inplace=1)', 1, 'relu: inplace must be true or false, got 1'],
  ['maxpool(3, padding=2)', 1, 'maxpool: padding must be at most half of kernel_size (as in PyTorch), got padding=2 with kernel_size=3'],
  ['AvgPool2d(2, padding=2)', 1, 'AvgPool2d: padding must be at most half of kernel_size (as in PyTorch), got padding=2 with kernel_size=2'],
  ['maxpool(2, ceil_mode=True)', 1, 'maxpool: ceil_mode=true is not supported (only false)'],
  ['MaxPool2d(2, dilation=2)', 1, 'MaxPool2d: dilation=2 is not supported (only 1)'],
  ['MaxPool2d(2, return_indices=True)', 1, 'MaxPool2d: return_indices=true is not supported (only false)'],
  ['avgpool(2, count_include_pad=False)', 1, 'avgpool: count_include_pad=false is not supported (only true)'],
  ['AvgPool2d(2, divisor_override=3)', 1, 'AvgPool2d: divisor_override=3 is not supported (only None)'],
  ['maxpool(0)', 1, 'maxpool: kernel_size must be a whole number >= 1, got 0'],
  ['AdaptiveAvgPool2d(2)', 1, 'AdaptiveAvgPool2d: output_size=2 is not supported (only 1)'],
  ['AdaptiveMaxPool2d((1, 2))', 1, 'AdaptiveMaxPool2d: output_size=(1, 2) is not supported (only 1)'],
  ['batchnorm(eps=0)', 1, 'batchnorm: eps must be a number > 0, got 0'],
  ['batchnorm(momentum=1.5)', 1, 'batchnorm: momentum must be a number from 0 to 1, got 1.5'],
  ['batchnorm(momentum=None)', 1, 'batchnorm: momentum=None (a cumulative average) is not supported'],
  ['BatchNorm2d(16, track_running_stats=False)', 1, 'BatchNorm2d: track_running_stats=false is not supported (only true)'],
  ['dropout(1)', 1, 'dropout: p must be a number from 0 up to (not including) 1, got 1'],
  ['dropout(-0.1)', 1, 'dropout: p must be a number from 0 up to (not including) 1, got -0.1'],
  ['flatten(0)', 1, 'flatten: start_dim=0 is not supported (only 1)'],
  ['Flatten(end_dim=2)', 1, 'Flatten: end_dim=2 is not supported (only -1)'],
  ['scale(1e999)', 1, 'scale: factor must be a finite number, got Infinity'],
  ['scale(true)', 1, 'scale: factor must be a finite number, got true'],
  // Syntax.
  ['conv(16, 3', 1, "')' is missing at the end of the line"],
  ['conv(16 3)', 1, "expected ',' before '3'"],
  ['conv(16, 3) relu', 1, "unexpected 'relu' after the arguments"],
  ['relu relu', 1, "unexpected 'relu' after 'relu'"],
  ['conv(16, ((3, 3)))', 1, "unexpected '('"],
  ['conv(16, 3, padding=)', 1, "unexpected ')'"],
  ["gelu('tanh)", 1, "a string is not closed: 'tanh)"],
  ['conv(16; 3)', 1, "unexpected ';'"],
  ['(16, 3)', 1, "cannot read '(16, 3)': expected a layer such as conv(16, 3) or relu"],
  ['residual(2)\nrelu\nend', 1, 'residual takes no arguments'],
  // Structure.
  ['relu\nrelu\nrelu\nrelu\nrelu\nrelu\nrelu\nrelu\nend', 9, "'end' without an open residual block"],
  ['shortcut', 1, "'shortcut' without an open residual block"],
  ['relu\nresidual\n  relu', 2, "residual block opened here is never closed (add 'end')"],
  ['residual\n  residual\n    relu\n  end\n', 1, "residual block opened here is never closed (add 'end')"],
  ['residual\n  residual\n    relu\n', 2, "residual block opened here is never closed (add 'end')"],
  ['residual\nend', 1, "residual block has no layers before 'end' on line 2"],
  ['residual\nshortcut\nrelu\nend', 1, "residual block has no layers before 'shortcut' on line 2"],
  ['residual\n relu\nshortcut\n relu\nshortcut\nend', 5, "a second 'shortcut' in the residual block opened on line 1"],
  ['residual\n relu\nx: end', 3, "'end' cannot have a name"],
  [`${'residual\n'.repeat(9)}relu\n${'end\n'.repeat(9)}`, 9, 'residual blocks nest too deep (at most 8 levels)'],
  ['relu\n'.repeat(257), 257, 'too many layers (at most 256)'],
  ['# only a comment\n\n@ghost_batch 4\n', null, 'the description has no layers'],
  ['', null, 'the description has no layers'],
  ['#'.repeat(100001), null, 'the description is too long (100001 characters; at most 100000)'],
  // Names.
  ['conv1: conv(6, 5)\nrelu\nrelu\nrelu\nrelu\nconv1: conv(16, 5)', 6, "the name 'conv1' is already used on line 1"],
  ['res: residual\n  a: relu\n  a: relu\nend', 3, "the name 'a' is already used on line 2"],
  ['1x: relu', 1, "the name '1x' is not a Python identifier (letters, digits and _, not starting with a digit)"],
  ['a.b: relu', 1, "the name 'a.b' is not a Python identifier (letters, digits and _, not starting with a digit)"],
  ['residual\n shortcut: relu\nend', 2, "the name 'shortcut' is reserved for a residual block's shortcut branch"],
  // Settings.
  ['@ghost_batch 0\nrelu', 1, '@ghost_batch must be a whole number >= 1, got 0'],
  ['relu\n@ghost_batch 1025', 2, '@ghost_batch must be at most 1024, got 1025'],
  ['@ghost_batch 8.5\nrelu', 1, '@ghost_batch must be a whole number >= 1, got 8.5'],
  ['@ghost_batch\nrelu', 1, "@ghost_batch needs a value, e.g. '@ghost_batch 8'"],
  ['@ghost_batch 8 16\nrelu', 1, "@ghost_batch takes one value, got '8 16'"],
  ['@ghost_batch 8\n@ghost_batch 16\nrelu', 2, '@ghost_batch is already set on line 1'],
  ['@ghost_bach 8\nrelu', 1, "unknown setting '@ghost_bach' (did you mean @ghost_batch? known: @ghost_batch, @normalize, @optimizer, @lr, @momentum, @dampening, @nesterov, @beta1, @beta2, @eps, @weight_decay, @decoupled_weight_decay, @schedule, @label_smoothing, @epochs, @batch_size, @augment, @tta, @tta_on, @eval_every, @ema, @group)"],
  ['@optimiser sgd\nrelu', 1, /unknown setting '@optimiser' \(did you mean @optimizer\?/],
  ['@lr 0\nrelu', 1, "@lr: expected a positive number, got '0'"],
  ['@lr 0.1\n@lr 0.2\nrelu', 2, '@lr is already set on line 1'],
  ['relu\n@schedule cosine:warm=0.1', 2, "@schedule: cosine takes warmup, min, not 'warm'"],
  ['@nesterov maybe\nrelu', 1, "@nesterov: expected true or false, got 'maybe'"],
  ['@tta flips\nrelu', 1, "@tta: expected none, flip, flip-translate, got 'flips'"],
  ['@augment flip=sometimes\nrelu', 1, "@augment: flip=sometimes is not valid in 'flip=sometimes' ('none', 'airbench', or a comma list of flip[=random|alternate], translate=N, padding=reflect|zero, cutout=N)"],
  ["@normalize '0.5,0.5/0.5'\nrelu", 1, '@normalize needs as many stds as means, one per channel (at most 4), got 2 and 1'],
  ['@normalize 0.5\nrelu', 1, "@normalize takes 'data' or 'MEAN,.../STD,...' in quotes, e.g. @normalize '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616'"],
  ["@normalize '0.5/0'\nrelu", 1, '@normalize: every std must be above 0'],
  ['@group lr=2\nrelu', 1, /@group: starts with what it selects/],
  ['@ema lookahead:every=0\nrelu', 1, "@ema: every: expected an integer from 1, got '0'"],
  ['@epoch 5\nrelu', 1, /unknown setting '@epoch' \(did you mean @epochs\?/],
  ['@ 5\nrelu', 1, "a setting is written '@key value', e.g. '@ghost_batch 16'"],
];

test('every error names its line and what is wrong', () => {
  for (const [text, line, message] of ERROR_CASES) assertError(text, line, message);
  assert.equal(parseDescription('residual()\n relu\nshortcut()\nend()').layers.length, 1, 'empty parentheses are fine');
  // A long description of many lines and exactly the limits is still accepted.
  assert.equal(parseDescription('relu\n'.repeat(256)).layers.length, 256);
  assert.equal(parseDescription(`${'residual\n'.repeat(8)}relu\n${'end\n'.repeat(8)}`).layers.length, 1);
  assert.equal(parseDescription(`relu${' '.repeat(100000 - 4)}`).layers.length, 1);
});

test('hostile descriptions of the maximum size are read or refused quickly', { timeout: 20000 }, () => {
  const fill = (unit) => unit.repeat(Math.floor(99900 / unit.length));
  assertError(`conv(${fill('1,')})`, 1, /too many positional arguments/);
  assertError(`scale(${fill('(')})`, 1, /unexpected '\('/);
  assertError(fill('a'), 1, /unknown layer/);
  assertError(`relu(${fill('x=1,')})`, 1, /unknown argument 'x'/);
  assertError(fill('relu '), 1, /unexpected 'relu' after 'relu'/);
  assertError(fill('relu\n'), 257, 'too many layers (at most 256)');
  assertError(fill('residual\n'), 9, /nest too deep/);
  assertError(fill('#'), null, 'the description has no layers');
  assertError(`relu('${fill('x')}`, 1, /a string is not closed: 'x{39}…$/);
  assertError(`gelu('${fill('x')}')`, 1, /got 'x{40}…'$/);
  assertError(`conv(16, ${fill("'a',")})`, 1, /too many positional arguments/);
  assertError(`scale((${fill('1,')}))`, 1, /factor must be a finite number, got \(1, 1, .{20,40}…$/);
  assertError(fill("''"), 1, /cannot read '.{40}…': expected a layer/);
  assertError(`1${fill('x')}: relu`, 1, /the name '1x{39}…' is not a Python identifier/);
  assertError(`relu(${fill('y')}=1)`, 1, /unknown argument 'y{40}…' \(known: inplace\)$/);
  assertError(`@ghost_batch ${fill('9')}`, 1, '@ghost_batch must be a whole number >= 1, got Infinity');
  assertError(`@ghost_batch 8 ${fill('9 ')}`, 1, /takes one value, got '8 9 9 .{30,40}…'$/);
});

test('a DescriptionError carries .line, and a message without a line has no prefix', () => {
  const e = errorOf('relu\nfoo');
  assert.equal(e.name, 'DescriptionError');
  assert.equal(e.line, 2);
  assert.ok(e.message.startsWith('line 2: '));
  const none = errorOf('');
  assert.equal(none.line, null);
  assert.ok(!none.message.startsWith('line'));
  assert.throws(() => parseDescription(42), DescriptionError);
});

// ---------------------------------------------------------------------------------------------
// Names and state_dict paths.

test('simplecnn written plainly gets PyTorch\'s names conv1, conv2, fc1, fc2, fc3', () => {
  const json = parseDescription(presetText('simplecnn'));
  const withParams = allLayers(json.layers).filter((l) => l.type === 'conv' || l.type === 'linear');
  assert.deepEqual(withParams.map((l) => l.path), ['conv1', 'conv2', 'fc1', 'fc2', 'fc3']);
  assert.deepEqual(json.layers.map((l) => l.name), ['conv1', 'relu1', 'pool1', 'conv2', 'relu2', 'pool2', 'flatten1', 'fc1', 'relu3', 'fc2', 'relu4', 'fc3']);
});

test('automatic names count per kind and skip numbers taken by explicit names, even later ones', () => {
  const json = parseDescription([
    'conv(4, 3)', // conv1 is taken below: conv2
    'conv1: conv(4, 3)',
    'conv(4, 3)', // conv3
    'bn2: relu', // an explicit name of another kind's pattern
    'batchnorm', // bn1
    'batchnorm', // bn2 taken: bn3
    'gelu', 'maxpool(2)', 'avgpool(2)', 'globalavgpool', 'globalmaxpool', 'dropout', 'flatten', 'scale(2)',
    'linear(3)', 'residual', ' relu', 'end',
  ].join('\n'));
  assert.deepEqual(json.layers.map((l) => l.name), [
    'conv2', 'conv1', 'conv3', 'bn2', 'bn1', 'bn3', 'gelu1', 'pool1', 'avgpool1', 'gap1', 'gmp1', 'drop1', 'flatten1', 'scale1', 'fc1', 'res1',
  ]);
});

test('residual blocks: paths are dotted, body and shortcut are separate levels, blocks nest', () => {
  const json = parseDescription([
    'conv(8, 3, padding=1)', //      conv1
    'residual', //                    res1
    '  conv(8, 3, padding=1)', //     res1.conv1
    '  inner: residual', //           res1.inner
    '    conv(8, 3, padding=1)', //   res1.inner.conv1
    '  shortcut', //
    '    scale(0.5)', //              res1.inner.shortcut.scale1
    '  end',
    '  conv(8, 3, padding=1)', //     res1.conv2
    'shortcut',
    '  conv(8, 1)', //                res1.shortcut.conv1: counters restart in the shortcut
    '  conv1b: batchnorm', //         res1.shortcut.conv1b
    'end',
    'residual', //                    res2, identity shortcut
    '  conv1: conv(8, 3, padding=1)', //   names of another level do not collide
    'end',
  ].join('\n'));
  assert.deepEqual(allLayers(json.layers).map((l) => [l.path, l.line]), [
    ['conv1', 1], ['res1', 2], ['res1.conv1', 3], ['res1.inner', 4], ['res1.inner.conv1', 5],
    ['res1.inner.shortcut.scale1', 7], ['res1.conv2', 9], ['res1.shortcut.conv1', 11],
    ['res1.shortcut.conv1b', 12], ['res2', 14], ['res2.conv1', 15],
  ]);
  const res1 = json.layers[1];
  assert.deepEqual(Object.keys(res1), ['type', 'name', 'path', 'line', 'body', 'shortcut']);
  assert.equal(res1.body.length, 3);
  assert.equal(res1.shortcut.length, 2);
  assert.deepEqual(json.layers[2].shortcut, []);
});

test('lines pasted from a PyTorch __init__ or a printed module keep their names', () => {
  const json = parseDescription([
    'self.features = nn.Conv2d(3, 6, 5)',
    'act = nn.ReLU()',
    'head: nn.Linear(84, 10)',
  ].join('\n'));
  assert.deepEqual(json.layers.map((l) => l.path), ['features', 'act', 'head']);

  // print(SimpleCNN()) in PyTorch, one pool per use.
  const printed = parseDescription(`
    (conv1): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))
    (relu1): ReLU()
    (pool1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
    (relu2): ReLU()
    (pool2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    (flatten): Flatten(start_dim=1, end_dim=-1)
    (fc1): Linear(in_features=400, out_features=120, bias=True)
    (relu3): ReLU(inplace=True)
    (fc2): Linear(in_features=120, out_features=84, bias=True)
    (relu4): ReLU()
    (fc3): Linear(in_features=84, out_features=10, bias=True)`);
  const plain = parseDescription(presetText('simplecnn'));
  assert.equal(describeDifference(printed, plain), 'layer 1 (conv1): in_channels 3 here, inferred in the other');
  assert.deepEqual(allLayers(printed.layers).filter((l) => l.type === 'conv' || l.type === 'linear').map((l) => l.path), ['conv1', 'conv2', 'fc1', 'fc2', 'fc3']);
  assertError('(0): nn.ReLU()', 1, "the name '0' is not a Python identifier (letters, digits and _, not starting with a digit)");
});

// ---------------------------------------------------------------------------------------------
// The canonical text.

/** A deterministic generator of varied valid descriptions (mulberry32). */
function randomDescription(seed) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(random() * list.length)];
  const maybe = (text) => (random() < 0.4 ? text : null);
  const args = (...parts) => parts.filter((p) => p !== null).join(', ');
  const makers = [
    () => `conv(${pick([1, 8, 'classes'])}, ${args(pick([1, 3, '(5, 5)']), maybe(`stride=${pick([1, 2])}`), maybe(`padding=${pick([0, 1, "'valid'"])}`), maybe('bias=False'))})`,
    () => `conv(16, 3, padding=same${random() < 0.5 ? ', stride=1' : ''})`,
    () => `nn.Conv2d(${args(3, 6, 5, maybe('padding=2'), maybe('bias=false'))})`,
    () => `LazyConv2d(4, 3)`,
    () => `linear(${args(pick([10, 'classes']), maybe('false'))})`,
    () => `Linear(${args(400, 120, maybe('bias=False'))})`,
    () => pick(['relu', 'nn.ReLU(inplace=True)', 'gelu', "gelu('tanh')", 'flatten', 'nn.Flatten()', 'globalavgpool', 'AdaptiveMaxPool2d(1)']),
    () => `maxpool(${args(pick([2, 3]), maybe('stride=1'), maybe('padding=1'))})`,
    () => `nn.AvgPool2d(${args(4, maybe('2'), maybe('padding=2'))})`,
    () => `batchnorm(${args(maybe('eps=1e-3'), maybe('momentum=0.01'), maybe('affine=false'))})`,
    () => pick(['BatchNorm2d(16)', 'nn.BatchNorm1d(84, momentum=0.2)', 'LazyBatchNorm2d()', 'LazyBatchNorm1d(affine=False)']),
    () => `dropout(${pick([0, 0.1, 0.5, 0.999])})`,
    () => `scale(${pick([-1, 0.5, 1e-7, 3.25, 123456789])})`,
  ];
  const lines = [];
  if (random() < 0.5) lines.push(`@ghost_batch ${pick([1, 8, 16, 1024])}`);
  const level = (depth, length) => {
    for (let i = 0; i < length; i++) {
      const indent = '  '.repeat(depth);
      const name = random() < 0.2 ? `${pick(['conv1', 'fc2', 'bn1', 'x', 'res1', 'relu3', 'block'])}_${i}: ` : '';
      const plainName = random() < 0.15 ? pick(['conv1: ', 'conv2: ', 'fc1: ', 'relu2: ', 'res2: ']) : '';
      const prefix = name || plainName;
      if (depth < 3 && random() < 0.15) {
        lines.push(`${indent}${prefix}residual`);
        level(depth + 1, 1 + Math.floor(random() * 3));
        if (random() < 0.5) {
          lines.push(`${indent}shortcut`);
          level(depth + 1, Math.floor(random() * 3));
        }
        lines.push(`${indent}end`);
      } else lines.push(`${indent}${prefix}${pick(makers)()}`);
    }
  };
  level(0, 1 + Math.floor(random() * 12));
  return lines.join('\n');
}

/** Parses or returns null when the random text has a name collision (the generator may make one). */
function parseOrNull(text) {
  try {
    return parseDescription(text);
  } catch (e) {
    if (e instanceof DescriptionError && /already used/.test(e.message)) return null;
    throw e;
  }
}

test('formatDescription gives a text that parses back to the same JSON form', () => {
  const texts = [...PRESETS.map((p) => presetText(p.name)), ...LAYER_CASES.map(([text]) => text)];
  for (let seed = 1; texts.length < 400; seed++) texts.push(randomDescription(seed));
  let checked = 0;
  for (const text of texts) {
    const json = parseOrNull(text);
    if (json === null) continue;
    const canonical = formatDescription(json);
    const again = parseDescription(canonical);
    assert.deepEqual(withoutLines(again), withoutLines(json), `original:\n${text}\ncanonical:\n${canonical}`);
    assert.equal(describeDifference(json, again), null);
    assert.equal(formatDescription(again), canonical, 'the canonical text is a fixed point');
    checked++;
  }
  assert.ok(checked > 300, `only ${checked} descriptions checked`);
});

test('the canonical text: one layer a line, blocks indented, only what is not a default', () => {
  const text = [
    '@ghost_batch 8   # the default: left out',
    '',
    'nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)',
    'BatchNorm2d(16, eps=1e-05)',
    'ReLU(inplace=True)',
    'downsample: nn.MaxPool2d(kernel_size=2, stride=2)',
    'residual',
    '  conv(16, 3, padding=same)',
    '  my_bn: batchnorm(momentum=0.01)',
    'shortcut',
    '  scale(0.5)',
    'end',
    'conv7: conv(classes, 1)',
    'nn.AdaptiveAvgPool2d((1, 1))',
    'nn.Flatten()',
    'nn.Dropout(0.2)',
    'fc9: nn.LazyLinear(10, bias=False)',
  ].join('\n');
  assert.equal(formatDescription(parseDescription(text)), [
    'Conv2d(3, 16, 3, padding=1, bias=false)',
    'BatchNorm2d(16)',
    'relu',
    'downsample: maxpool(2)',
    'residual',
    "  conv(16, 3, padding='same')",
    '  my_bn: batchnorm(momentum=0.01)',
    'shortcut',
    '  scale(0.5)',
    'end',
    'conv7: conv(classes, 1)',
    'globalavgpool',
    'flatten',
    'dropout(p=0.2)',
    'fc9: linear(10, bias=false)',
    '',
  ].join('\n'));
  assert.equal(formatDescription(parseDescription('@ghost_batch 16\nLazyBatchNorm1d()')), '@ghost_batch 16\nLazyBatchNorm1d\n');
});

test('names are written only where automatic naming would not give them back', () => {
  // conv2 alone would be named conv1 automatically; conv1 then follows from conv2 being taken.
  const json = parseDescription('conv2: conv(4, 3)\nconv(4, 3)\nconv1: relu');
  assert.deepEqual(json.layers.map((l) => l.name), ['conv2', 'conv3', 'conv1']);
  const canonical = formatDescription(json);
  assert.deepEqual(withoutLines(parseDescription(canonical)), withoutLines(json), canonical);
  assert.equal(formatDescription(parseDescription('conv1: conv(4, 3)\nconv2: conv(4, 3)')), 'conv(4, 3)\nconv(4, 3)\n');
});

// ---------------------------------------------------------------------------------------------
// Differences.

test('describeDifference: null for the same net, else the first difference in one sentence', () => {
  const simple = parseDescription(presetText('simplecnn'));
  const same = (text) => describeDifference(simple, parseDescription(text));
  assert.equal(same(formatDescription(simple)), null);
  assert.equal(same(`# another comment\n\n${presetText('simplecnn')}`), null, 'lines and comments are ignored');
  assert.equal(describeDifference(simple, simple), null);

  const changed = presetText('simplecnn').replace('conv(16, 5)', 'conv(32, 5)');
  assert.equal(same(changed), 'layer 4 (conv2): out_channels 16 here, 32 in the other');
  assert.equal(same(presetText('simplecnn').replace('conv(16, 5)', 'conv(16, 5, padding=same)')), "layer 4 (conv2): padding 0 here, 'same' in the other");
  assert.equal(same(presetText('simplecnn').replace('conv(16, 5)', 'nn.Conv2d(6, 16, 5)')), 'layer 4 (conv2): in_channels inferred here, 6 in the other');
  assert.equal(same(presetText('simplecnn').replace('conv(16, 5)', 'c2: conv(16, 5)')), 'layer 4 (conv): named conv2 here, c2 in the other');
  assert.equal(same(presetText('simplecnn').replace('maxpool(2)', 'avgpool(2)')), 'layer 3: pool1 (maxpool) here, avgpool1 (avgpool) in the other');
  assert.equal(same(`${presetText('simplecnn')}\nrelu\ndropout`), 'the other has 2 more layers after fc3');
  assert.equal(describeDifference(parseDescription(`${presetText('simplecnn')}\nrelu`), simple), 'this one has 1 more layer after fc3');
  assert.equal(same(`@ghost_batch 16\n${presetText('simplecnn')}`), 'setting ghost_batch: 8 here, 16 in the other');
  assert.equal(describeDifference({ ...simple, format: 'webtrain-model/2' }, simple), 'format webtrain-model/2 here, webtrain-model/1 in the other');
  assert.equal(describeDifference(simple, { ...simple, settings: { ...simple.settings, lr: 0.1 } }), 'setting lr: not set here, 0.1 in the other');

  const resnet = parseDescription(presetText('resnet'));
  const otherResnet = (from, to) => describeDifference(resnet, parseDescription(presetText('resnet').replace(from, to)));
  assert.equal(otherResnet('conv(64, 1, stride=2, bias=false)', 'conv(64, 1, stride=2, bias=true)'), 'layer 26 (res3.shortcut.conv1): bias false here, true in the other');
  assert.equal(otherResnet('  conv(32, 3, padding=1, bias=false)\n  batchnorm\nshortcut', '  conv(32, 3, padding=1, bias=false)\n  batchnorm\n  scale(0.2)\nshortcut'), 'the other has 1 more layer after res2.bn2');
  const identity = presetText('resnet').replace(/shortcut\n  conv\(32, 1, stride=2, bias=false\)[^\n]*\n  batchnorm[^\n]*\n/, '');
  assert.notEqual(identity, presetText('resnet'));
  assert.equal(describeDifference(resnet, parseDescription(identity)), "this one has 2 more layers in the shortcut of res2 (the other's is the identity)");
  assert.equal(describeDifference(parseDescription(identity), resnet), 'the other has 2 more layers in the shortcut of res2 (here it is the identity)');
  assert.equal(describeDifference(parseDescription('residual\n relu\nend'), parseDescription('relu')), 'layer 1: res1 (residual) here, relu1 (relu) in the other');
  assert.equal(describeDifference(parseDescription('relu'), parseDescription('relu\nrelu')), 'the other has 1 more layer after relu1');
});

// ---------------------------------------------------------------------------------------------
// Links.

test('encodeForUrl / decodeFromUrl round trip, URL-safe and compact', async () => {
  for (const name of PRESETS.map((p) => p.name)) {
    const text = presetText(name);
    const encoded = await encodeForUrl(text);
    assert.match(encoded, /^[A-Za-z0-9_-]+$/);
    assert.equal(encodeURIComponent(encoded), encoded);
    assert.equal(await decodeFromUrl(encoded), text);
    const canonical = formatDescription(parseDescription(text));
    // A net's link stays short; fast's carries its recipe too (17 @ lines): about 600 characters.
    const limit = parseDescription(text).recipe ? 800 : 300;
    assert.ok((await encodeForUrl(canonical)).length < limit, `${name}: canonical link too long`);
  }
  const unicode = '# café ✓ 🧠\nrelu\n';
  assert.equal(await decodeFromUrl(await encodeForUrl(unicode)), unicode);
  await assert.rejects(encodeForUrl('#'.repeat(100001)), DescriptionError);
});

test('decodeFromUrl refuses garbage, cut links and oversized contents with a clear error', async () => {
  const good = await encodeForUrl(presetText('resnet'));
  const rawDeflate = async (bytes) => {
    const out = await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer();
    return Buffer.from(out).toString('base64url');
  };
  const cases = [
    ['', /it is empty/],
    ['resnet!', /characters other than/],
    ['a b', /characters other than/],
    ['A', /length/],
    ['helloo', /not compressed data/],
    [good.slice(0, Math.floor(good.length / 2)), /not compressed data/],
    [Buffer.from('just some plain text, not compressed').toString('base64url'), /not compressed data/],
    [await rawDeflate(new Uint8Array([0xff, 0xfe, 0x00, 0x80])), /does not unpack to text/],
    [await rawDeflate(new TextEncoder().encode('relu\u0000\u0001')), /binary data/],
    [await rawDeflate(new TextEncoder().encode('#'.repeat(400001))), /more than 100000 characters/],
    [await rawDeflate(new TextEncoder().encode('#'.repeat(100001))), /more than 100000 characters/],
    ['A'.repeat(600000), /too long/],
  ];
  for (const [encoded, pattern] of cases) {
    await assert.rejects(decodeFromUrl(encoded), (e) => {
      assert.ok(e instanceof DescriptionError, e.stack);
      assert.ok(e.message.startsWith('the model in the link cannot be read: '), e.message);
      assert.match(e.message, pattern, `for ${encoded.slice(0, 40)}`);
      return true;
    }, `${encoded.slice(0, 40)} was accepted`);
  }
  assert.ok(await decodeFromUrl(await rawDeflate(new TextEncoder().encode('#'.repeat(100000)))));
});

// ---------------------------------------------------------------------------------------------
// Presets.

test('loadPreset reads a preset file under Node', async () => {
  assert.equal(await loadPreset('convnetjs'), presetText('convnetjs'));
  await assert.rejects(loadPreset('nope'), DescriptionError);
});

test('the presets: one file each, all parse, simplecnn is the default', () => {
  const files = readdirSync(new URL('../web/models/', import.meta.url)).filter((f) => f.endsWith('.txt')).sort();
  assert.deepEqual(files, PRESETS.map((p) => `${p.name}.txt`).sort());
  assert.deepEqual(PRESETS.map((p) => p.name), ['simplecnn', 'convnetjs', 'resnet', 'fast']);
  assert.deepEqual(PRESETS.filter((p) => p.default).map((p) => p.name), ['simplecnn']);
  for (const p of PRESETS) {
    assert.ok(p.description.length > 20 && !p.description.includes('\n'), p.name);
    parseDescription(presetText(p.name));
  }
  assert.throws(() => presetUrl('resnt'), /unknown preset 'resnt' \(did you mean resnet\?/);

  const convnetjs = allLayers(parseDescription(presetText('convnetjs')).layers);
  assert.deepEqual(convnetjs.filter((l) => l.type === 'conv').map((l) => [l.out_channels, l.kernel_size, l.padding]), [[16, 5, 2], [20, 5, 2], [20, 5, 2]]);
  assert.deepEqual(convnetjs.at(-1), { ...convnetjs.at(-1), type: 'linear', out_features: 'classes' });

  const resnet = parseDescription(presetText('resnet'));
  assert.equal(resnet.settings.ghost_batch, 16);
  const paths = allLayers(resnet.layers).map((l) => l.path);
  for (const p of ['conv1', 'bn1', 'res1.conv2', 'res2.conv1', 'res2.shortcut.conv1', 'res2.shortcut.bn1', 'res3.shortcut.conv1', 'gap1', 'fc1']) {
    assert.ok(paths.includes(p), `${p} missing from ${paths.join(' ')}`);
  }
  const convs = allLayers(resnet.layers).filter((l) => l.type === 'conv');
  assert.ok(convs.every((l) => l.bias === false), 'convolutions before batch norm have no bias');
  assert.deepEqual(convs.map((l) => l.out_channels), [16, 16, 16, 32, 32, 32, 64, 64, 64]);
  assert.deepEqual(resnet.layers.filter((l) => l.type === 'residual').map((l) => l.shortcut.length), [0, 2, 2]);
});

test('a description carries its training recipe in `@` lines, read by recipe.js and written back', () => {
  const text = '@optimizer sgd\n@lr 0.0123\n@momentum 0.85\n@nesterov true\n@weight_decay 5e-4\n@schedule triangular:start=0.2,peak=0.23,end=0.07\n'
    + '@label_smoothing 0.2\n@epochs 5\n@batch_size 256\n@augment flip=alternate,translate=2,padding=reflect\n@tta flip-translate\n'
    + '@ema lookahead\n@group batchnorm lr=64 weight_decay=0\n@group conv1.bias frozen_after=3\nconv(6, 5)\nrelu\nflatten\nlinear(classes)\n';
  const json = parseDescription(text);
  assert.equal(json.recipe.optimizer, 'sgd');
  assert.equal(json.recipe.lr, 0.0123);
  assert.equal(json.recipe.nesterov, true);
  assert.deepEqual(json.recipe.schedule, { kind: 'triangular', start: 0.2, peak: 0.23, end: 0.07 });
  assert.deepEqual(json.recipe.augment, { flip: 'alternate', translate: 2, padding: 'reflect', cutout: 0 });
  assert.equal(json.recipe.groups.length, 2);
  assert.deepEqual(parseDescription(formatDescription(json)), json);
  assert.equal(parseDescription('relu').recipe, undefined, 'no recipe lines: no recipe key');
});

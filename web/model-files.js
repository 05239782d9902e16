// The files a trained model leaves as, for the CLI's --export and the page's weights panel:
// safetensors (PyTorch's state_dict), ONNX (an inference graph on raw pixels), model.py (the
// PyTorch module) and the legacy raw float32 weights; and the names downloads get.
import { exportSafetensors } from './safetensors.js';
import { exportOnnx } from './onnx-export.js';
import { generateModelPy } from './pytorch-module.js';
import { PRESETS, loadPreset, parseDescription, describeDifference, normalizationOf } from './model-description.js';

/** Every format: its extension and what it is, in the order the page offers them. */
export const MODEL_FILE_KINDS = Object.freeze({
  safetensors: { ext: '.safetensors', label: 'safetensors' },
  onnx: { ext: '.onnx', label: 'ONNX' },
  py: { ext: '.py', label: 'model.py' },
  raw: { ext: '.bin', label: 'raw float32' },
});

/** The kind a file name's extension asks for (not the raw format, whose .bin is ambiguous), or null. */
export function kindOfFile(name) {
  const lower = name.toLowerCase();
  return Object.keys(MODEL_FILE_KINDS).find((k) => k !== 'raw' && lower.endsWith(MODEL_FILE_KINDS[k].ext)) ?? null;
}

/**
 * The bytes of `model` as a `kind` file. `format`: the data's shape and normalisation
 * (CIFAR10_FORMAT); `accuracy`: the last test accuracy, kept in the metadata of safetensors and ONNX.
 */
export function modelFile(model, kind, { format, accuracy = null }) {
  const metadata = accuracy === null ? {} : { test_accuracy: accuracy.toFixed(4) };
  const data = { ...model.format, ...(model.description ? normalizationOf(model.description, { ...model.format, ...format }) : { mean: Array.from(format.mean), std: Array.from(format.std) }) };
  switch (kind) {
    case 'safetensors': return exportSafetensors(model, { format: data, metadata });
    case 'onnx': return exportOnnx(model, { format: data, metadata });
    case 'py': return new TextEncoder().encode(generateModelPy(model.description, data));
    case 'raw': return model.exportWeights();
    default: throw new RangeError(`unknown model file kind '${kind}'`);
  }
}

/**
 * A download's name: the model and its test accuracy, e.g. webtrain-resnet-71.3pct.safetensors.
 * model.py's name is a Python module name (webtrain_resnet_71_3pct.py), so it can be imported.
 */
export function downloadName(modelName, accuracy, kind) {
  const parts = ['webtrain', modelName.replace(/[^A-Za-z0-9_]+/g, '_')];
  if (accuracy !== null && accuracy !== undefined) parts.push(`${(100 * accuracy).toFixed(1)}pct`);
  if (kind === 'py') return `${parts.join('_').replace(/\./g, '_')}.py`;
  return `${parts.join('-')}${MODEL_FILE_KINDS[kind].ext}`;
}

const presetJson = new Map();

/** The preset a model's description is (comments and names aside), else 'custom'. */
export async function modelNameOf(model) {
  if (!model.description) return 'custom';
  for (const { name } of PRESETS) {
    if (!presetJson.has(name)) presetJson.set(name, parseDescription(await loadPreset(name)));
    if (!describeDifference(presetJson.get(name), model.description)) return name;
  }
  return 'custom';
}

// The weights panel's exports: the model as safetensors (PyTorch's state_dict), ONNX, model.py
// (the PyTorch module) and the legacy raw float32 file, each with its size and a download name
// that holds the model and its test accuracy; and loading safetensors. Everything it knows of
// the model comes from the worker (EXPORT_MODEL, LOAD_SAFETENSORS in protocol.js).
import * as P from './protocol.js';
import { readBlob, safetensorsRule } from './file-limits.js';
import { formatBytes } from './format.js';

const $ = (id) => document.getElementById(id);
const KINDS = ['safetensors', 'onnx', 'py'];

/**
 * Wires the panel. request(type, payload, transfer): the worker client's; saveFile(bytes, name);
 * batchSize(): the batch size field's value; modelText(): the Model panel's description;
 * onLoaded(reply, file): after safetensors loaded (the page shows the evaluation); onError(message):
 * a refusal to show; switchModel(fileModel, message): asked when the file names another model,
 * resolves true when the Model panel now shows that model (the file is then loaded again).
 */
export function createExportPanel({ request, saveFile, batchSize, modelText, onLoaded, onError, switchModel }) {
  const info = $('export-info');
  let files = {}; // kind -> { name, size, problem } of the model in the worker
  let enabled = false;

  function show() {
    for (const kind of [...KINDS, 'raw']) {
      const file = files[kind];
      const size = $(`export-${kind}-size`);
      if (size) size.textContent = !file ? '' : file.problem ? 'not for this net (batch norm): use safetensors' : formatBytes(file.size);
      if (kind !== 'raw') $(`export-${kind}`).disabled = !enabled || !file || Boolean(file.problem);
    }
  }

  /** Asks the worker for the current model's file sizes and names (none without a model). */
  async function refresh(hasModel) {
    enabled = hasModel;
    if (!hasModel) {
      files = {};
      show();
      return;
    }
    try {
      const reply = await request(P.EXPORT_MODEL, {});
      files = Object.fromEntries(reply.files.map((f) => [f.kind, f]));
    } catch {
      files = {};
    }
    show();
  }

  async function download(kind) {
    try {
      const reply = await request(P.EXPORT_MODEL, { kind });
      const [file] = reply.files;
      saveFile(file.buffer, file.name);
      info.textContent = `Downloaded ${file.name} (${formatBytes(file.buffer.byteLength)}).`;
    } catch (error) {
      if (error.scope !== 'lost') onError(`${kind} not exported: ${error.message}`);
    }
  }

  async function load(file) {
    try {
      const buffer = await readBlob(file, file.name, 'safetensors file', safetensorsRule());
      const reply = await request(P.LOAD_SAFETENSORS, { name: file.name, buffer, batchSize: batchSize(), model: modelText() }, [buffer]);
      onLoaded(reply, file);
    } catch (error) {
      if (error.scope === 'lost') return;
      if (error.fileModel && /another model/.test(error.message) && await switchModel(error.fileModel, error.message)) {
        await load(file);
        return;
      }
      onError(`Weights not loaded, the current model is kept. ${error.message}`);
      info.textContent = `${file.name} was refused; the current model is kept.`;
    }
  }

  for (const kind of KINDS) $(`export-${kind}`).addEventListener('click', () => download(kind));
  $('load-safetensors-button').addEventListener('click', () => $('load-safetensors').click());
  $('load-safetensors').addEventListener('change', (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (file) load(file);
  });
  return { refresh, setLoadDisabled: (disabled) => { $('load-safetensors-button').disabled = disabled; } };
}

// Prints model.py for a description's JSON form, through web/pytorch-module.js, so the PyTorch
// reference (describe.py) and webtrain's exported module are the same code.
// Usage: node tests/reference/model_py.mjs MODEL.json|- CHANNELS HEIGHT WIDTH CLASSES [MEAN STD]
//   MEAN and STD: one number, or one per channel separated by commas (default 0.5 and 0.5).
import { readFileSync } from 'node:fs';
import { generateModelPy } from '../../web/pytorch-module.js';

const [file, ...rest] = process.argv.slice(2);
if (!file || (rest.length !== 4 && rest.length !== 6)) {
  console.error('usage: node tests/reference/model_py.mjs MODEL.json|- CHANNELS HEIGHT WIDTH CLASSES [MEAN STD]');
  process.exit(2);
}
const [channels, height, width, classes] = rest.slice(0, 4).map(Number);
const numbers = (s) => s.split(',').map(Number);
const [mean, std] = rest.length === 6 ? [numbers(rest[4]), numbers(rest[5])] : [0.5, 0.5];
const json = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
process.stdout.write(generateModelPy(json, { channels, height, width, classes, mean, std }));

// Copies the chart library (uPlot's ESM build, CSS and licence) from node_modules into web/vendor/,
// so the site is plain files a static host can serve. Run by `npm run build`, or on its own.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const source = path.join(root, 'node_modules', 'uplot');
const target = path.join(root, 'web', 'vendor');

const FILES = [
  ['dist/uPlot.esm.js', 'uPlot.esm.js'],
  ['dist/uPlot.min.css', 'uPlot.min.css'],
  ['LICENSE', 'uPlot.LICENSE'],
];

export function vendor() {
  if (!existsSync(path.join(source, 'dist', 'uPlot.esm.js'))) {
    throw new Error(`uPlot is not installed (${source}): run 'npm install' first`);
  }
  mkdirSync(target, { recursive: true });
  for (const [from, to] of FILES) copyFileSync(path.join(source, from), path.join(target, to));
  return target;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href;
if (isMain) {
  try {
    console.log(`vendor: uPlot copied into ${path.relative(root, vendor())}/`);
  } catch (error) {
    console.error(`vendor: ${error.message}`);
    process.exitCode = 1;
  }
}

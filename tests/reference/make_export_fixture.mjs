// Writes tests/fixtures/export-every-layer/: 64 test images as raw pixels, then (through
// export_check.py --fixture, with Debian's python3-torch) a state_dict of the every-layer net's
// model.py (tests/fixtures/every-layer/model.py, checked against the generator by its own tests)
// saved by PyTorch as model.safetensors, and PyTorch's logits on the images.
// Usage: node tests/reference/make_export_fixture.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { testPixels } from '../helpers/exports.js';

const dir = fileURLToPath(new URL('../fixtures/export-every-layer/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}pixels.bin`, testPixels(64));
const r = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('./export_check.py', import.meta.url)), '--fixture', dir, fileURLToPath(new URL('../fixtures/every-layer/model.py', import.meta.url))], { stdio: 'inherit' });
process.exit(r.status ?? 1);

// Image folders made at test time: PNGs from a tiny encoder (node:zlib), JPEGs from Pillow when
// /usr/bin/python3 has it (pillowAvailable says why not), a corrupt PNG and a text file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import path from 'node:path';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG of 8-bit pixels: channels 1 (grey), 3 (RGB) or 4 (RGBA); pixels row-major, interleaved. */
export function encodePng(width, height, channels, pixels) {
  const colourType = { 1: 0, 3: 2, 4: 6 }[channels];
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = colourType;
  const raw = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * channels)] = y % 5; // every filter type, as real encoders use them
    const row = pixels.subarray(y * width * channels, (y + 1) * width * channels);
    const prev = y ? pixels.subarray((y - 1) * width * channels, y * width * channels) : null;
    for (let i = 0; i < row.length; i++) {
      const a = i >= channels ? row[i - channels] : 0, b = prev ? prev[i] : 0, c = prev && i >= channels ? prev[i - channels] : 0;
      const predict = [0, a, b, (a + b) >> 1, paeth(a, b, c)][y % 5];
      raw[y * (1 + width * channels) + 1 + i] = (row[i] - predict) & 0xff;
    }
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function paeth(a, b, c) {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Pixels with structure (gradients, a class-dependent pattern) and seeded noise. */
export function makePixels(width, height, channels, seed, pattern = 0) {
  const out = new Uint8Array(width * height * channels);
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const base = pattern === 0 ? (x * 255) / width : pattern === 1 ? (y * 255) / height : ((x + y) % 8 < 4 ? 230 : 20);
        out[(y * width + x) * channels + c] = c === 3 ? ((x + y) % 3 === 0 ? 0 : 255) : Math.max(0, Math.min(255, Math.round(base * (0.6 + 0.2 * c) + (rand() >> 2))));
      }
    }
  }
  return out;
}

export const pillowAvailable = (() => {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import PIL'], { encoding: 'utf8' });
  return r.status === 0 ? true : `Pillow not available in /usr/bin/python3 (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}): apt-get install python3-pil`;
})();

/** JPEGs with Pillow: [{ file, width, height, pattern, seed, subsampling, quality, progressive, grey }]. */
export function writeJpegs(specs) {
  const script = `
import json, sys, random
from PIL import Image
for s in json.loads(sys.stdin.read()):
    w, h = s['width'], s['height']
    rnd = random.Random(s['seed'])
    im = Image.new('RGB', (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            base = [x * 255 // w, y * 255 // h, 230 if (x + y) % 8 < 4 else 20][s['pattern']]
            px[x, y] = tuple(max(0, min(255, int(base * (0.6 + 0.2 * c)) + rnd.randrange(64))) for c in range(3))
    if s.get('grey'): im = im.convert('L')
    im.save(s['file'], quality=s.get('quality', 85), subsampling=s.get('subsampling', 2), progressive=s.get('progressive', False))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(specs), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`Pillow could not write the JPEGs: ${r.stderr}`);
}

/**
 * A folder of three classes (birds, cats, dogs; 24 images) of mixed sizes and formats, with one
 * corrupt PNG (cats/broken.png), a text file (dogs/notes.txt) and, with Pillow, JPEGs of every
 * kind Chromium decodes (4:2:0, 4:2:2, 4:4:4, progressive, grey). Returns { dir, images,
 * corrupt, unsupported, jpegs } (images: how many should be packed).
 */
export function writeImageFolder(dir, { jpegs = pillowAvailable === true } = {}) {
  const classes = ['cats', 'dogs', 'birds'];
  const sizes = [[40, 30], [32, 32], [17, 50], [64, 48], [33, 33], [100, 20]];
  let images = 0;
  classes.forEach((name, pattern) => {
    mkdirSync(path.join(dir, name), { recursive: true });
    sizes.forEach(([w, h], i) => {
      const channels = [3, 3, 1, 4, 3, 3][i];
      writeFileSync(path.join(dir, name, `${name}-${i}.png`), encodePng(w, h, channels, makePixels(w, h, channels, 100 * pattern + i, pattern)));
      images++;
    });
  });
  const jpegSpecs = [];
  if (jpegs) {
    const kinds = [{ subsampling: 2 }, { subsampling: 1, quality: 90 }, { subsampling: 0, quality: 95 }, { progressive: true }, { grey: true }];
    classes.forEach((name, pattern) => kinds.slice(0, pattern === 2 ? 5 : 2 + pattern).forEach((kind, i) => {
      jpegSpecs.push({ file: path.join(dir, name, `${name}-j${i}.jpg`), width: 37 + 9 * i, height: 29 + 5 * pattern, pattern, seed: 7 * pattern + i, ...kind });
    }));
    writeJpegs(jpegSpecs);
    images += jpegSpecs.length;
  }
  writeFileSync(path.join(dir, 'cats', 'broken.png'), Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), Buffer.from('this is not a PNG stream at all')]));
  writeFileSync(path.join(dir, 'dogs', 'notes.txt'), 'not an image\n');
  return { dir, images, corrupt: 'cats/broken.png', unsupported: 'dogs/notes.txt', jpegs: jpegSpecs.length };
}

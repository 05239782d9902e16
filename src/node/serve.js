#!/usr/bin/env node
// `npm start`: serves the site (web/) on http://localhost:8080 with the CIFAR-10 binaries at
// data/cifar-10-batches-bin/ beside the page, fetching the official archive when they are missing.
// Zero dependencies; any static host serves the same files the same way.
import { createServer } from 'node:http';
import { createWriteStream, existsSync } from 'node:fs';
import { stat, rename, rm, mkdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { ALL_FILES, OFFICIAL_ARCHIVE, OFFICIAL_URL } from '../../web/cifar.js';
import { openRegularFile, statRegularFile } from './files.js';
import { ARCHIVE_RULE } from '../../web/file-limits.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const WEB_ROOT = path.join(root, 'web');
export const DEFAULT_DATA = path.join(root, 'data', 'cifar-10-batches-bin');
const DATA_PREFIX = 'data/cifar-10-batches-bin/';
/** The other standard data sets' folders (web/datasets.js), served from the project's data/. */
const OTHER_DATA = /^data\/(cifar-100-binary|mnist|fashion-mnist)\//;

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.gz': 'application/gzip',
};

/** '/sub/path' -> '/sub/path/'; '' -> '/'. */
function normalizeBase(base = '/') {
  let b = base.startsWith('/') ? base : `/${base}`;
  if (!b.endsWith('/')) b += '/';
  return b;
}

/** The file under `dir` for a decoded relative path, or null when it would leave `dir`. */
function inside(dir, relative) {
  const file = path.resolve(dir, `.${path.sep}${relative}`);
  return file === dir || file.startsWith(dir + path.sep) ? file : null;
}

function send(res, status, text, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', ...headers });
  res.end(text === undefined ? '' : `${text}\n`);
}

/**
 * Starts the server; resolves to { server, url, close() }. `port` 0 picks a free one. Requests
 * under `base` map to webRoot, except base + 'data/cifar-10-batches-bin/', which maps to dataDir,
 * and base + 'data/mnist/' (and the other data sets' folders), which map to datasetsDir/mnist.
 */
export function startServer({ port = 8080, host = 'localhost', webRoot = WEB_ROOT, dataDir = DEFAULT_DATA, datasetsDir = path.join(root, 'data'), base = '/', log = () => {} } = {}) {
  const prefix = normalizeBase(base);
  const roots = { web: path.resolve(webRoot), data: path.resolve(dataDir), datasets: path.resolve(datasetsDir) };

  const handle = async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(res, 400, 'bad request');
    }
    if (pathname.includes('\0')) return send(res, 400, 'bad request');
    if (prefix !== '/' && (pathname === '/' || `${pathname}/` === prefix)) return send(res, 302, undefined, { Location: prefix });
    if (!pathname.startsWith(prefix)) return send(res, 404, `not found: ${pathname} (the site is at ${prefix})`);
    const relative = pathname.slice(prefix.length);
    const [dir, sub] = relative.startsWith(DATA_PREFIX) ? [roots.data, relative.slice(DATA_PREFIX.length)]
      : OTHER_DATA.test(relative) ? [roots.datasets, relative.slice('data/'.length)] : [roots.web, relative];
    let file = inside(dir, sub);
    if (!file) return send(res, 403, 'forbidden');
    let info;
    try {
      info = await stat(file);
      if (info.isDirectory()) {
        if (!pathname.endsWith('/')) return send(res, 301, undefined, { Location: `${encodeURI(pathname)}/` });
        file = path.join(file, 'index.html');
        info = await stat(file);
      }
    } catch {
      log(`404 ${pathname}`);
      return send(res, 404, `not found: ${pathname}`);
    }
    // A device, pipe or socket is never opened (a pipe would hang the request); the file that was
    // opened gives the Content-Length, and exactly that many bytes are sent.
    let opened;
    try {
      opened = await openRegularFile(file, 'file');
    } catch (error) {
      log(`404 ${pathname}: ${error.message}`);
      return send(res, 404, `not found: ${pathname}`);
    }
    const { handle, size } = opened;
    res.writeHead(200, {
      'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD' || size === 0) {
      await handle.close();
      return res.end();
    }
    const source = handle.createReadStream({ start: 0, end: size - 1 });
    res.on('close', () => source.destroy()); // a client that goes away releases the file
    source.on('error', () => res.destroy())
      // A file that shrank while being sent must not leave the client waiting for the rest.
      .on('end', () => { if (source.bytesRead < size) res.destroy(); })
      .pipe(res);
    return undefined;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      log(`500 ${req.url}: ${error.message}`);
      if (!res.headersSent) send(res, 500, 'internal error');
      else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        server,
        url: `http://${host}:${address.port}${prefix}`,
        close: () => new Promise((done) => {
          server.closeAllConnections?.();
          server.close(() => done());
        }),
      });
    });
  });
}

export function missingFiles(dir) {
  return ALL_FILES.filter((name) => !existsSync(path.join(dir, name)));
}

function instructions(reason) {
  const dataRoot = path.join(root, 'data');
  return `webtrain: the CIFAR-10 data is not in ${DEFAULT_DATA}${reason ? ` and could not be downloaded (${reason})` : ''}.
  Download ${OFFICIAL_URL} (about 163 MB), then either
    - extract it into ${dataRoot}:   tar -xzf ${OFFICIAL_ARCHIVE} -C ${dataRoot}
      (or just put ${OFFICIAL_ARCHIVE} in ${dataRoot} and run npm start again), or
    - start the server with --data DIR (or WEBTRAIN_DATA=DIR) for a folder holding ${ALL_FILES.join(', ')}, or
    - drop ${OFFICIAL_ARCHIVE} on the page: it is read in the browser.
  The page is served meanwhile.`;
}

/** Like torchvision's download=True: fetch the official archive into data/ and extract it. */
async function fetchOfficialData(print) {
  const dataRoot = path.join(root, 'data');
  const archive = path.join(dataRoot, OFFICIAL_ARCHIVE);
  await mkdir(dataRoot, { recursive: true });
  if (!existsSync(archive)) {
    print(`webtrain: CIFAR-10 not found in ${DEFAULT_DATA}; downloading ${OFFICIAL_URL} …`);
    const partial = `${archive}.part`;
    const controller = new AbortController();
    const connectTimer = setTimeout(() => controller.abort(new Error('no answer within 20 s')), 20000);
    let response;
    try {
      response = await fetch(OFFICIAL_URL, { signal: controller.signal });
    } catch (error) {
      throw new Error(error.cause?.message ?? error.message);
    } finally {
      clearTimeout(connectTimer);
    }
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    const total = Number(response.headers.get('content-length')) || 0;
    // Judged before the body is read, and held to: never more than announced, or than the ceiling.
    const limit = total || ARCHIVE_RULE.ceiling;
    if (total > ARCHIVE_RULE.ceiling) throw new Error(`${OFFICIAL_URL} announces ${total} bytes, more than the ${ARCHIVE_RULE.ceiling}-byte ceiling for the archive`);
    const out = createWriteStream(partial);
    let loaded = 0;
    let reported = 0;
    try {
      for await (const chunk of response.body) {
        loaded += chunk.byteLength;
        if (loaded > limit) throw new Error(`${OFFICIAL_URL} sent more than ${total ? `the ${total} bytes it announced` : `the ${limit}-byte ceiling for the archive`}`);
        if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
        if (total && loaded / total >= reported + 0.1) {
          reported = Math.floor((10 * loaded) / total) / 10;
          print(`webtrain:   ${Math.round(100 * reported)}% of ${(total / 1e6).toFixed(0)} MB`);
        }
      }
      if (total && loaded !== total) throw new Error(`${OFFICIAL_URL} announced ${total} bytes but sent ${loaded}`);
      await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
    } catch (error) {
      out.destroy();
      await rm(partial, { force: true });
      throw error;
    }
    await rename(partial, archive);
  }
  await statRegularFile(archive, 'CIFAR-10 archive'); // tar would wait forever on a pipe
  print(`webtrain: extracting ${archive} …`);
  const result = spawnSync('tar', ['-xzf', archive, '-C', dataRoot], { stdio: 'inherit' });
  if (result.error) throw new Error(`tar: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`tar exited with status ${result.status}: is ${archive} complete? Delete it and retry`);
  const missing = missingFiles(DEFAULT_DATA);
  if (missing.length) throw new Error(`${OFFICIAL_ARCHIVE} did not contain ${missing.join(', ')}`);
  print(`webtrain: CIFAR-10 is ready in ${DEFAULT_DATA}`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' }, data: { type: 'string' }, base: { type: 'string' },
      host: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(`usage: npm start -- [--port N] [--data DIR] [--base /sub/path/] [--host NAME]

  --port N       port to listen on (default: PORT or 8080)
  --data DIR     folder with the six CIFAR-10 .bin files (default: WEBTRAIN_DATA or data/cifar-10-batches-bin)
  --base PATH    serve the site under this path, as a static host's sub-path would
  --host NAME    interface to listen on (default localhost)`);
    return;
  }
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected a port number, got '${values.port ?? process.env.PORT}'`);
  const given = values.data ?? process.env.WEBTRAIN_DATA;
  const dataDir = given ? path.resolve(given) : DEFAULT_DATA;

  if (!existsSync(path.join(WEB_ROOT, 'webtrain.wasm'))) {
    console.warn("webtrain: web/webtrain.wasm is missing: build the site first with 'npm run build'");
  }
  if (!existsSync(path.join(WEB_ROOT, 'vendor', 'uPlot.esm.js'))) {
    try {
      const { vendor } = await import('./vendor.js');
      vendor();
    } catch (error) {
      console.warn(`webtrain: the chart library is missing from web/vendor/ (${error.message})`);
    }
  }

  let server;
  try {
    server = await startServer({ port, host: values.host ?? 'localhost', dataDir, base: values.base ?? '/', log: (line) => console.log(`webtrain: ${line}`) });
  } catch (error) {
    if (error.code === 'EADDRINUSE') throw new Error(`port ${port} is in use: pick another with --port N or PORT=N`);
    throw error;
  }
  console.log(`webtrain: serving ${WEB_ROOT} at ${server.url}`);
  console.log(`webtrain: CIFAR-10 from ${dataDir} at ${server.url}${DATA_PREFIX}`);

  const missing = missingFiles(dataDir);
  if (missing.length && given) {
    console.warn(`webtrain: ${dataDir} lacks ${missing.join(', ')}: the page will report them missing (404)`);
  } else if (missing.length) {
    fetchOfficialData((line) => console.log(line)).catch((error) => console.warn(instructions(error.message)));
  }
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href;
if (isMain) {
  main().catch((error) => {
    console.error(`webtrain: ${error.message}`);
    process.exitCode = 1;
  });
}

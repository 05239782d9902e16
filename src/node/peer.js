// A data-parallel gradient worker for the CLI (worker_threads); the browser's twin is
// web/peer-worker.js. All the logic is in web/parallel.js.
import { parentPort } from 'node:worker_threads';

import { createEngine } from '../../web/engine.js';
import { serveGradientPeer } from '../../web/parallel.js';

serveGradientPeer({
  post: (msg, transfer) => parentPort.postMessage(msg, transfer),
  onMessage: (handler) => parentPort.on('message', handler),
}, createEngine);

// Data-parallel gradient workers for Node (worker_threads): run as a worker, this file serves
// gradient requests; imported, it starts such workers. The browser's twin is web/peer-worker.js;
// all the logic is in web/parallel.js.
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

import { createEngine } from '../../web/engine.js';
import { serveGradientPeer } from '../../web/parallel.js';

if (!isMainThread && parentPort) {
  serveGradientPeer({
    post: (msg, transfer) => parentPort.postMessage(msg, transfer),
    onMessage: (handler) => parentPort.on('message', handler),
  }, createEngine);
}

/** Starts `count` peer workers; returns their endpoints for DataParallelStepper. */
export function startPeerWorkers(count) {
  return Array.from({ length: count }, () => {
    const worker = new Worker(new URL(import.meta.url));
    return {
      post: (msg, transfer) => worker.postMessage(msg, transfer),
      onMessage: (handler) => worker.on('message', handler),
      onError: (handler) => {
        worker.on('error', handler);
        // A worker that just stops (killed, out of memory) must not leave a step waiting forever.
        worker.on('exit', (code) => handler(new Error(`exited with code ${code}`)));
      },
      close: () => worker.terminate(),
    };
  });
}

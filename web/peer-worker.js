// A data-parallel gradient worker started by the training worker (nested module Worker); the
// CLI's twin is src/node/peer.js. All the logic is in parallel.js.
import { createEngine } from './engine.js';
import { serveGradientPeer } from './parallel.js';

serveGradientPeer({
  post: (msg, transfer) => self.postMessage(msg, transfer),
  onMessage: (handler) => { self.onmessage = (event) => handler(event.data); },
}, createEngine);

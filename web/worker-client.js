// The page's end of the protocol (protocol.js): one training worker, started on first use, and
// request() resolving to its reply. STATE messages, events and a lost worker go to the callbacks;
// after a loss the next request starts a new worker.
import * as P from './protocol.js';

/** An ERROR reply from the worker; `scope` says what failed ('data', 'run', 'weights', 'lost'). */
export class WorkerError extends Error {
  constructor({ scope, message, line = null, checkpointModel = null, fileModel = null }) {
    super(message);
    this.scope = scope;
    this.line = line; // a model description's line at fault
    this.checkpointModel = checkpointModel; // the description a refused checkpoint holds
    this.fileModel = fileModel; // the description a refused safetensors file names
  }
}

/** url: worker.js's URL; onState(state), onEvent(message), onLost(message, crashed). */
export function createWorkerClient({ url, onState, onEvent, onLost }) {
  let worker = null;
  let nextId = 1;
  const pending = new Map();

  function ensure() {
    if (worker) return worker;
    worker = new Worker(url, { type: 'module' });
    worker.onmessage = ({ data }) => {
      if (data.type === P.STATE) onState(data.state);
      if (data.replyTo) {
        const request = pending.get(data.replyTo);
        pending.delete(data.replyTo);
        if (data.type === P.ERROR) request?.reject(new WorkerError(data));
        else request?.resolve(data);
      } else {
        onEvent(data);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const where = event.filename ? ` (${event.filename}:${event.lineno})` : '';
      onLost(`The training worker crashed: ${event.message || 'its script failed to load (worker.js or a module it imports)'}${where}.`, true);
    };
    worker.onmessageerror = () => onLost('A message from the training worker could not be read (messageerror).', false);
    return worker;
  }

  return {
    request(type, payload = {}, transfer = []) {
      const w = ensure();
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ type, id, ...payload }, transfer);
      });
    },
    /** A message that expects no reply (the debug crash). */
    post(message) { ensure().postMessage(message); },
    /** Ends the worker; pending requests fail with scope 'lost' and `message`. */
    terminate(message) {
      worker?.terminate();
      worker = null;
      for (const request of pending.values()) request.reject(new WorkerError({ scope: 'lost', message }));
      pending.clear();
    },
  };
}

// Data-parallel training without shared memory: every worker holds the whole model and the
// training set; each step, each computes the gradient of its slice of the batch, the leader sums
// them in a fixed order (so a seed and a worker count give one result) and sends the sum back at
// once, so the peers apply the same Adam update while the leader does. The leader's parameters
// are the model; the peers' copies only ever serve the next gradient.
// Buffers travel as transferred ArrayBuffers: no SharedArrayBuffer, no special headers.
//
// Messages, leader -> peer:
//   { type: 'init', module, trainFiles: [{name, bytes}], testFiles, limit, testLimit, seed, shuffle,
//     maxBatch, lr, state }   (state: the leader's parameters and Adam state, Model.exportState())
//   { type: 'apply', grads: Float32Array }   the summed gradient: apply Adam with it (no reply)
//   { type: 'step', epoch, offset, count, batch }  gradient of perm[offset..+count)
//   { type: 'eval', offset, count }                evaluate test records [offset..+count)
// peer -> leader:
//   { type: 'ready' } | { type: 'grads', grads: Float32Array, lossSum }
//   { type: 'evaluated', correct, lossSum, confusion: Int32Array, predictions: Uint8Array }
//   { type: 'error', message }

/**
 * Splits a batch into `parts` contiguous slices, the first ones one larger. With
 * `leaderBonus`, each other slice hands 1/16 of itself to the first (the leader's): a peer starts
 * a message later and answers a message later, and this keeps the leader from waiting for it.
 * A pure function of its arguments, so a seed and a worker count still give one result.
 */
export function splitBatch(batch, parts, { leaderBonus = false } = {}) {
  const base = Math.floor(batch / parts), extra = batch % parts;
  const counts = Array.from({ length: parts }, (_, k) => base + (k < extra ? 1 : 0));
  if (leaderBonus) {
    for (let k = 1; k < parts; k++) {
      const give = Math.floor(counts[k] / 16);
      counts[k] -= give;
      counts[0] += give;
    }
  }
  let offset = 0;
  return counts.map((count) => {
    const slice = { offset, count };
    offset += count;
    return slice;
  });
}

/** A peer as the leader sees it: one outstanding request at a time. */
class PeerLink {
  constructor(endpoint, index) {
    this.endpoint = endpoint;
    this.index = index;
    this.pending = null;
    this.failure = null; // set once the peer has crashed or exited: every later request fails
    endpoint.onMessage((msg) => {
      const p = this.pending;
      this.pending = null;
      if (!p) return;
      if (msg.type === 'error') p.reject(new Error(`worker ${index + 1}: ${msg.message}`));
      else p.resolve(msg);
    });
    endpoint.onError((error) => {
      this.failure ??= new Error(`worker ${index + 1} crashed: ${error?.message ?? error}`);
      const p = this.pending;
      this.pending = null;
      p?.reject(this.failure);
    });
  }

  request(msg, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.endpoint.post(msg, transfer);
    });
  }
}

/**
 * Leader side. `endpoints` are the other workers ({ post, onMessage, onError, close }); the
 * leader itself trains the first slice of every batch.
 */
export class DataParallelStepper {
  constructor(engine, model, train, endpoints) {
    this.engine = engine;
    this.model = model;
    this.train = train;
    this.peers = endpoints.map((e, i) => new PeerLink(e, i));
  }

  get workers() { return this.peers.length + 1; }

  async init({ module, trainFiles, testFiles = [], limit, testLimit, seed, shuffle, lr }) {
    const state = this.model.exportState();
    this.peersHaveTest = testFiles.length > 0;
    await Promise.all(this.peers.map((p) => p.request({
      type: 'init', module, trainFiles, testFiles, limit, testLimit, seed, shuffle, lr, maxBatch: this.model.maxBatch, state,
    })));
  }

  /**
   * Model.evaluate() over `test` with the work shared by all workers (when the peers were given
   * the same test files at init; otherwise the leader evaluates alone).
   */
  async evaluate(test) {
    if (!this.peersHaveTest) return this.model.evaluate(test);
    const slices = splitBatch(test.count, this.workers);
    const replies = this.peers.map((p, k) => p.request({ type: 'eval', ...slices[k + 1] }));
    const mine = this.model.evaluate(test, slices[0]);
    const results = await Promise.all(replies);
    const predictions = new Uint8Array(test.count);
    predictions.set(mine.predictions, 0);
    let { correct } = mine, lossSum = mine.loss * mine.total;
    results.forEach((r, k) => {
      correct += r.correct;
      lossSum += r.lossSum;
      for (let i = 0; i < 100; i++) mine.confusion[i] += r.confusion[i];
      predictions.set(r.predictions, slices[k + 1].offset);
    });
    const total = test.count;
    return { correct, total, accuracy: total ? correct / total : 0, loss: total ? lossSum / total : 0, confusion: mine.confusion, predictions };
  }

  /** One step on perm[start .. start+batch); returns the mean loss. */
  async trainStep(permPtr, start, batch, epoch) {
    const slices = splitBatch(batch, this.workers, { leaderBonus: true });
    const replies = this.peers.map((p, k) => {
      const { offset, count } = slices[k + 1];
      return p.request({ type: 'step', epoch, offset: start + offset, count, batch });
    });
    const model = this.model;
    model.zeroGrads();
    let lossSum = slices[0].count ? model.backwardAt(this.train, permPtr + 4 * start, slices[0].count, 1 / batch) : 0;
    const results = await Promise.all(replies);
    for (const r of results) { // fixed order: leader, then peer 1, 2, ...
      lossSum += r.lossSum;
      model.addGrads(r.grads);
    }
    const loss = lossSum / batch;
    if (!Number.isFinite(loss)) throw new Error(`the loss is ${Number.isNaN(loss) ? 'NaN' : 'infinite'} at Adam step ${model.adamSteps + 1}; parameters left unchanged`);
    const sum = model.gradsView();
    this.peers.forEach((p, k) => { // a copy each, taken by transfer
      const grads = sum.slice();
      p.endpoint.post({ type: 'apply', grads }, [grads.buffer]);
    });
    model.adamUpdate();
    return Math.fround(loss);
  }

  close() {
    for (const p of this.peers) p.endpoint.close();
  }
}

/**
 * Peer side: serves gradient requests on `endpoint` ({ post, onMessage }) using `createEngine`
 * from engine.js (passed in so this module has no environment-specific imports).
 */
export function serveGradientPeer(endpoint, createEngine) {
  let engine, model, train, test, permPtr = 0, permEpoch = -1, options;
  const applyUpdate = (grads) => {
    model.gradsView().set(grads);
    model.adamUpdate();
  };
  const handle = async (msg) => {
    if (msg.type === 'init') {
      options = msg;
      engine = await createEngine(msg.module);
      train = engine.loadDataset(msg.trainFiles, { limit: msg.limit ?? Infinity });
      test = msg.testFiles?.length ? engine.loadDataset(msg.testFiles, { limit: msg.testLimit ?? Infinity }) : null;
      model = engine.createModel({ maxBatch: msg.maxBatch, seed: msg.seed });
      model.importState(msg.state);
      model.setAdam({ lr: msg.lr });
      permPtr = engine.alloc(4 * train.count);
      return { type: 'ready' };
    }
    if (msg.type === 'apply') {
      applyUpdate(msg.grads);
      return null;
    }
    if (msg.type === 'step') {
      if (msg.epoch !== permEpoch) {
        if (options.shuffle) engine.writePermutation(permPtr, train.count, options.seed, msg.epoch);
        else engine.heapU32.set(Uint32Array.from({ length: train.count }, (_, i) => i), permPtr >> 2);
        permEpoch = msg.epoch;
      }
      model.zeroGrads();
      const lossSum = msg.count ? model.backwardAt(train, permPtr + 4 * msg.offset, msg.count, 1 / msg.batch) : 0;
      const grads = model.grads();
      return { reply: { type: 'grads', grads, lossSum }, transfer: [grads.buffer] };
    }
    if (msg.type === 'eval') {
      if (!test) throw new Error('no test set was given at init');
      const r = model.evaluate(test, msg);
      return { reply: { type: 'evaluated', correct: r.correct, lossSum: r.loss * r.total, confusion: r.confusion, predictions: r.predictions }, transfer: [r.confusion.buffer, r.predictions.buffer] };
    }
    throw new Error(`unknown message ${msg.type}`);
  };
  endpoint.onMessage(async (msg) => {
    try {
      const out = await handle(msg);
      if (out?.reply) endpoint.post(out.reply, out.transfer);
      else if (out) endpoint.post(out);
    } catch (error) {
      endpoint.post({ type: 'error', message: error.message });
    }
  });
}

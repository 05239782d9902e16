// Data-parallel training without shared memory: every worker holds the whole model and the
// training set. A batch is cut into blocks of WT_GRAD_BLOCK images whose gradients add up in one
// fixed binary tree (wt_model_gradient in webtrain.h). Each step the leader deals the blocks out
// as contiguous shares, the largest to the fastest worker by measured speed; each worker
// computes the tree nodes inside its share and sends them to the others (the peers' through the
// leader); every worker adds all the nodes up in the tree's order and applies the same update.
// The split only changes how fast a step is: the floats are those of one worker alone, for any
// split and any number of workers, so a run is reproducible and the balancing can follow a host
// whose cores change speed. The leader's parameters are the model; the peers' copies only serve
// the next gradient. A peer is given the next step while it works on this one, and starts on it
// as soon as it has updated, so no worker sleeps until another asks: on a busy machine a
// thread's wake-up costs milliseconds. Buffers travel as transferred ArrayBuffers: no
// SharedArrayBuffer, no special headers.
//
// Messages, leader -> peer:
//   { type: 'init', module, spec, text, format, modelSeed, trainFiles: [{name, bytes}], testFiles,
//     limit, testLimit, seed, shuffle, maxBatch, lr, augment, state }   (spec/text/modelSeed: the
//     model, as engine.js createModel takes it (the seed keys dropout); format: the records'
//     layout; seed: the shuffle's and the augmentation's; state: the leader's Model.exportState())
//   { type: 'step', epoch, step, offset, batch, lo, hi }  tree nodes of blocks [lo, hi) (maybe
//     none) of the batch perm[offset .. offset + batch); step: the run's global step (dropout
//     masks); epoch: the shuffle's and the augmentation's. A step that arrives before the
//     previous step's update waits for it.
//   { type: 'nodes', nodes: [{ lo, hi, grads: Float32Array, lossSum }], plan, groups, spares }
//     the other workers' nodes of the peer's step (in one or more messages; `plan` and `groups`
//     come with the leader's own): once they and its own cover the batch, the peer adds them up
//     and applies the update as `plan` says (trainer.js applyStepPlan: the optimizer settings,
//     the weights' average) unless the loss is not finite (the leader then stops the run).
//   { type: 'drop' }  forget the step computed last: the leader does not take it (no update)
//   { type: 'eval', offset, count, ema, tta }      evaluate test records [offset..+count) (with the
//     weights' average swapped in when ema; test-time augmentation tta)
// peer -> leader:
//   { type: 'ready' } | { type: 'evaluated', correct, plainCorrect, lossSum, confusion: Int32Array, predictions: Uint8Array }
//   { type: 'nodes', nodes: [{ lo, hi, grads: Float32Array, lossSum }], startedAt, doneAt, spares }
//     the answer to 'step' (the times bracket the computation, in ms of timeOrigin + now(), for
//     the balancing)
//   { type: 'error', message }
// The gradient buffers go back and forth instead of being allocated every step (248 KB each for
// SimpleCNN, a millisecond in Chromium): each side keeps the buffers it was sent for its own next
// nodes, and sends more than POOL_KEEP back as `spares`.

import { applyStepPlan } from './trainer.js';

/** Blocks of test images per evaluation request (32-image blocks: 128 images, 768 forwards with flip-translate). */
const EVAL_CHUNK_BLOCKS = 4;

/** `total` records cut into chunks of `size` (the last one shorter), in order. */
export function evalChunks(total, size) {
  const chunks = [];
  for (let offset = 0; offset < total; offset += size) chunks.push({ offset, count: Math.min(size, total - offset) });
  return chunks;
}

/** Resolves after the messages waiting for this thread (a peer's reply) have been handled. */
function yieldToMessages() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * The largest nodes of the gradient tree over blocks [lo, hi) that lie inside [a, b), left to
 * right: what a worker whose share is [a, b) computes. `mid` is wt_grad_tree_mid.
 */
export function treeNodes(lo, hi, a, b, mid) {
  if (hi <= a || b <= lo) return [];
  if (a <= lo && hi <= b) return [[lo, hi]];
  const m = mid(lo, hi);
  return [...treeNodes(lo, m, a, b, mid), ...treeNodes(m, hi, a, b, mid)];
}

/**
 * Deals `blocks` blocks to workers as contiguous shares, worker 0 (the leader) first: one block
 * each while there are enough (so every worker keeps being timed, and a worker that was slow for
 * a while gets work back), then each block to the worker that would finish soonest with it, by
 * its measured time per block and its fixed overhead per step (ms). The leader always has one.
 */
export function planShares(blocks, perBlockMs, overheadMs) {
  const counts = perBlockMs.map((_, k) => (blocks >= perBlockMs.length || k === 0 ? 1 : 0));
  for (let i = counts.reduce((a, b) => a + b, 0); i < blocks; i++) {
    let best = 0, bestFinish = Infinity;
    counts.forEach((c, k) => {
      const finish = overheadMs[k] + (c + 1) * perBlockMs[k];
      if (finish < bestFinish) { best = k; bestFinish = finish; }
    });
    counts[best] += 1;
  }
  let lo = 0;
  return counts.map((c) => {
    const share = { lo, hi: lo + c };
    lo += c;
    return share;
  });
}

/**
 * How long a peer may take to answer, by request type, before the leader gives it up as hung
 * (a browser gives no event when a worker thread just dies). A step takes well under a second;
 * init copies the data set into the peer.
 */
export const REPLY_TIMEOUT_MS = Object.freeze({ init: 300000, step: 60000, eval: 120000 });

/** A peer as the leader sees it: its requests are answered in order. */
class PeerLink {
  constructor(endpoint, index, timeouts) {
    this.endpoint = endpoint;
    this.index = index;
    this.timeouts = timeouts;
    this.pending = []; // { resolve, reject, timer } of each request not yet answered, oldest first
    this.failure = null; // set once the peer has crashed, exited or hung: every later request fails
    endpoint.onMessage((msg) => {
      const p = this.pending.shift();
      if (!p) return;
      clearTimeout(p.timer);
      if (msg.type === 'error') p.reject(new Error(`worker ${index + 1}: ${msg.message}`));
      else p.resolve(msg);
    });
    endpoint.onError((error) => this.#fail(new Error(`worker ${index + 1} crashed: ${error?.message ?? error}`)));
  }

  #fail(error) {
    this.failure ??= error;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
  }

  request(msg, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const ms = this.timeouts[msg.type] ?? REPLY_TIMEOUT_MS.step;
      const timer = setTimeout(() => {
        this.#fail(new Error(`worker ${this.index + 1} did not answer its '${msg.type}' request within ${ms / 1000} s: it has stopped or hung`));
      }, ms);
      this.pending.push({ resolve, reject, timer });
      this.endpoint.post(msg, transfer);
    });
  }

  /** A message that has no answer. */
  send(msg, transfer = []) {
    if (!this.failure) this.endpoint.post(msg, transfer);
  }
}

/** Buffers a side keeps for its next nodes; more go back to the other side. */
const POOL_KEEP = 8;

/**
 * Adds the tree nodes over blocks [0, blocks) up in the tree's order: `nodes` maps "lo,hi" to
 * { ptr, lossSum } in Wasm memory; the left operand keeps the sum. Returns the root's node.
 */
function sumTree(engine, model, nodes, blocks, mid) {
  const combine = (lo, hi) => {
    const node = nodes.get(`${lo},${hi}`);
    if (node) return node;
    const m = mid(lo, hi);
    const left = combine(lo, m), right = combine(m, hi);
    engine.wasm.wt_model_add_grads(model.ptr, left.ptr, right.ptr);
    return { ptr: left.ptr, lossSum: left.lossSum + right.lossSum };
  };
  return combine(0, blocks);
}

/**
 * The median of the last few timings: follows a core that changes speed within a few steps,
 * and ignores the odd step a thread was descheduled.
 */
export class RunningMedian {
  constructor(initial, size = 15) {
    this.samples = [initial];
    this.size = size;
    this.value = initial;
  }

  add(x) {
    this.samples.push(x);
    if (this.samples.length > this.size) this.samples.shift();
    const sorted = [...this.samples].sort((a, b) => a - b);
    this.value = sorted[sorted.length >> 1];
  }
}

/** A step's identity, to match the step a peer was given ahead with the one the leader runs. */
const stepKey = (start, batch, epoch, step) => `${start},${batch},${epoch},${step}`;

/** Milliseconds on a clock all threads of a page or process share. */
const clock = () => performance.timeOrigin + performance.now();

/**
 * Leader side. `endpoints` are the other workers ({ post, onMessage, onError, close }); the
 * leader itself computes the first share of every batch. `plan(blocks, stepper)` may replace
 * planShares (tests use it to force splits); `timeouts` may replace REPLY_TIMEOUT_MS.
 */
export class DataParallelStepper {
  constructor(engine, model, train, endpoints, { plan = null, timeouts = REPLY_TIMEOUT_MS } = {}) {
    this.engine = engine;
    this.model = model;
    this.train = train;
    this.peers = endpoints.map((e, i) => new PeerLink(e, i, timeouts));
    this.plan = plan;
    this.mid = (lo, hi) => engine.gradTreeMid(lo, hi);
    // Running estimates for planShares: ms per block of each worker, and each peer's ms from the
    // leader's request to its first block (latency, its Adam update) and from its last block to
    // the leader (latency). Equal to start. Times cross threads as timeOrigin + now().
    this.perBlockMs = Array.from({ length: this.workers }, () => new RunningMedian(1));
    this.startMs = Array.from({ length: this.workers }, (_, k) => new RunningMedian(k ? 0.15 : 0));
    this.returnMs = Array.from({ length: this.workers }, (_, k) => new RunningMedian(k ? 0.15 : 0));
    this.nodeBuffers = []; // Wasm buffers of gradCount floats for tree nodes besides the gradients
    this.pool = []; // Float32Array(gradCount) buffers the peers sent, for the leader's nodes
    this.lastShares = null;
    // Where the last step's time went (ms), for benchmarks: the leader's computation, its wait
    // for the peers' nodes, copying them in and adding them up, its update; each peer's
    // computation and the lags to and from it. Set by trainStep, read by bench-workers.js.
    this.lastTiming = null;
    this.ahead = null; // the next step, as the peers were given it: { key, shares, replies }
    this.lookahead = true; // give the peers the next step early when trainStep is told it
  }

  get workers() { return this.peers.length + 1; }

  /**
   * Gives every peer the data, the settings and the leader's model state. With `transferFiles`
   * the files' buffers are the caller's to give away: the last peer gets them by transfer (no
   * copy of the 150 MB training set), the others get copies.
   */
  async init({ module, trainFiles, testFiles = [], limit, testLimit, seed, shuffle, lr, augment = 'none', transferFiles = false }) {
    const { spec, text } = this.model.source(), { format } = this.train;
    // Without a plan from a TrainingRun, a step is the seed's: Adam at `lr`.
    this.defaultPlan = { optim: { kind: 'adam', groups: [{ lr }] }, emaReset: false, emaUpdates: [] };
    const state = this.model.exportState();
    this.peersHaveTest = testFiles.length > 0;
    const last = this.peers.length - 1;
    await Promise.all(this.peers.map((p, k) => {
      const transfer = transferFiles && k === last ? [...trainFiles, ...testFiles].map((f) => f.bytes.buffer) : [];
      return p.request({
        type: 'init', module, spec, text, format, modelSeed: this.model.seed, trainFiles, testFiles, limit, testLimit, seed, shuffle, lr, augment, maxBatch: this.model.maxBatch, state,
      }, transfer);
    }));
  }

  /**
   * Model.evaluate() over `test` with the work shared by all workers (when the peers were given
   * the same test files at init; otherwise the leader evaluates alone). The test set is cut into
   * chunks of EVAL_CHUNK_BLOCKS blocks, handed out as workers get free: each peer keeps two in
   * flight, the leader takes one at a time and lets the peers' replies in between. So a faster
   * core takes more, and no request waits on a whole half of a TTA evaluation. The chunks' results
   * are added up in the chunks' order: the figures do not depend on who evaluated which.
   */
  async evaluate(test, { ema = false, tta = 'none' } = {}) {
    const own = (range) => this.model.withAverage(ema, () => this.model.evaluate(test, { ...range, tta }));
    if (!this.peersHaveTest) return own();
    const chunks = evalChunks(test.count, EVAL_CHUNK_BLOCKS * this.model.block);
    const results = new Array(chunks.length);
    let next = 0;
    const feed = async (peer) => {
      while (next < chunks.length) {
        const i = next++;
        results[i] = await peer.request({ type: 'eval', ...chunks[i], ema, tta });
      }
    };
    const peersDone = Promise.all(this.peers.flatMap((peer) => [feed(peer), feed(peer)]));
    peersDone.catch(() => {}); // awaited below, after the leader's share
    while (next < chunks.length) {
      const i = next++;
      const r = own(chunks[i]);
      results[i] = { correct: r.correct, plainCorrect: r.plainCorrect, lossSum: r.loss * r.total, confusion: r.confusion, predictions: r.predictions };
      await yieldToMessages();
    }
    await peersDone;
    const total = test.count, predictions = new Uint8Array(total), confusion = new Int32Array(this.model.classes ** 2);
    let correct = 0, plainCorrect = 0, lossSum = 0;
    results.forEach((r, i) => {
      correct += r.correct;
      plainCorrect += r.plainCorrect;
      lossSum += r.lossSum;
      for (let j = 0; j < confusion.length; j++) confusion[j] += r.confusion[j];
      predictions.set(r.predictions, chunks[i].offset);
    });
    return {
      correct, plainCorrect, total, tta, accuracy: total ? correct / total : 0, plainAccuracy: total ? plainCorrect / total : 0,
      loss: total ? lossSum / total : 0, confusion, predictions,
    };
  }

  #nodeBuffer(i) {
    while (this.nodeBuffers.length <= i) this.nodeBuffers.push(this.engine.alloc(4 * this.model.gradCount));
    return this.nodeBuffers[i];
  }

  /** The shares of a step of `blocks` blocks, from the current estimates (or the test's plan). */
  #planStep(blocks) {
    if (this.plan) return this.plan(blocks, this);
    const overheadMs = this.startMs.map((ms, k) => ms.value + this.returnMs[k].value);
    return planShares(blocks, this.perBlockMs.map((ms) => ms.value), overheadMs);
  }

  /** Gives every peer its share of a step (maybe none: it still needs the update). */
  #assign(shares, fields) {
    return this.peers.map((p, k) => {
      const reply = p.request({ type: 'step', ...fields, lo: shares[k + 1].lo, hi: shares[k + 1].hi });
      reply.catch(() => {}); // a peer lost while no step waits for it fails the next step, not the process
      return reply;
    });
  }

  /**
   * A step given ahead that the leader does not take (the run went another way): the peers'
   * answers are awaited, their buffers kept, and the peers told to forget it.
   */
  async #dropAhead(ahead) {
    for (const [k, reply] of ahead.replies.entries()) {
      this.pool.push(...(await reply).nodes.map((n) => n.grads));
      this.peers[k].send({ type: 'drop' });
    }
  }

  /** Buffers beyond the pool's keep, to send back. */
  #spares() {
    return this.pool.length > POOL_KEEP ? this.pool.splice(POOL_KEEP) : [];
  }

  /**
   * One step on perm[start .. start+batch); returns the mean loss. `step`: the global step;
   * `plan`: the update's plan (trainer.js), the same on every worker. `next`: the step that
   * will follow ({ start, batch, epoch, step }), when the caller knows it: the peers get their
   * shares of it now and start on it as soon as they have this step's update, instead of
   * waiting to be asked. A next call that is not that step only costs the peers' wasted work.
   */
  async trainStep(permPtr, start, batch, epoch, step = 0, plan = this.defaultPlan, next = null) {
    const began = clock();
    const blocks = this.model.blocks(batch);
    const ahead = this.ahead;
    this.ahead = null;
    let shares, replies;
    if (ahead?.key === stepKey(start, batch, epoch, step)) {
      ({ shares, replies } = ahead);
    } else {
      if (ahead) await this.#dropAhead(ahead);
      shares = this.#planStep(blocks);
      replies = this.#assign(shares, { epoch, step, offset: start, batch });
    }
    this.lastShares = shares;
    if (next && this.lookahead) {
      const nextShares = this.#planStep(this.model.blocks(next.batch));
      const replies = this.#assign(nextShares, { epoch: next.epoch, step: next.step, offset: next.start, batch: next.batch });
      this.ahead = { key: stepKey(next.start, next.batch, next.epoch, next.step), shares: nextShares, replies };
    }
    // The leader's nodes: the first (holding block 0, where the sum ends up) into the gradients.
    const { model, engine } = this, indicesPtr = permPtr + 4 * start;
    const nodes = new Map(); // "lo,hi" -> { ptr, lossSum }
    let spare = 0;
    const t0 = clock();
    const own = treeNodes(0, blocks, shares[0].lo, shares[0].hi, this.mid).map(([lo, hi], i) => {
      const ptr = i === 0 ? model.gradsPtr : this.#nodeBuffer(spare++);
      const node = { lo, hi, ptr, lossSum: model.gradientAt(this.train, indicesPtr, batch, lo, hi, step, ptr) };
      nodes.set(`${lo},${hi}`, node);
      return node;
    });
    const leaderDone = clock();
    this.#learn(0, leaderDone - t0, shares[0]);
    // A copy of them to every peer, in buffers the peers sent, by transfer.
    for (const p of this.peers) {
      const sent = own.map(({ lo, hi, ptr, lossSum }) => {
        const grads = this.pool.pop() ?? new Float32Array(model.gradCount);
        grads.set(engine.heapF32.subarray(ptr >> 2, (ptr >> 2) + model.gradCount));
        return { lo, hi, lossSum, grads };
      });
      const spares = this.#spares();
      p.send({ type: 'nodes', nodes: sent, plan, groups: blocks, spares }, [...sent, ...spares].map((x) => (x.grads ?? x).buffer));
    }
    const timing = { shares, leaderMs: leaderDone - t0, waitMs: 0, sumMs: 0, updateMs: 0, totalMs: 0, peers: [] };
    let lastArrived = leaderDone;
    for (const [k, reply] of replies.entries()) {
      const r = await reply;
      const arrived = clock();
      lastArrived = Math.max(lastArrived, arrived);
      timing.waitMs = Math.max(timing.waitMs, arrived - leaderDone);
      timing.peers.push({ computeMs: r.doneAt - r.startedAt, startLagMs: r.startedAt - t0, returnLagMs: arrived - r.doneAt, doneBeforeLeaderMs: leaderDone - r.doneAt });
      // When the peer starts after the leader (negative: before it, on a step given ahead).
      this.startMs[k + 1].add(r.startedAt - t0);
      // Only a reply the leader was already waiting for shows how long the way back takes.
      if (r.doneAt > leaderDone) this.returnMs[k + 1].add(Math.max(0, arrived - r.doneAt));
      this.#learn(k + 1, r.doneAt - r.startedAt, shares[k + 1]);
      // The other peers need these nodes too: a copy each.
      if (r.nodes.length) this.peers.forEach((p, j) => { if (j !== k) p.send({ type: 'nodes', nodes: r.nodes }); });
      for (const { lo, hi, grads, lossSum } of r.nodes) {
        const ptr = this.#nodeBuffer(spare++);
        engine.heapF32.set(grads, ptr >> 2);
        nodes.set(`${lo},${hi}`, { ptr, lossSum });
        this.pool.push(grads);
      }
      this.pool.push(...(r.spares ?? []));
    }
    const loss = sumTree(engine, model, nodes, blocks, this.mid).lossSum / batch;
    if (!Number.isFinite(loss)) throw new Error(`the loss is ${Number.isNaN(loss) ? 'NaN' : 'infinite'} at optimizer step ${model.adamSteps + 1}; parameters left unchanged`);
    const updateAt = clock();
    applyStepPlan(model, plan, () => model.update(blocks));
    const end = clock();
    Object.assign(timing, { sumMs: updateAt - lastArrived, updateMs: end - updateAt, totalMs: end - began });
    this.lastTiming = timing;
    return Math.fround(loss);
  }

  /** Updates worker k's time per block from a step: `ms` to compute `share`. */
  #learn(k, ms, share) {
    const n = share.hi - share.lo;
    if (n > 0 && ms > 0) this.perBlockMs[k].add(ms / n);
  }

  close() {
    for (const p of this.peers) p.endpoint.close();
    for (const ptr of this.nodeBuffers) this.engine.free(ptr);
    this.nodeBuffers = [];
  }
}

/**
 * Peer side: serves gradient requests on `endpoint` ({ post, onMessage }) using `createEngine`
 * from engine.js (passed in so this module has no environment-specific imports).
 */
export function serveGradientPeer(endpoint, createEngine) {
  let engine, model, train, test, permPtr = 0, permEpoch = -1, options;
  const pool = []; // Float32Array(gradCount) buffers the leader sent
  const nodeBuffers = []; // Wasm buffers for tree nodes; the one holding block 0 is the gradients
  let current = null; // the step computed last, until its update: { batch, blocks, nodes, covered }
  const waiting = []; // 'step' requests that came before the update they follow
  const spares = () => (pool.length > POOL_KEEP ? pool.splice(POOL_KEEP) : []);

  /** Computes the nodes of a step's share, keeps them in Wasm memory, and sends copies. */
  const startStep = (msg) => {
    if (msg.epoch !== permEpoch) {
      if (options.shuffle) engine.writePermutation(permPtr, train.count, options.seed, msg.epoch);
      else engine.heapU32.set(Uint32Array.from({ length: train.count }, (_, i) => i), permPtr >> 2);
      model.setEpoch(msg.epoch);
      permEpoch = msg.epoch;
    }
    const startedAt = clock();
    const blocks = model.blocks(msg.batch), mid = (lo, hi) => engine.gradTreeMid(lo, hi);
    current = { batch: msg.batch, blocks, nodes: new Map(), covered: 0, used: 0, plan: null, groups: 0 };
    const sent = treeNodes(0, blocks, msg.lo, msg.hi, mid).map(([lo, hi]) => {
      const ptr = nodePtr(lo);
      const lossSum = model.gradientAt(train, permPtr + 4 * msg.offset, msg.batch, lo, hi, msg.step, ptr);
      current.nodes.set(`${lo},${hi}`, { ptr, lossSum });
      current.covered += hi - lo;
      const grads = pool.pop() ?? new Float32Array(model.gradCount);
      grads.set(engine.heapF32.subarray(ptr >> 2, (ptr >> 2) + model.gradCount));
      return { lo, hi, lossSum, grads };
    });
    const more = spares();
    endpoint.post({ type: 'nodes', nodes: sent, startedAt, doneAt: clock(), spares: more }, [...sent.map((n) => n.grads.buffer), ...more.map((b) => b.buffer)]);
  };
  // Where node [lo, ..) of the current step lives: block 0's in the gradients, others in buffers.
  const nodePtr = (lo) => {
    if (lo === 0) return model.gradsPtr;
    if (current.used === nodeBuffers.length) nodeBuffers.push(engine.alloc(4 * model.gradCount));
    return nodeBuffers[current.used++];
  };
  /** Takes the other workers' nodes; with the whole batch covered, adds up and updates. */
  const receiveNodes = (msg) => {
    if (!current) throw new Error('nodes came for no step');
    for (const { lo, hi, grads, lossSum } of msg.nodes) {
      const ptr = nodePtr(lo);
      engine.heapF32.set(grads, ptr >> 2);
      current.nodes.set(`${lo},${hi}`, { ptr, lossSum });
      current.covered += hi - lo;
      pool.push(grads);
    }
    pool.push(...(msg.spares ?? []));
    if (msg.plan) ({ plan: current.plan, groups: current.groups } = msg);
    if (current.covered < current.blocks || !current.plan) return;
    const { lossSum } = sumTree(engine, model, current.nodes, current.blocks, (lo, hi) => engine.gradTreeMid(lo, hi));
    // A loss that is not finite stops the run on the leader; the parameters stay as they were.
    if (Number.isFinite(lossSum / current.batch)) applyStepPlan(model, current.plan, () => model.update(current.groups));
    current = null;
    if (waiting.length) startStep(waiting.shift());
  };
  const handle = async (msg) => {
    if (msg.type === 'init') {
      options = msg;
      engine = await createEngine(msg.module);
      train = engine.loadDataset(msg.trainFiles, { limit: msg.limit ?? Infinity, format: msg.format });
      test = msg.testFiles?.length ? engine.loadDataset(msg.testFiles, { limit: msg.testLimit ?? Infinity, format: msg.format }) : null;
      model = engine.createModel({ spec: msg.spec, text: msg.text, maxBatch: msg.maxBatch, seed: msg.modelSeed });
      model.importState(msg.state);
      model.setAugment(msg.augment ?? 'none', msg.seed);
      permPtr = engine.alloc(4 * train.count);
      return { type: 'ready' };
    }
    if (msg.type === 'step') {
      if (current) waiting.push(msg);
      else startStep(msg);
      return null;
    }
    if (msg.type === 'nodes') return void receiveNodes(msg);
    if (msg.type === 'drop') {
      current = null;
      return null;
    }
    if (msg.type === 'eval') {
      if (!test) throw new Error('no test set was given at init');
      const r = model.withAverage(msg.ema, () => model.evaluate(test, msg));
      return { reply: { type: 'evaluated', correct: r.correct, plainCorrect: r.plainCorrect, lossSum: r.loss * r.total, confusion: r.confusion, predictions: r.predictions }, transfer: [r.confusion.buffer, r.predictions.buffer] };
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

// The reference training loop, one step at a time so a driver (the CLI, the page's worker) can
// pause, report or stop between steps. Events mirror the PyTorch loop's output.
import { parseAugment, parseTta } from './augment.js';

import { checkRecipe, resolveGroups, optimizerConfig, evaluatesAfter, ttaOf } from './recipe.js';
import { scheduleFactor, emaStartsAt, emaUpdatesAfter } from './schedule.js';

const now = () => performance.now();

/** Training stopped because the loss or a parameter stopped being finite, or the loss exploded. */
export class DivergenceError extends Error {
  constructor(message, { epoch, step }) {
    super(message);
    this.name = 'DivergenceError';
    this.epoch = epoch;
    this.step = step;
  }
}

export const TRAINING_DEFAULTS = Object.freeze({
  epochs: 5, batchSize: 64, lr: 0.001, seed: 0, shuffle: true, logEvery: 100, workers: 1, classes: 10,
  augment: 'none', tta: 'none', whiten: true,
});

/**
 * A running loss above this many times chance (ln(classes), the loss of a uniform guess) means the
 * run has diverged even while the numbers stay finite (lr 50 logs losses of 1e10).
 */
export const DIVERGED_LOSS_FACTOR = 100;

/**
 * A run of `epochs` epochs over `train`, evaluating on `test` after each one.
 * Events: { event: 'loss', epoch, step, steps, loss } every logEvery steps (the mean of the last
 * logEvery step losses, as the reference prints it) and { event: 'epoch', ... } after each epoch
 * (with partial_loss: { steps, loss } when the epoch ended between two loss events). An epoch
 * event has evaluated: true and the test figures (test_accuracy, ..., detail) when the recipe's
 * eval_every evaluated that epoch; evaluated: false and none of them otherwise.
 */
export class TrainingRun {
  /**
   * stepper: optional DataParallelStepper (parallel.js); without it this thread trains alone.
   * resume: a run state from Model.loadCheckpoint(); the model must hold that checkpoint.
   * recipe: the training recipe (recipe.js; missing keys take their defaults); epochs,
   * batchSize, lr, augment and tta, when given, override its values. Its augment (web/augment.js) applies to
   * training images, drawn from (seed, epoch, record); its tta to the evaluations its tta_on names.
   * whiten: a fresh run computes its whitening convs from `train` (false when the weights were
   * imported).
   */
  constructor(engine, model, { train, test, stepper = null, resume = null, recipe = {}, ...options }) {
    const given = Object.fromEntries(['epochs', 'batchSize', 'lr', 'augment', 'tta'].filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
    const r = checkRecipe({ ...recipe, ...given });
    const o = { ...TRAINING_DEFAULTS, classes: model.classes ?? TRAINING_DEFAULTS.classes, ...options, epochs: r.epochs, batchSize: r.batchSize, lr: r.lr };
    for (const [key, ok] of [
      ['epochs', Number.isInteger(o.epochs) && o.epochs >= 0],
      ['batchSize', Number.isInteger(o.batchSize) && o.batchSize >= 1 && o.batchSize <= model.maxBatch],
      ['lr', Number.isFinite(o.lr) && o.lr > 0],
      ['seed', Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff],
    ]) {
      if (!ok) throw new RangeError(`invalid ${key}: ${o[key]}`);
    }
    if (!train || train.count === 0) throw new RangeError('no training records');
    // A model made for another data set (a checkpoint's, say) would read these records wrongly.
    for (const data of [train, test]) {
      const f = data?.format, m = model.format;
      if (f && m && (f.channels !== m.channels || f.height !== m.height || f.width !== m.width || f.classes !== m.classes)) {
        throw new RangeError(`the model takes ${m.channels}x${m.height}x${m.width} images in ${m.classes} classes; the data has ${f.channels}x${f.height}x${f.width} images in ${f.classes} classes`);
      }
    }
    o.augment = r.augment;
    o.tta = r.tta;
    this.engine = engine;
    this.model = model;
    this.train = train;
    this.test = test;
    this.options = o;
    this.stepper = stepper;
    this.recipe = r;
    this.groups = resolveGroups(r, model);
    model.setTensorGroups(this.groups.groupOfTensor);
    model.setLabelSmoothing(r.labelSmoothing);
    this.stepsPerEpoch = Math.ceil(train.count / o.batchSize);
    this.epoch = 0; // 0-based epoch in progress
    this.step = 0;  // steps done in this epoch
    this.windowSum = 0;
    this.windowCount = 0;
    this.epochTrainMs = 0;
    this.totalTrainMs = 0;
    if (resume) {
      if (resume.trainCount !== train.count) {
        throw new RangeError(`the checkpoint was made with ${resume.trainCount} training records; this run has ${train.count}`);
      }
      this.epoch = resume.epoch;
      this.step = resume.step;
      this.windowSum = resume.windowSum;
      this.windowCount = resume.windowCount;
    }
    model.setAugment(o.augment, o.seed);
    if (!resume && o.whiten) model.initWhitening(train);
    this.startedAt = now();
    this.permPtr = engine.alloc(4 * train.count);
    if (!this.done) this.#preparePermutation();
  }

  /** Everything a checkpoint needs to continue this run exactly. */
  runState() {
    const o = this.options;
    return {
      epoch: this.epoch, step: this.step, epochs: o.epochs, batchSize: o.batchSize, shuffle: o.shuffle,
      workers: o.workers, seed: o.seed, trainCount: this.train.count,
      windowCount: this.windowCount, windowSum: this.windowSum,
      adam: { lr: o.lr, beta1: this.recipe.beta1, beta2: this.recipe.beta2, eps: this.recipe.eps },
      recipe: this.recipe,
    };
  }

  /** A checkpoint file of the model and this run, taken between steps. */
  checkpoint() {
    return this.model.saveCheckpoint(this.runState());
  }

  get done() { return this.epoch >= this.options.epochs; }

  /** Steps done in the whole run: the position in the schedule. */
  get globalStep() { return this.epoch * this.stepsPerEpoch + this.step; }

  get totalSteps() { return this.options.epochs * this.stepsPerEpoch; }

  /** The lr factor of the schedule for the next step. */
  get scheduleFactor() { return scheduleFactor(this.recipe.schedule, this.globalStep, this.totalSteps, this.stepsPerEpoch); }

  /**
   * What the next step does besides the gradient, the same on every worker: the optimizer
   * settings (the schedule's lr, each group's, frozen groups), whether the weights' average
   * starts before it and its updates after it.
   */
  #stepPlan() {
    const r = this.recipe, step = this.globalStep;
    return {
      optim: optimizerConfig(r, this.groups.groups, this.scheduleFactor, this.epoch),
      emaReset: emaStartsAt(r.ema, step, this.stepsPerEpoch) && !this.model.emaActive,
      emaUpdates: emaUpdatesAfter(r.ema, step + 1, this.totalSteps, this.stepsPerEpoch),
    };
  }

  #preparePermutation() {
    const n = this.train.count;
    this.model.setEpoch(this.epoch);
    if (this.options.shuffle) {
      this.engine.writePermutation(this.permPtr, n, this.options.seed, this.epoch);
    } else {
      const view = this.engine.heapU32;
      for (let i = 0; i < n; i++) view[(this.permPtr >> 2) + i] = i;
    }
  }

  /** Runs one training step (and the epoch's evaluation after its last step); resolves to events. */
  async runStep() {
    if (this.done) return [];
    const { batchSize, logEvery, epochs } = this.options;
    const events = [];
    const start = this.step * batchSize;
    const batch = Math.min(batchSize, this.train.count - start);
    const t0 = now();
    let loss;
    const plan = this.#stepPlan();
    try {
      if (this.stepper) {
        loss = await this.stepper.trainStep(this.permPtr, start, batch, this.epoch, this.globalStep, plan, this.#nextInEpoch(start + batch));
      } else {
        applyStepPlan(this.model, plan, () => { loss = this.model.trainStepAt(this.train, this.permPtr + 4 * start, batch, this.globalStep); });
      }
    } catch (error) {
      if (error.code !== 4 && !/^the loss is/.test(error.message)) throw error;
      throw this.#diverged(error.message.replace(/^training step: /, ''));
    }
    const runningLoss = (this.windowSum + loss) / (this.windowCount + 1);
    const limit = DIVERGED_LOSS_FACTOR * Math.log(this.options.classes);
    if (runningLoss > limit) {
      throw this.#diverged(`the running loss ${runningLoss.toPrecision(4)} is above ${DIVERGED_LOSS_FACTOR} × ln(${this.options.classes}) = ${limit.toFixed(1)}`);
    }
    const dt = now() - t0;
    this.epochTrainMs += dt;
    this.totalTrainMs += dt;
    this.step += 1;
    this.windowSum += loss;
    this.windowCount += 1;
    if (this.step % logEvery === 0) {
      events.push({ event: 'loss', epoch: this.epoch + 1, epochs, step: this.step, steps: this.stepsPerEpoch, loss: this.windowSum / this.windowCount });
      this.windowSum = 0;
      this.windowCount = 0;
    }
    if (this.step === this.stepsPerEpoch) {
      const trainSeconds = this.epochTrainMs / 1000;
      // The recipe's eval_every may skip this epoch's evaluation (never the last epoch's).
      const evaluated = evaluatesAfter(this.recipe, this.epoch + 1, epochs);
      const result = evaluated ? await this.evaluate({ final: this.epoch + 1 === epochs }) : null;
      events.push({
        event: 'epoch', epoch: this.epoch + 1, epochs, evaluated, ...result?.summary,
        train_samples_per_s: this.train.count / trainSeconds,
        train_s: trainSeconds,
        ...(evaluated ? { eval_samples_per_s: result.samplesPerSecond } : {}),
        elapsed_s: (now() - this.startedAt) / 1000,
        // The steps after the last loss event, for a chart (a 50-step epoch logs no loss line).
        ...(this.windowCount ? { partial_loss: { steps: this.windowCount, loss: this.windowSum / this.windowCount } } : {}),
        ...(evaluated ? { detail: result } : {}),
      });
      this.epoch += 1;
      this.step = 0;
      this.windowSum = 0;
      this.windowCount = 0;
      this.epochTrainMs = 0;
      if (!this.done) this.#preparePermutation();
    }
    return events;
  }

  /**
   * The step after this one when it is in the same epoch ({ start, batch, epoch, step }), so
   * data-parallel peers can start on it as soon as they have this step's update; null at the
   * epoch's end (the evaluation comes first).
   */
  #nextInEpoch(start) {
    if (this.step + 1 >= this.stepsPerEpoch) return null;
    return { start, batch: Math.min(this.options.batchSize, this.train.count - start), epoch: this.epoch, step: this.globalStep + 1 };
  }

  #diverged(reason) {
    const where = { epoch: this.epoch + 1, step: this.step + 1 };
    return new DivergenceError(`training diverged at epoch ${where.epoch}, step ${where.step}: ${reason}. Try a lower learning rate (now ${this.options.lr}).`, where);
  }

  /** Whether evaluation uses the weights' average (a plain EMA, once started). */
  get evaluatesAverage() { return this.recipe.ema.kind === 'plain' && this.model.emaActive; }

  /**
   * Test-set accuracy, loss and confusion matrix of the current model (shared by all workers).
   * With the recipe's tta_on 'last', only the run's final evaluation (final) uses the test-time
   * augmentation; the epochs before it are evaluated plain.
   */
  async evaluate({ final = true } = {}) {
    const t0 = now();
    const tta = ttaOf(this.recipe, final);
    const ema = this.evaluatesAverage;
    let r;
    if (this.stepper) {
      r = await this.stepper.evaluate(this.test, { ema, tta });
    } else {
      r = this.model.withAverage(ema, () => this.model.evaluate(this.test, { tta }));
    }
    const seconds = (now() - t0) / 1000;
    return {
      ...r,
      samplesPerSecond: r.total / seconds,
      summary: {
        test_accuracy: r.accuracy, correct: r.correct, total: r.total, test_loss: r.loss, tta,
        // With a test-time augmentation, the images' own accuracy too (their first view's).
        ...(tta === 'none' ? {} : { plain_accuracy: r.plainAccuracy, plain_correct: r.plainCorrect }),
      },
    };
  }

  dispose() {
    if (this.permPtr) this.engine.free(this.permPtr);
    this.permPtr = 0;
  }
}

/**
 * One step's plan around `update` (the optimizer step): start the weights' average if due, set
 * the optimizer, update, then the average's updates. Every worker runs the same plan.
 */
export function applyStepPlan(model, plan, update) {
  if (plan.emaReset) model.emaReset(true);
  model.setOptimizer(plan.optim);
  update();
  for (const u of plan.emaUpdates) model.emaUpdate(u.decay, u.copyBack);
}

export function formatLoss(e) {
  return `Epoch [${e.epoch}/${e.epochs}], Step [${e.step}/${e.steps}], Loss: ${e.loss.toFixed(4)}`;
}

/** An epoch event's line: its test accuracy, or that eval_every skipped its evaluation. */
export function formatEpoch(e) {
  return e.evaluated === false ? `Epoch [${e.epoch}/${e.epochs}]: not evaluated (eval_every)` : formatAccuracy(e);
}

/** An epoch event's throughput line (training and, when it evaluated, evaluation). */
export function formatThroughput(e) {
  const parts = [];
  if (e.train_samples_per_s) parts.push(`training ${e.train_samples_per_s.toFixed(0)} samples/s`);
  if (e.eval_samples_per_s) parts.push(`evaluation ${e.eval_samples_per_s.toFixed(0)} samples/s`);
  return `Throughput: ${parts.join(', ')} (${e.elapsed_s.toFixed(1)} s elapsed)`;
}

export function formatAccuracy(e) {
  const plain = e.plain_accuracy === undefined ? '' : `; without it ${(100 * e.plain_accuracy).toFixed(2)}%`;
  const tta = e.tta && e.tta !== 'none' ? `, test-time augmentation ${e.tta}${plain}` : '';
  return `Test accuracy: ${(100 * e.test_accuracy).toFixed(2)}% (${e.correct}/${e.total}${tta})`;
}

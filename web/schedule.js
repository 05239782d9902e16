// Learning-rate schedules and the weights' moving average as pure functions of the run's global
// step (steps done so far, saved in a checkpoint), so a resumed run continues the same curve. A
// schedule gives the factor on the recipe's lr for the step about to run, as torch's LambdaLR
// does with lambda(steps done). Written as text in recipes, on the command line and in the URL:
//
//   constant                                    factor 1
//   step:every=E,gamma=G                        G ** floor(epoch / E)       (torch's StepLR per epoch)
//   cosine:warmup=W,min=M                       linear 0 -> 1 over the first W of the steps, then
//                                               M + (1 - M) * (1 + cos(pi * t)) / 2 over the rest
//   triangular:start=S,peak=P,end=E            S -> 1 at step floor(P * total) -> E at the last step
//                                               (airbench: start=0.2,peak=0.23,end=0.07); alias onecycle
//   piecewise:X1=F1,X2=F2,...                   linear between (fraction of the steps, factor) points
//
// W, P and X are fractions of the run's total steps (0..1).

/** A recipe setting that cannot be read; the message names the setting and what is wrong. */
export class RecipeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RecipeError';
  }
}

const SCHEDULE_KINDS = Object.freeze({
  constant: {},
  step: { every: 1, gamma: 0.1 },
  cosine: { warmup: 0, min: 0 },
  triangular: { start: 0.2, peak: 0.23, end: 0.07 },
  piecewise: null, // points
});

/** Reads `kind:key=value,...` into [kind, { key: number }] for `what` (a setting's name). */
export function readOptions(text, what, kinds) {
  const trimmed = String(text).trim();
  const colon = trimmed.indexOf(':');
  const kind = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim().toLowerCase();
  if (!kinds.includes(kind)) throw new RecipeError(`${what}: unknown kind '${kind}' (known: ${kinds.join(', ')})`);
  const options = {};
  if (colon >= 0 && trimmed.slice(colon + 1).trim() !== '') {
    for (const part of trimmed.slice(colon + 1).split(',')) {
      const m = /^\s*([\w.]+)\s*=\s*(\S+)\s*$/.exec(part);
      if (!m) throw new RecipeError(`${what}: expected key=value, got '${part.trim()}'`);
      if (m[1] in options) throw new RecipeError(`${what}: '${m[1]}' is given twice`);
      options[m[1]] = m[2];
    }
  }
  return [kind, options];
}

function number(value, what, { min = -Infinity, max = Infinity, integer = false } = {}) {
  const x = typeof value === 'number' ? value : String(value).trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x))) {
    const range = `${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` from ${min}` : ''}${max < Infinity ? ` to ${max}` : ''}`;
    throw new RecipeError(`${what}: expected ${range}, got '${value}'`);
  }
  return x;
}

/** Schedule text (or an already parsed object) -> { kind, ...options }, checked. */
export function parseSchedule(source, what = 'schedule') {
  if (source && typeof source === 'object') return parseSchedule(formatSchedule(source), what);
  let [kind, raw] = readOptions(source, what, [...Object.keys(SCHEDULE_KINDS), 'onecycle']);
  if (kind === 'onecycle') kind = 'triangular';
  if (kind === 'piecewise') {
    const points = Object.entries(raw).map(([x, f]) => [number(x, `${what}: step fraction`, { min: 0, max: 1 }), number(f, `${what}: factor at ${x}`, { min: 0 })]);
    points.sort((a, b) => a[0] - b[0]);
    if (points.length < 2 || points[0][0] !== 0 || points.at(-1)[0] !== 1) {
      throw new RecipeError(`${what}: piecewise needs points at 0 and at 1, e.g. 'piecewise:0=0.2,0.23=1,1=0.07'`);
    }
    return { kind, points };
  }
  const defaults = SCHEDULE_KINDS[kind];
  for (const key of Object.keys(raw)) {
    if (!(key in defaults)) throw new RecipeError(`${what}: ${kind} takes ${Object.keys(defaults).join(', ') || 'no options'}, not '${key}'`);
  }
  const o = { kind, ...defaults };
  for (const [key, value] of Object.entries(raw)) o[key] = Number(value);
  if (kind === 'step') {
    number(raw.every ?? o.every, `${what}: every (epochs)`, { min: 1, integer: true });
    number(raw.gamma ?? o.gamma, `${what}: gamma`, { min: 0 });
  } else if (kind === 'cosine') {
    number(raw.warmup ?? o.warmup, `${what}: warmup (fraction of the steps)`, { min: 0, max: 1 });
    number(raw.min ?? o.min, `${what}: min`, { min: 0 });
  } else if (kind === 'triangular') {
    for (const key of ['start', 'end']) number(raw[key] ?? o[key], `${what}: ${key}`, { min: 0 });
    number(raw.peak ?? o.peak, `${what}: peak (fraction of the steps)`, { min: 0, max: 1 });
  }
  return o;
}

/** { kind, ... } -> its canonical text (what parseSchedule reads back). */
export function formatSchedule(s) {
  if (s.kind === 'piecewise') return `piecewise:${s.points.map(([x, f]) => `${x}=${f}`).join(',')}`;
  const keys = Object.keys(SCHEDULE_KINDS[s.kind] ?? {});
  return keys.length ? `${s.kind}:${keys.map((k) => `${k}=${s[k]}`).join(',')}` : s.kind;
}

/** Linear interpolation through points [[x, y], ...] (x ascending), as np.interp. */
function interpolate(points, x) {
  if (x <= points[0][0]) return points[0][1];
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i];
    if (x <= x1) return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return points.at(-1)[1];
}

/**
 * The factor on the lr for the step after `step` steps of a run of `totalSteps` steps of
 * `stepsPerEpoch` each.
 */
export function scheduleFactor(schedule, step, totalSteps, stepsPerEpoch) {
  const s = schedule;
  const total = Math.max(totalSteps, 1);
  switch (s.kind) {
    case 'constant': return 1;
    case 'step': return s.gamma ** Math.floor(Math.floor(step / Math.max(stepsPerEpoch, 1)) / s.every);
    case 'cosine': {
      const warm = Math.floor(s.warmup * total);
      if (step < warm) return (step + 1) / warm;
      const t = Math.min(1, (step - warm) / Math.max(total - warm, 1));
      return s.min + ((1 - s.min) * (1 + Math.cos(Math.PI * t))) / 2;
    }
    case 'triangular': {
      // airbench's triangle(): knots at 0, int(peak * steps) and steps.
      const peak = Math.floor(s.peak * total);
      return interpolate([[0, s.start], [peak, 1], [total, s.end]], step);
    }
    case 'piecewise': return interpolate(s.points.map(([x, f]) => [x * total, f]), step);
    default: throw new RecipeError(`schedule: unknown kind '${s.kind}'`);
  }
}

/** The whole curve, one point per step (at most `maxPoints`, evenly spaced): { steps, factors }. */
export function scheduleCurve(schedule, totalSteps, stepsPerEpoch, maxPoints = 400) {
  const stride = Math.max(1, Math.ceil(totalSteps / maxPoints));
  const steps = [], factors = [];
  for (let s = 0; s < totalSteps; s += stride) {
    steps.push(s);
    factors.push(scheduleFactor(schedule, s, totalSteps, stepsPerEpoch));
  }
  if (totalSteps > 0 && steps.at(-1) !== totalSteps - 1) {
    steps.push(totalSteps - 1);
    factors.push(scheduleFactor(schedule, totalSteps - 1, totalSteps, stepsPerEpoch));
  }
  return { steps, factors };
}

// ---- the weights' moving average ----
//
//   none
//   lookahead:every=5,rho=0.95,power=3,start_epoch=0   airbench: every `every` steps (counted from
//        the start of the run), ema = d * ema + (1 - d) * weights with d = rho**every * (step /
//        total)**power, then the weights become the average; after the last step they become it
//        once more with d = 1. The average starts from the weights at the start of start_epoch.
//   plain:decay=0.999,every=1,start_epoch=0            ema = decay * ema + (1 - decay) * weights
//        every `every` steps; evaluation uses the average (the weights train on unchanged).

const EMA_KINDS = Object.freeze({
  none: {},
  lookahead: { every: 5, rho: 0.95, power: 3, start_epoch: 0 },
  plain: { decay: 0.999, every: 1, start_epoch: 0 },
});

export function parseEma(source, what = 'ema') {
  if (source && typeof source === 'object') return parseEma(formatEma(source), what);
  const [kind, raw] = readOptions(source, what, Object.keys(EMA_KINDS));
  const defaults = EMA_KINDS[kind];
  for (const key of Object.keys(raw)) {
    if (!(key in defaults)) throw new RecipeError(`${what}: ${kind} takes ${Object.keys(defaults).join(', ') || 'no options'}, not '${key}'`);
  }
  const o = { kind, ...defaults };
  for (const [key, value] of Object.entries(raw)) {
    const integer = key === 'every' || key === 'start_epoch';
    o[key] = number(value, `${what}: ${key}`, { min: integer && key === 'every' ? 1 : 0, max: key === 'decay' || key === 'rho' ? 1 : Infinity, integer });
  }
  return o;
}

export function formatEma(e) {
  const keys = Object.keys(EMA_KINDS[e.kind] ?? {});
  return keys.length ? `${e.kind}:${keys.map((k) => `${k}=${e[k]}`).join(',')}` : e.kind;
}

/** Whether the average starts before the step after `step` steps (the first step of start_epoch). */
export function emaStartsAt(ema, step, stepsPerEpoch) {
  return ema.kind !== 'none' && step === ema.start_epoch * stepsPerEpoch;
}

/**
 * What to do with the average after step number `done` (1-based: steps done including this
 * one) of `totalSteps`: a list of { decay, copyBack } updates, in order (often none).
 */
export function emaUpdatesAfter(ema, done, totalSteps, stepsPerEpoch) {
  if (ema.kind === 'none' || done <= ema.start_epoch * stepsPerEpoch) return [];
  const out = [];
  if (ema.kind === 'lookahead') {
    if (done % ema.every === 0) out.push({ decay: ema.rho ** ema.every * (done / totalSteps) ** ema.power, copyBack: true });
    if (done === totalSteps) out.push({ decay: 1, copyBack: true });
  } else if (done % ema.every === 0) {
    out.push({ decay: ema.decay, copyBack: false });
  }
  return out;
}

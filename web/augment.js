// Data augmentation and test-time augmentation settings: their text form (the CLI's --augment and
// --tta, a recipe's `augment` and `tta` keys), checked, and the engine's codes (wt_augment in
// include/webtrain.h). Plain ES module with no dependencies.

export const FLIP_MODES = Object.freeze(['none', 'random', 'alternate']);
export const PADDING_MODES = Object.freeze(['reflect', 'zero']);
export const TTA_MODES = Object.freeze(['none', 'flip', 'flip-translate']);
/** Forward passes per test image of each mode (flip-translate: 3 views, each flip-averaged). */
export const TTA_VIEWS = Object.freeze({ none: 1, flip: 2, 'flip-translate': 6 });

/** No augmentation: the default, and what `none` reads as. */
export const NO_AUGMENT = Object.freeze({ flip: 'none', translate: 0, padding: 'reflect', cutout: 0 });

/** airbench's training augmentation, what `airbench` reads as. */
export const AIRBENCH_AUGMENT = Object.freeze({ flip: 'alternate', translate: 2, padding: 'reflect', cutout: 0 });

const KEYS = {
  flip: (v) => (v === '' ? 'random' : FLIP_MODES.includes(v) ? v : null),
  translate: (v) => (/^\d+$/.test(v) ? Number(v) : null),
  padding: (v) => (PADDING_MODES.includes(v) ? v : null),
  cutout: (v) => (/^\d+$/.test(v) ? Number(v) : null),
};
const HELP = "'none', 'airbench', or a comma list of flip[=random|alternate], translate=N, padding=reflect|zero, cutout=N";

/**
 * Text -> { flip, translate, padding, cutout }: `none`, `airbench` (alternating flips, ±2 px with
 * reflect padding), or e.g. `flip=alternate,translate=2,padding=reflect,cutout=8`. An object is
 * checked and completed. Throws a RangeError naming `what` for anything else.
 */
export function parseAugment(value, what = 'augment') {
  if (value === undefined || value === null) return { ...NO_AUGMENT };
  if (typeof value === 'object') {
    const out = { ...NO_AUGMENT, ...value };
    for (const key of Object.keys(out)) {
      if (!(key in KEYS) || KEYS[key](String(out[key])) === null) throw new RangeError(`${what}: ${key} ${JSON.stringify(out[key])} is not valid (${HELP})`);
    }
    return out;
  }
  const text = String(value).trim();
  if (text === 'none' || text === '') return { ...NO_AUGMENT };
  if (text === 'airbench') return { ...AIRBENCH_AUGMENT };
  const out = { ...NO_AUGMENT };
  for (const part of text.split(',')) {
    const [key, v = ''] = part.trim().split('=').map((s) => s.trim());
    if (!(key in KEYS)) throw new RangeError(`${what}: unknown part '${key}' in '${text}' (${HELP})`);
    const parsed = KEYS[key](v);
    if (parsed === null) throw new RangeError(`${what}: ${key}=${v} is not valid in '${text}' (${HELP})`);
    out[key] = parsed;
  }
  return out;
}

/** The canonical text of an augmentation: `none` or the comma list of what differs from none. */
export function formatAugment(augment) {
  const a = parseAugment(augment);
  const parts = [];
  if (a.flip !== 'none') parts.push(`flip=${a.flip}`);
  if (a.translate) parts.push(`translate=${a.translate}`, `padding=${a.padding}`);
  if (a.cutout) parts.push(`cutout=${a.cutout}`);
  return parts.length ? parts.join(',') : 'none';
}

/** Whether an augmentation changes any pixel. */
export function augments(augment) {
  const a = parseAugment(augment);
  return a.flip !== 'none' || a.translate > 0 || a.cutout > 0;
}

/** A TTA mode, checked: 'none', 'flip' or 'flip-translate'. */
export function parseTta(value = 'none', what = 'tta') {
  if (!TTA_MODES.includes(value)) throw new RangeError(`${what}: '${value}' is not one of ${TTA_MODES.join(', ')}`);
  return value;
}

/** wt_augment's int32 words after the seed: flip, translate, padding, cutout. */
export function augmentWords(augment) {
  const a = parseAugment(augment);
  return [FLIP_MODES.indexOf(a.flip), a.translate, PADDING_MODES.indexOf(a.padding), a.cutout];
}

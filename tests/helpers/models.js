// Models for the tests, made from the presets' description files as the CLI and the page make them.
import { readFileSync } from 'node:fs';

import { CIFAR10_FORMAT } from '../../web/engine.js';
import { createModelFromDescription } from '../../web/model-spec.js';

/** The text of a preset (web/models/NAME.txt). */
export function presetText(name) {
  return readFileSync(new URL(`../../web/models/${name}.txt`, import.meta.url), 'utf8');
}

/** A model of `engine` from a preset's or a description's text, for CIFAR-10's shape unless `format` says. */
export function createPresetModel(engine, name, { maxBatch = 64, seed = 0, format = CIFAR10_FORMAT, text = presetText(name) } = {}) {
  return createModelFromDescription(engine, text, format, { maxBatch, seed });
}

/** The seed's SimpleCNN. */
export function createSimpleCnn(engine, options = {}) {
  return createPresetModel(engine, 'simplecnn', options);
}

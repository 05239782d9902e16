// Where the real CIFAR-10 binaries are, if anywhere: $WEBTRAIN_CIFAR_DIR, else the shared copy
// beside the checkout. Tests that need them skip with this message when they are absent.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { ALL_FILES } from '../../web/cifar.js';

export const realDataDir = process.env.WEBTRAIN_CIFAR_DIR
  ?? fileURLToPath(new URL('../../../shared/cifar-10-batches-bin', import.meta.url));

export const realDataAvailable = ALL_FILES.every((f) => existsSync(path.join(realDataDir, f)));

export const realDataSkipMessage = `real CIFAR-10 not found at ${realDataDir} (set WEBTRAIN_CIFAR_DIR to a folder with the six .bin files)`;

// The native unit tests under ASan/UBSan and a short libFuzzer run of the record reader, the
// weights loader, the checkpoint loader (versions 1 and 2, and the models they describe) and the
// model spec, through tests/fuzz/run.sh. The fuzzers share 3 x FUZZ_SECONDS (default 60) equally.
// Skipped when clang or its fuzzer runtime is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const seconds = Number(process.env.FUZZ_SECONDS ?? 60);

/** Why the sanitizer run cannot happen on this machine, or null when it can. */
function missingTools() {
  const compiler = process.env.FUZZ_CC ?? 'clang';
  if (spawnSync(compiler, ['--version']).status !== 0) {
    return `${compiler} not found: install clang and libclang-rt-14-dev (Debian) to run the fuzzers`;
  }
  if (spawnSync('cmake', ['--version']).status !== 0) return 'cmake not found';
  const dir = mkdtempSync(path.join(tmpdir(), 'webtrain-fuzz-probe-'));
  try {
    const probe = spawnSync(compiler, ['-fsanitize=fuzzer,address,undefined', '-x', 'c', '-', '-o', path.join(dir, 'probe')], {
      input: '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n',
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      return `${compiler} cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-14-dev): ${probe.stderr.trim().split('\n')[0]}`;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return null;
}

const missing = missingTools();
// 3 x `seconds` of fuzzing in all, plus the build and the unit tests.
const timeout = Math.max(15 * 60 * 1000, (3 * seconds + 600) * 1000);

test('native unit tests pass under ASan/UBSan and the fuzzers find nothing', { skip: missing ?? false, timeout }, async (t) => {
  const child = spawn('bash', ['tests/fuzz/run.sh'], {
    cwd: root,
    env: { ...process.env, FUZZ_SECONDS: String(seconds) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const status = await new Promise((resolve) => child.on('close', resolve));
  for (const line of output.split('\n')) {
    if (/^(fuzz_|test_|run\.sh:)/.test(line)) t.diagnostic(line);
  }
  assert.equal(status, 0, `tests/fuzz/run.sh failed:\n${output.slice(-8000)}`);
});

// Runs the headless CLI as a user would and captures its output.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/node/cli.js', import.meta.url));

export function runCli(args, options = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', ...options });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.trim().split('\n').filter(Boolean) };
}

export function jsonEvents(result) {
  return result.lines.map((line) => JSON.parse(line));
}

// `npm run build`: the Wasm modules (Emscripten) into web/, the native tests (host compiler),
// and the vendored chart library into web/vendor/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env };
// Debian's Emscripten runs its JavaScript tools with the system Node and needs its modules.
if (!env.NODE_PATH && existsSync('/usr/share/nodejs')) env.NODE_PATH = '/usr/share/nodejs';

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  if (result.error?.code === 'ENOENT') {
    console.error(`build: '${command}' not found. Install the toolchain: apt-get install -y emscripten cmake (or run .ci/setup)`);
    process.exit(1);
  }
  if (result.status !== 0) {
    console.error(`build: '${command} ${args.join(' ')}' failed with status ${result.status}`);
    process.exit(result.status ?? 1);
  }
}

const jobs = ['-j', '2'];
run('emcmake', ['cmake', '-S', '.', '-B', 'build/wasm', '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', 'build/wasm', ...jobs]);
run('cmake', ['-S', '.', '-B', 'build/native', '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', 'build/native', ...jobs]);
// The chart library, copied beside the page into web/vendor/.
run(process.execPath, [path.join(root, 'src/node/vendor.js')]);

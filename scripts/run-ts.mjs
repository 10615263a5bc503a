// Runs a TypeScript entry point from source (tsx), after making sure dependencies are installed.
// The `pgvip-source` condition makes workspace packages resolve to their src/ so no build is needed.
// SIGTERM/SIGINT/SIGHUP are passed on to the child, so daemons started through npm stop cleanly.
import { spawn } from 'node:child_process';
import { ensureNpmDeps, repoRoot } from './bootstrap.mjs';
import { ensureNodeRuntime } from './node-runtime.mjs';

await ensureNodeRuntime();
ensureNpmDeps();
const [entry, ...rest] = process.argv.slice(2);
const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', entry, ...rest], {
  cwd: repoRoot,
  stdio: 'inherit',
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

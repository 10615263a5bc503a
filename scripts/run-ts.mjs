// Runs a TypeScript entry point from source (tsx), after making sure dependencies are installed.
// The `pgvip-source` condition makes workspace packages resolve to their src/ so no build is needed.
import { spawnSync } from 'node:child_process';
import { ensureNpmDeps, repoRoot } from './bootstrap.mjs';

ensureNpmDeps();
const [entry, ...rest] = process.argv.slice(2);
const r = spawnSync(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', entry, ...rest], {
  cwd: repoRoot,
  stdio: 'inherit',
});
process.exit(r.status ?? (r.signal ? 1 : 0));

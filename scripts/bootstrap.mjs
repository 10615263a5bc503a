// Makes a fresh clone runnable: runs on Node >= the floor (fetching the pinned build when the system
// node is older, see node-runtime.mjs) and installs npm dependencies when they are missing or older
// than the lockfile. Plain JavaScript with no dependencies, because it runs before
// any are installed. System packages are handled by scripts/system-deps.mjs, on demand.
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseCommandLine } from './cli-args.mjs';
import { ensureNodeRuntime, pinnedNode } from './node-runtime.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Exits when this node is older than the floor: an entry point must await ensureNodeRuntime() first. */
export function checkNode() {
  const { floor } = pinnedNode();
  if (Number(process.versions.node.split('.')[0]) < floor) {
    console.error(`pgvip needs Node.js >= ${floor} (found ${process.versions.node}); run it through npm (npm test, npm run ...), which fetches the pinned build.`);
    process.exit(1);
  }
}

function depsAreCurrent() {
  const marker = path.join(repoRoot, 'node_modules', '.package-lock.json');
  const lock = path.join(repoRoot, 'package-lock.json');
  if (!existsSync(marker) || !existsSync(path.join(repoRoot, 'node_modules', 'tsx'))) return false;
  if (!existsSync(lock)) return true;
  return statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
}

export function ensureNpmDeps() {
  checkNode();
  if (depsAreCurrent()) return;
  const hasLock = existsSync(path.join(repoRoot, 'package-lock.json'));
  const args = hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  console.error(`bootstrap: installing npm dependencies (npm ${args[0]}) ...`);
  const r = spawnSync('npm', args, { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('bootstrap: npm install failed; check your network access to the npm registry and retry.');
    process.exit(r.status ?? 1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  parseCommandLine({ usage: 'usage: npm run bootstrap\n  runs on Node.js >= 24 (fetching the pinned build from the npm registry into .tools/ when the system node is older)\n  and installs the npm dependencies when they are missing or older than package-lock.json' });
  await ensureNodeRuntime();
  ensureNpmDeps();
}

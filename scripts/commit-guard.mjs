// Builds and installs pgvip_commit_guard, the PostgreSQL extension that refuses write commits after
// the agent's lease deadline (packages/agent/pg-commit-guard), into Debian's PostgreSQL 15: the
// library into pkglibdir, the control and SQL files into sharedir/extension. Needs root (those are
// system directories) and postgresql-server-dev-15 (PGXS and the server headers; system-deps.mjs
// installs it). Plain JavaScript with no dependencies, like the rest of the bootstrap.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const commitGuardSourceDir = path.join(repoRoot, 'packages/agent/pg-commit-guard');
export const pgConfig = '/usr/lib/postgresql/15/bin/pg_config';
export const pgServerHeader = '/usr/include/postgresql/15/server/postgres.h';
const pkgLibDir = '/usr/lib/postgresql/15/lib';
const extensionDir = '/usr/share/postgresql/15/extension';

/** The installed files; all must exist and be newer than every source file. */
export const commitGuardInstalledFiles = [
  path.join(pkgLibDir, 'pgvip_commit_guard.so'),
  path.join(extensionDir, 'pgvip_commit_guard.control'),
  path.join(extensionDir, 'pgvip_commit_guard--1.0.sql'),
];

function newestSourceMs() {
  return Math.max(...readdirSync(commitGuardSourceDir).filter((f) => /\.(c|sql|control)$|^Makefile$/.test(f)).map((f) => statSync(path.join(commitGuardSourceDir, f)).mtimeMs));
}

export function commitGuardUpToDate() {
  const sourceMs = newestSourceMs();
  return commitGuardInstalledFiles.every((f) => existsSync(f) && statSync(f).mtimeMs >= sourceMs);
}

/** Builds and installs the extension unless the installed copy is current. Exits the process on failure. */
export function ensureCommitGuard() {
  if (commitGuardUpToDate()) return;
  if (process.getuid?.() !== 0) {
    console.error(`bootstrap: pgvip_commit_guard is not installed (or older than its sources); as root: make -C ${commitGuardSourceDir} PG_CONFIG=${pgConfig} install`);
    return;
  }
  console.error('bootstrap: building and installing the pgvip_commit_guard PostgreSQL extension ...');
  // with_llvm=no: Debian's PGXS would also build JIT bitcode with clang, which the guard gains nothing from.
  const args = ['-C', commitGuardSourceDir, `PG_CONFIG=${pgConfig}`, 'with_llvm=no'];
  for (const target of [[], ['install']]) {
    const r = spawnSync('make', [...args, ...target], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) {
      console.error(`bootstrap: make ${target.join(' ')} of pgvip_commit_guard failed; needs gcc, make and postgresql-server-dev-15`);
      process.exit(1);
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureCommitGuard();
}

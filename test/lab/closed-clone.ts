// A copy of this checkout as a newcomer may have it: inside a directory other users cannot enter
// (mode 0700, as /root or `mktemp -d`), with its own files closed too (a clone made under umask 077).
// The lab tests run from it to show that the daemons, which run as postgres and nobody, never need
// to read the checkout. node_modules is hard-linked (fast, and its files keep their modes; the
// directory around it is what closes it), everything else except .git is copied.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

export interface ClosedClone {
  /** The 0700 directory around the clone. */
  readonly parent: string;
  /** The clone's root. */
  readonly root: string;
  remove(): void;
}

function sh(script: string, args: readonly string[]): void {
  const r = spawnSync('/bin/sh', ['-c', script, 'sh', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the closed clone failed: ${r.stderr.trim() || `exit ${r.status}`}`);
}

export function makeClosedClone(repoRoot: string): ClosedClone {
  // mkdtemp makes the directory 0700: closed to everyone but its owner.
  const parent = mkdtempSync('/tmp/pgvip-closed-');
  const root = path.join(parent, 'pgvip');
  mkdirSync(root);
  try {
    // GNU tar and cp keep relative symlinks as they are (node_modules/@pgvip/* -> ../../packages/*).
    sh('tar -C "$1" --exclude=./.git --exclude=./node_modules --exclude=./release -cf - . | tar -C "$2" -xf -', [repoRoot, root]);
    sh('cp -al "$1/node_modules" "$2/node_modules"', [repoRoot, root]);
    // umask 077: files 0600, directories 0700. Not node_modules: hard links share their modes with the checkout's.
    sh('find "$1" -path "$1/node_modules" -prune -o -exec chmod go-rwx {} +', [root]);
  } catch (err) {
    rmSync(parent, { recursive: true, force: true });
    throw err;
  }
  if ((statSync(parent).mode & 0o077) !== 0) throw new Error(`${parent} is not closed (mode ${(statSync(parent).mode & 0o777).toString(8)})`);
  return { parent, root, remove: () => rmSync(parent, { recursive: true, force: true }) };
}

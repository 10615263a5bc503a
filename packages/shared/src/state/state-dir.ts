// The daemons check at start that they can write their state directory, by writing, syncing and
// removing a file in it, rather than finding out at the first vote or history line. Both daemons
// (and `pgvip check-config`) refuse an unusable one with the same PGVIP_STATE_WRITE and the fix.
import { closeSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { PgvipError } from '../errors.js';

/** The witness's state file in its stateDir (terms, votes and promises of every cluster). */
export const witnessStateFileName = 'witness-state.json';

/** The agent's files in its stateDir: its durable state, and the count of its starts. */
export function agentStateFileNames(cluster: string): { readonly state: string; readonly boots: string } {
  return { state: `agent-${cluster}.json`, boots: `agent-${cluster}.boots` };
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`; // a uid without a passwd entry (containers)
  }
}

/**
 * Creates `dir` (mode 0700) when missing and proves this process can create, sync and remove a
 * file in it. Throws PGVIP_STATE_WRITE naming the directory, the system's reason and the fix.
 */
export function checkStateDir(dir: string): void {
  const probe = path.join(dir, `.pgvip-write-test-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(probe, 'w', 0o600);
    try {
      writeSync(fd, 'pgvip\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const user = whoAmI();
    const fix =
      code === 'EROFS'
        ? 'it is on a read-only file system: point stateDir at a writable, persistent directory'
        : code === 'ENOTDIR' || code === 'EEXIST'
          ? 'a file is in the way of the path: point stateDir at a directory'
          : `make it writable by ${user}, e.g. chown -R ${user} ${dir} && chmod 700 ${dir}`;
    throw new PgvipError('PGVIP_STATE_WRITE', `state directory ${dir} is not writable by ${user} (${code}); ${fix}`, { cause: e });
  }
}

/** Who a daemon runs as, for checks made on its behalf by another user (check-config run as root). */
export interface ServiceUser {
  readonly name: string;
  readonly uid: number;
  /** Its primary and supplementary groups. */
  readonly gids: readonly number[];
}

/** Whether `user` may do `want` (bits of 0o7: 4 read, 2 write, 1 search) on a file of this owner and mode. */
export function permits(user: ServiceUser, info: { uid: number; gid: number; mode: number }, want: number): boolean {
  if (user.uid === 0) return true;
  const bits =
    info.uid === user.uid ? (info.mode >> 6) & 7
    : user.gids.includes(info.gid) ? (info.mode >> 3) & 7
    : info.mode & 7;
  return (bits & want) === want;
}

/**
 * checkStateDir for a daemon that runs as `user`, judged from owners and modes (this process may
 * be root, for which every write succeeds): the directory, or the nearest existing parent it would
 * be created in, must be writable and searchable by the user, and every parent searchable.
 */
export function checkStateDirFor(dir: string, user: ServiceUser): void {
  const fix = `make it writable by ${user.name}, e.g. chown -R ${user.name} ${dir} && chmod 700 ${dir}`;
  const refuse = (why: string) => new PgvipError('PGVIP_STATE_WRITE', `state directory ${dir} is not writable by ${user.name} (${why}); ${fix}`);
  const absolute = path.resolve(dir);
  const parts = absolute.split(path.sep).filter((p) => p !== '');
  let existing = '/';
  let missing = false;
  for (const [i, part] of parts.entries()) {
    const next = path.join(existing, part);
    let info;
    try {
      info = statSync(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw refuse((e as NodeJS.ErrnoException).code ?? String(e));
      missing = true;
      break;
    }
    if (!info.isDirectory()) throw new PgvipError('PGVIP_STATE_WRITE', `state directory ${dir} cannot be used: ${next} is not a directory; point stateDir at a directory`);
    existing = next;
    if (i === parts.length - 1) break; // the directory itself: judged below, with its mode
    if (!permits(user, info, 1)) throw refuse(`${next} is not searchable by ${user.name}`);
  }
  const info = statSync(existing);
  if (!permits(user, info, 3)) throw refuse(missing ? `it does not exist, and ${user.name} cannot create it in ${existing}` : `mode 0${(info.mode & 0o777).toString(8)}, owner uid ${info.uid}`);
}

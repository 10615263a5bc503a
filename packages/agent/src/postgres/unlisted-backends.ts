// Server processes that pg_stat_activity does not show yet, found through /proc.
//
// PostgreSQL 15 lists a client backend only once it has authenticated. Before that — reading the
// startup packet, exchanging a password — the process already exists, and it checks pg_hba.conf
// against the rules the postmaster had when it forked it. So a client that connected just before the
// fence's reload finishes logging in under the old rules, after the sweep of pg_stat_activity, and
// could then SET default_transaction_read_only = off. Every such process was forked before the
// reload, so it exists by the time the agent sees the reload done: sweeping the postmaster's children
// that pg_stat_activity does not list (and that are not the logger, which never appears there) ends
// them all. A process caught this way that would have been admitted (a standby's walsender logging
// in, an autovacuum worker starting) simply retries.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/** The postmaster's pid from <dataDir>/postmaster.pid, or null when none runs. */
async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function parentOf(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Child pids of `pid`: the kernel's list when it keeps one (CONFIG_PROC_CHILDREN), else a scan of /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  try {
    return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    const children: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      if ((await parentOf(Number(entry))) === pid) children.push(Number(entry));
    }
    return children;
  }
}

async function isLogger(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('postgres: logger');
  } catch {
    return false;
  }
}

/**
 * Sends SIGTERM (what pg_terminate_backend sends) to every child of the data directory's postmaster
 * that is not in `listed` (pids pg_stat_activity showed after the reload) and not the logger; returns
 * the pids signalled. `ownBackend` is the pid of the agent's session: its parent must be the
 * postmaster that postmaster.pid names, so a stale pid file, or a session that reached another
 * server, never gets anything signalled.
 */
export async function terminateUnlistedBackends(
  dataDir: string,
  ownBackend: number,
  listed: ReadonlySet<number>,
): Promise<number[]> {
  const pid = await postmasterPid(dataDir);
  if (pid === null || (await parentOf(ownBackend)) !== pid) return [];
  const signalled: number[] = [];
  for (const child of await childrenOf(pid)) {
    if (listed.has(child) || (await isLogger(child))) continue;
    try {
      process.kill(child, 'SIGTERM');
      signalled.push(child);
    } catch {
      // exited meanwhile, or not ours to signal
    }
  }
  return signalled;
}

/** Whether a process with this pid still exists (a zombie counts until its parent reaps it). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

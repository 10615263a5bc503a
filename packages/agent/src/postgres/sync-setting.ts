// Changing synchronous_standby_names so that the new value is in force in every process that acts on
// it, and the catch-up that reads L only then (docs/design.md, "More than one standby", "When a sync
// setting is in force").
//
// Who acts on the setting (PostgreSQL 15, syncrep.c):
// - each walsender releases waiting commits (SyncRepReleaseWaiters, on every standby reply) by ITS
//   OWN copy of the parsed setting (method and k), counting the walsenders whose shared
//   sync_standby_priority is > 0, a value each walsender writes for itself when it reloads;
// - the checkpointer keeps the shared flag sync_standbys_defined (set on its reload): while it is
//   false, a commit does not wait at all;
// - a backend's own copy is not used for the wait.
// A reload reaches each process at its own pace, so "ALTER SYSTEM; SELECT pg_reload_conf()" is not
// enough. What this module waits for:
// 1. Two reload rounds of our own session: the postmaster handles one SIGHUP at a time and signals
//    every child inside that handling, so once our session has seen the second reload, every
//    walsender and the checkpointer have been signalled (their reload flag and latch are set).
// 2. Each walsender seen waiting at its loop's latch (wait_event WalSenderMain, WalSenderWaitForWAL
//    or WalSenderWriteData) after step 1: in each of those loops the reload check comes after the
//    wait and before the next reading of replies, so every release it makes from then on uses the
//    new value. And its sync_priority as the new value gives it (a stale priority would make the
//    other walsenders count it, or not, by the old list). Which walsenders are checked, by state
//    (WalSndState; PostgreSQL chooses synchronous standbys only among walsenders streaming or
//    stopping with a priority above 0 and a valid flush position, SyncRepGetCandidateStandbys, and
//    SyncRepReleaseWaiters returns at once in any other state):
//    - streaming, stopping: they release and are counted: both tests.
//    - catchup: it releases nothing and is not counted, but it runs the walsender loop (which
//      reloads on every round) and turns streaming at the end of a round, after that round's replies:
//      its next round reloads before it releases, yet the others may count it by its shared priority
//      in between, so the priority alone is checked; a standby catching up a long way does not hold
//      the change up.
//    - startup, backup: skipped. Such a walsender sits in the command loop (the lab's flap-loss run
//      left three of db-b's idle in ClientRead for the 2 h of TCP keepalive, their standby ends gone;
//      waiting on them failed every set). It neither releases nor is counted, and its priority is
//      stale (0 until its first START_REPLICATION). It can leave only by START_REPLICATION: that
//      command is read, then the pending reload is taken (PostgresMain), then StartReplication sets
//      catchup and the priority (SyncRepInitConfig), and the loop's first round reloads again before
//      it can turn streaming. So it enters the candidates with the new value's priority, like a
//      walsender that connects after the change.
// 3. Only when the value was '' before (or unknown, after a restart of the agent): two CHECKPOINTs.
//    The checkpointer reloads at the top of its loop, before it takes up a checkpoint request; the
//    second checkpoint starts in a loop round that began after the first ended, so after the
//    signal: sync_standbys_defined is then true. Its idle wait cannot stand in for this (case 2's
//    argument does not hold for a flag that a sleeping checkpointer has simply not set yet), and a
//    checkpointer inside a long checkpoint's sync phase reloads only at its end.
import { PgvipError, isPgvipError } from '@pgvip/shared';
import { formatLsn, parseLsn, parseLsnOrNull } from './lsn.js';
import { reloadAndWait, alterSystem } from './server-config.js';
import { currentSetting, isInRecovery } from './server-queries.js';
import type { SyncCatchUpReport, SyncSettingReport } from './port.js';
import { pollInSession, type SqlSession } from './sql-session.js';
import { parseSynchronousStandbyNames, standbyPriority } from './sync-names.js';

/** The waits of a walsender's loops; each is followed by a reload check before replies are read again. */
export const walsenderLoopWaits = ['WalSenderMain', 'WalSenderWaitForWAL', 'WalSenderWriteData'] as const;

interface WalsenderRow {
  pid: number;
  application_name: string;
  state: string;
  sync_priority: number;
  wait_event: string | null;
}

/**
 * Sets synchronous_standby_names to `wanted` and returns once it is in force for every walsender and,
 * where the value was '' before, for the checkpointer. `inForce`: the value this process last saw in
 * force (undefined: not known, e.g. after the agent's restart); it decides whether the checkpointer
 * must be waited for.
 */
export async function applySyncSetting(
  s: SqlSession,
  wanted: string,
  inForce: string | undefined,
): Promise<SyncSettingReport> {
  const startedAt = performance.now();
  const setting = parseSynchronousStandbyNames(wanted); // throws for a value PostgreSQL would refuse
  const before = await currentSetting(s, 'synchronous_standby_names');
  // In force already, by this process's own wait: every walsender started since forked with it.
  if (before === wanted && inForce === wanted) {
    return { unchanged: true, checkpointer: false, walsenders: [], durationMs: 0 };
  }
  // '' already, on a server in recovery: nothing there commits or releases a commit (a standby's
  // walsenders are never synchronous), so there is nothing to wait for. This is the promotion's
  // clear-sync step on a standby that never named one, inside the write gap. (A checkpointer that
  // still held an older non-empty flag could only make the first commits after the promotion wait
  // until it reloads: no commit is acknowledged on the strength of a standby that way.)
  if (before === '' && wanted === '' && (await isInRecovery(s))) {
    const durationMs = Math.round(performance.now() - startedAt);
    return { unchanged: true, checkpointer: false, walsenders: [], durationMs };
  }
  if (before !== wanted) await alterSystem(s, { synchronous_standby_names: wanted });
  else await reloadAndWait(s);
  // Step 1's second round: the postmaster has finished signalling every child for the first.
  await reloadAndWait(s);
  const checkpointer = setting !== null && (inForce === undefined || inForce === '');
  if (checkpointer) {
    await s.query('CHECKPOINT');
    await s.query('CHECKPOINT');
  }
  const seenWaiting = new Set<number>();
  let pending: string[] = [];
  const shown = wanted === '' ? "''" : wanted;
  try {
    const walsenders = await pollInSession(s, `every walsender to apply synchronous_standby_names = ${shown}`, async () => {
      const rows = await s.query<WalsenderRow>(
        `SELECT r.pid, r.application_name, r.state, r.sync_priority, a.wait_event
           FROM pg_stat_replication r LEFT JOIN pg_stat_activity a ON a.pid = r.pid
          WHERE r.state NOT IN ('startup', 'backup')`,
      );
      pending = [];
      for (const r of rows) {
        const atLoopWait = r.wait_event !== null && (walsenderLoopWaits as readonly string[]).includes(r.wait_event);
        if (atLoopWait) seenWaiting.add(r.pid);
        // Only a streaming (or stopping) walsender releases commits or is counted; one still starting
        // or catching up turns streaming at the end of a loop round, and the next round reloads first.
        const releases = r.state === 'streaming' || r.state === 'stopping';
        const wanted = standbyPriority(setting, r.application_name);
        if (r.sync_priority !== wanted) pending.push(`${r.application_name}(${r.pid}) shows sync_priority ${r.sync_priority}, not ${wanted}`);
        else if (releases && !seenWaiting.has(r.pid)) pending.push(`${r.application_name}(${r.pid}) not yet seen at its loop's wait`);
      }
      return pending.length > 0 ? undefined : rows.map((r) => `${r.application_name}(${r.pid})`);
    }, 5);
    return { unchanged: false, checkpointer, walsenders, durationMs: Math.round(performance.now() - startedAt) };
  } catch (err) {
    if (!isPgvipError(err, 'PGVIP_PG_TIMEOUT') || pending.length === 0) throw err;
    throw new PgvipError('PGVIP_PG_TIMEOUT', `synchronous_standby_names = ${shown} is set but not yet in force: ${pending.join('; ')}`, { cause: err });
  }
}

/**
 * Reads L = pg_current_wal_lsn() now (the caller has the setting in force) and waits until `count`
 * of `members` (application names) report flush_lsn ≥ L, at most `timeoutMs`; never throws for the
 * wait running out (caughtUp false, with every member's position).
 */
export async function catchUpTo(
  s: SqlSession,
  members: readonly string[],
  count: number,
  timeoutMs: number,
): Promise<SyncCatchUpReport> {
  const startedAt = performance.now();
  const [row] = await s.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  if (row === undefined) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'pg_current_wal_lsn() returned no row');
  const target = parseLsn(row.lsn);
  const read = async (): Promise<SyncCatchUpReport['positions']> => {
    const rows = await s.query<{ application_name: string; flush_lsn: string | null; state: string }>(
      'SELECT application_name, flush_lsn::text AS flush_lsn, state FROM pg_stat_replication',
    );
    return members.map((m) => {
      // Several walsenders may carry one name for a moment (a reconnect): the furthest counts.
      const mine = rows.filter((r) => r.application_name.toLowerCase() === m.toLowerCase());
      const best = mine.map((r) => ({ flush: parseLsnOrNull(r.flush_lsn), state: r.state }))
        .sort((a, b) => (a.flush ?? -1n) > (b.flush ?? -1n) ? -1 : 1)[0];
      return { applicationName: m, flushLsn: best?.flush ?? null, state: best?.state ?? null };
    });
  };
  const done = (p: SyncCatchUpReport['positions']): boolean => p.filter((x) => x.flushLsn !== null && x.flushLsn >= target).length >= count;
  let positions = await read();
  while (!done(positions) && performance.now() - startedAt < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    positions = await read();
  }
  const durationMs = Math.round(performance.now() - startedAt);
  return { caughtUp: done(positions), targetLsn: target, positions, durationMs };
}

/** "db-c at 0/3000060 (streaming), db-d not connected" for the members below L. */
export function describeLaggards(r: SyncCatchUpReport): string {
  return r.positions
    .filter((p) => p.flushLsn === null || p.flushLsn < r.targetLsn)
    .map((p) => (p.state === null ? `${p.applicationName} not connected` : `${p.applicationName} at ${p.flushLsn === null ? 'nothing flushed' : formatLsn(p.flushLsn)} (${p.state})`))
    .join(', ');
}

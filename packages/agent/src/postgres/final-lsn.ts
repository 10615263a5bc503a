// The last step of a standby before its promotion: stop its WAL receiver and wait until replay has
// reached everything it received, so the position reported is final.
import { parseLsn, parseLsnOrNull } from './lsn.js';
import { standbyTimelineSql } from './observe-query.js';
import type { FinalWalPosition } from './port.js';
import { alterSystem } from './server-config.js';
import { requireStandby } from './server-queries.js';
import { pollInSession, type SqlSession } from './sql-session.js';

interface ReplayRow {
  receive_lsn: string | null;
  replay_lsn: string;
  timeline: number;
  startup_wait: string | null;
  retry_ms: number;
}

export async function stopReceiverAndReadFinalLsn(s: SqlSession): Promise<FinalWalPosition> {
  await requireStandby(s, 'stopping the WAL receiver');
  // An empty primary_conninfo (reloadable since PostgreSQL 13) stops the receiver and keeps it
  // stopped; terminating the walreceiver process instead would only restart it after
  // wal_retrieve_retry_interval. Persisted, so a restart does not resume streaming either.
  await alterSystem(s, { primary_conninfo: '' });
  await pollInSession(s, 'the WAL receiver to stop', async () => {
    const [row] = await s.query<{ running: number }>(
      'SELECT count(*)::int AS running FROM pg_stat_wal_receiver WHERE pid IS NOT NULL',
    );
    return row?.running === 0 ? true : undefined;
  });
  // A paused replay would hold the final position back forever; promotion ends the pause anyway.
  await s.query("SELECT pg_wal_replay_resume() WHERE pg_get_wal_replay_pause_state() <> 'not paused'");
  // Replay normally reaches the received position. It cannot when the stream was cut inside a
  // record (a primary frozen or cut off while it streamed a large record, or just after its WAL
  // writer flushed a page boundary inside one): that incomplete record is never replayed, and
  // pg_promote discards it. It holds no acknowledged commit (a commit is acknowledged only once
  // its whole record is flushed here). The startup process says when it has nothing left to
  // replay: it sleeps out wal_retrieve_retry_interval between rounds over its WAL sources. Seen
  // sleeping twice more than one interval apart with replay unchanged, it has read everything
  // received at least once since the receiver stopped: the rest is an incomplete record.
  let idleSince: { atMs: number; replayLsn: bigint } | null = null;
  return pollInSession(s, 'replay to reach the last received WAL', async () => {
    const [row] = await s.query<ReplayRow>(
      `SELECT pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text AS replay_lsn,
              ${standbyTimelineSql} AS timeline,
              (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup') AS startup_wait,
              (SELECT setting::int FROM pg_settings WHERE name = 'wal_retrieve_retry_interval') AS retry_ms`,
    );
    if (!row) return undefined;
    const receiveLsn = parseLsnOrNull(row.receive_lsn);
    const replayLsn = parseLsn(row.replay_lsn);
    const position = { receiveLsn, replayLsn, timelineId: Number(row.timeline) };
    if (receiveLsn === null || replayLsn >= receiveLsn) return position;
    const nowMs = performance.now();
    if (idleSince?.replayLsn !== replayLsn) idleSince = null;
    if (row.startup_wait !== 'RecoveryRetrieveRetryInterval') return undefined;
    idleSince ??= { atMs: nowMs, replayLsn };
    return nowMs - idleSince.atMs > Number(row.retry_ms) + 50 ? position : undefined;
  });
}

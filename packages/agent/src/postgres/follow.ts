// A standby re-pointed at a new primary without a restart (docs/design.md, "More than one standby",
// "The other standbys follow the new primary"): primary_conninfo and primary_slot_name by ALTER
// SYSTEM and a reload. Since PostgreSQL 13 the startup process then ends the WAL receiver and starts
// one for the new value; recovery_target_timeline = 'latest' (a managed setting) takes it onto the
// new primary's timeline through its history file.
//
// PostgreSQL refuses the new timeline when this standby replayed WAL of its timeline past the point
// where the new primary's timeline forked from it (rescanLatestTimeLine: "new timeline N forked off
// current database system timeline M before current recovery point"), or when its timeline is not in
// the new primary's history at all; it then retries for ever. Those are the only two refusals, and
// both can be read exactly: the new primary's history file (pg_read_file) against this standby's
// timeline and pg_last_wal_replay_lsn(). The wait checks them on every round, so a standby that
// replays further on its old timeline meanwhile (WAL it had received) is caught too.
import type { Lsn } from './lsn.js';
import { formatLsn, parseLsn, parseLsnOrNull } from './lsn.js';
import { standbyTimelineSql } from './observe-query.js';
import type { FollowReport, PgEndpoint } from './port.js';
import { conninfoFor } from './rejoin.js';
import { alterSystem } from './server-config.js';
import { currentSetting, requireStandby } from './server-queries.js';
import type { SqlSession } from './sql-session.js';

/** One line of a timeline history file: timeline `tli` ended (the next one forked off it) at `end`. */
export interface TimelineHistoryEntry {
  readonly tli: number;
  readonly end: Lsn;
}

/** Parses a NNNNNNNN.history file: `tli<TAB>X/Y<TAB>reason` lines; comments and blank lines skipped. */
export function parseTimelineHistory(text: string): TimelineHistoryEntry[] {
  const out: TimelineHistoryEntry[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [tli, end] = trimmed.split(/\s+/);
    if (tli === undefined || end === undefined || !/^\d+$/.test(tli)) continue;
    out.push({ tli: Number(tli), end: parseLsn(end) });
  }
  return out;
}

/** What the new primary says about its timeline. */
export interface PrimaryTimeline {
  readonly tli: number;
  /** Its history (empty on timeline 1). */
  readonly history: readonly TimelineHistoryEntry[];
}

/**
 * Why PostgreSQL will refuse to follow `primary` from this standby's position, or null when it can:
 * the same timeline; or this standby's timeline is in the primary's history and replay has not passed
 * its end (the fork point).
 */
export function divergence(
  primary: PrimaryTimeline,
  standby: { tli: number; replayLsn: Lsn },
  primaryName: string,
): string | null {
  if (standby.tli === primary.tli) return null;
  const entry = primary.history.find((h) => h.tli === standby.tli);
  if (entry === undefined) {
    return `timeline ${standby.tli} of this standby is not in the history of ${primaryName}'s timeline ${primary.tli}`;
  }
  if (entry.end < standby.replayLsn) {
    return `this standby replayed timeline ${standby.tli} to ${formatLsn(standby.replayLsn)}, past ${formatLsn(entry.end)} where ${primaryName}'s timeline ${primary.tli} forked from it`;
  }
  return null;
}

/** The new primary's timeline and history, read on a session to it. */
export async function readPrimaryTimeline(s: SqlSession): Promise<PrimaryTimeline> {
  const [row] = await s.query<{ tli: number }>(
    `SELECT CASE WHEN pg_is_in_recovery() THEN ${standbyTimelineSql}
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli`,
  );
  const tli = Number(row?.tli);
  if (tli <= 1) return { tli, history: [] };
  const name = `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
  const [file] = await s.query<{ text: string }>('SELECT pg_read_file($1) AS text', [name]);
  return { tli, history: parseTimelineHistory(file?.text ?? '') };
}

interface ReceiverRow {
  status: string | null;
  received_tli: number | null;
  sender_host: string | null;
  sender_port: number | null;
  tli: number;
  replay_lsn: string | null;
}

/**
 * Re-points this standby (session `s`) at `primary` and waits up to `timeoutMs` for its WAL receiver
 * to stream from it. `primaryTimeline` is read beforehand on the primary. Never throws for the wait.
 */
export async function repointAndWait(
  s: SqlSession,
  target: { endpoint: PgEndpoint; name: string; timeline: PrimaryTimeline },
  self: { applicationName: string; slotName: string | null },
  timeoutMs: number,
): Promise<FollowReport> {
  const startedAt = performance.now();
  await requireStandby(s, 'following a new primary');
  const conninfo = conninfoFor(target.endpoint, {
    applicationName: self.applicationName,
    includePassword: true,
    streaming: true,
  });
  const changes: Record<string, string | null> = {};
  if ((await currentSetting(s, 'primary_conninfo')) !== conninfo) changes.primary_conninfo = conninfo;
  if ((await currentSetting(s, 'primary_slot_name')) !== (self.slotName ?? '')) changes.primary_slot_name = self.slotName;
  const reconfigured = Object.keys(changes).length > 0;
  if (reconfigured) await alterSystem(s, changes);
  let last: ReceiverRow | undefined;
  for (;;) {
    [last] = await s.query<ReceiverRow>(
      `SELECT w.status, w.received_tli, w.sender_host, w.sender_port, ${standbyTimelineSql} AS tli,
              pg_last_wal_replay_lsn()::text AS replay_lsn
         FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON w.pid IS NOT NULL`,
    );
    const durationMs = Math.round(performance.now() - startedAt);
    // The refusal first: the receiver streams the old timeline from the new primary (up to the fork
    // point) before the startup process asks for the new one and refuses it, so a 'streaming' seen
    // then says nothing.
    const replayLsn = parseLsnOrNull(last?.replay_lsn);
    const why = replayLsn === null
      ? null
      : divergence(target.timeline, { tli: Number(last?.tli), replayLsn }, target.name);
    if (why !== null) return { outcome: 'diverged', detail: why, durationMs };
    // Streaming on the new primary's timeline: past the fork point, so PostgreSQL took the timeline.
    if (last?.status === 'streaming' && last.sender_host === target.endpoint.host
      && Number(last.sender_port) === target.endpoint.port && Number(last.received_tli) >= target.timeline.tli) {
      return { outcome: 'streaming', reconfigured, durationMs };
    }
    if (durationMs >= timeoutMs) {
      const receiver = last?.status === null || last?.status === undefined
        ? 'no WAL receiver runs'
        : `the WAL receiver is ${last.status} on timeline ${last.received_tli ?? '?'} from ${last.sender_host ?? '?'}:${last.sender_port ?? '?'}`
          + ` (${target.name} is on timeline ${target.timeline.tli})`;
      return { outcome: 'timeout', detail: `not streaming from ${target.name} after ${durationMs} ms: ${receiver}`, durationMs };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

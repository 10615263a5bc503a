// The standby's replication connection must notice a dead link within seconds and connect afresh the
// moment the link is back. Left to TCP, it does neither: while the link is dark, both ends retransmit
// with exponential backoff (0.2 s, 0.4 s, … doubling), so after a 15 s cut the next attempt may come
// 10 s after the heal, and after a minute's cut nearly a minute after it; a new connection attempt
// without a timeout waits on SYN retransmissions the same way (1 s, 2 s, 4 s, …); and on the primary
// the old walsender keeps the standby's replication slot "active" until wal_sender_timeout (60 s by
// default), so the standby's new connection is refused its slot meanwhile. In that window the
// standby does not stream, is not synchronous, and the primary cannot fail over to it.
//
// So every primary_conninfo the agent writes carries these settings (and the agent adds them at start
// to one that lacks them, e.g. the one `pg_basebackup -R` wrote):
//
// - tcp_user_timeout (standby side): data unacknowledged for standbyReplySilenceMs (3 s) drops the
//   connection. The primary already treats a standby silent that long as lost (pg-snapshot.ts), so
//   dropping it costs nothing, and the startup process retries after wal_retrieve_retry_interval
//   (200 ms, a managed setting) with a new connection.
// - connect_timeout=2 (libpq's minimum): an attempt into a dark link gives up after 2 s and the next
//   starts 200 ms later, so a SYN goes out at least every ~1.2 s (the kernel retransmits it after 1 s)
//   and the first one after the heal connects.
// - options -c wal_sender_timeout / -c tcp_user_timeout (the primary's side of this one connection;
//   both are user-settable GUCs, so they apply to the walsender it starts and nothing else): the
//   walsender ends after 5 s without a reply (the standby replies every wal_receiver_status_interval,
//   1 s, a managed setting) or 3 s of unacknowledged WAL, releasing the slot before the link is back.
// - keepalives (standby side: a probe after 1 s idle, every 1 s, 3 unanswered end it): a connection
//   with nothing unacknowledged is one tcp_user_timeout never ends. The lab saw a WAL receiver wait
//   117 min in START_REPLICATION (no timeout of PostgreSQL's own runs there) on a connection whose
//   walsender had gone and whose RST was lost: the kernel's default keepalive comes after 2 h. A
//   probe to a vanished peer gets an RST, or goes unanswered and tcp_user_timeout ends it within
//   3 s; the startup process then connects afresh.

import { alterSystem } from './server-config.js';
import type { SqlSession } from './sql-session.js';

/** libpq's TCP keepalives, the part of the transport settings a conninfo of older agents lacks. */
const keepalives: ReadonlyArray<readonly [string, string]> = [
  ['keepalives', '1'],
  ['keepalives_idle', '1'],
  ['keepalives_interval', '1'],
  ['keepalives_count', '3'],
];

/** The transport settings, as libpq keyword/value pairs, in the order they are appended. */
export const replicationTransport: ReadonlyArray<readonly [string, string]> = [
  ['connect_timeout', '2'],
  ['tcp_user_timeout', '3000'],
  ...keepalives,
  ['options', '-c wal_sender_timeout=5000 -c tcp_user_timeout=3000'],
];

/** Quotes a conninfo value as libpq reads it (single quotes, backslash escapes), when it needs it. */
export function quoteConninfoValue(value: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The transport settings as a conninfo fragment. */
export function replicationTransportConninfo(): string {
  return replicationTransport.map(([k, v]) => `${k}=${quoteConninfoValue(v)}`).join(' ');
}

/**
 * `conninfo` with the transport settings, or null when it has them already (its tcp_user_timeout
 * keyword: an operator who set their own keeps them) or is empty (no WAL receiver wanted). Appended:
 * libpq takes the last value of a repeated keyword, and the rest of the string stays as written.
 * One with tcp_user_timeout but no keepalives keyword (written by an older agent) gets the keepalives.
 */
export function withReplicationTransport(conninfo: string): string | null {
  const trimmed = conninfo.trim();
  if (trimmed === '') return null;
  if (!hasKeyword(trimmed, 'tcp_user_timeout')) return `${trimmed} ${replicationTransportConninfo()}`;
  if (!hasKeyword(trimmed, 'keepalives')) return `${trimmed} ${keepalives.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return null;
}

function hasKeyword(conninfo: string, keyword: string): boolean {
  return new RegExp(`(^|\\s)${keyword}\\s*=`).test(conninfo);
}

/**
 * On a standby whose primary_conninfo lacks the transport settings, adds them (ALTER SYSTEM and a
 * reload; the WAL receiver reconnects with them at once). Returns the settings changed.
 */
export async function ensureReplicationTransport(session: SqlSession): Promise<string[]> {
  const [row] = await session.query<{ standby: boolean; conninfo: string }>(
    "SELECT pg_is_in_recovery() AS standby, current_setting('primary_conninfo') AS conninfo",
  );
  if (row?.standby !== true) return [];
  const next = withReplicationTransport(row.conninfo);
  if (next === null) return [];
  await alterSystem(session, { primary_conninfo: next });
  return ['primary_conninfo'];
}

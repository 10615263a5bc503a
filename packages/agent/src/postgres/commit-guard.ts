// The agent's side of pgvip_commit_guard (packages/agent/pg-commit-guard): the PostgreSQL extension
// that refuses write commits once the lease deadline the agent last set has passed, so a primary
// that was frozen past its lease cannot commit a single write when it runs again, before its agent
// has fenced it. The agent arms it with its lease end at every renewal (runner.ts).
import { PgvipError, isPgvipError } from '@pgvip/shared';
import type { CommitGuardStatus } from './port.js';
import type { SqlSession } from './sql-session.js';

export const commitGuardExtension = 'pgvip_commit_guard';

interface StatusRow {
  readonly loaded: boolean;
  readonly created: boolean;
  readonly enabled: boolean | null;
  readonly active: boolean | null;
  readonly remaining_ms: number | null;
}

// The library defines pgvip_commit_guard.enabled when it loads: pg_settings shows it only then (a
// placeholder set by someone without the library does not appear there).
const settingSql = "(SELECT setting FROM pg_settings WHERE name = 'pgvip_commit_guard.enabled')";
const createdSql = "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgvip_commit_guard')";

export async function readCommitGuardStatus(s: SqlSession): Promise<CommitGuardStatus> {
  const [basic] = await s.query<StatusRow>(`SELECT ${settingSql} IS NOT NULL AS loaded, ${createdSql} AS created, ${settingSql} = 'on' AS enabled, NULL AS active, NULL AS remaining_ms`);
  if (basic === undefined) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'the commit guard status query returned no row');
  if (!basic.loaded || !basic.created) {
    return {
      loaded: basic.loaded,
      created: basic.created,
      enabled: basic.enabled === true,
      active: false,
      remainingMs: null,
    };
  }
  const [row] = await s.query<StatusRow>('SELECT loaded, true AS created, enabled, active, remaining_ms FROM pgvip_guard_status()');
  if (row === undefined) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'pgvip_guard_status() returned no row');
  return {
    loaded: row.loaded,
    created: true,
    enabled: row.enabled === true,
    active: row.active === true,
    remainingMs: row.remaining_ms,
  };
}

/** Sets the deadline (microseconds on CLOCK_MONOTONIC) on a server known to have the extension: one round trip. */
export async function setCommitGuardDeadline(s: SqlSession, deadlineUs: bigint): Promise<void> {
  await s.query('SELECT pgvip_guard_set_deadline_at($1::bigint)', [deadlineUs.toString()]);
}

/**
 * Sets the deadline (microseconds on CLOCK_MONOTONIC) after checking that the library is loaded;
 * creates the extension first when its functions are missing and this server can write. False when
 * not loaded.
 */
export async function armCommitGuardIn(s: SqlSession, deadlineUs: bigint): Promise<boolean> {
  const status = await readCommitGuardStatus(s);
  if (!status.loaded) return false;
  if (!status.created) {
    const [row] = await s.query<{ writable: boolean }>("SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' AS writable");
    if (row?.writable !== true) {
      // A standby gets the functions by replication once its primary has created them.
      throw new PgvipError('PGVIP_PG_QUERY_FAILED', `${commitGuardExtension} is loaded but CREATE EXTENSION ${commitGuardExtension} has not run on the primary yet`);
    }
    // synchronous_commit local: must not hang behind a missing synchronous standby (as ensureSchema).
    await s.query(`SET synchronous_commit = local; CREATE EXTENSION IF NOT EXISTS ${commitGuardExtension}`);
  }
  try {
    await setCommitGuardDeadline(s, deadlineUs);
  } catch (err) {
    throw isPgvipError(err) ? err : new PgvipError('PGVIP_PG_QUERY_FAILED', `cannot arm ${commitGuardExtension}: ${String(err)}`, { cause: err });
  }
  return true;
}

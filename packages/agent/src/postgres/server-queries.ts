// Small questions to a running server that several PostgresPort operations ask.
import { PgvipError, isPgvipError } from '@pgvip/shared';
import type { SqlSession } from './sql-session.js';

export async function isInRecovery(s: SqlSession): Promise<boolean> {
  const [row] = await s.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
  return row?.in_recovery === true;
}

export async function requireStandby(s: SqlSession, what: string): Promise<void> {
  if (!(await isInRecovery(s))) {
    throw new PgvipError('PGVIP_PG_NOT_STANDBY', `${what} needs a standby; this server is a primary`);
  }
}

export async function currentSetting(s: SqlSession, name: string): Promise<string> {
  const [row] = await s.query<{ value: string }>('SELECT current_setting($1) AS value', [name]);
  return row?.value ?? '';
}

/** The timeline a primary writes, from its current WAL file name (exact right after promotion). */
export async function primaryTimeline(s: SqlSession): Promise<number> {
  const [row] = await s.query<{ timeline: number }>(
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline",
  );
  return Number(row?.timeline);
}

/** An error as one line for a detail: the code and detail of ours, the message of others. */
export function describeError(err: unknown): string {
  if (isPgvipError(err)) return `${err.code}: ${err.detail}`;
  return err instanceof Error ? err.message : String(err);
}

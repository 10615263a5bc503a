// Physical replication slots: the SQL behind PostgresPort's slot methods.
//
// A slot makes the primary keep the WAL its standby has not received yet, however long that standby
// is away; max_slot_wal_keep_size bounds what it may keep, after which PostgreSQL invalidates the
// slot (wal_status 'lost') and the standby must be re-seeded. See docs/design.md, "Replication slots".
import { PgvipError } from '@pgvip/shared';
import { parseLsnOrNull } from './lsn.js';
import { isValidSlotName, type ReplicationSlotView } from './port.js';
import type { SqlSession } from './sql-session.js';

function checkSlotName(name: string): void {
  if (!isValidSlotName(name)) throw new PgvipError('PGVIP_CONFIG_INVALID', `replication slot name ${JSON.stringify(name)} must match [a-z0-9_]{1,63}`);
}

interface SlotRow {
  name: string;
  active: boolean;
  restart_lsn: string | null;
  wal_status: string | null;
  kept_bytes: string | null;
  safe_wal_size: string | null;
}

/** Physical slots with what each keeps, measured from the current (primary) or replayed (standby) position. */
export async function listSlots(s: SqlSession): Promise<ReplicationSlotView[]> {
  const rows = await s.query<SlotRow>(
    `SELECT slot_name::text AS name, active, restart_lsn::text AS restart_lsn, wal_status, safe_wal_size::text AS safe_wal_size,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::bigint::text AS kept_bytes
       FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    name: r.name,
    active: r.active,
    restartLsn: parseLsnOrNull(r.restart_lsn),
    walStatus: r.wal_status,
    keptBytes: r.kept_bytes === null ? null : BigInt(r.kept_bytes),
    safeWalBytes: r.safe_wal_size === null ? null : BigInt(r.safe_wal_size),
  }));
}

/** Creates the slot reserving WAL now, unless it exists; returns whether it created it. */
export async function createSlotIfMissing(s: SqlSession, name: string): Promise<boolean> {
  checkSlotName(name);
  try {
    // Two agents (a promotion and a rejoin) may race here; the loser's duplicate_object is success.
    const [row] = await s.query<{ created: boolean }>(
      `SELECT count(*) > 0 AS created FROM (SELECT pg_create_physical_replication_slot($1, true)
          WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)) AS c`,
      [name],
    );
    return row?.created === true;
  } catch (err) {
    if (/already exists/.test(String((err as Error).message))) return false;
    throw err;
  }
}

/** Drops the slot when it exists and is not in use; returns whether it dropped it. */
export async function dropSlotIfIdle(s: SqlSession, name: string): Promise<boolean> {
  checkSlotName(name);
  const [row] = await s.query<{ dropped: boolean }>(
    `SELECT count(*) > 0 AS dropped FROM (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
        WHERE slot_name = $1 AND NOT active) AS d`,
    [name],
  );
  return row?.dropped === true;
}

/** The slot's wal_status, or undefined when it does not exist. */
export async function slotWalStatus(s: SqlSession, name: string): Promise<string | null | undefined> {
  const [row] = await s.query<{ wal_status: string | null }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [name]);
  return row === undefined ? undefined : row.wal_status;
}

/**
 * For a standby about to be (re)built from the primary: an invalidated slot is replaced by a fresh
 * one (it can never feed anyone again), a missing one created. Returns whether a slot was created.
 */
export async function renewSlotForRebuild(s: SqlSession, name: string): Promise<boolean> {
  if ((await slotWalStatus(s, name)) === 'lost') {
    // A WAL sender may still hold the lost slot for a moment (the standby's last attempt): drop it when idle.
    await s.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [name]);
    for (let i = 0; i < 50 && !(await dropSlotIfIdle(s, name)); i++) await new Promise((r) => setTimeout(r, 100));
  }
  return createSlotIfMissing(s, name);
}

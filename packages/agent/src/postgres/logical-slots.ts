// Logical slots on PostgreSQL 15/16: the SQL and file work behind copying the primary's logical slots
// to the standby (replication.logicalSlots, docs/design.md "Replication slots"). The decisions are
// in ../logical-slot-copy.ts; this module only reads and changes the two servers.
//
// A copy is the primary's slot state file (pg_replslot/<name>/state, read with pg_read_binary_file,
// which the agent's superuser role may call), checked (slot-state-file.ts) and written into the
// stopped standby's pg_replslot as PostgreSQL itself writes it: a <name>.tmp directory, fsynced,
// renamed (PostgreSQL removes *.tmp directories at start, so a crash midway leaves no half slot).
// The standby loads it at its next start and from then on moves it forward with
// pg_replication_slot_advance (which works during recovery from 15 on: it decodes in fast-forward
// mode up to the replayed position).
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PgvipError } from '@pgvip/shared';
import { formatLsn, parseLsnOrNull, type Lsn } from './lsn.js';
import type { OsUser } from './os-command.js';
import { parseSlotStateFile, type SlotStateFile } from './slot-state-file.js';
import type { SqlSession } from './sql-session.js';

export interface LogicalSlotView {
  readonly name: string;
  readonly plugin: string;
  readonly database: string;
  readonly temporary: boolean;
  readonly active: boolean;
  readonly restartLsn: Lsn | null;
  readonly confirmedFlushLsn: Lsn | null;
  /** pg_replication_slots.catalog_xmin as text (an xid); null when unset. */
  readonly catalogXmin: string | null;
}

interface LogicalRow {
  name: string;
  plugin: string;
  database: string;
  temporary: boolean;
  active: boolean;
  restart_lsn: string | null;
  confirmed_flush_lsn: string | null;
  catalog_xmin: string | null;
}

/** The server's logical slots, by name. */
export async function listLogicalSlots(s: SqlSession): Promise<LogicalSlotView[]> {
  const rows = await s.query<LogicalRow>(
    `SELECT slot_name::text AS name, plugin::text AS plugin, database::text AS database, temporary, active,
            restart_lsn::text AS restart_lsn, confirmed_flush_lsn::text AS confirmed_flush_lsn, catalog_xmin::text AS catalog_xmin
       FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    name: r.name,
    plugin: r.plugin,
    database: r.database,
    temporary: r.temporary,
    active: r.active,
    restartLsn: parseLsnOrNull(r.restart_lsn),
    confirmedFlushLsn: parseLsnOrNull(r.confirmed_flush_lsn),
    catalogXmin: r.catalog_xmin,
  }));
}

export interface CopiedStateFile {
  readonly file: SlotStateFile;
  readonly bytes: Buffer;
}

/**
 * On the primary: the state files of `names`, written out first (a CHECKPOINT saves every slot
 * whose position moved since the last one, so the copy starts as close to the slot as it can).
 */
export async function readSlotStateFiles(
  s: SqlSession,
  names: readonly string[],
): Promise<Map<string, CopiedStateFile>> {
  await s.query('CHECKPOINT');
  const out = new Map<string, CopiedStateFile>();
  for (const name of names) {
    const [row] = await s.query<{ b64: string }>(
      `SELECT encode(pg_read_binary_file('pg_replslot/' || slot_name || '/state'), 'base64') AS b64
         FROM pg_replication_slots WHERE slot_name = $1 AND slot_type = 'logical' AND NOT temporary`,
      [name],
    );
    if (row === undefined) continue; // dropped meanwhile
    const bytes = Buffer.from(row.b64.replace(/\s+/g, ''), 'base64');
    out.set(name, { file: parseSlotStateFile(bytes, name), bytes });
  }
  return out;
}

/** What a standby must have before it may load a copied logical slot (else it refuses to start). */
export interface CopyPreconditions {
  readonly walLevel: string;
  readonly hotStandbyFeedback: boolean;
  /** max_replication_slots minus the slots that exist. */
  readonly freeSlots: number;
  readonly walSegmentBytes: number;
}

export async function copyPreconditions(s: SqlSession): Promise<CopyPreconditions> {
  const [row] = await s.query<{ wal_level: string; feedback: string; free: number; seg: string }>(
    `SELECT current_setting('wal_level') AS wal_level, current_setting('hot_standby_feedback') AS feedback,
            current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free,
            pg_size_bytes(current_setting('wal_segment_size'))::text AS seg`,
  );
  if (row === undefined) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'the settings query returned no row');
  return { walLevel: row.wal_level, hotStandbyFeedback: row.feedback === 'on', freeSlots: Number(row.free), walSegmentBytes: Number(row.seg) };
}

/**
 * The start of the oldest WAL segment in `walDir` (any timeline), read from the directory itself so
 * that it is exact for a stopped server; null when there is none.
 */
export async function oldestWalLsn(walDir: string, segmentBytes: number): Promise<Lsn | null> {
  let oldest: Lsn | null = null;
  for (const name of await readdir(walDir)) {
    if (!/^[0-9A-F]{24}$/.test(name)) continue;
    const lsn = BigInt(`0x${name.slice(8, 16)}`) * 0x1_0000_0000n + BigInt(`0x${name.slice(16, 24)}`) * BigInt(segmentBytes);
    if (oldest === null || lsn < oldest) oldest = lsn;
  }
  return oldest;
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a checked state file as slot `name` into the (stopped) server's pg_replslot. */
export async function installSlotFile(dataDir: string, name: string, bytes: Buffer, owner: Pick<OsUser, 'uid' | 'gid'>): Promise<void> {
  const slotsDir = path.join(dataDir, 'pg_replslot');
  const temp = path.join(slotsDir, `${name}.tmp`);
  const final = path.join(slotsDir, name);
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { mode: 0o700 });
  // pg_replslot belongs to the PostgreSQL user, who could swap the new directory for a symbolic link
  // at any moment. For an agent run as root, writing and chowning by path would then create and hand
  // over files anywhere. So the directory is held open (never through a link) and everything after
  // goes through that descriptor: the file is created inside it via /proc/self/fd, and both are
  // chowned and synced by descriptor. A swap can then only misplace the copy inside pg_replslot.
  const dir = await open(temp, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const handle = await open(`/proc/self/fd/${dir.fd}/state`, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      if (process.getuid?.() === 0) await handle.chown(owner.uid, owner.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (process.getuid?.() === 0) await dir.chown(owner.uid, owner.gid);
    await dir.sync();
  } finally {
    await dir.close();
  }
  await rm(final, { recursive: true, force: true });
  await rename(temp, final);
  await fsyncPath(slotsDir);
}

/** Removes slot `name`'s directory from a stopped server (undoing installSlotFile). */
export async function removeSlotDir(dataDir: string, name: string): Promise<void> {
  await rm(path.join(dataDir, 'pg_replslot', name), { recursive: true, force: true });
  await fsyncPath(path.join(dataDir, 'pg_replslot'));
}

/**
 * Moves a slot on this (standby) server forward to `to` (PostgreSQL stops at what was replayed) and
 * returns its confirmed position after.
 */
export async function advanceSlot(s: SqlSession, name: string, to: Lsn): Promise<Lsn | null> {
  const sql = 'SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)';
  const [row] = await s.query<{ lsn: string | null }>(sql, [name, formatLsn(to)]);
  return parseLsnOrNull(row?.lsn);
}

/** On the primary: the catalog_xmin of slot `name` (a standby's physical slot: what its feedback holds), as text. */
export async function slotCatalogXmin(s: SqlSession, name: string): Promise<string | null> {
  const [row] = await s.query<{ x: string | null }>('SELECT catalog_xmin::text AS x FROM pg_replication_slots WHERE slot_name = $1', [name]);
  return row?.x ?? null;
}

/** Whether transaction id `a` is `b` or older, in PostgreSQL's circular 32-bit xid space. */
export function xidNotAfter(a: string, b: string): boolean {
  return ((Number(b) - Number(a)) >>> 0) < 0x8000_0000;
}

/** Drops a logical slot on this server when nothing decodes from it; returns whether it did. */
export async function dropLogicalSlotIfIdle(s: SqlSession, name: string): Promise<boolean> {
  const [row] = await s.query<{ dropped: boolean }>(
    `SELECT count(*) > 0 AS dropped FROM (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
        WHERE slot_name = $1 AND slot_type = 'logical' AND NOT active) AS d`,
    [name],
  );
  return row?.dropped === true;
}

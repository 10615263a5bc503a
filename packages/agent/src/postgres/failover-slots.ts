// Logical (CDC) replication slots across a failover, by PostgreSQL version.
//
// A logical slot lives on the primary only. PostgreSQL 17 can keep a copy on the standby: a slot
// created with failover = true is synchronised to a standby that has sync_replication_slots = on
// (with hot_standby_feedback, and a dbname in primary_conninfo, which pgvip's has), and
// synchronized_standby_slots on the primary holds logical decoding back until the standby's
// physical slot has confirmed the WAL, so a consumer never gets ahead of what the standby would
// have after a failover. Before 17 there is no such thing: logical slots are lost at a failover and
// their consumers must re-synchronise (docs/design.md, "Replication slots").
//
// Only this version check and the settings are here (pure, unit tested); PostgreSQL 15, which the
// tests run, takes the "before 17" path. Users create their logical slots with failover = true.

/** The first server_version_num with failover slots. */
export const failoverSlotsSinceVersionNum = 170000;

/**
 * The settings that carry logical slots over a failover on this server version, the same on both
 * nodes (a setting that only acts on a standby, or only on a primary, is inert in the other role):
 * `peerSlot` is the physical slot this node keeps for its standby while primary. Empty before 17.
 */
export function failoverSlotSettings(serverVersionNum: number, peerSlot: string): Record<string, string> {
  if (serverVersionNum < failoverSlotsSinceVersionNum) return {};
  return { sync_replication_slots: 'on', hot_standby_feedback: 'on', synchronized_standby_slots: peerSlot };
}

export interface LogicalSlotRow {
  readonly name: string;
  /** pg_replication_slots.failover (PostgreSQL 17+); null before 17. */
  readonly failover: boolean | null;
}

/** The logical slots a failover would lose on this version: all before 17, those without failover = true after. */
export function logicalSlotsLostAtFailover(serverVersionNum: number, slots: readonly LogicalSlotRow[]): string[] {
  const kept = serverVersionNum >= failoverSlotsSinceVersionNum;
  return slots.filter((s) => !kept || s.failover !== true).map((s) => s.name);
}

/** The query behind logicalSlotsLostAtFailover: pg_replication_slots has the failover column from 17 on. */
export function logicalSlotsSql(serverVersionNum: number): string {
  const failover = serverVersionNum >= failoverSlotsSinceVersionNum ? 'failover' : 'NULL::boolean';
  return `SELECT slot_name::text AS name, ${failover} AS failover FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`;
}

// Logical (CDC) replication slots across a failover, by PostgreSQL version.
//
// A logical slot lives on the primary only. PostgreSQL 17 can keep a copy on the standby: a slot
// created with failover = true is synchronised to a standby that has sync_replication_slots = on
// (with hot_standby_feedback, and a dbname in primary_conninfo, which pgvip's has), and
// synchronized_standby_slots on the primary holds logical decoding back until the standby's
// physical slot has confirmed the WAL, so a consumer never gets ahead of what the standby would
// have after a failover. Before 17 PostgreSQL has no such thing: logical slots are lost at a failover
// unless the agents copy them (replication.logicalSlots, ../logical-slot-copy.ts), and their
// consumers must otherwise re-synchronise (docs/design.md, "Replication slots").
//
// Only this version check and the settings are here (pure, unit tested); PostgreSQL 15, which the
// tests run, takes the "before 17" path. Users create their logical slots with failover = true.

/** The first server_version_num with failover slots. */
export const failoverSlotsSinceVersionNum = 170000;

/**
 * The settings that carry logical slots over a failover on this server version, the same on every
 * node (a setting that only acts on a standby, or only on a primary, is inert in the other role):
 * `standbySlots` are the physical slots this node keeps while primary for the standbys that may be
 * promoted (with two nodes: the peer's). Logical decoding then waits for all of them, so no
 * consumer gets ahead of any standby a failover may pick. Empty before 17.
 */
export function failoverSlotSettings(
  serverVersionNum: number,
  standbySlots: string | readonly string[],
): Record<string, string> {
  if (serverVersionNum < failoverSlotsSinceVersionNum) return {};
  const slots = typeof standbySlots === 'string' ? standbySlots : [...standbySlots].sort().join(', ');
  return { sync_replication_slots: 'on', hot_standby_feedback: 'on', synchronized_standby_slots: slots };
}

export interface LogicalSlotRow {
  readonly name: string;
  /** pg_replication_slots.failover (PostgreSQL 17+); null before 17. */
  readonly failover: boolean | null;
}

/**
 * The logical slots a failover would lose on this version: before 17 all of them, unless the agents
 * copy them to the standby (`copy`: replication.logicalSlots.names, empty for all; logical-slot-copy.ts);
 * from 17 on those without failover = true.
 */
export function logicalSlotsLostAtFailover(
  serverVersionNum: number,
  slots: readonly LogicalSlotRow[],
  copy?: { readonly names: readonly string[] },
): string[] {
  if (serverVersionNum >= failoverSlotsSinceVersionNum) {
    return slots.filter((s) => s.failover !== true).map((s) => s.name);
  }
  const copied = (name: string) => copy !== undefined && (copy.names.length === 0 || copy.names.includes(name));
  return slots.filter((s) => !copied(s.name)).map((s) => s.name);
}

/**
 * The settings the copies of logical slots need before 17, on both nodes: hot_standby_feedback, so
 * the standby's copies hold the catalog rows they need on the primary (through its physical slot).
 */
export function logicalSlotCopySettings(serverVersionNum: number): Record<string, string> {
  return serverVersionNum < failoverSlotsSinceVersionNum ? { hot_standby_feedback: 'on' } : {};
}

/** The query behind logicalSlotsLostAtFailover: pg_replication_slots has the failover column from 17 on. */
export function logicalSlotsSql(serverVersionNum: number): string {
  const failover = serverVersionNum >= failoverSlotsSinceVersionNum ? 'failover' : 'NULL::boolean';
  return `SELECT slot_name::text AS name, ${failover} AS failover FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`;
}

// The values pgvip keeps in etcd, as zod schemas. etcd is shared infrastructure: anything with write
// access to the prefix can put anything there, so every value read is size-checked before it is
// parsed and schema-checked before it is believed, and a value that fails either is reported as
// what it is (bad), never guessed at. Values are JSON written by `encodeRecord` with a fixed key
// order, so a compare on a value's bytes (the term record in the txns) matches what pgvip wrote.
import { z } from 'zod';
import { agentRoleSchema, lsnSchema, nodeIdSchema, reasonSchema, termSchema, timelineSchema } from '@pgvip/shared';

/** No pgvip value comes near this; a larger one is not pgvip's and is not parsed at all. */
export const maxValueBytes = 4096;

const positiveTerm = termSchema.min(1, { error: 'a term in etcd is at least 1' });

export const leaderRecordSchema = z.strictObject({ node: nodeIdSchema, term: positiveTerm });
export type LeaderRecord = z.output<typeof leaderRecordSchema>;

/**
 * No cluster has more nodes than this (the config allows 9): a longer list in a record is not
 * pgvip's.
 */
export const maxNodes = 16;

/** Node ids, each once: a list in a record that names a node twice is not one pgvip wrote. */
const nodeListSchema = z.array(nodeIdSchema).max(maxNodes).refine(
  (ids) => new Set(ids).size === ids.length,
  { error: 'names a node more than once' },
);

/**
 * The durable term record of the cluster: the newest term, the node it was created for, and the
 * term's grantors (docs/design.md, "More than one standby"): the nodes other than the primary that
 * could be promoted when the term was made (not noFailover), whose grants the primary counts. A
 * record without `grantors` was written before there were more than two nodes: its grantor is
 * "the other node". The order of the fields is the order of the bytes (encodeRecord), and an old
 * record's bytes stay what they were.
 */
export const termRecordSchema = z.strictObject({
  term: positiveTerm,
  primary: nodeIdSchema,
  grantors: nodeListSchema.optional(),
}).refine((r) => r.grantors?.includes(r.primary) !== true, { error: 'names its primary among its grantors', path: ['grantors'] });
export type TermRecord = z.output<typeof termRecordSchema>;

/**
 * The sync record (docs/design.md, "More than one standby", Quorum commit): the claim a failover
 * relies on, "every acknowledged commit is flushed on at least k of these members", written by the
 * primary of `term` in the safe order with synchronous_standby_names, and reset to
 * {members: [], k: 0} by every txn that creates a term. k = 0 claims nothing (degraded, or async).
 */
export const syncRecordSchema = z.strictObject({
  members: nodeListSchema,
  k: z.int().min(0).max(maxNodes),
  term: positiveTerm,
}).refine((r) => r.k <= r.members.length, { error: 'claims more members (k) than it lists', path: ['k'] });
export type SyncRecord = z.output<typeof syncRecordSchema>;

/**
 * The sync record as pgvip wrote it before there were more than two nodes: the one standby that
 * holds every acknowledged write, or null (degraded to async). Still read, as ANY 1 (standby) or as
 * no claim.
 */
export const legacySyncRecordSchema = z.strictObject({ standby: nodeIdSchema.nullable(), term: positiveTerm });

/** The sync record as read, in either form: a claim. */
export type SyncRecordRead = SyncRecord;

/** Reads either form of the sync record as a claim. */
export const syncRecordReadSchema = z.union([syncRecordSchema, legacySyncRecordSchema]).transform(
  (r): SyncRecordRead => ('standby' in r
    ? { members: r.standby === null ? [] : [r.standby], k: r.standby === null ? 0 : 1, term: r.term }
    : r),
);

/**
 * A withdrawn standby's final position in `term` (the term whose primary failed): it stopped its WAL
 * receiver, so nothing more reaches it in that term. Under position/<node>, on no lease: a final
 * position stays true when its node dies. The campaign of the term after compares every one.
 */
export const positionRecordSchema = z.strictObject({
  term: positiveTerm,
  timeline: timelineSchema,
  flushLsn: lsnSchema,
  /**
   * Its node's own checks found nothing that keeps it from promotion (streamed within the grace,
   * within the lag bound). A node that may not win still publishes: its position counts toward the
   * n − k + 1 final positions a winner needs, and nobody waits for it to campaign.
   */
  eligible: z.boolean(),
});
export type PositionRecord = z.output<typeof positionRecordSchema>;

export const maintenanceRecordSchema = z.strictObject({ requestedBy: z.string().max(128), reason: reasonSchema });
export type MaintenanceRecord = z.output<typeof maintenanceRecordSchema>;

export const switchoverRecordSchema = z.strictObject({
  to: nodeIdSchema,
  term: positiveTerm,
  requestedBy: z.string().max(128),
});
export type SwitchoverRecord = z.output<typeof switchoverRecordSchema>;

/** What a member publishes about itself under members/<node> (read by observers, never by a vote). */
export const memberStatusSchema = z.strictObject({
  node: nodeIdSchema,
  role: agentRoleSchema,
  term: termSchema,
  timeline: timelineSchema,
  lsn: lsnSchema,
  replayLsn: lsnSchema,
  streaming: z.boolean(),
  writable: z.boolean(),
  promotionBlocker: reasonSchema.nullable(),
});
export type MemberStatus = z.output<typeof memberStatusSchema>;

/**
 * The grantors of a term whose primary is `primary`: every node of the config other than it that may
 * be promoted (not noFailover), sorted, so that the term record's bytes do not depend on the order
 * of the config.
 */
export function grantorsOf(
  nodes: readonly { readonly id: string; readonly noFailover: boolean }[], primary: string,
): string[] {
  return nodes.filter((n) => n.id !== primary && !n.noFailover).map((n) => n.id).sort();
}

/** The reset sync record of a new term: nothing claimed until its primary restores it. */
export function resetSyncRecord(term: number): SyncRecord {
  return { members: [], k: 0, term };
}

/**
 * The bytes of a new term's reset sync record. A term with grantors is an N-node term: the claim
 * form. Without (two nodes): the two-node form {standby: null, term}, so a two-node cluster's keys
 * keep the forms an agent of an earlier release reads, whatever the order of an upgrade.
 */
export function resetSyncBytes(term: number, grantors: readonly string[] | null | undefined): Buffer {
  return grantors === null || grantors === undefined
    ? encodeRecord(legacySyncRecordSchema, { standby: null, term })
    : encodeRecord(syncRecordSchema, resetSyncRecord(term));
}

/** A value that was read and believed, with the etcd facts a later compare names. */
export interface Versioned<T> {
  readonly value: T;
  /** etcd's mod_revision of the key (decimal text: int64). */
  readonly modRevision: string;
  /** The etcd lease the key is attached to, '0' for none (decimal text: int64). */
  readonly lease: string;
}

/** A key whose value is not one pgvip writes: named, with why, so an operator can look. */
export interface BadValue {
  readonly key: string;
  readonly problem: string;
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

export function decodeRecord<T, I>(schema: z.ZodType<T, I>, bytes: Buffer): Decoded<T> {
  if (bytes.length > maxValueBytes) return { ok: false, problem: `value of ${bytes.length} bytes is larger than any pgvip writes (${maxValueBytes})` };
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, problem: 'value is not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first === undefined || first.path.length === 0 ? '' : `${first.path.join('.')}: `;
    return { ok: false, problem: `value is not a pgvip record: ${where}${first?.message ?? 'invalid'}` };
  }
  return { ok: true, value: parsed.data };
}

/**
 * JSON in the schema's key order (zod builds objects in the order of the shape), so the same record
 * always has the same bytes; codecs (LSNs) are encoded back to their text.
 */
export function encodeRecord<T, I>(schema: z.ZodType<T, I>, value: T): Buffer {
  const bytes = Buffer.from(JSON.stringify(z.encode(schema, value)));
  if (bytes.length > maxValueBytes) throw new RangeError(`record of ${bytes.length} bytes exceeds ${maxValueBytes}`);
  return bytes;
}

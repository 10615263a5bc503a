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

/** The durable term record of the cluster: the newest term and the node it was created for. */
export const termRecordSchema = z.strictObject({ term: positiveTerm, primary: nodeIdSchema });
export type TermRecord = z.output<typeof termRecordSchema>;

/** In sync mode: the standby that holds every acknowledged write (null: none, degraded to async). */
export const syncRecordSchema = z.strictObject({ standby: nodeIdSchema.nullable(), term: positiveTerm });
export type SyncRecord = z.output<typeof syncRecordSchema>;

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

// zod schemas for every protocol message in core/messages.ts. Objects are strict (an unknown field
// is an error, not silently dropped: a peer sending fields we do not know speaks another protocol)
// and parse into frozen values (peers' reports are immutable snapshots).
//
// At the bottom, `SchemasMatchCoreTypes` makes the compiler prove that each schema's parsed type is
// exactly the core type, so the two can never drift apart.
import { z } from 'zod';
import type {
  Ack,
  AgentStatus,
  Handover,
  LeaseRelease,
  LeaseReply,
  LeaseRequest,
  ManualPromote,
  PgSnapshot,
  PositionClear,
  RestartRequest,
  SwitchoverRequest,
  SyncUpdate,
  SyncUpdateReply,
  VoteReply,
  VoteRequest,
} from '../core/messages.js';
import type { Equals, Expect } from './exact.js';
import {
  counterSchema,
  durationMsSchema,
  envelopeShape,
  lsnSchema,
  nodeIdSchema,
  reasonSchema,
  termSchema,
  timelineSchema,
} from './fields.js';

// Wire values of enums never change once released (docs/protocol.md); add, never rename.
export const agentRoleSchema = z.enum(['primary', 'promoting', 'standby', 'candidate', 'fenced', 'rejoining', 'demoted', 'starting']);

/** At most this many members in a claim: nine nodes (config.clusterNodesMax), less the primary. */
const claimMembersMax = 16;

/** A sync claim (core/nodes/quorum-commit.ts): "every acknowledged commit is on k of members". */
export const syncClaimSchema = z
  .strictObject({
    members: z.array(nodeIdSchema).max(claimMembersMax, { error: `a claim names at most ${claimMembersMax} members` }).readonly(),
    k: counterSchema.max(claimMembersMax, { error: `k is at most ${claimMembersMax}` }),
  })
  .readonly();

export const replicaStateSchema = z
  .strictObject({
    node: nodeIdSchema,
    flushLsn: lsnSchema,
    streaming: z.boolean(),
    syncState: z.enum(['sync', 'quorum', 'potential', 'async']),
  })
  .readonly();

const pgSnapshotV1Shape = {
  running: z.boolean(),
  inRecovery: z.boolean(),
  writable: z.boolean(),
  timeline: timelineSchema,
  lsn: lsnSchema,
  replayLsn: lsnSchema,
  streaming: z.boolean(),
  syncStandby: nodeIdSchema.nullable(),
  standbyInSync: z.boolean(),
};

/** The snapshot of the first release, as /v1/status serves it. */
const pgSnapshotV1Schema = z.strictObject(pgSnapshotV1Shape).readonly();

/** The snapshot with the optional fields of N nodes (served only with three or more). */
export const pgSnapshotSchema = z
  .strictObject({
    ...pgSnapshotV1Shape,
    syncClaim: syncClaimSchema.optional(),
    replicas: z.array(replicaStateSchema).max(claimMembersMax).readonly().optional(),
    upstream: nodeIdSchema.nullable().optional(),
  })
  .readonly();

const agentStatusV1Shape = {
  ...envelopeShape,
  primaryOfTerm: nodeIdSchema.nullable(),
  role: agentRoleSchema,
  pg: pgSnapshotV1Schema,
  leaseRemainingMs: durationMsSchema,
  promotionBlocker: reasonSchema.nullable(),
  maintenance: z.boolean(),
};

/** GET /v1/status: exactly the fields of the first release (v1 peers parse it strictly). */
export const agentStatusV1Schema = z.strictObject(agentStatusV1Shape).readonly();

/**
 * GET /v2/status: the v1 fields and the optional ones added since. Unknown top-level fields are
 * dropped, not refused, so a later release may add optional fields here without a new path.
 */
export const agentStatusSchema = z
  .object({
    ...agentStatusV1Shape,
    pg: pgSnapshotSchema,
    restarting: z.boolean().optional(),
    pendingRestart: z.boolean().optional(),
    syncMember: z.boolean().optional(),
    withdrawn: z.boolean().optional(),
  })
  .readonly();

/** A status as the v1 route serves it: the fields added since v1 left out. */
export function agentStatusV1Of(status: AgentStatus): z.output<typeof agentStatusV1Schema> {
  const {
    restarting: _restarting, pendingRestart: _pendingRestart, syncMember: _syncMember, withdrawn: _withdrawn, pg, ...v1
  } = status;
  const { syncClaim: _syncClaim, replicas: _replicas, upstream: _upstream, ...pgV1 } = pg;
  return { ...v1, pg: pgV1 };
}

export const leaseRequestSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('lease-request'),
    seq: counterSchema,
    lsn: lsnSchema,
    timeline: timelineSchema,
    syncStandby: nodeIdSchema.nullable(),
    syncClaim: syncClaimSchema.optional(),
  })
  .readonly();

export const leaseReplySchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('lease-reply'),
    seq: counterSchema,
    granted: z.boolean(),
    reason: reasonSchema,
    primaryOfTerm: nodeIdSchema.nullable(),
    maintenance: z.boolean(),
    grantorsOfTerm: z.array(nodeIdSchema).max(claimMembersMax).readonly().optional(),
  })
  .readonly();

export const leaseReleaseSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('lease-release'),
    reason: reasonSchema,
    leaseSeq: counterSchema,
  })
  .readonly();

export const voteRequestSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('vote-request'),
    lastTerm: termSchema,
    lsn: lsnSchema,
    timeline: timelineSchema,
    withdrawn: z
      .strictObject({
        flushLsn: lsnSchema, timeline: timelineSchema, windowOpen: z.boolean(), eligible: z.boolean().optional(),
      })
      .readonly()
      .optional(),
  })
  .readonly();

export const voteReplySchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('vote-reply'),
    granted: z.boolean(),
    reason: reasonSchema,
    primaryOfTerm: nodeIdSchema.nullable(),
    grantorsOfTerm: z.array(nodeIdSchema).max(claimMembersMax).readonly().optional(),
    leaderKeyGone: z.boolean().optional(),
  })
  .readonly();

const syncStandbyUpdateSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('sync-update'),
    standby: nodeIdSchema,
    change: z.enum(['degrade', 'restore']),
  })
  .readonly();

const syncRecordUpdateSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('sync-update'),
    change: z.literal('record'),
    claim: syncClaimSchema,
  })
  .readonly();

/** Both forms of SyncUpdate, told apart by `change` (the claim form: etcd's bridge answers it). */
export const syncUpdateSchema = z.union([syncStandbyUpdateSchema, syncRecordUpdateSchema]);

export const positionClearSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('position-clear'),
  })
  .readonly();

export const syncUpdateReplySchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('sync-update-reply'),
    granted: z.boolean(),
    reason: reasonSchema,
  })
  .readonly();

export const switchoverRequestSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('switchover-request'),
    to: nodeIdSchema,
  })
  .readonly();

export const restartRequestSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('restart-request'),
    to: nodeIdSchema,
    timeoutMs: durationMsSchema,
  })
  .readonly();

export const handoverSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('handover'),
    to: nodeIdSchema,
    finalLsn: lsnSchema,
    timeline: timelineSchema,
  })
  .readonly();

export const manualPromoteSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('manual-promote'),
    // Only `true` parses: a manual promotion without the explicit data-loss flag is not a request.
    acceptDataLoss: z.literal(true, { error: 'a manual promotion must carry acceptDataLoss: true' }),
    requestedBy: z.string().min(1).max(200),
  })
  .readonly();

export const ackSchema = z
  .strictObject({
    ...envelopeShape,
    kind: z.literal('ack'),
    accepted: z.boolean(),
    reason: reasonSchema,
  })
  .readonly();

/** Schemas of the messages that carry a `kind`, by kind (AgentStatus has none: it is GET /status's body). */
export const schemasByKind = {
  'lease-request': leaseRequestSchema,
  'lease-reply': leaseReplySchema,
  'lease-release': leaseReleaseSchema,
  'vote-request': voteRequestSchema,
  'vote-reply': voteReplySchema,
  'sync-update': syncUpdateSchema,
  'sync-update-reply': syncUpdateReplySchema,
  'switchover-request': switchoverRequestSchema,
  'restart-request': restartRequestSchema,
  handover: handoverSchema,
  'manual-promote': manualPromoteSchema,
  'position-clear': positionClearSchema,
  ack: ackSchema,
} as const;

// Fails to compile when any schema's parsed type differs from its core type in any way: a missing or
// extra field, a wider or narrower field type, or a lost `readonly`. Exported only so that the
// compiler does not flag it as unused.
export type SchemasMatchCoreTypes = [
  Expect<Equals<z.output<typeof pgSnapshotSchema>, PgSnapshot>>,
  Expect<Equals<z.output<typeof agentStatusSchema>, AgentStatus>>,
  Expect<Equals<z.output<typeof leaseRequestSchema>, LeaseRequest>>,
  Expect<Equals<z.output<typeof leaseReplySchema>, LeaseReply>>,
  Expect<Equals<z.output<typeof leaseReleaseSchema>, LeaseRelease>>,
  Expect<Equals<z.output<typeof voteRequestSchema>, VoteRequest>>,
  Expect<Equals<z.output<typeof voteReplySchema>, VoteReply>>,
  Expect<Equals<z.output<typeof syncUpdateSchema>, SyncUpdate>>,
  Expect<Equals<z.output<typeof syncUpdateReplySchema>, SyncUpdateReply>>,
  Expect<Equals<z.output<typeof switchoverRequestSchema>, SwitchoverRequest>>,
  Expect<Equals<z.output<typeof restartRequestSchema>, RestartRequest>>,
  Expect<Equals<z.output<typeof handoverSchema>, Handover>>,
  Expect<Equals<z.output<typeof manualPromoteSchema>, ManualPromote>>,
  Expect<Equals<z.output<typeof ackSchema>, Ack>>,
  Expect<Equals<z.output<typeof positionClearSchema>, PositionClear>>,
];

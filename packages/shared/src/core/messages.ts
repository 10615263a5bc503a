// The messages between agents and witness, as plain types. The zod wire schemas in src/wire mirror
// these exactly (a compile-time check keeps them in step); the core only ever sees parsed values.
//
// Every message carries the protocol version, the cluster, the sender's term and the sender.
// Durations travel as relative milliseconds, never as wall-clock instants: each node measures
// time on its own monotonic clock.

import type { SyncClaim } from './nodes/quorum-commit.js';

export type NodeId = string;
/** A WAL position (PostgreSQL LSN) as a byte offset. Travels as text 'X/Y' on the wire. */
export type Lsn = bigint;

export const PROTOCOL_VERSION = 1 as const;

export interface Envelope {
  readonly v: typeof PROTOCOL_VERSION;
  readonly cluster: string;
  /** The sender's current term (for requests that propose a term: the proposed term). */
  readonly term: number;
  readonly from: NodeId;
}

/** What a database node's agent reports about itself on GET /status. */
export type AgentRole = 'primary' | 'promoting' | 'standby' | 'candidate' | 'fenced' | 'rejoining' | 'demoted' | 'starting';

export interface PgSnapshot {
  /** PostgreSQL answered the agent's last check. */
  readonly running: boolean;
  readonly inRecovery: boolean;
  /** Accepts writes: not in recovery and not fenced read-only. */
  readonly writable: boolean;
  readonly timeline: number;
  /** Primary: current WAL insert/flush LSN. Standby: last received (flushed) LSN. */
  readonly lsn: Lsn;
  /** Standby: last replayed LSN (equals lsn on a primary). */
  readonly replayLsn: Lsn;
  /** Standby: the WAL receiver is streaming from the primary. */
  readonly streaming: boolean;
  /** Primary: the standby named in synchronous_standby_names, or null when async. */
  readonly syncStandby: NodeId | null;
  /** Primary: the standby PostgreSQL reports as sync (pg_stat_replication.sync_state = 'sync'). */
  readonly standbyInSync: boolean;
  /**
   * Primary: synchronous_standby_names in force, parsed as a claim (NO_CLAIM for ''). Absent when
   * the shell did not read it (a two-node agent may leave it out: the core then reads `syncStandby`).
   * Served on /v2/status only with three or more nodes.
   */
  readonly syncClaim?: SyncClaim;
  /**
   * Primary: pg_stat_replication by application_name (= node id), [] on a standby. Absent: not read.
   */
  readonly replicas?: readonly ReplicaState[];
  /**
   * Standby: the node its primary_conninfo names (null: none, or a host no node of the config has).
   * Absent: not read.
   */
  readonly upstream?: NodeId | null;
}

/** One row of the primary's pg_stat_replication, by application_name (= node id). */
export interface ReplicaState {
  readonly node: NodeId;
  /** flush_lsn: what a synchronous commit waited for. */
  readonly flushLsn: Lsn;
  /** state = 'streaming'. */
  readonly streaming: boolean;
  readonly syncState: 'sync' | 'quorum' | 'potential' | 'async';
}

export interface AgentStatus extends Envelope {
  /** The node the sender believes is primary for `term`, or null when unknown. */
  readonly primaryOfTerm: NodeId | null;
  readonly role: AgentRole;
  readonly pg: PgSnapshot;
  /** Remaining lease validity on the sender's clock (primary only), 0 when none. */
  readonly leaseRemainingMs: number;
  /** Why this node could not be promoted right now, or null when it is eligible. */
  readonly promotionBlocker: string | null;
  readonly maintenance: boolean;
  /**
   * Protocol v2 only (GET /v2/status; absent on /v1/status): this node runs a planned restart of its
   * PostgreSQL (core/agent/restart.ts) and holds its failure handling until it is back or the
   * restart's deadline passed. Absent when false.
   */
  readonly restarting?: boolean;
  /**
   * Protocol v2 only: PostgreSQL reports a setting changed in its files that waits for a restart
   * (pg_settings.pending_restart). Set by the agent's shell; absent when unknown.
   */
  readonly pendingRestart?: boolean;
  /**
   * Three or more nodes only (absent otherwise): this standby is a member of the primary's claim in
   * force (the `syncClaim` of the primary's last lease request), so a commit may wait for it.
   */
  readonly syncMember?: boolean;
  /**
   * Three or more nodes only (absent otherwise): this standby stopped its WAL receiver for an
   * election (docs/design.md, "More than one standby": it grants no lease until it resumes).
   */
  readonly withdrawn?: boolean;
}

/** The primary asks a grantor to renew its lease; carries its replication position. */
export interface LeaseRequest extends Envelope {
  readonly kind: 'lease-request';
  /** Sequence number chosen by the sender, echoed in the reply to match it to its send time. */
  readonly seq: number;
  readonly lsn: Lsn;
  readonly timeline: number;
  readonly syncStandby: NodeId | null;
  /**
   * The primary's synchronous_standby_names in force as a claim. Sent only with three or more nodes
   * (two-node traffic is unchanged); kept in the grantor's PrimaryReport.
   */
  readonly syncClaim?: SyncClaim;
}

export interface LeaseReply extends Envelope {
  readonly kind: 'lease-reply';
  readonly seq: number;
  readonly granted: boolean;
  readonly reason: string;
  /** The grantor's primary for its `term` (so a deposed primary learns who replaced it). */
  readonly primaryOfTerm: NodeId | null;
  /** The witness's per-cluster maintenance flag (agents adopt it). */
  readonly maintenance: boolean;
  /**
   * etcd only: the grantors its term record names for the envelope's `term` (the eligible nodes other
   * than the primary when the term was made). Absent: a two-node record (its grantor is the other
   * node), or not known. The primary counts standby grants from these, not from its own config.
   */
  readonly grantorsOfTerm?: readonly NodeId[];
}

/** The primary gives up its lease early after fencing itself (fast path). */
export interface LeaseRelease extends Envelope {
  readonly kind: 'lease-release';
  readonly reason: string;
  /**
   * The highest lease-request seq the releasing primary sent before releasing. A grantor ignores a
   * release older than the request behind its current promise: a delayed release from an earlier
   * agent process must never cancel a lease granted since.
   */
  readonly leaseSeq: number;
}

/** A standby asks for the vote for `term` (= its current term + 1). */
export interface VoteRequest extends Envelope {
  readonly kind: 'vote-request';
  /** The term in which the candidate was a standby. */
  readonly lastTerm: number;
  /** The candidate's final received LSN (WAL receiver state at request time). */
  readonly lsn: Lsn;
  readonly timeline: number;
  /**
   * Three or more nodes (etcd only): the candidate stopped its WAL receiver, and this is its final
   * position, which the quorum publishes as `position/<from>` before it decides (electionDecision).
   * `windowOpen`: the election window is still open (wait for silent eligible standbys).
   */
  readonly withdrawn?: WithdrawnPosition;
}

export interface WithdrawnPosition {
  readonly flushLsn: Lsn;
  readonly timeline: number;
  readonly windowOpen: boolean;
  /**
   * The candidate may win (its promotion blocker is null). false: a member that may not win (streamed
   * too long ago, lagging, restarted) publishes its final position for the others' election; the
   * quorum never ranks it nor campaigns for it. Absent: true (the earlier form).
   */
  readonly eligible?: boolean;
}

export interface VoteReply extends Envelope {
  readonly kind: 'vote-reply';
  readonly granted: boolean;
  readonly reason: string;
  /** The witness's primary for its `term`: a candidate whose earlier grant was lost learns it won. */
  readonly primaryOfTerm: NodeId | null;
  /** etcd only: the grantors its term record names for `term` (as LeaseReply.grantorsOfTerm). */
  readonly grantorsOfTerm?: readonly NodeId[];
  /**
   * etcd only, three or more nodes: the answer to a standby's question before it withdraws (a vote
   * request without a final position): true when no leader key stands and the term record is the
   * standby's term, false while a leader key stands. Absent: not that question, or etcd did not read.
   */
  readonly leaderKeyGone?: boolean;
}

/**
 * The primary asks its quorum to agree to a change of its sync standing: the two-node form (the
 * standby's standing), or the claim form (etcd, any node count: write the sync record
 * {members, k, term} in a txn comparing this node's leader key and the term record).
 */
export type SyncUpdate = SyncStandbyUpdate | SyncRecordUpdate;

export interface SyncStandbyUpdate extends Envelope {
  readonly kind: 'sync-update';
  readonly standby: NodeId;
  /** degrade: drop to async (standby becomes ineligible); restore: standby caught up and is sync again. */
  readonly change: 'degrade' | 'restore';
}

export interface SyncRecordUpdate extends Envelope {
  readonly kind: 'sync-update';
  readonly change: 'record';
  /** The record wanted for this term (docs/design.md, "More than one standby": R2 holds for it). */
  readonly claim: SyncClaim;
}

/**
 * A withdrawn standby (three or more nodes) takes back its published position before it resumes
 * its WAL receiver: the quorum deletes `position/<from>` in a txn comparing the term record
 * unchanged, and answers with an Ack (accepted: false when the term moved).
 */
export interface PositionClear extends Envelope {
  readonly kind: 'position-clear';
}

export interface SyncUpdateReply extends Envelope {
  readonly kind: 'sync-update-reply';
  readonly granted: boolean;
  readonly reason: string;
}

/** Witness → primary: begin a planned switchover to `to`. */
export interface SwitchoverRequest extends Envelope {
  readonly kind: 'switchover-request';
  readonly to: NodeId;
}

/** Old primary → standby: after fencing and catch-up, the old primary hands `term` over. */
export interface Handover extends Envelope {
  readonly kind: 'handover';
  readonly to: NodeId;
  /** The old primary's final LSN after fencing: the standby must have replayed it. */
  readonly finalLsn: Lsn;
  readonly timeline: number;
}

/** Operator (through the witness or directly) → standby: promote without a vote. */
export interface ManualPromote extends Envelope {
  readonly kind: 'manual-promote';
  readonly acceptDataLoss: true;
  readonly requestedBy: string;
}

/**
 * Witness → node (protocol v2, POST /v2/restart): restart PostgreSQL now, as a planned restart that
 * is no failure, holding failure handling for at most `timeoutMs` on the node's own clock.
 */
export interface RestartRequest extends Envelope {
  readonly kind: 'restart-request';
  /** The node asked to restart (the receiver checks that it is itself). */
  readonly to: NodeId;
  readonly timeoutMs: number;
}

/** A generic acknowledgement for one-way notices (release, handover, switchover-request). */
export interface Ack extends Envelope {
  readonly kind: 'ack';
  readonly accepted: boolean;
  readonly reason: string;
}

export type PeerRequest =
  | LeaseRequest
  | LeaseRelease
  | VoteRequest
  | SyncUpdate
  | SwitchoverRequest
  | RestartRequest
  | Handover
  | ManualPromote
  | PositionClear;
export type PeerReply = LeaseReply | VoteReply | SyncUpdateReply | Ack;

// The agent's state: the durable term record, what it observes, and one small state per
// sub-machine (each defined and stepped in its own module of this folder). The legal combinations
// of each sub-machine are written in its type; core/invariants.ts checks the ones across them.

import type { Effect, EffectKind, FenceMode, StepOutput } from '../actions.js';
import type { PrimaryReport } from '../eligibility.js';
import type { Quorum } from '../quorum.js';
import type { LeasePromise } from '../grantor.js';
import type { AgentStatus, NodeId, PeerReply, PeerRequest, PgSnapshot } from '../messages.js';
import type { EffectResult } from '../actions.js';
import type { Timings } from '../timings.js';
import type { NodeTraits } from '../nodes/candidates.js';
import type { CampaignState } from './campaign.js';
import type { FenceState } from './fence.js';
import type { HolderLease } from './lease.js';
import type { PromotionState } from './promotion.js';
import type { RejoinState } from './rejoin.js';
import type { RestartState } from './restart.js';
import type { SwitchoverState } from './switchover.js';
import type { SyncState } from './sync.js';
import type { VipState } from './vip.js';
import type { ClaimSyncState } from './claim-sync.js';
import type { FollowState, WithdrawalState, WithdrawCheck } from './withdrawal.js';

export interface AgentDurable {
  /** The highest term this node has seen (I2). */
  readonly term: number;
  /** The node that is primary for `term`, or null while unknown. */
  readonly primaryOfTerm: NodeId | null;
}

export interface AgentSettings {
  readonly cluster: string;
  readonly self: NodeId;
  /**
   * The other node of a two-node cluster. With three or more nodes it is the first other node of
   * `nodes` and no decision reads it: the N-node paths use `nodes` and the term's primary.
   */
  readonly peer: NodeId;
  /** Every database node, self included, in config order (docs/design.md, "More than one standby"). */
  readonly nodes: readonly NodeTraits[];
  /** Sync mode: ANY k wanted (replication.synchronousCount, default 1). */
  readonly synchronousCount: number;
  /**
   * Too few standbys stream: 'async' lowers k with etcd's agreement down to 0; 'block' never lowers
   * the record below `synchronousCount` (the cluster's writes wait instead).
   */
  readonly degrade: 'async' | 'block';
  /**
   * Three or more nodes: how long a withdrawn standby waits for the final positions of the other
   * eligible standbys before it may be elected without them (default one heartbeat).
   */
  readonly electionWindowMs: number;
  /**
   * The witness daemon: operators' commands that reach a node come from it (a planned restart, a
   * forced promotion), on etcd too, where it observes and runs the operator's txns.
   */
  readonly witness: NodeId;
  /**
   * Who holds the quorum (core/quorum.ts): lease and vote requests, releases and sync updates go to
   * `quorum.id`, and lease replies from it carry the maintenance flag. On the witness backend `id` is
   * the witness; on etcd it is ETCD_QUORUM_ID, answered by the shell from etcd.
   */
  readonly quorum: Quorum;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  readonly lagBytesMax: bigint;
  readonly fencing: FenceMode;
  /** How often a primary re-verifies that EC2 routes the VIP to it. */
  readonly vipVerifyEveryMs: number;
  /**
   * How long a node that may no longer hold the VIP keeps it on its interface while EC2 may still
   * route it here (until a check shows EC2 routes it elsewhere, at most this long).
   */
  readonly vipKeepWhileRoutedMs: number;
  /** A switchover that has not handed over within this time is aborted and the primary resumes. */
  readonly switchoverTimeoutMs: number;
  /**
   * The VIP moves only once PostgreSQL is promoted, not beside the promotion: set when a before-promote
   * hook may veto the promotion (docs/hooks.md), so no client is sent to a node its hook refused.
   */
  readonly vipAfterPromotion?: boolean;
}

type BaseSettings = Pick<AgentSettings, 'cluster' | 'self' | 'peer' | 'witness' | 'timings'>;

/**
 * `quorum` defaults to the witness named by `witness`, `nodes` to self and peer (in id order, with
 * no priority and no noFailover).
 */
export function defaultAgentSettings(base: BaseSettings & Partial<AgentSettings>): AgentSettings {
  const pair = [base.self, base.peer].sort();
  return {
    nodes: pair.map((id) => ({ id, priority: 0, noFailover: false })),
    synchronousCount: 1,
    degrade: 'async',
    electionWindowMs: base.timings.heartbeatMs,
    quorum: { backend: 'witness', id: base.witness },
    replication: 'sync',
    lagBytesMax: 16n * 1024n * 1024n,
    fencing: 'read-only',
    vipVerifyEveryMs: 10 * base.timings.heartbeatMs,
    vipKeepWhileRoutedMs: 2 * base.timings.leaseMs,
    switchoverTimeoutMs: 4 * base.timings.leaseMs,
    ...base,
  };
}

/** An effect the shell runs for us, until its `effect-done` arrives. */
export interface InFlight {
  readonly id: number;
  readonly kind: EffectKind;
  readonly effect: Effect;
  readonly startedAtMs: number;
}

export interface AgentState {
  readonly settings: AgentSettings;
  readonly durable: AgentDurable;
  readonly bootAtMs: number;
  readonly nowMs: number;

  // What this node observes (set by ticks and replies).
  /** Last observation of the local PostgreSQL. */
  readonly pg: PgSnapshot | null;
  /** Last status of the peer agent; null when the last check failed. */
  readonly peer: AgentStatus | null;
  /** Last status of every other node (tick input `peers`); null when its last check failed. */
  readonly peers: Readonly<Record<NodeId, AgentStatus | null>>;
  readonly peerFailedChecks: number;
  readonly lastStreamingAtMs: number | null;
  readonly writeProbeFailures: number;
  readonly maintenance: boolean;

  // The grantor (core/grantor.ts): what this node, as a standby, promised the primary.
  /** The last lease request of the primary (its LSN, timeline, sync standby). */
  readonly primaryReport: PrimaryReport | null;
  /** The promise made with the last lease grant. */
  readonly promise: LeasePromise | null;
  /** The primary of this term released its lease to us (fast path) or handed the term over. */
  readonly releasedTerm: number | null;

  // The effects in flight: one pipeline slot (promotion, rejoin, sync, unfence, ...), the fence's, and
  // the VIP's (agent/vip.ts), so that a slow EC2 remap holds up no promotion, rejoin or sync step.
  readonly nextEffectId: number;
  readonly inFlight: InFlight | null;
  readonly fenceInFlight: InFlight | null;
  readonly vipInFlight: InFlight | null;

  // The sub-machines.
  /** The primary's lease: its validity, the requests behind it, and its release (fast path). */
  readonly lease: HolderLease;
  /** Whether this incarnation fenced its PostgreSQL (read-only or stopped), and why. */
  readonly fence: FenceState;
  /** Where the VIP is, as far as this node knows, and whether it is leaving this node. */
  readonly vip: VipState;
  /** The promotion pipeline's next step, and a forced (data-loss) promotion's term. */
  readonly promotion: PromotionState;
  /** The primary's synchronous replication bookkeeping with the witness. */
  readonly sync: SyncState;
  readonly switchover: SwitchoverState | null;
  readonly rejoin: RejoinState;
  readonly campaign: CampaignState | null;
  /** A planned restart of PostgreSQL asked for by the witness (`pgvip restart`), or null. */
  readonly restart: RestartState | null;

  // Three or more nodes (docs/design.md, "More than one standby").
  /** The primary's quorum commit: the sync record it knows, and the step of its plan in flight. */
  readonly claimSync: ClaimSyncState;
  /** A standby that stopped its receiver for an election, or null. */
  readonly withdrawal: WithdrawalState | null;
  /** The question to etcd before withdrawing (is the leader key gone?), or null (review-17 F9). */
  readonly withdrawCheck: WithdrawCheck | null;
  /** This standby's WAL receiver is stopped (a withdrawal) and nothing restarted it yet. */
  readonly receiverStopped: boolean;
  /** The last failed `follow` of this standby, or null. */
  readonly follow: FollowState | null;
  /**
   * The term in which this node knows it has no published position (etcd's `position/<self>`): set by
   * an accepted position-clear and at every new term (a position of an older term counts for nothing).
   * Null after a restart: a withdrawal before it may have left its position published, so the receiver
   * starts streaming again in this term only after a position-clear (docs/design.md, I6).
   */
  readonly positionClearTerm: number | null;
  /** When the last position-clear outside a withdrawal went out (one per heartbeat), or null. */
  readonly positionClearSentAtMs: number | null;
  /**
   * The last term in which this standby was seen streaming from that term's primary (three or more
   * nodes), or null. One that never streamed from its term's primary may not win the next term: its
   * WAL stops at an older primary's, on an older timeline (review-17b G9).
   */
  readonly streamedTerm?: number | null;
  /** When a follow or resume last (re)started the WAL receiver toward the term's primary, or null. */
  readonly receiverStartedAtMs?: number | null;
}

export type WriteProbe = 'ok' | 'stalled' | 'failed' | 'read-only' | 'not-run';

export type AgentInput =
  | {
    readonly kind: 'tick'; readonly nowMs: number; readonly pg: PgSnapshot; readonly writeProbe: WriteProbe;
    /** The status of `settings.peer` (null: its check failed); the two-node paths read it. */
    readonly peer: AgentStatus | null;
    /**
     * The status of every other node from this heartbeat (null: its check failed). Absent: only
     * `peer` was polled (a two-node shell), read as `{ [settings.peer]: peer }`.
     */
    readonly peers?: Readonly<Record<NodeId, AgentStatus | null>>;
    /**
     * Primary: for each standby with a walsender, ms since its reply_time last changed (on the agent's
     * monotonic clock). The shell counts a standby lost only after 3 s of silence; the sync degrade
     * counts from its last reply (agent/sync.ts). Absent: not known (the clock starts at the detection).
     */
    readonly replyAgeMs?: Readonly<Record<NodeId, number>>;
  }
  /** `peerLeaseValidMs`: how long the sender counts a lease valid by its own timings (leaseLengthConflict). */
  | {
    readonly kind: 'request'; readonly nowMs: number; readonly msg: PeerRequest;
    readonly peerLeaseValidMs?: number | undefined;
  }
  | { readonly kind: 'reply'; readonly nowMs: number; readonly msg: PeerReply }
  | { readonly kind: 'effect-done'; readonly nowMs: number; readonly result: EffectResult }
  /**
   * The shell noticed it did not run for a while (the host or process was paused, or its event loop
   * stalled): decide again with what is known — above all, fence if the lease lapsed meanwhile —
   * without waiting for fresh observations (docs/design.md, The decision loop: `wake`).
   */
  | { readonly kind: 'wake'; readonly nowMs: number; readonly pausedMs: number };

export type AgentOutput = StepOutput<AgentState, AgentDurable>;

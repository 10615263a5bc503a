// The witness's state and the step under construction. The witness is the tie-breaking third vote
// for one cluster: it grants leases to the primary of the current term (core/grantor.ts), votes for
// a standby only when it too has seen the primary fail and its own promise has run out
// (witness/vote.ts), arbitrates the sync standby's eligibility (witness/requests.ts), watches both
// nodes (witness/watch.ts) and carries out operators' commands (witness/operator.ts).

import type { StepOutput } from '../actions.js';
import type { PrimaryReport } from '../eligibility.js';
import type { LeasePromise } from '../grantor.js';
import type { AgentStatus, NodeId, PeerReply, PeerRequest } from '../messages.js';
import type { QuorumBackend } from '../quorum.js';
import { StepBuilder } from '../step-builder.js';
import type { Timings } from '../timings.js';

export interface WitnessDurable {
  readonly term: number;
  readonly primaryOfTerm: NodeId | null;
  /** The vote cast in `votedTerm` (one per term, never withdrawn). */
  readonly votedTerm: number;
  readonly votedFor: NodeId | null;
  /** The standby known to hold every acknowledged write (sync mode), or null: nobody may be promoted. */
  readonly syncEligible: NodeId | null;
  readonly maintenance: boolean;
  /**
   * The last automatic failover this witness voted for (witness/vote.ts, failover.minIntervalMs):
   * durable so that a restarted witness still holds the interval. `atMs` is on this process's
   * monotonic clock; the shell stores it as a wall-clock time and converts it back at load (so a
   * wall-clock jump while the witness is down moves it, as it would move any calendar). Absent: none
   * yet (and in state files written before it was kept).
   */
  readonly lastFailover?: LastFailover;
}

export interface LastFailover {
  readonly atMs: number;
  readonly to: NodeId;
  readonly term: number;
}

export const initialWitnessDurable: WitnessDurable = {
  term: 0, primaryOfTerm: null, votedTerm: 0, votedFor: null, syncEligible: null, maintenance: false,
};

export interface WitnessSettings {
  readonly cluster: string;
  readonly self: NodeId;
  readonly nodes: readonly [NodeId, NodeId];
  /**
   * Who holds the cluster's quorum (core/quorum.ts); absent: the witness. On etcd the witness only
   * observes: it refuses lease and vote requests, releases and sync updates.
   */
  readonly quorum?: QuorumBackend;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  readonly lagBytesMax: bigint;
  /**
   * Automatic failovers (votes) at least this far apart; 0 or absent: no minimum (witness/vote.ts).
   * A forced manual failover is never held by it.
   */
  readonly failoverMinIntervalMs?: number;
  /**
   * A node that goes unreachable again within this long of coming back is not announced again until
   * it settles (witness/watch.ts, holdDown); 0 or absent: every transition is announced.
   */
  readonly nodeHoldDownMs?: number;
}

export interface NodeView {
  readonly status: AgentStatus | null;
  /** The witness's own check of the node's PostgreSQL port. */
  readonly pgReachable: boolean;
  readonly failedChecks: number;
  readonly lastSeenAtMs: number | null;
  /** Consecutive polls without an answer from the agent (any role). */
  readonly missedPolls: number;
  /** Operators were told this node is unreachable or failed, and not yet that it recovered. */
  readonly reportedDown: boolean;
  /** The term in which operators were told that this node's rejoin failed. */
  readonly rejoinFailedTerm: number | null;
  /** The term in which operators were told that this node rejoined as a standby. */
  readonly rejoinedTerm: number | null;
  /** The hold-down of a flapping node's notifications; absent until it first came back. */
  readonly holdDown?: HoldDown;
}

/** How a node's unreachable/recovered notifications are held back while it flaps (witness/watch.ts). */
export interface HoldDown {
  /** When it last came back (announced or held back). */
  readonly recoveredAtMs: number;
  /** When the current down started, if it was held back (its recovery is then held back too). */
  readonly heldDownAtMs: number | null;
  /** What the last held-back down would have been announced as (and its summary is). */
  readonly heldAs: 'failure-detected' | 'node-unreachable';
  /** Transitions held back since `sinceMs` and not yet summarised. */
  readonly held: number;
  readonly sinceMs: number;
}

export interface WitnessState {
  readonly settings: WitnessSettings;
  readonly durable: WitnessDurable;
  readonly bootAtMs: number;
  readonly nowMs: number;
  /** The promise made with the last lease grant (or vote). */
  readonly promise: LeasePromise | null;
  readonly releasedTerm: number | null;
  readonly primaryReport: PrimaryReport | null;
  readonly views: Readonly<Record<NodeId, NodeView>>;
  /** A planned switchover waiting to be sent to the primary (witness/operator.ts). */
  readonly switchover: PlannedSwitchover | null;
  /** Whether a failed primary goes unreplaced, and whether operators heard (witness/watch.ts). */
  readonly blocked: BlockedWatch;
  /** An operator's planned restart of a node's PostgreSQL (witness/restart.ts); absent or null: none. */
  readonly restart?: PlannedRestart | null;
}

export interface PlannedSwitchover {
  readonly to: NodeId;
  /** When to send it (an operator may delay it), and when it was last sent (resent until answered). */
  readonly atMs: number;
  readonly sentAtMs: number | null;
}

/**
 * A planned restart (`pgvip restart`): asked of `node` in `term`, resent until it answers; while it
 * lasts (until `untilMs` on the witness's clock) the node's failed checks are held for as long as its
 * agent says it is restarting. Kept in memory: a restarted witness forgets it and checks as usual.
 */
export interface PlannedRestart {
  readonly node: NodeId;
  readonly term: number;
  readonly timeoutMs: number;
  readonly untilMs: number;
  readonly sentAtMs: number | null;
  /** The node accepted the request. */
  readonly accepted: boolean;
  /** A poll has shown the node restarting. */
  readonly seenRestarting: boolean;
  readonly by: string;
}

export interface BlockedWatch {
  /** Since when the current term's primary counts as failed (checks or release), or null. */
  readonly primaryFailedSinceMs: number | null;
  /** The term for which operators were told that no automatic failover can happen. */
  readonly notifiedTerm: number | null;
}

export type WitnessInput =
  /**
   * `pgReachable` must come from a probe made during this poll whenever `status` is null (decisions
   * read it only then; views show it always).
   */
  | {
    readonly kind: 'poll'; readonly nowMs: number; readonly node: NodeId; readonly status: AgentStatus | null;
    readonly pgReachable: boolean;
  }
  /** `peerLeaseValidMs`: how long the sender counts a lease valid by its own timings (leaseLengthConflict). */
  | {
    readonly kind: 'request'; readonly nowMs: number; readonly msg: PeerRequest;
    readonly peerLeaseValidMs?: number | undefined;
  }
  /** The answer to a request the witness sent; `inReplyTo` names that request's kind. */
  | { readonly kind: 'reply'; readonly nowMs: number; readonly msg: PeerReply; readonly inReplyTo: PeerRequest['kind'] }
  | { readonly kind: 'operator'; readonly nowMs: number; readonly command: OperatorCommand };

export type OperatorCommand =
  | { readonly kind: 'maintenance'; readonly on: boolean; readonly by: string }
  /** A planned restart of `node`'s PostgreSQL, holding failure handling for at most timeoutMs. */
  | { readonly kind: 'restart'; readonly node: NodeId; readonly timeoutMs: number; readonly by: string }
  | { readonly kind: 'switchover'; readonly to: NodeId | null; readonly delayMs: number; readonly by: string }
  | { readonly kind: 'failover'; readonly to: NodeId | null; readonly acceptDataLoss: boolean; readonly by: string };

export type WitnessOutput = StepOutput<WitnessState, WitnessDurable> & {
  /** For operator commands: whether it was accepted, and why not. */
  readonly verdict?: { readonly ok: boolean; readonly message: string };
};

export class Step extends StepBuilder<WitnessState, WitnessDurable> {
  /** For operator commands: whether it was accepted, and why not. */
  verdict: { ok: boolean; message: string } | undefined;
  output(fallback: string): WitnessOutput {
    const base = this.built(fallback);
    return this.verdict === undefined ? base : { ...base, verdict: this.verdict };
  }
}


// What the core asks its shell to do. Order rules (the shell relies on them, the simulator checks them):
//
//  1. Actions run in list order.
//  2. `persist` comes first whenever present and must be durable (fsync) before the next action starts:
//     a term or vote is never acted on or answered before it is on disk.
//  3. `send` and `reply` go out after any persist before them, in order; replies are never delayed by
//     effects.
//  4. An `effect` is started in order and runs asynchronously; it reports back as an `effect-done`
//     input with the same `id`. Whenever one effect must finish before another step happens
//     (fence BEFORE release; stop the WAL receiver BEFORE promote; promote BEFORE moving the VIP;
//     move the VIP in EC2 BEFORE adding it to the OS interface BEFORE verifying), the core emits the
//     later step only after the earlier one's `effect-done`. So at most one pipeline effect is in
//     flight, plus possibly a `fence`, which preempts everything.
//  5. `notify` is fire-and-forget: it must never block or delay anything after it.

import type { NodeId, PeerReply, PeerRequest, Lsn } from './messages.js';

export type FenceMode = 'read-only' | 'fast-stop';

export type Effect =
  /** Make PostgreSQL refuse writes (read-only + cut client backends, or fast stop); report final LSN. */
  | { readonly kind: 'fence'; readonly mode: FenceMode }
  /** Undo a read-only fence after the lease was regained in the same term. */
  | { readonly kind: 'unfence' }
  /** Remove the VIP from this host's interface (ip addr del); harmless when absent. */
  | { readonly kind: 'drop-vip-local' }
  /** Stop the WAL receiver, then read the final received LSN (I4). */
  | { readonly kind: 'stop-wal-receiver' }
  /** Set synchronous_standby_names to the standby, or to '' (async) when null. */
  | { readonly kind: 'set-sync-standby'; readonly standby: NodeId | null }
  /** pg_promote(wait); idempotent when already primary. */
  | { readonly kind: 'promote' }
  /**
   * Point the VIP at this node in EC2 (AssignPrivateIpAddresses / ReplaceRoute). No attempt may
   * start after `budgetMs` from the effect's start: the core only moves the VIP while its lease
   * outlives the call, so a late request can never move the VIP to a superseded term.
   */
  | { readonly kind: 'move-vip-cloud'; readonly term: number; readonly budgetMs: number }
  /** Configure the VIP on the OS interface (ip addr add); idempotent. */
  | { readonly kind: 'add-vip-local' }
  /** Check that EC2 (and IMDS) show the VIP on this node. */
  | { readonly kind: 'verify-vip' }
  /** Start PostgreSQL again (pg_ctl start) in its configured role; a fenced server comes back read-only. */
  | { readonly kind: 'start-postgres' }
  /** Rewind (or re-clone) this node and start it as a standby of `primary`. */
  | { readonly kind: 'rejoin'; readonly primary: NodeId };

export type EffectKind = Effect['kind'];

export type NotifyEvent =
  | 'failure-detected'
  | 'fenced'
  | 'lease-released'
  | 'vote-requested'
  | 'vote-granted'
  | 'promoted'
  | 'vip-moved'
  | 'rejoined'
  | 'switchover'
  | 'sync-degraded'
  | 'sync-restored'
  | 'maintenance'
  | 'manual-failover'
  | 'agent-unreachable'
  | 'node-unreachable'
  | 'node-recovered'
  | 'failover-blocked'
  | 'rejoin-failed'
  | 'vip-error';

export type Action<Durable> =
  | { readonly kind: 'persist'; readonly state: Durable }
  | { readonly kind: 'send'; readonly to: NodeId; readonly msg: PeerRequest }
  | { readonly kind: 'reply'; readonly to: NodeId; readonly msg: PeerReply }
  | { readonly kind: 'effect'; readonly id: number; readonly effect: Effect }
  | { readonly kind: 'notify'; readonly event: NotifyEvent; readonly detail: string };

export interface StepOutput<State, Durable> {
  readonly state: State;
  readonly actions: readonly Action<Durable>[];
  /** One sentence saying what this step decided and why. */
  readonly reason: string;
  /**
   * Nothing in this step is news: it gave no reason of its own (the reason is the input's fallback
   * sentence) and persisted and notified nothing. Shells log routine steps at debug level and the
   * others at info, so log levels follow what the core decided, not the wording of its sentences.
   */
  readonly routine: boolean;
}

/** The result of an effect, as reported by the shell. */
export interface EffectResult {
  readonly id: number;
  readonly ok: boolean;
  readonly detail: string;
  /** fence and stop-wal-receiver: the final LSN read after the step. */
  readonly finalLsn?: Lsn;
  /** verify-vip: where EC2 routes the VIP — here (and on the OS interface), here in EC2 only, or elsewhere. */
  readonly vipPlacement?: 'here' | 'cloud-only' | 'elsewhere';
}

// What the core asks its shell to do, grouped by kind in the order the shell runs them; the groups
// are the type, so no step can ask for another order (docs/design.md, The decision loop). Rules (the
// shell relies on them; core/execute.ts is the one executor):
//
//  1. `persist` runs first, alone, and must be durable (fsync) before anything else of the step: a
//     term or vote is never acted on or answered before it is on disk.
//  2. `fence`, when the step starts one, runs next, before any reply, send or other effect. A fence
//     is the one start whose timing safety depends on: it must begin before the lease the grantors
//     promised can end (docs/design.md, Fencing), so nothing of its step may go ahead of it, not even
//     the lease renewals a lapsing primary sends in the same step to regain its lease.
//  3. Then `replies`, `sends`, `effects` and `notifications`, each group in the order the core
//     recorded it. Replies, sends and effect starts all hand work to something asynchronous and
//     never wait for it (a send's answer and an effect's result come back as later inputs, stepped
//     against a state that already records all of them), so their order inside one step is invisible
//     to the core and changes no decision; replies go first so that an answer is never held up by
//     the step's other work. In particular a primary's tick may send its lease renewals before it
//     starts a routine effect (verify the VIP, set the sync standby): a renewal only asks grantors to
//     keep promising, and nothing the effect does depends on it.
//  4. An effect runs asynchronously and reports back as an `effect-done` input with the same `id`.
//     Whenever one effect must finish before another step happens (fence BEFORE release; stop the
//     WAL receiver BEFORE promote; promote BEFORE moving the VIP; move the VIP in EC2 BEFORE adding it
//     to the OS interface BEFORE verifying), the core emits the later step only after the earlier
//     one's `effect-done`, never both in one output. So at most one pipeline effect is in flight,
//     plus possibly a fence, which preempts everything.
//  5. `notifications` are fire-and-forget and last: they never block or delay anything of the step.

import type { NodeId, PeerReply, PeerRequest, Lsn } from './messages.js';
import type { SyncClaim } from './nodes/quorum-commit.js';

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
  /**
   * A planned restart: stop PostgreSQL (fast) and start it again as it is configured; a fenced
   * server comes back fenced (the fence is in its files).
   */
  | { readonly kind: 'restart-postgres' }
  /** Rewind (or re-clone) this node and start it as a standby of `primary`. */
  | { readonly kind: 'rejoin'; readonly primary: NodeId }
  /**
   * A switchover's handover, recorded by the quorum before the standby hears of it: as the primary
   * of `term`, make the quorum name `to` for `term + 1`. On etcd the handover txn
   * (EtcdQuorumBridge.handover(term, to)); ok only once it committed (an unknown outcome is read back
   * before it is reported). On the witness there is nothing to record: done at once, ok. Failed: the
   * switchover aborts and this node stays primary of `term`.
   */
  | { readonly kind: 'quorum-handover'; readonly term: number; readonly to: NodeId }
  /**
   * etcd (any node count; the witness backend keeps `set-sync-standby`): synchronous_standby_names =
   * synchronousStandbyNames(claim). Done only once the setting is in force for every walsender.
   */
  | { readonly kind: 'set-sync'; readonly claim: SyncClaim }
  /**
   * R2's catch-up: read L = pg_current_wal_lsn() at the start (the setting in force); ok once `count`
   * of `members` show flush_lsn ≥ L in pg_stat_replication; failed after `timeoutMs` (the detail
   * says who lagged).
   */
  | { readonly kind: 'sync-catch-up'; readonly members: readonly NodeId[]; readonly count: number; readonly timeoutMs: number }
  /**
   * A standby re-points primary_conninfo (host and port of `primary`, application_name = self) and
   * primary_slot_name by ALTER SYSTEM + reload; ok once streaming from it. Failed with a detail that
   * starts `diverged:` when PostgreSQL refuses the new timeline (the core then asks `rejoin`).
   */
  | { readonly kind: 'follow'; readonly primary: NodeId }
  /**
   * Undo `stop-wal-receiver`: stream again (a withdrawn standby resuming), from `primary`, the term's
   * primary, when the core names it (it always does); absent: from where it streamed before the stop.
   */
  | { readonly kind: 'resume-wal-receiver'; readonly primary?: NodeId };

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
  | 'planned-restart'
  | 'manual-failover'
  | 'agent-unreachable'
  | 'node-unreachable'
  | 'node-recovered'
  | 'failover-blocked'
  | 'rejoin-failed'
  | 'vip-error';

/** One entry of an output's groups, tagged, as a flat list (logs, digests, tests): see actionsOf. */
export type Action<Durable> =
  | { readonly kind: 'persist'; readonly state: Durable }
  | { readonly kind: 'send'; readonly to: NodeId; readonly msg: PeerRequest }
  | { readonly kind: 'reply'; readonly to: NodeId; readonly msg: PeerReply }
  | { readonly kind: 'effect'; readonly id: number; readonly effect: Effect }
  | { readonly kind: 'notify'; readonly event: NotifyEvent; readonly detail: string };

export interface Reply {
  readonly to: NodeId;
  readonly msg: PeerReply;
}
export interface Send {
  readonly to: NodeId;
  readonly msg: PeerRequest;
}
export interface EffectStart {
  readonly id: number;
  readonly effect: Effect;
}
export interface Notification {
  readonly event: NotifyEvent;
  readonly detail: string;
}

/** A step's result: the new state, and what the shell does, group by group in the order of the fields. */
export interface StepOutput<State, Durable> {
  readonly state: State;
  /** 1. The durable state to write and fsync before anything else of the step; null: nothing to persist. */
  readonly persist: Durable | null;
  /** 2. A fence to start (the agent's fence slot), before everything but the persist; null: none. */
  readonly fence: EffectStart | null;
  /** 3. Answers to the request this step was the input of. */
  readonly replies: readonly Reply[];
  /** 4. Requests to peers; each answer comes back as a `reply` input. */
  readonly sends: readonly Send[];
  /** 5. Other effects to start; each result comes back as an `effect-done` input. */
  readonly effects: readonly EffectStart[];
  /** 6. Fire-and-forget notices to operators. */
  readonly notifications: readonly Notification[];
  /** One sentence saying what this step decided and why. */
  readonly reason: string;
  /**
   * Nothing in this step is news: it gave no reason of its own (the reason is the input's fallback
   * sentence) and persisted and notified nothing. Shells log routine steps at debug level and the
   * others at info, so log levels follow what the core decided, not the wording of its sentences.
   */
  readonly routine: boolean;
}

/** The groups of an output as one tagged list, in the order the executor runs them. */
export function actionsOf<Durable>(out: StepOutput<unknown, Durable>): Action<Durable>[] {
  return [
    ...(out.persist === null ? [] : [{ kind: 'persist' as const, state: out.persist }]),
    ...(out.fence === null ? [] : [{ kind: 'effect' as const, ...out.fence }]),
    ...out.replies.map((r) => ({ kind: 'reply' as const, ...r })),
    ...out.sends.map((m) => ({ kind: 'send' as const, ...m })),
    ...out.effects.map((e) => ({ kind: 'effect' as const, ...e })),
    ...out.notifications.map((n) => ({ kind: 'notify' as const, ...n })),
  ];
}

/** The groups of an output under construction (a step builder fills them in any order it decides). */
export class OutputGroups<Durable> {
  persist: Durable | null = null;
  fence: EffectStart | null = null;
  readonly replies: Reply[] = [];
  readonly sends: Send[] = [];
  readonly effects: EffectStart[] = [];
  readonly notifications: Notification[] = [];
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

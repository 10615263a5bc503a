// The decision core of a database node's agent: pure step functions from (state, input) to
// (state, ordered actions, one-sentence reason). Time arrives in every input as `nowMs`, read from
// the node's monotonic clock by the shell (or the simulator's drifting clock).
//
// Roles are not stored; they follow from the durable term record and PostgreSQL's observed state:
//   primaryOfTerm = self, PG in recovery        → promoting (run the promotion pipeline)
//   primaryOfTerm = self, PG writable, lease ok → primary
//   primaryOfTerm = self, no valid lease        → fenced (keep asking for the lease)
//   primaryOfTerm ≠ self, PG not in recovery    → demoted (fence, drop the VIP, rejoin)
//   primaryOfTerm ≠ self, PG in recovery        → standby (grant leases, watch the primary, campaign)

import type { Action, Effect, EffectKind, EffectResult, FenceMode, NotifyEvent, StepOutput } from './actions.js';
import { promotionBlocker, type PrimaryReport } from './eligibility.js';
import {
  PROTOCOL_VERSION,
  type AgentRole,
  type AgentStatus,
  type Envelope,
  type Handover,
  type LeaseReply,
  type LeaseRequest,
  type Lsn,
  type NodeId,
  type PeerReply,
  type PeerRequest,
  type PgSnapshot,
  type SyncUpdateReply,
  type VoteReply,
} from './messages.js';
import { isTermInRange, termAfter, termBoundReached } from './terms.js';
import { assumedPromise, decideLeaseRequest, decideRelease, grantLease, promiseLive, type LeasePromise } from './grantor.js';
import { leaseValidMs, promiseMs, type Timings } from './timings.js';

export interface AgentDurable {
  /** The highest term this node has seen (I2). */
  readonly term: number;
  /** The node that is primary for `term`, or null while unknown. */
  readonly primaryOfTerm: NodeId | null;
}

export interface AgentSettings {
  readonly cluster: string;
  readonly self: NodeId;
  readonly peer: NodeId;
  readonly witness: NodeId;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  readonly lagBytesMax: bigint;
  readonly fencing: FenceMode;
  /** How often a primary re-verifies that EC2 routes the VIP to it. */
  readonly vipVerifyEveryMs: number;
  /** The longest one EC2 call may take; the VIP is only moved while the lease outlives it. */
  readonly vipCallBudgetMs: number;
  /**
   * How long a node that may no longer hold the VIP keeps it on its interface while EC2 may still
   * route it here (until a check shows EC2 routes it elsewhere, at most this long).
   */
  readonly vipKeepWhileRoutedMs: number;
  /** A switchover that has not handed over within this time is aborted and the primary resumes. */
  readonly switchoverTimeoutMs: number;
}

export function defaultAgentSettings(base: Pick<AgentSettings, 'cluster' | 'self' | 'peer' | 'witness' | 'timings'> & Partial<AgentSettings>): AgentSettings {
  return {
    replication: 'sync',
    lagBytesMax: 16n * 1024n * 1024n,
    fencing: 'read-only',
    vipVerifyEveryMs: 10 * base.timings.heartbeatMs,
    vipCallBudgetMs: 1000,
    vipKeepWhileRoutedMs: 2 * base.timings.leaseMs,
    switchoverTimeoutMs: 4 * base.timings.leaseMs,
    ...base,
  };
}

interface InFlight {
  readonly id: number;
  readonly kind: EffectKind;
  readonly effect: Effect;
  readonly startedAtMs: number;
}

interface Switchover {
  readonly to: NodeId;
  readonly step: 'fencing' | 'catching-up';
  readonly startedAtMs: number;
  readonly finalLsn: Lsn | null;
}

export interface AgentState {
  readonly settings: AgentSettings;
  readonly durable: AgentDurable;
  readonly bootAtMs: number;
  readonly nowMs: number;
  /** Last observation of the local PostgreSQL. */
  readonly pg: PgSnapshot | null;
  /** Last status of the peer agent; null when the last check failed. */
  readonly peer: AgentStatus | null;
  readonly peerFailedChecks: number;
  readonly lastStreamingAtMs: number | null;
  /** Standby side: the last lease request of the primary (its LSN, timeline, sync standby). */
  readonly primaryReport: PrimaryReport | null;
  /** Standby side: the promise made with the last lease grant. */
  readonly promise: LeasePromise | null;
  /** The primary of this term released its lease (fast path) or handed the term over. */
  readonly releasedTerm: number | null;
  /** Primary side: lease validity on this node's clock. */
  readonly lease: { readonly term: number; readonly validUntilMs: number } | null;
  readonly leaseSends: readonly { readonly seq: number; readonly sentAtMs: number; readonly term: number }[];
  readonly nextSeq: number;
  readonly nextEffectId: number;
  /** The one pipeline effect in flight (promotion, VIP, rejoin, sync setting, unfence). */
  readonly inFlight: InFlight | null;
  readonly fenceInFlight: InFlight | null;
  /** PostgreSQL is fenced by us in this incarnation (read-only or stopped). */
  readonly fenced: boolean;
  readonly fenceReason: string | null;
  /** We must release our lease once fenced (fast path). */
  readonly releasePending: boolean;
  readonly receiverStopped: boolean;
  readonly syncCleared: boolean;
  readonly vip: 'unknown' | 'moved' | 'local' | 'held';
  readonly lastVipCheckAtMs: number;
  readonly vipDropped: boolean;
  /** Since when this node may not hold the VIP but has not dropped it from its interface yet. */
  readonly vipUnheldSinceMs: number | null;
  /** A VIP check since then showed EC2 routing the VIP to another node. */
  readonly vipRoutedElsewhere: boolean;
  readonly campaign: { readonly term: number; readonly sentAtMs: number } | null;
  readonly writeProbeFailures: number;
  /** Primary side: sync replication bookkeeping. */
  readonly sync: { readonly confirmedAtWitness: boolean; readonly lostSinceMs: number | null; readonly requestSentAtMs: number | null };
  readonly switchover: Switchover | null;
  readonly maintenance: boolean;
  /** An operator asked this node to promote without a vote (accept data loss). */
  readonly manualPromoteTerm: number | null;
  readonly lastStartAttemptAtMs: number;
  /** When we released our lease (fast path); we give the standby a full promise period to take over. */
  readonly releasedAtMs: number;
  /** Rejoins that failed in a row (rewind and base backup both), and when the last one did: the next waits longer. */
  readonly rejoinFailures: { readonly count: number; readonly lastAtMs: number };
  /** VIP steps (EC2 move, OS address, verification) that failed in a row; operators hear of it at vipErrorAfterFailures. */
  readonly vipFailures: number;
  /** The last reason each grantor gave for refusing our lease, until it grants again: said once, not every heartbeat. */
  readonly leaseRefusals: Readonly<Record<NodeId, string>>;
}

export type WriteProbe = 'ok' | 'stalled' | 'failed' | 'read-only' | 'not-run';

export type AgentInput =
  | { readonly kind: 'tick'; readonly nowMs: number; readonly pg: PgSnapshot; readonly writeProbe: WriteProbe; readonly peer: AgentStatus | null }
  /** `peerLeaseValidMs`: how long the sender counts a lease valid by its own timings (leaseLengthConflict). */
  | { readonly kind: 'request'; readonly nowMs: number; readonly msg: PeerRequest; readonly peerLeaseValidMs?: number | undefined }
  | { readonly kind: 'reply'; readonly nowMs: number; readonly msg: PeerReply }
  | { readonly kind: 'effect-done'; readonly nowMs: number; readonly result: EffectResult }
  /**
   * The shell noticed it did not run for a while (the host or process was paused, or its event loop
   * stalled): decide again with what is known — above all, fence if the lease lapsed meanwhile —
   * without waiting for fresh observations (DESIGN §4: on resume, check the lease before any action).
   */
  | { readonly kind: 'wake'; readonly nowMs: number; readonly pausedMs: number };

export type AgentOutput = StepOutput<AgentState, AgentDurable>;

/**
 * A fresh agent after (re)start: volatile knowledge is empty, and promises it may have made are
 * assumed live. `seqBase` must exceed every lease-request seq an earlier process of this node sent
 * (the shell derives it from a persisted boot counter), so grantors can order requests and releases
 * across restarts.
 */
export function bootAgent(settings: AgentSettings, durable: AgentDurable, nowMs: number, seqBase = 1): AgentState {
  return {
    settings,
    durable,
    bootAtMs: nowMs,
    nowMs,
    pg: null,
    peer: null,
    peerFailedChecks: 0,
    lastStreamingAtMs: null,
    primaryReport: null,
    // I6: a restarted node cannot know what it promised before the crash, so it behaves as if it had
    // promised the current primary a full lease at boot.
    promise: assumedPromise(durable, settings.self, nowMs, settings.timings),
    releasedTerm: null,
    lease: null,
    leaseSends: [],
    nextSeq: Math.max(1, seqBase),
    nextEffectId: 1,
    inFlight: null,
    fenceInFlight: null,
    fenced: false,
    fenceReason: null,
    releasePending: false,
    receiverStopped: false,
    syncCleared: false,
    vip: 'unknown',
    lastVipCheckAtMs: -Infinity,
    vipDropped: false,
    vipUnheldSinceMs: null,
    vipRoutedElsewhere: false,
    campaign: null,
    writeProbeFailures: 0,
    sync: { confirmedAtWitness: false, lostSinceMs: null, requestSentAtMs: null },
    switchover: null,
    maintenance: false,
    manualPromoteTerm: null,
    lastStartAttemptAtMs: -Infinity,
    releasedAtMs: -Infinity,
    rejoinFailures: { count: 0, lastAtMs: -Infinity },
    vipFailures: 0,
    leaseRefusals: {},
  };
}

/** Consecutive failures of VIP steps after which the agent reports `vip-error`. */
export const vipErrorAfterFailures = 3;

/**
 * How long a node waits after its n-th failed rejoin in a row before the next attempt: 1 s doubling
 * to at most 60 s. Each attempt may copy the whole database (the base-backup fallback), so a cause
 * that needs an operator (a wrong password, a full disk) must not turn into back-to-back copies.
 */
export function rejoinBackoffMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(60_000, 1000 * 2 ** (failures - 1));
}

// ---------------------------------------------------------------------------------------------
// A step under construction: collects actions and reasons, keeps persist first (rule 2).

class Step {
  s: AgentState;
  readonly actions: Action<AgentDurable>[] = [];
  readonly reasons: string[] = [];
  #persisted = false;
  constructor(s: AgentState) {
    this.s = s;
  }
  set(patch: Partial<AgentState>): void {
    this.s = { ...this.s, ...patch };
  }
  because(reason: string): void {
    this.reasons.push(reason);
  }
  /** Record the durable state to persist; only enterTerm calls it, so every new term resets alike. */
  persist(durable: AgentDurable): void {
    this.s = { ...this.s, durable };
    // Rule 2: one persist, first in the list, carrying the newest durable state.
    if (this.#persisted) {
      this.actions[0] = { kind: 'persist', state: durable };
    } else {
      this.actions.unshift({ kind: 'persist', state: durable });
      this.#persisted = true;
    }
  }
  send(to: NodeId, msg: PeerRequest): void {
    this.actions.push({ kind: 'send', to, msg });
  }
  reply(to: NodeId, msg: PeerReply): void {
    this.actions.push({ kind: 'reply', to, msg });
  }
  notify(event: NotifyEvent, detail: string): void {
    this.actions.push({ kind: 'notify', event, detail });
  }
  effect(effect: Effect, slot: 'pipeline' | 'fence' = 'pipeline'): void {
    const id = this.s.nextEffectId;
    const inFlight: InFlight = { id, kind: effect.kind, effect, startedAtMs: this.s.nowMs };
    this.set(slot === 'fence' ? { nextEffectId: id + 1, fenceInFlight: inFlight } : { nextEffectId: id + 1, inFlight });
    this.actions.push({ kind: 'effect', id, effect });
  }
  envelope(): Envelope {
    return { v: PROTOCOL_VERSION, cluster: this.s.settings.cluster, term: this.s.durable.term, from: this.s.settings.self };
  }
  output(fallback: string): AgentOutput {
    return { state: this.s, actions: this.actions, reason: this.reasons.length > 0 ? this.reasons.join('; ') : fallback };
  }
}

// ---------------------------------------------------------------------------------------------
// Derived facts.

export function isPrimaryOfTerm(s: AgentState): boolean {
  return s.durable.primaryOfTerm === s.settings.self;
}

export function leaseRemainingMs(s: AgentState): number {
  if (s.lease === null || s.lease.term !== s.durable.term || !isPrimaryOfTerm(s)) return 0;
  return Math.max(0, s.lease.validUntilMs - s.nowMs);
}

/** Boot grace of a restarted primary: one lease round trip before it fences for want of a lease. */
function inBootGrace(s: AgentState): boolean {
  const t = s.settings.timings;
  return s.nowMs < s.bootAtMs + t.heartbeatMs + t.requestTimeoutMs;
}

export function agentRole(s: AgentState): AgentRole {
  const pg = s.pg;
  if (pg === null) return 'starting';
  if (isPrimaryOfTerm(s)) {
    if (pg.inRecovery) return 'promoting';
    if (s.fenced || !pg.writable || leaseRemainingMs(s) === 0) return 'fenced';
    return 'primary';
  }
  if (s.inFlight?.kind === 'rejoin') return 'rejoining';
  if (!pg.inRecovery && pg.running) return 'demoted';
  if (s.campaign !== null) return 'candidate';
  return 'standby';
}

function blocker(s: AgentState): string | null {
  return promotionBlocker({
    self: s.settings.self,
    nowMs: s.nowMs,
    timings: s.settings.timings,
    replication: s.settings.replication,
    lagBytesMax: s.settings.lagBytesMax,
    pg: s.pg,
    lastStreamingAtMs: s.lastStreamingAtMs,
    primaryReport: s.primaryReport,
    maintenance: s.maintenance,
  });
}

const downPg: PgSnapshot = {
  running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n,
  streaming: false, syncStandby: null, standbyInSync: false,
};

/** The status this agent serves on GET /status. */
export function agentStatus(s: AgentState): AgentStatus {
  return {
    v: PROTOCOL_VERSION,
    cluster: s.settings.cluster,
    term: s.durable.term,
    from: s.settings.self,
    primaryOfTerm: s.durable.primaryOfTerm,
    role: agentRole(s),
    pg: s.pg ?? downPg,
    leaseRemainingMs: leaseRemainingMs(s),
    promotionBlocker: blocker(s),
    maintenance: s.maintenance,
  };
}

/** Whether a status shows a primary that is alive and serving writes. */
function showsHealthyPrimary(st: AgentStatus): boolean {
  return (st.role === 'primary' || st.role === 'promoting') && st.pg.running && (st.pg.writable || st.pg.inRecovery);
}

// ---------------------------------------------------------------------------------------------
// The step function.

export function stepAgent(state: AgentState, input: AgentInput): AgentOutput {
  const st = new Step({ ...state, nowMs: Math.max(state.nowMs, input.nowMs) });
  switch (input.kind) {
    case 'tick':
      onTick(st, input.pg, input.writeProbe, input.peer);
      return st.output('nothing to do');
    case 'request':
      onRequest(st, input.msg, input.peerLeaseValidMs);
      return st.output(`answered ${input.msg.kind} from ${input.msg.from}`);
    case 'reply':
      onReply(st, input.msg);
      evaluate(st);
      return st.output(`noted ${input.msg.kind} from ${input.msg.from}`);
    case 'effect-done':
      onEffectDone(st, input.result);
      evaluate(st);
      return st.output('effect finished');
    case 'wake':
      evaluate(st);
      return st.output(`resumed after ${Math.round(input.pausedMs)} ms without running`);
  }
}

/**
 * The one way into a term, and the one writer of the durable record: persists `durable` and, when
 * its term is above the current one, drops everything that belonged to the old term. Every path
 * goes through here — a term learned (adoptTerm), won by vote (onVoteReply), handed over in a
 * switchover (progressSwitchover), received in a handover or forced failover (adoptTerm) — so none
 * can forget a piece:
 * - the sync confirmation: the witness forgets the sync-eligible standby at every new term, so a
 *   primary of a new term must confirm it again; one carried over would never be sent again, and the
 *   next failover would be refused for good;
 * - the old term's lease, its release (done or pending: a pending one would block the primary's
 *   logic of the new term for good) and the count of failed write probes (a standby never probes,
 *   so an old count would fence a freshly promoted primary at once);
 * - a campaign and a switchover, which both aimed at the old term.
 * Callers add what is theirs (a won vote's first lease, a handover's dropped promise).
 */
function enterTerm(st: Step, durable: AgentDurable): void {
  if (durable.term > st.s.durable.term) {
    st.set({
      sync: { confirmedAtWitness: false, lostSinceMs: null, requestSentAtMs: null },
      releasePending: false,
      writeProbeFailures: 0,
      lease: null,
      releasedTerm: null,
      campaign: null,
      switchover: null,
    });
  }
  st.persist(durable);
}

/**
 * Learn a higher term (or the primary of the current one). Persists before anything acts on it.
 * Callers pass only terms learned legitimately: from the witness (the voter), from the peer's
 * status or replies, or a handover; never from a lease request (see onRequest).
 */
function adoptTerm(st: Step, term: number, primaryOfTerm: NodeId | null, source: NodeId): void {
  const d = st.s.durable;
  // The wire refuses such terms already; this keeps the bound on every path into the durable state.
  if (term < d.term || !isTermInRange(term)) return;
  if (term === d.term && (d.primaryOfTerm !== null || primaryOfTerm === null)) return;
  enterTerm(st, { term, primaryOfTerm });
  // Learning the current term's primary ends a campaign or switchover in it too.
  const patch: { -readonly [K in keyof AgentState]?: AgentState[K] } = { campaign: null, switchover: null };
  // The holder of our promise has itself moved on: its lease is void (handover, or it learned it lost).
  if (st.s.promise !== null && source === st.s.promise.holder) patch.promise = null;
  st.set(patch);
  st.because(`learned term ${term} (primary ${primaryOfTerm ?? 'unknown'}) from ${source}`);
}

function onTick(st: Step, pg: PgSnapshot, writeProbe: WriteProbe, peer: AgentStatus | null): void {
  const s = st.s;
  const peerFailed = peerCheckFailed(s, pg, peer);
  st.set({
    pg,
    peer,
    peerFailedChecks: peerFailed ? s.peerFailedChecks + 1 : 0,
    lastStreamingAtMs: pg.streaming ? s.nowMs : s.lastStreamingAtMs,
    // A probe still in flight ('not-run') neither counts nor clears: a stalled probe outlives ticks.
    writeProbeFailures: writeProbe === 'stalled' || writeProbe === 'failed' || (!pg.running && isPrimaryOfTerm(s))
      ? s.writeProbeFailures + 1
      : writeProbe === 'not-run' && pg.running ? s.writeProbeFailures : 0,
  });
  if (peerFailed && st.s.peerFailedChecks === s.settings.timings.failureChecks) {
    st.notify('failure-detected', `${s.settings.peer} failed ${st.s.peerFailedChecks} consecutive checks`);
  }
  if (peer !== null) {
    if (peer.term > st.s.durable.term || (peer.term === st.s.durable.term && st.s.durable.primaryOfTerm === null)) {
      adoptTerm(st, peer.term, peer.primaryOfTerm, peer.from);
    }
    if (!isPrimaryOfTerm(st.s) && peer.term === st.s.durable.term) st.set({ maintenance: peer.maintenance });
  }
  evaluate(st);
  if (isPrimaryOfTerm(st.s) && st.s.switchover === null) sendLeaseRequests(st);
}

/** One check of the peer as a primary failed: judged on two signals, never on the agent alone. */
function peerCheckFailed(s: AgentState, pg: PgSnapshot, peer: AgentStatus | null): boolean {
  if (isPrimaryOfTerm(s) || s.durable.primaryOfTerm !== s.settings.peer) return false;
  // A reachable agent is believed about its primary, unless WAL still streams from a writable server.
  if (peer !== null) return !(showsHealthyPrimary(peer) || (pg.streaming && peer.pg.running && peer.pg.writable));
  // Agent unreachable: only a failure if PostgreSQL stopped streaming to us too.
  return !pg.streaming;
}

/** Decide what to do now, given everything known. Called after every input. */
function evaluate(st: Step): void {
  checkLease(st);
  if (isPrimaryOfTerm(st.s)) {
    actAsPrimary(st);
  } else {
    actAsNonPrimary(st);
  }
}

/** Rule one of the primary: a lapsed lease fences before anything else (DESIGN §4). */
function checkLease(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return;
  // Term 0: the cluster has never elected anyone; the server's writability predates pgvip.
  if (s.durable.term === 0) return;
  const primary = isPrimaryOfTerm(s);
  // A PostgreSQL that is not in recovery on a node that is not primary of the term must never write.
  const mustBeFenced = primary ? leaseRemainingMs(s) === 0 && !inBootGrace(s) : true;
  if (pg.running && !pg.inRecovery && mustBeFenced && pg.writable) {
    const why = primary ? `lease for term ${s.durable.term} lapsed` : `term ${s.durable.term} belongs to ${s.durable.primaryOfTerm ?? 'another node'}`;
    fence(st, why);
  }
  if (mayHoldVip(s)) {
    if (s.vipUnheldSinceMs !== null) st.set({ vipUnheldSinceMs: null, vipRoutedElsewhere: false });
  } else if (!st.s.vipDropped && st.s.fenceInFlight === null && st.s.inFlight === null && s.switchover === null) {
    releaseLocalVip(st);
  }
}

/**
 * Only a node that may write keeps the VIP for good: once fenced, released or deposed it removes it
 * from its interface (EC2 routes it to the new primary). A promoting node and a primary within its
 * lease or boot grace may hold it.
 */
function mayHoldVip(s: AgentState): boolean {
  if (!isPrimaryOfTerm(s) || s.fenced || s.releasedTerm === s.durable.term || s.pg === null) return false;
  return s.pg.inRecovery || leaseRemainingMs(s) > 0 || inBootGrace(s);
}

/**
 * A node that may no longer hold the VIP removes it from its interface — but not while EC2 may still
 * route it here: until the new primary has taken it, clients reaching this node are better served by
 * a refusal (PostgreSQL down: connection refused; fenced: a read-only error), on which they retry at
 * once, than by an address that is gone, which silently drops their connection attempts and costs
 * each a TCP SYN retransmission (1 s, then 2 s...). Writes are unaffected: this node is fenced or
 * down already. So it checks where EC2 routes the VIP, every heartbeat, and drops it as soon as EC2
 * routes it elsewhere, or after vipKeepWhileRoutedMs in any case (EC2 unreachable from here).
 */
function releaseLocalVip(st: Step): void {
  const s = st.s;
  const since = s.vipUnheldSinceMs ?? s.nowMs;
  if (s.vipUnheldSinceMs === null) st.set({ vipUnheldSinceMs: since, vipRoutedElsewhere: false });
  if (st.s.vipRoutedElsewhere || s.nowMs - since >= s.settings.vipKeepWhileRoutedMs) {
    st.effect({ kind: 'drop-vip-local' });
    st.set({ vip: 'unknown', vipUnheldSinceMs: null, vipRoutedElsewhere: false });
    return;
  }
  if (s.nowMs - s.lastVipCheckAtMs >= s.settings.timings.heartbeatMs) {
    st.effect({ kind: 'verify-vip' });
    st.set({ lastVipCheckAtMs: s.nowMs });
  }
}

function fence(st: Step, why: string): void {
  if (st.s.fenceInFlight !== null) return;
  st.effect({ kind: 'fence', mode: st.s.settings.fencing }, 'fence');
  st.set({ fenceReason: why, vipDropped: false });
  st.because(`fencing: ${why}`);
}

function sendLeaseRequests(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  // No renewals without a running server: its report (timeline, LSN) would be meaningless.
  if (pg === null || !pg.running || s.releasePending || s.releasedTerm === s.durable.term) return;
  const seq = s.nextSeq;
  const msg: LeaseRequest = {
    ...st.envelope(),
    kind: 'lease-request',
    seq,
    lsn: pg.lsn,
    timeline: pg.timeline,
    syncStandby: pg.syncStandby,
  };
  const sends = [...s.leaseSends, { seq, sentAtMs: s.nowMs, term: s.durable.term }];
  st.set({ nextSeq: seq + 1, leaseSends: sends.length > 16 ? sends.slice(-16) : sends });
  st.send(s.settings.witness, msg);
  st.send(s.settings.peer, msg);
}

// --- primary --------------------------------------------------------------------------------

function actAsPrimary(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return;
  const t = s.settings.timings;

  // Fast path: our own PostgreSQL is dead (one check: a refused connection is definitive) or cannot
  // write (consecutive stalled probes). Fence, then release the lease.
  const pgGone = !pg.running && !pg.inRecovery && s.writeProbeFailures >= 1;
  if (!pg.inRecovery && (pgGone || s.writeProbeFailures >= t.writeProbeFailures) && !s.releasePending && s.releasedTerm !== s.durable.term) {
    if (!s.fenced) fence(st, `postgresql failed ${s.writeProbeFailures} write probes`);
    st.set({ releasePending: true });
    st.because('giving up the lease: local postgresql cannot write');
    return maybeRelease(st);
  }
  if (s.releasePending) return maybeRelease(st);
  const standbysTurn = s.nowMs - s.releasedAtMs < promiseMs(t);
  if (s.releasedTerm === s.durable.term && s.writeProbeFailures === 0 && pg.running && !pg.inRecovery && !standbysTurn) {
    // PostgreSQL recovered before anyone took over: ask for the lease again. Safe: a grantor that has
    // voted for a newer term refuses, and one that grants again promises again.
    st.set({ releasedTerm: null });
    st.because(`postgresql recovered; asking for the lease for term ${s.durable.term} again`);
  }

  if (pg.inRecovery) return promotionPipeline(st);
  if (!pg.running) return restartFencedPostgres(st);

  if (s.switchover !== null) return progressSwitchover(st);

  const leaseOk = leaseRemainingMs(s) > 0;
  if (!leaseOk) return;
  if ((s.fenced || !pg.writable) && s.fenceInFlight === null && s.inFlight === null && s.releasedTerm !== s.durable.term) {
    // The lease came back in the same term: nobody else can have been elected, so writes may resume.
    st.effect({ kind: 'unfence' });
    st.because(`lease regained for term ${s.durable.term}: unfencing`);
    return;
  }
  if (s.fenced || !pg.writable) return;
  if (s.inFlight === null) {
    if (!vipPipeline(st)) manageSync(st);
  }
}

/**
 * Our PostgreSQL is down after we fenced and released (crash, or a stop on a stalled disk). Start it
 * again: it comes back read-only (the fence is in its configuration), and either someone else took
 * over (we rejoin) or nobody did and we regain the lease and unfence.
 */
function restartFencedPostgres(st: Step): void {
  const s = st.s;
  if (!s.fenced || s.inFlight !== null || s.fenceInFlight !== null || s.releasedTerm !== s.durable.term) return;
  // The standby gets a full promise period to take over before we bring our server back.
  if (s.nowMs - s.releasedAtMs < promiseMs(s.settings.timings)) return;
  if (s.nowMs - s.lastStartAttemptAtMs < 2 * s.settings.timings.heartbeatMs) return;
  st.set({ lastStartAttemptAtMs: s.nowMs });
  st.effect({ kind: 'start-postgres' });
  st.because('starting the fenced postgresql again');
}

function maybeRelease(st: Step): void {
  const s = st.s;
  if (s.fenceInFlight !== null) return;
  // Rule: fence BEFORE release. A fence that failed (a server refusing sessions, a stop that timed out)
  // is tried again; otherwise the lease would be neither released nor renewed, and the standby would
  // have to wait for it to run out.
  if (!s.fenced) return fence(st, s.fenceReason ?? 'local postgresql cannot write');
  const msg = { ...st.envelope(), kind: 'lease-release' as const, reason: s.fenceReason ?? 'fenced', leaseSeq: s.nextSeq - 1 };
  st.send(s.settings.witness, msg);
  st.send(s.settings.peer, msg);
  st.set({ releasePending: false, releasedTerm: s.durable.term, lease: null, releasedAtMs: s.nowMs });
  st.notify('lease-released', `released lease for term ${s.durable.term}: ${msg.reason}`);
  st.because(`released the lease for term ${s.durable.term} after fencing`);
}

/** Standby → primary in the current term: stop WAL receiver → clear sync names → promote. */
function promotionPipeline(st: Step): void {
  const s = st.s;
  if (s.inFlight !== null || s.fenceInFlight !== null) return;
  if (promiseLive(s) && s.manualPromoteTerm !== s.durable.term) {
    st.because(`won term ${s.durable.term} but waiting out the promise to ${s.promise?.holder} (${Math.round((s.promise?.untilMs ?? 0) - s.nowMs)} ms left)`);
    return;
  }
  if (!s.receiverStopped) {
    st.effect({ kind: 'stop-wal-receiver' });
    st.because(`promoting for term ${s.durable.term}: stopping the WAL receiver`);
    return;
  }
  if (!s.syncCleared) {
    st.effect({ kind: 'set-sync-standby', standby: null });
    return;
  }
  st.effect({ kind: 'promote' });
  st.because(`promoting for term ${s.durable.term}`);
}

/** Returns true when it started a VIP step. */
function vipPipeline(st: Step): boolean {
  const s = st.s;
  switch (s.vip) {
    case 'unknown':
      if (s.nowMs - s.lastVipCheckAtMs < s.settings.timings.heartbeatMs) return false;
      st.effect({ kind: 'verify-vip' });
      st.set({ lastVipCheckAtMs: s.nowMs });
      return true;
    case 'moved':
      st.effect({ kind: 'add-vip-local' });
      return true;
    case 'local':
      st.effect({ kind: 'verify-vip' });
      st.set({ lastVipCheckAtMs: s.nowMs });
      return true;
    case 'held':
      if (s.nowMs - s.lastVipCheckAtMs >= s.settings.vipVerifyEveryMs) {
        st.effect({ kind: 'verify-vip' });
        st.set({ lastVipCheckAtMs: s.nowMs });
        return true;
      }
      return false;
  }
}

function moveVip(st: Step): void {
  const s = st.s;
  const budget = leaseRemainingMs(s) - s.settings.timings.leaseMarginMs;
  if (budget < s.settings.vipCallBudgetMs) {
    st.because('VIP move waits for a fresher lease');
    return;
  }
  st.effect({ kind: 'move-vip-cloud', term: s.durable.term, budgetMs: s.settings.vipCallBudgetMs });
  st.because(`moving the VIP to ${s.settings.self} for term ${s.durable.term}`);
}

function manageSync(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null || s.settings.replication !== 'sync') return;
  const t = s.settings.timings;
  const peer = s.settings.peer;
  const peerStreaming = s.peer !== null && s.peer.term === s.durable.term && s.peer.pg.inRecovery && s.peer.pg.streaming;
  if (pg.syncStandby === null) {
    // Turning sync on is always safe (it only makes commits wait); do it once the standby streams.
    if (peerStreaming) st.effect({ kind: 'set-sync-standby', standby: peer });
    return;
  }
  if (pg.standbyInSync) {
    st.set({ sync: { ...s.sync, lostSinceMs: null } });
    if (!s.sync.confirmedAtWitness && (s.sync.requestSentAtMs === null || s.nowMs - s.sync.requestSentAtMs >= t.heartbeatMs)) {
      st.send(s.settings.witness, { ...st.envelope(), kind: 'sync-update', standby: peer, change: 'restore' });
      st.set({ sync: { ...st.s.sync, requestSentAtMs: s.nowMs } });
    }
    return;
  }
  const lostSince = s.sync.lostSinceMs ?? s.nowMs;
  st.set({ sync: { ...s.sync, lostSinceMs: lostSince } });
  if (s.nowMs - lostSince >= t.syncDegradeAfterMs && (s.sync.requestSentAtMs === null || s.nowMs - s.sync.requestSentAtMs >= t.heartbeatMs)) {
    st.send(s.settings.witness, { ...st.envelope(), kind: 'sync-update', standby: peer, change: 'degrade' });
    st.set({ sync: { ...st.s.sync, requestSentAtMs: s.nowMs } });
    st.because(`asking the witness to degrade to async: ${peer} not in sync for ${Math.round(s.nowMs - lostSince)} ms`);
  }
}

/** Why the peer cannot take over in a planned switchover right now, or null. */
function switchoverBlocker(s: AgentState): string | null {
  const peer = s.peer;
  const pg = s.pg;
  if (peer === null) return 'unreachable';
  if (pg === null) return 'local postgresql not observed yet';
  if (!peer.pg.inRecovery || !peer.pg.streaming) return 'not streaming';
  if (peer.pg.timeline !== pg.timeline) return `on timeline ${peer.pg.timeline}, primary on ${pg.timeline}`;
  if (s.settings.replication === 'sync') {
    if (pg.syncStandby !== s.settings.peer || !pg.standbyInSync) return 'not the synchronous standby yet';
  } else {
    const lag = pg.lsn > peer.pg.lsn ? pg.lsn - peer.pg.lsn : 0n;
    if (lag > s.settings.lagBytesMax) return `lag ${lag} bytes exceeds lagBytesMax`;
  }
  return null;
}

function progressSwitchover(st: Step): void {
  const s = st.s;
  const sw = s.switchover;
  if (sw === null) return;
  if (s.nowMs - sw.startedAtMs > s.settings.switchoverTimeoutMs) {
    st.set({ switchover: null });
    st.because(`switchover to ${sw.to} timed out; resuming as primary`);
    st.notify('switchover', `switchover to ${sw.to} aborted after ${s.settings.switchoverTimeoutMs} ms`);
    return;
  }
  if (sw.step !== 'catching-up' || sw.finalLsn === null) return;
  const peer = s.peer;
  if (peer === null || peer.term !== s.durable.term || !peer.pg.inRecovery || peer.pg.replayLsn < sw.finalLsn) return;
  // The standby has replayed everything we ever wrote: hand the next term over (old primary + new
  // primary form the majority for it; the witness learns it from their statuses: a lease request teaches no term).
  const term = s.durable.term + 1;
  enterTerm(st, { term, primaryOfTerm: sw.to });
  const msg: Handover = { ...st.envelope(), kind: 'handover', to: sw.to, finalLsn: sw.finalLsn, timeline: s.pg?.timeline ?? 0 };
  st.send(sw.to, msg);
  st.notify('switchover', `handed term ${term} over to ${sw.to} at ${sw.finalLsn}`);
  st.because(`switchover: ${sw.to} replayed our final LSN; handing over term ${term}`);
}

// --- standby / demoted ----------------------------------------------------------------------

function actAsNonPrimary(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return;
  if (s.durable.term === 0) return bootstrap(st);
  if (!pg.inRecovery) return rejoinIfPossible(st);
  if (s.inFlight !== null && s.inFlight.kind === 'rejoin') return;
  maybeCampaign(st);
}

/**
 * First start of a cluster: the node whose PostgreSQL already runs as a primary asks the witness for
 * term 1; the standby waits to learn it. The witness grants term 1 once, to one node.
 */
function bootstrap(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null || !pg.running || pg.inRecovery) return;
  const t = s.settings.timings;
  if (s.campaign !== null && s.nowMs - s.campaign.sentAtMs < t.requestTimeoutMs + t.heartbeatMs) return;
  st.set({ campaign: { term: 1, sentAtMs: s.nowMs } });
  st.send(s.settings.witness, { ...st.envelope(), term: 1, kind: 'vote-request', lastTerm: 0, lsn: pg.lsn, timeline: pg.timeline });
  st.because('bootstrapping the cluster: asking the witness for term 1');
}

function rejoinIfPossible(st: Step): void {
  const s = st.s;
  if (s.fenceInFlight !== null || s.inFlight !== null) return;
  if (s.pg?.running && s.pg.writable && !s.fenced) return; // checkLease is fencing it
  const primary = s.durable.primaryOfTerm;
  const peer = s.peer;
  if (primary === null || primary !== s.settings.peer || peer === null) return;
  // Rewind only from a primary that has finished promoting in our term.
  if (peer.term !== s.durable.term || peer.pg.inRecovery || !peer.pg.running) return;
  if (s.nowMs - s.rejoinFailures.lastAtMs < rejoinBackoffMs(s.rejoinFailures.count)) return;
  st.effect({ kind: 'rejoin', primary });
  st.because(`rejoining as a standby of ${primary} (term ${s.durable.term})`);
}

function maybeCampaign(st: Step): void {
  const s = st.s;
  const t = s.settings.timings;
  // When the current term's primary is unknown, we may have won it and lost the reply: ask for it again.
  const nextTerm = s.durable.primaryOfTerm === null && s.durable.term > 0 ? s.durable.term : termAfter(s.durable.term);
  if (nextTerm === null) return;
  if (s.campaign !== null) {
    if (s.nowMs - s.campaign.sentAtMs < t.requestTimeoutMs + t.heartbeatMs) return;
    st.set({ campaign: null }); // no answer: try again below
  }
  const primaryReleased = s.releasedTerm === s.durable.term;
  // Asking again for the current term whose primary we do not know is only a question: the witness
  // grants it solely if it already voted for us in that term (its reply was lost), and otherwise
  // refuses and names the primary. It needs neither a failed primary nor eligibility (both were
  // judged when the vote was first asked for) — without it, a node that won a vote whose reply was
  // lost, and then learned the term without its primary, waited forever for a primary nobody named.
  const askingAgain = nextTerm === s.durable.term;
  const primaryFailed = primaryReleased || s.peerFailedChecks >= t.failureChecks;
  if (!primaryFailed && !askingAgain) return;
  if (s.durable.primaryOfTerm !== s.settings.peer && s.durable.primaryOfTerm !== null) return;
  if (promiseLive(s)) return; // includes the promise a restarted node assumes it made (bootAgent)
  const why = askingAgain ? null : blocker(s);
  if (why !== null) {
    if (s.peerFailedChecks === t.failureChecks) st.because(`primary failed but this node may not promote: ${why}`);
    return;
  }
  st.set({ campaign: { term: nextTerm, sentAtMs: s.nowMs } });
  st.send(s.settings.witness, {
    ...st.envelope(),
    term: nextTerm,
    kind: 'vote-request',
    lastTerm: nextTerm === s.durable.term ? s.durable.term - 1 : s.durable.term,
    lsn: s.pg?.lsn ?? 0n,
    timeline: s.pg?.timeline ?? 0,
  });
  st.notify('vote-requested', `asked ${s.settings.witness} for term ${nextTerm}`);
  st.because(`asking for the vote for term ${nextTerm}: ${primaryReleased ? 'primary released its lease' : `${s.settings.peer} failed ${s.peerFailedChecks} checks`}`);
}

// --- incoming requests ------------------------------------------------------------------------

function onRequest(st: Step, msg: PeerRequest, peerLeaseValidMs: number | undefined): void {
  const s = st.s;
  const deny = (reason: string) => st.because(`denied ${msg.kind} from ${msg.from}: ${reason}`);
  switch (msg.kind) {
    case 'lease-request': {
      const reply = (granted: boolean, reason: string): void => {
        const r: LeaseReply = { ...st.envelope(), kind: 'lease-reply', seq: msg.seq, granted, reason, maintenance: st.s.maintenance, primaryOfTerm: st.s.durable.primaryOfTerm };
        st.reply(msg.from, r);
      };
      if (msg.from !== s.settings.peer) { deny('not the peer'); return reply(false, `${msg.from} is not the peer of ${s.settings.self}; only the peer may hold a lease from it`); }
      // The grantor's rules (grantor.ts), with the standby's own refusals: it grants nothing while
      // it campaigns for the next term, nor once its PostgreSQL is a writable primary.
      const verdict = decideLeaseRequest(s.durable, msg, s.settings.timings, peerLeaseValidMs, {
        adopt: () => adoptTerm(st, msg.term, msg.from, msg.from),
        durable: () => st.s.durable,
        localProblem: () => {
          if (st.s.campaign !== null) return 'campaigning for the next term';
          if (st.s.pg !== null && !st.s.pg.inRecovery && st.s.pg.writable) return 'this node is not a standby';
          return null;
        },
      });
      if (!verdict.granted) {
        if (verdict.check === 'stale') deny('stale term');
        else if (verdict.check === 'holder') deny(`term belongs to ${st.s.durable.primaryOfTerm}`);
        else if (verdict.check !== 'local') deny(verdict.reason);
        return reply(false, verdict.reason);
      }
      st.set({ ...grantLease(st.s, st.s.durable.term, msg, s.settings.timings), peerFailedChecks: 0 });
      return reply(true, 'granted');
    }
    case 'lease-release': {
      const release = decideRelease(s, s.durable, msg);
      if (release.kind === 'stale') st.because(`ignored a release from ${msg.from} older than the lease it granted since`);
      if (release.kind === 'released') {
        st.set(release.patch);
        st.because(`${msg.from} released its lease for term ${msg.term}: ${msg.reason}`);
      }
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'noted' });
      evaluate(st);
      return;
    }
    case 'handover': {
      const repeat = msg.term === s.durable.term && isPrimaryOfTerm(s);
      if (msg.to !== s.settings.self || (msg.term <= s.durable.term && !repeat)) {
        st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: 'stale or misaddressed handover' });
        return;
      }
      // Only the primary of our term hands over, and only the term right after it: it persisted that
      // term itself, one above the term we share (it checked our term before it handed over).
      if (!repeat && (msg.from !== s.durable.primaryOfTerm || msg.term !== termAfter(s.durable.term))) {
        const why = `a handover of term ${msg.term} from ${msg.from}, but only the primary of term ${s.durable.term} (${s.durable.primaryOfTerm ?? 'unknown'}) may hand over, and only term ${s.durable.term + 1}`;
        deny(why);
        st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: why });
        return;
      }
      if (s.pg !== null && s.pg.replayLsn < msg.finalLsn) {
        st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: `replayed ${s.pg.replayLsn} < final ${msg.finalLsn}` });
        return;
      }
      adoptTerm(st, msg.term, s.settings.self, msg.from);
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: `taking over term ${msg.term}` });
      st.notify('switchover', `received term ${msg.term} from ${msg.from}`);
      evaluate(st);
      // A handed-over term comes without a lease (a vote is a grant; a handover is not): ask for one
      // now rather than at the next heartbeat, or the promotion may finish first and the new primary
      // would fence itself for want of a lease, adding a lease round to the switchover's write gap.
      if (isPrimaryOfTerm(st.s) && st.s.switchover === null) sendLeaseRequests(st);
      return;
    }
    case 'switchover-request': {
      const reject = (reason: string) => st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason });
      if (msg.term < s.durable.term) return reject('stale term');
      if (!isPrimaryOfTerm(s) || agentRole(s) !== 'primary') return reject('this node is not the primary');
      if (termAfter(s.durable.term) === null) return reject(termBoundReached);
      if (msg.to !== s.settings.peer) return reject(`${msg.to} is not the standby`);
      if (s.switchover !== null) return reject('a switchover is already running');
      // The primary judges readiness from its own replication view, which is authoritative for sync.
      const notReady = switchoverBlocker(s);
      if (notReady !== null) return reject(`standby not ready: ${notReady}`);
      st.set({ switchover: { to: msg.to, step: 'fencing', startedAtMs: s.nowMs, finalLsn: null } });
      fence(st, `switchover to ${msg.to}`);
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'switchover started' });
      return;
    }
    case 'manual-promote': {
      // The forced failover is the witness's vote (it persisted it before sending): from anyone else
      // it would be a term no vote created.
      if (msg.from !== s.settings.witness) {
        st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: `a forced promotion comes from the witness ${s.settings.witness}, not ${msg.from}` });
        return;
      }
      if (msg.term <= s.durable.term) {
        st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: `term ${msg.term} is not above ${s.durable.term}` });
        return;
      }
      adoptTerm(st, msg.term, s.settings.self, msg.from);
      st.set({ manualPromoteTerm: msg.term, promise: null });
      st.notify('manual-failover', `${msg.requestedBy} forced promotion for term ${msg.term}, accepting data loss`);
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'promoting (data loss accepted)' });
      evaluate(st);
      return;
    }
    case 'vote-request':
    case 'sync-update':
      // Agents do not vote or arbitrate sync; only the witness does.
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason: `${msg.kind} goes to the witness` });
      return;
  }
}

// --- replies to our own requests ----------------------------------------------------------------

function onReply(st: Step, msg: PeerReply): void {
  const s = st.s;
  // A granted vote carries the new term itself: it is handled by onVoteReply, not adopted blindly.
  const wonVote = msg.kind === 'vote-reply' && msg.granted && s.campaign !== null && msg.term === s.campaign.term;
  if (msg.term >= s.durable.term && !wonVote && msg.kind !== 'ack' && msg.kind !== 'sync-update-reply') {
    adoptTerm(st, msg.term, msg.primaryOfTerm, msg.from);
  } else if (msg.term > s.durable.term && !wonVote) {
    adoptTerm(st, msg.term, null, msg.from);
  }
  switch (msg.kind) {
    case 'lease-reply':
      return onLeaseReply(st, msg);
    case 'vote-reply':
      return onVoteReply(st, msg);
    case 'sync-update-reply':
      return onSyncReply(st, msg);
    case 'ack':
      return;
  }
}

function onLeaseReply(st: Step, msg: LeaseReply): void {
  const s = st.s;
  if (msg.from === s.settings.witness) st.set({ maintenance: msg.maintenance });
  const sent = s.leaseSends.find((x) => x.seq === msg.seq);
  const lastRefusal = s.leaseRefusals[msg.from];
  if (!msg.granted && sent !== undefined && sent.term === s.durable.term && lastRefusal !== msg.reason) {
    st.set({ leaseRefusals: { ...s.leaseRefusals, [msg.from]: msg.reason } });
    st.because(`${msg.from} refused the lease for term ${s.durable.term}: ${msg.reason}`);
  } else if (msg.granted && lastRefusal !== undefined) {
    const { [msg.from]: _granted, ...others } = s.leaseRefusals;
    st.set({ leaseRefusals: others });
  }
  if (!msg.granted || sent === undefined || sent.term !== s.durable.term || !isPrimaryOfTerm(s)) return;
  // Counted from when the request was SENT: the grantor's promise started later than that.
  const validUntilMs = sent.sentAtMs + leaseValidMs(s.settings.timings);
  if (s.lease === null || s.lease.term !== s.durable.term || validUntilMs > s.lease.validUntilMs) {
    st.set({ lease: { term: s.durable.term, validUntilMs } });
  }
}

function onVoteReply(st: Step, msg: VoteReply): void {
  const s = st.s;
  const c = s.campaign;
  if (c === null || msg.term !== c.term) return;
  st.set({ campaign: null });
  if (!msg.granted) {
    st.because(`vote for term ${c.term} denied: ${msg.reason}`);
    return;
  }
  enterTerm(st, { term: c.term, primaryOfTerm: s.settings.self });
  // The vote is also the witness's first lease grant for the new term, counted from the request.
  st.set({
    lease: { term: c.term, validUntilMs: c.sentAtMs + leaseValidMs(s.settings.timings) },
    receiverStopped: false,
    syncCleared: false,
    releasedTerm: null,
    vip: 'unknown',
    lastVipCheckAtMs: -Infinity,
  });
  st.notify('vote-granted', `won term ${c.term}`);
  st.because(`won term ${c.term} with the vote of ${msg.from}`);
}

function onSyncReply(st: Step, msg: SyncUpdateReply): void {
  const s = st.s;
  if (!msg.granted) {
    st.set({ sync: { ...s.sync, requestSentAtMs: null } });
    return;
  }
  const pg = s.pg;
  if (pg === null) return;
  if (pg.syncStandby !== null && !pg.standbyInSync) {
    // The witness marked the standby ineligible: only now may commits stop waiting for it.
    if (s.inFlight === null) {
      st.effect({ kind: 'set-sync-standby', standby: null });
      st.notify('sync-degraded', `${s.settings.peer} lost; replication degraded to async with witness agreement`);
      st.because('degrading to async with the witness\'s agreement');
    }
    st.set({ sync: { confirmedAtWitness: false, lostSinceMs: null, requestSentAtMs: null } });
  } else if (pg.standbyInSync) {
    st.set({ sync: { confirmedAtWitness: true, lostSinceMs: null, requestSentAtMs: null } });
    st.notify('sync-restored', `${s.settings.peer} is the synchronous standby again`);
  }
}

// --- effect results -------------------------------------------------------------------------------

/**
 * Failures in a row of the steps an operator must hear about when they keep failing: a rejoin
 * (each failure reported; the next attempt waits rejoinBackoffMs) and the VIP steps (reported once,
 * at vipErrorAfterFailures). A success starts the count again.
 */
function countRepeatedFailures(st: Step, kind: EffectKind, r: EffectResult): void {
  const s = st.s;
  if (kind === 'rejoin') {
    if (r.ok) return st.set({ rejoinFailures: { count: 0, lastAtMs: -Infinity } });
    const count = s.rejoinFailures.count + 1;
    st.set({ rejoinFailures: { count, lastAtMs: s.nowMs } });
    st.notify('rejoin-failed', `rejoin as a standby of ${s.durable.primaryOfTerm} failed (${count} in a row; next try in ${rejoinBackoffMs(count) / 1000} s): ${r.detail}`);
  } else if (kind === 'move-vip-cloud' || kind === 'add-vip-local' || kind === 'verify-vip') {
    const count = r.ok ? 0 : s.vipFailures + 1;
    st.set({ vipFailures: count });
    if (count === vipErrorAfterFailures) st.notify('vip-error', `${vipErrorAfterFailures} VIP steps in a row failed, the last (${kind}): ${r.detail}`);
  }
}

function onEffectDone(st: Step, r: EffectResult): void {
  const s = st.s;
  if (s.fenceInFlight !== null && s.fenceInFlight.id === r.id) {
    st.set({ fenceInFlight: null, fenced: r.ok ? true : s.fenced, pg: r.ok && s.pg !== null ? { ...s.pg, writable: false } : s.pg });
    if (r.ok) {
      st.notify('fenced', `fenced (${s.settings.fencing}): ${s.fenceReason ?? ''}`);
      if (s.switchover !== null && s.switchover.step === 'fencing') {
        st.set({ switchover: { ...s.switchover, step: 'catching-up', finalLsn: r.finalLsn ?? s.pg?.lsn ?? 0n } });
      }
    } else {
      st.because(`fence failed (${r.detail}); retrying`);
    }
    return;
  }
  const f = s.inFlight;
  if (f === null || f.id !== r.id) return; // a result from an earlier incarnation or a stale effect
  st.set({ inFlight: null });
  countRepeatedFailures(st, f.kind, r);
  if (!r.ok) {
    st.because(`${f.kind} failed: ${r.detail}; will retry`);
    if (f.kind === 'verify-vip') st.set({ vip: s.vip === 'held' || s.vip === 'local' ? 'unknown' : s.vip });
    if (f.kind === 'move-vip-cloud') st.set({ vip: 'unknown' });
    return;
  }
  switch (f.kind) {
    case 'stop-wal-receiver':
      st.set({ receiverStopped: true });
      return;
    case 'set-sync-standby': {
      const standby = f.effect.kind === 'set-sync-standby' ? f.effect.standby : null;
      if (isPrimaryOfTerm(s) && s.pg?.inRecovery) st.set({ syncCleared: true });
      // Remember what we set until the next observation shows it, so it is not set again meanwhile.
      else if (s.pg !== null) st.set({ pg: { ...s.pg, syncStandby: standby, standbyInSync: standby === null ? false : s.pg.standbyInSync } });
      return;
    }
    case 'promote':
      st.notify('promoted', `promoted for term ${s.durable.term}`);
      st.because(`promoted for term ${s.durable.term}`);
      st.set({ pg: s.pg === null ? null : { ...s.pg, inRecovery: false, writable: true, streaming: false }, vip: 'unknown', lastVipCheckAtMs: -Infinity, fenced: false });
      // A standby never held the VIP: move it at once instead of asking EC2 first.
      moveVip(st);
      return;
    case 'verify-vip':
      // A node on its way out only learns whether EC2 still routes the VIP here (releaseLocalVip).
      if (!mayHoldVip(s)) {
        if (r.vipPlacement === 'elsewhere') st.set({ vipRoutedElsewhere: true });
        return;
      }
      if (r.vipPlacement === 'elsewhere') {
        st.set({ vip: 'unknown' });
        moveVip(st);
      } else if (r.vipPlacement === 'cloud-only') {
        st.set({ vip: 'moved' });
      } else {
        if (s.vip !== 'held') st.notify('vip-moved', `VIP verified on ${s.settings.self} for term ${s.durable.term}`);
        st.set({ vip: 'held' });
      }
      return;
    case 'move-vip-cloud':
      st.set({ vip: 'moved' });
      return;
    case 'add-vip-local':
      st.set({ vip: 'local' });
      return;
    case 'drop-vip-local':
      st.set({ vipDropped: true });
      return;
    case 'unfence':
      st.set({ fenced: false, fenceReason: null, vipDropped: false, vip: 'unknown', lastVipCheckAtMs: -Infinity, pg: s.pg === null ? null : { ...s.pg, writable: true } });
      return;
    case 'rejoin':
      st.set({ fenced: false, fenceReason: null, vipDropped: false, receiverStopped: false, syncCleared: false, pg: s.pg === null ? null : { ...s.pg, inRecovery: true, writable: false } });
      st.notify('rejoined', `rejoined as a standby of ${s.durable.primaryOfTerm}: ${r.detail}`);
      st.because(`rejoined as a standby of ${s.durable.primaryOfTerm}`);
      return;
    case 'fence':
    case 'start-postgres':
      return;
  }
}

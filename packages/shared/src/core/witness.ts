// The decision core of the witness, for one cluster: the tie-breaking third vote. It grants leases
// to the primary of the current term, votes for a standby only when it too has seen the primary fail
// and its own promise has run out, and arbitrates the sync standby's eligibility. Pure: time comes
// in as `nowMs` on the witness's monotonic clock.

import type { Action, NotifyEvent, StepOutput } from './actions.js';
import type { PrimaryReport } from './eligibility.js';
import {
  PROTOCOL_VERSION,
  type AgentStatus,
  type Envelope,
  type LeaseReply,
  type NodeId,
  type PeerReply,
  type PeerRequest,
  type VoteReply,
} from './messages.js';
import { isTermInRange, termAfter, termBoundReached } from './terms.js';
import { assumedPromise, decideLeaseRequest, decideRelease, grantByVote, grantLease, promiseLive, type LeasePromise } from './grantor.js';
import { leaseLengthConflict, promiseMs, type Timings } from './timings.js';

export interface WitnessDurable {
  readonly term: number;
  readonly primaryOfTerm: NodeId | null;
  /** The vote cast in `votedTerm` (one per term, never withdrawn). */
  readonly votedTerm: number;
  readonly votedFor: NodeId | null;
  /** The standby known to hold every acknowledged write (sync mode), or null: nobody may be promoted. */
  readonly syncEligible: NodeId | null;
  readonly maintenance: boolean;
}

export const initialWitnessDurable: WitnessDurable = {
  term: 0, primaryOfTerm: null, votedTerm: 0, votedFor: null, syncEligible: null, maintenance: false,
};

export interface WitnessSettings {
  readonly cluster: string;
  readonly self: NodeId;
  readonly nodes: readonly [NodeId, NodeId];
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  readonly lagBytesMax: bigint;
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
  /** A planned switchover waiting to be sent to the primary. */
  readonly switchover: { readonly to: NodeId; readonly atMs: number; readonly sentAtMs: number | null } | null;
  /** Since when the current term's primary counts as failed (checks or release), or null. */
  readonly primaryFailedSinceMs: number | null;
  /** The term for which operators were told that no automatic failover can happen. */
  readonly blockedNotifiedTerm: number | null;
}

export type WitnessInput =
  /** `pgReachable` must come from a probe made during this poll whenever `status` is null (decisions read it only then; views show it always). */
  | { readonly kind: 'poll'; readonly nowMs: number; readonly node: NodeId; readonly status: AgentStatus | null; readonly pgReachable: boolean }
  /** `peerLeaseValidMs`: how long the sender counts a lease valid by its own timings (leaseLengthConflict). */
  | { readonly kind: 'request'; readonly nowMs: number; readonly msg: PeerRequest; readonly peerLeaseValidMs?: number | undefined }
  /** The answer to a request the witness sent; `inReplyTo` names that request's kind. */
  | { readonly kind: 'reply'; readonly nowMs: number; readonly msg: PeerReply; readonly inReplyTo: PeerRequest['kind'] }
  | { readonly kind: 'operator'; readonly nowMs: number; readonly command: OperatorCommand };

export type OperatorCommand =
  | { readonly kind: 'maintenance'; readonly on: boolean; readonly by: string }
  | { readonly kind: 'switchover'; readonly to: NodeId | null; readonly delayMs: number; readonly by: string }
  | { readonly kind: 'failover'; readonly to: NodeId | null; readonly acceptDataLoss: boolean; readonly by: string };

export type WitnessOutput = StepOutput<WitnessState, WitnessDurable> & {
  /** For operator commands: whether it was accepted, and why not. */
  readonly verdict?: { readonly ok: boolean; readonly message: string };
};

export function bootWitness(settings: WitnessSettings, durable: WitnessDurable, nowMs: number): WitnessState {
  const views: Record<NodeId, NodeView> = {};
  for (const n of settings.nodes) views[n] = { status: null, pgReachable: false, failedChecks: 0, lastSeenAtMs: null, missedPolls: 0, reportedDown: false, rejoinFailedTerm: null, rejoinedTerm: null };
  return {
    settings,
    durable,
    bootAtMs: nowMs,
    nowMs,
    // I6: promises made before a restart are unknown, so assume a full one to the current primary.
    promise: assumedPromise(durable, settings.self, nowMs, settings.timings),
    releasedTerm: null,
    primaryReport: null,
    views,
    switchover: null,
    primaryFailedSinceMs: null,
    blockedNotifiedTerm: null,
  };
}

class Step {
  s: WitnessState;
  readonly actions: Action<WitnessDurable>[] = [];
  readonly reasons: string[] = [];
  verdict: { ok: boolean; message: string } | undefined;
  #persisted = false;
  constructor(s: WitnessState) {
    this.s = s;
  }
  set(patch: Partial<WitnessState>): void {
    this.s = { ...this.s, ...patch };
  }
  persist(durable: WitnessDurable): void {
    this.s = { ...this.s, durable };
    if (this.#persisted) this.actions[0] = { kind: 'persist', state: durable };
    else {
      this.actions.unshift({ kind: 'persist', state: durable });
      this.#persisted = true;
    }
  }
  because(r: string): void {
    this.reasons.push(r);
  }
  notify(event: NotifyEvent, detail: string): void {
    this.actions.push({ kind: 'notify', event, detail });
  }
  envelope(): Envelope {
    return { v: PROTOCOL_VERSION, cluster: this.s.settings.cluster, term: this.s.durable.term, from: this.s.settings.self };
  }
  output(fallback: string): WitnessOutput {
    const base = { state: this.s, actions: this.actions, reason: this.reasons.length ? this.reasons.join('; ') : fallback };
    return this.verdict === undefined ? base : { ...base, verdict: this.verdict };
  }
}

export function stepWitness(state: WitnessState, input: WitnessInput): WitnessOutput {
  const st = new Step({ ...state, nowMs: Math.max(state.nowMs, input.nowMs) });
  switch (input.kind) {
    case 'poll':
      onPoll(st, input.node, input.status, input.pgReachable);
      watchForBlockedFailover(st);
      maybeSendSwitchover(st);
      return st.output(`polled ${input.node}`);
    case 'request':
      onRequest(st, input.msg, input.peerLeaseValidMs);
      return st.output(`answered ${input.msg.kind} from ${input.msg.from}`);
    case 'reply':
      onReply(st, input.msg, input.inReplyTo);
      return st.output(`noted ${input.msg.kind} from ${input.msg.from}`);
    case 'operator':
      onOperator(st, input.command);
      return st.output(`operator ${input.command.kind}`);
  }
}

function otherNode(s: WitnessState, node: NodeId): NodeId {
  const [a, b] = s.settings.nodes;
  return node === a ? b : a;
}

export function primaryFailed(s: WitnessState): boolean {
  const p = s.durable.primaryOfTerm;
  if (p === null) return true;
  if (s.releasedTerm === s.durable.term) return true;
  return (s.views[p]?.failedChecks ?? 0) >= s.settings.timings.failureChecks;
}

/** One check of a node as primary: judged on the agent and on PostgreSQL directly, never the agent alone. */
function checkFailed(s: WitnessState, node: NodeId, status: AgentStatus | null, pgReachable: boolean): boolean {
  if (node !== s.durable.primaryOfTerm) return false;
  if (status === null) return !pgReachable;
  if (status.term > s.durable.term) return false;
  return !((status.role === 'primary' || status.role === 'promoting') && status.pg.running);
}

function onPoll(st: Step, node: NodeId, status: AgentStatus | null, pgReachable: boolean): void {
  const s = st.s;
  const prev = s.views[node];
  if (prev === undefined) return;
  const failed = checkFailed(s, node, status, pgReachable);
  const checks = s.settings.timings.failureChecks;
  let view: NodeView = {
    status: status ?? prev.status,
    pgReachable,
    failedChecks: failed ? prev.failedChecks + 1 : 0,
    lastSeenAtMs: status !== null ? s.nowMs : prev.lastSeenAtMs,
    missedPolls: status === null ? prev.missedPolls + 1 : 0,
    reportedDown: prev.reportedDown,
    rejoinFailedTerm: prev.rejoinFailedTerm,
    rejoinedTerm: prev.rejoinedTerm,
  };
  view = { ...view, ...reportRejoin(st, node, prev, status) };
  if (failed && view.failedChecks === checks) {
    st.notify('failure-detected', `primary ${node} failed ${view.failedChecks} consecutive checks (agent ${status === null ? 'unreachable' : `reports ${status.role}`}, postgresql ${pgReachable ? 'reachable' : 'unreachable'})`);
    st.because(`primary ${node} failed ${view.failedChecks} checks`);
    view = { ...view, reportedDown: true };
  } else if (!failed && node !== s.durable.primaryOfTerm && view.missedPolls === checks && !view.reportedDown) {
    // The primary's failures are reported above; a standby (or a deposed primary) that stops
    // answering matters too: it can no longer take over.
    st.notify('node-unreachable', `${node} did not answer ${checks} consecutive polls (postgresql ${pgReachable ? 'reachable' : 'unreachable'}); it cannot take over meanwhile`);
    view = { ...view, reportedDown: true };
  } else if (view.reportedDown && !failed && status !== null && status.pg.running && (status.role === 'primary' || status.role === 'standby')) {
    st.notify('node-recovered', `${node} answers again as ${status.role}`);
    view = { ...view, reportedDown: false };
  }
  st.set({ views: { ...s.views, [node]: view } });
  if (status === null && prev.status !== null && node === s.durable.primaryOfTerm && pgReachable && prev.failedChecks === 0 && prev.lastSeenAtMs !== null) {
    st.notify('agent-unreachable', `agent on ${node} unreachable while its postgresql answers: agent failure, not a database failure`);
  }
  // A node in a newer term (e.g. after a switchover handover) teaches the witness that term.
  if (status !== null && status.term > s.durable.term && status.primaryOfTerm !== null) {
    adopt(st, status.term, status.primaryOfTerm, node);
  }
}

/**
 * Tells operators, once per term, that the primary has failed and no automatic failover will follow
 * unless something changes: the standby says why it cannot be promoted, or does not answer either.
 * Only after the time a failover would normally take (the standby's promise plus its own checks),
 * and only while the standby does not stream: a standby still streaming sees a live primary (the
 * witness alone lost it, DESIGN §9 row 8), which is no failure at all. A refused vote reports at once
 * (decideVote).
 */
function watchForBlockedFailover(st: Step): void {
  const s = st.s;
  const d = s.durable;
  const failed = d.primaryOfTerm !== null && primaryFailed(s);
  if (!failed) {
    if (s.primaryFailedSinceMs !== null) st.set({ primaryFailedSinceMs: null });
    return;
  }
  if (s.primaryFailedSinceMs === null) {
    st.set({ primaryFailedSinceMs: s.nowMs });
    return;
  }
  const t = s.settings.timings;
  if (s.nowMs - s.primaryFailedSinceMs < promiseMs(t) + (t.failureChecks + 2) * t.heartbeatMs) return;
  const standby = otherNode(s, d.primaryOfTerm!);
  const view = s.views[standby];
  if (view === undefined) return;
  if (view.status === null || view.missedPolls >= t.failureChecks) return reportBlocked(st, `${standby} does not answer the witness either`);
  if (view.status.term > d.term || view.status.pg.streaming) return;
  if (d.maintenance) return reportBlocked(st, 'the cluster is in maintenance');
  if (view.status.promotionBlocker !== null) return reportBlocked(st, `${standby} cannot be promoted: ${view.status.promotionBlocker}`);
}

function reportBlocked(st: Step, why: string): void {
  const s = st.s;
  if (s.blockedNotifiedTerm === s.durable.term) return;
  st.set({ blockedNotifiedTerm: s.durable.term });
  st.notify('failover-blocked', `primary ${s.durable.primaryOfTerm} failed in term ${s.durable.term}, but no automatic failover is allowed: ${why}`);
  st.because(`failover blocked: ${why}`);
}

/**
 * How an old primary's way back looks from the polls, once per term and node: `rejoined` when it
 * reports a standby of the current term; `rejoin-failed` when an attempt ends in anything else (the
 * agent retries with growing waits, and its log has the reason). Returns the view's new marks.
 */
function reportRejoin(st: Step, node: NodeId, prev: NodeView, status: AgentStatus | null): Partial<NodeView> {
  const s = st.s;
  const term = s.durable.term;
  if (status === null || prev.status === null) return {};
  const isStandby = status.role === 'standby' && status.pg.inRecovery;
  if (prev.status.role === 'rejoining' && status.role !== 'rejoining' && !isStandby && prev.rejoinFailedTerm !== term) {
    st.notify('rejoin-failed', `${node} tried to rejoin as a standby of ${s.durable.primaryOfTerm} and is ${status.role} again; it retries with growing waits (its agent log says why)`);
    return { rejoinFailedTerm: term };
  }
  const wasOutOfService = ['rejoining', 'demoted', 'fenced', 'primary', 'promoting'].includes(prev.status.role);
  if (wasOutOfService && isStandby && status.term === term && node !== s.durable.primaryOfTerm && prev.rejoinedTerm !== term) {
    st.notify('rejoined', `${node} is a standby of ${s.durable.primaryOfTerm} again`);
    return { rejoinedTerm: term };
  }
  return {};
}

/**
 * The one way into a term for the witness: learned (adopt), voted for (decideVote) or forced by an
 * operator. Persists the term and its primary (with the vote, when this witness cast one) and drops
 * what belonged to the old term: the sync-eligible standby (the old primary must catch up again
 * before it may ever be promoted), and with a vote, the old term's promise, release and report
 * (the vote is the first grant of the new term).
 */
function enterTerm(st: Step, term: number, primaryOfTerm: NodeId | null, vote: { readonly for: NodeId; readonly t: Timings } | null): void {
  const d = st.s.durable;
  const syncEligible = term > d.term ? null : d.syncEligible;
  st.persist({ ...d, term, primaryOfTerm, syncEligible, ...(vote === null ? {} : { votedTerm: term, votedFor: vote.for }) });
  if (vote !== null) st.set(grantByVote(st.s, term, vote.for, vote.t));
}

/** Learn a term from an agent's status, or the primary of the current term from its lease request. */
function adopt(st: Step, term: number, primary: NodeId, source: NodeId): void {
  const d = st.s.durable;
  // The wire refuses such terms already; this keeps the bound on every path into the durable state.
  if (!isTermInRange(term)) return;
  if (term < d.term || (term === d.term && d.primaryOfTerm !== null)) return;
  // A new term means the old primary must catch up again before it may ever be promoted.
  enterTerm(st, term, primary, null);
  st.set({ releasedTerm: null, primaryReport: null });
  st.because(`learned term ${term} (primary ${primary}) from ${source}`);
}

function onRequest(st: Step, msg: PeerRequest, peerLeaseValidMs: number | undefined): void {
  const s = st.s;
  const reply = (r: PeerReply): void => {
    st.actions.push({ kind: 'reply', to: msg.from, msg: r });
  };
  const ack = (accepted: boolean, reason: string) => reply({ ...st.envelope(), kind: 'ack', accepted, reason });
  if (!s.settings.nodes.includes(msg.from)) return ack(false, `${msg.from} is not a member of ${s.settings.cluster}`);
  switch (msg.kind) {
    case 'lease-request': {
      const answer = (granted: boolean, reason: string) => {
        const r: LeaseReply = { ...st.envelope(), kind: 'lease-reply', seq: msg.seq, granted, reason, maintenance: st.s.durable.maintenance, primaryOfTerm: st.s.durable.primaryOfTerm };
        reply(r);
      };
      // The grantor's rules (grantor.ts). A switchover's handover reaches the witness through the
      // polls (the new primary's or the old one's status) within a heartbeat; the new primary has the
      // old one's grant meanwhile. Not even during a switchover it asked for may a lease request teach
      // it a term: a forged request then, for a switchover that never happens, would leave it in a
      // term whose primary never was.
      const verdict = decideLeaseRequest(s.durable, msg, s.settings.timings, peerLeaseValidMs, {
        adopt: () => adopt(st, msg.term, msg.from, msg.from),
        durable: () => st.s.durable,
      });
      if (!verdict.granted) {
        if (verdict.check === 'unvoted' || verdict.check === 'length') st.because(`refused a lease to ${msg.from}: ${verdict.reason}`);
        return answer(false, verdict.reason);
      }
      st.set(grantLease(st.s, st.s.durable.term, msg, s.settings.timings));
      return answer(true, 'granted');
    }
    case 'lease-release': {
      // A release older than the request behind the current promise comes from an earlier agent
      // process (or was delayed): it must not cancel the lease granted since.
      const release = decideRelease(s, s.durable, msg);
      if (release.kind === 'stale') st.because(`ignored a release from ${msg.from} older than the lease granted since`);
      if (release.kind === 'released') {
        st.set(release.patch);
        st.notify('lease-released', `${msg.from} released its lease for term ${msg.term}: ${msg.reason}`);
        st.because(`${msg.from} released its lease: ${msg.reason}`);
      }
      return ack(true, 'noted');
    }
    case 'vote-request':
      return reply(decideVote(st, msg, peerLeaseValidMs));
    case 'sync-update': {
      const answer = (granted: boolean, reason: string) => reply({ ...st.envelope(), kind: 'sync-update-reply', granted, reason });
      if (msg.term !== s.durable.term || msg.from !== s.durable.primaryOfTerm) return answer(false, `not the primary of term ${s.durable.term}`);
      if (msg.standby !== otherNode(s, msg.from)) return answer(false, `${msg.standby} is not the standby`);
      if (msg.change === 'restore') {
        if (s.durable.syncEligible !== msg.standby) {
          st.persist({ ...s.durable, syncEligible: msg.standby });
          st.notify('sync-restored', `${msg.standby} is the synchronous standby of ${msg.from} again`);
          st.because(`${msg.standby} marked sync-eligible`);
        }
        return answer(true, 'standby is sync-eligible');
      }
      // Degrade only when the witness sees the standby gone too; then it is ineligible BEFORE the
      // primary stops waiting for it, so no acknowledged write can be missing on a promotable node.
      if (!standbyLooksGone(s, msg.standby)) return answer(false, `${msg.standby} looks healthy and streaming from here`);
      if (s.durable.syncEligible !== null) {
        st.persist({ ...s.durable, syncEligible: null });
        st.notify('sync-degraded', `${msg.standby} lost: ${msg.from} may run async; ${msg.standby} is ineligible until it catches up`);
        st.because(`agreed to degrade ${s.settings.cluster} to async`);
      }
      return answer(true, 'degrade agreed; standby ineligible');
    }
    case 'switchover-request':
    case 'handover':
    case 'manual-promote':
      return ack(false, `${msg.kind} is not for the witness`);
  }
}

function standbyLooksGone(s: WitnessState, standby: NodeId): boolean {
  const view = s.views[standby];
  if (view === undefined || view.status === null) return true;
  const seenRecently = view.lastSeenAtMs !== null && s.nowMs - view.lastSeenAtMs < s.settings.timings.failureChecks * s.settings.timings.heartbeatMs;
  if (!seenRecently) return true;
  return !view.status.pg.streaming;
}

function decideVote(st: Step, msg: Extract<PeerRequest, { kind: 'vote-request' }>, peerLeaseValidMs: number | undefined): VoteReply {
  const s = st.s;
  const d = s.durable;
  const t = s.settings.timings;
  const answer = (granted: boolean, reason: string): VoteReply => {
    st.because(`${granted ? 'voted for' : 'refused'} ${msg.from} in term ${msg.term}: ${reason}`);
    return { ...st.envelope(), kind: 'vote-reply', granted, reason, primaryOfTerm: st.s.durable.primaryOfTerm };
  };
  if (msg.term === d.votedTerm && d.votedFor === msg.from && d.primaryOfTerm === msg.from) return answer(true, 'already voted for this candidate in this term');
  if (msg.term <= d.term) return answer(false, `term ${msg.term} is not above ${d.term}`);
  if (msg.term !== termAfter(d.term) || msg.lastTerm !== d.term) return answer(false, `candidate missed a term (it was in ${msg.lastTerm}, the cluster is in ${d.term})`);
  // The vote doubles as the first lease grant of the new term: the same bound applies.
  const conflict = leaseLengthConflict(t, peerLeaseValidMs);
  if (conflict !== null) return answer(false, conflict);
  if (d.maintenance) {
    if (d.primaryOfTerm !== null && primaryFailed(s)) reportBlocked(st, 'the cluster is in maintenance');
    return answer(false, 'cluster is in maintenance');
  }
  const neverPromised = d.term === 0 && d.votedTerm === 0;
  if (s.nowMs < s.bootAtMs + promiseMs(t) && !neverPromised) return answer(false, 'witness restarted recently and waits out the promises it may have made');
  if (promiseLive(s)) return answer(false, `lease promised to ${s.promise?.holder} for ${Math.round((s.promise?.untilMs ?? 0) - s.nowMs)} ms more`);
  const bootstrap = d.term === 0 && d.primaryOfTerm === null;
  if (bootstrap) {
    // First election: only a node that already runs as primary may claim term 1.
    const view = s.views[msg.from];
    if (view?.status?.pg.inRecovery !== false) return answer(false, 'bootstrap: the candidate must already be a running primary');
  } else {
    if (d.primaryOfTerm === msg.from) return answer(false, 'the candidate is already the primary');
    if (!primaryFailed(s)) return answer(false, `primary ${d.primaryOfTerm} is healthy by the witness's checks`);
    const blocker = eligibilityBlocker(s, msg);
    if (blocker !== null) {
      reportBlocked(st, `the witness refused ${msg.from}'s vote request: ${blocker}`);
      return answer(false, blocker);
    }
  }
  // The vote doubles as the first lease grant of the new term.
  enterTerm(st, msg.term, msg.from, { for: msg.from, t });
  st.notify('vote-granted', `voted for ${msg.from} in term ${msg.term}`);
  return answer(true, bootstrap ? 'bootstrap of the cluster' : `primary ${d.primaryOfTerm} failed`);
}

function eligibilityBlocker(s: WitnessState, msg: Extract<PeerRequest, { kind: 'vote-request' }>): string | null {
  const report = s.primaryReport;
  if (s.settings.replication === 'sync') {
    if (s.durable.syncEligible !== msg.from) return `${msg.from} is not the sync-eligible standby (it may lack acknowledged writes)`;
  } else {
    if (report === null) return 'no report from the primary in this term';
    const lag = report.lsn > msg.lsn ? report.lsn - msg.lsn : 0n;
    if (lag > s.settings.lagBytesMax) return `candidate lags ${lag} bytes, more than lagBytesMax ${s.settings.lagBytesMax}`;
  }
  if (report !== null && report.timeline !== msg.timeline) return `candidate on timeline ${msg.timeline}, primary on ${report.timeline}`;
  return null;
}

function onReply(st: Step, msg: PeerReply, inReplyTo: PeerRequest['kind']): void {
  // Only the answer to the switchover request settles a pending switchover (not, say, a manual-promote ack).
  if (inReplyTo === 'switchover-request' && msg.kind === 'ack' && st.s.switchover !== null && st.s.switchover.sentAtMs !== null) {
    const sw = st.s.switchover;
    st.set({ switchover: null });
    st.notify('switchover', msg.accepted ? `switchover to ${sw.to} started by ${msg.from}` : `switchover to ${sw.to} refused by ${msg.from}: ${msg.reason}`);
    st.because(`switchover ${msg.accepted ? 'started' : `refused: ${msg.reason}`}`);
  }
}

function maybeSendSwitchover(st: Step): void {
  const s = st.s;
  const sw = s.switchover;
  const primary = s.durable.primaryOfTerm;
  if (sw === null || primary === null || s.nowMs < sw.atMs) return;
  if (sw.sentAtMs !== null && s.nowMs - sw.sentAtMs < 2 * s.settings.timings.heartbeatMs) return;
  st.actions.push({ kind: 'send', to: primary, msg: { ...st.envelope(), kind: 'switchover-request', to: sw.to } });
  st.set({ switchover: { ...sw, sentAtMs: s.nowMs } });
}

function onOperator(st: Step, c: OperatorCommand): void {
  const s = st.s;
  const d = s.durable;
  const verdict = (ok: boolean, message: string) => {
    st.verdict = { ok, message };
    st.because(message);
  };
  switch (c.kind) {
    case 'maintenance':
      if (d.maintenance !== c.on) st.persist({ ...d, maintenance: c.on });
      st.notify('maintenance', `maintenance ${c.on ? 'on' : 'off'} for ${s.settings.cluster} by ${c.by}`);
      return verdict(true, `maintenance ${c.on ? 'on: automatic failover paused' : 'off: automatic failover active'}`);
    case 'switchover': {
      const primary = d.primaryOfTerm;
      if (primary === null) return verdict(false, 'no primary known; nothing to switch over from');
      const to = c.to ?? otherNode(s, primary);
      if (to === primary) return verdict(false, `${to} is already the primary`);
      if (!s.settings.nodes.includes(to)) return verdict(false, `${to} is not a node of ${s.settings.cluster}`);
      const view = s.views[to];
      const blocker = view?.status?.promotionBlocker;
      if (view?.status === null || view?.status === undefined) return verdict(false, `${to} is unreachable`);
      if (blocker !== null && blocker !== undefined) return verdict(false, `${to} is not ready: ${blocker}`);
      st.set({ switchover: { to, atMs: s.nowMs + Math.max(0, c.delayMs), sentAtMs: null } });
      maybeSendSwitchover(st);
      return verdict(true, c.delayMs > 0 ? `switchover to ${to} scheduled in ${Math.round(c.delayMs / 1000)} s` : `switchover to ${to} requested`);
    }
    case 'failover': {
      if (!c.acceptDataLoss) return verdict(false, 'a forced failover needs --accept-data-loss');
      const primary = d.primaryOfTerm;
      const to = c.to ?? (primary === null ? null : otherNode(s, primary));
      if (to === null || !s.settings.nodes.includes(to)) return verdict(false, 'name the node to promote with --to');
      const term = termAfter(d.term);
      if (term === null) return verdict(false, termBoundReached);
      enterTerm(st, term, to, { for: to, t: s.settings.timings });
      st.actions.push({ kind: 'send', to, msg: { ...st.envelope(), kind: 'manual-promote', acceptDataLoss: true, requestedBy: c.by } });
      st.notify('manual-failover', `${c.by} forced ${to} to primary in term ${term}, accepting data loss`);
      return verdict(true, `forcing ${to} to primary in term ${term} (data loss accepted)`);
    }
  }
}

/** A compact view for the operator API and dashboard. */
export function witnessSummary(s: WitnessState) {
  return {
    cluster: s.settings.cluster,
    term: s.durable.term,
    primary: s.durable.primaryOfTerm,
    syncEligible: s.durable.syncEligible,
    maintenance: s.durable.maintenance,
    promiseRemainingMs: s.promise === null ? 0 : Math.max(0, s.promise.untilMs - s.nowMs),
    nodes: s.settings.nodes.map((n) => ({ node: n, ...s.views[n] })),
  };
}

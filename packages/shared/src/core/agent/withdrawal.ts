// A standby among three or more nodes (docs/design.md, "More than one standby"): it withdraws when
// its primary failed and its own promise is gone (stops its WAL receiver, so its position is final),
// asks etcd for the vote with that final position every heartbeat while it is denied, and resumes
// (position-clear, then resume-wal-receiver) when the primary turns out healthy, or the term did not
// move for long enough while the primary's agent still claims it. Once a term names another node it
// follows that node (`follow`), and rewinds (`rejoin`) when PostgreSQL refuses the new timeline.
//
//   none ──(primary failed, promise gone)──► stopping ──(receiver stopped)──► withdrawn
//   withdrawn ──(vote granted)──► primary of the next term (promotion skips the stopped receiver)
//   withdrawn ──(primary healthy, or still claiming the term after resumeAfterMs)──► clearing ──(Ack)──►
//     resuming ──(resume-wal-receiver done)──► none
//   any ──(a new term)──► none, and the standby follows the new primary

import type { Effect, EffectResult } from '../actions.js';
import { promiseLive } from '../grantor.js';
import type { Lsn, VoteReply } from '../messages.js';
import { termAfter } from '../terms.js';
import { receiverSilenceMs } from '../timings.js';
import { blocker, isNoFailover, primaryStatus, showsHealthyPrimary, statusOf } from './facts.js';
import type { AgentState } from './state.js';
import type { Step } from './step.js';

export type WithdrawalState =
  | { readonly phase: 'stopping'; readonly term: number; readonly sinceMs: number; readonly blockedBy?: string | null }
  | {
    readonly phase: 'withdrawn' | 'clearing' | 'resuming';
    readonly term: number;
    /**
     * Why this node may not win (its promotion blocker when it withdrew); null or absent: it may.
     * A blocked member still publishes its final position (eligible: false): the others' election
     * may need it (n - k + 1 positions of the record's members), and stopping its receiver costs nothing.
     */
    readonly blockedBy?: string | null;
    /** When the receiver stopped: the election window and the resume bound count from here. */
    readonly sinceMs: number;
    readonly flushLsn: Lsn;
    readonly timeline: number;
    /** When the last vote request or position-clear went out (re-asked every heartbeat). */
    readonly askedAtMs: number | null;
  };

/**
 * The question a standby asks etcd before it withdraws (review-17 F9): is the primary's leader key
 * gone? Only then can an election follow, and only then is stopping the receiver and every grant
 * worth it. `answer` null while unanswered; the reason of the last refusal, for the log.
 */
export interface WithdrawCheck {
  readonly term: number;
  readonly sentAtMs: number;
  readonly answer: 'gone' | 'held' | null;
  readonly reason: string | null;
}

/** How `follow` went in this term: a refused timeline asks for a rewind; other failures back off. */
export interface FollowState {
  readonly term: number;
  readonly diverged: boolean;
  readonly failedAtMs: number;
}

/**
 * How long a withdrawn standby waits, without a new term, before it resumes while the primary's agent
 * answers as primary of the term but is not healthy (fenced: its lease may rest on this standby's
 * grant while etcd is out of reach). A standby that still sees it failed afterwards withdraws again.
 */
export function resumeAfterMs(s: AgentState): number {
  return 20 * s.settings.timings.heartbeatMs + s.settings.electionWindowMs;
}

/** The standby's step with three or more nodes (instead of the two-node campaign). */
export function nodesStandby(st: Step): void {
  const s = st.s;
  const w = s.withdrawal;
  if (w !== null && w.term !== s.durable.term) st.set({ withdrawal: null });
  if (st.s.withdrawal === null) {
    if (followIfNeeded(st)) return;
    maybeWithdraw(st);
    return;
  }
  askOrResume(st);
}

function maybeWithdraw(st: Step): void {
  const s = st.s;
  const t = s.settings.timings;
  const d = s.durable;
  if (s.inFlight !== null || s.fenceInFlight !== null || isNoFailover(s) || s.campaign !== null) return;
  if (d.primaryOfTerm === null || d.primaryOfTerm === s.settings.self || termAfter(d.term) === null) return;
  // A release is news only while the primary has not been seen healthy since: one that took its lease
  // back through etcd (it asks this standby again only after it resumed) must not be withdrawn from
  // again and again.
  const released = s.releasedTerm === d.term && !primaryHealthy(s);
  const primaryFailed = released || s.peerFailedChecks >= t.failureChecks;
  if (!primaryFailed || promiseLive(s)) return;
  const pg = s.pg;
  const hard = pg === null || !pg.running || !pg.inRecovery || s.maintenance;
  const why = blocker(s);
  if (hard) {
    if (s.peerFailedChecks === t.failureChecks) st.because(`primary failed but this node does not withdraw: ${why ?? 'not a running standby'}`);
    return;
  }
  if (!etcdSaysKeyGone(st)) return;
  // A member that may not win (streamed too long ago, lagging, or restarted: its agent no longer
  // knows when it last streamed) still makes its position final and publishes it, marked not
  // eligible: the others' election may need it, and a restarted withdrawn standby asks again so.
  st.set({ withdrawal: { phase: 'stopping', term: d.term, sinceMs: s.nowMs, blockedBy: why } });
  st.effect({ kind: 'stop-wal-receiver' });
  st.because(
    `withdrawing for an election: ${d.primaryOfTerm} failed and no promise binds this node; stopping the WAL receiver` +
    (why === null ? '' : ` (to publish its position; it may not win: ${why})`),
  );
}

/**
 * Whether etcd said, a moment ago, that the leader key of this term is gone; otherwise asks it (once
 * per half heartbeat; an unanswered question is asked again after requestTimeoutMs). Withdrawing
 * stops the receiver and every grant, so during an etcd outage a short cut between the primary and
 * this standby would fence the primary until etcd answers again, for no election can happen then.
 * The question is a vote request without a final position: etcd creates no term for it.
 */
function etcdSaysKeyGone(st: Step): boolean {
  const s = st.s;
  const t = s.settings.timings;
  const c = s.withdrawCheck !== null && s.withdrawCheck.term === s.durable.term ? s.withdrawCheck : null;
  if (c !== null) {
    const ageMs = s.nowMs - c.sentAtMs;
    // A fresh "gone" (a key gone stays gone in its term, unless its own primary takes it again).
    if (c.answer === 'gone' && ageMs < t.heartbeatMs) return true;
    if (c.answer === null && ageMs < t.requestTimeoutMs) return false;
    if (ageMs < t.heartbeatMs / 2) return false;
  }
  const next = termAfter(s.durable.term);
  const pg = s.pg;
  if (next === null || pg === null) return false;
  st.set({ withdrawCheck: { term: s.durable.term, sentAtMs: s.nowMs, answer: null, reason: c?.reason ?? null } });
  st.send(s.settings.quorum.id, {
    ...st.envelope(), term: next, kind: 'vote-request', lastTerm: s.durable.term, lsn: pg.lsn, timeline: pg.timeline,
  });
  if (c === null) st.because(`${s.durable.primaryOfTerm} failed and no promise binds this node: asking etcd whether its leader key is gone`);
  return false;
}

/**
 * etcd's answer to the question before withdrawing; false when `msg` is not that answer. A "gone"
 * withdraws in this very step (the standby's checks are made again first).
 */
export function onWithdrawCheckReply(st: Step, msg: VoteReply): boolean {
  const s = st.s;
  const c = s.withdrawCheck;
  if (c === null || c.answer !== null || s.withdrawal !== null || msg.granted) return false;
  if (msg.from !== s.settings.quorum.id || s.nowMs - c.sentAtMs > s.settings.timings.requestTimeoutMs) return false;
  const answer = msg.leaderKeyGone === true ? 'gone' : 'held';
  st.set({ withdrawCheck: { ...c, answer, reason: msg.reason } });
  if (answer === 'held' && c.reason !== msg.reason) st.because(`not withdrawing: ${msg.reason}`);
  return true;
}

/** stop-wal-receiver finished on a standby that withdraws; false when it was not for a withdrawal. */
export function onWithdrawStopped(st: Step, r: EffectResult): boolean {
  const s = st.s;
  const w = s.withdrawal;
  if (w === null || w.phase !== 'stopping') return false;
  if (!r.ok) {
    st.set({ withdrawal: null });
    st.because(`could not withdraw: stopping the WAL receiver failed: ${r.detail}`);
    return true;
  }
  // An under-reported final position would let a less advanced candidate pass promotionSafety: with
  // none reported, nothing is published (the stop is tried again while the primary stays failed).
  if (r.finalLsn === undefined) {
    st.set({ withdrawal: null, receiverStopped: true });
    st.because('could not withdraw: the WAL receiver stopped without reporting its final position');
    return true;
  }
  const flushLsn = r.finalLsn;
  const timeline = s.pg?.timeline ?? 0;
  st.set({
    withdrawal: {
      phase: 'withdrawn', term: w.term, sinceMs: s.nowMs, flushLsn, timeline, askedAtMs: null, blockedBy: w.blockedBy ?? null,
    },
    receiverStopped: true,
  });
  st.because(`withdrawn for term ${w.term + 1}: final position ${flushLsn} on timeline ${timeline}`);
  return true;
}

function askOrResume(st: Step): void {
  const s = st.s;
  const w = s.withdrawal;
  if (w === null || w.phase === 'stopping') return;
  if (w.phase === 'resuming') {
    // Its position is taken back: the receiver starts once the pipeline is free (again after a failure).
    if (s.inFlight === null) st.effect(resumeEffect(s));
    return;
  }
  const t = s.settings.timings;
  const waitMs = t.requestTimeoutMs + t.heartbeatMs;
  if (w.phase === 'clearing') {
    // No answer to the position-clear: withdrawn again, and decide anew.
    if (w.askedAtMs !== null && s.nowMs - w.askedAtMs >= waitMs) st.set({ withdrawal: { ...w, phase: 'withdrawn', askedAtMs: null } });
    return;
  }
  if (s.campaign !== null) {
    if (s.nowMs - s.campaign.sentAtMs < waitMs) return;
    st.set({ campaign: null });
  }
  const ps = primaryStatus(s);
  const claims = ps !== null && ps.term === s.durable.term && ps.primaryOfTerm === s.durable.primaryOfTerm;
  const healthy = primaryHealthy(s);
  // The term did not move for long enough while the primary's agent still answers as its primary (and
  // did not give the lease back): no election is coming, and that primary may be fenced only for want
  // of this standby's grant (etcd out of reach). A primary that cannot be seen keeps it withdrawn:
  // its final position stays published for the others' election.
  const long = claims && s.releasedTerm !== s.durable.term && s.nowMs - w.sinceMs >= resumeAfterMs(s);
  // About one request to the quorum per heartbeat (a vote request or a position-clear), paced by
  // half a heartbeat: the first ask goes out when the receiver stopped, between two ticks, and a pace
  // of a whole heartbeat would make the next tick skip it, so a refusal cost two heartbeats.
  if (w.askedAtMs !== null && s.nowMs - w.askedAtMs < t.heartbeatMs / 2) return;
  if (healthy || long) {
    st.set({ withdrawal: { ...w, phase: 'clearing', askedAtMs: s.nowMs } });
    st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'position-clear' });
    const why = healthy ? `${s.durable.primaryOfTerm} is a healthy primary` : `term ${s.durable.term} did not move for ${Math.round(s.nowMs - w.sinceMs)} ms`;
    st.because(`resuming: ${why}; taking back the published position first`);
    return;
  }
  const next = termAfter(s.durable.term);
  if (next === null) return;
  const windowOpen = s.nowMs - w.sinceMs < s.settings.electionWindowMs;
  st.set({ campaign: { term: next, sentAtMs: s.nowMs }, withdrawal: { ...w, askedAtMs: s.nowMs } });
  st.send(s.settings.quorum.id, {
    ...st.envelope(),
    term: next,
    kind: 'vote-request',
    lastTerm: s.durable.term,
    lsn: w.flushLsn,
    timeline: w.timeline,
    withdrawn: { flushLsn: w.flushLsn, timeline: w.timeline, windowOpen, eligible: (w.blockedBy ?? null) === null },
  });
  if (w.askedAtMs === null) st.notify('vote-requested', `asked ${s.settings.quorum.id} for term ${next} (withdrawn at ${w.flushLsn})`);
}

/**
 * How long a standby whose primary_conninfo names the term's (promoted, healthy) primary may go
 * without streaming before it asks `follow` again: longer than a receiver's reconnect takes.
 */
function stallMs(s: AgentState): number {
  const t = s.settings.timings;
  return receiverSilenceMs(t) + 2 * t.heartbeatMs;
}

/** resume-wal-receiver from the term's primary (a restarted agent's port no longer knows the old upstream). */
function resumeEffect(s: AgentState): Effect {
  const primary = s.durable.primaryOfTerm;
  return primary === null || primary === s.settings.self ? { kind: 'resume-wal-receiver' } : { kind: 'resume-wal-receiver', primary };
}

/** The term's primary, as its agent reported this heartbeat, is a healthy primary of our term. */
function primaryHealthy(s: AgentState): boolean {
  const ps = primaryStatus(s);
  return ps !== null && ps.term === s.durable.term && ps.primaryOfTerm === s.durable.primaryOfTerm
    && showsHealthyPrimary(ps);
}

/** The quorum's Ack of a position-clear: accepted, the receiver resumes; refused, still withdrawn. */
export function onPositionCleared(st: Step, accepted: boolean, reason: string): void {
  const s = st.s;
  const w = s.withdrawal;
  if (w === null && s.positionClearSentAtMs !== null) {
    // The clear before streaming again after a restart (followIfNeeded).
    st.set({ positionClearSentAtMs: null, ...(accepted ? { positionClearTerm: s.durable.term } : {}) });
    if (!accepted) st.because(`position not taken back: ${reason}`);
    return;
  }
  if (w === null || w.phase !== 'clearing') return;
  if (!accepted) {
    st.set({ withdrawal: { ...w, phase: 'withdrawn' } });
    st.because(`position not taken back: ${reason}`);
    return;
  }
  st.set({ withdrawal: { ...w, phase: 'resuming' }, positionClearTerm: s.durable.term });
  if (s.inFlight === null) st.effect(resumeEffect(s));
}

/** resume-wal-receiver or follow finished. */
export function onReceiverBack(st: Step, kind: 'resume-wal-receiver' | 'follow', r: EffectResult): void {
  const s = st.s;
  if (kind === 'resume-wal-receiver' && s.withdrawal?.phase === 'resuming') {
    if (!r.ok) {
      st.because(`resume-wal-receiver failed: ${r.detail}; will retry`);
      return;
    }
    st.set({ withdrawal: null, receiverStopped: false, peerFailedChecks: 0, receiverStartedAtMs: s.nowMs });
    st.because('resumed the WAL receiver');
    return;
  }
  if (r.ok) {
    // Until the next observation shows it: the receiver streams from the term's primary now.
    const pg = s.pg === null ? null : { ...s.pg, upstream: s.durable.primaryOfTerm };
    st.set({ receiverStopped: false, follow: null, pg, receiverStartedAtMs: s.nowMs });
    st.because(kind === 'follow' ? `following ${s.durable.primaryOfTerm}: ${r.detail}` : 'resumed the WAL receiver');
    return;
  }
  const diverged = kind === 'follow' && r.detail.startsWith('diverged:');
  st.set({ follow: { term: s.durable.term, diverged, failedAtMs: s.nowMs } });
  st.because(`${kind} failed: ${r.detail}${diverged ? '; rewinding' : '; will retry'}`);
}

/**
 * A standby whose receiver is stopped, or whose upstream is not the term's primary, once that
 * primary has finished promoting: follow it (a rewind when PostgreSQL refused its timeline). True
 * when this step started something.
 */
function followIfNeeded(st: Step): boolean {
  const s = st.s;
  const pg = s.pg;
  const primary = s.durable.primaryOfTerm;
  if (pg === null || !pg.running || !pg.inRecovery || primary === null || primary === s.settings.self) return false;
  if (s.withdrawal !== null) return false;
  if (s.inFlight !== null) return s.inFlight.kind === 'follow' || s.inFlight.kind === 'rejoin' || s.inFlight.kind === 'resume-wal-receiver';
  if (s.fenceInFlight !== null) return false;
  const ps = statusOf(s, primary);
  const promoted = ps !== null && ps.term === s.durable.term && ps.primaryOfTerm === primary
    && !ps.pg.inRecovery && ps.pg.running;
  if (!promoted) return false;
  const elsewhere = pg.upstream !== undefined && pg.upstream !== primary;
  // A follow that failed in this term (the primary went down again before we streamed) leaves
  // primary_conninfo naming it without a stream: it is tried again, not taken as done.
  const failed = s.follow !== null && s.follow.term === s.durable.term && !pg.streaming;
  // Named in primary_conninfo but not streaming for long (since the agent started, the last stream
  // or the last follow): after an agent restart during a rewind, or between a diverged follow and
  // it, nothing else remembers the fork. Asking `follow` again finds it (review-17b G5).
  const stalled = !pg.streaming && pg.upstream === primary && !s.receiverStopped
    && s.nowMs - Math.max(s.bootAtMs, s.lastStreamingAtMs ?? s.bootAtMs, s.receiverStartedAtMs ?? s.bootAtMs)
      >= stallMs(s);
  if (!elsewhere && !s.receiverStopped && !failed && !stalled) return false;
  // After a restart this node may have left a position of this term published (it had withdrawn):
  // streaming again would make it no longer final, so it is taken back first.
  if (s.positionClearTerm !== s.durable.term) {
    const t = s.settings.timings;
    const sent = s.positionClearSentAtMs;
    const waiting = sent !== null && s.nowMs - sent < t.requestTimeoutMs + t.heartbeatMs;
    if (waiting) return true;
    st.set({ positionClearSentAtMs: s.nowMs });
    st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'position-clear' });
    st.because(`taking back any position published in term ${s.durable.term} before streaming from ${primary} again`);
    return true;
  }
  const f = s.follow;
  if (f !== null && f.term === s.durable.term) {
    if (f.diverged) {
      st.effect({ kind: 'rejoin', primary });
      st.because(`rewinding to follow ${primary}: its timeline forked before this node's position`);
      return true;
    }
    if (s.nowMs - f.failedAtMs < 2 * s.settings.timings.heartbeatMs) return false;
  }
  if (elsewhere || pg.upstream === undefined || failed || stalled) {
    st.effect({ kind: 'follow', primary });
    st.because(`following ${primary}, primary of term ${s.durable.term}${elsewhere ? ` (streaming from ${pg.upstream ?? 'nowhere'})` : ''}`);
  } else {
    st.effect(resumeEffect(s));
    st.because(`resuming the WAL receiver from ${primary}`);
  }
  return true;
}

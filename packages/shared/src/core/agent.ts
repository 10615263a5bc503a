// The decision core of a database node's agent: pure step functions from (state, input) to
// (state, output in ordered groups, one-sentence reason). Time arrives in every input as `nowMs`, read from
// the node's monotonic clock by the shell (or the simulator's drifting clock).
//
// This file is the loop of docs/design.md ("The decision loop"): each input updates what the node
// knows, then `evaluate` decides with everything known. The sub-machines live in core/agent/:
// lease.ts (the holder's lease), vip.ts, promotion.ts, sync.ts, switchover.ts, rejoin.ts,
// campaign.ts; requests.ts answers other nodes; term.ts is the one way into a term.

import type { EffectResult } from './actions.js';
import { assumedPromise } from './grantor.js';
import type { AgentStatus, NodeId, PeerReply, PgSnapshot } from './messages.js';
import { bootstrap, maybeCampaign, onVoteReply } from './agent/campaign.js';
import {
  isOtherNode, isPrimaryOfTerm, leaseRemainingMs, manyNodes, primaryStatus, releasedOwnLease, restartHeld,
  showsHealthyPrimary,
} from './agent/facts.js';
import { initialFence, onFenceDone, unfenced } from './agent/fence.js';
import {
  checkLease, initialLease, onLeaseReply, releaseIfPgFailed, renewLease, restartFencedPostgres,
} from './agent/lease.js';
import {
  initialPromotion, onPromoted, onPromotionSyncCleared, onReceiverStopped, promoting,
} from './agent/promotion.js';
import { initialRejoin, onRejoinDone, rejoinIfPossible } from './agent/rejoin.js';
import { onRequest } from './agent/requests.js';
import { onRestartDone, progressRestart, restartFenced, restartObserved } from './agent/restart.js';
import type { AgentDurable, AgentInput, AgentOutput, AgentSettings, AgentState, WriteProbe } from './agent/state.js';
import { Step } from './agent/step.js';
import { fenceDoneForSwitchover, onQuorumHandoverDone, progressSwitchover, switchoverStops } from './agent/switchover.js';
import { initialSync, manageSync, noteReplyAges, onSyncReply, onSyncStandbySet } from './agent/sync.js';
import { adoptTerm } from './agent/term.js';
import {
  manageClaimSync, noteStreamingReplicas, onCatchUpDone, onClaimRecordReply, onSyncSet, unknownClaimSync,
} from './agent/claim-sync.js';
import { nodesStandby, onPositionCleared, onReceiverBack, onWithdrawStopped } from './agent/withdrawal.js';
import { checkVip, initialVip, onVipEffectDone, vipAfterUnfenced, vipPipeline } from './agent/vip.js';

export type {
  AgentDurable, AgentInput, AgentOutput, AgentSettings, AgentState, InFlight, WriteProbe,
} from './agent/state.js';
export { defaultAgentSettings } from './agent/state.js';
export { agentRole, agentStatus, isPrimaryOfTerm, leaseRemainingMs, leaseValidUntilMs } from './agent/facts.js';
export type { CampaignState } from './agent/campaign.js';
export type { FenceState } from './agent/fence.js';
export type { HolderLease, HolderRelease, LeaseSend } from './agent/lease.js';
export type { PromotionState } from './agent/promotion.js';
export { rejoinBackoffMs, type RejoinState } from './agent/rejoin.js';
export type { RestartState } from './agent/restart.js';
export type { SwitchoverState } from './agent/switchover.js';
export type { SyncState } from './agent/sync.js';
export { vipErrorAfterFailures, type VipPhase, type VipState } from './agent/vip.js';
export { resumeAfterMs, type FollowState, type WithdrawalState } from './agent/withdrawal.js';
export type { ClaimSyncState } from './agent/claim-sync.js';

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
    peers: {},
    peerFailedChecks: 0,
    lastStreamingAtMs: null,
    writeProbeFailures: 0,
    maintenance: false,
    primaryReport: null,
    // I6: a restarted node cannot know what it promised before the crash, so it behaves as if it had
    // promised the current primary a full lease at boot.
    promise: assumedPromise(durable, settings.self, nowMs, settings.timings),
    releasedTerm: null,
    nextEffectId: 1,
    inFlight: null,
    fenceInFlight: null,
    vipInFlight: null,
    lease: initialLease(seqBase),
    fence: initialFence,
    vip: initialVip,
    promotion: initialPromotion,
    sync: initialSync,
    switchover: null,
    rejoin: initialRejoin,
    campaign: null,
    restart: null,
    claimSync: unknownClaimSync,
    withdrawal: null,
    withdrawCheck: null,
    receiverStopped: false,
    follow: null,
    positionClearTerm: null,
    positionClearSentAtMs: null,
  };
}

// ---------------------------------------------------------------------------------------------
// The loop: each input updates what is known; then decide.

export function stepAgent(state: AgentState, input: AgentInput): AgentOutput {
  const st = new Step({ ...state, nowMs: Math.max(state.nowMs, input.nowMs) });
  switch (input.kind) {
    case 'tick':
      noteReplyAges(st, input.replyAgeMs);
      observe(st, input.pg, input.writeProbe, input.peer, input.peers);
      evaluate(st);
      renewLeaseIfPrimary(st);
      return st.output('nothing to do');
    case 'request': {
      const next = onRequest(st, input.msg, input.peerLeaseValidMs);
      if (next !== 'answered') evaluate(st);
      if (next === 'evaluate-and-renew') renewLeaseIfPrimary(st);
      return st.output(`answered ${input.msg.kind} from ${input.msg.from}`);
    }
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
      return st.output(`resumed after ${Math.round(input.pausedMs)} ms without running`, true);
  }
}

/** Decide what to do now, given everything known. Called after every input that changes it. */
function evaluate(st: Step): void {
  checkLease(st); // rule one: a lapsed lease fences before anything else
  checkVip(st);
  if (isPrimaryOfTerm(st.s)) actAsPrimary(st);
  else actAsNonPrimary(st);
}

function actAsPrimary(st: Step): void {
  const pg = st.s.pg;
  if (pg === null) return;
  if (progressRestart(st)) return;
  // Three or more nodes: a switchover stops the server on purpose (its fence); not a failure.
  if (st.s.switchover !== null && switchoverStops(st.s)) return progressSwitchover(st);
  if (releaseIfPgFailed(st)) return;
  if (pg.inRecovery) return promoting(st);
  if (!pg.running) return restartFencedPostgres(st);
  if (st.s.switchover !== null) return progressSwitchover(st);
  const s = st.s;
  if (leaseRemainingMs(s) === 0) return;
  const fencedOrReadOnly = s.fence.fenced || !pg.writable;
  if (fencedOrReadOnly && s.fenceInFlight === null && s.inFlight === null && !releasedOwnLease(s)) {
    // The lease came back in the same term: nobody else can have been elected, so writes may resume.
    st.effect({ kind: 'unfence' });
    st.because(`lease regained for term ${s.durable.term}: unfencing`);
    return;
  }
  if (fencedOrReadOnly) return;
  // The VIP's next step runs in its own slot, beside the pipeline's (agent/vip.ts).
  vipPipeline(st);
  if (st.s.inFlight !== null) return;
  // Three or more nodes: quorum commit by the plan (etcd only); two nodes keep the standby's standing.
  if (manyNodes(s)) manageClaimSync(st);
  else manageSync(st);
}

function actAsNonPrimary(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return;
  if (s.durable.term === 0) return bootstrap(st);
  if (progressRestart(st)) return;
  if (!pg.inRecovery) return rejoinIfPossible(st);
  if (s.inFlight !== null && s.inFlight.kind === 'rejoin') return;
  // Three or more nodes: withdraw, then ask (docs/design.md, "More than one standby"); a term whose
  // primary is unknown is asked for again as with two.
  if (manyNodes(s) && !(s.durable.primaryOfTerm === null && s.durable.term > 0)) return nodesStandby(st);
  maybeCampaign(st);
}

function renewLeaseIfPrimary(st: Step): void {
  if (isPrimaryOfTerm(st.s) && st.s.switchover === null) renewLease(st);
}

// ---------------------------------------------------------------------------------------------
// What each input teaches.

function observe(
  st: Step, pg: PgSnapshot, writeProbe: WriteProbe, peer: AgentStatus | null,
  polled: Readonly<Record<NodeId, AgentStatus | null>> | undefined,
): void {
  const peers = polled ?? { [st.s.settings.peer]: peer };
  st.set({ peers });
  const s = st.s;
  // The term's primary as this heartbeat saw it (with two nodes: the peer's status).
  const primary = primaryStatus(s);
  const peerFailed = peerCheckFailed(s, pg, primary);
  // A standby that streamed until its primary's planned restart began counts as streaming through it:
  // the primary writes nothing meanwhile (it restarts behind its fence), and its renewals report the
  // final LSN. So a restart that outlasts its deadline meets an eligible standby, as a failure would.
  const streamedThrough = peerRestarting(s, primary) && s.lastStreamingAtMs !== null
    && s.nowMs - s.lastStreamingAtMs <= s.settings.timings.streamingGraceMs;
  // A planned restart's down server is no failure while its hold lasts (agent/restart.ts).
  const probeFailed = !restartHeld(s)
    && (writeProbe === 'stalled' || writeProbe === 'failed' || (!pg.running && isPrimaryOfTerm(s)));
  st.set({
    pg,
    peer,
    peerFailedChecks: peerFailed ? s.peerFailedChecks + 1 : 0,
    lastStreamingAtMs: pg.streaming || streamedThrough ? s.nowMs : s.lastStreamingAtMs,
    // Three or more nodes: streaming from the term's primary itself (its timeline, its writes).
    ...(manyNodes(s) && pg.streaming && pg.upstream === s.durable.primaryOfTerm && !isPrimaryOfTerm(s)
      ? { streamedTerm: s.durable.term } : {}),
    // A probe still in flight ('not-run') neither counts nor clears: a stalled probe outlives ticks.
    writeProbeFailures: probeFailed
      ? s.writeProbeFailures + 1
      : writeProbe === 'not-run' && pg.running ? s.writeProbeFailures : 0,
  });
  restartObserved(st);
  // Three or more nodes: when each standby last streamed from here, at every look (the degrade counts from it).
  if (manyNodes(s) && pg.replicas !== undefined) noteStreamingReplicas(st, pg.replicas);
  if (peerFailed && st.s.peerFailedChecks === s.settings.timings.failureChecks) {
    st.notify('failure-detected', `${s.durable.primaryOfTerm ?? s.settings.peer} failed ${st.s.peerFailedChecks} consecutive checks`);
  }
  // Terms are learned from every node's status (with two: the peer's), the highest first.
  const statuses = Object.values(peers).filter((p): p is AgentStatus => p !== null).sort((a, b) => b.term - a.term);
  for (const other of statuses) {
    const d = st.s.durable;
    if (other.term > d.term || (other.term === d.term && d.primaryOfTerm === null)) {
      adoptTerm(st, other.term, other.primaryOfTerm, other.from);
    }
  }
  // Maintenance as the primary's agent reports it (with two nodes: the peer's, in our term).
  const teller = manyNodes(st.s) ? primaryStatus(st.s) : peer;
  if (teller !== null && !isPrimaryOfTerm(st.s) && teller.term === st.s.durable.term) {
    st.set({ maintenance: teller.maintenance });
  }
}

/**
 * Our primary says it runs a planned restart, in our term, holding its lease: it has not failed (its
 * own deadline bounds the claim, and while the lease lasts no failover could follow anyway).
 */
function peerRestarting(s: AgentState, peer: AgentStatus | null): boolean {
  const primary = s.durable.primaryOfTerm;
  return peer !== null && peer.restarting === true && peer.term === s.durable.term
    && isOtherNode(s, primary) && peer.from === primary && peer.primaryOfTerm === primary
    && peer.leaseRemainingMs > 0;
}

/**
 * One check of the term's primary (another node: with two, the peer) failed: judged on two signals,
 * never on the agent alone.
 */
function peerCheckFailed(s: AgentState, pg: PgSnapshot, peer: AgentStatus | null): boolean {
  if (isPrimaryOfTerm(s) || !isOtherNode(s, s.durable.primaryOfTerm)) return false;
  if (peerRestarting(s, peer)) return false;
  // A reachable agent is believed about its primary, unless WAL still streams from a writable server.
  if (peer !== null) return !(showsHealthyPrimary(peer) || (pg.streaming && peer.pg.running && peer.pg.writable));
  // Agent unreachable: only a failure if PostgreSQL stopped streaming to us too.
  return !pg.streaming;
}

/** Replies to our own requests; a term they carry is learned first. */
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
      return manyNodes(s) ? onClaimRecordReply(st, msg) : onSyncReply(st, msg);
    case 'ack':
      // The quorum's only Ack to a standby: its position-clear (three or more nodes).
      if (msg.from === s.settings.quorum.id) onPositionCleared(st, msg.accepted, msg.reason);
      return;
  }
}

/** An effect finished: the fence slot's, or the pipeline's, each handed to its sub-machine. */
function onEffectDone(st: Step, r: EffectResult): void {
  const s = st.s;
  if (s.fenceInFlight !== null && s.fenceInFlight.id === r.id) {
    onFenceDone(st, r);
    if (r.ok) fenceDoneForSwitchover(st, r.finalLsn);
    if (r.ok) restartFenced(st, r.finalLsn ?? s.pg?.lsn ?? 0n);
    return;
  }
  if (s.vipInFlight !== null && s.vipInFlight.id === r.id) {
    st.set({ vipInFlight: null });
    return onVipEffectDone(st, s.vipInFlight.kind, r);
  }
  const f = s.inFlight;
  if (f === null || f.id !== r.id) return; // a result from an earlier incarnation or a stale effect
  st.set({ inFlight: null });
  if (f.kind === 'rejoin') onRejoinDone(st, r);
  if (f.kind === 'restart-postgres') onRestartDone(st, r);
  if (f.kind === 'quorum-handover') return onQuorumHandoverDone(st, r);
  if (f.kind === 'stop-wal-receiver' && !isPrimaryOfTerm(s) && onWithdrawStopped(st, r)) return;
  if (f.kind === 'follow' || f.kind === 'resume-wal-receiver') return onReceiverBack(st, f.kind, r);
  if (f.kind === 'sync-catch-up') onCatchUpDone(st, r.ok);
  if (!r.ok) {
    st.because(`${f.kind} failed: ${r.detail}; will retry`);
    return;
  }
  switch (f.kind) {
    case 'stop-wal-receiver':
      // A withdrawal's stop that ended after a new term (three or more nodes): the receiver stays
      // stopped until this standby follows the new primary.
      if (manyNodes(s) && !isPrimaryOfTerm(s)) return st.set({ receiverStopped: true });
      return onReceiverStopped(st);
    case 'set-sync-standby': {
      const standby = f.effect.kind === 'set-sync-standby' ? f.effect.standby : null;
      if (onSyncStandbySet(st, standby)) onPromotionSyncCleared(st);
      return;
    }
    case 'set-sync': {
      if (isPrimaryOfTerm(s) && s.pg?.inRecovery) return onPromotionSyncCleared(st);
      if (f.effect.kind === 'set-sync') onSyncSet(st, f.effect.claim);
      return;
    }
    case 'promote':
      return onPromoted(st);
    case 'unfence':
      unfenced(st);
      vipAfterUnfenced(st);
      st.set({ pg: st.s.pg === null ? null : { ...st.s.pg, writable: true } });
      return;
    case 'fence':
    case 'start-postgres':
    case 'restart-postgres':
    case 'rejoin':
    case 'verify-vip':
    case 'move-vip-cloud':
    case 'add-vip-local':
    case 'drop-vip-local':
    case 'sync-catch-up':
      return;
  }
}

// Synchronous replication, managed by the primary with the witness as arbiter: sync is turned on
// once the standby streams; the witness must confirm the standby in sync before it counts as
// eligible, and must agree before commits stop waiting for a standby that fell behind.

import type { NodeId, SyncUpdateReply } from '../messages.js';
import { quorumName } from '../quorum.js';
import { isPrimaryOfTerm } from './facts.js';
import type { AgentState } from './state.js';
import type { Step } from './step.js';

export interface SyncState {
  /** The witness confirmed our standby as the synchronous one in this term. */
  readonly confirmedAtWitness: boolean;
  /** Since when the standby has been out of sync, or null while it is in sync. */
  readonly lostSinceMs: number | null;
  /** When our unanswered sync-update went to the witness (one per heartbeat at most), or null. */
  readonly requestSentAtMs: number | null;
  /**
   * Primary: when each standby last replied, by the last tick's `replyAgeMs` (this agent's clock); a
   * standby is absent when that tick had no walsender row for it, or no ages at all.
   */
  readonly lastReplyAtMs: Readonly<Record<NodeId, number>>;
}

export const initialSync: SyncState = {
  confirmedAtWitness: false, lostSinceMs: null, requestSentAtMs: null, lastReplyAtMs: {},
};

/** The tick's reply ages as times (a step that is no tick may come later: the ages would be stale). */
export function noteReplyAges(st: Step, replyAgeMs: Readonly<Record<NodeId, number>> | undefined): void {
  const lastReplyAtMs: Record<NodeId, number> = {};
  for (const [node, age] of Object.entries(replyAgeMs ?? {})) {
    if (age >= 0) lastReplyAtMs[node] = st.s.nowMs - age;
  }
  if (Object.keys(lastReplyAtMs).length === 0 && Object.keys(st.s.sync.lastReplyAtMs).length === 0) return;
  st.set({ sync: { ...st.s.sync, lastReplyAtMs } });
}

/** The primary's sync step, when no effect is in flight and no VIP step was due. */
export function manageSync(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null || s.settings.replication !== 'sync') return;
  const t = s.settings.timings;
  const peer = s.settings.peer;
  const ps = s.peer;
  const peerStreaming = ps !== null && ps.term === s.durable.term && ps.pg.inRecovery && ps.pg.streaming;
  if (pg.syncStandby === null) {
    // Turning sync on is always safe (it only makes commits wait); do it once the standby streams.
    if (peerStreaming) st.effect({ kind: 'set-sync-standby', standby: peer });
    return;
  }
  const askDue = s.sync.requestSentAtMs === null || s.nowMs - s.sync.requestSentAtMs >= t.heartbeatMs;
  if (pg.standbyInSync) {
    st.set({ sync: { ...s.sync, lostSinceMs: null } });
    if (!s.sync.confirmedAtWitness && askDue) {
      st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'sync-update', standby: peer, change: 'restore' });
      st.set({ sync: { ...st.s.sync, requestSentAtMs: s.nowMs } });
    }
    return;
  }
  const lostSince = s.sync.lostSinceMs ?? lossBeganAtMs(s, peer);
  st.set({ sync: { ...s.sync, lostSinceMs: lostSince } });
  // degrade 'block': commits wait for the standby rather than run without it.
  if (s.nowMs - lostSince >= t.syncDegradeAfterMs && askDue && s.settings.degrade !== 'block') {
    st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'sync-update', standby: peer, change: 'degrade' });
    st.set({ sync: { ...st.s.sync, requestSentAtMs: s.nowMs } });
    st.because(`asking ${quorumName(s.settings.quorum.backend)} to degrade to async: ${peer} not in sync for ${Math.round(s.nowMs - lostSince)} ms`);
  }
}

/**
 * When a standby's loss began, as known now: its last reply when the shell reported it, else now.
 * The shell counts a standby lost only after some silence (3 s: a slow standby is no lost one), while
 * commits have waited since its last reply; syncDegradeAfterMs counts from there, not from the
 * detection, so writes block for the longer of the two, not for their sum.
 */
export function lossBeganAtMs(s: AgentState, node: NodeId): number {
  return Math.min(s.nowMs, s.sync.lastReplyAtMs[node] ?? s.nowMs);
}

export function onSyncReply(st: Step, msg: SyncUpdateReply): void {
  const s = st.s;
  // A refusal is asked again a heartbeat after the request, as an unanswered one is: asking at once
  // (in the step the refusal arrives in) made a ping-pong as fast as the round trip, 33 a second in
  // the flap row, while the quorum's view stays what it was.
  if (!msg.granted) return;
  const pg = s.pg;
  if (pg === null) return;
  if (pg.syncStandby !== null && !pg.standbyInSync) {
    // The witness marked the standby ineligible: only now may commits stop waiting for it.
    if (s.inFlight === null) {
      st.effect({ kind: 'set-sync-standby', standby: null });
      const etcd = s.settings.quorum.backend === 'etcd';
      st.notify('sync-degraded', `${s.settings.peer} lost; replication degraded to async with ${etcd ? 'etcd\'s' : 'witness'} agreement`);
      st.because(`degrading to async with ${etcd ? 'etcd' : 'the witness'}'s agreement`);
    }
    st.set({ sync: { ...initialSync, lastReplyAtMs: s.sync.lastReplyAtMs } });
  } else if (pg.standbyInSync) {
    st.set({ sync: { ...s.sync, confirmedAtWitness: true, lostSinceMs: null, requestSentAtMs: null } });
    st.notify('sync-restored', `${s.settings.peer} is the synchronous standby again`);
  }
}

/**
 * The sync standby setting took effect. In a promotion it was the clearing step (true returned);
 * otherwise remember what we set until the next observation shows it, so it is not set again.
 */
export function onSyncStandbySet(st: Step, standby: string | null): boolean {
  const s = st.s;
  if (isPrimaryOfTerm(s) && s.pg?.inRecovery) return true;
  if (s.pg !== null) {
    st.set({ pg: { ...s.pg, syncStandby: standby, standbyInSync: standby === null ? false : s.pg.standbyInSync } });
  }
  return false;
}

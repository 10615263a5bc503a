// Requests from the nodes: the witness's side of the lease (core/grantor.ts), a vote (vote.ts) and
// the sync standby's eligibility, which the witness arbitrates.

import { decideLeaseRequest, decideRelease, grantLease } from '../grantor.js';
import type { LeaseReply, NodeId, PeerReply, PeerRequest } from '../messages.js';
import { quorumName } from '../quorum.js';
import type { Step, WitnessState } from './state.js';
import { adopt } from './term.js';
import { decideVote } from './vote.js';
import { otherNode } from './watch.js';

type Req<K extends PeerRequest['kind']> = Extract<PeerRequest, { kind: K }>;

export function onRequest(st: Step, msg: PeerRequest, peerLeaseValidMs: number | undefined): void {
  const s = st.s;
  const reply = (r: PeerReply): void => st.reply(msg.from, r);
  const ack = (accepted: boolean, reason: string) => reply({ ...st.envelope(), kind: 'ack', accepted, reason });
  if (!s.settings.nodes.includes(msg.from)) return ack(false, `${msg.from} is not a member of ${s.settings.cluster}`);
  if (s.settings.quorum === 'etcd' && refusedOnEtcd(st, msg)) return;
  switch (msg.kind) {
    case 'lease-request':
      return onLeaseRequest(st, msg, peerLeaseValidMs);
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
    case 'sync-update':
      return onSyncUpdate(st, msg);
    case 'switchover-request':
    case 'restart-request':
    case 'handover':
    case 'manual-promote':
    case 'position-clear':
      return ack(false, `${msg.kind} is not for the witness`);
  }
}

/**
 * On etcd the witness only observes: it never grants, votes or arbitrates sync, whoever asks (an
 * agent whose file still says witness would otherwise get a second, unrelated quorum). True: refused.
 */
function refusedOnEtcd(st: Step, msg: PeerRequest): boolean {
  const reason = `${quorumName('etcd')} holds the quorum of ${st.s.settings.cluster}; the witness only observes`;
  const d = st.s.durable;
  switch (msg.kind) {
    case 'lease-request':
      st.reply(msg.from, {
        ...st.envelope(), kind: 'lease-reply', seq: msg.seq, granted: false, reason, maintenance: d.maintenance,
        primaryOfTerm: d.primaryOfTerm,
      });
      return true;
    case 'vote-request':
      st.reply(msg.from, { ...st.envelope(), kind: 'vote-reply', granted: false, reason, primaryOfTerm: d.primaryOfTerm });
      return true;
    case 'sync-update':
      st.reply(msg.from, { ...st.envelope(), kind: 'sync-update-reply', granted: false, reason });
      return true;
    case 'lease-release':
      st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason });
      return true;
    default:
      return false;
  }
}

function onLeaseRequest(st: Step, msg: Req<'lease-request'>, peerLeaseValidMs: number | undefined): void {
  const s = st.s;
  const answer = (granted: boolean, reason: string) => {
    const r: LeaseReply = {
      ...st.envelope(), kind: 'lease-reply', seq: msg.seq, granted, reason, maintenance: st.s.durable.maintenance,
      primaryOfTerm: st.s.durable.primaryOfTerm,
    };
    st.reply(msg.from, r);
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

function onSyncUpdate(st: Step, msg: Req<'sync-update'>): void {
  const s = st.s;
  const d = s.durable;
  const answer = (granted: boolean, reason: string) => {
    st.reply(msg.from, { ...st.envelope(), kind: 'sync-update-reply', granted, reason });
  };
  if (msg.term !== d.term || msg.from !== d.primaryOfTerm) return answer(false, `not the primary of term ${d.term}`);
  // The claim form is etcd's (the witness runs two nodes and keeps the standby's standing only).
  if (msg.change === 'record') return answer(false, 'the witness keeps no sync record: only etcd answers a claim');
  if (msg.standby !== otherNode(s, msg.from)) return answer(false, `${msg.standby} is not the standby`);
  if (msg.change === 'restore') {
    if (d.syncEligible !== msg.standby) {
      st.persist({ ...d, syncEligible: msg.standby });
      st.notify('sync-restored', `${msg.standby} is the synchronous standby of ${msg.from} again`);
      st.because(`${msg.standby} marked sync-eligible`);
    }
    return answer(true, 'standby is sync-eligible');
  }
  // Degrade only when the witness sees the standby gone too; then it is ineligible BEFORE the
  // primary stops waiting for it, so no acknowledged write can be missing on a promotable node.
  if (!standbyLooksGone(s, msg.standby)) return answer(false, `${msg.standby} looks healthy and streaming from here`);
  if (d.syncEligible !== null) {
    st.persist({ ...d, syncEligible: null });
    st.notify('sync-degraded', `${msg.standby} lost: ${msg.from} may run async; ${msg.standby} is ineligible until it catches up`);
    st.because(`agreed to degrade ${s.settings.cluster} to async`);
  }
  return answer(true, 'degrade agreed; standby ineligible');
}

function standbyLooksGone(s: WitnessState, standby: NodeId): boolean {
  const view = s.views[standby];
  if (view === undefined || view.status === null) return true;
  const t = s.settings.timings;
  const seenRecently = view.lastSeenAtMs !== null && s.nowMs - view.lastSeenAtMs < t.failureChecks * t.heartbeatMs;
  if (!seenRecently) return true;
  return !view.status.pg.streaming;
}

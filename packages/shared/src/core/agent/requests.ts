// Requests from other nodes: the standby's side of the lease (core/grantor.ts), a handover, a forced
// promotion and a switchover request. Each returns what the step does next.

import { decideLeaseRequest, decideRelease, grantLease } from '../grantor.js';
import type { LeaseReply, PeerRequest } from '../messages.js';
import { quorumName } from '../quorum.js';
import { termAfter } from '../terms.js';
import { isOtherNode, isPrimaryOfTerm, manyNodes } from './facts.js';
import type { AgentState } from './state.js';
import { forcePromotion } from './promotion.js';
import type { Step } from './step.js';
import { onRestartRequest } from './restart.js';
import { onSwitchoverRequest } from './switchover.js';
import { adoptTerm } from './term.js';

/**
 * After a request: only answered; decide again (evaluate); or decide again and then ask for the
 * lease at once (a handed-over term comes without one).
 */
export type AfterRequest = 'answered' | 'evaluate' | 'evaluate-and-renew';

type Req<K extends PeerRequest['kind']> = Extract<PeerRequest, { kind: K }>;

export function onRequest(st: Step, msg: PeerRequest, peerLeaseValidMs: number | undefined): AfterRequest {
  switch (msg.kind) {
    case 'lease-request':
      onLeaseRequest(st, msg, peerLeaseValidMs);
      return 'answered';
    case 'lease-release':
      onLeaseRelease(st, msg);
      return 'evaluate';
    case 'handover':
      return onHandover(st, msg);
    case 'switchover-request':
      onSwitchoverRequest(st, msg);
      return 'answered';
    case 'manual-promote':
      return onManualPromote(st, msg);
    case 'restart-request':
      return onRestartRequest(st, msg) ? 'evaluate' : 'answered';
    case 'vote-request':
    case 'sync-update':
    case 'position-clear':
      // Agents do not vote or arbitrate sync; only the quorum does.
      nack(st, msg, `${msg.kind} goes to ${quorumName(st.s.settings.quorum.backend)}`);
      return 'answered';
  }
}

function nack(st: Step, msg: PeerRequest, reason: string): void {
  st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason });
}

function deny(st: Step, msg: PeerRequest, reason: string): void {
  st.because(`denied ${msg.kind} from ${msg.from}: ${reason}`);
}

function onLeaseRequest(st: Step, msg: Req<'lease-request'>, peerLeaseValidMs: number | undefined): void {
  const s = st.s;
  const reply = (granted: boolean, reason: string): void => {
    const r: LeaseReply = {
      ...st.envelope(), kind: 'lease-reply', seq: msg.seq, granted, reason, maintenance: st.s.maintenance,
      primaryOfTerm: st.s.durable.primaryOfTerm,
    };
    st.reply(msg.from, r);
  };
  if (!isOtherNode(s, msg.from)) {
    deny(st, msg, 'not the peer');
    return reply(false, `${msg.from} is not the peer of ${s.settings.self}; only the peer may hold a lease from it`);
  }
  // The grantor's rules (grantor.ts), with the standby's own refusals: it grants nothing while
  // it campaigns for the next term, nor once its PostgreSQL is a writable primary.
  const verdict = decideLeaseRequest(s.durable, msg, s.settings.timings, peerLeaseValidMs, {
    adopt: () => adoptTerm(st, msg.term, msg.from, msg.from),
    durable: () => st.s.durable,
    quorum: quorumName(s.settings.quorum.backend),
    localProblem: () => {
      // Its position is final and published: a grant would let the primary write past it.
      if (st.s.withdrawal !== null) return 'withdrawn for an election (WAL receiver stopped)';
      if (othersElecting(st.s)) {
        return 'the primary failed this node\'s checks and another standby withdrew for an election';
      }
      if (st.s.campaign !== null) return 'campaigning for the next term';
      if (st.s.pg !== null && !st.s.pg.inRecovery && st.s.pg.writable) return 'this node is not a standby';
      return null;
    },
  });
  if (!verdict.granted) {
    if (verdict.check === 'stale') deny(st, msg, 'stale term');
    else if (verdict.check === 'holder') deny(st, msg, `term belongs to ${st.s.durable.primaryOfTerm}`);
    else if (verdict.check !== 'local') deny(st, msg, verdict.reason);
    return reply(false, verdict.reason);
  }
  st.set({ ...grantLease(st.s, st.s.durable.term, msg, s.settings.timings), peerFailedChecks: 0 });
  return reply(true, 'granted');
}

/**
 * Three or more nodes: this standby sees its primary failed, and another eligible standby has
 * withdrawn (it grants the primary nothing, so the primary's lease can rest on etcd alone). Granting
 * on would keep this node's promise live, so it could never withdraw, and an election that needs its
 * final position would wait for as long as the primary keeps asking. Refusing is always safe: it can
 * only fence the primary.
 */
function othersElecting(s: AgentState): boolean {
  if (!manyNodes(s) || s.peerFailedChecks < s.settings.timings.failureChecks) return false;
  return Object.values(s.peers).some((p) => p !== null && p.withdrawn === true && p.term === s.durable.term
    && p.from !== s.durable.primaryOfTerm);
}

function onLeaseRelease(st: Step, msg: Req<'lease-release'>): void {
  const s = st.s;
  const release = decideRelease(s, s.durable, msg);
  if (release.kind === 'stale') st.because(`ignored a release from ${msg.from} older than the lease it granted since`);
  if (release.kind === 'released') {
    st.set(release.patch);
    st.because(`${msg.from} released its lease for term ${msg.term}: ${msg.reason}`);
  }
  st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'noted' });
}

function onHandover(st: Step, msg: Req<'handover'>): AfterRequest {
  const s = st.s;
  const d = s.durable;
  const repeat = msg.term === d.term && isPrimaryOfTerm(s);
  if (msg.to !== s.settings.self || (msg.term <= d.term && !repeat)) {
    nack(st, msg, 'stale or misaddressed handover');
    return 'answered';
  }
  // Only the primary of our term hands over, and only the term right after it: it persisted that
  // term itself, one above the term we share (it checked our term before it handed over).
  if (!repeat && (msg.from !== d.primaryOfTerm || msg.term !== termAfter(d.term))) {
    const why = `a handover of term ${msg.term} from ${msg.from}, but only the primary of term ${d.term} (${d.primaryOfTerm ?? 'unknown'}) may hand over, and only term ${d.term + 1}`;
    deny(st, msg, why);
    nack(st, msg, why);
    return 'answered';
  }
  if (s.pg !== null && s.pg.replayLsn < msg.finalLsn) {
    nack(st, msg, `replayed ${s.pg.replayLsn} < final ${msg.finalLsn}`);
    return 'answered';
  }
  adoptTerm(st, msg.term, s.settings.self, msg.from);
  st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: `taking over term ${msg.term}` });
  st.notify('switchover', `received term ${msg.term} from ${msg.from}`);
  // A handed-over term comes without a lease (a vote is a grant; a handover is not): ask for one
  // now rather than at the next heartbeat, or the promotion may finish first and the new primary
  // would fence itself for want of a lease, adding a lease round to the switchover's write gap.
  return 'evaluate-and-renew';
}

function onManualPromote(st: Step, msg: Req<'manual-promote'>): AfterRequest {
  const s = st.s;
  // The forced failover is the witness's vote (it persisted it before sending; on etcd, where it
  // observes, it sends this only once its forced txn moved etcd's term record to this node): from
  // anyone else it would be a term no vote created.
  if (msg.from !== s.settings.witness) {
    nack(st, msg, `a forced promotion comes from the witness ${s.settings.witness}, not ${msg.from}`);
    return 'answered';
  }
  if (msg.term <= s.durable.term) {
    nack(st, msg, `term ${msg.term} is not above ${s.durable.term}`);
    return 'answered';
  }
  adoptTerm(st, msg.term, s.settings.self, msg.from);
  forcePromotion(st, msg.term);
  st.set({ promise: null });
  st.notify('manual-failover', `${msg.requestedBy} forced promotion for term ${msg.term}, accepting data loss`);
  st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'promoting (data loss accepted)' });
  return 'evaluate';
}

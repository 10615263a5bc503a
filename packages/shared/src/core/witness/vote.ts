// The witness's vote: the tie-breaking third vote for a new term, given only when the witness too
// has seen the primary fail, its own promise has run out and the candidate may be promoted. A vote
// is also the first lease grant of its term. docs/design.md, Terms, leases, votes.

import { promiseLive } from '../grantor.js';
import type { PeerRequest, VoteReply } from '../messages.js';
import { termAfter } from '../terms.js';
import { leaseLengthConflict, promiseMs } from '../timings.js';
import type { Step, WitnessState } from './state.js';
import { enterTerm } from './term.js';
import { primaryFailed, reportBlocked } from './watch.js';

type VoteRequest = Extract<PeerRequest, { kind: 'vote-request' }>;

export function decideVote(st: Step, msg: VoteRequest, peerLeaseValidMs: number | undefined): VoteReply {
  const s = st.s;
  const d = s.durable;
  const t = s.settings.timings;
  const answer = (granted: boolean, reason: string): VoteReply => {
    st.because(`${granted ? 'voted for' : 'refused'} ${msg.from} in term ${msg.term}: ${reason}`);
    return { ...st.envelope(), kind: 'vote-reply', granted, reason, primaryOfTerm: st.s.durable.primaryOfTerm };
  };
  if (msg.term === d.votedTerm && d.votedFor === msg.from && d.primaryOfTerm === msg.from) {
    return answer(true, 'already voted for this candidate in this term');
  }
  if (msg.term <= d.term) return answer(false, `term ${msg.term} is not above ${d.term}`);
  if (msg.term !== termAfter(d.term) || msg.lastTerm !== d.term) {
    return answer(false, `candidate missed a term (it was in ${msg.lastTerm}, the cluster is in ${d.term})`);
  }
  // The vote doubles as the first lease grant of the new term: the same bound applies.
  const conflict = leaseLengthConflict(t, peerLeaseValidMs);
  if (conflict !== null) return answer(false, conflict);
  if (d.maintenance) {
    if (d.primaryOfTerm !== null && primaryFailed(s)) reportBlocked(st, 'the cluster is in maintenance');
    return answer(false, 'cluster is in maintenance');
  }
  const neverPromised = d.term === 0 && d.votedTerm === 0;
  if (s.nowMs < s.bootAtMs + promiseMs(t) && !neverPromised) {
    return answer(false, 'witness restarted recently and waits out the promises it may have made');
  }
  if (promiseLive(s)) {
    return answer(false, `lease promised to ${s.promise?.holder} for ${Math.round((s.promise?.untilMs ?? 0) - s.nowMs)} ms more`);
  }
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
    const held = minIntervalHold(s);
    if (held !== null) {
      reportBlocked(st, held);
      return answer(false, held);
    }
  }
  // The vote doubles as the first lease grant of the new term.
  enterTerm(st, msg.term, msg.from, { for: msg.from, t });
  // Kept on disk with the vote (one persist per step: enterTerm's, extended), so the minimum interval
  // between failovers outlives a restart of the witness.
  if (!bootstrap) st.persist({ ...st.s.durable, lastFailover: { atMs: s.nowMs, to: msg.from, term: msg.term } });
  st.notify('vote-granted', `voted for ${msg.from} in term ${msg.term}`);
  return answer(true, bootstrap ? 'bootstrap of the cluster' : `primary ${d.primaryOfTerm} failed`);
}

function eligibilityBlocker(s: WitnessState, msg: VoteRequest): string | null {
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

/**
 * failover.minIntervalMs: no automatic failover sooner than this after the last one this witness
 * voted for (against a ping-pong between two sick nodes). Checked last, so it is named only when a
 * failover would otherwise happen. Durable: a restarted witness still holds it. A forced manual
 * failover (witness/operator.ts) never comes here. Off (0) by default: it adds no safety, and a new
 * primary that dies inside it is not replaced on its own.
 */
function minIntervalHold(s: WitnessState): string | null {
  const min = s.settings.failoverMinIntervalMs ?? 0;
  const last = s.durable.lastFailover;
  if (min <= 0 || last === undefined) return null;
  const leftMs = last.atMs + min - s.nowMs;
  if (leftMs <= 0) return null;
  const ago = Math.round((s.nowMs - last.atMs) / 1000);
  // The standby's own eligibility (I4) runs out streamingGraceMs after it last streamed: a primary
  // that stays down for most of the interval is not replaced automatically once it ends either.
  return `failover.minIntervalMs (${min} ms) holds automatic failovers until ${Math.ceil(leftMs / 1000)} s from now `
    + `(the last one, to ${last.to} in term ${last.term}, was ${ago} s ago); none follows then unless the `
    + `standby still counts as streaming (timings.streamingGraceMs ${s.settings.timings.streamingGraceMs} ms): `
    + 'pgvip failover --force is never held';
}

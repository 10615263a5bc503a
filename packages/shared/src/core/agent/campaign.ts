// The campaign: a standby that has seen its primary fail (or release its lease), whose promise has
// run out and which may be promoted, asks the witness for the next term. A granted vote is the term
// and the witness's first lease grant at once. docs/design.md, Terms, leases, votes.

import { promiseLive } from '../grantor.js';
import { quorumName } from '../quorum.js';
import type { VoteReply } from '../messages.js';
import { termAfter } from '../terms.js';
import { leaseValidMs } from '../timings.js';
import { noteTermGrantors } from './lease.js';
import { blocker, isOtherNode } from './facts.js';
import { promotionReset } from './promotion.js';
import type { Step } from './step.js';
import { enterTerm } from './term.js';
import { vipAfterVoteWon } from './vip.js';
import { onWithdrawCheckReply } from './withdrawal.js';

/** The vote request in flight: for which term, and when it was sent. */
export interface CampaignState {
  readonly term: number;
  readonly sentAtMs: number;
}

/**
 * First start of a cluster: the node whose PostgreSQL already runs as a primary asks the witness for
 * term 1; the standby waits to learn it. The witness grants term 1 once, to one node.
 */
export function bootstrap(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null || !pg.running || pg.inRecovery) return;
  const t = s.settings.timings;
  if (s.campaign !== null && s.nowMs - s.campaign.sentAtMs < t.requestTimeoutMs + t.heartbeatMs) return;
  st.set({ campaign: { term: 1, sentAtMs: s.nowMs } });
  st.send(s.settings.quorum.id, {
    ...st.envelope(), term: 1, kind: 'vote-request', lastTerm: 0, lsn: pg.lsn, timeline: pg.timeline,
  });
  st.because(`bootstrapping the cluster: asking ${quorumName(s.settings.quorum.backend)} for term 1`);
}

export function maybeCampaign(st: Step): void {
  const s = st.s;
  const t = s.settings.timings;
  const d = s.durable;
  // When the current term's primary is unknown, we may have won it and lost the reply: ask for it again.
  const nextTerm = d.primaryOfTerm === null && d.term > 0 ? d.term : termAfter(d.term);
  if (nextTerm === null) return;
  if (s.campaign !== null) {
    if (s.nowMs - s.campaign.sentAtMs < t.requestTimeoutMs + t.heartbeatMs) return;
    st.set({ campaign: null }); // no answer: try again below
  }
  const primaryReleased = s.releasedTerm === d.term;
  // Asking again for the current term whose primary we do not know is only a question: the witness
  // grants it solely if it already voted for us in that term (its reply was lost), and otherwise
  // refuses and names the primary. It needs neither a failed primary nor eligibility (both were
  // judged when the vote was first asked for) — without it, a node that won a vote whose reply was
  // lost, and then learned the term without its primary, waited forever for a primary nobody named.
  const askingAgain = nextTerm === d.term;
  const primaryFailed = primaryReleased || s.peerFailedChecks >= t.failureChecks;
  if (!primaryFailed && !askingAgain) return;
  if (!isOtherNode(s, d.primaryOfTerm) && d.primaryOfTerm !== null) return;
  if (promiseLive(s)) return; // includes the promise a restarted node assumes it made (bootAgent)
  const why = askingAgain ? null : blocker(s);
  if (why !== null) {
    if (s.peerFailedChecks === t.failureChecks) st.because(`primary failed but this node may not promote: ${why}`);
    return;
  }
  st.set({ campaign: { term: nextTerm, sentAtMs: s.nowMs } });
  st.send(s.settings.quorum.id, {
    ...st.envelope(),
    term: nextTerm,
    kind: 'vote-request',
    lastTerm: nextTerm === d.term ? d.term - 1 : d.term,
    lsn: s.pg?.lsn ?? 0n,
    timeline: s.pg?.timeline ?? 0,
  });
  st.notify('vote-requested', `asked ${s.settings.quorum.id} for term ${nextTerm}`);
  const cause = primaryReleased ? 'primary released its lease' : `${d.primaryOfTerm ?? s.settings.peer} failed ${s.peerFailedChecks} checks`;
  st.because(`asking for the vote for term ${nextTerm}: ${cause}`);
}

export function onVoteReply(st: Step, msg: VoteReply): void {
  // Three or more nodes: etcd's answer to a standby's question before it withdraws.
  if (onWithdrawCheckReply(st, msg)) return;
  const s = st.s;
  const c = s.campaign;
  // A withdrawn standby (three or more nodes) is refused in etcd's current term, not the one it asked
  // for: it asks again at the next heartbeat rather than after requestTimeoutMs (a refusal can only
  // make it ask again, never count as a vote).
  if (c !== null && !msg.granted && s.withdrawal !== null && msg.from === s.settings.quorum.id && msg.term < c.term) {
    st.set({ campaign: null });
    st.because(`vote for term ${c.term} denied: ${msg.reason}`);
    return;
  }
  if (c === null || msg.term !== c.term) return;
  st.set({ campaign: null });
  if (!msg.granted) {
    st.because(`vote for term ${c.term} denied: ${msg.reason}`);
    return;
  }
  enterTerm(st, { term: c.term, primaryOfTerm: s.settings.self });
  // The vote is also the witness's first lease grant for the new term, counted from the request.
  const held = { term: c.term, validUntilMs: c.sentAtMs + leaseValidMs(s.settings.timings) };
  const release = st.s.lease.release.phase === 'released' ? { phase: 'none' as const } : st.s.lease.release;
  const grants = { [msg.from]: { term: c.term, untilMs: held.validUntilMs } };
  st.set({ lease: { ...st.s.lease, held, grants, release }, releasedTerm: null });
  // Three or more nodes: the won term's record names its grantors (absent: the config's, which the
  // campaign wrote).
  noteTermGrantors(st, msg);
  promotionReset(st);
  // A withdrawn standby already stopped its receiver (its final position won the election).
  if (st.s.receiverStopped) st.set({ promotion: { ...st.s.promotion, next: 'clear-sync' } });
  vipAfterVoteWon(st);
  st.notify('vote-granted', `won term ${c.term}`);
  st.because(`won term ${c.term} with the vote of ${msg.from}`);
}

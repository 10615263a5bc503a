// The one way into a term for the agent (docs/design.md, The core's shape: one way into a term).

import { isTermInRange } from '../terms.js';
import type { NodeId } from '../messages.js';
import { initialSync } from './sync.js';
import { newTermClaimSync } from './claim-sync.js';
import type { AgentDurable, AgentState } from './state.js';
import type { Step } from './step.js';

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
export function enterTerm(st: Step, durable: AgentDurable): void {
  if (durable.term > st.s.durable.term) {
    st.set({
      sync: initialSync,
      // The txn that made the term reset etcd's sync record (three or more nodes).
      claimSync: newTermClaimSync,
      withdrawal: null,
      // Positions are published per term: none of this node's counts in the new one.
      positionClearTerm: durable.term,
      positionClearSentAtMs: null,
      // Three or more nodes: the failed checks were of the old term's primary, not of the new one
      // (with two nodes the peer is the primary of either term, as before).
      ...(st.s.settings.nodes.length > 2 ? { peerFailedChecks: 0 } : {}),
      lease: { ...st.s.lease, held: null, grants: {}, release: { phase: 'none' } },
      releasedTerm: null,
      writeProbeFailures: 0,
      campaign: null,
      switchover: null,
      restart: null,
    });
  }
  st.persist(durable);
}

/**
 * Learn a higher term (or the primary of the current one). Persists before anything acts on it.
 * Callers pass only terms learned legitimately: from the witness (the voter), from the peer's
 * status or replies, or a handover; never from a lease request (see onLeaseRequest).
 */
export function adoptTerm(st: Step, term: number, primaryOfTerm: NodeId | null, source: NodeId): void {
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

// The one way into a term for the witness (docs/design.md, The core's shape: one way into a term).

import { grantByVote } from '../grantor.js';
import type { NodeId } from '../messages.js';
import { isTermInRange } from '../terms.js';
import type { Timings } from '../timings.js';
import type { Step } from './state.js';

/**
 * The one way into a term for the witness: learned (adopt), voted for (decideVote) or forced by an
 * operator. Persists the term and its primary (with the vote, when this witness cast one) and drops
 * what belonged to the old term: the sync-eligible standby (the old primary must catch up again
 * before it may ever be promoted), and with a vote, the old term's promise, release and report
 * (the vote is the first grant of the new term).
 */
export function enterTerm(
  st: Step, term: number, primaryOfTerm: NodeId | null, vote: { readonly for: NodeId; readonly t: Timings } | null,
): void {
  const d = st.s.durable;
  const syncEligible = term > d.term ? null : d.syncEligible;
  const voted = vote === null ? {} : { votedTerm: term, votedFor: vote.for };
  st.persist({ ...d, term, primaryOfTerm, syncEligible, ...voted });
  if (vote !== null) st.set(grantByVote(st.s, term, vote.for, vote.t));
}

/** Learn a term from an agent's status, or the primary of the current term from its lease request. */
export function adopt(st: Step, term: number, primary: NodeId, source: NodeId): void {
  const d = st.s.durable;
  // The wire refuses such terms already; this keeps the bound on every path into the durable state.
  if (!isTermInRange(term)) return;
  if (term < d.term || (term === d.term && d.primaryOfTerm !== null)) return;
  // A new term means the old primary must catch up again before it may ever be promoted.
  enterTerm(st, term, primary, null);
  st.set({ releasedTerm: null, primaryReport: null });
  st.because(`learned term ${term} (primary ${primary}) from ${source}`);
}

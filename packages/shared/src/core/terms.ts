// The range of terms. A term grows by one per election, switchover or forced failover, so a real
// cluster counts a few thousand in its life. Terms still arrive from peers, and a peer holding the
// cluster key can write any number: 2^53 − 1 is a valid JSON number, but one more is not a safe
// integer, and a node that adopted it could neither persist nor serve its next term. So every term
// is bounded far above any real count (2^48: an election every second for 8.9 million years) and far
// below the last safe integer (2^53 − 1, 32 times higher), so `term + 1` is exact wherever it is
// computed. Messages, status replies and state files above the bound are refused where they are
// parsed; the core also never adopts or creates one, so the bound holds on every path.

export const MAX_TERM = 2 ** 48;

/** A term a node may hold: a whole number from 0 to MAX_TERM. */
export function isTermInRange(term: number): boolean {
  return Number.isSafeInteger(term) && term >= 0 && term <= MAX_TERM;
}

/** The term after `term`, or null when that would pass MAX_TERM (no election can create it). */
export function termAfter(term: number): number | null {
  return term < MAX_TERM ? term + 1 : null;
}

/** Why no node will ever create a term beyond the bound; said when a step refuses to. */
export const termBoundReached = `term ${MAX_TERM} (2^48) is the highest a node accepts; no election can follow it: only a forged or corrupt term gets that high (docs/errors.md, PGVIP_TERM_OUT_OF_RANGE)`;

/**
 * Why a grantor must refuse a lease request for `requestTerm` without adopting it, or null (`quorum`
 * names where terms are created: "the witness", or "etcd"). Terms
 * are created only by a vote or forced failover (the witness) and a switchover's handover (the old
 * primary); a grantor learns them from the witness, from a primary's status, or from the handover.
 * A lease request only claims a term: one above every term the grantor knows was created by none of
 * those, as far as it can tell, and term 0 never has a primary.
 */
export function unvotedTermProblem(requestTerm: number, knownTerm: number, quorum = 'the witness'): string | null {
  if (requestTerm > knownTerm) {
    return `term ${requestTerm} is newer than term ${knownTerm}, the newest this node knows a vote or handover created; a lease request cannot create a term, so it is refused until this node learns the term from ${quorum} or a primary`;
  }
  if (requestTerm === 0) return 'term 0 has no primary: the cluster has not elected one yet';
  return null;
}

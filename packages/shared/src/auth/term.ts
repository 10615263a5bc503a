// The protocol-level partner of replay protection. Authentication proves who sent a message and that
// a running verifier sees it once; the term proves it is not from the past. Receivers call this with
// the highest term they have persisted (I2) before acting on any message.
import { MAX_TERM, isTermInRange } from '../core/terms.js';
import { PgvipError } from '../errors.js';

/**
 * Throws PGVIP_TERM_OUT_OF_RANGE when `messageTerm` is beyond the bound (core/terms.ts) and
 * PGVIP_STALE_TERM when it is older than `highestSeenTerm`; equal or newer within the bound passes.
 * A newer term passing here is not yet a term to adopt: the core adopts only terms that a vote or a
 * handover created (core/terms.ts, unvotedTermProblem).
 */
export function checkTerm(messageTerm: number, highestSeenTerm: number): void {
  if (!isTermInRange(messageTerm)) {
    throw new PgvipError('PGVIP_TERM_OUT_OF_RANGE', `the message carries term ${messageTerm}; terms are whole numbers from 0 to 2^48 (${MAX_TERM})`);
  }
  if (messageTerm < highestSeenTerm) {
    throw new PgvipError(
      'PGVIP_STALE_TERM',
      `the message carries term ${messageTerm}, but this node has already seen term ${highestSeenTerm}`,
    );
  }
}

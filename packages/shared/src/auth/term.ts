// The protocol-level partner of replay protection. Authentication proves who sent a message and that
// a running verifier sees it once; the term proves it is not from the past. Receivers call this with
// the highest term they have persisted (I2) before acting on any message.
import { PgvipError } from '../errors.js';

/** Throws PGVIP_STALE_TERM when `messageTerm` is older than `highestSeenTerm`; equal or newer passes. */
export function checkTerm(messageTerm: number, highestSeenTerm: number): void {
  if (messageTerm < highestSeenTerm) {
    throw new PgvipError(
      'PGVIP_STALE_TERM',
      `the message carries term ${messageTerm}, but this node has already seen term ${highestSeenTerm}`,
    );
  }
}

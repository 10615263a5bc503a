// The witness's two clocks. Every duration the protocol cares about (promises, failure checks,
// scheduled switchovers) is measured on the monotonic clock, which wall-clock jumps cannot move
// (docs/design.md, Terms, leases, votes; row 14). The wall clock only labels history events and
// converts an operator's "switch over at 14:00" into a delay, once, at the moment the command
// arrives.
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Milliseconds on a monotonic clock with an arbitrary origin (never goes backwards). */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch, as the operator's calendar understands them. */
  wallMs(): number;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

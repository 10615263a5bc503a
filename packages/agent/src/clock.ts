// The agent's only clock: monotonic milliseconds. Wall-clock jumps change nothing
// (docs/design.md, Terms, leases, votes).
export type MonotonicClock = () => number;
export const monotonicNow: MonotonicClock = () => performance.now();

/**
 * A time on monotonicNow's clock as microseconds on this host's CLOCK_MONOTONIC (what the PostgreSQL
 * commit guard compares with). performance.now() counts from the process's start on libuv's
 * uv_hrtime, which reads CLOCK_MONOTONIC, and process.hrtime.bigint() is uv_hrtime itself: the
 * offset between the two is read back to back, to within a microsecond or so.
 */
export function toHostMonotonicUs(atMs: number): bigint {
  const offsetNs = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
  return (offsetNs + BigInt(Math.round(atMs * 1e6))) / 1000n;
}

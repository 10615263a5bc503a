// The agent's only clock: monotonic milliseconds. Wall-clock jumps change nothing (DESIGN §4).
export type MonotonicClock = () => number;
export const monotonicNow: MonotonicClock = () => performance.now();

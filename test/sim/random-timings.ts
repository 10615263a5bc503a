// Random VALID timings: drawn from wide ranges, checked with the core's own timingViolations() (the
// check `pgvip check-config` makes) and drawn again if invalid, then some fields pushed to the very
// edge of what the inequalities accept, where a missing inequality would show first. The bulk run
// gives a share of its schedules such timings, so liveness and safety are shown over the whole
// space check-config accepts, not only at the defaults.
//
// One condition is the network's, not the config's: requestTimeoutMs must exceed the round trip
// (check-config cannot see the network; with every request timing out no timing can work), so
// the draw takes the schedule's longest round trip as the shortest request timeout.
import { defaultTimings, timingViolations, type QuorumTimings, type Timings } from '@pgvip/shared/core';
import type { Rng } from './rng.js';

const MAX_DRAWS = 1000;
const DRIFT_RATIOS = [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.099] as const;
/** Chance that each edge-able field is pushed to the limit of validity. */
const EDGE_P = 0.3;

type IntField = Exclude<keyof Timings, 'maxDriftRatio'>;

/** Valid on the quorum `q`'s backend (etcd adds an inequality). */
const valid = (t: Timings, q: QuorumTimings): boolean => timingViolations(t, q).length === 0;

/** One draw; about half of them break some inequality. Every value is inside the config schema's range. */
function draw(rng: Rng, minRequestTimeoutMs: number): Timings {
  const heartbeatMs = rng.int(Math.max(50, minRequestTimeoutMs + 1), 1500);
  const requestTimeoutMs = rng.int(Math.max(minRequestTimeoutMs, Math.floor(heartbeatMs / 10)), heartbeatMs);
  return {
    heartbeatMs,
    requestTimeoutMs,
    leaseMs: rng.int(500, 10_000),
    maxDriftRatio: DRIFT_RATIOS[rng.int(0, DRIFT_RATIOS.length - 1)]!,
    leaseMarginMs: rng.chance(0.2) ? 0 : rng.int(1, 300),
    failureChecks: rng.int(1, 5),
    writeProbeTimeoutMs: rng.int(requestTimeoutMs, Math.max(requestTimeoutMs, 5000)),
    writeProbeFailures: rng.int(1, 4),
    streamingGraceMs: rng.int(1000, 60_000),
    syncDegradeAfterMs: rng.int(500, 20_000),
    vipCallBudgetMs: rng.int(50, 2000),
  };
}

/** The smallest value of `field` in [lo, t[field]] that keeps t valid (t is valid; validity holds upward). */
function lowest(t: Timings, field: IntField, lo: number, q: QuorumTimings): Timings {
  const at = (v: number): Timings => ({ ...t, [field]: v });
  if (valid(at(lo), q)) return at(lo);
  let bad = lo;
  let good = t[field];
  while (good - bad > 1) {
    const mid = Math.floor((bad + good) / 2);
    if (valid(at(mid), q)) good = mid;
    else bad = mid;
  }
  return at(good);
}

/** The largest value of `field` in [t[field], hi] that keeps t valid (validity holds downward). */
function highest(t: Timings, field: IntField, hi: number, q: QuorumTimings): Timings {
  const at = (v: number): Timings => ({ ...t, [field]: v });
  if (valid(at(hi), q)) return at(hi);
  let good = t[field];
  let bad = hi;
  while (bad - good > 1) {
    const mid = Math.floor((bad + good) / 2);
    if (valid(at(mid), q)) good = mid;
    else bad = mid;
  }
  return at(good);
}

/**
 * Random timings that pass timingViolations() (on `on`'s backend), some of them at the edge of an
 * inequality, with a request timeout of at least minRequestTimeoutMs (the network's longest round trip).
 */
export function randomValidTimings(rng: Rng, minRequestTimeoutMs = 1, q: QuorumTimings = { backend: 'witness' }): Timings {
  for (let n = 0; n < MAX_DRAWS; n++) {
    let t = draw(rng, minRequestTimeoutMs);
    if (!valid(t, q)) continue;
    // The shortest lease the other timings allow, the longest request timeout and EC2 budget the
    // lease allows, the shortest grace, degrade delay and probe timeout.
    if (rng.chance(EDGE_P)) t = lowest(t, 'leaseMs', 100, q);
    if (rng.chance(EDGE_P)) t = highest(t, 'requestTimeoutMs', t.heartbeatMs, q);
    if (rng.chance(EDGE_P)) t = highest(t, 'vipCallBudgetMs', 60_000, q);
    if (rng.chance(EDGE_P)) t = lowest(t, 'streamingGraceMs', 1, q);
    if (rng.chance(EDGE_P)) t = lowest(t, 'syncDegradeAfterMs', 1, q);
    if (rng.chance(EDGE_P)) t = lowest(t, 'writeProbeTimeoutMs', 1, q);
    if (!valid(t, q)) throw new Error(`random-timings.ts pushed timings out of validity: ${JSON.stringify(t)}`);
    return t;
  }
  throw new Error(`no valid timings in ${MAX_DRAWS} draws: the ranges in random-timings.ts no longer fit timingViolations()`);
}

/** The fields that differ from the defaults, for a readable header. */
export function describeTimings(t: Timings): string {
  const diff = Object.entries(t).filter(([k, v]) => defaultTimings[k as keyof Timings] !== v);
  return diff.length === 0 ? 'default timings' : `timings ${diff.map(([k, v]) => `${k}=${v}`).join(' ')}`;
}

// Random fault schedules (fast-check arbitraries). A seed names one schedule: `randomSchedule(seed)`
// is what `npm run sim -- --seed N` replays; a quarter of the seeds run on random valid timings.
import fc from 'fast-check';
import { defaultTimings, etcdDefaultElectionTimeoutMs, type QuorumTimings, type Timings } from '@pgvip/shared/core';
import { randomValidTimings } from './random-timings.js';
import { Rng } from './rng.js';
import {
  DB_NODES, DB_NODES_3, HOSTS, hostsOf,
  type Backend, type DbNode, type Ec2FaultKind, type Fault, type Host, type Schedule,
} from './schedule.js';

const HEAL_AT = 60_000;
const END = 85_000;
const host = fc.constantFrom<Host>(...HOSTS);
const db = fc.constantFrom(...DB_NODES);
const at = fc.integer({ min: 3_000, max: 50_000 });
const dur = fc.integer({ min: 200, max: 15_000 });
const pair = fc.tuple(host, host).filter(([a, b]) => a !== b);

const kind = <K extends Fault['kind']>(k: K) => fc.constant(k);
const onPair = <T>(f: (a: Host, b: Host) => fc.Arbitrary<T>): fc.Arbitrary<T> => pair.chain(([a, b]) => f(a, b));
const ec2Fault = fc.constantFrom<Ec2FaultKind>('throttle', '5xx', 'hang', 'lost', 'stale', 'slow-remap');

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: kind('partition'), at, a: host, b: host, oneWay: fc.boolean(), durMs: dur })
      .filter((f) => f.a !== f.b),
  },
  { weight: 2, arbitrary: fc.record({ kind: kind('isolate'), at, node: host, durMs: dur }) },
  {
    weight: 1,
    arbitrary: onPair((a, b) => fc.record({
      kind: kind('loss'), at, a: fc.constant(a), b: fc.constant(b),
      p: fc.double({ min: 0.05, max: 0.5, noNaN: true }), durMs: dur,
    })),
  },
  {
    weight: 1,
    arbitrary: onPair((a, b) => fc.record({
      kind: kind('delay'), at, a: fc.constant(a), b: fc.constant(b),
      extraMs: fc.integer({ min: 10, max: 600 }), durMs: dur,
    })),
  },
  {
    weight: 1,
    arbitrary: onPair((a, b) => fc.record({
      kind: kind('flap'), at, a: fc.constant(a), b: fc.constant(b),
      cutMs: fc.integer({ min: 500, max: 2500 }), periodMs: fc.integer({ min: 3000, max: 6000 }), durMs: dur,
    })),
  },
  { weight: 2, arbitrary: fc.record({ kind: kind('crash-agent'), at, node: host, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: kind('crash-host'), at, node: host, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: kind('kill-pg'), at, node: db, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: kind('pause-host'), at, node: host, durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: kind('stall-disk'), at, node: db, durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: kind('ec2'), at, fault: ec2Fault, durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: kind('switchover'), at }) },
  { weight: 1, arbitrary: fc.record({ kind: kind('maintenance'), at, durMs: dur }) },
);

const rho = defaultTimings.maxDriftRatio;
const rate = fc.double({ min: 1 - rho, max: 1 + rho, noNaN: true });

export const scheduleArb: fc.Arbitrary<Schedule> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  clockRates: fc.record({ 'db-a': rate, 'db-b': rate, witness: rate }),
  replication: fc.oneof(
    { weight: 4, arbitrary: fc.constant('sync' as const) },
    { weight: 1, arbitrary: fc.constant('async' as const) },
  ),
  delayMs: fc.oneof(fc.constant([1, 3] as const), fc.constant([1, 40] as const)),
  duplicateP: fc.oneof(fc.constant(0), fc.constant(0.05)),
  faults: fc.array(faultArb, { minLength: 0, maxLength: 6 }).map((fs) => fs.map(clip).sort((x, y) => x.at - y.at)),
  healAtMs: fc.constant(HEAL_AT),
  endMs: fc.constant(END),
});

/** Every fault ends before the heal point. */
function clip(f: Fault): Fault {
  const room = HEAL_AT - f.at;
  if (f.kind === 'az-loss') return { ...f, durMs: Math.min(f.durMs, room), downMs: Math.min(f.downMs, room) };
  if ('durMs' in f) return { ...f, durMs: Math.min(f.durMs, room) };
  if ('downMs' in f) return { ...f, downMs: Math.min(f.downMs, room) };
  return f;
}

/** The share of random schedules that run on random valid timings instead of the defaults. */
export const RANDOM_TIMINGS_SHARE = 0.25;

/** The faults of `seed` on the default timings (what the golden transcripts pin). */
export function randomFaultSchedule(seed: number): Schedule {
  const [s] = fc.sample(scheduleArb, { seed, numRuns: 1 });
  return { ...s!, seed };
}

/**
 * The schedule of `seed`: its faults (as randomFaultSchedule, so a seed keeps its faults) and, for
 * RANDOM_TIMINGS_SHARE of the seeds, random valid timings drawn from a stream of their own.
 */
export function randomSchedule(seed: number, quorum: QuorumTimings = { backend: 'witness' }): Schedule {
  const s = randomFaultSchedule(seed);
  const rng = new Rng(seed ^ 0x7133_7133);
  if (!(rng.next() < RANDOM_TIMINGS_SHARE)) return s;
  return onTimings(s, randomValidTimings(rng, longestRoundTripMs(s), quorum));
}

/**
 * The longest request round trip of `s` once its faults healed, as a timeout on the fastest clock
 * must count it: two one-way delays, 1 ms for the fsync of a reply that persists first, 1 ms so
 * that a reply never ties with its timeout, and clocks up to 10 % fast (maxDriftRatio < 0.1).
 */
function longestRoundTripMs(s: Schedule): number {
  return Math.ceil((2 * s.delayMs[1] + 2) * 1.1);
}

/**
 * `s` on timings `t`, with the clock rates scaled from the default drift bound into t's: a node's
 * clock may drift by t.maxDriftRatio, no more (beyond it no lease is safe, by design).
 */
export function onTimings(s: Schedule, t: Timings): Schedule {
  const scale = (r: number) => 1 + ((r - 1) * t.maxDriftRatio) / rho;
  const r = s.clockRates;
  const clockRates = {
    'db-a': scale(r['db-a']), 'db-b': scale(r['db-b']), witness: scale(r.witness),
    ...(r['db-c'] === undefined ? {} : { 'db-c': scale(r['db-c']) }),
  };
  return { ...s, timings: t, clockRates };
}

/** The random schedule of `seed` (unchanged, so seeds keep their meaning) plus three forged requests. */
export function withForgedLeaseRequests(seed: number): Schedule {
  const s = randomSchedule(seed);
  const rng = new Rng(seed ^ 0x5eed);
  const forged = Array.from({ length: 3 }, (): Fault => ({
    kind: 'forge-lease-request',
    at: rng.int(3_000, s.healAtMs - 1_000),
    to: HOSTS[rng.int(0, HOSTS.length - 1)]!,
    from: rng.chance(0.5) ? 'db-a' : 'db-b',
    ahead: rng.chance(0.25) ? 'max-safe-integer' : rng.int(1, 3),
  }));
  return { ...s, faults: [...s.faults, ...forged].sort((x, y) => x.at - y.at) };
}

/** The share of the bulk run's schedules that run on etcd instead of the witness. */
export const ETCD_SHARE = 0.5;
/** The share of the etcd schedules that run three database nodes (the rest two). */
export const THREE_NODE_SHARE = 0.25;
/**
 * The share of the three-node sync schedules without a noFailover node (about two thirds of them)
 * that run synchronousCount 2: some 320 of the 10,000-schedule bulk run.
 */
export const K2_SHARE = 0.4;
/** Three-node schedules in the bulk run, or not: PGVIP_SIM_THREE_NODES=0 leaves them out. */
export const threeNodesOn = (): boolean => process.env.PGVIP_SIM_THREE_NODES !== '0';

/**
 * The schedule of `seed` in the bulk run: randomSchedule(seed) (its faults unchanged), on the witness
 * or, for ETCD_SHARE of the seeds, on etcd (random timings then also valid on etcd) with up to three
 * of etcd's own faults added; THREE_NODE_SHARE of those run three database nodes instead, with
 * faults drawn for three (randomThreeNodeSchedule). Every draw comes from a stream of its own.
 */
export function randomBackendSchedule(seed: number, threeNodes = threeNodesOn()): Schedule {
  const rng = new Rng(seed ^ 0x0e7c_d016);
  const backend: Backend = rng.next() < ETCD_SHARE ? 'etcd' : 'witness';
  if (backend === 'witness') return randomSchedule(seed);
  if (threeNodes && drawsThreeNodes(seed)) return randomThreeNodeSchedule(seed);
  // Random timings valid on etcd as the loader checks them there (its margin covers etcd's).
  const s = randomSchedule(seed, { backend: 'etcd', electionTimeoutMs: etcdDefaultElectionTimeoutMs });
  const extra = Array.from({ length: rng.int(0, 3) }, () => etcdFault(rng, s.healAtMs, DB_NODES));
  return { ...s, backend, faults: [...s.faults, ...extra].sort((x, y) => x.at - y.at) };
}

// --- three database nodes (etcd only) --------------------------------------------------------------

/** Whether an etcd seed of the bulk run draws three nodes (a stream of its own). */
export function drawsThreeNodes(seed: number): boolean {
  return new Rng(seed ^ 0x3_0de5).next() < THREE_NODE_SHARE;
}

const host3 = fc.constantFrom<Host>(...hostsOf({ nodes: 3 }));
const db3 = fc.constantFrom<DbNode>(...DB_NODES_3);
const pair3 = fc.tuple(host3, host3).filter(([a, b]) => a !== b);
const onPair3 = <T>(f: (a: Host, b: Host) => fc.Arbitrary<T>): fc.Arbitrary<T> => pair3.chain(([a, b]) => f(a, b));
const one = (a: fc.Arbitrary<Fault>): fc.Arbitrary<Fault[]> => a.map((f) => [f]);

/**
 * Faults for three nodes: those of two nodes over four hosts, and the three-node ones: an AZ lost
 * (host and links), a standby that lags, two database hosts lost together (both standbys, or the
 * primary and one), a switchover to a named node, a standby dropped from the sync record before
 * the primary is lost while the other standby is cut from etcd.
 */
const faultArb3: fc.Arbitrary<Fault[]> = fc.oneof(
  {
    weight: 3,
    arbitrary: one(fc.record({ kind: kind('partition'), at, a: host3, b: host3, oneWay: fc.boolean(), durMs: dur })
      .filter((f) => f.a !== f.b)),
  },
  { weight: 2, arbitrary: one(fc.record({ kind: kind('isolate'), at, node: host3, durMs: dur })) },
  {
    weight: 1,
    arbitrary: one(onPair3((a, b) => fc.record({
      kind: kind('loss'), at, a: fc.constant(a), b: fc.constant(b),
      p: fc.double({ min: 0.05, max: 0.5, noNaN: true }), durMs: dur,
    }))),
  },
  {
    weight: 1,
    arbitrary: one(onPair3((a, b) => fc.record({
      kind: kind('delay'), at, a: fc.constant(a), b: fc.constant(b),
      extraMs: fc.integer({ min: 10, max: 600 }), durMs: dur,
    }))),
  },
  {
    weight: 1,
    arbitrary: one(onPair3((a, b) => fc.record({
      kind: kind('flap'), at, a: fc.constant(a), b: fc.constant(b),
      cutMs: fc.integer({ min: 500, max: 2500 }), periodMs: fc.integer({ min: 3000, max: 6000 }), durMs: dur,
    }))),
  },
  { weight: 2, arbitrary: one(fc.record({ kind: kind('crash-agent'), at, node: host3, downMs: dur })) },
  { weight: 3, arbitrary: one(fc.record({ kind: kind('crash-host'), at, node: host3, downMs: dur })) },
  { weight: 2, arbitrary: one(fc.record({ kind: kind('kill-pg'), at, node: db3, downMs: dur })) },
  { weight: 2, arbitrary: one(fc.record({ kind: kind('pause-host'), at, node: host3, durMs: dur })) },
  { weight: 1, arbitrary: one(fc.record({ kind: kind('stall-disk'), at, node: db3, durMs: dur })) },
  { weight: 1, arbitrary: one(fc.record({ kind: kind('ec2'), at, fault: ec2Fault, durMs: dur })) },
  { weight: 1, arbitrary: one(fc.record({ kind: kind('switchover'), at, to: db3 })) },
  { weight: 1, arbitrary: one(fc.record({ kind: kind('maintenance'), at, durMs: dur })) },
  {
    weight: 2,
    arbitrary: one(fc.record({ kind: kind('az-loss'), at, node: db3, durMs: dur, downMs: dur })
      .map((f) => ({ ...f, downMs: Math.min(f.downMs, f.durMs) }))),
  },
  {
    weight: 2,
    arbitrary: one(fc.record({ kind: kind('lag'), at, node: db3, bytesPerRound: fc.integer({ min: 0, max: 20 }), durMs: dur })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      pair: fc.tuple(db3, db3).filter(([a, b]) => a !== b), at, gap: fc.integer({ min: 0, max: 5_000 }), downMs: dur,
    })
      .map(({ pair: [a, b], at: t, gap, downMs }): Fault[] => [
        { kind: 'crash-host', at: t, node: a, downMs },
        { kind: 'crash-host', at: t + gap, node: b, downMs },
      ]),
  },
  {
    // A standby cut from the first primary long enough to leave the sync record, then that primary
    // lost while the other standby, the member holding what was acknowledged since, is cut from etcd:
    // only a standby outside the record could be elected (the planted bug's ground).
    weight: 2,
    arbitrary: fc.record({
      cut: fc.constantFrom<DbNode>('db-b', 'db-c'), at, lossAfter: fc.integer({ min: 8_000, max: 18_000 }), downMs: dur,
    }).map(({ cut, at: t, lossAfter, downMs }): Fault[] => [
      { kind: 'partition', at: t, a: 'db-a', b: cut, oneWay: false, durMs: lossAfter + downMs },
      { kind: 'crash-host', at: t + lossAfter, node: 'db-a', downMs },
      { kind: 'etcd-cut-agent', at: t + lossAfter, node: cut === 'db-b' ? 'db-c' : 'db-b', durMs: downMs },
    ]),
  },
);

const prio = fc.integer({ min: 0, max: 2 });

export const scheduleArb3: fc.Arbitrary<Schedule> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  clockRates: fc.record({ 'db-a': rate, 'db-b': rate, 'db-c': rate, witness: rate }),
  replication: fc.oneof(
    { weight: 4, arbitrary: fc.constant('sync' as const) },
    { weight: 1, arbitrary: fc.constant('async' as const) },
  ),
  delayMs: fc.oneof(fc.constant([1, 3] as const), fc.constant([1, 40] as const)),
  duplicateP: fc.oneof(fc.constant(0), fc.constant(0.05)),
  faults: fc.array(faultArb3, { minLength: 0, maxLength: 5 })
    .map((fs) => fs.flat().map(clip).sort((x, y) => x.at - y.at)),
  healAtMs: fc.constant(HEAL_AT),
  endMs: fc.constant(END),
  // Config: sometimes a noFailover standby (a reporting replica), priorities, writes that block.
  noFailover: fc.oneof(
    { weight: 4, arbitrary: fc.constant<DbNode[]>([]) },
    { weight: 1, arbitrary: fc.constantFrom<DbNode[]>(['db-b'], ['db-c']) },
  ),
  priority: fc.oneof(
    { weight: 3, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.record({ 'db-a': prio, 'db-b': prio, 'db-c': prio }) },
  ),
  degrade: fc.oneof(
    { weight: 4, arbitrary: fc.constant('async' as const) },
    { weight: 1, arbitrary: fc.constant('block' as const) },
  ),
}).map(({ noFailover, priority, degrade, ...s }): Schedule => ({
  ...s, nodes: 3, backend: 'etcd',
  ...(noFailover.length > 0 ? { noFailover } : {}),
  ...(Object.keys(priority).length > 0 ? { priority } : {}),
  ...(degrade === 'block' && s.replication === 'sync' ? { degrade } : {}),
}));

/**
 * A three-node schedule on etcd for `seed`: its faults (scheduleArb3), on the default timings or, for
 * RANDOM_TIMINGS_SHARE of the seeds, random ones valid on etcd; up to three of etcd's faults added.
 */
export function randomThreeNodeSchedule(seed: number): Schedule {
  const [drawn] = fc.sample(scheduleArb3, { seed, numRuns: 1 });
  let s: Schedule = { ...drawn!, seed };
  // ANY 2 of both standbys (review-17b's coverage advice: k = 2 found G5), from a stream of its own
  // so that every other draw of the seed stays as it was.
  if (s.replication === 'sync' && (s.noFailover ?? []).length === 0 && new Rng(seed ^ 0x0002_0c0a).next() < K2_SHARE) {
    s = { ...s, synchronousCount: 2 };
  }
  const rng = new Rng(seed ^ 0x7133_7133);
  if (rng.next() < RANDOM_TIMINGS_SHARE) {
    const quorum = { backend: 'etcd', electionTimeoutMs: etcdDefaultElectionTimeoutMs } as const;
    s = onTimings(s, randomValidTimings(rng, longestRoundTripMs(s), quorum));
  }
  const etcdRng = new Rng(seed ^ 0x0e7c_d016);
  etcdRng.next();
  const extra = Array.from({ length: etcdRng.int(0, 3) }, () => etcdFault(etcdRng, s.healAtMs, DB_NODES_3));
  return { ...s, faults: [...s.faults, ...extra].sort((x, y) => x.at - y.at) };
}

/** One of etcd's faults, ending before `healAtMs`; the agent faults hit one of `nodes`. */
function etcdFault(rng: Rng, healAtMs: number, nodes: readonly DbNode[]): Fault {
  const at = rng.int(3_000, 50_000);
  const durMs = Math.min(rng.int(200, 15_000), healAtMs - at);
  const node = nodes[rng.int(0, nodes.length - 1)]!;
  switch (rng.int(0, 5)) {
    case 0:
      return { kind: 'etcd-crash', at, node: HOSTS[rng.int(0, 2)]!, downMs: durMs };
    case 1:
      return { kind: 'etcd-isolate-leader', at, durMs };
    case 2:
      return { kind: 'etcd-quorum-loss', at, durMs };
    case 3:
      return { kind: 'etcd-cut-agent', at, node, durMs };
    case 4:
      return { kind: 'etcd-freeze-leader', at, durMs };
    default:
      return { kind: 'etcd-slow', at, node, extraMs: rng.int(10, 400), durMs };
  }
}

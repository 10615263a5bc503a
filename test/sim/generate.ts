// Random fault schedules (fast-check arbitraries). A seed names one schedule: `randomSchedule(seed)`
// is what `npm run sim -- --seed N` replays.
import fc from 'fast-check';
import { defaultTimings } from '@pgvip/shared/core';
import { DB_NODES, HOSTS, type Ec2FaultKind, type Fault, type Host, type Schedule } from './schedule.js';

const HEAL_AT = 60_000;
const END = 85_000;
const host = fc.constantFrom<Host>(...HOSTS);
const db = fc.constantFrom(...DB_NODES);
const at = fc.integer({ min: 3_000, max: 50_000 });
const dur = fc.integer({ min: 200, max: 15_000 });
const pair = fc.tuple(host, host).filter(([a, b]) => a !== b);

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('partition' as const), at, a: host, b: host, oneWay: fc.boolean(), durMs: dur }).filter((f) => f.a !== f.b) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('isolate' as const), at, node: host, durMs: dur }) },
  { weight: 1, arbitrary: pair.chain(([a, b]) => fc.record({ kind: fc.constant('loss' as const), at, a: fc.constant(a), b: fc.constant(b), p: fc.double({ min: 0.05, max: 0.5, noNaN: true }), durMs: dur })) },
  { weight: 1, arbitrary: pair.chain(([a, b]) => fc.record({ kind: fc.constant('delay' as const), at, a: fc.constant(a), b: fc.constant(b), extraMs: fc.integer({ min: 10, max: 600 }), durMs: dur })) },
  { weight: 1, arbitrary: pair.chain(([a, b]) => fc.record({ kind: fc.constant('flap' as const), at, a: fc.constant(a), b: fc.constant(b), cutMs: fc.integer({ min: 500, max: 2500 }), periodMs: fc.integer({ min: 3000, max: 6000 }), durMs: dur })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash-agent' as const), at, node: host, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash-host' as const), at, node: host, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kill-pg' as const), at, node: db, downMs: dur }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause-host' as const), at, node: host, durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stall-disk' as const), at, node: db, durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ec2' as const), at, fault: fc.constantFrom<Ec2FaultKind>('throttle', '5xx', 'hang', 'lost', 'stale', 'slow-remap'), durMs: dur }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('switchover' as const), at }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('maintenance' as const), at, durMs: dur }) },
);

const rho = defaultTimings.maxDriftRatio;
const rate = fc.double({ min: 1 - rho, max: 1 + rho, noNaN: true });

export const scheduleArb: fc.Arbitrary<Schedule> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  clockRates: fc.record({ 'db-a': rate, 'db-b': rate, witness: rate }),
  replication: fc.oneof({ weight: 4, arbitrary: fc.constant('sync' as const) }, { weight: 1, arbitrary: fc.constant('async' as const) }),
  delayMs: fc.oneof(fc.constant([1, 3] as const), fc.constant([1, 40] as const)),
  duplicateP: fc.oneof(fc.constant(0), fc.constant(0.05)),
  faults: fc.array(faultArb, { minLength: 0, maxLength: 6 }).map((fs) => fs.map(clip).sort((x, y) => x.at - y.at)),
  healAtMs: fc.constant(HEAL_AT),
  endMs: fc.constant(END),
});

/** Every fault ends before the heal point. */
function clip(f: Fault): Fault {
  const room = HEAL_AT - f.at;
  if ('durMs' in f) return { ...f, durMs: Math.min(f.durMs, room) };
  if ('downMs' in f) return { ...f, downMs: Math.min(f.downMs, room) };
  return f;
}

export function randomSchedule(seed: number): Schedule {
  const [s] = fc.sample(scheduleArb, { seed, numRuns: 1 });
  return { ...s!, seed };
}

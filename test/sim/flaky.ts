// The flaky-network and pause schedules at the default timings: faults that must never end in a
// failover (docs/design.md, "Default timings and why they are both fast and calm", and row 16 of
// "Failure scenarios"). flaky.test.ts runs them in `npm test`; `npm run bench:sim` counts them.
//
// Each seed draws the clock rates (within ρ) and the fault's start (anywhere in the heartbeat cycle),
// and every case runs on that: a 2 s cut every 5 s of each link, and of both of the primary's links at
// once; 30 % loss on each link, and on every link at once, alone and with the primary flapping; and a
// pause of each host, for a random time shorter than the lease (the primary's is the one that matters:
// its renewals and its WAL stop together).
import { defaultTimings } from '@pgvip/shared/core';
import { Rng } from './rng.js';
import { baseSchedule, type Backend, type Fault, type Host, type Schedule } from './schedule.js';

export interface FlakyCase {
  readonly name: string;
  readonly schedule: Schedule;
}

const LINKS: readonly (readonly [Host, Host])[] = [['db-a', 'witness'], ['db-a', 'db-b'], ['db-b', 'witness']];
const HOSTS: readonly Host[] = ['db-a', 'db-b', 'witness'];
/** The flapping of row 16: 2 s cuts every 5 s for 2 min. */
const flap = (at: number, a: Host, b: Host): Fault => ({ kind: 'flap', at, a, b, cutMs: 2000, periodMs: 5000, durMs: 120_000 });
const loss = (at: number, a: Host, b: Host, durMs: number): Fault => ({ kind: 'loss', at, a, b, p: 0.3, durMs });

/**
 * The cases of one seed, on `backend` (two database nodes; db-a is the primary when the faults
 * start). Every case heals by 135 s and ends at 150 s.
 */
export function flakyCases(seed: number, backend: Backend = 'witness'): FlakyCase[] {
  const rng = new Rng(seed);
  const t = defaultTimings;
  const rate = (): number => 1 - t.maxDriftRatio + 2 * t.maxDriftRatio * rng.next();
  const clockRates = { 'db-a': rate(), 'db-b': rate(), witness: rate() };
  const at = 10_000 + rng.int(0, 1000);
  const of = (name: string, faults: Fault[]): FlakyCase => ({
    name,
    schedule: baseSchedule(seed, faults, { backend, clockRates, healAtMs: 135_000, endMs: 150_000 }),
  });
  const cases: FlakyCase[] = [];
  for (const [a, b] of LINKS) {
    cases.push(of(`flapping ${a}↔${b}`, [flap(at, a, b)]));
    cases.push(of(`30 % loss ${a}↔${b}`, [loss(at, a, b, 60_000)]));
  }
  cases.push(of('the primary flapping (both its links)', [flap(at, 'db-a', 'witness'), flap(at, 'db-a', 'db-b')]));
  cases.push(of('30 % loss on every link', LINKS.map(([a, b]) => loss(at, a, b, 60_000))));
  cases.push(of('the primary flapping, 30 % loss on every link', [
    flap(at, 'db-a', 'witness'), flap(at, 'db-a', 'db-b'), ...LINKS.map(([a, b]) => loss(at, a, b, 120_000)),
  ]));
  for (const node of HOSTS) {
    // Shorter than the lease, down to half of it; three pauses, a lease and more apart.
    const pauses = [0, 1, 2].map((i): Fault => ({
      kind: 'pause-host', at: at + i * 4 * t.leaseMs, node, durMs: Math.floor(t.leaseMs * (0.5 + 0.5 * rng.next())),
    }));
    cases.push(of(`pauses of ${node} shorter than the lease`, pauses));
  }
  return cases;
}

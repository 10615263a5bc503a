// Named scenarios: the fault scenario rows (the lab's, docs/lab.md) that the simulator can express.
// Each states its goal.
import { baseSchedule, type Fault, type Schedule } from './schedule.js';
import type { RunResult } from './world.js';

export interface Scenario {
  readonly goal: string;
  readonly schedule: (seed: number) => Schedule;
  /** Extra expectations beyond the invariants; returns a list of failures. */
  readonly expect: (r: RunResult) => string[];
}

const FAULT_AT = 10_000;

export function firstAckAfter(r: RunResult, t: number, node?: string): number | null {
  const a = r.acks.find((x) => x.t >= t && (node === undefined || x.node === node));
  return a === undefined ? null : a.t;
}

function promotions(r: RunResult, n: number, within?: [number, number]): string[] {
  const ps = within === undefined ? r.promotions : r.promotions.filter((p) => p.t >= within[0] && p.t <= within[1]);
  return ps.length === n ? [] : [`expected ${n} promotion(s)${within ? ` between ${within[0]} and ${within[1]} ms` : ''}, got ${ps.length}`];
}

function failoverWithin(r: RunResult, maxMs: number): string[] {
  const first = firstAckAfter(r, FAULT_AT, 'db-b');
  if (first === null) return ['no acknowledged write on db-b after the fault'];
  return first - FAULT_AT <= maxMs ? [] : [`writes resumed on db-b after ${Math.round(first - FAULT_AT)} ms, more than ${maxMs}`];
}

const noLoss = (r: RunResult): string[] => r.promotions.filter((p) => p.lostWrites > 0).map((p) => `promotion of ${p.node} lost ${p.lostWrites} writes`);

function sc(
  goal: string,
  faults: Fault[],
  expect: (r: RunResult) => string[],
  patch: Partial<Schedule> = {},
): Scenario {
  return { goal, schedule: (seed) => baseSchedule(seed, faults, patch), expect };
}

export const scenarios: Record<string, Scenario> = {
  'bootstrap': sc('a never-elected cluster elects the running primary for term 1 and routes the VIP to it',
    [],
    (r) => (r.finalPrimary === 'db-a' ? [] : [`final primary ${r.finalPrimary}`]),
    { bootstrap: true }),
  'row01-switchover': sc('planned switchover: db-b becomes primary, old primary rejoins, nothing lost',
    [{ kind: 'switchover', at: FAULT_AT }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...(r.finalPrimary === 'db-b' ? [] : [`final primary ${r.finalPrimary}`])]),
  'row01-switchover-then-failovers': sc('after a switchover and a failover back, a third failover is still allowed: every new primary re-confirms its sync standby with the witness (found by the lab)',
    [{ kind: 'switchover', at: FAULT_AT }, { kind: 'kill-pg', at: FAULT_AT + 10_000, node: 'db-b', downMs: 5_000 }, { kind: 'crash-host', at: FAULT_AT + 30_000, node: 'db-a', downMs: 10_000 }],
    (r) => [...promotions(r, 3), ...noLoss(r), ...(r.finalPrimary === 'db-b' ? [] : [`final primary ${r.finalPrimary}`])],
    { healAtMs: 60_000, endMs: 90_000 }),
  'row02-kill-pg': sc('kill -9 of the primary PostgreSQL with its agent alive: fast-path failover, nothing lost',
    [{ kind: 'kill-pg', at: FAULT_AT, node: 'db-a', downMs: 30_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...failoverWithin(r, 3_000)]),
  'hook-veto-promote': sc('the standby\'s before-promote hook vetoes for 6 s after the primary\'s PostgreSQL died: no primary meanwhile and never two, then exactly one promotion, nothing lost',
    [{ kind: 'kill-pg', at: FAULT_AT, node: 'db-a', downMs: 30_000 }, { kind: 'veto-promote', at: FAULT_AT, node: 'db-b', durMs: 6_000 }],
    (r) => [
      ...promotions(r, 0, [FAULT_AT, FAULT_AT + 6_000]),
      ...promotions(r, 1),
      ...noLoss(r),
      ...failoverWithin(r, 9_000),
    ]),
  'row03-host-loss': sc('the primary host dies: failover once the lease runs out, nothing lost',
    [{ kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 30_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...failoverWithin(r, 8_000)]),
  'row03-host-frozen': sc('the primary host is frozen and its traffic dropped: failover after the lease',
    [{ kind: 'pause-host', at: FAULT_AT, node: 'db-a', durMs: 30_000 }, { kind: 'isolate', at: FAULT_AT, node: 'db-a', durMs: 30_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...failoverWithin(r, 8_000)]),
  'row04-agent-restart': sc('the primary agent is killed and restarted within seconds: no failover',
    [{ kind: 'crash-agent', at: FAULT_AT, node: 'db-a', downMs: 2_000 }],
    (r) => promotions(r, 0)),
  'row05-agent-dead': sc('the primary agent is gone for good while PostgreSQL streams: no failover',
    [{ kind: 'crash-agent', at: FAULT_AT, node: 'db-a', downMs: 45_000 }],
    (r) => promotions(r, 0)),
  'row06-pause': sc('the whole primary host is paused for 3×L, then resumes: failover at lease, old primary fences and rejoins',
    [{ kind: 'pause-host', at: FAULT_AT, node: 'db-a', durMs: 9_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...(r.finalPrimary === 'db-b' ? [] : [`final primary ${r.finalPrimary}`])]),
  'row07-isolation': sc('the primary is fully isolated with its processes alive: it self-fences, db-b promotes, db-a rejoins on heal',
    [{ kind: 'isolate', at: FAULT_AT, node: 'db-a', durMs: 20_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r), ...failoverWithin(r, 8_000)]),
  'row08-primary-witness-cut': sc('only the primary↔witness link is cut: no failover',
    [{ kind: 'partition', at: FAULT_AT, a: 'db-a', b: 'witness', oneWay: false, durMs: 30_000 }],
    (r) => promotions(r, 0)),
  'row09-primary-standby-cut': sc('only the primary↔standby link is cut: no failover; sync degrades with witness agreement',
    [{ kind: 'partition', at: FAULT_AT, a: 'db-a', b: 'db-b', oneWay: false, durMs: 30_000 }],
    (r) => {
      const during = r.acks.filter((a) => a.t > FAULT_AT + 6_000 && a.t < FAULT_AT + 30_000).length;
      return [...promotions(r, 0), ...(during > 0 ? [] : ['writes did not resume after degrading to async'])];
    }),
  'row10-standby-witness-cut': sc('only the standby↔witness link is cut: no failover, writes unaffected',
    [{ kind: 'partition', at: FAULT_AT, a: 'db-b', b: 'witness', oneWay: false, durMs: 30_000 }],
    (r) => promotions(r, 0)),
  'row11-asymmetric': sc('one-way drops on every link of the primary in turn: never two writers, at most one failover',
    [
      { kind: 'partition', at: FAULT_AT, a: 'db-a', b: 'witness', oneWay: true, durMs: 8_000 },
      { kind: 'partition', at: FAULT_AT + 10_000, a: 'witness', b: 'db-a', oneWay: true, durMs: 8_000 },
      { kind: 'partition', at: FAULT_AT + 20_000, a: 'db-a', b: 'db-b', oneWay: true, durMs: 8_000 },
      { kind: 'partition', at: FAULT_AT + 30_000, a: 'db-b', b: 'db-a', oneWay: true, durMs: 8_000 },
    ],
    (r) => (r.promotions.length <= 1 ? [] : [`${r.promotions.length} promotions: a promote/demote loop`])),
  'row12-witness-restart': sc('the witness is killed and restarted later: no failover',
    [{ kind: 'crash-host', at: FAULT_AT, node: 'witness', downMs: 15_000 }],
    (r) => promotions(r, 0)),
  'row13-primary-dies-witness-down': sc('the primary dies while the witness is down: no automatic promotion until the witness is back',
    [{ kind: 'crash-host', at: FAULT_AT - 2_000, node: 'witness', downMs: 20_000 }, { kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 40_000 }],
    (r) => promotions(r, 0, [0, FAULT_AT + 18_000])),
  'row14-drift': sc('clocks drift at the bound ρ in opposite directions: nothing happens',
    [],
    (r) => promotions(r, 0),
    { clockRates: { 'db-a': 1.01, 'db-b': 0.99, witness: 0.99 } }),
  'row15-short-stall': sc('a short disk stall on the primary: nothing happens',
    [{ kind: 'stall-disk', at: FAULT_AT, node: 'db-a', durMs: 1_500 }],
    (r) => promotions(r, 0)),
  'row15-long-stall': sc('a long disk stall on the primary: fence first, then failover',
    [{ kind: 'stall-disk', at: FAULT_AT, node: 'db-a', durMs: 20_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r)]),
  'row15-long-stall-then-failback': sc('after a long disk stall moved the primary away, the old node promotes cleanly when the new primary dies: no self-fence from probe failures of its old term (found by the lab)',
    [{ kind: 'stall-disk', at: FAULT_AT, node: 'db-a', durMs: 20_000 }, { kind: 'crash-host', at: FAULT_AT + 40_000, node: 'db-b', downMs: 10_000 }],
    (r) => {
      const back = r.promotions.find((p) => p.node === 'db-a');
      if (back === undefined) return [...promotions(r, 2)];
      const ack = firstAckAfter(r, back.t, 'db-a');
      return [...promotions(r, 2), ...noLoss(r), ...(ack !== null && ack - back.t < 2_000 ? [] : [`db-a acknowledged no write within 2 s of its promotion (${ack === null ? 'none' : `${Math.round(ack - back.t)} ms`})`])];
    },
    { healAtMs: 70_000, endMs: 100_000 }),
  'row16-flapping-link': sc('the primary↔witness link flaps (2 s cuts every 5 s for 2 min): no failover',
    [{ kind: 'flap', at: FAULT_AT, a: 'db-a', b: 'witness', cutMs: 2_000, periodMs: 5_000, durMs: 120_000 }],
    (r) => promotions(r, 0),
    { healAtMs: 135_000, endMs: 160_000 }),
  'row16-flapping-primary': sc('the primary loses all links 2 s out of every 5 s for 2 min: no failover',
    [{ kind: 'flap', at: FAULT_AT, a: 'db-a', b: 'witness', cutMs: 2_000, periodMs: 5_000, durMs: 120_000 },
      { kind: 'flap', at: FAULT_AT, a: 'db-a', b: 'db-b', cutMs: 2_000, periodMs: 5_000, durMs: 120_000 }],
    (r) => promotions(r, 0),
    { healAtMs: 135_000, endMs: 160_000 }),
  'row16-lossy-link': sc('30% random loss on the primary↔witness link for 60 s: no false failover',
    [{ kind: 'loss', at: FAULT_AT, a: 'db-a', b: 'witness', p: 0.3, durMs: 60_000 }],
    (r) => promotions(r, 0),
    { healAtMs: 75_000, endMs: 100_000 }),
  'row16-lossy-replication': sc('30% random loss on the primary↔standby link for 60 s: no false failover',
    [{ kind: 'loss', at: FAULT_AT, a: 'db-a', b: 'db-b', p: 0.3, durMs: 60_000 }],
    (r) => promotions(r, 0),
    { healAtMs: 75_000, endMs: 100_000 }),
  'row17-ec2-faults': sc('EC2 throttles, fails, hangs, loses responses and remaps slowly during a failover: it still completes',
    [
      { kind: 'ec2', at: FAULT_AT, fault: 'throttle', durMs: 4_000 },
      { kind: 'ec2', at: FAULT_AT + 3_000, fault: 'hang', durMs: 1_500 },
      { kind: 'ec2', at: FAULT_AT + 4_000, fault: 'lost', durMs: 2_000 },
      { kind: 'ec2', at: FAULT_AT, fault: 'stale', durMs: 8_000 },
      { kind: 'ec2', at: FAULT_AT, fault: 'slow-remap', durMs: 8_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 30_000 },
    ],
    (r) => [...promotions(r, 1), ...noLoss(r), ...failoverWithin(r, 20_000)]),
  'row19-standby-agent-killed-mid-promotion': sc('the standby agent is killed in the middle of promoting: it resumes, one primary, VIP converges',
    [{ kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 30_000 }, { kind: 'crash-agent', at: FAULT_AT + 3_500, node: 'db-b', downMs: 1_000 }],
    (r) => [...promotions(r, 1), ...noLoss(r)]),
  'row20-new-primary-dies': sc('the new primary dies before the old one has rejoined: the stale node is not promoted',
    [{ kind: 'isolate', at: FAULT_AT, node: 'db-a', durMs: 15_000 }, { kind: 'crash-host', at: FAULT_AT + 10_000, node: 'db-b', downMs: 30_000 }],
    (r) => promotions(r, 1, [0, FAULT_AT + 40_000])),
  'forged-lease-requests': sc('a key holder sends both grantors lease requests for terms no vote created (the next term, and 2^53 − 1): refused and nothing adopted; the switchover after them hands over term 2 (issue 11)',
    [
      { kind: 'forge-lease-request', at: FAULT_AT, to: 'witness', from: 'db-b', ahead: 1 },
      { kind: 'forge-lease-request', at: FAULT_AT, to: 'db-b', from: 'db-a', ahead: 1 },
      { kind: 'forge-lease-request', at: FAULT_AT + 1_000, to: 'witness', from: 'db-a', ahead: 'max-safe-integer' },
      { kind: 'forge-lease-request', at: FAULT_AT + 1_000, to: 'db-b', from: 'db-a', ahead: 'max-safe-integer' },
      { kind: 'switchover', at: FAULT_AT + 10_000 },
    ],
    (r) => [
      ...promotions(r, 1),
      ...noLoss(r),
      ...r.promotions.filter((p) => p.term !== 2).map((p) => `${p.node} promoted for term ${p.term}, not 2`),
      ...(r.finalPrimary === 'db-b' ? [] : [`final primary ${r.finalPrimary}`]),
    ]),
};

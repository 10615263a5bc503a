// Goal: with failover.minIntervalMs set, a new primary that dies inside the interval is not replaced
// automatically (failover-blocked says why), every invariant still holds, and once the interval has
// run out the failover follows. Without it (the default) the same faults fail over twice at once.
// A forced failover is not expressible in the simulator's schedules; the core test
// (packages/shared/test/core-failover-interval.test.ts) covers it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSchedule, type Fault } from './schedule.js';
import { realCores, runSchedule, type Cores, type RunResult } from './world.js';

const MIN_INTERVAL_MS = 60_000;
const SEEDS = [1, 2, 3];

const withMinInterval: Cores = {
  ...realCores,
  bootWitness: (settings, durable, nowMs) =>
    realCores.bootWitness({ ...settings, failoverMinIntervalMs: MIN_INTERVAL_MS }, durable, nowMs),
};

/**
 * db-a's PostgreSQL dies at 10 s: db-b takes over (the interval starts about then) and db-a rejoins.
 * db-b's host dies at `crashAt` for `downMs`.
 */
function schedule(seed: number, crashAt: number, downMs: number) {
  const faults: Fault[] = [
    { kind: 'kill-pg', at: 10_000, node: 'db-a', downMs: 5_000 },
    { kind: 'crash-host', at: crashAt, node: 'db-b', downMs },
  ];
  return baseSchedule(seed, faults, { healAtMs: crashAt + downMs + 5_000, endMs: crashAt + downMs + 30_000 });
}

function summary(r: RunResult): string {
  return JSON.stringify({ violations: r.violations, promotions: r.promotions });
}

const blocked = (r: RunResult) => r.notifications.filter((n) => n.event === 'failover-blocked');
const terms = (r: RunResult) => r.promotions.map((p) => [p.node, p.term]);

describe('the simulator: failover.minIntervalMs', () => {
  test('without it (the default), the second failover follows the first at once', () => {
    for (const seed of SEEDS) {
      const r = runSchedule(schedule(seed, 30_000, 20_000));
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(terms(r), [['db-b', 2], ['db-a', 3]], summary(r));
      assert.ok(r.promotions[1]!.t < 45_000, summary(r));
      assert.deepEqual(blocked(r), []);
    }
  });

  test('the new primary dies inside the interval: no automatic failover, failover-blocked says why', () => {
    for (const seed of SEEDS) {
      // db-b is back at 50 s, inside the interval.
      const r = runSchedule(schedule(seed, 30_000, 20_000), { cores: withMinInterval });
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(terms(r), [['db-b', 2]], summary(r));
      assert.equal(blocked(r).length, 1, JSON.stringify(r.notifications));
      assert.match(blocked(r)[0]!.detail, /primary db-b failed in term 2.*failover\.minIntervalMs \(60000 ms\) holds automatic failovers until \d+ s from now/);
      assert.equal(r.finalPrimary, 'db-b');
    }
  });

  test('the new primary dies near the end of the interval: the failover follows once it has run out', () => {
    for (const seed of SEEDS) {
      const r = runSchedule(schedule(seed, 66_000, 60_000), { cores: withMinInterval });
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(terms(r), [['db-b', 2], ['db-a', 3]], summary(r));
      const [first, second] = r.promotions;
      assert.ok(second!.t >= first!.t + MIN_INTERVAL_MS, summary(r));
      assert.ok(second!.t < first!.t + MIN_INTERVAL_MS + 3_000, summary(r));
      assert.equal(blocked(r).length, 1);
    }
  });

  test('the new primary dies early and stays down past the interval: no automatic failover meanwhile', () => {
    for (const seed of SEEDS) {
      // db-b is down from 30 s to 90 s; the interval ends at about 70 s, when db-a has not streamed
      // for longer than streamingGraceMs: it no longer counts itself eligible (docs/runbook.md).
      const r = runSchedule(schedule(seed, 30_000, 60_000), { cores: withMinInterval });
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(r.promotions.filter((p) => p.t > 30_000 && p.t < 90_000), [], summary(r));
      assert.equal(blocked(r).length, 1);
    }
  });
});

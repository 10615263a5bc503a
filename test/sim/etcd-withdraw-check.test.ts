// Goal (review-17 F9): with three nodes a standby asks etcd before it withdraws, and withdraws only
// when etcd says the primary's leader key is gone. During an etcd outage (quorum lost for 40 s) a cut
// of 3.5 s between the primary and one standby fences the primary (its lease needs every standby's
// grant while etcd is out), and it writes again once the cut heals. A standby that withdrew without
// asking (the planted bug: its shell says "gone" at once, the behaviour before the fix) grants nothing
// more and cannot take its position back without etcd: the primary stays fenced for the rest of the
// outage. No failover either way: nobody can be elected without etcd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSchedule, type Schedule } from './schedule.js';
import { etcdWithdrawWithoutAsking } from './variants.js';
import { runScheduleAsync, type RunOptions } from './world.js';

const SEEDS = [1, 2, 3];

const flapDuringOutage = (seed: number): Schedule => baseSchedule(seed, [
  { kind: 'etcd-quorum-loss', at: 10_000, durMs: 40_000 },
  { kind: 'partition', at: 15_000, a: 'db-a', b: 'db-b', oneWay: false, durMs: 3_500 },
], { nodes: 3, backend: 'etcd', healAtMs: 55_000, endMs: 70_000 });

/** Writes acknowledged after the cut healed, while etcd is still out (25 to 48 s). */
async function writesAfterTheCut(seed: number, opts: RunOptions = {}): Promise<{ acks: number; summary: string }> {
  const r = await runScheduleAsync(flapDuringOutage(seed), opts);
  assert.deepEqual(r.violations, [], `seed ${seed}`);
  assert.equal(r.promotions.length, 0, `seed ${seed}: no election without etcd`);
  const acks = r.acks.filter((a) => a.t > 25_000 && a.t < 48_000).length;
  return { acks, summary: `seed ${seed}: ${acks} writes acknowledged from 25 to 48 s` };
}

test('three nodes, etcd out: a short cut between the primary and a standby does not fence the primary for the outage', async () => {
  for (const seed of SEEDS) {
    const fixed = await writesAfterTheCut(seed);
    assert.ok(fixed.acks >= 100, `the primary did not write again after the cut healed: ${fixed.summary}`);
    const unasked = await writesAfterTheCut(seed, etcdWithdrawWithoutAsking);
    assert.equal(unasked.acks, 0, `the planted bug (withdrawing without asking etcd) should keep the primary fenced: ${unasked.summary}`);
  }
});

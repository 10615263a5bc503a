// Goal: the simulator has teeth — each deliberately broken core variant is caught breaking an
// invariant, while the real core passes the very same targeted schedules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { baseSchedule, type Schedule } from './schedule.js';
import {
  adoptsLeaseRequestTerm, etcdAnswerAfterRequestTimeout, etcdNoTermReadAtStart, etcdValidityFromKeepAliveReply,
  ignoresEligibility, keepsCampaignAfterWin, leaseFromReplyTime, witnessForgetsPromise,
} from './variants.js';
import { defaultTimings, timingViolations, type Timings } from '@pgvip/shared/core';
import { realCores, runSchedule, runScheduleAsync, type Cores, type RunOptions } from './world.js';

/** Run the targeted schedules with a core; return the first violation found, or null. */
function firstViolation(arb: fc.Arbitrary<Schedule>, cores: Cores, runs: number, timings: Timings): string | null {
  const out = fc.check(
    fc.property(arb, (s) => runSchedule(s, { cores, timings }).violations.length === 0),
    { numRuns: runs, seed: 42 },
  );
  if (!out.failed || out.counterexample === null) return null;
  return runSchedule(out.counterexample[0], { cores, timings }).violations[0] ?? 'failed';
}

// A legal configuration with a long request timeout, so slow grants still count, and one failed check
// enough: the standby's receiver counts as silent only after 4 s (receiverSilenceMs of a 1 s
// heartbeat), so the lease is long enough that the standby sees the primary fail before a lease
// counted from the reply would run out (6000·1.01 + 100 = 6160 ms of promise; the broken lease lasts
// up to the 900 ms of a slow reply longer than the 5840 ms counted from the send).
const patientTimings: Timings = {
  ...defaultTimings, heartbeatMs: 1000, requestTimeoutMs: 950, leaseMs: 6000, failureChecks: 1, vipCallBudgetMs: 900,
};
assert.deepEqual(timingViolations(patientTimings), []);

const seed = fc.integer({ min: 1, max: 1_000_000 });

// Slow replies to the primary, then the primary is cut off.
const slowRepliesThenIsolation = fc.record({
  seed,
  delay: fc.integer({ min: 600, max: 900 }),
  isolateAt: fc.integer({ min: 14_000, max: 16_000 }),
}).map(({ seed, delay, isolateAt }) =>
  baseSchedule(seed, [
    { kind: 'delay', at: 10_000, a: 'witness', b: 'db-a', extraMs: delay, durMs: 20_000 },
    { kind: 'delay', at: 10_000, a: 'db-b', b: 'db-a', extraMs: delay, durMs: 20_000 },
    { kind: 'isolate', at: isolateAt, node: 'db-a', durMs: 20_000 },
  ], { endMs: 60_000, healAtMs: 40_000 }));

// The primary holds its lease through the witness alone, is isolated, and the witness restarts.
const witnessRestartDuringIsolation = fc.record({
  seed,
  isolateAfter: fc.integer({ min: 3_300, max: 4_500 }),
  restartAfter: fc.integer({ min: 0, max: 200 }),
  down: fc.integer({ min: 20, max: 200 }),
}).map(({ seed, isolateAfter, restartAfter, down }) =>
  baseSchedule(seed, [
    { kind: 'partition', at: 10_000, a: 'db-a', b: 'db-b', oneWay: false, durMs: 20_000 },
    { kind: 'isolate', at: 10_000 + isolateAfter, node: 'db-a', durMs: 15_000 },
    { kind: 'crash-host', at: 10_000 + isolateAfter + restartAfter, node: 'witness', downMs: down },
  ], { endMs: 60_000, healAtMs: 40_000 }));

// Replication is cut long enough to degrade to async, then the primary host dies.
const degradeThenHostLoss = fc.record({
  seed,
  crashAfter: fc.integer({ min: 7_000, max: 12_000 }),
}).map(({ seed, crashAfter }) =>
  baseSchedule(seed, [
    { kind: 'partition', at: 10_000, a: 'db-a', b: 'db-b', oneWay: false, durMs: 25_000 },
    { kind: 'crash-host', at: 10_000 + crashAfter, node: 'db-a', downMs: 20_000 },
  ], { endMs: 70_000, healAtMs: 45_000 }));

// A key holder sends a grantor lease requests for terms no vote created, around a failover.
const forgedLeaseRequests = fc.record({
  seed,
  to: fc.constantFrom('witness' as const, 'db-a' as const, 'db-b' as const),
  from: fc.constantFrom('db-a' as const, 'db-b' as const),
  ahead: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constant('max-safe-integer' as const)),
  forgeAt: fc.integer({ min: 5_000, max: 25_000 }),
}).map(({ seed, to, from, ahead, forgeAt }) =>
  baseSchedule(seed, [
    { kind: 'forge-lease-request', at: forgeAt, to, from, ahead },
    { kind: 'crash-host', at: 15_000, node: 'db-a', downMs: 10_000 },
  ], { endMs: 60_000, healAtMs: 35_000 }));

// The primary host dies: an ordinary failover.
const hostLoss = fc.record({ seed, crashAt: fc.integer({ min: 8_000, max: 12_000 }) }).map(({ seed, crashAt }) =>
  baseSchedule(seed, [{ kind: 'crash-host', at: crashAt, node: 'db-a', downMs: 15_000 }], { endMs: 50_000, healAtMs: 30_000 }));

const cases = [
  { name: 'lease counted from reply time', arb: slowRepliesThenIsolation, variant: leaseFromReplyTime, expect: /I1/, timings: patientTimings },
  { name: 'witness forgets its promise on restart', arb: witnessRestartDuringIsolation, variant: witnessForgetsPromise, expect: /I1/, timings: defaultTimings },
  { name: 'standby and witness ignore eligibility', arb: degradeThenHostLoss, variant: ignoresEligibility, expect: /I3/, timings: defaultTimings },
  { name: 'grantors adopt the term of a forged lease request', arb: forgedLeaseRequests, variant: adoptsLeaseRequestTerm, expect: /I7/, timings: defaultTimings },
  { name: 'a won vote leaves the campaign standing', arb: hostLoss, variant: keepsCampaignAfterWin, expect: /core invariant: db-b campaigns for term \d+ while primary/, timings: defaultTimings },
];

for (const c of cases) {
  test(`the simulator catches a core where the ${c.name}`, () => {
    const broken = firstViolation(c.arb, c.variant, 150, c.timings);
    assert.ok(broken !== null, `the broken variant (${c.name}) went unnoticed`);
    assert.match(broken, c.expect);
    assert.equal(firstViolation(c.arb, realCores, 60, c.timings), null, 'the real core must pass the same schedules');
  });
}

/** As firstViolation, for runs that may be on etcd, with run options (a planted etcd-shell bug). */
async function firstViolationAsync(
  arb: fc.Arbitrary<Schedule>, opts: RunOptions, runs: number, timings: Timings,
): Promise<string | null> {
  const holds = async (s: Schedule) => (await runScheduleAsync(s, { ...opts, timings })).violations.length === 0;
  const out = await fc.check(fc.asyncProperty(arb, holds), { numRuns: runs, seed: 42 });
  if (!out.failed || out.counterexample === null) return null;
  return (await runScheduleAsync(out.counterexample[0], { ...opts, timings })).violations[0] ?? 'failed';
}

// etcd: a 3 s lease on a slow heartbeat, so a renewal may take most of a second (a whole number of
// seconds of lease leaves etcd's TTL no rounding to hide in).
const etcdTimings: Timings = {
  ...defaultTimings, leaseMs: 3000, heartbeatMs: 950, requestTimeoutMs: 900, vipCallBudgetMs: 900,
};
assert.deepEqual(timingViolations(etcdTimings, { backend: 'etcd', electionTimeoutMs: 1000 }), []);
const rate = fc.double({ min: 1 - defaultTimings.maxDriftRatio, max: 1 + defaultTimings.maxDriftRatio, noNaN: true });

// etcd answers the primary late (the keepalive's answer, and the read's, each up to 290 ms: less than
// the 300 ms share of the deadline after which the client tries another member beside the first, whose
// later keepalive would renew the lease later and hide the bug), then the primary is cut from etcd and
// from its standby: its key runs out at etcd, the standby's promise runs out, and the standby campaigns.
const etcdSlowRepliesThenCut = fc.record({
  seed,
  extra: fc.integer({ min: 200, max: 290 }),
  cutAt: fc.integer({ min: 14_000, max: 16_000 }),
  rates: fc.record({ 'db-a': rate, 'db-b': rate, witness: rate }),
}).map(({ seed, extra, cutAt, rates }) =>
  baseSchedule(seed, [
    { kind: 'etcd-slow', at: 10_000, node: 'db-a', extraMs: extra, durMs: 30_000 },
    { kind: 'partition', at: cutAt, a: 'db-a', b: 'db-b', oneWay: false, durMs: 20_000 },
    { kind: 'etcd-cut-agent', at: cutAt, node: 'db-a', durMs: 20_000 },
  ], { backend: 'etcd', replication: 'async', clockRates: rates, endMs: 60_000, healAtMs: 40_000 }));

test('the simulator catches an etcd shell that counts validity from the keepalive\'s answer', async () => {
  const broken = await firstViolationAsync(etcdSlowRepliesThenCut, etcdValidityFromKeepAliveReply, 60, etcdTimings);
  assert.ok(broken !== null, 'the broken etcd shell (validity from the keepalive\'s answer) went unnoticed');
  assert.match(broken, /I1/);
  const real = await firstViolationAsync(etcdSlowRepliesThenCut, {}, 60, etcdTimings);
  assert.equal(real, null, 'the real bridge must pass the same schedules');
});

// A switchover on etcd whose old primary's agent dies between etcd's handover txn and its persist of
// the next term (half the switchovers on etcd, faults.ts), and etcd cut from that node while it
// restarts: only its standby, still in the old term, answers its lease requests.
const etcdHandoverCrash = fc.record({
  seed,
  cutFor: fc.integer({ min: 3_000, max: 6_000 }),
  replication: fc.constantFrom('sync' as const, 'async' as const),
}).map(({ seed, cutFor, replication }) =>
  baseSchedule(seed, [
    { kind: 'switchover', at: 10_000 },
    { kind: 'etcd-cut-agent', at: 10_300, node: 'db-a', durMs: cutFor },
  ], { backend: 'etcd', replication, endMs: 50_000, healAtMs: 30_000 }));

test('the simulator catches an agent on etcd that starts without reading the term record', async () => {
  const broken = await firstViolationAsync(etcdHandoverCrash, etcdNoTermReadAtStart, 40, defaultTimings);
  assert.ok(broken !== null, 'the agent without the term read at start went unnoticed');
  assert.match(broken, /I1: db-a holds write authority in term 1 after etcd's handover txn created term 2/);
  assert.equal(await firstViolationAsync(etcdHandoverCrash, {}, 40, defaultTimings), null, 'the real shell must pass the same schedules');
});

// The primary's agent and PostgreSQL die, etcd answers the standby late, and the standby's host is
// paused while its winning vote's txn is on the way: the answer waits with the ticks, which run first
// on resume, so the core asks for the vote again before the answer to the first ask reaches it. Then
// the standby is cut from etcd: its key lives only as long as the first ask's lease grant gives it.
const etcdVoteAnswerLate = fc.record({
  seed,
  pauseAt: fc.integer({ min: 13_300, max: 13_650 }),
  pauseFor: fc.integer({ min: 1_300, max: 1_700 }),
}).map(({ seed, pauseAt, pauseFor }) =>
  baseSchedule(seed, [
    { kind: 'crash-agent', at: 10_000, node: 'db-a', downMs: 20_000 },
    { kind: 'kill-pg', at: 10_000, node: 'db-a', downMs: 20_000 },
    { kind: 'etcd-slow', at: 10_000, node: 'db-b', extraMs: 330, durMs: 20_000 },
    { kind: 'pause-host', at: pauseAt, node: 'db-b', durMs: pauseFor },
    { kind: 'etcd-cut-agent', at: pauseAt + pauseFor, node: 'db-b', durMs: 8_000 },
  ], { backend: 'etcd', replication: 'async', endMs: 60_000, healAtMs: 40_000 }));

// The schedule's windows (the pause, etcd's 330 ms delay against a 400 ms request timeout) are set for
// a 500 ms heartbeat and a 3 s lease: they are kept here, whatever the defaults.
const lateAnswerTimings: Timings = { ...defaultTimings, heartbeatMs: 500, requestTimeoutMs: 400, leaseMs: 3000 };

test('the simulator catches an etcd route that gives the core answers later than requestTimeoutMs', async () => {
  const broken = await firstViolationAsync(etcdVoteAnswerLate, etcdAnswerAfterRequestTimeout, 100, lateAnswerTimings);
  assert.ok(broken !== null, 'the route without its bound on an answer went unnoticed');
  assert.match(broken, /I1: etcd's lease of db-b's leader key for term 2 ran out while db-b counts etcd's grant valid/);
  assert.equal(await firstViolationAsync(etcdVoteAnswerLate, {}, 100, lateAnswerTimings), null, 'the real route must pass the same schedules');
});

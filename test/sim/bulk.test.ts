// Goal: the real core keeps every invariant (checker.ts; docs/design.md, "The simulator") and
// converges after healing, over at least 10 000 seeded random fault schedules of 60+ simulated
// seconds each, a quarter of them on random valid timings (random-timings.ts), about half of them on
// etcd (etcd.ts, with etcd's own faults added; the agents' real EtcdQuorumBridge answers their quorum
// messages; THREE_NODE_SHARE of those with three database nodes, faults drawn for three) and the rest
// on the witness (K2_SHARE of the three-node sync ones with synchronousCount 2: ANY 2 of both
// standbys). PGVIP_SIM_THREE_NODES=0 leaves the three-node runs out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scheduleArb, THREE_NODE_SHARE, threeNodesOn } from './generate.js';
import { runParallel } from './parallel.js';
import { describeTimings } from './random-timings.js';
import type { Schedule } from './schedule.js';
import { runSchedule } from './world.js';

const SCHEDULES = Number(process.env.PGVIP_SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.PGVIP_SIM_FIRST_SEED ?? 1);

test(`the simulator finds no violation in ${SCHEDULES} random schedules`, { timeout: 60 * 60_000 }, async () => {
  const r = await runParallel(FIRST_SEED, SCHEDULES);
  const witnessRuns = r.runs - r.etcdRuns;
  const twoNodeEtcd = r.etcdRuns - r.threeNodeRuns;
  const perRun = (ms: number, n: number) => `${n > 0 ? (ms / n).toFixed(1) : '-'} ms CPU each`;
  console.log(`simulation: ${r.runs} schedules (${r.randomTimingsRuns} on random valid timings; ` +
    `${witnessRuns} on the witness, ${perRun(r.cpuMs.witness, witnessRuns)}; ` +
    `${twoNodeEtcd} on etcd with two nodes, ${perRun(r.cpuMs.etcd, twoNodeEtcd)}; ` +
    `${r.threeNodeRuns} on etcd with three nodes, ${perRun(r.cpuMs.etcd3, r.threeNodeRuns)}, ` +
    `${r.k2Runs} of them with synchronousCount 2), ` +
    `${r.failures.length} violations (${Math.round(r.simulatedMs / 1000)} simulated seconds)`);
  if (r.failures.length > 0) {
    // Shrink the first failure on the witness with fast-check (on its timings) to the shortest
    // schedule that still breaks (the arbitrary draws witness schedules only).
    const first = r.failures.find((f) => f.backend === 'witness');
    const timings = first?.timings;
    const holds = (s: Schedule) => runSchedule(s, timings ? { timings } : {}).violations.length === 0;
    const shrunk = first === undefined ? null
      : fc.check(fc.property(scheduleArb, holds), { seed: first.seed, numRuns: 50, endOnFailure: true });
    const detail = r.failures.slice(0, 5).map((f) =>
      `  seed ${f.seed} on ${f.backend}${f.nodes === 3 ? ' (three nodes)' : ''}${f.timings ? ` (${describeTimings(f.timings)})` : ''}: ${f.violations[0]}` +
      ` (replay: npm run sim -- --seed ${f.seed})`).join('\n');
    const shrinkNote = shrunk?.failed === true ? `\nshrunk counterexample: ${JSON.stringify(shrunk.counterexample)}` : '';
    assert.fail(`${r.failures.length} schedules broke an invariant:\n${detail}${shrinkNote}`);
  }
  assert.ok(r.runs >= SCHEDULES);
  // About a quarter (RANDOM_TIMINGS_SHARE) run on random valid timings: the share is really drawn.
  if (SCHEDULES >= 1000) {
    const share = r.randomTimingsRuns / r.runs;
    assert.ok(share > 0.2 && share < 0.3, `${r.randomTimingsRuns} of ${r.runs} on random timings`);
    // About half (ETCD_SHARE) on each backend.
    const etcd = r.etcdRuns / r.runs;
    assert.ok(etcd > 0.4 && etcd < 0.6, `${r.etcdRuns} of ${r.runs} on etcd`);
    // THREE_NODE_SHARE of those with three nodes, unless left out.
    const three = r.threeNodeRuns / r.etcdRuns;
    const want = threeNodesOn() ? THREE_NODE_SHARE : 0;
    assert.ok(Math.abs(three - want) < 0.1, `${r.threeNodeRuns} of ${r.etcdRuns} etcd runs with three nodes`);
    // Some of those with synchronousCount 2 (K2_SHARE of the sync ones without a noFailover node).
    if (threeNodesOn()) assert.ok(r.k2Runs >= 0.1 * r.threeNodeRuns, `${r.k2Runs} of ${r.threeNodeRuns} three-node runs with k = 2`);
  }
});

// Goal: the simulator has teeth with three nodes — each planted bug of the N-node design is caught
// breaking an invariant on targeted schedules, at a rate printed here (docs/design.md, "The
// simulator"), while the real code passes the very same schedules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultTimings } from '@pgvip/shared/core';
import { baseSchedule, type Fault, type Schedule } from './schedule.js';
import { etcdCandidateOutsideRecord, pgCatchUpAtOnce } from './variants.js';
import { runScheduleAsync, type RunOptions } from './world.js';

const RUNS = 40;
const seed = fc.integer({ min: 1, max: 1_000_000 });
const three = (s: number, faults: Fault[]): Schedule =>
  baseSchedule(s, faults, { nodes: 3, backend: 'etcd', healAtMs: 45_000, endMs: 70_000 });

/** How many of `runs` schedules drawn from arb (fixed seed) break an invariant matching `expect`, and the first. */
async function catches(
  arb: fc.Arbitrary<Schedule>, opts: RunOptions, expect: RegExp,
): Promise<{ caught: number; other: string[]; first: string | null }> {
  const schedules = fc.sample(arb, { numRuns: RUNS, seed: 42 });
  let caught = 0;
  let first: string | null = null;
  const other: string[] = [];
  for (const s of schedules) {
    const v = (await runScheduleAsync(s, opts)).violations;
    const hit = v.find((x) => expect.test(x));
    if (hit !== undefined) {
      caught++;
      first ??= hit;
    } else if (v.length > 0) {
      other.push(`seed ${s.seed}: ${v[0]!}`);
    }
  }
  return { caught, other, first };
}

// db-c stops streaming (cut from the primary) long enough to be dropped from the sync record; then the
// primary's host is lost while db-b, the member that holds what was acknowledged since, is cut from etcd.
// A standby withdraws only once etcd says the leader key is gone (review-17 F9), some 20 s after db-c
// last streamed here: a streamingGraceMs of a minute keeps db-c eligible by its own checks, so that
// only the sync record stands between it and the promotion.
const outsideRecord = fc.record({ seed, lossAfter: fc.integer({ min: 12_000, max: 18_000 }) })
  .map(({ seed: s, lossAfter }) => ({
    ...three(s, [
      { kind: 'partition', at: 5_000, a: 'db-a', b: 'db-c', oneWay: false, durMs: 40_000 },
      { kind: 'crash-host', at: 5_000 + lossAfter, node: 'db-a', downMs: 20_000 },
      { kind: 'etcd-cut-agent', at: 5_000 + lossAfter, node: 'db-b', durMs: 20_000 },
    ]),
    timings: { ...defaultTimings, streamingGraceMs: 60_000 },
  }));

// db-b falls behind (its disk takes a few bytes a round) while db-c acknowledges; then db-c is lost,
// and the primary moves the record to db-b alone.
const memberLostWhileOtherLags = fc.record({
  seed, bytes: fc.integer({ min: 0, max: 10 }), lossAfter: fc.integer({ min: 2_000, max: 8_000 }),
}).map(({ seed: s, bytes, lossAfter }) => three(s, [
  { kind: 'lag', at: 5_000, node: 'db-b', bytesPerRound: bytes, durMs: 30_000 },
  { kind: 'crash-host', at: 5_000 + lossAfter, node: 'db-c', downMs: 25_000 },
]));

const cases = [
  {
    name: 'promotes a standby outside the synchronous quorum', arb: outsideRecord, bug: etcdCandidateOutsideRecord,
    expect: /I3/, least: 10,
  },
  {
    name: 'writes a stronger sync record before its catch-up', arb: memberLostWhileOtherLags, bug: pgCatchUpAtOnce,
    expect: /I3: etcd's sync record/, least: 10,
  },
];

for (const c of cases) {
  test(`with three nodes the simulator catches code that ${c.name}`, async () => {
    const broken = await catches(c.arb, c.bug, c.expect);
    const real = await catches(c.arb, {}, /./);
    console.log(`${c.name}: caught in ${broken.caught} of ${RUNS} targeted runs (${broken.first ?? 'never'}); ` +
      `the real code: ${real.caught} of ${RUNS}`);
    assert.equal(real.caught, 0, `the real code must pass the same schedules: ${real.first}`);
    assert.ok(broken.caught >= c.least, `caught in only ${broken.caught} of ${RUNS} (${broken.other.slice(0, 2).join('; ')})`);
  });
}

// Goal: the real core keeps every invariant (checker.ts; docs/design.md, "The simulator") and
// converges after healing, over at least 10 000 seeded random fault schedules of 60+ simulated
// seconds each, a quarter of them on random valid timings (random-timings.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scheduleArb } from './generate.js';
import { runParallel } from './parallel.js';
import { describeTimings } from './random-timings.js';
import type { Schedule } from './schedule.js';
import { runSchedule } from './world.js';

const SCHEDULES = Number(process.env.PGVIP_SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.PGVIP_SIM_FIRST_SEED ?? 1);

test(`the simulator finds no violation in ${SCHEDULES} random schedules`, { timeout: 60 * 60_000 }, async () => {
  const r = await runParallel(FIRST_SEED, SCHEDULES);
  console.log(`simulation: ${r.runs} schedules (${r.randomTimingsRuns} on random valid timings), ` +
    `${r.failures.length} violations (${Math.round(r.simulatedMs / 1000)} simulated seconds)`);
  if (r.failures.length > 0) {
    const first = r.failures[0]!;
    // Shrink the first failure with fast-check (on its timings) to the shortest schedule that still breaks.
    const timings = first.timings;
    const holds = (s: Schedule) => runSchedule(s, timings ? { timings } : {}).violations.length === 0;
    const shrunk = fc.check(fc.property(scheduleArb, holds), { seed: first.seed, numRuns: 50, endOnFailure: true });
    const detail = r.failures.slice(0, 5).map((f) =>
      `  seed ${f.seed}${f.timings ? ` (${describeTimings(f.timings)})` : ''}: ${f.violations[0]}` +
      ` (replay: npm run sim -- --seed ${f.seed})`).join('\n');
    const shrinkNote = shrunk.failed ? `\nshrunk counterexample: ${JSON.stringify(shrunk.counterexample)}` : '';
    assert.fail(`${r.failures.length} schedules broke an invariant:\n${detail}${shrinkNote}`);
  }
  assert.ok(r.runs >= SCHEDULES);
  // About a quarter (RANDOM_TIMINGS_SHARE) run on random valid timings: the share is really drawn.
  if (SCHEDULES >= 1000) {
    const share = r.randomTimingsRuns / r.runs;
    assert.ok(share > 0.2 && share < 0.3, `${r.randomTimingsRuns} of ${r.runs} on random timings`);
  }
});

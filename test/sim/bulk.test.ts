// Goal: the real core keeps every invariant of DESIGN §3 (and converges after healing) over at least
// 10 000 seeded random fault schedules of 60+ simulated seconds each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scheduleArb } from './generate.js';
import { runParallel } from './parallel.js';
import { runSchedule } from './world.js';

const SCHEDULES = Number(process.env.PGVIP_SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.PGVIP_SIM_FIRST_SEED ?? 1);

test(`the simulator finds no violation in ${SCHEDULES} random schedules`, { timeout: 60 * 60_000 }, async () => {
  const r = await runParallel(FIRST_SEED, SCHEDULES);
  console.log(`simulation: ${r.runs} schedules, ${r.failures.length} violations (${Math.round(r.simulatedMs / 1000)} simulated seconds)`);
  if (r.failures.length > 0) {
    const first = r.failures[0]!;
    // Shrink the first failure with fast-check to the shortest schedule that still breaks.
    const shrunk = fc.check(fc.property(scheduleArb, (s) => runSchedule(s).violations.length === 0), { seed: first.seed, numRuns: 50, endOnFailure: true });
    const detail = r.failures.slice(0, 5).map((f) => `  seed ${f.seed}: ${f.violations[0]} (replay: npm run sim -- --seed ${f.seed})`).join('\n');
    assert.fail(`${r.failures.length} schedules broke an invariant:\n${detail}${shrunk.failed ? `\nshrunk counterexample: ${JSON.stringify(shrunk.counterexample)}` : ''}`);
  }
  assert.ok(r.runs >= SCHEDULES);
});

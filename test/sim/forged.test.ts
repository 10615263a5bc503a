// Goal: lease requests forged by someone holding the cluster key — for the next terms or for
// 2^53 − 1, in either node's name, to either grantor — change no node's term (I7) and break no
// other invariant, whatever else goes wrong at the time: each random schedule of the bulk run gets
// three of them on top, at random moments (switchovers, failovers and restarts included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withForgedLeaseRequests } from './generate.js';
import { describeTimings } from './random-timings.js';
import { runSchedule } from './world.js';

const SCHEDULES = Number(process.env.PGVIP_SIM_FORGED_SCHEDULES ?? 300);
const FIRST_SEED = Number(process.env.PGVIP_SIM_FIRST_SEED ?? 1);

test(`forged lease requests change nothing in ${SCHEDULES} random schedules`, { timeout: 30 * 60_000 }, () => {
  const failures: string[] = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SCHEDULES; seed++) {
    const s = withForgedLeaseRequests(seed);
    const r = runSchedule(s);
    if (r.violations.length > 0) {
      const timings = s.timings ? ` (${describeTimings(s.timings)})` : '';
      failures.push(`seed ${seed}${timings}: ${r.violations[0]} (replay: npm run sim -- --seed ${seed} --forged)`);
    }
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} schedules broke an invariant`);
});

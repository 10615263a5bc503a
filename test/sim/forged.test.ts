// Goal: lease requests forged by someone holding the cluster key — for the next terms or for
// 2^53 − 1, in either node's name, to either grantor — change no node's term (I7) and break no
// other invariant, whatever else goes wrong at the time: each random schedule of the bulk run gets
// three of them on top, at random moments (switchovers, failovers and restarts included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomSchedule } from './generate.js';
import { Rng } from './rng.js';
import { HOSTS, type Fault, type Schedule } from './schedule.js';
import { runSchedule } from './world.js';

const SCHEDULES = Number(process.env.PGVIP_SIM_FORGED_SCHEDULES ?? 300);
const FIRST_SEED = Number(process.env.PGVIP_SIM_FIRST_SEED ?? 1);

/** The random schedule of `seed` (unchanged, so seeds keep their meaning) plus three forged requests. */
export function withForgedLeaseRequests(seed: number): Schedule {
  const s = randomSchedule(seed);
  const rng = new Rng(seed ^ 0x5eed);
  const forged = Array.from({ length: 3 }, (): Fault => ({
    kind: 'forge-lease-request',
    at: rng.int(3_000, s.healAtMs - 1_000),
    to: HOSTS[rng.int(0, HOSTS.length - 1)]!,
    from: rng.chance(0.5) ? 'db-a' : 'db-b',
    ahead: rng.chance(0.25) ? 'max-safe-integer' : rng.int(1, 3),
  }));
  return { ...s, faults: [...s.faults, ...forged].sort((x, y) => x.at - y.at) };
}

test(`forged lease requests change nothing in ${SCHEDULES} random schedules`, { timeout: 30 * 60_000 }, () => {
  const failures: string[] = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SCHEDULES; seed++) {
    const r = runSchedule(withForgedLeaseRequests(seed));
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations[0]}`);
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} schedules broke an invariant (replay one: runSchedule(withForgedLeaseRequests(seed), { transcript: true }))`);
});

// Runs a range of seeded random schedules; used by the bulk test (in worker threads) and the bench.
import { parentPort, workerData } from 'node:worker_threads';
import type { Timings } from '@pgvip/shared/core';
import { randomSchedule } from './generate.js';
import { runSchedule } from './world.js';

export interface BulkResult {
  readonly runs: number;
  readonly simulatedMs: number;
  /** Each failing seed, with its timings when they were random ones. */
  readonly failures: { seed: number; violations: string[]; timings?: Timings }[];
  /** How many of the runs were on random valid timings. */
  readonly randomTimingsRuns: number;
}

export function runRange(firstSeed: number, count: number): BulkResult {
  const failures: BulkResult['failures'] = [];
  let simulatedMs = 0;
  let randomTimingsRuns = 0;
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const schedule = randomSchedule(seed);
    const r = runSchedule(schedule);
    simulatedMs += schedule.endMs;
    if (schedule.timings !== undefined) randomTimingsRuns++;
    if (r.violations.length > 0) {
      failures.push({ seed, violations: r.violations, ...(schedule.timings ? { timings: schedule.timings } : {}) });
    }
  }
  return { runs: count, simulatedMs, failures, randomTimingsRuns };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'firstSeed' in workerData) {
  const { firstSeed, count } = workerData as { firstSeed: number; count: number };
  parentPort.postMessage(runRange(firstSeed, count));
}

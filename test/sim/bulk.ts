// Runs a range of seeded random schedules; used by the bulk test (in worker threads) and the bench.
import { parentPort, workerData } from 'node:worker_threads';
import { randomSchedule } from './generate.js';
import { runSchedule } from './world.js';

export interface BulkResult {
  readonly runs: number;
  readonly simulatedMs: number;
  readonly failures: { seed: number; violations: string[] }[];
}

export function runRange(firstSeed: number, count: number): BulkResult {
  const failures: BulkResult['failures'] = [];
  let simulatedMs = 0;
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const schedule = randomSchedule(seed);
    const r = runSchedule(schedule);
    simulatedMs += schedule.endMs;
    if (r.violations.length > 0) failures.push({ seed, violations: r.violations });
  }
  return { runs: count, simulatedMs, failures };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'firstSeed' in workerData) {
  const { firstSeed, count } = workerData as { firstSeed: number; count: number };
  parentPort.postMessage(runRange(firstSeed, count));
}

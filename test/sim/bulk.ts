// Runs a range of seeded random schedules; used by the bulk test (in worker threads) and the bench.
import { parentPort, workerData } from 'node:worker_threads';
import type { Timings } from '@pgvip/shared/core';
import { randomBackendSchedule } from './generate.js';
import type { Backend } from './schedule.js';
import { runScheduleAsync } from './world.js';

export interface BulkResult {
  readonly runs: number;
  readonly simulatedMs: number;
  /** Each failing seed, with its timings when they were random ones. */
  readonly failures: { seed: number; violations: string[]; timings?: Timings; backend: Backend; nodes: 2 | 3 }[];
  /** How many of the runs were on random valid timings. */
  readonly randomTimingsRuns: number;
  /** How many of the runs were on etcd (the rest on the witness). */
  readonly etcdRuns: number;
  /** How many of the etcd runs had three database nodes. */
  readonly threeNodeRuns: number;
  /** How many of the three-node runs had synchronousCount 2. */
  readonly k2Runs: number;
  /** CPU time of the runs on each backend, ms (etcd: two-node runs; etcd3: three-node runs). */
  readonly cpuMs: Readonly<Record<RunKind, number>>;
}

export type RunKind = Backend | 'etcd3';

export async function runRange(firstSeed: number, count: number): Promise<BulkResult> {
  const failures: BulkResult['failures'] = [];
  let simulatedMs = 0;
  let randomTimingsRuns = 0;
  let etcdRuns = 0;
  let threeNodeRuns = 0;
  let k2Runs = 0;
  const cpuMs = { witness: 0, etcd: 0, etcd3: 0 };
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const schedule = randomBackendSchedule(seed);
    const backend = schedule.backend ?? 'witness';
    const kind: RunKind = schedule.nodes === 3 ? 'etcd3' : backend;
    // This thread's CPU only: the other workers run at the same time.
    const before = process.threadCpuUsage().user;
    const r = await runScheduleAsync(schedule);
    cpuMs[kind] += (process.threadCpuUsage().user - before) / 1000;
    simulatedMs += schedule.endMs;
    if (schedule.timings !== undefined) randomTimingsRuns++;
    if (backend === 'etcd') etcdRuns++;
    if (kind === 'etcd3') threeNodeRuns++;
    if (schedule.synchronousCount === 2) k2Runs++;
    if (r.violations.length > 0) {
      const timings = schedule.timings ? { timings: schedule.timings } : {};
      failures.push({ seed, backend, nodes: schedule.nodes ?? 2, violations: r.violations, ...timings });
    }
  }
  return { runs: count, simulatedMs, failures, randomTimingsRuns, etcdRuns, threeNodeRuns, k2Runs, cpuMs };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'firstSeed' in workerData) {
  const { firstSeed, count } = workerData as { firstSeed: number; count: number };
  parentPort.postMessage(await runRange(firstSeed, count));
}

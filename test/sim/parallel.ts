// Spreads seeded schedules over worker threads (one per core) and merges the results.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BulkResult } from './bulk.js';

export async function runParallel(
  firstSeed: number,
  count: number,
  workers = Math.max(1, Math.min(availableParallelism(), 4)),
): Promise<BulkResult> {
  const per = Math.ceil(count / workers);
  const jobs: Promise<BulkResult>[] = [];
  for (let w = 0; w < workers; w++) {
    const from = firstSeed + w * per;
    const n = Math.min(per, firstSeed + count - from);
    if (n <= 0) break;
    jobs.push(new Promise((resolve, reject) => {
      const worker = new Worker(new URL('./bulk-worker.mjs', import.meta.url), {
        workerData: { firstSeed: from, count: n },
        execArgv: ['--conditions=pgvip-source'],
      });
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => code !== 0 && reject(new Error(`simulation worker exited with ${code}`)));
    }));
  }
  const results = await Promise.all(jobs);
  return {
    runs: results.reduce((a, r) => a + r.runs, 0),
    simulatedMs: results.reduce((a, r) => a + r.simulatedMs, 0),
    failures: results.flatMap((r) => r.failures),
    randomTimingsRuns: results.reduce((a, r) => a + r.randomTimingsRuns, 0),
    etcdRuns: results.reduce((a, r) => a + r.etcdRuns, 0),
    threeNodeRuns: results.reduce((a, r) => a + r.threeNodeRuns, 0),
    k2Runs: results.reduce((a, r) => a + r.k2Runs, 0),
    cpuMs: {
      witness: results.reduce((a, r) => a + r.cpuMs.witness, 0),
      etcd: results.reduce((a, r) => a + r.cpuMs.etcd, 0),
      etcd3: results.reduce((a, r) => a + r.cpuMs.etcd3, 0),
    },
  };
}

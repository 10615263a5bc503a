// Goal: at the default timings, the flaky schedules (flaky.ts: flapping links, 30 % loss, pauses of a
// whole host shorter than the lease) never fail over, on the witness and on etcd, and keep every
// invariant. The price of the short defaults, shown rather than assumed (docs/design.md, "Default
// timings and why they are both fast and calm"). PGVIP_SIM_FLAKY_SEEDS sets the seeds per backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultTimings } from '@pgvip/shared/core';
import { flakyCases } from './flaky.js';
import type { Backend } from './schedule.js';
import { runScheduleAsync } from './world.js';

const SEEDS = Number(process.env.PGVIP_SIM_FLAKY_SEEDS ?? 6);

describe('the simulator: flaky networks and short pauses never fail over at the default timings', () => {
  const backends: [Backend, number][] = [['witness', SEEDS], ['etcd', Math.max(1, Math.ceil(SEEDS / 3))]];
  for (const [backend, seeds] of backends) {
    test(`${backend}: ${seeds} seeds × ${flakyCases(1).length} cases`, async () => {
      const failed: string[] = [];
      for (let seed = 1; seed <= seeds; seed++) {
        for (const c of flakyCases(seed, backend)) {
          const r = await runScheduleAsync(c.schedule, { timings: defaultTimings });
          const promoted = r.promotions.map((p) => `${p.node}@${(p.t / 1000).toFixed(2)}s`);
          if (r.violations.length > 0 || promoted.length > 0) {
            failed.push(`seed ${seed}, ${c.name}: ${[...r.violations, ...promoted.map((p) => `promoted ${p}`)].join('; ')}`);
          }
        }
      }
      assert.deepEqual(failed, []);
    });
  }
});

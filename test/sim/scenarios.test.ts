// Goal: every fault scenario row the simulator can express (the lab's rows, docs/lab.md; see
// docs/design.md, "The simulator") has its expected outcome, on several seeds, with every invariant
// checked along the way.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarios } from './scenarios.js';
import { runSchedule } from './world.js';

const SEEDS = [1, 2, 3, 4, 5];
/** Rows whose primary fails with no standby that may take over automatically. */
const blockedRows = new Set(['row13-primary-dies-witness-down', 'row20-new-primary-dies']);

describe('the fault scenario rows in the simulator', () => {
  for (const [name, sc] of Object.entries(scenarios)) {
    test(`${name}: ${sc.goal}`, () => {
      for (const seed of SEEDS) {
        const r = runSchedule(sc.schedule(seed));
        const blocked = r.notifications.filter((n) => n.event === 'failover-blocked');
        // Operators hear "no automatic failover will follow" exactly where that is true: the rows
        // whose standby cannot take over (and nowhere a failover happens on its own).
        const blockedProblem = blockedRows.has(name) === (blocked.length > 0) ? [] : [`failover-blocked ${blocked.length > 0 ? `raised: ${blocked[0]!.detail}` : 'never raised'}`];
        const problems = [...r.violations, ...sc.expect(r), ...blockedProblem];
        assert.deepEqual(problems, [], `seed ${seed} (replay: npm run sim -- --scenario ${name} --seed ${seed})`);
      }
    });
  }
});

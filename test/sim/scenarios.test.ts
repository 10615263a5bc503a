// Goal: every DESIGN §9 row the simulator can express has its expected outcome, on several seeds,
// with every invariant checked along the way.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarios } from './scenarios.js';
import { runSchedule } from './world.js';

const SEEDS = [1, 2, 3, 4, 5];

describe('DESIGN §9 scenarios in the simulator', () => {
  for (const [name, sc] of Object.entries(scenarios)) {
    test(`${name}: ${sc.goal}`, () => {
      for (const seed of SEEDS) {
        const r = runSchedule(sc.schedule(seed));
        const problems = [...r.violations, ...sc.expect(r)];
        assert.deepEqual(problems, [], `seed ${seed} (replay: npm run sim -- --scenario ${name} --seed ${seed})`);
      }
    });
  }
});

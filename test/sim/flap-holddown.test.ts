// Goal: with notifications.nodeHoldDownMs, the flapping rows of the scenario table (row 16: the
// primary's links cut 2 s out of every 5 s for two minutes) announce the first failure and recovery
// and then one summary instead of 24 pairs, and nothing else changes: the same promotions, writes,
// VIP moves and final primary, every invariant held.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarios } from './scenarios.js';
import { canonicalJson } from './transcript.js';
import { realCores, runSchedule, type Cores, type RunResult } from './world.js';

const HOLD_MS = 60_000;
const withHoldDown: Cores = {
  ...realCores,
  bootWitness: (settings, durable, nowMs) =>
    realCores.bootWitness({ ...settings, nodeHoldDownMs: HOLD_MS }, durable, nowMs),
};

const witnessSaid = (r: RunResult, event: string) =>
  r.notifications.filter((n) => n.host === 'witness' && n.event === event);
/** What the cluster did, as opposed to what it said. */
const did = (r: RunResult) =>
  canonicalJson([r.violations, r.promotions, r.acks, r.vipMoves, r.finalPrimary, r.writesAttempted]);

describe('the simulator: the hold-down of a flapping node', () => {
  for (const name of ['row16-flapping-link', 'row16-flapping-primary']) {
    test(`${name}: one pair and a summary instead of 24 pairs; the same outcome`, () => {
      for (const seed of [1, 2]) {
        // Runs on until the node has stayed up for a whole hold-down after the last cut.
        const schedule = { ...scenarios[name]!.schedule(seed), endMs: 200_000 };
        const plain = runSchedule(schedule);
        const held = runSchedule(schedule, { cores: withHoldDown });
        assert.equal(witnessSaid(plain, 'failure-detected').length, 24, `seed ${seed}`);
        const failures = witnessSaid(held, 'failure-detected');
        assert.equal(failures.length, 1, JSON.stringify(failures));
        const back = witnessSaid(held, 'node-recovered');
        assert.equal(back.length, 2, JSON.stringify(back));
        assert.match(back[1]!.detail, /^db-a flapping: 46 transitions in 1\d\d s; it has answered for 60 s since$/);
        assert.equal(did(held), did(plain), `seed ${seed}`);
      }
    });
  }
});

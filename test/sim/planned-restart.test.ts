// Goal: `pgvip restart` is no failure. A planned restart of the primary keeps its term and its
// place (no promotion, no vote, writes resume), a standby's restart changes nothing either, and a
// restart that fails or outlasts its deadline becomes an ordinary failover; random schedules with
// planned restarts among the other faults keep every invariant; and a core whose restart hold never
// ends is caught.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type AgentState } from '@pgvip/shared/core';
import { randomSchedule } from './generate.js';
import { Rng } from './rng.js';
import { baseSchedule, type Fault, type Schedule } from './schedule.js';
import { realCores, runSchedule, type Cores, type RunResult } from './world.js';

const SEEDS = [1, 2, 3, 4, 5];
const RESTART_AT = 10_000;

function restart(node: 'primary' | 'standby', restartMs: number, timeoutMs = 20_000, fails = false): Fault {
  return { kind: 'planned-restart', at: RESTART_AT, node, timeoutMs, restartMs, fails };
}

function summary(r: RunResult): string {
  return JSON.stringify({ violations: r.violations, promotions: r.promotions, notes: r.notifications.map((n) => `${n.host} ${n.event}: ${n.detail}`) });
}

const notes = (r: RunResult, event: string) => r.notifications.filter((n) => n.event === event);
const ackedAfter = (r: RunResult, t: number) => r.acks.filter((a) => a.t > t).length;

describe('the simulator: planned restarts', () => {
  test('restarting the primary: same term, same primary, writes resume', () => {
    for (const seed of SEEDS) {
      for (const replication of ['sync', 'async'] as const) {
        const r = runSchedule(baseSchedule(seed, [restart('primary', 1_500)], { replication, healAtMs: 20_000, endMs: 40_000 }));
        assert.deepEqual(r.violations, [], `seed ${seed}`);
        assert.deepEqual(r.promotions, [], summary(r));
        assert.equal(r.finalPrimary, 'db-a', summary(r));
        assert.deepEqual(notes(r, 'failure-detected'), [], summary(r));
        assert.deepEqual(notes(r, 'lease-released'), [], summary(r));
        assert.ok(notes(r, 'planned-restart').some((n) => n.host === 'witness' && /db-a is back as primary/.test(n.detail)), summary(r));
        // Writes resume within a few seconds of the restart.
        const firstAfter = r.acks.find((a) => a.t > RESTART_AT + 1_500);
        assert.ok(firstAfter !== undefined && firstAfter.t < RESTART_AT + 5_000, summary(r));
        assert.ok(ackedAfter(r, RESTART_AT + 5_000) > 100, summary(r));
      }
    }
  });

  test('restarting the standby: no failover, and it streams again', () => {
    for (const seed of SEEDS) {
      const r = runSchedule(baseSchedule(seed, [restart('standby', 1_000)], { healAtMs: 20_000, endMs: 40_000 }));
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(r.promotions, [], summary(r));
      assert.equal(r.finalPrimary, 'db-a');
      assert.ok(notes(r, 'planned-restart').some((n) => n.host === 'witness' && /db-b is back as standby/.test(n.detail)), summary(r));
    }
  });

  test('a restart that outlasts its deadline, or fails to start, becomes an ordinary failover', () => {
    for (const seed of SEEDS) {
      // The third holds longer than timings.streamingGraceMs (10 s): the standby still counts as
      // streaming through the hold, so the failover after it is not blocked as ineligible.
      const faults = [restart('primary', 25_000, 8_000), restart('primary', 1_000, 8_000, true), restart('primary', 28_000, 15_000)];
      for (const fault of faults) {
        const r = runSchedule(baseSchedule(seed, [fault], { healAtMs: 40_000, endMs: 70_000 }));
        assert.deepEqual(r.violations, [], `seed ${seed}`);
        assert.equal(r.promotions.length, 1, summary(r));
        assert.equal(r.promotions[0]!.node, 'db-b');
        // Not before the restart failed or its deadline passed.
        const failedAt = fault.kind === 'planned-restart' ? RESTART_AT + (fault.fails ? fault.restartMs : fault.timeoutMs) : 0;
        assert.ok(r.promotions[0]!.t > failedAt, summary(r));
        assert.equal(r.finalPrimary, 'db-b');
      }
    }
  });

  test('random schedules with planned restarts among the faults keep every invariant', () => {
    for (let seed = 1; seed <= 120; seed++) {
      const s = withPlannedRestarts(seed);
      const r = runSchedule(s);
      assert.deepEqual(r.violations, [], `seed ${seed} (withPlannedRestarts): ${JSON.stringify(s.faults)}`);
    }
  });

  test('the simulator catches a core whose restart hold never ends', () => {
    // The restart hangs until the shell gives up on it (30 s): the real core fails over after the
    // 8 s deadline and the old primary rejoins; a hold that never ends leaves nobody to write.
    const s = baseSchedule(1, [restart('primary', 60_000, 8_000)], { healAtMs: 60_000, endMs: 85_000 });
    const real = runSchedule(s);
    assert.deepEqual(real.violations, [], summary(real));
    const broken = runSchedule(s, { cores: holdNeverEnds });
    assert.ok(broken.violations.some((v) => /liveness/.test(v)), `the never-ending hold went unnoticed: ${summary(broken)}`);
  });
});

/** The random schedule of `seed` (its faults unchanged) plus one or two planned restarts. */
export function withPlannedRestarts(seed: number): Schedule {
  const s = randomSchedule(seed);
  const rng = new Rng(seed ^ 0x7e57a7);
  const restarts = Array.from({ length: rng.int(1, 2) }, (): Fault => ({
    kind: 'planned-restart',
    at: rng.int(3_000, s.healAtMs - 10_000),
    node: rng.chance(0.6) ? 'primary' : 'standby',
    timeoutMs: rng.int(2_000, 20_000),
    restartMs: rng.chance(0.8) ? rng.int(200, 3_000) : rng.int(3_000, 25_000),
    fails: rng.chance(0.1),
  }));
  return { ...s, faults: [...s.faults, ...restarts].sort((x, y) => x.at - y.at) };
}

/** Bug: once asked for, the agent's restart hold never ends (no deadline, and not when the server is back). */
const holdNeverEnds: Cores = {
  ...realCores,
  stepAgent: (s: AgentState, input) => {
    const out = realCores.stepAgent(s, input);
    const r = out.state.restart ?? s.restart;
    return r === null ? out : { ...out, state: { ...out.state, restart: { ...r, untilMs: Infinity } } };
  },
};

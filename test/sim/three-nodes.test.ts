// Goal: three database nodes on etcd (docs/design.md, "More than one standby") keep every invariant
// and do what the lab's three-node rows expect, on several seeds: the more advanced standby wins, a
// lagging one never does, an AZ loss loses nothing acknowledged, one standby lost blocks no write,
// both lost degrade with etcd's agreement, a switchover goes to the node named, and the other standby
// follows every new primary (the liveness check: every node streams from the primary at the end).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSchedule, type DbNode, type Fault, type Schedule } from './schedule.js';
import { runScheduleAsync, type RunResult } from './world.js';

const SEEDS = [1, 2, 3];
const FAULT_AT = 10_000;

const three = (seed: number, faults: Fault[], patch: Partial<Schedule> = {}): Schedule =>
  baseSchedule(seed, faults, { nodes: 3, backend: 'etcd', ...patch });

/** The longest time between two acknowledged writes within [fromMs, toMs]. */
function longestAckGapMs(r: RunResult, fromMs: number, toMs: number): number {
  const ts = [fromMs, ...r.acks.filter((a) => a.t > fromMs && a.t < toMs).map((a) => a.t), toMs];
  return Math.max(...ts.slice(1).map((t, i) => t - ts[i]!));
}
const promoted = (r: RunResult): DbNode[] => r.promotions.map((p) => p.node);
const summary = (r: RunResult): string =>
  `promotions ${r.promotions.map((p) => `${p.node}@${Math.round(p.t)}`).join(', ') || 'none'}, final ${r.finalPrimary}, ` +
  `violations ${r.violations.join('; ') || 'none'}`;

interface Row {
  readonly goal: string;
  readonly schedule: (seed: number) => Schedule;
  readonly expect: (r: RunResult) => string[];
}

const rows: Record<string, Row> = {
  'host-loss-more-advanced-wins': {
    goal: 'the primary host is lost while db-c trails: db-b, the more advanced, wins; db-c follows it',
    schedule: (seed) => three(seed, [
      { kind: 'lag', at: FAULT_AT - 5_000, node: 'db-c', bytesPerRound: 10, durMs: 20_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 20_000 },
    ]),
    expect: (r) => (promoted(r)[0] === 'db-b' && r.finalPrimary === 'db-b' ? [] : ['db-b should win']),
  },
  'lagging-standby-never-wins': {
    goal: 'db-b receives nothing for a while, then the primary is lost: db-c wins, never db-b',
    schedule: (seed) => three(seed, [
      { kind: 'lag', at: FAULT_AT - 5_000, node: 'db-b', bytesPerRound: 0, durMs: 30_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 20_000 },
    ]),
    expect: (r) => (promoted(r)[0] === 'db-c' && !promoted(r).includes('db-b') ? [] : ['db-c should win, db-b never']),
  },
  'az-loss': {
    goal: 'the primary\'s AZ is lost (host and links): a standby takes over, nothing acknowledged is lost',
    schedule: (seed) => three(seed, [{ kind: 'az-loss', at: FAULT_AT, node: 'db-a', downMs: 10_000, durMs: 20_000 }]),
    expect: (r) => (r.promotions.length === 1 && r.finalPrimary !== 'db-a' ? [] : ['one failover away from db-a']),
  },
  'one-standby-lost': {
    goal: 'db-c\'s host is lost: still synchronous through db-b, no write blocked, no failover',
    schedule: (seed) => three(seed, [{ kind: 'crash-host', at: FAULT_AT, node: 'db-c', downMs: 20_000 }]),
    expect: (r) => {
      const gap = longestAckGapMs(r, FAULT_AT, FAULT_AT + 20_000);
      return [
        ...(r.promotions.length === 0 ? [] : ['no failover']),
        ...(gap <= 1_000 ? [] : [`writes blocked ${gap} ms`]),
      ];
    },
  },
  'both-standbys-lost': {
    goal: 'both standby hosts are lost: the record degrades with etcd\'s agreement and writes go on; no failover',
    schedule: (seed) => three(seed, [
      { kind: 'crash-host', at: FAULT_AT, node: 'db-b', downMs: 25_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-c', downMs: 25_000 },
    ]),
    expect: (r) => {
      const acked = r.acks.filter((a) => a.t > FAULT_AT + 15_000 && a.t < FAULT_AT + 25_000).length;
      return [
        ...(r.promotions.length === 0 ? [] : ['no failover']),
        ...(acked >= 50 ? [] : [`only ${acked} writes acknowledged after the degrade`]),
      ];
    },
  },
  'both-standbys-lost-block': {
    goal: 'both standby hosts are lost with replication.degrade block: writes wait instead, no failover; they go on after',
    schedule: (seed) => three(seed, [
      { kind: 'crash-host', at: FAULT_AT, node: 'db-b', downMs: 25_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-c', downMs: 25_000 },
    ], { degrade: 'block' }),
    expect: (r) => {
      const during = r.acks.filter((a) => a.t > FAULT_AT + 3_000 && a.t < FAULT_AT + 25_000).length;
      const after = r.acks.filter((a) => a.t > FAULT_AT + 40_000).length;
      return [
        ...(r.promotions.length === 0 ? [] : ['no failover']),
        ...(during === 0 ? [] : [`${during} writes acknowledged with no standby`]),
        ...(after >= 50 ? [] : [`only ${after} writes acknowledged after the standbys came back`]),
      ];
    },
  },
  'no-failover-node': {
    goal: 'db-c is noFailover: the primary host is lost, db-b wins even when db-c is ahead, db-c follows it',
    schedule: (seed) => three(seed, [
      { kind: 'lag', at: FAULT_AT - 5_000, node: 'db-b', bytesPerRound: 20, durMs: 6_000 },
      { kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 20_000 },
    ], { noFailover: ['db-c'] }),
    expect: (r) => (promoted(r).join() === 'db-b' && r.finalPrimary === 'db-b' ? [] : ['db-b should win, never db-c']),
  },
  'priority': {
    goal: 'equally advanced standbys: the higher priority (db-c) wins',
    schedule: (seed) => three(seed, [{ kind: 'crash-host', at: FAULT_AT, node: 'db-a', downMs: 20_000 }], {
      priority: { 'db-c': 2 },
    }),
    expect: (r) => (promoted(r)[0] === 'db-c' ? [] : ['db-c should win on priority']),
  },
  'switchover-to-named': {
    goal: 'a switchover to db-c: db-c is primary, db-a and db-b follow it, nothing lost',
    schedule: (seed) => three(seed, [{ kind: 'switchover', at: FAULT_AT, to: 'db-c' }]),
    expect: (r) => (promoted(r).join() === 'db-c' && r.finalPrimary === 'db-c' ? [] : ['db-c should be primary']),
  },
};

describe('three database nodes on etcd in the simulator', () => {
  for (const [name, row] of Object.entries(rows)) {
    test(`${name}: ${row.goal}`, async () => {
      for (const seed of SEEDS) {
        const r = await runScheduleAsync(row.schedule(seed));
        assert.deepEqual([...r.violations, ...row.expect(r)], [], `seed ${seed}: ${summary(r)}`);
      }
    });
  }
});

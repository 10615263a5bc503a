// Goal: the simulator's etcd model (etcd.ts) does what docs/design.md, Quorum on etcd, says of etcd's
// failures, with the agents' real bridge: etcd's own faults cause no failover while the primary keeps
// its standby's grant, nobody promotes without etcd's quorum, a host loss fails over, a switchover
// moves etcd's term record with its handover txn, and a seed replays byte for byte.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSchedule, type Fault, type Schedule } from './schedule.js';
import { runScheduleAsync, type RunResult } from './world.js';

const onEtcd = (seed: number, faults: Fault[], patch: Partial<Schedule> = {}): Schedule =>
  baseSchedule(seed, faults, { backend: 'etcd', healAtMs: 40_000, endMs: 65_000, ...patch });
const summary = (r: RunResult) =>
  `violations ${JSON.stringify(r.violations)}, promotions ${JSON.stringify(r.promotions)}, final ${r.finalPrimary}`;
const SEEDS = [1, 2, 3, 4, 5, 6];

describe('the simulator on etcd', () => {
  test('a seed replays byte for byte (the async bridge is drained deterministically)', async () => {
    const s = onEtcd(7, [
      { kind: 'etcd-isolate-leader', at: 8_000, durMs: 5_000 },
      { kind: 'crash-host', at: 15_000, node: 'db-a', downMs: 10_000 },
    ]);
    const a = await runScheduleAsync(s, { transcript: true, digestEveryMs: 5_000 });
    const b = await runScheduleAsync(s, { transcript: true, digestEveryMs: 5_000 });
    assert.deepEqual(a.transcript, b.transcript);
    assert.ok(a.transcript.some((l) => /etcd .* elected leader/.test(l)), 'the isolated etcd leader was replaced');
  });

  test('host loss of the primary: failover on etcd', async () => {
    for (const seed of SEEDS) {
      const r = await runScheduleAsync(onEtcd(seed, [{ kind: 'crash-host', at: 10_000, node: 'db-a', downMs: 15_000 }]));
      assert.deepEqual(r.violations, [], summary(r));
      assert.equal(r.promotions.length, 1, summary(r));
      assert.equal(r.finalPrimary, 'db-b', summary(r));
    }
  });

  test('etcd member crash, etcd leader isolated or frozen, etcd quorum lost, an agent cut from etcd: no failover', async () => {
    const faults: Fault[][] = [
      [{ kind: 'etcd-crash', at: 10_000, node: 'witness', downMs: 20_000 }],
      [{ kind: 'etcd-isolate-leader', at: 10_000, durMs: 20_000 }],
      [{ kind: 'etcd-quorum-loss', at: 10_000, durMs: 20_000 }],
      [{ kind: 'etcd-freeze-leader', at: 10_000, durMs: 5_000 }],
      [{ kind: 'etcd-cut-agent', at: 10_000, node: 'db-a', durMs: 20_000 }],
      [{ kind: 'etcd-cut-agent', at: 10_000, node: 'db-b', durMs: 20_000 }],
    ];
    for (const seed of SEEDS) {
      for (const f of faults) {
        const r = await runScheduleAsync(onEtcd(seed, f));
        assert.deepEqual(r.violations, [], `${f[0]!.kind}: ${summary(r)}`);
        assert.equal(r.promotions.length, 0, `${f[0]!.kind}: ${summary(r)}`);
        assert.equal(r.finalPrimary, 'db-a', `${f[0]!.kind}: ${summary(r)}`);
      }
    }
  });

  test('nobody promotes without etcd\'s quorum, and the failover follows once it is back', async () => {
    for (const seed of SEEDS) {
      // Short enough for the standby to stay eligible (streamingGraceMs after its last streaming)
      // through etcd's election and the TTL + election timeout the new etcd leader gives the key.
      // The primary's agent and PostgreSQL die, not its host: etcd's member there stays, so the
      // campaign's calls do not wait out their deadline on a dead member (etcd3 picks one per call).
      const r = await runScheduleAsync(onEtcd(seed, [
        { kind: 'etcd-quorum-loss', at: 10_000, durMs: 4_000 },
        { kind: 'crash-agent', at: 11_000, node: 'db-a', downMs: 25_000 },
        { kind: 'kill-pg', at: 11_000, node: 'db-a', downMs: 25_000 },
      ]));
      assert.deepEqual(r.violations, [], summary(r));
      assert.equal(r.promotions.length, 1, summary(r));
      assert.ok(r.promotions[0]!.t > 14_000, `promoted at ${r.promotions[0]!.t} ms, before etcd's quorum was back`);
      assert.equal(r.finalPrimary, 'db-b', summary(r));
    }
  });

  test('a switchover on etcd: the handover txn, then the handover', async () => {
    for (const seed of SEEDS) {
      const r = await runScheduleAsync(onEtcd(seed, [{ kind: 'switchover', at: 10_000 }]), { transcript: true });
      assert.deepEqual(r.violations, [], summary(r));
      assert.equal(r.finalPrimary, 'db-b', summary(r));
      assert.ok(r.transcript.some((l) => /etcd +term record: term 2/.test(l)), 'etcd recorded term 2');
    }
  });
});

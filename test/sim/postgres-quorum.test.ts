// Goal: the simulated PostgreSQL keeps quorum commit as PostgreSQL does (docs/design.md, "More than
// one standby"): under `ANY k (…)` a commit is acknowledged only once k of the named standbys flushed
// it; a standby follows a new timeline only when it has not passed the fork (else `follow` fails
// `diverged:`); the catch-up waits for k members' flush past the position read at its start. The
// three-node runs rest on this model, so its rules are checked here on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Effect, EffectResult } from '@pgvip/shared/core';
import { Checker } from './checker.js';
import { Hosts, SimClock } from './clock.js';
import { Network } from './network.js';
import { Postgres } from './postgres.js';
import { RngStreams } from './rng.js';
import { baseSchedule, DB_NODES_3, type DbNode } from './schedule.js';

function world() {
  const sched = baseSchedule(7, [], { nodes: 3, backend: 'etcd' });
  const clock = new SimClock(sched.clockRates);
  const hosts = new Hosts();
  const rngs = new RngStreams(sched.seed);
  const net = new Network(clock, hosts, rngs, sched, 400);
  const check = new Checker(() => clock.t, () => undefined, {
    replication: 'sync', lagBytesMax: 16n << 20n, bootstrap: false, nodes: DB_NODES_3,
  });
  const vip: { routed: DbNode } = { routed: 'db-a' };
  const pg = new Postgres({
    clock, hosts, rngs, net, check, log: () => undefined, routed: () => vip.routed, replication: 'sync',
    writeProbeTimeoutMs: 2000, receiverSilenceMs: 1000, nodes: DB_NODES_3,
  });
  pg.start();
  /** Run an effect on n; its result once it finished. */
  const effect = (n: DbNode, e: Effect): { result: Omit<EffectResult, 'id'> | null } => {
    const box: { result: Omit<EffectResult, 'id'> | null } = { result: null };
    const known = pg.effect(n, e, (delayMs, apply) => clock.after(delayMs, () => (box.result = apply())), () => 2);
    assert.ok(known, `the model knows ${e.kind}`);
    return box;
  };
  const run = (ms: number) => clock.runUntil(clock.t + ms);
  /** Acknowledged writes since `fromMs`. */
  const ackedSince = (fromMs: number) => pg.acks.filter((a) => a.t >= fromMs);
  return { clock, net, pg, check, vip, effect, run, ackedSince };
}

test('ANY 1 of two standbys: commits go on while either flushes, and wait when neither does', () => {
  const w = world();
  w.run(2_000);
  assert.deepEqual(w.pg.snapshot('db-a').syncClaim, { members: ['db-b', 'db-c'], k: 1 });
  assert.ok(w.ackedSince(1_000).length >= 9);
  w.net.cut('db-a', 'db-b', false, 60_000);
  w.run(1_500);
  const cutB = w.clock.t;
  w.run(2_000);
  // Every commit acknowledged with db-b cut off is on db-c.
  const onC = w.ackedSince(cutB);
  assert.ok(onC.length >= 15, `${onC.length} acknowledged through db-c`);
  assert.ok(onC.every((a) => a.lsn <= w.pg.pg['db-c'].lsn));
  assert.ok(onC.some((a) => a.lsn > w.pg.pg['db-b'].lsn), 'db-b missed some of them');
  w.net.cut('db-a', 'db-c', false, 60_000);
  w.run(1_500);
  const cutBoth = w.clock.t;
  w.run(3_000);
  assert.deepEqual(w.ackedSince(cutBoth), [], 'nothing is acknowledged with no member flushing');
  assert.equal(w.pg.snapshot('db-a').standbyInSync, false);
});

test('ANY 2 of two standbys: one standby cut off stops every acknowledgement', () => {
  const w = world();
  const set = w.effect('db-a', { kind: 'set-sync', claim: { members: ['db-c', 'db-b'], k: 2 } });
  w.run(1_000);
  assert.equal(set.result?.ok, true);
  assert.deepEqual(w.pg.snapshot('db-a').syncClaim, { members: ['db-b', 'db-c'], k: 2 });
  assert.ok(w.ackedSince(500).length >= 4);
  w.net.cut('db-a', 'db-c', false, 60_000);
  w.run(1_500);
  const cut = w.clock.t;
  w.run(2_000);
  assert.deepEqual(w.ackedSince(cut), []);
  // Degrading to '' acknowledges every waiting commit at once (as PostgreSQL releases its waiters).
  const pendingBefore = w.pg.pg['db-a'].pending.length;
  assert.ok(pendingBefore > 0);
  w.effect('db-a', { kind: 'set-sync', claim: { members: [], k: 0 } });
  w.run(100);
  assert.ok(w.ackedSince(cut).length >= pendingBefore);
});

test('a lagging standby trails; pg_stat_replication shows each standby\'s own flush', () => {
  const w = world();
  w.run(1_000);
  w.pg.lag('db-c', 5, 10_000);
  w.run(5_000);
  const rows = w.pg.snapshot('db-a').replicas ?? [];
  const b = rows.find((r) => r.node === 'db-b');
  const c = rows.find((r) => r.node === 'db-c');
  assert.ok(b !== undefined && c !== undefined);
  assert.equal(b.syncState, 'quorum');
  assert.ok(c.flushLsn < b.flushLsn, `db-c ${c.flushLsn} trails db-b ${b.flushLsn}`);
  assert.equal(w.pg.snapshot('db-c').upstream, 'db-a');
  w.run(12_000);
  assert.equal(w.pg.pg['db-c'].lsn, w.pg.pg['db-a'].lsn, 'it catches up once the lag ends');
});

test('the catch-up waits for k members past the position at its start, and names who lagged', () => {
  const w = world();
  w.run(1_000);
  const ok = w.effect('db-a', { kind: 'sync-catch-up', members: ['db-b', 'db-c'], count: 2, timeoutMs: 1_000 });
  w.run(1_200);
  assert.equal(ok.result?.ok, true, ok.result?.detail);
  w.net.cut('db-a', 'db-c', false, 60_000);
  w.run(1_500);
  const late = w.effect('db-a', { kind: 'sync-catch-up', members: ['db-b', 'db-c'], count: 2, timeoutMs: 1_000 });
  w.run(1_500);
  assert.equal(late.result?.ok, false);
  assert.match(late.result?.detail ?? '', /lagged: db-c/);
  const one = w.effect('db-a', { kind: 'sync-catch-up', members: ['db-b', 'db-c'], count: 1, timeoutMs: 1_000 });
  w.run(1_500);
  assert.equal(one.result?.ok, true, one.result?.detail);
});

test('a standby follows a new primary at its fork, and is refused past it (diverged)', () => {
  const w = world();
  w.run(1_000);
  // db-c falls behind, then the primary is lost; db-b (ahead) is promoted.
  w.pg.lag('db-c', 0, 60_000);
  w.run(2_000);
  w.pg.down('db-a');
  for (const n of ['db-b', 'db-c'] as const) w.effect(n, { kind: 'stop-wal-receiver' });
  w.run(200);
  const promoted = w.effect('db-b', { kind: 'promote' });
  w.run(1_000);
  assert.equal(promoted.result?.ok, true);
  assert.equal(w.pg.pg['db-b'].timeline, 2);
  w.vip.routed = 'db-b';
  assert.ok(w.pg.pg['db-c'].lsn < w.pg.pg['db-b'].lsn);
  const follow = w.effect('db-c', { kind: 'follow', primary: 'db-b' });
  w.run(500);
  assert.equal(follow.result?.ok, true, follow.result?.detail);
  w.pg.lag('db-c', 1_000_000, 1);
  w.run(1_000);
  assert.equal(w.pg.pg['db-c'].timeline, 2, 'db-c is on the new timeline');
  assert.equal(w.pg.snapshot('db-c').upstream, 'db-b');
  assert.ok(w.pg.streaming('db-c'));

  // Now db-b is lost, db-c (behind) promoted; db-b comes back ahead of db-c's fork: diverged.
  w.pg.lag('db-c', 0, 60_000);
  w.run(2_000);
  w.pg.down('db-b');
  w.effect('db-c', { kind: 'stop-wal-receiver' });
  w.run(200);
  w.effect('db-c', { kind: 'promote' });
  w.run(1_000);
  w.vip.routed = 'db-c';
  assert.ok(w.pg.pg['db-b'].lsn > (w.pg.pg['db-c'].history.get(2) ?? 0n), 'db-b flushed past the fork');
  w.pg.pg['db-b'].running = true;
  w.pg.pg['db-b'].inRecovery = true;
  const refused = w.effect('db-b', { kind: 'follow', primary: 'db-c' });
  w.run(500);
  assert.equal(refused.result?.ok, false);
  assert.match(refused.result?.detail ?? '', /^diverged:/);
  w.run(1_000);
  assert.ok(!w.pg.streaming('db-b'), 'a diverged standby never streams');
});

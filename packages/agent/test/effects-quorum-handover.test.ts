// Goal: the agent's shell carries out the core's quorum-handover effect (docs/design.md, Quorum on
// etcd): on the witness backend there is nothing to record, so it is done at once and ok; on etcd it
// is the handover txn, ok only when the txn committed and failed (with etcd's reason) otherwise, so
// that the core aborts the switchover. etcd here is the fake, which runs the same protocol code.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { PROTOCOL_VERSION, defaultTimings } from '@pgvip/shared';
import { FakeVipCloud, FakeVipPort, LocalPostgres } from '@pgvip/agent';
import { runEffect, type EffectPorts } from '../src/effects.js';
import { EtcdAgentQuorum } from '../src/quorum/etcd/agent-quorum.js';
import { FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';

/** Ports whose PostgreSQL and VIP the effect never touches (nothing connects until used). */
function ports(t: TestContext, quorumHandover?: EffectPorts['quorumHandover']): EffectPorts {
  const pg = new LocalPostgres({ nodeName: 'db-a', host: '127.0.0.1', port: 1, user: 'postgres', database: 'postgres', dataDir: '/nonexistent' });
  t.after(() => pg.close());
  return {
    pg, vip: new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a'), endpoints: {}, names: {}, promoteWaitSeconds: 1,
    ...(quorumHandover === undefined ? {} : { quorumHandover }),
  };
}

test('Given the witness backend, Then quorum-handover is done at once and ok', async (t) => {
  const r = await runEffect(7, { kind: 'quorum-handover', term: 3, to: 'db-b' }, ports(t));
  assert.equal(r.id, 7);
  assert.ok(r.ok, r.detail);
  assert.match(r.detail, /term 4 goes to db-b/);
});

test('Given etcd, Then quorum-handover is the handover txn: refused without our leader key, ok once it committed', async (t) => {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const q = new EtcdAgentQuorum(new FakeEtcdQuorum(etcd, { prefix: '/pgvip', cluster: 'main', timeoutMs: 400, clock }), {
    cluster: 'main', self: 'db-a', quorumId: 'etcd', timings: defaultTimings, replication: 'async', logger: pino({ level: 'silent' }), clock,
  });
  t.after(() => q.close());
  const p = ports(t, (term, to) => q.handover(term, to));
  const refused = await runEffect(1, { kind: 'quorum-handover', term: 1, to: 'db-b' }, p);
  assert.ok(!refused.ok, 'no leader key of db-a yet: nothing to hand over');
  assert.match(refused.detail, /handover txn/);
  const won = await q.ask({ v: PROTOCOL_VERSION, cluster: 'main', term: 1, from: 'db-a', kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  assert.ok(won?.kind === 'vote-reply' && won.granted, JSON.stringify(won, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  nowMs += 10;
  const done = await runEffect(2, { kind: 'quorum-handover', term: 1, to: 'db-b' }, p);
  assert.ok(done.ok, done.detail);
  assert.match(done.detail, /db-b for term 2/);
});

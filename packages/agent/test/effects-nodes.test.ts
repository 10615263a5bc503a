// Goal: the N-node effects' shell logic, on the in-memory port: node ids become application names in
// synchronous_standby_names (quoted, k = 0 as ''), a follow PostgreSQL would refuse fails with the
// `diverged:` prefix the core reads to ask for a rejoin, and a follow to an unknown node fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakePgNetwork, FakePostgres, FakeVipCloud, FakeVipPort, type PostgresPort } from '@pgvip/agent';
import { runEffect, type EffectPorts } from '../src/effects.js';
import { standbyNamesFor } from '../src/effects-nodes.js';

test('Given a claim over node ids, Then synchronous_standby_names names their application names, sorted and quoted', () => {
  const names = { a: 'db-a', b: 'db-b', c: 'db-"c"' };
  assert.equal(standbyNamesFor({ members: ['c', 'b'], k: 1 }, names), 'ANY 1 ("db-""c""", "db-b")');
  assert.equal(standbyNamesFor({ members: ['b'], k: 1 }, names), 'ANY 1 ("db-b")');
  assert.equal(standbyNamesFor({ members: [], k: 0 }, names), '');
  assert.equal(standbyNamesFor({ members: ['x'], k: 1 }, names), 'ANY 1 ("x")');
});

function threeFake(): { a: FakePostgres; b: FakePostgres; c: FakePostgres; ports: (pg: PostgresPort) => EffectPorts } {
  const network = new FakePgNetwork();
  const endpoint = (host: string) => ({ host, port: 5432, user: 'postgres', database: 'postgres' });
  const a = new FakePostgres({ network, nodeName: 'db-a', endpoint: endpoint('127.0.0.1') });
  const b = new FakePostgres({ network, nodeName: 'db-b', endpoint: endpoint('127.0.0.2'), standbyOf: a.endpoint });
  const c = new FakePostgres({ network, nodeName: 'db-c', endpoint: endpoint('127.0.0.3'), standbyOf: a.endpoint });
  const ports = (pg: PostgresPort): EffectPorts => ({
    pg,
    vip: new FakeVipPort(new FakeVipCloud(), 'x'),
    endpoints: { 'db-a': a.endpoint, 'db-b': b.endpoint, 'db-c': c.endpoint },
    names: { 'db-a': 'db-a', 'db-b': 'db-b', 'db-c': 'db-c' },
    promoteWaitSeconds: 30,
  });
  return { a, b, c, ports };
}

test('Given db-c received WAL db-b never had, When db-c is asked to follow db-b, Then the effect fails with diverged:, and a follow of the same position succeeds', async () => {
  const { a, b, c, ports } = threeFake();
  await a.ensureSchema();
  b.cutLinkToUpstream();
  assert.equal(await a.clientWrite(), 'written');
  a.crash();
  await b.promote(30);
  const r = await runEffect(1, { kind: 'follow', primary: 'db-b' }, ports(c));
  assert.equal(r.ok, false);
  assert.match(r.detail, /^diverged: /);

  const fresh = threeFake();
  fresh.a.crash();
  await fresh.b.promote(30);
  const ok = await runEffect(2, { kind: 'follow', primary: 'db-b' }, fresh.ports(fresh.c));
  assert.ok(ok.ok, ok.detail);
  const unknown = await runEffect(3, { kind: 'follow', primary: 'db-z' }, fresh.ports(fresh.c));
  assert.deepEqual(unknown, { id: 3, ok: false, detail: 'no PostgreSQL endpoint configured for db-z' });
});

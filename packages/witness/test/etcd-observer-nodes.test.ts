// Goal: a witness observing a cluster of more than two database nodes on etcd (the in-memory etcd;
// the agents' N-node behaviour is stood in for by their statuses and the keys they write) shows
// every node with its priority, noFailover, WAL position, sync membership and withdrawal; the sync
// record as ANY k (members); the final positions of an election; per-node metrics. A switchover
// without a node goes to the best live standby, one naming a noFailover node is refused with its
// code, a forced failover must name its node, and `pgvip etcd hand-back` is refused with its code:
// the witness backend runs two nodes.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createPeerClient, createSigner, parseConfigText, type ClusterConfig } from '@pgvip/shared';
import { FakeEtcd, FakeEtcdObserver } from '@pgvip/agent/quorum/etcd';
import { EtcdClusterObserver } from '../src/etcd-observer.js';
import { openHistory } from '../src/history.js';
import { createWitnessMetrics } from '../src/metrics.js';
import { buildOperatorServer } from '../src/server.js';
import { openWitnessStateStore } from '../src/state-store.js';
import { agentStatus, manualClock, memoryLog, tempDir, witnessDocument } from './witness-helpers.js';

const NODES = ['db-a', 'db-b', 'db-c', 'db-r'];

/** Four nodes on etcd: db-a the primary, db-b and db-c standbys (db-c priority 5), db-r a reporting replica. */
async function setup(t: TestContext) {
  const clock = manualClock();
  const now = () => clock.monotonicMs();
  const etcd = new FakeEtcd(now);
  const port = new FakeEtcdObserver(etcd, { prefix: '/pgvip', cluster: 'c1', timeoutMs: 400, clock: now });
  const stateDir = tempDir(t, 'pgvip-etcd-nodes-');
  const doc = witnessDocument({ stateDir, timings: {}, clusters: [{ name: 'c1', key: null, replication: 'sync' }] });
  const c = (doc.clusters as Record<string, unknown>[])[0]!;
  const [first] = c.nodes as Record<string, unknown>[];
  c.nodes = NODES.map((id) => ({
    ...first, id, ...(id === 'db-c' ? { priority: 5 } : {}), ...(id === 'db-r' ? { noFailover: true } : {}),
  }));
  c.quorum = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/pgvip' } };
  const cluster: ClusterConfig = parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml').clusters[0]!;
  const { log } = memoryLog();
  const history = await openHistory({ dir: `${stateDir}/history`, clusters: ['c1'], clock, log });
  t.after(() => history.close());
  const metrics = createWitnessMetrics({ defaultMetrics: false });
  // Nobody listens on port 9: the agents' answers come through poll() below.
  const peers = createPeerClient({
    signer: createSigner({ cluster: 'c1', sender: 'witness', authDisabled: true }),
    peers: Object.fromEntries(NODES.map((n) => [n, { host: '127.0.0.1', port: 9 }])),
    timeoutMs: 400,
  });
  t.after(() => peers.close());
  const store = openWitnessStateStore(stateDir, clock);
  const observer = new EtcdClusterObserver({
    cluster, self: 'witness', port, peers, history, clock, log, metrics, store,
    notifier: { notify: () => undefined, close: () => Promise.resolve() },
  });
  t.after(() => observer.close());
  const operator = buildOperatorServer({
    runners: new Map([['c1', observer]]), history, metrics, token: null, allowedHosts: new Set(['localhost']), clock, log,
  });
  t.after(() => operator.close());
  const put = (key: string, value: object, lease = '0') => etcd.putRaw(`/pgvip/c1/${key}`, Buffer.from(JSON.stringify(value)), lease);
  // Term 2: db-a holds the leader key; ANY 1 (db-b, db-c); the agents answer the witness's polls.
  put('term', { term: 2, primary: 'db-a', grantors: ['db-b', 'db-c'] });
  put('leader', { node: 'db-a', term: 2 }, etcd.grant(3));
  put('sync', { members: ['db-b', 'db-c'], k: 1, term: 2 });
  const poll = (node: string, lsn: bigint, over: Parameters<typeof agentStatus>[2] = {}) =>
    observer.poll(node, agentStatus('c1', node, { term: 2, ...over, pg: { lsn, replayLsn: lsn, ...over.pg } }), true);
  poll('db-a', 0x3000200n);
  poll('db-b', 0x3000100n, { syncMember: true });
  poll('db-c', 0x3000100n, { syncMember: true });
  poll('db-r', 0x3000000n, { syncMember: false, promotionBlocker: 'db-r has noFailover' });
  await observer.refresh();
  const api = (url: string, payload: object) =>
    operator.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
  return { etcd, port, observer, put, poll, metrics, api, clock };
}

test('every node shows with its priority, noFailover, WAL position and sync membership; the record as ANY k', async (t) => {
  const s = await setup(t);
  const v = s.observer.view();
  const rows = v.nodes.map((n) => [
    n.node, n.role, n.priority, n.noFailover, n.lsn, n.lagBytes, n.syncMember, n.withdrawn,
  ]);
  assert.deepEqual(rows, [
    ['db-a', 'primary', 0, false, '0/3000200', null, null, false],
    ['db-b', 'standby', 0, false, '0/3000100', 0x100, true, false],
    ['db-c', 'standby', 5, false, '0/3000100', 0x100, true, false],
    ['db-r', 'standby', 0, true, '0/3000000', 0x200, false, false],
  ]);
  assert.deepEqual(v.quorum?.sync, { members: ['db-b', 'db-c'], k: 1, term: 2 });
  assert.equal(v.syncEligible, null, 'ANY 1 of two: neither alone is known to hold every acknowledged write');
  assert.deepEqual(v.quorum?.positions, []);
  const text = await s.metrics.registry.metrics();
  for (const line of [
    'pgvip_witness_node_lag_bytes{cluster="c1",node="db-c"} 256',
    'pgvip_witness_node_lag_bytes{cluster="c1",node="db-r"} 512',
    'pgvip_witness_node_sync_member{cluster="c1",node="db-b"} 1',
    'pgvip_witness_node_sync_member{cluster="c1",node="db-r"} 0',
    'pgvip_witness_sync_quorum{cluster="c1"} 1',
    'pgvip_witness_sync_degraded{cluster="c1"} 0',
    'pgvip_witness_node_withdrawn{cluster="c1",node="db-b"} 0',
    'pgvip_witness_primary{cluster="c1",node="db-c"} 0',
    'pgvip_witness_node_reachable{cluster="c1",node="db-r"} 1',
  ]) assert.ok(text.includes(line), `${line} in\n${text}`);
  assert.ok(!text.includes('pgvip_witness_node_lag_bytes{cluster="c1",node="db-a"}'), 'the primary has no lag');
  // Degraded to k = 0: the gauges say so.
  s.put('sync', { members: [], k: 0, term: 2 });
  await s.observer.refresh();
  const after = await s.metrics.registry.metrics();
  assert.ok(after.includes('pgvip_witness_sync_quorum{cluster="c1"} 0'));
  assert.ok(after.includes('pgvip_witness_sync_degraded{cluster="c1"} 1'));
});

test('during an election the final positions of this term show, and their nodes as withdrawn', async (t) => {
  const s = await setup(t);
  s.put('position/db-b', { term: 2, timeline: 1, flushLsn: '0/3000100', eligible: true });
  s.put('position/db-r', { term: 2, timeline: 1, flushLsn: '0/3000000', eligible: false });
  // Left from an older term: not this election's.
  s.put('position/db-c', { term: 1, timeline: 1, flushLsn: '0/2000000', eligible: true });
  s.poll('db-c', 0x3000100n, { withdrawn: true });
  await s.observer.refresh();
  const v = s.observer.view();
  assert.deepEqual(v.quorum?.positions, [
    { node: 'db-b', term: 2, timeline: 1, flushLsn: '0/3000100', eligible: true },
    { node: 'db-r', term: 2, timeline: 1, flushLsn: '0/3000000', eligible: false },
  ]);
  assert.deepEqual(v.nodes.map((n) => [n.node, n.withdrawn]), [['db-a', false], ['db-b', true], ['db-c', true], ['db-r', true]]);
  assert.ok((await s.metrics.registry.metrics()).includes('pgvip_witness_node_withdrawn{cluster="c1",node="db-c"} 1'));
  // A withdrawn standby takes no switchover.
  const r = await s.observer.operator({ kind: 'switchover', to: 'db-c', delayMs: 0, by: 'op' });
  assert.equal(r.verdict.ok, false);
  assert.match(r.verdict.message, /^db-c is not ready: it stopped its WAL receiver for an election$/);
});

test('a switchover without a node goes to the best live standby: equally advanced, the higher priority', async (t) => {
  const s = await setup(t);
  const r = await s.observer.operator({ kind: 'switchover', to: null, delayMs: 0, by: 'op' });
  assert.ok(r.verdict.ok, r.verdict.message);
  assert.equal(r.verdict.message, 'switchover to db-c (the best live standby: timeline 1, WAL received 0/3000100, priority 5) requested: the switchover key names term 2 on etcd; db-a takes it and hands over');
  assert.equal(JSON.parse(s.etcd.get('/pgvip/c1/switchover')!.toString()).to, 'db-c');
  assert.equal(s.observer.view().switchover?.to, 'db-c');
});

test('an operator command reads etcd again when a read goes unanswered, and names the reads when none is', async (t) => {
  const s = await setup(t);
  const read = s.port.read.bind(s.port);
  let unanswered = 0;
  s.port.read = () => (++unanswered <= 2 ? Promise.resolve({ ok: false, why: 'read: 4 DEADLINE_EXCEEDED' }) : read());
  const r = await s.observer.operator({ kind: 'switchover', to: 'db-b', delayMs: 0, by: 'op' });
  assert.ok(r.verdict.ok, r.verdict.message);
  const s2 = await setup(t);
  s2.port.read = () => Promise.resolve({ ok: false, why: 'read: 4 DEADLINE_EXCEEDED' });
  const none = await s2.observer.operator({ kind: 'switchover', to: 'db-b', delayMs: 0, by: 'op' });
  assert.equal(none.verdict.ok, false);
  assert.equal(none.verdict.message, 'etcd did not answer 3 reads: read: 4 DEADLINE_EXCEEDED');
  assert.equal(s2.etcd.get('/pgvip/c1/switchover'), null, 'nothing was written');
});

test('the more advanced standby wins over priority; none ready is refused with each node\'s reason', async (t) => {
  const s = await setup(t);
  s.poll('db-b', 0x3000180n, { syncMember: true });
  const r = await s.observer.operator({ kind: 'switchover', to: null, delayMs: 0, by: 'op' });
  assert.match(r.verdict.message, /^switchover to db-b \(the best live standby: timeline 1, WAL received 0\/3000180, priority 0\)/);
  const s2 = await setup(t);
  s2.observer.poll('db-b', null, false);
  s2.poll('db-c', 0x3000100n, { promotionBlocker: 'not streaming' });
  const none = await s2.observer.operator({ kind: 'switchover', to: null, delayMs: 0, by: 'op' });
  assert.equal(none.verdict.ok, false);
  assert.equal(none.verdict.message, 'no standby can take a switchover now (db-b is unreachable; db-c: not streaming; db-r has noFailover)');
});

test('a noFailover node is refused with PGVIP_OPERATOR_NO_FAILOVER, a forced failover must name its node', async (t) => {
  const s = await setup(t);
  const res = await s.api('/api/v1/clusters/c1/switchover', { to: 'db-r' });
  assert.equal(res.statusCode, 409);
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'PGVIP_OPERATOR_NO_FAILOVER');
  assert.match(body.error.message, /db-r has noFailover: true in cluster\.nodes and is never promoted, by a switchover or a failover; name another node with --to, or leave --to out for the best live standby/);
  assert.equal(s.etcd.get('/pgvip/c1/switchover'), null, 'nothing written');
  const forced = await s.api('/api/v1/clusters/c1/failover', { to: 'db-r', acceptDataLoss: true });
  assert.equal((forced.json() as { error: { code: string } }).error.code, 'PGVIP_OPERATOR_NO_FAILOVER');
  // The observer refuses it too, when asked without the API (a scheduled switchover comes due).
  const direct = await s.observer.operator({ kind: 'switchover', to: 'db-r', delayMs: 0, by: 'op' });
  assert.equal(direct.verdict.ok, false);
  const unnamed = await s.api('/api/v1/clusters/c1/failover', { acceptDataLoss: true });
  assert.equal(unnamed.statusCode, 409);
  assert.match((unnamed.json() as { message: string }).message, /^c1 has 4 nodes: name the node to promote with --to; the best live standby now is db-c \(timeline 1, WAL received 0\/3000100, priority 5\)/);
  assert.equal(JSON.parse(s.etcd.get('/pgvip/c1/term')!.toString()).term, 2, 'no term moved');
  // A bad node name stays a coded 400.
  const bad = await s.api('/api/v1/clusters/c1/switchover', { to: 'db-z' });
  assert.equal(bad.statusCode, 400);
  assert.equal((bad.json() as { error: { code: string } }).error.code, 'PGVIP_OPERATOR_BAD_REQUEST');
});

test('pgvip etcd hand-back is refused with PGVIP_QUORUM_MOVE_NODES: the witness runs two nodes', async (t) => {
  const s = await setup(t);
  s.put('maintenance', { requestedBy: 'op', reason: 'moving' });
  await s.observer.refresh();
  const res = await s.api('/api/v1/clusters/c1/quorum-move', { to: 'witness' });
  assert.equal(res.statusCode, 409);
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'PGVIP_QUORUM_MOVE_NODES');
  assert.match(body.error.message, /c1 has 4 database nodes and the witness backend runs exactly two/);
  const direct = await s.observer.moveQuorum('witness', 'op');
  assert.equal(direct.ok, false);
  assert.match(direct.message, /^not handed back: c1 has 4 database nodes/);
});

test('a forced failover among more than two nodes writes the new term\'s grantors, never a noFailover node', async (t) => {
  const s = await setup(t);
  const res = await s.api('/api/v1/clusters/c1/failover', { to: 'db-c', acceptDataLoss: true });
  assert.equal(res.statusCode, 200, res.body);
  const term = JSON.parse(s.etcd.get('/pgvip/c1/term')!.toString()) as { term: number; primary: string; grantors?: string[] };
  assert.deepEqual(term, { term: 3, primary: 'db-c', grantors: ['db-a', 'db-b'] });
});

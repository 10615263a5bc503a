// Goal: the two steps that carry a cluster's term across a move of its quorum (quorum-move.ts, on the
// in-memory etcd): `pgvip etcd seed` writes the witness's term into etcd only when the cluster is at
// rest and never moves etcd's term back; the primary's agent then takes the leader key in that very
// term through the bridge, and no standby can win a campaign while the maintenance key stands.
// `pgvip etcd hand-back` writes etcd's term into the witness's state file, so the witness, restarted
// with its vote, never votes in a term etcd gave; and the observer keeps that term as etcd moves on.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  PROTOCOL_VERSION, createPeerClient, createSigner, parseConfigText, type AgentStatus, type ClusterConfig,
  type PeerClient,
} from '@pgvip/shared';
import { EtcdQuorumBridge, FakeEtcd, FakeEtcdObserver, FakeEtcdQuorum } from '@pgvip/agent/quorum/etcd';
import { ClusterRunner } from '../src/cluster-runner.js';
import { EtcdClusterObserver } from '../src/etcd-observer.js';
import { openHistory } from '../src/history.js';
import { createWitnessMetrics } from '../src/metrics.js';
import { openWitnessStateStore } from '../src/state-store.js';
import { agentStatus, manualClock, memoryLog, tempDir, witnessDocument } from './witness-helpers.js';

const notifier = { notify: () => undefined, close: () => Promise.resolve() };

async function setup(t: TestContext, replication: 'sync' | 'async' = 'sync') {
  const clock = manualClock();
  const now = () => clock.monotonicMs();
  const etcd = new FakeEtcd(now);
  const opts = { prefix: '/pgvip', cluster: 'c1', timeoutMs: 400, clock: now };
  const stateDir = tempDir(t, 'pgvip-quorum-move-');
  const doc = witnessDocument({ stateDir, clusters: [{ name: 'c1', key: null, replication }] });
  const cluster: ClusterConfig = parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml').clusters[0]!;
  const { log } = memoryLog();
  const history = await openHistory({ dir: path.join(stateDir, 'history'), clusters: ['c1'], clock, log });
  t.after(() => history.close());
  const peers: PeerClient = createPeerClient({
    signer: createSigner({ cluster: 'c1', sender: 'witness', authDisabled: true }),
    peers: { 'db-a': { host: '127.0.0.1', port: 9 }, 'db-b': { host: '127.0.0.1', port: 9 } },
    timeoutMs: 400,
  });
  t.after(() => peers.close());
  const store = openWitnessStateStore(stateDir, clock);
  const metrics = () => createWitnessMetrics({ defaultMetrics: false });
  const runner = (durable = store.durable('c1')) => {
    store.save('c1', durable);
    return new ClusterRunner({
      cluster, self: 'witness', store, peers, history, notifier, metrics: metrics(), clock, log,
      etcd: () => Promise.resolve(new FakeEtcdObserver(etcd, opts)),
    });
  };
  const observer = () => {
    const o = new EtcdClusterObserver({
      cluster, self: 'witness', port: new FakeEtcdObserver(etcd, opts), peers, history, notifier, metrics: metrics(), clock, log, store,
    });
    t.after(() => o.close());
    return o;
  };
  const agent = new FakeEtcdQuorum(etcd, opts);
  const bridge = (self: string) => new EtcdQuorumBridge(new FakeEtcdQuorum(etcd, opts), {
    cluster: 'c1', self, quorumId: 'witness', leaseMs: 3000, replication,
  });
  const keys = async () => {
    const r = await agent.read();
    assert.ok(r.ok);
    return r.view;
  };
  return { clock, etcd, store, runner, observer, agent, bridge, keys };
}

/** Both agents answering in `term` with db-a (or `primary`) the writable primary. */
function pollBoth(target: { poll(node: string, s: AgentStatus | null, pg: boolean): void }, term: number, primary = 'db-a') {
  for (const node of ['db-a', 'db-b']) {
    const p = node === primary;
    target.poll(node, agentStatus('c1', node, {
      term, primaryOfTerm: primary, role: p ? 'primary' : 'standby', pg: { inRecovery: !p, writable: p, streaming: !p },
    }), true);
  }
}

const atRest = { term: 7, primaryOfTerm: 'db-a', votedTerm: 7, votedFor: 'db-a', syncEligible: 'db-b', maintenance: true };

test('seed: refused unless the cluster is in maintenance and both agents agree on the term', async (t) => {
  const s = await setup(t);
  let r = s.runner({ ...atRest, maintenance: false });
  pollBoth(r, 7);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /maintenance first/);
  r = s.runner(atRest);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /agent of db-a never answered/);
  r.poll('db-a', agentStatus('c1', 'db-a', { term: 7, primaryOfTerm: 'db-a' }), true);
  r.poll('db-b', agentStatus('c1', 'db-b', { term: 6, primaryOfTerm: 'db-b' }), true);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /agents disagree: db-b is in term 6/);
  // An answer older than a few polls counts as none.
  pollBoth(r, 7);
  s.clock.advance(10_000);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /db-a has not answered for 10000 ms/);
  r = s.runner({ ...atRest, votedTerm: 8, votedFor: 'db-b' });
  pollBoth(r, 7);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /failover is under way: the witness voted for db-b in term 8/);
  assert.equal((await s.keys()).term, null, 'nothing was written to etcd');
});

test('seed writes the witness\'s term; the primary takes the leader key in that term, no standby can campaign', async (t) => {
  const s = await setup(t);
  const r = s.runner(atRest);
  pollBoth(r, 7);
  const v = await r.moveQuorum('etcd', 'alice');
  assert.ok(v.ok, v.message);
  let k = await s.keys();
  assert.deepEqual(k.term?.value, { term: 7, primary: 'db-a' });
  assert.equal(k.maintenance?.value.requestedBy, 'alice');
  assert.deepEqual(k.sync?.value, { members: [], k: 0, term: 7 }, 'nobody may be promoted until the primary names its standby');
  assert.equal(k.leader, null);
  // Seeding again is the same write (an operator's retry), while no agent holds the key.
  assert.ok((await r.moveQuorum('etcd', 'alice')).ok);

  // The standby, restarted on etcd first: its vote request for term 8 is refused (maintenance key).
  const standby = s.bridge('db-b');
  const envelope = { v: PROTOCOL_VERSION, cluster: 'c1' } as const;
  const vote = await standby.ask({ ...envelope, term: 8, from: 'db-b', kind: 'vote-request', lastTerm: 7, lsn: 0n, timeline: 1 });
  assert.equal(vote?.kind === 'vote-reply' && vote.granted, false);
  // The primary's agent, restarted on etcd: its first lease request takes the leader key in term 7.
  const primary = s.bridge('db-a');
  const lease = await primary.ask({ ...envelope, term: 7, from: 'db-a', kind: 'lease-request', seq: 1, lsn: 0n, timeline: 1, syncStandby: 'db-b' });
  assert.ok(lease?.kind === 'lease-reply' && lease.granted, JSON.stringify(lease));
  k = await s.keys();
  assert.deepEqual([k.leader?.value, k.term?.value], [{ node: 'db-a', term: 7 }, { term: 7, primary: 'db-a' }]);
  // Now an agent holds the key: seeding is refused, whatever the witness thinks.
  const again = await r.moveQuorum('etcd', 'alice');
  assert.match(again.message, /leader key names db-a for term 7: an agent already runs this cluster on etcd/);
});

test('seed never moves etcd\'s term back, and moves a stale lower one forward', async (t) => {
  const s = await setup(t, 'async');
  // etcd ran the cluster up to term 9 (then it went to the witness, which now says 7: something is wrong).
  const g = await s.agent.grantLease(3000);
  assert.ok(g.ok);
  let after = null;
  for (let term = 1; term <= 9; term++) {
    const won = await s.agent.campaign({ node: 'db-b', after, lease: g.lease, sync: 'async' });
    assert.ok(won.ok);
    const k = await s.keys();
    after = k.term;
    // The key goes with the lease each time, so the next campaign finds no leader.
    await s.agent.revokeLease(g.lease);
    const again = await s.agent.grantLease(3000);
    assert.ok(again.ok);
    Object.assign(g, { lease: again.lease });
  }
  const r = s.runner(atRest);
  pollBoth(r, 7);
  assert.match((await r.moveQuorum('etcd', 'alice')).message, /term 9 for db-b, ahead of the witness's term 7/);
  // A witness at term 12 (etcd's record at 9 is left from an earlier time on etcd): moved forward.
  const r12 = s.runner({ ...atRest, term: 12, votedTerm: 12 });
  pollBoth(r12, 12);
  assert.ok((await r12.moveQuorum('etcd', 'alice')).ok);
  const k = await s.keys();
  assert.deepEqual(k.term?.value, { term: 12, primary: 'db-a' });
  assert.equal(k.sync, null, 'async: no sync record');
  // Same term, another primary: refused.
  const other = s.runner({ ...atRest, term: 12, votedTerm: 12, primaryOfTerm: 'db-b', votedFor: 'db-b' });
  pollBoth(other, 12, 'db-b');
  assert.match((await other.moveQuorum('etcd', 'alice')).message, /not for db-b: the witness and etcd disagree on who holds term 12/);
});

test('hand-back writes etcd\'s term into the witness\'s state file, which a restarted witness boots in', async (t) => {
  const s = await setup(t);
  const primary = s.bridge('db-a');
  const envelope = { v: PROTOCOL_VERSION, cluster: 'c1' } as const;
  const won = await primary.ask({ ...envelope, term: 1, from: 'db-a', kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  assert.ok(won?.kind === 'vote-reply' && won.granted);
  const o = s.observer();
  await o.refresh();
  // The observer keeps the state file at etcd's term as it reads, hand-back or not.
  assert.deepEqual([s.store.durable('c1').term, s.store.durable('c1').votedTerm], [1, 1]);
  pollBoth(o, 1);
  assert.match((await o.moveQuorum('witness', 'bob')).message, /maintenance first/);
  assert.ok((await o.operator({ kind: 'maintenance', on: true, by: 'bob' })).verdict.ok);
  pollBoth(o, 1, 'db-b');
  assert.match((await o.moveQuorum('witness', 'bob')).message, /agents disagree: db-a is in term 1 \(primary db-b\)/);
  pollBoth(o, 1);
  const v = await o.moveQuorum('witness', 'bob');
  assert.ok(v.ok, v.message);
  const d = s.store.durable('c1');
  assert.deepEqual(
    {
      term: d.term, primaryOfTerm: d.primaryOfTerm, votedTerm: d.votedTerm, maintenance: d.maintenance,
      syncEligible: d.syncEligible,
    },
    { term: 1, primaryOfTerm: 'db-a', votedTerm: 1, maintenance: true, syncEligible: null },
  );
  // The witness restarted with backend witness boots in term 1 with maintenance on and grants db-a's lease.
  const r = s.runner(d);
  assert.deepEqual([r.term, r.primaryOfTerm, r.durable.maintenance], [1, 'db-a', true]);
  const reply = r.request({ ...envelope, term: 1, from: 'db-a', kind: 'lease-request', seq: 1, lsn: 0n, timeline: 1, syncStandby: null });
  assert.ok(reply.kind === 'lease-reply' && reply.granted, JSON.stringify(reply));
});

test('hand-back is refused without a leader key, and when the state file is ahead of etcd', async (t) => {
  const s = await setup(t);
  const primary = s.bridge('db-a');
  const envelope = { v: PROTOCOL_VERSION, cluster: 'c1' } as const;
  await primary.ask({ ...envelope, term: 1, from: 'db-a', kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  const o = s.observer();
  await o.operator({ kind: 'maintenance', on: true, by: 'bob' });
  pollBoth(o, 1);
  s.store.save('c1', { ...atRest, term: 3, votedTerm: 3 });
  assert.match((await o.moveQuorum('witness', 'bob')).message, /state file is at term 3, ahead of etcd's 1/);
  await primary.ask({ ...envelope, term: 1, from: 'db-a', kind: 'lease-release', reason: 'test', leaseSeq: 1 });
  assert.match((await o.moveQuorum('witness', 'bob')).message, /no leader key on etcd: db-a does not hold term 1/);
});

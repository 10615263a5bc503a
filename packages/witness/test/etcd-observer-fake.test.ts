// Goal: the witness's observer of a cluster on etcd, on the in-memory etcd (no etcd needed): it
// records a failover it reads, says when etcd has no quorum and when it is back, reads again when the
// watch names one of the cluster's own keys but not for the members' heartbeat statuses, and refuses
// what has no meaning for an observer (a vote), and forwards pgvip restart to the node only while the
// primary holds its leader key. The real-etcd behaviour is
// etcd-observer.test.ts.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { PROTOCOL_VERSION, createPeerClient, createSigner, parseConfigText, type ClusterConfig } from '@pgvip/shared';
import { FakeEtcd, FakeEtcdObserver, FakeEtcdQuorum } from '@pgvip/agent/quorum/etcd';
import { EtcdClusterObserver } from '../src/etcd-observer.js';
import type { PgvipEvent } from '../src/events.js';
import { openHistory } from '../src/history.js';
import { createWitnessMetrics } from '../src/metrics.js';
import { agentStatus, manualClock, memoryLog, tempDir, witnessDocument } from './witness-helpers.js';

async function setup(t: TestContext) {
  const clock = manualClock();
  const now = () => clock.monotonicMs();
  const etcd = new FakeEtcd(now);
  const opts = { prefix: '/pgvip', cluster: 'c1', timeoutMs: 400, clock: now };
  const agent = new FakeEtcdQuorum(etcd, opts);
  const port = new FakeEtcdObserver(etcd, opts);
  let reads = 0;
  const read = port.read.bind(port);
  port.read = () => {
    reads++;
    return read();
  };
  const stateDir = tempDir(t, 'pgvip-etcd-observer-');
  const doc = witnessDocument({ stateDir, timings: {}, clusters: [{ name: 'c1', key: null, replication: 'async' }] });
  const cluster: ClusterConfig = parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml').clusters[0]!;
  const { log } = memoryLog();
  const history = await openHistory({ dir: `${stateDir}/history`, clusters: ['c1'], clock, log });
  t.after(() => history.close());
  const peers = createPeerClient({
    signer: createSigner({ cluster: 'c1', sender: 'witness', authDisabled: true }),
    peers: { 'db-a': { host: '127.0.0.1', port: 9 }, 'db-b': { host: '127.0.0.1', port: 9 } },
    timeoutMs: 400,
  });
  t.after(() => peers.close());
  const notified: PgvipEvent[] = [];
  const observer = new EtcdClusterObserver({
    cluster, self: 'witness', port, peers, history, clock, log, metrics: createWitnessMetrics({ defaultMetrics: false }),
    notifier: { notify: (e) => void notified.push(e), close: () => Promise.resolve() },
  });
  t.after(() => observer.close());
  const campaign = async (node: string) => {
    const v = await agent.read();
    const g = await agent.grantLease(3000);
    assert.ok(v.ok && g.ok);
    const won = await agent.campaign({ node, after: v.view.term, lease: g.lease, sync: 'async' });
    assert.ok(won.ok);
    return g.lease;
  };
  return { etcd, agent, observer, notified, campaign, reads: () => reads, clock };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a failover read from the keys is recorded once; the view follows the term record', async (t) => {
  const s = await setup(t);
  await s.observer.refresh();
  const lease = await s.campaign('db-a');
  await s.observer.refresh();
  await s.agent.revokeLease(lease);
  await s.campaign('db-b');
  await s.observer.refresh();
  const v = s.observer.view();
  assert.deepEqual([v.term, v.primary, v.quorum?.leaderKey?.node], [2, 'db-b', 'db-b']);
  assert.equal(v.quorum?.leaderKey?.leaseTtlS, 3);
  // The watch had the key's loss read at once, then the campaign: each recorded once.
  assert.deepEqual(s.notified.map((e) => `${e.type} ${e.node} ${e.term}`), ['vote-granted db-a 1', 'failure-detected db-a 1', 'vote-granted db-b 2']);
});

test('etcd without a quorum: said once in the view and the history, and again when it is back', async (t) => {
  const s = await setup(t);
  await s.observer.refresh();
  await s.campaign('db-a');
  await s.observer.refresh();
  s.etcd.available = false;
  await s.observer.refresh();
  await s.observer.refresh();
  let v = s.observer.view();
  assert.equal(v.quorum?.reachable, false);
  assert.match(v.quorum?.why ?? '', /no quorum/);
  assert.equal(v.primary, 'db-a', 'the last keys etcd answered with stay shown');
  assert.ok(v.quorum?.members.every((m) => !m.ok));
  assert.deepEqual(s.notified.map((e) => e.type), ['vote-granted', 'etcd-unreachable']);
  s.clock.advance(1_500);
  s.etcd.available = true;
  await s.observer.refresh();
  v = s.observer.view();
  assert.equal(v.quorum?.reachable, true);
  assert.match(s.notified.at(-1)?.detail ?? '', /^etcd answers again after 1500 ms$/);
});

test('the watch asks for a read for the cluster\'s keys, not for the members\' statuses', async (t) => {
  const s = await setup(t);
  await s.observer.refresh(); // starts the watch once etcd answers
  const lease = await s.campaign('db-a');
  await settle();
  await s.observer.refresh();
  const before = s.reads();
  const status = { node: 'db-a', role: 'primary' as const, term: 1, timeline: 1, lsn: 0x3000060n, replayLsn: 0x3000060n, streaming: false, writable: true, promotionBlocker: null };
  assert.ok((await s.agent.publishMember(status, lease)).ok);
  await settle();
  assert.equal(s.reads(), before, 'a member status is no reason to read now');
  assert.ok((await s.agent.setSync({ node: 'db-a', term: 1, lease }, 'db-b')).ok);
  await settle();
  await s.observer.refresh();
  assert.ok(s.reads() >= before + 1, 'the sync record is');
  // the member's status is in the next read
  assert.equal(s.observer.view().nodes.find((n) => n.node === 'db-a')?.role, 'primary');
});

test('an observer votes for nobody; pgvip restart goes to the node while the primary holds its key', async (t) => {
  const s = await setup(t);
  const held = await s.campaign('db-a');
  await s.observer.refresh();
  const vote = s.observer.request({ v: PROTOCOL_VERSION, cluster: 'c1', term: 2, from: 'db-b', kind: 'vote-request', lastTerm: 1, lsn: 0n, timeline: 1 });
  assert.ok(vote.kind === 'vote-reply' && !vote.granted && vote.from === 'witness');
  const lease = s.observer.request({ v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'lease-request', seq: 4, lsn: 0n, timeline: 1, syncStandby: null });
  assert.ok(lease.kind === 'lease-reply' && !lease.granted && lease.seq === 4);
  const restart = () => s.observer.operator({ kind: 'restart', node: 'db-a', timeoutMs: 60_000, by: 'op' });
  assert.match((await restart()).verdict.message, /^db-a is unreachable$/);
  s.observer.poll('db-a', agentStatus('c1', 'db-a'), true);
  const asked = await restart();
  assert.ok(asked.verdict.ok, asked.verdict.message);
  // Shown until the node has been seen restarting and back (pgvip restart waits on it).
  assert.equal(s.observer.view().restart?.node, 'db-a');
  assert.match(asked.verdict.message, /planned restart of db-a \(the primary\) asked of its agent in term 1/);
  // Sent to the agent (nobody listens on port 9 here): the operator hears that it did not answer.
  const [sent] = await asked.sends;
  assert.deepEqual([sent?.to, sent?.kind, sent?.ok], ['db-a', 'restart-request', false]);
  assert.equal(s.observer.view().restart, null, 'a restart the node did not take is over');
  assert.match(s.notified.at(-1)?.detail ?? '', /^db-a did not take the planned restart asked for by op: db-a did not answer/);
  // Without the primary's leader key nothing would keep a campaign away through the restart: refused.
  await s.agent.revokeLease(held);
  assert.match((await restart()).verdict.message, /db-a does not hold its leader key in term 1 now/);
});

test('a forced failover\'s check (before --stop-old-primary stops the instance) reads etcd and writes nothing', async (t) => {
  const s = await setup(t);
  await s.campaign('db-a');
  await s.observer.refresh();
  const ok = await s.observer.checkFailover(null, 'op');
  assert.deepEqual(ok, { ok: true, message: 'etcd answers; db-b would be forced to primary in term 2 (data loss accepted)' });
  await s.observer.refresh();
  assert.deepEqual([s.observer.view().term, s.observer.view().primary], [1, 'db-a'], 'the check changed no key');
  // Its view stays cached while etcd is away; the failover would be refused, so the check is too.
  s.etcd.available = false;
  const refused = await s.observer.checkFailover('db-b', 'op');
  assert.equal(refused.ok, false);
  assert.match(refused.message, /^etcd did not answer 3 reads: /);
});

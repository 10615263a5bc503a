// Goal: the witness in etcd mode turns what changed between two reads of a cluster's keys into the
// events it records and notifies (etcd-events.ts), told apart by what etcd shows: a campaign (leader
// key and term record in one revision) is a failover, a term moved to the node of a switchover key
// is a switchover, anything else that moved the term is reported as a forced failover; a leader key
// gone in the same term, maintenance, and the sync record have their events too. The keys are written
// by the agent's and the observer's own txns on the in-memory etcd (FakeEtcd).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeEtcd, FakeEtcdObserver, FakeEtcdQuorum, type ClusterView, type LeaseId } from '@pgvip/agent/quorum/etcd';
import { etcdEvents, type EventContext } from '../src/etcd-events.js';

function setup(replication: 'sync' | 'async' = 'async') {
  let now = 1_000;
  const clock = () => now;
  const etcd = new FakeEtcd(clock);
  const opts = { prefix: '/pgvip', cluster: 'c1', timeoutMs: 400, clock };
  const agent = new FakeEtcdQuorum(etcd, opts);
  const observer = new FakeEtcdObserver(etcd, opts);
  const read = async (): Promise<ClusterView> => {
    const r = await observer.read();
    assert.ok(r.ok);
    return r.view;
  };
  const campaign = async (node: string): Promise<LeaseId> => {
    const v = await read();
    const g = await agent.grantLease(3000);
    assert.ok(g.ok);
    const won = await agent.campaign({ node, after: v.term, lease: g.lease, sync: 'async' });
    assert.ok(won.ok, won.ok ? '' : won.why);
    return g.lease;
  };
  const ctx: EventContext = { replication, switchoverSeen: null, forcedHere: null };
  return { etcd, agent, observer, read, campaign, ctx, advance: (ms: number) => void (now += ms) };
}

const brief = (events: ReturnType<typeof etcdEvents>) => events.map((e) => `${e.type} ${e.node ?? '-'}${e.failover === undefined ? '' : ` ${e.failover}`}`);

describe('etcd events', () => {
  test('a campaign is a vote-granted; the first is a bootstrap, a later one an automatic failover', async () => {
    const s = setup();
    const empty = await s.read();
    const leaseA = await s.campaign('db-a');
    const one = await s.read();
    assert.deepEqual(brief(etcdEvents(empty, one, s.ctx)), ['vote-granted db-a']);
    // db-a's lease ends: the key goes, in the same term
    await s.agent.revokeLease(leaseA);
    const gone = await s.read();
    assert.deepEqual(brief(etcdEvents(one, gone, s.ctx)), ['failure-detected db-a']);
    await s.campaign('db-b');
    const two = await s.read();
    const events = etcdEvents(gone, two, s.ctx);
    assert.deepEqual(brief(events), ['vote-granted db-b automatic']);
    assert.match(events[0]!.detail, /db-b won term 2 on etcd .*term 1 was db-a's/);
  });

  test('the holder taking its key again in the same term is a recovery, not a failover', async () => {
    const s = setup();
    const lease = await s.campaign('db-a');
    const held = await s.read();
    await s.agent.revokeLease(lease);
    const gone = await s.read();
    const g = await s.agent.grantLease(3000);
    assert.ok(g.ok);
    assert.ok((await s.agent.takeLeaderKey({ node: 'db-a', term: 1, lease: g.lease })).ok);
    const back = await s.read();
    assert.deepEqual(brief(etcdEvents(held, gone, s.ctx)), ['failure-detected db-a']);
    assert.deepEqual(brief(etcdEvents(gone, back, s.ctx)), ['node-recovered db-a']);
  });

  test('a handover after a switchover key is a switchover; the operator\'s forced txn through this witness is a manual failover', async () => {
    const s = setup();
    const lease = await s.campaign('db-a');
    const one = await s.read();
    assert.ok((await s.observer.requestSwitchover({ to: 'db-b', requestedBy: 'op', after: one.term! })).ok);
    const asked = await s.read();
    assert.deepEqual(asked.switchover?.value, { to: 'db-b', term: 1, requestedBy: 'op' });
    // the primary takes the key and hands over (the handover txn deletes its leader key)
    assert.ok((await s.agent.handover({ node: 'db-a', term: 1, lease }, 'db-b')).ok);
    const two = await s.read();
    assert.deepEqual(brief(etcdEvents(asked, two, { ...s.ctx, switchoverSeen: { to: 'db-b', term: 1 } })), ['switchover db-b']);
    // without the key seen, the same move is reported as forced, saying it may be a handover
    const unexplained = etcdEvents(asked, two, s.ctx);
    assert.deepEqual(brief(unexplained), ['manual-failover db-b manual']);
    assert.match(unexplained[0]!.detail, /without a campaign.*forced failover.*or a handover/);

    const forced = await s.observer.forceFailover({ to: 'db-a', after: two.term });
    assert.ok(forced.ok && forced.term === 3);
    const three = await s.read();
    assert.equal(three.leader, null);
    assert.equal(three.switchover, null, 'a forced failover drops a pending switchover');
    const here = etcdEvents(two, three, { ...s.ctx, forcedHere: { to: 'db-a', term: 3 } });
    assert.deepEqual(brief(here), ['manual-failover db-a manual']);
    assert.match(here[0]!.detail, /through this witness/);
  });

  test('maintenance on and off, and in sync mode the sync record degraded and restored', async () => {
    const s = setup('sync');
    const lease = await s.campaign('db-a');
    const one = await s.read();
    assert.ok((await s.observer.setMaintenance({ requestedBy: 'op@host', reason: 'patching' })).ok);
    const on = await s.read();
    assert.ok((await s.observer.setMaintenance(null)).ok);
    const off = await s.read();
    assert.deepEqual(etcdEvents(one, on, s.ctx).map((e) => e.detail), ['maintenance on (the etcd key) by op@host: patching']);
    assert.deepEqual(brief(etcdEvents(on, off, s.ctx)), ['maintenance -']);

    const holder = { node: 'db-a', term: 1, lease };
    assert.ok((await s.agent.setSync(holder, 'db-b')).ok);
    const synced = await s.read();
    assert.ok((await s.agent.setSync(holder, null)).ok);
    const degraded = await s.read();
    assert.deepEqual(brief(etcdEvents(off, synced, s.ctx)), ['sync-restored db-b']);
    assert.deepEqual(brief(etcdEvents(synced, degraded, s.ctx)), ['sync-degraded db-b']);
    // async clusters have no sync events
    assert.deepEqual(etcdEvents(synced, degraded, { ...s.ctx, replication: 'async' }), []);
  });

  test('the operator txns refuse a term record that moved since it was read, and a second switchover', async () => {
    const s = setup();
    await s.campaign('db-a');
    const stale = await s.read();
    assert.ok((await s.observer.requestSwitchover({ to: 'db-b', requestedBy: 'op', after: stale.term! })).ok);
    const twice = await s.observer.requestSwitchover({ to: 'db-b', requestedBy: 'op2', after: stale.term! });
    assert.ok(!twice.ok);
    assert.match(twice.why, /a switchover to db-b in term 1 is already pending \(by op\)/);
    assert.ok((await s.observer.forceFailover({ to: 'db-b', after: stale.term })).ok);
    const late = await s.observer.forceFailover({ to: 'db-a', after: stale.term });
    assert.ok(!late.ok);
    assert.match(late.why, /the term record moved since it was read \(was term 1 for db-a, now term 2 for db-b\)/);
    // the same forced failover asked again (a lost answer, or another witness) counts as done
    assert.ok((await s.observer.forceFailover({ to: 'db-b', after: stale.term })).ok);
    // etcd without a quorum: refused, saying so
    s.etcd.available = false;
    const down = await s.observer.setMaintenance(null);
    assert.ok(!down.ok && /no quorum/.test(down.why));
    const health = await s.observer.endpointsHealth();
    assert.ok(health.every((h) => !h.ok));
  });
});

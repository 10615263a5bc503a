// Goal: the parts of the etcd quorum that a real etcd cannot be made to show on demand — a renewal
// that straddles an etcd leader change, leases timed on a clock the test drives — plus the rules on
// keys and values, checked on the fake (which runs the same protocol code as the real client).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clusterKeys, encodeRecord, FakeEtcd, FakeEtcdQuorum, keyProblem, termRecordSchema, type Holder, type KeepAlive,
  type LeaseId,
} from '../src/quorum/etcd/index.js';

const prefix = '/pgvip';

function world() {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const port = (cluster = 'main') => new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock });
  return { etcd, port, advance: (ms: number) => (nowMs += ms), clock };
}

async function holderOf(port: FakeEtcdQuorum, leaseMs = 3000): Promise<Holder> {
  const g = await port.grantLease(leaseMs);
  assert.ok(g.ok);
  assert.ok((await port.campaign({ node: 'db-a', after: null, lease: g.lease, sync: 'async' })).ok);
  return { node: 'db-a', term: 1, lease: g.lease };
}

describe('etcd quorum on the fake', () => {
  it('keys are built from validated names only', () => {
    const k = clusterKeys('/pgvip', 'main');
    assert.equal(k.leader, '/pgvip/main/leader');
    assert.equal(k.member('db-a'), '/pgvip/main/members/db-a');
    for (const bad of ['../x', 'a/b', '', '.hidden', 'x'.repeat(64)]) {
      assert.throws(() => clusterKeys('/pgvip', bad), /cannot be part of an etcd key/, bad);
      assert.throws(() => k.member(bad), /cannot be part of an etcd key/, bad);
    }
    for (const bad of ['/pgvip/', 'pgvip', '/a/../b', '/a/./b', '/a//b', `/${'p'.repeat(130)}`]) {
      assert.notEqual(keyProblem(bad, 'main'), null, bad);
    }
    assert.equal(keyProblem('/org/pgvip-prod', 'main'), null);
  });

  it('a record always has the same bytes, whatever order its fields came in', () => {
    const a = encodeRecord(termRecordSchema, { term: 7, primary: 'db-b' });
    const b = encodeRecord(termRecordSchema, JSON.parse('{"primary":"db-b","term":7}') as { term: number; primary: string });
    assert.deepEqual(a, b);
    assert.equal(a.toString(), '{"term":7,"primary":"db-b"}');
  });

  it('a renewal whose read comes from a later etcd raft term than its keepalive is not counted', async () => {
    const w = world();
    // The keepalive is answered, then etcd changes leader before the read: the member that renewed
    // may have been a deposed leader, so this renewal proves nothing.
    class LeaderChangeAfterKeepalive extends FakeEtcdQuorum {
      protected override async keepAliveBy(lease: LeaseId): Promise<KeepAlive> {
        const r = await super.keepAliveBy(lease);
        w.etcd.changeLeader();
        return r;
      }
    }
    const plain = w.port();
    const holder = await holderOf(plain);
    assert.ok((await plain.renew(holder)).renewed, 'without a leader change it is renewed');
    const straddling = new LeaderChangeAfterKeepalive(w.etcd, { prefix, cluster: 'main', timeoutMs: 400, clock: w.clock });
    const r = await straddling.renew(holder);
    assert.ok(!r.renewed && /raft term moved from 2 to 3/.test(r.why), JSON.stringify(r));
  });

  it('a key lives a TTL after the last keepalive, no longer; an etcd leader change gives it a full TTL again', async () => {
    const w = world();
    const p = w.port();
    const holder = await holderOf(p, 3000);
    w.advance(2000);
    const r = await p.renew(holder);
    assert.ok(r.renewed);
    w.advance(2999);
    assert.notEqual(w.etcd.get(clusterKeys(prefix, 'main').leader), null, 'still there just before the TTL');
    w.advance(1);
    assert.equal(w.etcd.get(clusterKeys(prefix, 'main').leader), null, 'gone at the TTL');
    const again = await p.renew(holder);
    assert.ok(!again.renewed && /expired or was revoked/.test(again.why));

    const q = w.port('other');
    const h2 = await holderOf(q, 3000);
    w.advance(2500);
    w.etcd.changeLeader();
    w.advance(2999);
    assert.ok((await q.renew(h2)).renewed, 'the new etcd leader extended the lease');
  });

  it('without quorum every operation fails at once and changes nothing', async () => {
    const w = world();
    const p = w.port();
    const holder = await holderOf(p);
    w.etcd.available = false;
    const before = w.etcd.revision;
    assert.ok(!(await p.renew(holder)).renewed);
    assert.ok(!(await p.grantLease(3000)).ok);
    assert.ok(!(await p.campaign({ node: 'db-b', after: null, lease: holder.lease, sync: 'async' })).ok);
    assert.ok(!(await p.setSync(holder, 'db-b')).ok);
    assert.ok(!(await p.handover(holder, 'db-b')).ok);
    assert.ok(!(await p.revokeLease(holder.lease)).ok);
    assert.equal(w.etcd.revision, before);
    w.etcd.available = true;
    assert.ok((await p.renew(holder)).renewed);
  });

  it('watch reports the changed key relative to the cluster', async () => {
    const w = world();
    const p = w.port();
    const seen: string[] = [];
    const watch = await p.watch((key) => seen.push(key));
    assert.ok(watch.ok);
    const holder = await holderOf(p);
    await p.revokeLease(holder.lease);
    await watch.handle.close();
    await holderOf(w.port('other'));
    // The campaign's txn: the term record, the leader key, the reset sync record; then the revoke.
    assert.deepEqual(seen, ['term', 'leader', 'sync', 'leader']);
  });
});

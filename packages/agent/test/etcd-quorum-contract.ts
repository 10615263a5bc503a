// The contract of the etcd quorum port (packages/agent/src/quorum/etcd/port.ts), run against the
// in-memory fake and against a real three-member etcd: the conditions that keep one leader per term
// (docs/design.md, Quorum on etcd). Each case works in a cluster name of its own, so the cases share
// one etcd without seeing each other's keys.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EtcdQuorumPort, Holder, LeaseId } from '../src/quorum/etcd/index.js';
import { clusterKeys } from '../src/quorum/etcd/index.js';

export const prefix = '/pgvip-test';
export const leaseMs = 2000;

export interface ContractWorld {
  /** A client of the quorum for `node` in `cluster`. */
  port(cluster: string, node: string): EtcdQuorumPort;
  /** Writes raw bytes to a key, as anything with write access to the prefix could. */
  putRaw(key: string, value: Buffer): Promise<void>;
}

let clusters = 0;
function freshCluster(): string {
  clusters += 1;
  return `c${process.pid}-${clusters}`;
}

async function lease(port: EtcdQuorumPort): Promise<LeaseId> {
  const g = await port.grantLease(leaseMs);
  assert.ok(g.ok, `lease grant: ${g.ok ? '' : g.why}`);
  return g.lease;
}

async function view(port: EtcdQuorumPort) {
  const r = await port.read();
  assert.ok(r.ok, `read: ${r.ok ? '' : r.why}`);
  return r.view;
}

/** `node` bootstraps term 1 (no sync condition, as the first primary does) and holds the leader key. */
async function bootstrap(port: EtcdQuorumPort, node: string): Promise<Holder> {
  const l = await lease(port);
  const won = await port.campaign({ node, after: null, lease: l, sync: 'async' });
  assert.ok(won.ok, `bootstrap: ${won.ok ? '' : won.why}`);
  return { node, term: 1, lease: l };
}

export function etcdQuorumContract(name: string, world: () => ContractWorld): void {
  describe(`etcd quorum contract: ${name}`, () => {
    it('two agents race to campaign for the same term: exactly one wins, and the keys name it', async () => {
      for (let round = 0; round < 5; round++) {
        const cluster = freshCluster();
        const a = world().port(cluster, 'db-a');
        const b = world().port(cluster, 'db-b');
        const [la, lb] = await Promise.all([lease(a), lease(b)]);
        const [ra, rb] = await Promise.all([
          a.campaign({ node: 'db-a', after: null, lease: la, sync: 'async' }),
          b.campaign({ node: 'db-b', after: null, lease: lb, sync: 'async' }),
        ]);
        assert.equal([ra.ok, rb.ok].filter(Boolean).length, 1, `round ${round}: exactly one winner (${JSON.stringify([ra, rb])})`);
        const winner = ra.ok ? 'db-a' : 'db-b';
        const loser = ra.ok ? rb : ra;
        assert.ok(!loser.ok && /leader key is held by/.test(loser.why), `the loser says why: ${JSON.stringify(loser)}`);
        const v = await view(a);
        assert.deepEqual(v.term?.value, { term: 1, primary: winner });
        assert.deepEqual(v.leader?.value, { node: winner, term: 1 });
        assert.equal(v.leader?.lease, ra.ok ? la : lb);
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('the term moves only with the leader key: refused while a leader holds it or after the term moved', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const b = world().port(cluster, 'db-b');
      const holder = await bootstrap(a, 'db-a');
      const seen = await view(b);
      const lb = await lease(b);
      const held = await b.campaign({ node: 'db-b', after: seen.term, lease: lb, sync: 'async' });
      assert.ok(!held.ok && /held by db-a for term 1/.test(held.why), JSON.stringify(held));
      assert.deepEqual((await view(b)).term?.value, { term: 1, primary: 'db-a' }, 'the term did not move');
      assert.ok((await a.revokeLease(holder.lease)).ok);
      assert.equal((await view(b)).leader, null, 'revoking the lease deletes the leader key');
      const stale = await b.campaign({ node: 'db-b', after: null, lease: lb, sync: 'async' });
      assert.ok(!stale.ok && /term record moved on/.test(stale.why), `a campaign on a term read before it moved: ${JSON.stringify(stale)}`);
      const fresh = await view(b);
      const won = await b.campaign({ node: 'db-b', after: fresh.term, lease: lb, sync: 'async' });
      assert.ok(won.ok && won.term === 2, JSON.stringify(won));
      const after = await view(a);
      assert.deepEqual(after.term?.value, { term: 2, primary: 'db-b' });
      assert.deepEqual(after.leader?.value, { node: 'db-b', term: 2 });
      await Promise.all([a.close(), b.close()]);
    });

    it('a campaign sent again after its answer was lost finds its own commit and counts as won', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const la = await lease(a);
      const req = { node: 'db-a', after: null, lease: la, sync: 'async' } as const;
      assert.ok((await a.campaign(req)).ok);
      const again = await a.campaign(req);
      assert.ok(again.ok && again.term === 1, JSON.stringify(again));
      const other = await a.campaign({ ...req, lease: await lease(a) });
      assert.ok(!other.ok, 'the same campaign on another lease is not the one that won');
      await a.close();
    });

    it('sync mode: only the standby the sync record names wins, and only the leader of the term changes the record', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const b = world().port(cluster, 'db-b');
      const c = world().port(cluster, 'db-c');
      const holderA = await bootstrap(a, 'db-a');
      const none = await c.campaign({ node: 'db-c', after: (await view(c)).term, lease: await lease(c), sync: null });
      assert.ok(!none.ok && /no sync record/.test(none.why), JSON.stringify(none));
      assert.ok((await a.setSync(holderA, 'db-b')).ok, 'the leader names its sync standby');
      const otherLease = await a.setSync({ ...holderA, lease: await lease(a) }, null);
      assert.ok(!otherLease.ok && /is on lease/.test(otherLease.why), `only on the key's own lease: ${JSON.stringify(otherLease)}`);
      const notB = await b.setSync({ node: 'db-b', term: 1, lease: await lease(b) }, 'db-b');
      assert.ok(!notB.ok && /leader key names db-a/.test(notB.why), `a non-leader cannot change it: ${JSON.stringify(notB)}`);
      assert.ok((await a.revokeLease(holderA.lease)).ok);
      const v1 = await view(c);
      assert.deepEqual(v1.sync?.value.members, ['db-b']);
      const wrong = await c.campaign({ node: 'db-c', after: v1.term, lease: await lease(c), sync: v1.sync });
      assert.ok(!wrong.ok && /names db-b/.test(wrong.why), JSON.stringify(wrong));
      const lb = await lease(b);
      const won = await b.campaign({ node: 'db-b', after: v1.term, lease: lb, sync: v1.sync });
      assert.ok(won.ok && won.term === 2, JSON.stringify(won));
      const stale = await a.setSync(holderA, null);
      assert.ok(!stale.ok && /leader key names db-b for term 2/.test(stale.why), `a stale term is refused: ${JSON.stringify(stale)}`);
      const reset = { members: [], k: 0, term: 2 };
      assert.deepEqual((await view(a)).sync?.value, reset, 'the campaign reset the record; the refused change changed nothing');
      assert.ok((await b.setSync({ node: 'db-b', term: 2, lease: lb }, 'db-a')).ok);
      assert.deepEqual((await view(a)).sync?.value, { members: ['db-a'], k: 1, term: 2 });
      await Promise.all([a.close(), b.close(), c.close()]);
    });

    it('a sync record that changed after the candidate read it fails the campaign', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const b = world().port(cluster, 'db-b');
      const holderA = await bootstrap(a, 'db-a');
      assert.ok((await a.setSync(holderA, 'db-b')).ok);
      const seen = await view(b);
      assert.ok((await a.setSync(holderA, null)).ok, 'the primary degrades to async (record first)');
      assert.ok((await a.revokeLease(holderA.lease)).ok);
      const r = await b.campaign({ node: 'db-b', after: (await view(b)).term, lease: await lease(b), sync: seen.sync });
      assert.ok(!r.ok && /sync record changed/.test(r.why), JSON.stringify(r));
      await Promise.all([a.close(), b.close()]);
    });

    it('handover: the holder names its successor in the next term; only the successor takes the key', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const b = world().port(cluster, 'db-b');
      const holderA = await bootstrap(a, 'db-a');
      const notHolder = await b.handover({ node: 'db-b', term: 1, lease: await lease(b) }, 'db-b');
      assert.ok(!notHolder.ok, 'only the holder hands over');
      const h = await a.handover(holderA, 'db-b');
      assert.ok(h.ok && h.term === 2, JSON.stringify(h));
      const v = await view(b);
      assert.equal(v.leader, null);
      assert.deepEqual(v.term?.value, { term: 2, primary: 'db-b' });
      const byA = await a.takeLeaderKey({ node: 'db-a', term: 2, lease: await lease(a) });
      assert.ok(!byA.ok && /term 2 for db-b/.test(byA.why), JSON.stringify(byA));
      const lb = await lease(b);
      assert.ok((await b.takeLeaderKey({ node: 'db-b', term: 2, lease: lb })).ok);
      assert.deepEqual((await view(a)).leader?.value, { node: 'db-b', term: 2 });
      assert.ok((await b.takeLeaderKey({ node: 'db-b', term: 2, lease: lb })).ok, 'taking it again is idempotent');
      const twice = await a.handover(holderA, 'db-b');
      assert.ok(!twice.ok, 'the old holder cannot hand over again');
      await Promise.all([a.close(), b.close()]);
    });

    it('renew: renewed while the key names the holder on its lease; refused once the lease is gone', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const holder = await bootstrap(a, 'db-a');
      const r1 = await a.renew(holder);
      assert.ok(r1.renewed, JSON.stringify(r1));
      assert.deepEqual(r1.view.leader?.value, { node: 'db-a', term: 1 });
      const wrongTerm = await a.renew({ ...holder, term: 2 });
      assert.ok(!wrongTerm.renewed && /names db-a for term 1/.test(wrongTerm.why));
      assert.ok((await a.revokeLease(holder.lease)).ok);
      assert.ok((await a.revokeLease(holder.lease)).ok, 'revoking twice is fine');
      const r2 = await a.renew(holder);
      assert.ok(!r2.renewed && /expired or was revoked/.test(r2.why), JSON.stringify(r2));
      await a.close();
    });

    it('maintenance: no campaign wins while the maintenance key exists', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const keys = clusterKeys(prefix, cluster);
      await world().putRaw(keys.maintenance, Buffer.from(JSON.stringify({ requestedBy: 'test', reason: 'patching' })));
      const r = await a.campaign({ node: 'db-a', after: null, lease: await lease(a), sync: 'async' });
      assert.ok(!r.ok && /maintenance/.test(r.why), JSON.stringify(r));
      await a.close();
    });

    it('values pgvip did not write are reported and never believed', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const keys = clusterKeys(prefix, cluster);
      await world().putRaw(keys.leader, Buffer.from('not json'));
      await world().putRaw(keys.term, Buffer.from(JSON.stringify({ term: 2 ** 53, primary: 'db-a' })));
      await world().putRaw(keys.sync, Buffer.alloc(5000, 0x20));
      const v = await view(a);
      assert.equal(v.leader, null);
      assert.equal(v.term, null);
      assert.equal(v.sync, null);
      assert.deepEqual(v.bad.map((b) => b.key), [keys.leader, keys.term, keys.sync]);
      assert.match(v.bad[0]?.problem ?? '', /not JSON/);
      assert.match(v.bad[1]?.problem ?? '', /term/);
      assert.match(v.bad[2]?.problem ?? '', /larger than any pgvip writes/);
      const r = await a.campaign({ node: 'db-a', after: null, lease: await lease(a), sync: 'async' });
      assert.ok(!r.ok && /holds a value pgvip did not write/.test(r.why), `an unreadable leader key is not "no leader": ${JSON.stringify(r)}`);
      await a.close();
    });

    it('watch tells which of the cluster\'s keys changed, and only the cluster\'s', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const seen: string[] = [];
      const w = await a.watch((key) => seen.push(key));
      assert.ok(w.ok, w.ok ? '' : w.why);
      const elsewhere = world().port(freshCluster(), 'db-a');
      await bootstrap(elsewhere, 'db-a');
      const holder = await bootstrap(a, 'db-a');
      await a.revokeLease(holder.lease);
      const deadline = performance.now() + 5000;
      while (seen.length < 4 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // The campaign's txn writes the term record, the leader key and the reset sync record.
      assert.deepEqual(seen, ['term', 'leader', 'sync', 'leader']);
      await w.handle.close();
      await Promise.all([a.close(), elsewhere.close()]);
    });

    it('members publish their status on their own leases; it goes with the lease', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster, 'db-a');
      const la = await lease(a);
      const status = {
        node: 'db-a', role: 'standby' as const, term: 3, timeline: 2, lsn: 0x3000060n, replayLsn: 0x3000028n,
        streaming: true, writable: false, promotionBlocker: null,
      };
      assert.ok((await a.publishMember(status, la)).ok);
      const m = await a.readMembers();
      assert.ok(m.ok);
      assert.deepEqual(m.members.map((x) => x.value), [status]);
      assert.equal(m.members[0]?.lease, la);
      assert.ok((await a.revokeLease(la)).ok);
      const gone = await a.readMembers();
      assert.ok(gone.ok && gone.members.length === 0);
      await a.close();
    });
  });
}

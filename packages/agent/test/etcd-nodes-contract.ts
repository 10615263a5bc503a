// The etcd records and txns for N database nodes (docs/design.md, "More than one standby"), run
// against the in-memory fake and a real three-member etcd: the term record's grantors, the sync
// record as a claim {members, k, term} (an older agent's {standby, term} still read), the reset
// record every term-creating txn writes, and the withdrawn standbys' final positions with the
// campaign's compares on them. Each case works in a cluster name of its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, type PeerReply } from '@pgvip/shared';
import {
  clusterKeys, EtcdQuorumBridge, type EtcdObserverPort, type EtcdQuorumPort, type Holder, type LeaseId,
  type PositionRecord,
} from '../src/quorum/etcd/index.js';

export const prefix = '/pgvip-nodes-test';
const leaseMs = 2000;

export interface NodesWorld {
  port(cluster: string): EtcdQuorumPort;
  observer(cluster: string): EtcdObserverPort;
  putRaw(key: string, value: Buffer): Promise<void>;
  getRaw(key: string): Promise<Buffer | null>;
}

/** JSON for a failure's message: views hold LSNs as bigints. */
function show(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v));
}

let clusters = 0;
function freshCluster(): string {
  clusters += 1;
  return `n${process.pid}-${clusters}`;
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

const position = (term: number, flushLsn: bigint, eligible = true): PositionRecord => ({
  term, timeline: 1, flushLsn, eligible,
});

/** db-a holds term 1 of a three-node cluster, its grantors db-b and db-c. */
async function bootstrap(port: EtcdQuorumPort): Promise<Holder> {
  const l = await lease(port);
  const won = await port.campaign({ node: 'db-a', after: null, lease: l, sync: 'async', grantors: ['db-b', 'db-c'] });
  assert.ok(won.ok, `bootstrap: ${won.ok ? '' : won.why}`);
  return { node: 'db-a', term: 1, lease: l, grantors: ['db-b', 'db-c'] };
}

export function etcdNodesContract(name: string, world: () => NodesWorld): void {
  describe(`etcd records for N nodes: ${name}`, () => {
    it('a campaign writes its grantors and the reset sync record; the holder\'s txns compare that record', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      const v = await view(a);
      assert.deepEqual(v.term?.value, { term: 1, primary: 'db-a', grantors: ['db-b', 'db-c'] });
      assert.deepEqual(v.sync?.value, { members: [], k: 0, term: 1 });
      assert.ok((await a.renew(holder)).renewed);
      // Every txn of the holder compares the term record's bytes, grantors included.
      assert.ok((await a.setSync(holder, { members: ['db-c', 'db-b'], k: 1 })).ok);
      assert.deepEqual((await view(a)).sync?.value, { members: ['db-b', 'db-c'], k: 1, term: 1 });
      const wrongGrantors = await a.setSync({ ...holder, grantors: ['db-b'] }, { members: ['db-b'], k: 1 });
      assert.ok(!wrongGrantors.ok, 'a holder that names other grantors is not the holder of this record');
      const bad = await a.setSync(holder, { members: ['db-b'], k: 2 });
      assert.ok(!bad.ok && /not a sync record/.test(bad.why), show(bad));
      // Taken again in the same term: the record with its grantors must match.
      assert.ok((await a.revokeLease(holder.lease)).ok);
      const old = await a.takeLeaderKey({ ...holder, lease: await lease(a), grantors: null });
      assert.ok(!old.ok, 'an old-form record is not the one etcd holds');
      assert.ok((await a.takeLeaderKey({ ...holder, lease: await lease(a) })).ok);
      await a.close();
    });

    it('a sync record write compared with the record as read lands only over that record', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      const r0 = (await view(a)).sync?.modRevision ?? null;
      assert.notEqual(r0, null);
      const first = await a.setSync(holder, { members: ['db-b', 'db-c'], k: 1 }, { modRevision: r0 });
      assert.ok(first.ok, show(first));
      const again = await a.setSync(holder, { members: ['db-b', 'db-c'], k: 1 }, { modRevision: r0 });
      assert.ok(again.ok, `a try repeated after its first committed reads its own record as done: ${show(again)}`);
      const stale = await a.setSync(holder, { members: ['db-c'], k: 1 }, { modRevision: r0 });
      assert.ok(!stale.ok && /sync record changed since it was read/.test(stale.why), show(stale));
      assert.deepEqual((await view(a)).sync?.value, { members: ['db-b', 'db-c'], k: 1, term: 1 });
      const absent = await a.setSync(holder, { members: ['db-c'], k: 1 }, { modRevision: null });
      assert.ok(!absent.ok, 'absent as read: refused once a record exists');
      await a.close();
    });

    it('a campaign is refused to a node outside the term record\'s grantors; an old record allows anyone', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const keys = clusterKeys(prefix, cluster);
      const l = await lease(a);
      const won = await a.campaign({ node: 'db-a', after: null, lease: l, sync: 'async', grantors: ['db-b'] });
      assert.ok(won.ok);
      assert.ok((await a.revokeLease(l)).ok);
      const v = await view(a);
      const c = await a.campaign({ node: 'db-c', after: v.term, lease: await lease(a), sync: 'async', grantors: ['db-a', 'db-b'] });
      assert.ok(!c.ok && /db-c is not a grantor of term 1 \(db-b\)/.test(c.why), show(c));
      // An old agent's record {term, primary}: its grantor is "the other node", which etcd cannot tell.
      await world().putRaw(keys.term, Buffer.from(JSON.stringify({ term: 1, primary: 'db-a' })));
      const old = await view(a);
      assert.equal(old.term?.value.grantors, undefined);
      const c2 = await a.campaign({ node: 'db-c', after: old.term, lease: await lease(a), sync: 'async', grantors: ['db-a', 'db-b'] });
      assert.ok(c2.ok && c2.term === 2, show(c2));
      await a.close();
    });

    it('the sync record as a claim: a member of ANY 1 (b, c) may win, a non-member or k = 0 may not', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      assert.ok((await a.setSync(holder, { members: ['db-b'], k: 1 })).ok);
      assert.ok((await a.revokeLease(holder.lease)).ok);
      const v = await view(a);
      const c = await a.campaign({ node: 'db-c', after: v.term, lease: await lease(a), sync: v.sync, grantors: ['db-a', 'db-b'] });
      assert.ok(!c.ok && /may not be promoted: the sync record names db-b/.test(c.why), show(c));
      const keys = clusterKeys(prefix, cluster);
      await world().putRaw(keys.sync, Buffer.from(JSON.stringify({ members: ['db-b', 'db-c'], k: 0, term: 1 })));
      const degraded = await view(a);
      const d = await a.campaign({ node: 'db-c', after: degraded.term, lease: await lease(a), sync: degraded.sync, grantors: ['db-a', 'db-b'] });
      assert.ok(!d.ok && /may not be promoted/.test(d.why), `k = 0 claims nothing: ${show(d)}`);
      await world().putRaw(keys.sync, Buffer.from(JSON.stringify({ members: ['db-b', 'db-c'], k: 1, term: 1 })));
      const both = await view(a);
      const won = await a.campaign({ node: 'db-c', after: both.term, lease: await lease(a), sync: both.sync, grantors: ['db-a', 'db-b'] });
      assert.ok(won.ok && won.term === 2, show(won));
      assert.deepEqual((await view(a)).sync?.value, { members: [], k: 0, term: 2 }, 'the new term starts with nothing claimed');
      await a.close();
    });

    it('an older agent\'s sync record {standby, term} reads as ANY 1 (standby), or nothing', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const keys = clusterKeys(prefix, cluster);
      await world().putRaw(keys.sync, Buffer.from(JSON.stringify({ standby: 'db-b', term: 4 })));
      assert.deepEqual((await view(a)).sync?.value, { members: ['db-b'], k: 1, term: 4 });
      await world().putRaw(keys.sync, Buffer.from(JSON.stringify({ standby: null, term: 4 })));
      assert.deepEqual((await view(a)).sync?.value, { members: [], k: 0, term: 4 });
      await a.close();
    });

    it('records that name a node twice, claim more than they list, or list their primary as a grantor are not believed', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const keys = clusterKeys(prefix, cluster);
      await world().putRaw(keys.term, Buffer.from(JSON.stringify({ term: 3, primary: 'db-a', grantors: ['db-b', 'db-b'] })));
      await world().putRaw(keys.sync, Buffer.from(JSON.stringify({ members: ['db-b'], k: 2, term: 3 })));
      await world().putRaw(keys.position('db-b'), Buffer.from(JSON.stringify({ term: 3, timeline: 1, flushLsn: 'zz', eligible: true })));
      await world().putRaw(`${keys.positionsPrefix}not a node`, Buffer.from('{}'));
      let v = await view(a);
      assert.equal(v.term, null);
      assert.equal(v.sync, null);
      assert.deepEqual(v.positions, []);
      assert.deepEqual(v.bad.map((b) => b.key).sort(), [keys.position('db-b'), `${keys.positionsPrefix}not a node`, keys.sync, keys.term].sort());
      assert.match(v.bad.find((b) => b.key === keys.term)?.problem ?? '', /more than once/);
      assert.match(v.bad.find((b) => b.key === keys.sync)?.problem ?? '', /claims more members/);
      await world().putRaw(keys.term, Buffer.from(JSON.stringify({ term: 3, primary: 'db-a', grantors: ['db-a', 'db-b'] })));
      v = await view(a);
      assert.match(v.bad.find((b) => b.key === keys.term)?.problem ?? '', /primary among its grantors/);
      await world().putRaw(keys.position('db-c'), Buffer.alloc(5000, 0x20));
      v = await view(a);
      assert.match(v.bad.find((b) => b.key === keys.position('db-c'))?.problem ?? '', /larger than any pgvip writes/);
      await a.close();
    });

    it('positions: published without a lease, read by every view; a campaign fails when one moved after the read', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      assert.ok((await a.setSync(holder, { members: ['db-b', 'db-c'], k: 1 })).ok);
      assert.ok((await a.revokeLease(holder.lease)).ok, 'the primary is gone');
      assert.ok((await a.publishPosition('db-b', position(1, 0x3000000n))).ok);
      const v = await view(a);
      assert.deepEqual(v.positions.map((p) => [p.node, p.value, p.lease]), [['db-b', position(1, 0x3000000n), '0']]);
      const seen = (node: string) => ({
        node, modRevision: v.positions.find((p) => p.node === node)?.modRevision ?? null,
      });
      const req = {
        node: 'db-b', after: v.term, sync: v.sync, grantors: ['db-a', 'db-c'], positions: [seen('db-b'), seen('db-c')],
      } as const;
      // db-c publishes after db-b read: db-b's campaign must not win on what it did not see.
      assert.ok((await a.publishPosition('db-c', position(1, 0x3000100n))).ok);
      const late = await a.campaign({ ...req, lease: await lease(a) });
      assert.ok(!late.ok && /final position of db-c changed since it was read/.test(late.why), show(late));
      // Published again with the same value: still a change (a new revision).
      const v2 = await view(a);
      assert.ok((await a.publishPosition('db-c', position(1, 0x3000100n))).ok);
      const again = await a.campaign({
        ...req, after: v2.term, lease: await lease(a),
        positions: v2.positions.map((p) => ({ node: p.node, modRevision: p.modRevision })),
      });
      assert.ok(!again.ok, show(again));
      const v3 = await view(a);
      const c = await a.campaign({
        node: 'db-c', after: v3.term, sync: v3.sync, grantors: ['db-a', 'db-b'], lease: await lease(a),
        positions: v3.positions.map((p) => ({ node: p.node, modRevision: p.modRevision })),
      });
      assert.ok(c.ok && c.term === 2, show(c));
      const after = await view(a);
      assert.deepEqual(after.positions.map((p) => p.node), ['db-b'], 'the winner\'s own position went with its campaign');
      assert.deepEqual(after.term?.value, { term: 2, primary: 'db-c', grantors: ['db-a', 'db-b'] });
      await a.close();
    });

    it('position clear: deleted while the term record is as read, refused once the term moved', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      assert.ok((await a.publishPosition('db-b', position(1, 0x100n))).ok);
      const v = await view(a);
      assert.ok((await a.clearPosition('db-b', v.term)).ok);
      assert.deepEqual((await view(a)).positions, []);
      assert.ok((await a.clearPosition('db-b', v.term)).ok, 'clearing an absent position is done');
      assert.ok((await a.publishPosition('db-b', position(1, 0x100n))).ok);
      const h = await a.handover(holder, 'db-b', ['db-a', 'db-c']);
      assert.ok(h.ok && h.term === 2);
      const moved = await a.clearPosition('db-b', v.term);
      assert.ok(!moved.ok && /term record moved since it was read/.test(moved.why), show(moved));
      assert.equal((await view(a)).positions.length, 1, 'the refused clear deleted nothing');
      await a.close();
    });

    it('a handover writes the successor\'s grantors and the reset sync record', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const holder = await bootstrap(a);
      assert.ok((await a.setSync(holder, { members: ['db-b', 'db-c'], k: 2 })).ok);
      const h = await a.handover(holder, 'db-c', ['db-a', 'db-b']);
      assert.ok(h.ok && h.term === 2, show(h));
      const v = await view(a);
      assert.deepEqual(v.term?.value, { term: 2, primary: 'db-c', grantors: ['db-a', 'db-b'] });
      assert.deepEqual(v.sync?.value, { members: [], k: 0, term: 2 });
      const lc = await lease(a);
      assert.ok((await a.takeLeaderKey({ node: 'db-c', term: 2, lease: lc, grantors: ['db-a', 'db-b'] })).ok);
      await a.close();
    });

    it('an election among three bridges: the most advanced member wins, comparing the positions it read', async () => {
      const cluster = freshCluster();
      const nodes = ['db-a', 'db-b', 'db-c'].map((id) => ({ id, priority: 0, noFailover: false }));
      const ports: EtcdQuorumPort[] = [];
      const bridge = (self: string): EtcdQuorumBridge => {
        const p = world().port(cluster);
        ports.push(p);
        return new EtcdQuorumBridge(p, { cluster, self, quorumId: 'etcd', leaseMs, replication: 'sync', nodes });
      };
      const env = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });
      const ask = async (b: EtcdQuorumBridge, m: Parameters<EtcdQuorumBridge['ask']>[0]): Promise<PeerReply> => {
        const r = await b.ask(m);
        assert.ok(r !== null);
        return r;
      };
      const vote = (from: string, flushLsn: bigint) => ({
        ...env(from, 2), kind: 'vote-request' as const, lastTerm: 1, lsn: flushLsn, timeline: 1,
        withdrawn: { flushLsn, timeline: 1, windowOpen: true },
      });
      const a = bridge('db-a');
      const b = bridge('db-b');
      const c = bridge('db-c');
      const first = await ask(a, { ...env('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
      assert.ok(first.kind === 'vote-reply' && first.granted, show(first));
      const claim = await ask(a, {
        ...env('db-a', 1), kind: 'sync-update', change: 'record', claim: { members: ['db-b', 'db-c'], k: 1 },
      });
      assert.ok(claim.kind === 'sync-update-reply' && claim.granted, show(claim));
      const released = await ask(a, { ...env('db-a', 1), kind: 'lease-release', reason: 'gone', leaseSeq: 1 });
      assert.ok(released.kind === 'ack' && released.accepted, show(released));
      const early = await ask(b, vote('db-b', 0x500n));
      const waiting = /waiting for the final positions of db-c/;
      assert.ok(early.kind === 'vote-reply' && !early.granted && waiting.test(early.reason), show(early));
      const yields = await ask(c, vote('db-c', 0x400n));
      assert.ok(yields.kind === 'vote-reply' && !yields.granted && /db-b ranks first/.test(yields.reason), show(yields));
      const won = await ask(b, vote('db-b', 0x500n));
      assert.ok(won.kind === 'vote-reply' && won.granted && won.term === 2, show(won));
      const v = await view(ports[0]!);
      assert.deepEqual(v.term?.value, { term: 2, primary: 'db-b', grantors: ['db-a', 'db-c'] });
      assert.deepEqual(v.positions.map((p) => [p.node, p.value.flushLsn]), [['db-c', 0x400n]]);
      const cleared = await ask(c, { ...env('db-c', 2), kind: 'position-clear' });
      assert.ok(cleared.kind === 'ack' && cleared.accepted, show(cleared));
      assert.deepEqual((await view(ports[0]!)).positions, []);
      await Promise.all(ports.map((p) => p.close()));
    });

    it('the operator\'s forced failover writes grantors and the reset record; seed claims nothing', async () => {
      const cluster = freshCluster();
      const a = world().port(cluster);
      const o = world().observer(cluster);
      const keys = clusterKeys(prefix, cluster);
      const holder = await bootstrap(a);
      assert.ok((await a.setSync(holder, { members: ['db-b'], k: 1 })).ok);
      const v = await view(a);
      const forced = await o.forceFailover({ to: 'db-c', after: v.term, grantors: ['db-a', 'db-b'] });
      assert.ok(forced.ok && forced.term === 2, show(forced));
      const f = await view(a);
      assert.deepEqual(f.term?.value, { term: 2, primary: 'db-c', grantors: ['db-a', 'db-b'] });
      assert.deepEqual(f.sync?.value, { members: [], k: 0, term: 2 });
      assert.equal(f.leader, null);
      const twoNodes = await o.forceFailover({ to: 'db-a', after: f.term });
      assert.ok(twoNodes.ok);
      assert.deepEqual((await view(a)).term?.value, { term: 3, primary: 'db-a' }, 'without grantors: the two-node record');
      // Without grantors (two nodes), the two-node forms an earlier release reads.
      assert.equal((await world().getRaw(keys.sync))?.toString(), '{"standby":null,"term":3}');
      const other = freshCluster();
      const seeded = world().observer(other);
      const r = await seeded.seedTerm({
        term: 7, primary: 'db-a', replication: 'sync', after: null, maintenance: { requestedBy: 'test', reason: 'move' },
      });
      assert.ok(r.ok, show(r));
      assert.equal((await world().getRaw(clusterKeys(prefix, other).sync))?.toString(), '{"standby":null,"term":7}');
      await Promise.all([a.close(), o.close(), seeded.close()]);
    });
  });
}

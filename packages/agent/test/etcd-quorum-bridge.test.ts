// Goal: the core's messages to its quorum get from etcd the answers the witness would give
// (docs/design.md, Quorum on etcd, "The core's messages on etcd"): a vote is the campaign txn, a
// lease request a renewal (or the same-term take of a lost key), a release a revoke, a sync update
// the leader-only sync record. On the fake etcd, which runs the same protocol code as the real client.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, type LeaseReply, type PeerRequest, type VoteReply } from '@pgvip/shared';
import { clusterKeys, EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';

const prefix = '/pgvip';
const cluster = 'main';
const keys = clusterKeys(prefix, cluster);

function world(replication: 'sync' | 'async' = 'async') {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const bridge = (self: string) =>
    new EtcdQuorumBridge(new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock }), {
      cluster, self, quorumId: 'etcd', leaseMs: 3000, replication,
    });
  return { etcd, bridge, advance: (ms: number) => (nowMs += ms) };
}

const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });
const vote = (from: string, term: number): PeerRequest => ({
  ...envelope(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: 0n, timeline: 1,
});
const leaseRequest = (from: string, term: number, seq: number): PeerRequest => ({
  ...envelope(from, term), kind: 'lease-request', seq, lsn: 0n, timeline: 1, syncStandby: null,
});

async function askVote(b: EtcdQuorumBridge, from: string, term: number): Promise<VoteReply> {
  const r = await b.ask(vote(from, term));
  assert.ok(r !== null && r.kind === 'vote-reply');
  return r;
}

async function askLease(b: EtcdQuorumBridge, from: string, term: number, seq: number): Promise<LeaseReply> {
  const r = await b.ask(leaseRequest(from, term, seq));
  assert.ok(r !== null && r.kind === 'lease-reply');
  return r;
}

describe('the core\'s quorum messages answered by etcd', () => {
  it('a vote for term 1, then lease requests: granted, the seq echoed, from the quorum', async () => {
    const w = world();
    const a = w.bridge('db-a');
    const v = await askVote(a, 'db-a', 1);
    assert.deepEqual({ granted: v.granted, term: v.term, primaryOfTerm: v.primaryOfTerm, from: v.from }, {
      granted: true, term: 1, primaryOfTerm: 'db-a', from: 'etcd',
    });
    const l = await askLease(a, 'db-a', 1, 7);
    const { granted, seq, term, primaryOfTerm, maintenance } = l;
    assert.deepEqual({ granted, seq, term, primaryOfTerm, maintenance }, { granted: true, seq: 7, term: 1, primaryOfTerm: 'db-a', maintenance: false });
    w.etcd.putRaw(keys.maintenance, Buffer.from(JSON.stringify({ requestedBy: 'ops', reason: 'patching' })));
    assert.equal((await askLease(a, 'db-a', 1, 8)).maintenance, true, 'the maintenance key reaches the core as the witness\'s flag did');
  });

  it('two nodes ask for the same term: one vote granted; the other learns the term and its primary', async () => {
    const w = world();
    const [ra, rb] = await Promise.all([askVote(w.bridge('db-a'), 'db-a', 1), askVote(w.bridge('db-b'), 'db-b', 1)]);
    assert.equal([ra.granted, rb.granted].filter(Boolean).length, 1);
    const loser = ra.granted ? rb : ra;
    assert.equal(loser.term, 1);
    assert.equal(loser.primaryOfTerm, ra.granted ? 'db-a' : 'db-b');
  });

  it('a vote for a term that is not the next one is refused with the term etcd holds', async () => {
    const w = world();
    await askVote(w.bridge('db-a'), 'db-a', 1);
    const r = await askVote(w.bridge('db-b'), 'db-b', 3);
    assert.equal(r.granted, false);
    assert.equal(r.term, 1);
    assert.equal(r.primaryOfTerm, 'db-a');
  });

  it('asking again for a term already won (the answer was lost) is granted', async () => {
    const w = world();
    const a = w.bridge('db-a');
    assert.ok((await askVote(a, 'db-a', 1)).granted);
    assert.ok((await askVote(a, 'db-a', 1)).granted);
    assert.ok((await askVote(w.bridge('db-a'), 'db-a', 1)).granted, 'also by a restarted agent');
  });

  it('a key lost while etcd was out of reach is taken again in the same term; a restarted agent renews its key', async () => {
    const w = world();
    const a = w.bridge('db-a');
    assert.ok((await askVote(a, 'db-a', 1)).granted);
    w.etcd.available = false;
    assert.equal((await askLease(a, 'db-a', 1, 1)).granted, false);
    w.advance(3500); // the lease ran out meanwhile
    w.etcd.available = true;
    assert.equal(w.etcd.get(keys.leader), null);
    const back = await askLease(a, 'db-a', 1, 2);
    assert.ok(back.granted, back.reason);
    assert.match(back.reason, /took the leader key again/);
    assert.equal(back.term, 1, 'no term moved');
    const restarted = w.bridge('db-a');
    const before = w.etcd.revision;
    const renewed = await askLease(restarted, 'db-a', 1, 3);
    assert.ok(renewed.granted && renewed.reason === 'renewed', renewed.reason);
    assert.equal(w.etcd.revision, before, 'renewing the key it found wrote nothing');
  });

  it('a restarted agent whose key is on a lease shorter than its leaseMs moves the key to a full lease', async () => {
    // The earlier run had leaseMs 1000: its key's lease has a TTL of 1 s. The core of this run counts
    // 3000 ms less the margins from its request: a renewal of that lease would leave the key to vanish
    // 1 s after the keepalive, while the core still counted its lease, and the standby could win.
    const w = world();
    const short = w.etcd.grant(1);
    w.etcd.putRaw(keys.term, Buffer.from(JSON.stringify({ term: 1, primary: 'db-a' })));
    w.etcd.putRaw(keys.leader, Buffer.from(JSON.stringify({ node: 'db-a', term: 1 })), short);
    const restarted = w.bridge('db-a');
    const r = await askLease(restarted, 'db-a', 1, 1);
    assert.ok(r.granted, r.reason);
    const [leader] = w.etcd.read([keys.leader]);
    assert.ok(leader !== undefined);
    assert.ok(w.etcd.leaseTtlS(leader.lease) >= 3, `the key is on lease ${leader.lease} of ${w.etcd.leaseTtlS(leader.lease)} s`);
    w.advance(2500); // under the 2870 ms the core counts from its request
    assert.deepEqual(JSON.parse(w.etcd.get(keys.leader)?.toString() ?? 'null'), { node: 'db-a', term: 1 });
    assert.equal((await askLease(restarted, 'db-a', 1, 2)).reason, 'renewed');
  });

  it('a restarted agent that releases before it renewed revokes the key it finds', async () => {
    const w = world();
    assert.ok((await askVote(w.bridge('db-a'), 'db-a', 1)).granted);
    const restarted = w.bridge('db-a');
    const r = await restarted.ask({ ...envelope('db-a', 1), kind: 'lease-release', reason: 'fenced', leaseSeq: 1 });
    assert.ok(r?.kind === 'ack' && r.accepted, JSON.stringify(r));
    assert.equal(w.etcd.get(keys.leader), null, 'the standby need not wait for the key\'s TTL');
    assert.ok((await askVote(w.bridge('db-b'), 'db-b', 2)).granted);
  });

  it('a release revokes the key, and the standby wins the next term', async () => {
    const w = world();
    const a = w.bridge('db-a');
    const b = w.bridge('db-b');
    assert.ok((await askVote(a, 'db-a', 1)).granted);
    assert.equal((await askVote(b, 'db-b', 2)).granted, false, 'not while the key is held');
    const ack = await a.ask({ ...envelope('db-a', 1), kind: 'lease-release', reason: 'fenced', leaseSeq: 1 });
    assert.ok(ack !== null && ack.kind === 'ack' && ack.accepted);
    assert.equal(w.etcd.get(keys.leader), null);
    const won = await askVote(b, 'db-b', 2);
    assert.ok(won.granted, won.reason);
    const old = await askLease(a, 'db-a', 1, 9);
    assert.equal(old.granted, false);
    assert.equal(old.term, 2, 'the old primary learns the new term');
    assert.equal(old.primaryOfTerm, 'db-b');
  });

  it('sync mode: the primary names its standby; only that standby wins; a stale sync update is refused', async () => {
    const w = world('sync');
    const a = w.bridge('db-a');
    assert.ok((await askVote(a, 'db-a', 1)).granted, 'term 1 needs no sync record');
    const restore = await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', standby: 'db-b', change: 'restore' });
    assert.ok(restore !== null && restore.kind === 'sync-update-reply' && restore.granted);
    await a.ask({ ...envelope('db-a', 1), kind: 'lease-release', reason: 'fenced', leaseSeq: 1 });
    const c = await askVote(w.bridge('db-c'), 'db-c', 2);
    assert.equal(c.granted, false);
    assert.match(c.reason, /names db-b/);
    assert.ok((await askVote(w.bridge('db-b'), 'db-b', 2)).granted);
    const stale = await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', standby: 'db-b', change: 'degrade' });
    assert.ok(stale !== null && stale.kind === 'sync-update-reply' && !stale.granted);
  });

  it('a vote is two round trips to etcd: the read and the lease grant together, then the txn', async () => {
    // Each call to etcd waits until the test lets the calls made so far through: one round trip.
    let nowMs = 1000;
    const etcd = new FakeEtcd(() => nowMs);
    const fake = new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock: () => nowMs });
    const held: (() => void)[] = [];
    const calls: string[] = [];
    const gated = new Proxy(fake, {
      get(target, name, receiver) {
        const f: unknown = Reflect.get(target, name, receiver);
        if (typeof f !== 'function' || name === 'close') return f;
        return (...args: unknown[]) => new Promise((resolve) => {
          calls.push(String(name));
          held.push(() => resolve((f as (...a: unknown[]) => Promise<unknown>).apply(target, args)));
        });
      },
    });
    const b = new EtcdQuorumBridge(gated, { cluster, self: 'db-b', quorumId: 'etcd', leaseMs: 3000, replication: 'async' });
    let reply: VoteReply | null = null;
    void askVote(b, 'db-b', 1).then((r) => (reply = r));
    let rounds = 0;
    for (; reply === null && rounds < 10; rounds++) {
      await new Promise((r) => setImmediate(r));
      for (const go of held.splice(0)) go();
      nowMs += 10;
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(reply !== null);
    assert.deepEqual({ granted: (reply as VoteReply).granted, primaryOfTerm: (reply as VoteReply).primaryOfTerm }, { granted: true, primaryOfTerm: 'db-b' });
    assert.equal(rounds, 2, `round trips: ${calls.join(', ')}`);
    assert.deepEqual(calls, ['read', 'grantLease', 'campaign']);
  });
});

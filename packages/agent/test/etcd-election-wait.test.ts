// Goal: a withdrawn standby's vote (three or more nodes, docs/design.md, "More than one standby")
// waits, within the time its caller gives the answer, for the final positions the election still
// lacks, and decides on a new read: the standbys withdraw within moments of each other, and a refusal
// costs the core a heartbeat. The lab's three-node failovers were refused "waiting for the final
// positions of db-c", which came 4 to 280 ms later. The wait never stretches an answer past its
// deadline, and the decision and the campaign's compares are the same as without it. On the fake
// etcd, which runs the protocol code of the real client.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, type PeerRequest, type VoteReply } from '@pgvip/shared';
import type { NodeTraits } from '@pgvip/shared/core';
import { EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum, type EtcdQuorumPort } from '../src/quorum/etcd/index.js';

const prefix = '/pgvip';
const cluster = 'main';
const traits = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [traits('db-a'), traits('db-b'), traits('db-c')];
const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });

/** A fake port whose pauses move the test's clock and may run `during` (another node's step). */
class PausingPort extends FakeEtcdQuorum {
  pauses = 0;
  during: (() => Promise<void>) | null = null;
  constructor(etcd: FakeEtcd, private readonly advance: (ms: number) => void, clock: () => number) {
    super(etcd, { prefix, cluster, timeoutMs: 400, clock });
  }
  override async pause(ms: number): Promise<void> {
    this.pauses += 1;
    this.advance(ms);
    const run = this.during;
    this.during = null;
    if (run !== null) await run();
  }
}

function world() {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const advance = (ms: number): void => {
    nowMs += ms;
  };
  const etcd = new FakeEtcd(clock);
  const port = (): PausingPort => new PausingPort(etcd, advance, clock);
  const bridge = (self: string, p: EtcdQuorumPort = port()) =>
    new EtcdQuorumBridge(p, { cluster, self, quorumId: 'etcd', leaseMs: 3000, replication: 'sync', nodes: three, clock });
  return { etcd, port, bridge, clock };
}

const withdrawnVote = (from: string, flushLsn: bigint): PeerRequest => ({
  ...envelope(from, 2), kind: 'vote-request', lastTerm: 1, lsn: flushLsn, timeline: 1,
  withdrawn: { flushLsn, timeline: 1, windowOpen: true },
});

async function vote(b: EtcdQuorumBridge, from: string, flushLsn: bigint, answerBy?: number): Promise<VoteReply> {
  const r = await b.ask(withdrawnVote(from, flushLsn), answerBy);
  assert.ok(r !== null && r.kind === 'vote-reply', JSON.stringify(r));
  return r;
}

/** db-a won term 1 with ANY 1 (db-b, db-c) recorded, and is lost (its leader key's lease revoked). */
async function primaryLost(w: ReturnType<typeof world>): Promise<void> {
  const a = w.bridge('db-a');
  const won = await a.ask({ ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  assert.ok(won?.kind === 'vote-reply' && won.granted, JSON.stringify(won));
  const rec = await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', change: 'record', claim: { members: ['db-b', 'db-c'], k: 1 } });
  assert.ok(rec?.kind === 'sync-update-reply' && rec.granted, JSON.stringify(rec));
  const seen = await w.port().read();
  assert.ok(seen.ok && seen.view.leader !== null);
  w.etcd.revoke(seen.view.leader.lease);
}

describe('a withdrawn vote waits for the positions it lacks, within its answer\'s time', () => {
  it('db-c publishes while db-b\'s vote waits: db-b wins in that one ask', async () => {
    const w = world();
    await primaryLost(w);
    const port = w.port();
    const b = w.bridge('db-b', port);
    // db-c withdraws a moment after db-b asked: its vote (refused: db-b ranks first) publishes its position.
    port.during = async () => {
      const c = await vote(w.bridge('db-c'), 'db-c', 0x100n);
      assert.equal(c.granted, false);
    };
    const r = await vote(b, 'db-b', 0x200n, w.clock() + 400);
    assert.equal(r.granted, true, r.reason);
    assert.match(r.reason, /won term 2/);
    assert.ok(port.pauses >= 1);
    assert.ok(w.clock() <= 1000 + 400, `answered at ${w.clock()}, after its deadline`);
  });

  it('nobody publishes: refused with the same reason, before the deadline; without a deadline, at once', async () => {
    const w = world();
    await primaryLost(w);
    const port = w.port();
    const start = w.clock();
    const r = await vote(w.bridge('db-b', port), 'db-b', 0x200n, start + 400);
    assert.equal(r.granted, false);
    assert.match(r.reason, /waiting for the final positions of db-c/);
    assert.ok(port.pauses >= 1 && w.clock() <= start + 400, `paused ${port.pauses} times, answered at ${w.clock() - start} ms`);
    const quick = w.port();
    const r2 = await vote(w.bridge('db-b', quick), 'db-b', 0x200n);
    assert.equal(r2.granted, false);
    assert.equal(quick.pauses, 0);
  });

  it('a standby ranked behind does not wait: it is refused at once for the one ranked first', async () => {
    const w = world();
    await primaryLost(w);
    await vote(w.bridge('db-b'), 'db-b', 0x200n);
    const port = w.port();
    const r = await vote(w.bridge('db-c', port), 'db-c', 0x100n, w.clock() + 400);
    assert.equal(r.granted, false);
    assert.match(r.reason, /db-b ranks first/);
    assert.equal(port.pauses, 0);
  });

  it('a more advanced standby that publishes during the wait wins; the waiting vote learns the new term', async () => {
    const w = world();
    await primaryLost(w);
    const port = w.port();
    let c: VoteReply | null = null;
    port.during = async () => {
      c = await vote(w.bridge('db-c'), 'db-c', 0x300n);
    };
    const r = await vote(w.bridge('db-b', port), 'db-b', 0x200n, w.clock() + 400);
    assert.equal((c as VoteReply | null)?.granted, true);
    assert.equal(r.granted, false);
    assert.match(r.reason, /the term record is at 2/);
    assert.equal(r.primaryOfTerm, 'db-c');
  });
});

describe('the question before withdrawing (review-17 F9): a vote request without a final position', () => {
  const question = (from: string): PeerRequest => ({ ...envelope(from, 2), kind: 'vote-request', lastTerm: 1, lsn: 0x200n, timeline: 1 });

  it('answers leaderKeyGone from one read: false while the key stands, true once it is gone; never a term', async () => {
    const w = world();
    const a = w.bridge('db-a');
    const won = await a.ask({ ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won?.kind === 'vote-reply' && won.granted);
    const held = await w.bridge('db-b').ask(question('db-b'));
    assert.ok(held?.kind === 'vote-reply' && !held.granted, JSON.stringify(held));
    assert.equal(held.leaderKeyGone, false);
    assert.match(held.reason, /the leader key names db-a for term 1/);
    const seen = await w.port().read();
    assert.ok(seen.ok && seen.view.leader !== null);
    w.etcd.revoke(seen.view.leader.lease);
    const gone = await w.bridge('db-b').ask(question('db-b'));
    assert.ok(gone?.kind === 'vote-reply' && !gone.granted, JSON.stringify(gone));
    assert.equal(gone.leaderKeyGone, true);
    assert.equal(gone.term, 1);
    const after = await w.port().read();
    assert.ok(after.ok && after.view.term?.value.term === 1 && after.view.leader === null, 'the question made a term');
  });

  it('etcd out of reach: refused without leaderKeyGone (the standby does not withdraw)', async () => {
    const w = world();
    const a = w.bridge('db-a');
    await a.ask({ ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    w.etcd.available = false;
    const r = await w.bridge('db-b').ask(question('db-b'));
    assert.ok(r?.kind === 'vote-reply' && !r.granted, JSON.stringify(r));
    assert.equal(r.leaderKeyGone, undefined);
  });
});

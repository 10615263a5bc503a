// An adversarial review of the election among N nodes on etcd (issue 17; docs/design.md, "More than
// one standby"): schedules that an attacker of the design would try against the bridge, on the fake
// etcd (which runs the protocol code of the real client). Each failed on the bridge of 468f51e
// (n-review's findings F1, F3, F4, F6) and passes since 7b5e657.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, type PeerReply, type PeerRequest, type VoteReply } from '@pgvip/shared';
import type { NodeTraits, SyncClaim } from '@pgvip/shared/core';
import {
  clusterKeys, EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum, type EtcdQuorumPort,
} from '../src/quorum/etcd/index.js';
import type { Cmp, Op, Outcome, TxnOutcome } from '../src/quorum/etcd/txn-quorum.js';

const prefix = '/pgvip';
const cluster = 'main';
const keys = clusterKeys(prefix, cluster);
const traits = (id: string, o: Partial<NodeTraits> = {}): NodeTraits => ({ id, priority: 0, noFailover: false, ...o });
const three = [traits('db-a'), traits('db-b'), traits('db-c')];

function world(opts: { replication?: 'sync' | 'async' } = {}) {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const port = (): EtcdQuorumPort => new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock });
  const bridge = (self: string, nodes: readonly NodeTraits[] = three, p: EtcdQuorumPort = port()) =>
    new EtcdQuorumBridge(p, { cluster, self, quorumId: 'etcd', leaseMs: 3000, replication: opts.replication ?? 'sync', nodes });
  const advance = (ms: number): void => {
    nowMs += ms;
  };
  return { etcd, port, bridge, clock, advance };
}
type World = ReturnType<typeof world>;

const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });

async function ask(b: EtcdQuorumBridge, msg: PeerRequest): Promise<PeerReply> {
  const r = await b.ask(msg);
  assert.ok(r !== null);
  return r;
}

async function askVote(
  b: EtcdQuorumBridge, from: string, term: number, flushLsn: bigint, windowOpen = false,
): Promise<VoteReply> {
  const r = await ask(b, {
    ...envelope(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: flushLsn, timeline: 1,
    withdrawn: { flushLsn, timeline: 1, windowOpen },
  });
  assert.ok(r.kind === 'vote-reply');
  return r;
}

const recordUpdate = (from: string, term: number, claim: SyncClaim): PeerRequest => ({
  ...envelope(from, term), kind: 'sync-update', change: 'record', claim,
});

/** db-a (with `nodes` in its config) wins term 1, records `claim`, and is lost: its key's lease revoked. */
async function primaryLost(w: World, claim: SyncClaim, nodes: readonly NodeTraits[] = three): Promise<void> {
  const a = w.bridge('db-a', nodes);
  const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  assert.ok(won.kind === 'vote-reply' && won.granted, JSON.stringify(won));
  if (claim.k > 0) {
    const rec = await ask(a, recordUpdate('db-a', 1, claim));
    assert.ok(rec.kind === 'sync-update-reply' && rec.granted, JSON.stringify(rec));
  }
  const seen = await w.port().read();
  assert.ok(seen.ok && seen.view.leader !== null);
  w.etcd.revoke(seen.view.leader.lease);
}

describe('n-review: the election among N nodes on etcd', () => {
  it(
    'a standby that published, ranks first on a tie and then falls silent does not block the equally advanced one forever',
    async () => {
      const w = world();
      await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
      const b = w.bridge('db-b');
      const c = w.bridge('db-c');
      // Both withdrew at the same final position (the usual case: both received everything).
      const bFirst = await askVote(b, 'db-b', 2, 0x300n, true);
      assert.ok(!bFirst.granted && /waiting for the final positions of db-c/.test(bFirst.reason), bFirst.reason);
      const cFirst = await askVote(c, 'db-c', 2, 0x300n, true);
      assert.ok(!cFirst.granted && /db-b ranks first/.test(cFirst.reason), cFirst.reason);
      // db-b's host is lost now (or its agent restarts: see core-nodes-review.test.ts). db-c asks every
      // heartbeat for a minute; promoting it loses nothing (it flushed as much as db-b).
      let last: VoteReply = cFirst;
      for (let i = 0; i < 120 && !last.granted; i++) {
        w.advance(500);
        last = await askVote(c, 'db-c', 2, 0x300n, false);
      }
      assert.ok(last.granted, `db-c was never elected in a minute: ${last.reason}`);
    },
  );

  it(
    'a node outside the term record\'s grantors, which can never win, is not waited for',
    async () => {
      const w = world({ replication: 'async' });
      // Term 1 was made with three nodes: grantors db-b, db-c.
      await primaryLost(w, { members: [], k: 0 }, three);
      // db-d was added to every config since (a rolling restart), without a switchover.
      const four = [...three, traits('db-d')];
      const d = await askVote(w.bridge('db-d', four), 'db-d', 2, 0x900n, false);
      assert.ok(!d.granted && /not a grantor/.test(d.reason), d.reason);
      const b = await askVote(w.bridge('db-b', four), 'db-b', 2, 0x300n, false);
      const c = await askVote(w.bridge('db-c', four), 'db-c', 2, 0x200n, false);
      assert.ok(b.granted || c.granted, `nobody can win: db-b: ${b.reason}; db-c: ${c.reason}`);
    },
  );

  it(
    'a sync record write that etcd committed is never answered "not granted"',
    async () => {
      const w = world();
      // etcd takes the txn, but the answer comes after the client's deadline (an etcd leader change).
      class LateAnswer extends FakeEtcdQuorum {
        protected override async txnBy(
          what: string, compares: readonly Cmp[], success: readonly Op[],
        ): Promise<Outcome<TxnOutcome>> {
          const r = await super.txnBy(what, compares, success);
          return what === 'sync record' ? { ok: false, why: 'sync record: deadline exceeded' } : r;
        }
      }
      const a = w.bridge('db-a', three, new LateAnswer(w.etcd, { prefix, cluster, timeoutMs: 400, clock: w.clock }));
      const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
      assert.ok(won.kind === 'vote-reply' && won.granted, JSON.stringify(won));
      const any2 = { members: ['db-b', 'db-c'], k: 2 };
      // No answer (null) would do: the core must then take the write as maybe done.
      const r = await a.ask(recordUpdate('db-a', 1, any2));
      const reply = r === null ? null : r.kind === 'sync-update-reply' ? r : assert.fail(JSON.stringify(r));
      const stored = JSON.parse(w.etcd.get(keys.sync)?.toString() ?? 'null') as { k: number } | null;
      assert.ok(
        reply === null || reply.granted || stored?.k !== 2,
        `answered "${reply?.reason ?? ''}" (not granted) while etcd holds ANY 2 (db-b, db-c): the primary believes the old record and may lower its setting below it`,
      );
    },
  );

  it(
    'with three nodes a vote request without a final position never campaigns past the published positions',
    async () => {
      const w = world();
      await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
      // db-c withdrew at 0x900 and published; db-b, far behind, asks for term 2 without a position.
      const c = await askVote(w.bridge('db-c'), 'db-c', 2, 0x900n, true);
      assert.ok(!c.granted, c.reason);
      const plain = await ask(w.bridge('db-b'), {
        ...envelope('db-b', 2), kind: 'vote-request', lastTerm: 1, lsn: 0x100n, timeline: 1,
      });
      assert.ok(plain.kind === 'vote-reply');
      assert.ok(!plain.granted, `db-b won term 2 at 0x100 while db-c published 0x900: ${plain.reason}`);
    },
  );
});

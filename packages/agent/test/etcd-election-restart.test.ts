// Goal: a withdrawn standby whose agent restarts during an election keeps the eligibility its
// published position says (docs/design.md, "More than one standby"). The restarted agent no longer
// knows when it last streamed and asks with eligible false; its earlier run's position (same term,
// timeline and final LSN: the same withdrawal) is kept, not overwritten, so when it alone holds what
// the others lack (ANY 1, it strictly ahead) it still wins, and nobody waits for an operator. On the
// fake etcd.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLsn, PROTOCOL_VERSION, type PeerRequest, type VoteReply } from '@pgvip/shared';
import type { NodeTraits } from '@pgvip/shared/core';
import { clusterKeys, EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';

const prefix = '/pgvip';
const cluster = 'main';
const keys = clusterKeys(prefix, cluster);
const three: NodeTraits[] = ['db-a', 'db-b', 'db-c'].map((id) => ({ id, priority: 0, noFailover: false }));
const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });

function world() {
  const clock = (): number => 1000;
  const etcd = new FakeEtcd(clock);
  const port = () => new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock });
  const bridge = (self: string) =>
    new EtcdQuorumBridge(port(), { cluster, self, quorumId: 'etcd', leaseMs: 3000, replication: 'sync', nodes: three });
  return { etcd, port, bridge };
}

const vote = async (b: EtcdQuorumBridge, from: string, flushLsn: bigint, eligible: boolean): Promise<VoteReply> => {
  const msg: PeerRequest = {
    ...envelope(from, 2), kind: 'vote-request', lastTerm: 1, lsn: flushLsn, timeline: 1,
    withdrawn: { flushLsn, timeline: 1, windowOpen: false, eligible },
  };
  const r = await b.ask(msg);
  assert.ok(r?.kind === 'vote-reply', JSON.stringify(r));
  return r;
};

function published(w: ReturnType<typeof world>, node: string): { flushLsn: bigint; eligible: boolean } | null {
  const raw = w.etcd.get(keys.position(node));
  if (raw === null) return null;
  const p = JSON.parse(raw.toString()) as { flushLsn: string; eligible: boolean };
  return { flushLsn: parseLsn(p.flushLsn), eligible: p.eligible };
}

/** db-a won term 1, recorded ANY 1 (db-b, db-c), and is lost. */
async function primaryLost(w: ReturnType<typeof world>): Promise<void> {
  const a = w.bridge('db-a');
  await a.ask({ ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', change: 'record', claim: { members: ['db-b', 'db-c'], k: 1 } });
  const seen = await w.port().read();
  assert.ok(seen.ok && seen.view.leader !== null);
  w.etcd.revoke(seen.view.leader.lease);
}

describe('a withdrawn standby whose agent restarts keeps its published eligibility', () => {
  it('db-b, ahead and eligible, restarts before it wins: its position stays eligible and it wins', async () => {
    const w = world();
    await primaryLost(w);
    // db-b withdraws first (db-c silent, the window open: refused), then its agent restarts.
    const first = await vote(w.bridge('db-b'), 'db-b', 0x300n, true);
    assert.equal(first.granted, false);
    assert.deepEqual(published(w, 'db-b'), { flushLsn: 0x300n, eligible: true });
    await vote(w.bridge('db-c'), 'db-c', 0x200n, true);
    // The restarted agent asks with eligible false (it no longer knows when it last streamed).
    const again = await vote(w.bridge('db-b'), 'db-b', 0x300n, false);
    // Won (the txn deleted its position): without the earlier run's eligibility it would be refused
    // ("db-b had not streamed recently"), and db-c, behind it, may not win either (ANY 1 of b, c).
    assert.equal(again.granted, true, again.reason);
  });

  it('another final position (not the same withdrawal) or one published not eligible is not taken over', async () => {
    const w = world();
    await primaryLost(w);
    await vote(w.bridge('db-b'), 'db-b', 0x300n, true);
    await vote(w.bridge('db-b'), 'db-b', 0x310n, false);
    assert.deepEqual(published(w, 'db-b'), { flushLsn: 0x310n, eligible: false });
    const w2 = world();
    await primaryLost(w2);
    await vote(w2.bridge('db-b'), 'db-b', 0x300n, false);
    await vote(w2.bridge('db-b'), 'db-b', 0x300n, false);
    assert.deepEqual(published(w2, 'db-b'), { flushLsn: 0x300n, eligible: false });
  });
});

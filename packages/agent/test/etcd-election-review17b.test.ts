// Goal (review-17b G3): the election among N nodes on etcd under a config rolled out halfway. The
// campaign txn compares the position of every node the decision relied on: the sync record's members
// and the term record's grantors, not only the candidate's own config's eligible nodes. On the fake
// etcd. It failed on the bridge as reviewed (HEAD 8e7363a: "compared only db-b, db-c").
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, type PeerReply, type PeerRequest, type VoteReply } from '@pgvip/shared';
import type { NodeTraits, SyncClaim } from '@pgvip/shared/core';
import { EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';
import type { CampaignRequest } from '../src/quorum/etcd/port.js';

const prefix = '/pgvip';
const cluster = 'main';
const traits = (id: string, o: Partial<NodeTraits> = {}): NodeTraits => ({ id, priority: 0, noFailover: false, ...o });
const three = [traits('db-a'), traits('db-b'), traits('db-c')];
const four = [...three, traits('db-d')];
const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });

/** A port that records what every campaign txn compared. */
class Recording extends FakeEtcdQuorum {
  readonly campaigns: CampaignRequest[] = [];
  override campaign(req: CampaignRequest) {
    this.campaigns.push(req);
    return super.campaign(req);
  }
}

function world() {
  const nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const port = () => new Recording(etcd, { prefix, cluster, timeoutMs: 400, clock });
  const bridge = (self: string, nodes: readonly NodeTraits[], p = port()) =>
    new EtcdQuorumBridge(p, { cluster, self, quorumId: 'etcd', leaseMs: 3000, replication: 'sync', nodes });
  return { etcd, port, bridge };
}

async function ask(b: EtcdQuorumBridge, msg: PeerRequest): Promise<PeerReply> {
  const r = await b.ask(msg);
  assert.ok(r !== null);
  return r;
}

async function askVote(b: EtcdQuorumBridge, from: string, term: number, flushLsn: bigint): Promise<VoteReply> {
  const r = await ask(b, {
    ...envelope(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: flushLsn, timeline: 1,
    withdrawn: { flushLsn, timeline: 1, windowOpen: false },
  });
  assert.ok(r.kind === 'vote-reply');
  return r;
}

describe('n-review 17b: the campaign txn and config skew', () => {
  it('G3: a campaign compares the position key of every member of the sync record, not only its config\'s eligible nodes', async () => {
    const w = world();
    // db-a runs the new config (db-d added) and made term 1 with it: grantors b, c, d; it records
    // ANY 1 (b, c, d): a commit acknowledged by db-d alone is an acknowledged commit.
    const a = w.bridge('db-a', four);
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted, JSON.stringify(won));
    const claim: SyncClaim = { members: ['db-b', 'db-c', 'db-d'], k: 1 };
    const rec = await ask(a, { ...envelope('db-a', 1), kind: 'sync-update', change: 'record', claim });
    assert.ok(rec.kind === 'sync-update-reply' && rec.granted, JSON.stringify(rec));
    const seen = await w.port().read();
    assert.ok(seen.ok && seen.view.leader !== null);
    w.etcd.revoke(seen.view.leader.lease);
    // db-d and db-c (new config) withdraw and publish; db-b still runs the old config (three nodes).
    await askVote(w.bridge('db-d', four), 'db-d', 2, 0x100n);
    await askVote(w.bridge('db-c', four), 'db-c', 2, 0x100n);
    const bPort = w.port();
    const b = await askVote(w.bridge('db-b', three, bPort), 'db-b', 2, 0x200n);
    assert.ok(b.granted, b.reason);
    // db-b relied on db-d's final position (ANY 1 of 3 needs all three): its txn must compare it, or a
    // position db-d publishes again after db-b's read (it resumed, streamed, withdrew again) is missed.
    const compared = (bPort.campaigns.at(-1)?.positions ?? []).map((p) => p.node).sort();
    assert.deepEqual(compared, ['db-b', 'db-c', 'db-d'], `compared only ${compared.join(', ')}`);
  });
});

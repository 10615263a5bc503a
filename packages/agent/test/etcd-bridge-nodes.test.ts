// Goal: with three or more nodes the core's election messages get etcd's answers (docs/design.md,
// "More than one standby"): a withdrawn standby's vote publishes its final position and campaigns
// only when electionDecision says so, comparing every eligible node's position as read; its
// position-clear is an Ack that is refused once the term moved; the primary's sync-update 'record'
// writes the claim only as the holder of its term. On the fake etcd, which runs the protocol code of
// the real client.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLsn, PROTOCOL_VERSION, type PeerReply, type PeerRequest, type VoteReply } from '@pgvip/shared';
import type { NodeTraits, SyncClaim } from '@pgvip/shared/core';
import {
  clusterKeys, EtcdQuorumBridge, FakeEtcd, FakeEtcdQuorum, type CampaignRequest, type EtcdQuorumPort,
} from '../src/quorum/etcd/index.js';

const prefix = '/pgvip';
const cluster = 'main';
const keys = clusterKeys(prefix, cluster);
const traits = (id: string, o: Partial<NodeTraits> = {}): NodeTraits => ({ id, priority: 0, noFailover: false, ...o });
const three = [traits('db-a'), traits('db-b'), traits('db-c')];

function world(opts: { replication?: 'sync' | 'async'; nodes?: readonly NodeTraits[] } = {}) {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const port = (): EtcdQuorumPort => new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock });
  const bridge = (self: string, p: EtcdQuorumPort = port(), nodes: readonly NodeTraits[] = opts.nodes ?? three) =>
    new EtcdQuorumBridge(p, { cluster, self, quorumId: 'etcd', leaseMs: 3000, replication: opts.replication ?? 'sync', nodes });
  return { etcd, port, bridge, clock, advance: (ms: number) => (nowMs += ms) };
}

const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });
const withdrawnVote = (from: string, term: number, flushLsn: bigint, windowOpen: boolean): PeerRequest => ({
  ...envelope(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: flushLsn, timeline: 1,
  withdrawn: { flushLsn, timeline: 1, windowOpen },
});

async function ask(b: EtcdQuorumBridge, msg: PeerRequest): Promise<PeerReply> {
  const r = await b.ask(msg);
  assert.ok(r !== null);
  return r;
}

async function askVote(
  b: EtcdQuorumBridge, from: string, term: number, flushLsn: bigint, windowOpen = false,
): Promise<VoteReply> {
  const r = await ask(b, withdrawnVote(from, term, flushLsn, windowOpen));
  assert.ok(r.kind === 'vote-reply');
  return r;
}

const recordUpdate = (from: string, term: number, claim: SyncClaim): PeerRequest => ({
  ...envelope(from, term), kind: 'sync-update', change: 'record', claim,
});

/** db-a wins term 1, records `claim`, and is lost: its leader key's lease is revoked. */
async function primaryLost(w: ReturnType<typeof world>, claim: SyncClaim): Promise<void> {
  const a = w.bridge('db-a');
  const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
  assert.ok(won.kind === 'vote-reply' && won.granted, JSON.stringify(won));
  const rec = await ask(a, recordUpdate('db-a', 1, claim));
  assert.ok(rec.kind === 'sync-update-reply' && rec.granted, JSON.stringify(rec));
  const seen = await w.port().read();
  assert.ok(seen.ok && seen.view.leader !== null);
  w.etcd.revoke(seen.view.leader.lease);
}

function position(w: ReturnType<typeof world>, node: string): { term: number; flushLsn: bigint } | null {
  const raw = w.etcd.get(keys.position(node));
  if (raw === null) return null;
  const p = JSON.parse(raw.toString()) as { term: number; flushLsn: string };
  return { term: p.term, flushLsn: parseLsn(p.flushLsn) };
}

describe('the election among N nodes on etcd', () => {
  it('the most advanced standby wins once the other published; the other yields; a re-ask writes nothing', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    const b = w.bridge('db-b');
    const c = w.bridge('db-c');
    const early = await askVote(c, 'db-c', 2, 0x300n, true);
    assert.ok(!early.granted && /waiting for the final positions of db-b/.test(early.reason), early.reason);
    assert.equal(early.term, 1, 'the refusal carries the term etcd holds');
    const rev = w.etcd.read([keys.position('db-c')])[0]?.modRevision;
    assert.notEqual(rev, undefined, 'db-c published its final position');
    const again = await askVote(c, 'db-c', 2, 0x300n, true);
    assert.ok(!again.granted);
    assert.equal(w.etcd.read([keys.position('db-c')])[0]?.modRevision, rev, 'asking again did not write the position again');
    const yields = await askVote(b, 'db-b', 2, 0x200n, true);
    assert.ok(!yields.granted && /db-c ranks first/.test(yields.reason), yields.reason);
    const won = await askVote(c, 'db-c', 2, 0x300n, true);
    assert.ok(won.granted && won.term === 2 && won.primaryOfTerm === 'db-c', JSON.stringify(won));
    const v = await w.port().read();
    assert.ok(v.ok);
    assert.deepEqual(v.view.term?.value, { term: 2, primary: 'db-c', grantors: ['db-a', 'db-b'] });
    assert.deepEqual(v.view.sync?.value, { members: [], k: 0, term: 2 });
    assert.deepEqual(v.view.positions.map((p) => p.node), ['db-b'], 'the winner\'s position went with its campaign');
    const late = await askVote(b, 'db-b', 2, 0x200n, false);
    assert.ok(!late.granted && late.term === 2 && late.primaryOfTerm === 'db-c', JSON.stringify(late));
  });

  it('ANY 1 of two members: the candidate needs the other member\'s final position, even after the window', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    const b = w.bridge('db-b');
    const r = await askVote(b, 'db-b', 2, 0x200n, false);
    assert.ok(!r.granted && /2 members' final positions are needed, 1 known/.test(r.reason), r.reason);
    assert.deepEqual(position(w, 'db-b'), { term: 1, flushLsn: 0x200n });
    // ANY 2: every acknowledged commit is on both, so one final position suffices.
    const w2 = world();
    await primaryLost(w2, { members: ['db-b', 'db-c'], k: 2 });
    const won = await askVote(w2.bridge('db-b'), 'db-b', 2, 0x200n, false);
    assert.ok(won.granted, won.reason);
  });

  it('a standby outside the sync record never campaigns; async mode elects the best published after the window', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b'], k: 1 });
    const c = await askVote(w.bridge('db-c'), 'db-c', 2, 0x900n, false);
    assert.ok(!c.granted && /db-c is not in the sync record/.test(c.reason), c.reason);
    const a = world({ replication: 'async' });
    await primaryLost(a, { members: [], k: 0 });
    const silentOther = await askVote(a.bridge('db-b'), 'db-b', 2, 0x100n, false);
    assert.ok(silentOther.granted, `the window closed: db-c is passed over (${silentOther.reason})`);
  });

  it('a position published after the candidate read it fails the campaign; the candidate yields on the next ask', async () => {
    const w = world({ replication: 'async' });
    await primaryLost(w, { members: [], k: 0 });
    // db-c publishes a more advanced position between db-b's read and its campaign txn.
    class Racing extends FakeEtcdQuorum {
      override async campaign(req: CampaignRequest): ReturnType<EtcdQuorumPort['campaign']> {
        const published = await w.port().publishPosition('db-c', { term: 1, timeline: 1, flushLsn: 0x900n, eligible: true });
        assert.ok(published.ok);
        return super.campaign(req);
      }
    }
    const b = w.bridge('db-b', new Racing(w.etcd, { prefix, cluster, timeoutMs: 400, clock: w.clock }));
    const r = await askVote(b, 'db-b', 2, 0x100n, false);
    assert.ok(!r.granted && /final position of db-c changed since it was read/.test(r.reason), r.reason);
    const next = await askVote(w.bridge('db-b'), 'db-b', 2, 0x100n, false);
    assert.ok(!next.granted && /db-c ranks first/.test(next.reason), next.reason);
  });

  it('a noFailover node is never waited for, never compared, never a grantor', async () => {
    const nodes = [traits('db-a'), traits('db-b'), traits('db-c'), traits('db-r', { noFailover: true })];
    const w = world({ replication: 'async', nodes });
    await primaryLost(w, { members: [], k: 0 });
    await askVote(w.bridge('db-c'), 'db-c', 2, 0x100n, true);
    const won = await askVote(w.bridge('db-b'), 'db-b', 2, 0x200n, true);
    assert.ok(won.granted, won.reason);
    const v = await w.port().read();
    assert.ok(v.ok);
    assert.deepEqual(v.view.term?.value.grantors, ['db-a', 'db-c']);
  });

  it('position-clear: accepted while the term holds (the position goes); refused with the new term once it moved', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    const b = w.bridge('db-b');
    await askVote(b, 'db-b', 2, 0x200n, true);
    assert.notEqual(position(w, 'db-b'), null);
    const cleared = await ask(b, { ...envelope('db-b', 1), kind: 'position-clear' });
    assert.ok(cleared.kind === 'ack' && cleared.accepted, JSON.stringify(cleared));
    assert.equal(position(w, 'db-b'), null);
    // Withdrawn again: the position is published again (the bridge forgot what it cleared).
    await askVote(b, 'db-b', 2, 0x200n, true);
    assert.notEqual(position(w, 'db-b'), null);
    await askVote(w.bridge('db-c'), 'db-c', 2, 0x300n, true);
    assert.ok((await askVote(w.bridge('db-c'), 'db-c', 2, 0x300n, true)).granted);
    const refused = await ask(b, { ...envelope('db-b', 1), kind: 'position-clear' });
    assert.ok(refused.kind === 'ack' && !refused.accepted && refused.term === 2, JSON.stringify(refused));
    assert.notEqual(position(w, 'db-b'), null, 'the refused clear deleted nothing');
    // In the new term (following db-c), the stale position is taken back.
    const inNew = await ask(b, { ...envelope('db-b', 2), kind: 'position-clear' });
    assert.ok(inNew.kind === 'ack' && inNew.accepted, JSON.stringify(inNew));
    assert.equal(position(w, 'db-b'), null);
  });

  it('two nodes: the records keep the forms an earlier release reads (no grantors, {standby, term})', async () => {
    const w = world({ nodes: [traits('db-a'), traits('db-b')] });
    const a = w.bridge('db-a');
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted);
    assert.equal(w.etcd.get(keys.term)?.toString(), '{"term":1,"primary":"db-a"}');
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"standby":null,"term":1}');
    const restore = await ask(a, { ...envelope('db-a', 1), kind: 'sync-update', change: 'restore', standby: 'db-b' });
    assert.ok(restore.kind === 'sync-update-reply' && restore.granted);
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"standby":"db-b","term":1}');
    const h = await a.handover(1, 'db-b');
    assert.ok(h.ok, h.detail);
    assert.equal(w.etcd.get(keys.term)?.toString(), '{"term":2,"primary":"db-b"}');
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"standby":null,"term":2}');
  });

  it('a standby ranked first that does not win within passOverAfterMs is passed over when safety allows', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    const b = w.bridge('db-b');
    const c = w.bridge('db-c');
    // Both withdrew at the same position; db-b ranks first by its id, then its host dies.
    await askVote(b, 'db-b', 2, 0x300n, true);
    const first = await askVote(c, 'db-c', 2, 0x300n, true);
    assert.ok(!first.granted && /db-b ranks first/.test(first.reason), first.reason);
    w.advance(2900);
    const still = await askVote(c, 'db-c', 2, 0x300n, false);
    assert.ok(!still.granted && /db-b ranks first/.test(still.reason), `not before leaseMs: ${still.reason}`);
    w.advance(200);
    const won = await askVote(c, 'db-c', 2, 0x300n, false);
    assert.ok(won.granted && /db-b ranked first but did not win/.test(won.reason), won.reason);
  });

  it('a more advanced standby that falls silent is passed over only where no acknowledged commit can be lost', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    await askVote(w.bridge('db-b'), 'db-b', 2, 0x400n, true);
    const c = w.bridge('db-c');
    await askVote(c, 'db-c', 2, 0x300n, true);
    w.advance(10_000);
    const r = await askVote(c, 'db-c', 2, 0x300n, false);
    assert.ok(!r.granted && /db-b flushed more/.test(r.reason), `sync: db-b may hold acknowledged commits db-c lacks: ${r.reason}`);
  });

  it('a node outside the term record\'s grantors is neither ranked nor waited for, and cannot campaign', async () => {
    const w = world({ replication: 'async' });
    await primaryLost(w, { members: [], k: 0 });
    const four = [...three, traits('db-d')];
    const d = await askVote(w.bridge('db-d', w.port(), four), 'db-d', 2, 0x900n, false);
    assert.ok(!d.granted && /db-d is not a grantor of term 1 \(db-b, db-c\)/.test(d.reason), d.reason);
    const b = await askVote(w.bridge('db-b', w.port(), four), 'db-b', 2, 0x300n, false);
    assert.ok(b.granted, `db-d, which can never win term 2, does not rank first: ${b.reason}`);
  });

  it('a claim write whose answer was lost is read back: granted when etcd holds it, no answer otherwise', async () => {
    const w = world();
    let lose = false;
    let apply = true;
    class LostAnswer extends FakeEtcdQuorum {
      override async setSync(holder: Parameters<EtcdQuorumPort['setSync']>[0], claim: Parameters<EtcdQuorumPort['setSync']>[1]) {
        if (!lose) return super.setSync(holder, claim);
        if (apply) await super.setSync(holder, claim);
        return { ok: false as const, why: 'sync record: etcd did not answer within 400 ms', view: null };
      }
    }
    const a = w.bridge('db-a', new LostAnswer(w.etcd, { prefix, cluster, timeoutMs: 400, clock: w.clock }));
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted);
    lose = true;
    const committed = await a.ask(recordUpdate('db-a', 1, { members: ['db-c', 'db-b'], k: 2 }));
    assert.ok(committed?.kind === 'sync-update-reply' && committed.granted, JSON.stringify(committed));
    apply = false;
    const unknown = await a.ask(recordUpdate('db-a', 1, { members: ['db-b'], k: 1 }));
    assert.equal(unknown, null, 'not seen in etcd: it may still commit, so no answer rather than a refusal');
  });

  it('a claim write etcd applies late, after a newer record was written, fails instead of landing over it', async () => {
    const w = world();
    let late: (() => Promise<unknown>) | null = null;
    class Delayed extends FakeEtcdQuorum {
      override setSync(...args: Parameters<EtcdQuorumPort['setSync']>): ReturnType<EtcdQuorumPort['setSync']> {
        if (late !== null || typeof args[1] !== 'object' || args[1]?.k !== 1 || args[1].members.length !== 1) {
          return super.setSync(...args);
        }
        // etcd holds the proposal (its leader frozen): the client's deadline passes, etcd applies it later.
        late = () => super.setSync(...args);
        return Promise.resolve({ ok: false as const, why: 'sync record: etcd did not answer within 400 ms', view: null });
      }
    }
    const a = w.bridge('db-a', new Delayed(w.etcd, { prefix, cluster, timeoutMs: 400, clock: w.clock }));
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted);
    const both = await a.ask(recordUpdate('db-a', 1, { members: ['db-b', 'db-c'], k: 1 }));
    assert.ok(both?.kind === 'sync-update-reply' && both.granted);
    assert.equal(await a.ask(recordUpdate('db-a', 1, { members: ['db-c'], k: 1 })), null, 'no answer: unknown');
    // The primary writes a record again (as the core must before a setting that does not imply both).
    const again = await a.ask(recordUpdate('db-a', 1, { members: ['db-b', 'db-c'], k: 1 }));
    assert.ok(again?.kind === 'sync-update-reply' && again.granted, JSON.stringify(again));
    assert.ok(late !== null);
    const landed = (await (late as () => Promise<{ ok: boolean }>)()).ok;
    assert.equal(landed, false, 'the late txn compared the record it read, which is gone');
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"members":["db-b","db-c"],"k":1,"term":1}');
  });

  it('two nodes: a restore etcd applies late, after the degrade that followed it, fails (sim seed 6199)', async () => {
    const w = world({ nodes: [traits('db-a'), traits('db-b')] });
    let late: (() => Promise<unknown>) | null = null;
    class Delayed extends FakeEtcdQuorum {
      override setSync(...args: Parameters<EtcdQuorumPort['setSync']>): ReturnType<EtcdQuorumPort['setSync']> {
        if (late !== null || args[1] !== 'db-b') return super.setSync(...args);
        late = () => super.setSync(...args);
        return Promise.resolve({ ok: false as const, why: 'sync record: etcd did not answer within 400 ms', view: null });
      }
    }
    const a = w.bridge('db-a', new Delayed(w.etcd, { prefix, cluster, timeoutMs: 400, clock: w.clock }));
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted);
    const restore = await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', change: 'restore', standby: 'db-b' });
    assert.ok(restore?.kind === 'sync-update-reply' && !restore.granted, JSON.stringify(restore));
    const degrade = await a.ask({ ...envelope('db-a', 1), kind: 'sync-update', change: 'degrade', standby: 'db-b' });
    assert.ok(degrade?.kind === 'sync-update-reply' && degrade.granted, JSON.stringify(degrade));
    assert.ok(late !== null);
    const landed = (await (late as () => Promise<{ ok: boolean }>)()).ok;
    assert.equal(landed, false, 'the late restore compared the record it read, which the degrade replaced');
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"standby":null,"term":1}');
  });

  it('with three nodes a vote without a final position creates no term (only a won term is asked again)', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    const plain = await ask(w.bridge('db-b'), { ...envelope('db-b', 2), kind: 'vote-request', lastTerm: 1, lsn: 0x100n, timeline: 1 });
    assert.ok(plain.kind === 'vote-reply' && !plain.granted && /needs the candidate's final position/.test(plain.reason), JSON.stringify(plain));
    const b = w.bridge('db-b');
    await askVote(b, 'db-b', 2, 0x300n, true);
    await askVote(w.bridge('db-c'), 'db-c', 2, 0x200n, true);
    assert.ok((await askVote(b, 'db-b', 2, 0x300n, true)).granted);
    const again = await ask(b, { ...envelope('db-b', 2), kind: 'vote-request', lastTerm: 1, lsn: 0x300n, timeline: 1 });
    assert.ok(again.kind === 'vote-reply' && again.granted, `asking again for the term it won: ${JSON.stringify(again)}`);
  });

  it('a member that may not win publishes its final position, is never yielded to, and never campaigns', async () => {
    const w = world();
    await primaryLost(w, { members: ['db-b', 'db-c'], k: 1 });
    // db-c is ahead but its own checks found a blocker (say, it had not streamed within the grace).
    const blocked = { ...withdrawnVote('db-c', 2, 0x900n, false), withdrawn: { flushLsn: 0x900n, timeline: 1, windowOpen: false, eligible: false } };
    const c = await ask(w.bridge('db-c'), blocked as PeerRequest);
    assert.ok(c.kind === 'vote-reply' && !c.granted && /db-c had not streamed recently/.test(c.reason), JSON.stringify(c));
    assert.deepEqual(position(w, 'db-c'), { term: 1, flushLsn: 0x900n });
    // db-b needs db-c's final position (ANY 1 of 2) and has it, but db-c flushed more: db-b may not win.
    const b = await askVote(w.bridge('db-b'), 'db-b', 2, 0x300n, false);
    assert.ok(!b.granted && /db-c flushed more/.test(b.reason), b.reason);
    // At the same position, db-b wins without waiting for db-c, which ranks nowhere.
    const w2 = world();
    await primaryLost(w2, { members: ['db-b', 'db-c'], k: 1 });
    await ask(w2.bridge('db-c'), { ...blocked, withdrawn: { ...blocked.withdrawn, flushLsn: 0x300n } } as PeerRequest);
    const b2 = await askVote(w2.bridge('db-b'), 'db-b', 2, 0x300n, true);
    assert.ok(b2.granted, b2.reason);
  });

  it('replies carry the term record\'s grantors (N nodes), so the primary counts the term\'s grantors', async () => {
    const grantorsOf = (r: PeerReply): unknown => (r as { grantorsOfTerm?: unknown }).grantorsOfTerm;
    const w = world();
    const a = w.bridge('db-a');
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.deepEqual(grantorsOf(won), ['db-b', 'db-c']);
    const lease = await ask(a, { ...envelope('db-a', 1), kind: 'lease-request', seq: 1, lsn: 0n, timeline: 1, syncStandby: null });
    assert.ok(lease.kind === 'lease-reply' && lease.granted);
    assert.deepEqual(grantorsOf(lease), ['db-b', 'db-c']);
    const refused = await askVote(w.bridge('db-b'), 'db-b', 2, 0x100n, true);
    assert.ok(!refused.granted && refused.term === 1);
    assert.deepEqual(grantorsOf(refused), ['db-b', 'db-c'], 'a refusal names the grantors of the term it carries');
    const two = world({ nodes: [traits('db-a'), traits('db-b')] });
    const twoWon = await ask(two.bridge('db-a'), { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.equal(grantorsOf(twoWon), undefined, 'two nodes: the reply as before');
  });

  it('sync-update record: written by the holder of the term only', async () => {
    const w = world();
    const a = w.bridge('db-a');
    const won = await ask(a, { ...envelope('db-a', 1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 });
    assert.ok(won.kind === 'vote-reply' && won.granted);
    const r = await ask(a, recordUpdate('db-a', 1, { members: ['db-c', 'db-b'], k: 2 }));
    assert.ok(r.kind === 'sync-update-reply' && r.granted, JSON.stringify(r));
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"members":["db-b","db-c"],"k":2,"term":1}');
    const notHolder = await ask(w.bridge('db-b'), recordUpdate('db-b', 1, { members: ['db-c'], k: 1 }));
    assert.ok(notHolder.kind === 'sync-update-reply' && !notHolder.granted, JSON.stringify(notHolder));
    const stale = await ask(a, recordUpdate('db-a', 2, { members: ['db-c'], k: 1 }));
    assert.ok(stale.kind === 'sync-update-reply' && !stale.granted);
    assert.equal(w.etcd.get(keys.sync)?.toString(), '{"members":["db-b","db-c"],"k":2,"term":1}', 'refused updates changed nothing');
  });
});

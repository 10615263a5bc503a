// Goal: on etcd, the primary's lease renewals get through a lossy network (issue 18, the etcd flap-loss
// row: 6 lapses in a minute at the default timings). A renewal is a keepalive and a linearizable read
// through etcd's leader; within requestTimeoutMs (150 ms, under TCP's 200 ms minimum retransmission
// timeout) one lost packet failed it, and while the standby was lost the primary's sync updates, one
// every heartbeat, held the route's queue so that no lease request got its turn in time. A late grant
// is safe (the core counts it from its own request's send, matched by seq); a late vote is not, and
// keeps requestTimeoutMs (etcd-agent-quorum.test.ts).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import { PROTOCOL_VERSION, defaultTimings, leaseValidMs, type PeerRequest } from '@pgvip/shared';
import { renewalWaitBoundMs } from '@pgvip/shared/core';
import { EtcdAgentQuorum } from '../src/quorum/etcd/agent-quorum.js';
import { FakeEtcd, FakeEtcdQuorum, type EtcdQuorumPort } from '../src/quorum/etcd/index.js';
import type { Holder, KeepAlive, LeaseId } from '../src/quorum/etcd/port.js';

const prefix = '/pgvip';
const cluster = 'main';
const envelope = (term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from: 'db-a' });
const lease = (seq: number): PeerRequest => ({ ...envelope(1), kind: 'lease-request', seq, lsn: 0n, timeline: 1, syncStandby: null });
const vote: PeerRequest = { ...envelope(1), kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 };
const degrade: PeerRequest = { ...envelope(1), kind: 'sync-update', standby: 'db-b', change: 'degrade' };

/** The fake etcd on real time: renewals answer after `renewMs`, sync txns after `syncMs`; keepalive deadlines kept. */
class SlowFake extends FakeEtcdQuorum {
  renewMs = 0;
  syncMs = 0;
  readonly keepAliveLeftMs: number[] = [];

  override async renew(holder: Holder, withinMs?: number): ReturnType<FakeEtcdQuorum['renew']> {
    await sleep(this.renewMs);
    return super.renew(holder, withinMs);
  }

  override async setSync(...args: Parameters<FakeEtcdQuorum['setSync']>): ReturnType<FakeEtcdQuorum['setSync']> {
    await sleep(this.syncMs);
    return super.setSync(...args);
  }

  protected override keepAliveBy(l: LeaseId, deadlineAt?: number): Promise<KeepAlive> {
    this.keepAliveLeftMs.push((deadlineAt ?? Number.NaN) - this.now());
    return super.keepAliveBy(l);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function primary(t: TestContext): Promise<{ q: EtcdAgentQuorum; port: SlowFake }> {
  const clock = (): number => performance.now();
  const timeoutMs = defaultTimings.requestTimeoutMs;
  const port = new SlowFake(new FakeEtcd(clock), { prefix, cluster, timeoutMs, clock });
  const q = new EtcdAgentQuorum(port as EtcdQuorumPort, {
    cluster, self: 'db-a', quorumId: 'etcd', timings: defaultTimings, replication: 'sync', clock,
    logger: pino({ level: 'silent' }),
  });
  t.after(() => q.close());
  const won = await q.ask(vote);
  assert.ok(won?.kind === 'vote-reply' && won.granted, JSON.stringify(won));
  return { q, port };
}

describe('lease renewals on a lossy etcd', () => {
  it('the bound is a quarter of the lease validity, never below requestTimeoutMs', () => {
    assert.equal(renewalWaitBoundMs(defaultTimings), Math.round(leaseValidMs(defaultTimings) / 4));
    assert.ok(renewalWaitBoundMs(defaultTimings) > 2 * defaultTimings.requestTimeoutMs + 200);
    const slowRequests = { ...defaultTimings, requestTimeoutMs: 900 };
    assert.equal(renewalWaitBoundMs(slowRequests), 900);
  });

  it('a renewal etcd answers after requestTimeoutMs (a retransmitted packet) still reaches the core as a grant', async (t) => {
    const { q, port } = await primary(t);
    // Past the 150 ms a vote may take (a retransmission alone waits 200 ms); well within the bound.
    port.renewMs = defaultTimings.requestTimeoutMs + 60;
    const reply = await q.ask(lease(1));
    assert.ok(reply?.kind === 'lease-reply' && reply.granted && reply.seq === 1, `a late grant is lost: ${JSON.stringify(reply)}`);
  });

  it('the renewal\'s etcd calls get the lease request\'s bound as their deadline, not requestTimeoutMs', async (t) => {
    const { q, port } = await primary(t);
    const reply = await q.ask(lease(1));
    assert.ok(reply?.kind === 'lease-reply' && reply.granted);
    const left = port.keepAliveLeftMs.at(-1)!;
    assert.ok(left > defaultTimings.requestTimeoutMs + 200, `the keepalive had ${left} ms`);
    assert.ok(left <= renewalWaitBoundMs(defaultTimings), `the keepalive had ${left} ms, more than the bound`);
  });

  it('a lease request asked while a sync update waits on etcd is answered in time, not queued behind it', async (t) => {
    const { q, port } = await primary(t);
    // The degrade's txn takes longer than a lease request may wait: queued behind it, the renewal's
    // turn came after its bound and it was never sent (null), heartbeat after heartbeat.
    port.syncMs = renewalWaitBoundMs(defaultTimings) + 200;
    const sync = q.ask(degrade);
    const reply = await q.ask(lease(1));
    assert.ok(reply?.kind === 'lease-reply' && reply.granted && reply.seq === 1, `renewal behind the sync update: ${JSON.stringify(reply)}`);
    assert.equal(await sync, null, 'the sync update itself answered after its bound');
  });

  it('sync updates still run one at a time, in the order asked', async (t) => {
    const { q, port } = await primary(t);
    port.syncMs = 30;
    const restore: PeerRequest = { ...envelope(1), kind: 'sync-update', standby: 'db-b', change: 'restore' };
    const [first, second] = await Promise.all([q.ask(restore), q.ask(degrade)]);
    assert.ok(first?.kind === 'sync-update-reply' && first.granted, JSON.stringify(first));
    // Run together, both would have read the same record revision and the second would be refused.
    assert.ok(second?.kind === 'sync-update-reply' && second.granted, JSON.stringify(second));
  });
});

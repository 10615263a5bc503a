// Goal: the route's bound on an answer (within requestTimeoutMs of the ask) runs on the timer it is
// given, on the same time as its clock. The simulator gives it simulated time: a real timer there
// cut an answer whenever the host stalled longer than the bound, so a seed did not replay byte for
// byte on a loaded machine (review-17b G8).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { PROTOCOL_VERSION, defaultTimings } from '@pgvip/shared';
import { EtcdAgentQuorum } from '../src/quorum/etcd/agent-quorum.js';
import { FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';

const vote = { v: PROTOCOL_VERSION, cluster: 'main', term: 1, from: 'db-a', kind: 'vote-request', lastTerm: 0, lsn: 0n, timeline: 1 } as const;

/** A port whose reads take `stallMs` of real time while the agent's clock stands still (a stalled host). */
class StalledRead extends FakeEtcdQuorum {
  stallMs = 0;
  override async read(...args: Parameters<FakeEtcdQuorum['read']>): ReturnType<FakeEtcdQuorum['read']> {
    if (this.stallMs > 0) await new Promise((r) => setTimeout(r, this.stallMs));
    return super.read(...args);
  }
}

function route(timer?: (ms: number, fire: () => void) => () => void) {
  const clock = (): number => 1000;
  const port = new StalledRead(new FakeEtcd(clock), { prefix: '/pgvip', cluster: 'main', timeoutMs: 60_000, clock });
  const q = new EtcdAgentQuorum(port, {
    cluster: 'main', self: 'db-a', quorumId: 'etcd', timings: defaultTimings, replication: 'async',
    logger: pino({ level: 'silent' }), clock, ...(timer === undefined ? {} : { timer }),
  });
  return { q, port };
}

test('an answer within the bound on the given timer is not cut by real time passing', async (t) => {
  const pending: Array<() => void> = [];
  const { q, port } = route((_ms, fire) => {
    pending.push(fire);
    return () => undefined;
  });
  t.after(() => q.close());
  port.stallMs = defaultTimings.requestTimeoutMs + 150;
  const reply = await q.ask(vote);
  assert.ok(reply?.kind === 'vote-reply' && reply.granted, `answered on the clock's time, not real time: ${JSON.stringify(reply)}`);
  assert.equal(pending.length, 1, 'one bound armed for the ask');
});

test('the same bound on its timer cuts an answer that comes after it', async (t) => {
  const { q, port } = route((ms, fire) => {
    assert.equal(ms, defaultTimings.requestTimeoutMs);
    fire();
    return () => undefined;
  });
  t.after(() => q.close());
  port.stallMs = 20;
  assert.equal(await q.ask(vote), null);
});

test('by default the bound is a real timer', async (t) => {
  const { q, port } = route();
  t.after(() => q.close());
  port.stallMs = defaultTimings.requestTimeoutMs + 150;
  assert.equal(await q.ask(vote), null);
});

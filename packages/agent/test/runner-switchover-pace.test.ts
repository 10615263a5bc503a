// Goal: once a switchover's fence has taken, the runner looks at the standby's replay within
// switchoverCatchUpPollMs, not at the tick it had planned a heartbeat ahead before the switchover
// began: from the fence on, writes are down, so every millisecond of that wait is write gap
// (docs/design.md, "Default timings and why they are both fast and calm"). The real runner and core,
// fake PostgreSQL servers, and a scripted witness and standby; a 2 s heartbeat makes the wait plain.
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import {
  PROTOCOL_VERSION, defaultTimings, type AgentStatus, type PeerClient, type PeerReply, type PeerRequest,
} from '@pgvip/shared';
import { monotonicNow } from '../src/clock.js';
import { FakePostgres } from '../src/postgres/fake.js';
import { switchoverCatchUpPollMs } from '../src/runner.js';
import { cluster, startScriptedPrimary } from './runner-harness.js';

const timings = { ...defaultTimings, heartbeatMs: 2000, requestTimeoutMs: 150, leaseMs: 6000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The witness grants every lease; db-b is a streaming standby of db-a whose replay reaches the final
 * LSN once `replayed()` is called (as a standby replays the fenced primary's last WAL after the fence).
 */
function scriptedPeers(clock: () => number) {
  const statusAt: number[] = [];
  let replayLsn = 0n;
  const status = (): AgentStatus => ({
    v: PROTOCOL_VERSION, cluster, term: 1, from: 'db-b', primaryOfTerm: 'db-a', role: 'standby',
    pg: {
      running: true, inRecovery: true, writable: false, timeline: 1, lsn: 0xffffffffn, replayLsn,
      streaming: true, syncStandby: null, standbyInSync: false,
    },
    leaseRemainingMs: 0, promotionBlocker: null, maintenance: false,
  });
  const client = {
    async status() {
      statusAt.push(clock());
      return status();
    },
    async send(to: string, msg: PeerRequest): Promise<PeerReply> {
      const envelope = { v: PROTOCOL_VERSION, cluster, term: 1, from: to };
      if (msg.kind !== 'lease-request') return { ...envelope, kind: 'ack', accepted: true, reason: 'noted' };
      return { ...envelope, kind: 'lease-reply', seq: msg.seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
    },
    close: async () => undefined,
  } as unknown as PeerClient;
  return { client, statusAt, replayed: () => (replayLsn = 0xffffffffn) };
}

function startPrimary(t: TestContext) {
  const peers = scriptedPeers(monotonicNow);
  const { runner, clock } = startScriptedPrimary(t, {
    timings, peers: peers.client, makePg: (network, at) => new FakePostgres({ network, nodeName: 'db-a', endpoint: at }),
  });
  return { runner, peers, clock };
}

it('a switchover whose fence took looks at the standby within switchoverCatchUpPollMs, not a heartbeat later', { timeout: 30_000 }, async (t) => {
  const { runner, peers, clock } = startPrimary(t);
  // A primary with its lease and the standby's status from a first look; the next tick is up to 2 s away.
  const deadline = clock() + 4 * timings.heartbeatMs;
  while (!(runner.state.lease.held !== null && runner.state.peer !== null && runner.status().role === 'primary')) {
    assert.ok(clock() < deadline, `no writable primary with a lease: ${runner.status().role}`);
    await sleep(20);
  }
  await sleep(100); // the tick that just ran has planned the next one a heartbeat ahead
  const askedAt = clock();
  const reply = runner.handleRequest({ v: PROTOCOL_VERSION, cluster, term: 1, from: 'witness', kind: 'switchover-request', to: 'db-b' });
  assert.ok(reply.kind === 'ack' && reply.accepted, JSON.stringify(reply));
  peers.replayed();
  while (runner.state.switchover?.step === 'fencing' && clock() - askedAt < timings.heartbeatMs) await sleep(5);
  assert.equal(runner.state.switchover?.step, 'catching-up', 'the fence took');
  const fencedAt = clock();
  while (!peers.statusAt.some((at) => at > fencedAt) && clock() - fencedAt < timings.heartbeatMs) await sleep(5);
  const look = peers.statusAt.find((at) => at > fencedAt);
  assert.ok(look !== undefined && look - fencedAt <= switchoverCatchUpPollMs + 100,
    `the first look at the standby after the fence came ${look === undefined ? 'not within a heartbeat' : `${Math.round(look - fencedAt)} ms`} after it`);
  // And the switchover goes on from that look: the standby replayed everything, the handover follows.
  while (runner.state.durable.term === 1 && clock() - fencedAt < timings.heartbeatMs) await sleep(5);
  assert.equal(runner.state.durable.term, 2);
  assert.equal(runner.state.durable.primaryOfTerm, 'db-b');
});

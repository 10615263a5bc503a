// Goal: a look at a stalled PostgreSQL (a disk stall: the server accepts nothing and answers
// nothing) never holds the primary's heartbeat, and so its lease renewals, past renewalWaitBoundMs. The
// SQL timeout (queryMs, 3 s) exceeds the lease at the default timings: a look bounded only by it let
// the lease lapse during a stall, and the standby took over before the primary had decided anything
// (lab row 15b). With the bound, renewals go on while the write probe decides, as the design says:
// a stall is not a crash. The real runner and core at the default timings, a fake PostgreSQL whose
// stalled calls take their whole time bound, and a scripted witness and standby.
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import {
  PROTOCOL_VERSION, defaultTimings, type AgentStatus, type PeerClient, type PeerReply, type PeerRequest,
} from '@pgvip/shared';
import { leaseValidMs, renewalWaitBoundMs } from '@pgvip/shared/core';
import { monotonicNow } from '../src/clock.js';
import { FakePostgres } from '../src/postgres/fake.js';
import type { PgObservation, WriteProbeOptions, WriteProbeResult } from '../src/postgres/port.js';
import { defaultPostgresTimeouts } from '../src/postgres/config.js';
import { cluster, startScriptedPrimary } from './runner-harness.js';

const timings = defaultTimings;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stalled call takes its whole bound, as on a SIGSTOPped server (the fake answers at once). */
class SlowStallPostgres extends FakePostgres {
  stalled = false;
  readonly looks: number[] = [];

  override stall(): void {
    this.stalled = true;
    super.stall();
  }

  override async observe(timeoutMs?: number): Promise<PgObservation> {
    const { queryMs } = defaultPostgresTimeouts;
    if (this.stalled) await sleep(Math.min(queryMs, timeoutMs ?? queryMs));
    return super.observe();
  }

  override async writeProbe(timeoutMs: number, options?: WriteProbeOptions): Promise<WriteProbeResult> {
    if (this.stalled) await sleep(timeoutMs);
    return super.writeProbe(timeoutMs, options);
  }
}

/** The witness grants every lease and records when each request came; db-b streams from db-a. */
function scriptedPeers(clock: () => number) {
  const renewalsAt: number[] = [];
  const status = (): AgentStatus => ({
    v: PROTOCOL_VERSION, cluster, term: 1, from: 'db-b', primaryOfTerm: 'db-a', role: 'standby',
    pg: {
      running: true, inRecovery: true, writable: false, timeline: 1, lsn: 0n, replayLsn: 0n,
      streaming: true, syncStandby: null, standbyInSync: false,
    },
    leaseRemainingMs: 0, promotionBlocker: null, maintenance: false,
  });
  const client = {
    async status() {
      return status();
    },
    async send(to: string, msg: PeerRequest): Promise<PeerReply> {
      const envelope = { v: PROTOCOL_VERSION, cluster, term: 1, from: to };
      if (msg.kind !== 'lease-request') return { ...envelope, kind: 'ack', accepted: true, reason: 'noted' };
      if (to === 'witness') renewalsAt.push(clock());
      return { ...envelope, kind: 'lease-reply', seq: msg.seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
    },
    close: async () => undefined,
  } as unknown as PeerClient;
  return { client, renewalsAt };
}

function startPrimary(t: TestContext) {
  const peers = scriptedPeers(monotonicNow);
  const { runner, pg, clock } = startScriptedPrimary(t, {
    timings, peers: peers.client, makePg: (network, at) => new SlowStallPostgres({ network, nodeName: 'db-a', endpoint: at }),
  });
  return { runner, pg, peers, clock };
}

it('a stalled PostgreSQL holds no heartbeat past renewalWaitBoundMs: the lease is renewed while the write probe decides', { timeout: 30_000 }, async (t) => {
  assert.ok(renewalWaitBoundMs(timings) < defaultPostgresTimeouts.queryMs, 'the bound is shorter than the SQL timeout');
  const { runner, pg, peers, clock } = startPrimary(t);
  const deadline = clock() + 20 * timings.heartbeatMs;
  while (!(runner.state.lease.held !== null && runner.status().role === 'primary')) {
    assert.ok(clock() < deadline, `no writable primary with a lease: ${runner.status().role}`);
    await sleep(20);
  }
  const stalledAt = clock();
  pg.stall();
  // Up to just before the second write probe can time out (2 × writeProbeTimeoutMs), the primary keeps
  // its lease: no renewal gap as long as the lease's validity, and a lease held at the end.
  const watchMs = 2 * timings.writeProbeTimeoutMs - 4 * timings.heartbeatMs;
  await sleep(watchMs);
  const during = [stalledAt, ...peers.renewalsAt.filter((at) => at > stalledAt), clock()];
  const gaps = during.slice(1).map((at, i) => at - (during[i] ?? at));
  const longest = Math.max(...gaps);
  assert.ok(longest < leaseValidMs(timings),
    `the longest gap between renewals during the stall was ${Math.round(longest)} ms, past the lease's ${leaseValidMs(timings)} ms`);
  assert.ok(runner.state.lease.held !== null && runner.state.lease.release.phase === 'none',
    `the lease was lost or given up within ${watchMs} ms of a stall: ${JSON.stringify(runner.state.lease.release)}`);
  // Then the write probe decides: two stalled probes, a fence, and the lease given up.
  const fenceBy = clock() + 3 * timings.writeProbeTimeoutMs;
  while (runner.state.lease.release.phase === 'none' && clock() < fenceBy) await sleep(20);
  assert.notEqual(runner.state.lease.release.phase, 'none', 'the stalled primary gave its lease up after its write probes');
  assert.equal(runner.state.fence.reason, `postgresql failed ${timings.writeProbeFailures} write probes`);
});

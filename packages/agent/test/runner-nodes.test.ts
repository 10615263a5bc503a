// Goal: with three database nodes the agent's runner polls every other node each heartbeat (the
// core's `peers`), and, as with two, asks no standby for a lease until etcd's term record has been
// read at start: a restarted primary that etcd moved past must not be granted a lease in its old
// term by any of its standbys (docs/design.md, Quorum on etcd, "The agent's start"). The real runner
// and core, the fake etcd, fake PostgreSQL servers, and scripted standbys that grant whatever they are
// asked.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it, type TestContext } from 'node:test';
import pino from 'pino';
import {
  PROTOCOL_VERSION, agentDurableSchema, createDurableFile, defaultTimings,
  type AgentStatus, type PeerClient, type PeerReply, type PeerRequest,
} from '@pgvip/shared';
import { bootAgent, defaultAgentSettings, quorumOf } from '@pgvip/shared/core';
import { monotonicNow } from '../src/clock.js';
import { createAgentMetrics } from '../src/metrics.js';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { EtcdAgentQuorum } from '../src/quorum/etcd/agent-quorum.js';
import { clusterKeys, FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';
import { AgentRunner } from '../src/runner.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';

const cluster = 'c1';
const prefix = '/pgvip';
const keys = clusterKeys(prefix, cluster);
const timings = { ...defaultTimings, heartbeatMs: 100, requestTimeoutMs: 150 };
const endpoint = (port: number) => ({ host: '127.0.0.1', port, user: 'pgvip', database: 'postgres' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nodes = ['db-a', 'db-b', 'db-c'].map((id) => ({ id, priority: 0, noFailover: false }));

/** db-b and db-c as standbys of db-a in `term` that grant every lease; records whom each call was for. */
function grantingStandbys(term: number) {
  const leaseRequests: string[] = [];
  const polled: string[] = [];
  const status = (from: string): AgentStatus => ({
    v: PROTOCOL_VERSION, cluster, term, from,
    primaryOfTerm: 'db-a',
    role: 'standby',
    pg: {
      running: true, inRecovery: true, writable: false, timeline: 1, lsn: 0x3000060n, replayLsn: 0x3000060n,
      streaming: true, syncStandby: null, standbyInSync: false,
    },
    leaseRemainingMs: 0,
    promotionBlocker: null,
    maintenance: false,
  });
  const client = {
    async status(to: string) {
      polled.push(to);
      return status(to);
    },
    async send(to: string, msg: PeerRequest): Promise<PeerReply> {
      const envelope = { v: PROTOCOL_VERSION, cluster, term, from: to };
      if (msg.kind !== 'lease-request') return { ...envelope, kind: 'ack', accepted: true, reason: 'noted' };
      leaseRequests.push(to);
      return { ...envelope, kind: 'lease-reply', seq: msg.seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
    },
    close: async () => undefined,
  } as unknown as PeerClient;
  return { client, leaseRequests, polled };
}

async function startDbA(t: TestContext, etcdSetup: (e: FakeEtcd) => void) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-runner-nodes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = monotonicNow;
  const etcd = new FakeEtcd(clock);
  etcdSetup(etcd);
  const network = new FakePgNetwork();
  const pg = new FakePostgres({ network, nodeName: 'db-a', endpoint: endpoint(5432) });
  new FakePostgres({ network, nodeName: 'db-b', endpoint: endpoint(5433), standbyOf: endpoint(5432) });
  new FakePostgres({ network, nodeName: 'db-c', endpoint: endpoint(5434), standbyOf: endpoint(5432) });
  await pg.fence('read-only');
  const stateFile = createDurableFile(path.join(dir, 'agent.json'), agentDurableSchema, { term: 0, primaryOfTerm: null });
  stateFile.save({ term: 1, primaryOfTerm: 'db-a' });
  const settings = {
    ...defaultAgentSettings({
      cluster, self: 'db-a', peer: 'db-b', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings, replication: 'async',
    }),
    nodes,
  };
  const logger = pino({ level: 'silent' });
  const port = new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: timings.requestTimeoutMs, clock });
  const quorum = new EtcdAgentQuorum(port, {
    cluster, self: 'db-a', quorumId: settings.quorum.id, timings, replication: 'async', logger, clock, nodes,
  });
  const standbys = grantingStandbys(1);
  const runner = new AgentRunner({
    initial: bootAgent(settings, stateFile.load(), clock(), 2 * 2 ** 32),
    ports: {
      pg,
      vip: new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a'),
      endpoints: { 'db-a': endpoint(5432), 'db-b': endpoint(5433), 'db-c': endpoint(5434) },
      names: { 'db-a': 'db-a', 'db-b': 'db-b', 'db-c': 'db-c' },
      promoteWaitSeconds: 1,
    },
    peers: standbys.client,
    stateFile,
    logger,
    metrics: createAgentMetrics({ cluster, node: 'db-a' }),
    clock,
    quorum,
    onFatal: (e) => assert.fail(e),
  });
  runner.start();
  quorum.start(runner);
  t.after(async () => {
    await runner.stop();
    await quorum.close();
  });
  return { runner, standbys };
}

it('three nodes: the runner polls both standbys, and asks neither for a lease until etcd\'s term record is read', async (t) => {
  let etcd: FakeEtcd | null = null;
  const a = await startDbA(t, (e) => {
    e.putRaw(keys.term, Buffer.from(JSON.stringify({ term: 2, primary: 'db-b' })));
    e.available = false;
    etcd = e;
  });
  await sleep(8 * timings.heartbeatMs);
  assert.ok(a.standbys.polled.includes('db-b') && a.standbys.polled.includes('db-c'), `polled: ${a.standbys.polled.join(', ')}`);
  assert.deepEqual(a.standbys.leaseRequests, [], 'a standby would have granted term 1, which etcd moved past');
  etcd!.available = true;
  await sleep(4 * timings.heartbeatMs);
  assert.equal(a.runner.state.durable.term, 2);
  assert.deepEqual(a.standbys.leaseRequests, []);
});

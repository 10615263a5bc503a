// Goal: a restarted agent on etcd never acts in a term etcd has moved past (docs/design.md, Quorum on
// etcd, "The agent's start"). The window: a switchover's handover txn committed in etcd (term record
// {T+1, successor}, the old leader key deleted), then the old primary's agent died before it persisted
// T+1. Restarted in T, its standby (still in T) grants it a lease sooner than etcd refuses, and it would
// unfence and take writes in T that the successor never gets. Given that state, when the agent starts:
// it adopts T+1 from etcd's term record before its first tick and never unfences, even with a peer that
// grants every lease in T; with etcd unreachable at start it asks the standby for no lease (so it stays
// fenced) until etcd answers, and then adopts T+1; a primary whose term etcd still names renews and
// writes again once etcd answers. The real runner and core, the fake etcd (the protocol code the etcd3
// client runs), fake PostgreSQL servers and a scripted standby that grants whatever it is asked.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import {
  PROTOCOL_VERSION, agentDurableSchema, createDurableFile, defaultTimings,
  type AgentStatus, type PeerClient, type PeerReply, type PeerRequest,
} from '@pgvip/shared';
import { bootAgent, defaultAgentSettings, quorumOf, type AgentDurable } from '@pgvip/shared/core';
import { monotonicNow } from '../src/clock.js';
import { createAgentMetrics } from '../src/metrics.js';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { EtcdAgentQuorum } from '../src/quorum/etcd/agent-quorum.js';
import { clusterKeys, FakeEtcd, FakeEtcdQuorum, type EtcdQuorumPort } from '../src/quorum/etcd/index.js';
import { AgentRunner } from '../src/runner.js';
import { cluster, endpoint, primaryPorts } from './runner-harness.js';

const prefix = '/pgvip';
const keys = clusterKeys(prefix, cluster);
const timings = { ...defaultTimings, heartbeatMs: 100, requestTimeoutMs: 150 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PostgreSQL server that counts the agent's unfences. */
class WatchedPostgres extends FakePostgres {
  unfences = 0;
  override async unfence(): Promise<void> {
    this.unfences += 1;
    return super.unfence();
  }
}

/** Every call to etcd takes `delayMs` more: etcd answers later than the standby. */
function slower(inner: EtcdQuorumPort, delayMs: number): EtcdQuorumPort {
  return new Proxy(inner, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop);
      if (typeof v !== 'function') return v;
      if (prop === 'close') return v.bind(target);
      return async (...args: unknown[]) => {
        await sleep(delayMs);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** db-b's agent as the old primary's restart finds it: a standby of db-a in `term` that grants every lease. */
function grantingStandby(term: number): PeerClient & { leaseRequests: PeerRequest[] } {
  const leaseRequests: PeerRequest[] = [];
  const envelope = { v: PROTOCOL_VERSION, cluster, term, from: 'db-b' };
  const status: AgentStatus = {
    ...envelope,
    primaryOfTerm: 'db-a',
    role: 'standby',
    pg: {
      running: true, inRecovery: true, writable: false, timeline: 1, lsn: 0x3000060n, replayLsn: 0x3000060n,
      streaming: true, syncStandby: null, standbyInSync: false,
    },
    leaseRemainingMs: 0,
    promotionBlocker: null,
    maintenance: false,
  };
  return {
    leaseRequests,
    status: async () => status,
    async send(_to: string, msg: PeerRequest): Promise<PeerReply> {
      if (msg.kind !== 'lease-request') return { ...envelope, kind: 'ack', accepted: true, reason: 'noted' };
      leaseRequests.push(msg);
      return { ...envelope, kind: 'lease-reply', seq: msg.seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
    },
    close: async () => undefined,
  } as PeerClient & { leaseRequests: PeerRequest[] };
}

interface Start {
  readonly durable: AgentDurable;
  /** Set up etcd before the agent starts. */
  readonly etcd: (etcd: FakeEtcd) => void;
  /** db-a's server fenced (the switchover fenced it before its handover txn), or writable (a plain restart). */
  readonly fenced: boolean;
  readonly etcdDelayMs?: number;
}

async function startDbA(t: TestContext, o: Start) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-etcd-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = monotonicNow;
  const etcd = new FakeEtcd(clock);
  o.etcd(etcd);
  const network = new FakePgNetwork();
  const pg = new WatchedPostgres({ network, nodeName: 'db-a', endpoint: endpoint(5432) });
  new FakePostgres({ network, nodeName: 'db-b', endpoint: endpoint(5433), standbyOf: endpoint(5432) });
  if (o.fenced) await pg.fence('read-only');
  const stateFile = createDurableFile(path.join(dir, 'agent.json'), agentDurableSchema, { term: 0, primaryOfTerm: null });
  stateFile.save(o.durable);
  const settings = defaultAgentSettings({
    cluster, self: 'db-a', peer: 'db-b', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings, replication: 'async',
  });
  const logger = pino({ level: 'silent' });
  const port = new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: timings.requestTimeoutMs, clock });
  const quorum = new EtcdAgentQuorum(o.etcdDelayMs === undefined ? port : slower(port, o.etcdDelayMs), {
    cluster, self: 'db-a', quorumId: settings.quorum.id, timings, replication: 'async', logger, clock,
  });
  const peers = grantingStandby(o.durable.term);
  const runner = new AgentRunner({
    initial: bootAgent(settings, stateFile.load(), clock(), 2 * 2 ** 32),
    ports: { ...primaryPorts(pg), quorumHandover: (term, to) => quorum.handover(term, to) },
    peers,
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
  return { etcd, pg, runner, peers, stateFile };
}

/** The handover txn of term 1 to db-b committed: the term record moved on, db-a's leader key is gone. */
const handedOver = (etcd: FakeEtcd) => etcd.putRaw(keys.term, Buffer.from(JSON.stringify({ term: 2, primary: 'db-b' })));

describe('an agent on etcd at its start', () => {
  it('adopts the term etcd moved to before its first tick, and never unfences in the old one', async (t) => {
    // etcd answers 60 ms after each call, the standby at once: without the read at start the standby's
    // grant for term 1 comes first and the agent unfences db-a in term 1.
    const a = await startDbA(t, { durable: { term: 1, primaryOfTerm: 'db-a' }, etcd: handedOver, fenced: true, etcdDelayMs: 60 });
    await sleep(10 * timings.heartbeatMs);
    assert.equal(a.pg.unfences, 0, 'db-a was unfenced in term 1, which etcd had handed to db-b');
    assert.notEqual(await a.pg.clientWrite(), 'written');
    assert.deepEqual(a.stateFile.load(), { term: 2, primaryOfTerm: 'db-b' });
    assert.deepEqual(a.peers.leaseRequests.filter((m) => m.term === 1), [], 'no lease asked of the standby in term 1');
  });

  it('with etcd unreachable, asks its standby for no lease, stays fenced, and adopts the term once etcd answers', async (t) => {
    let etcd: FakeEtcd | null = null;
    const a = await startDbA(t, {
      durable: { term: 1, primaryOfTerm: 'db-a' },
      etcd: (e) => {
        handedOver(e);
        e.available = false;
        etcd = e;
      },
      fenced: true,
    });
    await sleep(10 * timings.heartbeatMs);
    assert.ok(a.runner.lastTickAtMs > 0 && a.runner.status().role === 'fenced', `the loop runs: ${a.runner.status().role}`);
    assert.deepEqual(a.peers.leaseRequests, [], 'the standby would have granted term 1');
    assert.equal(a.pg.unfences, 0);
    assert.deepEqual(a.stateFile.load(), { term: 1, primaryOfTerm: 'db-a' });
    etcd!.available = true;
    await sleep(4 * timings.heartbeatMs);
    assert.deepEqual(a.stateFile.load(), { term: 2, primaryOfTerm: 'db-b' });
    assert.equal(a.pg.unfences, 0);
    assert.notEqual(await a.pg.clientWrite(), 'written');
  });

  it('a term record pgvip did not write is no answer: the standby is not asked, and nothing is learned', async (t) => {
    const a = await startDbA(t, {
      durable: { term: 1, primaryOfTerm: 'db-a' },
      etcd: (e) => e.putRaw(keys.term, Buffer.from('{"term":"two"}')),
      fenced: true,
    });
    await sleep(6 * timings.heartbeatMs);
    assert.deepEqual(a.peers.leaseRequests, []);
    assert.equal(a.pg.unfences, 0);
    assert.deepEqual(a.stateFile.load(), { term: 1, primaryOfTerm: 'db-a' });
  });

  it('a primary restarted while etcd is unreachable fences, and writes again in its term once etcd answers', async (t) => {
    // The cost of the rule above: without etcd a restarted primary cannot tell a handed-over term from
    // its own, so it does without its standby's grants until etcd answers.
    let etcd: FakeEtcd | null = null;
    const a = await startDbA(t, {
      durable: { term: 1, primaryOfTerm: 'db-a' },
      etcd: (e) => {
        e.putRaw(keys.term, Buffer.from(JSON.stringify({ term: 1, primary: 'db-a' })));
        e.putRaw(keys.leader, Buffer.from(JSON.stringify({ node: 'db-a', term: 1 })), e.grant(3));
        e.available = false;
        etcd = e;
      },
      fenced: false,
    });
    await sleep(10 * timings.heartbeatMs);
    assert.equal(await a.pg.clientWrite(), 'refused', 'fenced once its boot grace ended without a lease');
    etcd!.available = true;
    await sleep(6 * timings.heartbeatMs);
    assert.equal(a.runner.status().role, 'primary');
    assert.equal(await a.pg.clientWrite(), 'written');
    assert.deepEqual(a.stateFile.load(), { term: 1, primaryOfTerm: 'db-a' });
    assert.ok(a.peers.leaseRequests.length > 0, 'the standby is asked again once etcd answered');
  });
});

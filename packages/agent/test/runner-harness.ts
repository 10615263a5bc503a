// The real AgentRunner and core as db-a, primary of term 1 on the witness, with a fake PostgreSQL
// pair (db-a and its standby db-b) and peers the test scripts: for runner tests that need the
// daemon's timing (heartbeats, looks, effects) without the daemon's HTTP and config.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { agentDurableSchema, createDurableFile, type PeerClient, type Timings } from '@pgvip/shared';
import { bootAgent, defaultAgentSettings, quorumOf } from '@pgvip/shared/core';
import { monotonicNow } from '../src/clock.js';
import { createAgentMetrics } from '../src/metrics.js';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { AgentRunner, type RunnerDeps } from '../src/runner.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';

export const cluster = 'c1';
export const endpoint = (port: number) => ({ host: '127.0.0.1', port, user: 'pgvip', database: 'postgres' });

/** db-a's ports beside its fake server `pg`: the VIP held by db-a, both nodes' endpoints and names. */
export function primaryPorts(pg: FakePostgres): RunnerDeps['ports'] {
  return {
    pg,
    vip: new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a'),
    endpoints: { 'db-a': endpoint(5432), 'db-b': endpoint(5433) },
    names: { 'db-a': 'db-a', 'db-b': 'db-b' },
    promoteWaitSeconds: 1,
  };
}

export interface ScriptedPrimary<P extends FakePostgres> {
  readonly runner: AgentRunner;
  readonly pg: P;
  readonly clock: () => number;
}

/**
 * Starts db-a as primary of term 1 (async replication) with `timings`. `makePg` builds db-a's fake
 * server on the given network and endpoint (a subclass for faults of its own); `peers` answers
 * db-a's calls to the witness and db-b. Stopped and cleaned up when the test ends.
 */
export function startScriptedPrimary<P extends FakePostgres>(
  t: TestContext,
  o: {
    readonly timings: Timings;
    readonly peers: PeerClient;
    readonly makePg: (network: FakePgNetwork, at: ReturnType<typeof endpoint>) => P;
  },
): ScriptedPrimary<P> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-runner-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = monotonicNow;
  const network = new FakePgNetwork();
  const pg = o.makePg(network, endpoint(5432));
  new FakePostgres({ network, nodeName: 'db-b', endpoint: endpoint(5433), standbyOf: endpoint(5432) });
  const stateFile = createDurableFile(path.join(dir, 'agent.json'), agentDurableSchema, { term: 0, primaryOfTerm: null });
  stateFile.save({ term: 1, primaryOfTerm: 'db-a' });
  const settings = defaultAgentSettings({
    cluster, self: 'db-a', peer: 'db-b', witness: 'witness', quorum: quorumOf('witness', 'witness'), timings: o.timings,
    replication: 'async',
  });
  const runner = new AgentRunner({
    initial: bootAgent(settings, stateFile.load(), clock(), 2 * 2 ** 32),
    ports: primaryPorts(pg),
    peers: o.peers,
    stateFile,
    logger: pino({ level: 'silent' }),
    metrics: createAgentMetrics({ cluster, node: 'db-a' }),
    clock,
    onFatal: (e) => assert.fail(e),
  });
  runner.start();
  t.after(() => runner.stop());
  return { runner, pg, clock };
}

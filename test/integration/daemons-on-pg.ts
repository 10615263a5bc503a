// Real agent and witness daemons, in this process, on loopback, over a real PostgreSQL 15 primary and
// standby (test/fixtures/pg-cluster.ts): the set-up the end-to-end daemon tests share. Only the VIP is
// the in-memory fake. Each test adds what an operator would write to the files.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfigText, type AgentConfig, type WitnessConfig } from '@pgvip/shared';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon } from '../../packages/witness/src/daemon.js';
import type { PgCluster } from '../fixtures/pg-cluster.js';
import { freePort } from './helpers.js';

export interface DaemonsOptions {
  /** Prefix of the temporary state directory. */
  readonly name: string;
  /** The cluster block's replication line (indented two spaces), e.g. replication: { slots: ... }. */
  readonly replication: string;
  /** More of the cluster block, after replication (each line starting with "\n  "). */
  readonly clusterExtra?: string;
  /** Top-level agent file settings before `cluster:` (each line ending with "\n"). */
  readonly agentExtra?: string;
}

/**
 * The files of the cluster "orders" on pgc, with ports of its own: `tail` ends the cluster block
 * (replication and more, its lines joined by "\n  "), the same in the agents' and the witness's files.
 */
export async function clusterFiles(t: TestContext, name: string, pgc: PgCluster) {
  const dir = mkdtempSync(path.join(tmpdir(), `${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [pa, pb, pw, po] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const node = (id: string, agentPort: number, pg: PgCluster['primary']) =>
    `    - id: ${id}\n      agent: { host: 127.0.0.1, port: ${agentPort} }\n` +
    `      postgres: { host: 127.0.0.1, port: ${pg.port}, user: postgres, dataDir: ${pg.dataDir} }\n`;
  const cluster = (tail: string) => `\n  name: orders\n  nodes:\n${node('db-a', pa, pgc.primary)}${node('db-b', pb, pgc.standby)}` +
    `  witness: { host: 127.0.0.1, port: ${pw} }\n  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: imds }\n` +
    `  auth: { disabled: true }\n  ${tail}`;
  /** `agentExtra`: top-level agent settings before `cluster:` (each line ending with "\n"). */
  const agent = (self: string, tail: string, agentExtra = ''): AgentConfig => parseConfigText(
    `self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n${agentExtra}cluster:${cluster(tail)}`,
    'agent',
    `${self}.yaml`,
  );
  const witness = (tail: string): WitnessConfig => parseConfigText(
    `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\noperatorApi: { host: 127.0.0.1, port: ${po}, auth: disabled }\n` +
      `stateDir: ${dir}/witness\nclusters:\n  -${cluster(tail).replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
    'witness',
    'witness.yaml',
  );
  return { dir, pw, po, agent, witness };
}

/** The daemons' log, kept in memory; PGVIP_TEST_DUMP=file keeps the lines of a failed run. */
export function daemonsLog(t: TestContext) {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const dump = process.env.PGVIP_TEST_DUMP;
  if (dump !== undefined) t.after(() => writeFileSync(dump, lines.join('')));
  return { lines, log };
}

export async function startDaemons(t: TestContext, pgc: PgCluster, o: DaemonsOptions) {
  const files = await clusterFiles(t, o.name, pgc);
  const { pw, po } = files;
  const tail = `${o.replication}${o.clusterExtra ?? ''}`;
  const agentCfg = (self: string) => files.agent(self, tail, o.agentExtra);
  const witnessCfg = files.witness(tail);
  const { lines, log } = daemonsLog(t);
  const witness = await createWitnessDaemon(witnessCfg, { log: log.child({ daemon: 'witness' }) });
  await witness.protocol.listen({ host: '127.0.0.1', port: pw });
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  witness.startPolling();
  t.after(() => witness.close());
  const cloud = new FakeVipCloud();
  const agents: Record<string, AgentDaemon> = {};
  for (const self of ['db-a', 'db-b']) {
    agents[self] = await startAgentDaemon(agentCfg(self), {
      logger: log.child({ daemon: self }),
      vip: new FakeVipPort(cloud, self),
      onFatal: (e) => assert.fail(e),
    });
    t.after(() => agents[self]!.close());
  }
  const operatorUrl = `http://127.0.0.1:${po}`;
  const primaryCode = async (n: string) => (await agents[n]!.app.inject({ url: '/primary' })).statusCode;
  const syncEligible = async () =>
    ((await (await fetch(`${operatorUrl}/api/v1/clusters/orders`)).json()) as { syncEligible: string | null }).syncEligible;
  return { agents, witness, cloud, lines, operatorUrl, primaryCode, syncEligible };
}

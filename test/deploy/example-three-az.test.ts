// Goal: deploy/examples/cluster-three-az.yaml, the agent config of the three-AZ layout, loads with the
// config loader, describes the same cluster as the CDK example that builds it
// (deploy/cdk/examples/payments-three-az.json: addresses, VIP, route tables), and the daemon's preflight
// finds nothing wrong with its three nodes (only the host's files, absent here).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { agentPreflight, loadAgentConfig, type AgentConfig } from '@pgvip/shared';
import { loadClusterConfig } from '../../deploy/cdk/lib/cluster-config.js';

const repo = path.resolve(import.meta.dirname, '../..');
const yaml = path.join(repo, 'deploy/examples/cluster-three-az.yaml');
const cdk = loadClusterConfig(path.join(repo, 'deploy/cdk/examples/payments-three-az.json'));

test('cluster-three-az.yaml loads: three nodes on etcd in route-table mode, as the CDK example builds them', async () => {
  const config = await loadAgentConfig(yaml);
  const c = config.cluster;
  assert.equal(config.self, 'payments-a');
  assert.deepEqual(c.nodes.map((n) => n.agent.host), [cdk.dbA, cdk.dbB, cdk.dbC!].map((n) => n.address));
  assert.ok(c.nodes.every((n) => n.postgres.host === n.agent.host && n.vip?.eniId !== undefined));
  assert.equal(c.quorum.backend, 'etcd');
  assert.ok(c.quorum.backend === 'etcd' && cdk.etcd?.kind === 'create');
  assert.deepEqual(c.quorum.etcd?.endpoints, cdk.etcd.members.map((m) => `https://${m.address}:2379`));
  assert.equal(c.vip.mode, 'route-table');
  assert.ok(c.vip.mode === 'route-table' && cdk.mode === 'route-table');
  assert.equal(c.vip.address, cdk.vip);
  assert.deepEqual(c.vip.routeTableIds, cdk.routeTableIds);
  assert.deepEqual(c.vip.routeTableIds, [cdk.dbA, cdk.dbB, cdk.dbC!].map((n) => n.subnet.routeTableId), "each AZ's table");
  assert.equal(c.witness.host, cdk.witness.address);
  assert.equal(c.replication.mode, 'sync');
  assert.equal(c.replication.synchronousCount, 1);
});

/** The preflight's problems for the example, with its state directory in a temporary one. */
async function preflightProblems(t: TestContext, config: AgentConfig): Promise<{ code: string; detail: string }[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-3az-preflight-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return agentPreflight({ ...config, stateDir: dir });
}

test('the preflight finds nothing wrong with three nodes: only the host\'s files, absent here, are named', async (t) => {
  const config = await loadAgentConfig(yaml);
  const problems = await preflightProblems(t, config);
  // The host's files (/etc/pgvip/…) are absent here: every problem names one of them, none the nodes.
  assert.ok(problems.length > 0);
  for (const p of problems) assert.match(p.detail, /\/etc\/pgvip\//, `${p.code}: ${p.detail}`);
  assert.ok(!problems.some((p) => p.detail.includes('cluster.nodes')), problems.map((p) => p.detail).join('; '));
});

// Goal: every example in deploy/examples loads, and the files that describe one cluster agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAgentConfig, loadWitnessConfig } from '../src/config/index.js';

const example = (name: string): string => fileURLToPath(new URL(`../../../deploy/examples/${name}`, import.meta.url));

test('agent-db-a.yaml and agent-db-b.yaml load and differ only in self', async () => {
  const a = await loadAgentConfig(example('agent-db-a.yaml'));
  const b = await loadAgentConfig(example('agent-db-b.yaml'));
  assert.equal(a.self, 'db-a');
  assert.equal(b.self, 'db-b');
  assert.deepEqual({ ...a, self: 'x' }, { ...b, self: 'x' });
  assert.equal(a.cluster.vip.mode, 'secondary-ip');
});

test('cluster-route-table.yaml loads as a cross-AZ agent config with explicit discovery', async () => {
  const config = await loadAgentConfig(example('cluster-route-table.yaml'));
  assert.equal(config.cluster.vip.mode, 'route-table');
  assert.ok(config.cluster.vip.mode === 'route-table' && config.cluster.vip.routeTableIds.length >= 2);
  assert.equal(config.cluster.vip.discovery, 'config');
  assert.ok(config.cluster.nodes.every((node) => node.vip?.eniId !== undefined));
});

test('witness.yaml loads and describes the same clusters as the agent examples', async () => {
  const witness = await loadWitnessConfig(example('witness.yaml'));
  const orders = await loadAgentConfig(example('agent-db-a.yaml'));
  const billing = await loadAgentConfig(example('cluster-route-table.yaml'));
  assert.deepEqual(witness.clusters.map((c) => c.name), ['orders', 'billing']);
  assert.deepEqual(witness.clusters[0], orders.cluster);
  assert.deepEqual(witness.clusters[1], billing.cluster);
});

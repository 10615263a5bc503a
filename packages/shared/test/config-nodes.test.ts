// Goal: `cluster.nodes` takes 2 to 9 database nodes on etcd, each with priority and noFailover, and
// replication.synchronousCount (k of ANY k); mixes that cannot work are refused naming the field and
// the fix; both daemons' preflights pass three nodes on etcd, and a two-node cluster with the new
// fields starts as before (docs/design.md, "More than one standby").
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { agentPreflight, parseConfigText, witnessPreflight } from '../src/index.js';
import { agentYaml, lineAbout, problemsOf, witnessYaml, type EditableDoc } from './config-helpers.js';

const onEtcd = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'] } };
const node = (id: string, ip: string, extra: Record<string, unknown> = {}) => ({
  id, agent: { host: ip }, postgres: { host: ip, dataDir: '/var/lib/postgresql/15/main' }, ...extra,
});
const third = (extra: Record<string, unknown> = {}) => node('db-c', '10.0.3.13', extra);

function withNodes(d: EditableDoc, count: number, quorum: unknown = onEtcd): void {
  d.cluster.quorum = quorum;
  for (let i = d.cluster.nodes.length; i < count; i++) d.cluster.nodes.push(node(`db-${String.fromCharCode(97 + i)}`, `10.0.${i + 1}.${11 + i}`));
}

const parse = (edit: (d: EditableDoc) => void) => parseConfigText(agentYaml(edit), 'agent', 'agent.yaml');
const problems = (edit: (d: EditableDoc) => void) => problemsOf(() => parse(edit), 'PGVIP_CONFIG_INVALID');

test('Given three nodes on etcd, Then they parse, with priority 0, noFailover false and no synchronousCount by default', () => {
  const cfg = parse((d) => {
    withNodes(d, 2);
    d.cluster.nodes.push(third({ priority: 7, noFailover: true }));
  });
  assert.deepEqual(cfg.cluster.nodes.map((n) => [n.id, n.priority, n.noFailover]), [['db-a', 0, false], ['db-b', 0, false], ['db-c', 7, true]]);
  assert.equal(cfg.cluster.replication.synchronousCount, undefined);
  assert.equal(parse((d) => withNodes(d, 9)).cluster.nodes.length, 9);
});

test('Given the witness backend and three nodes, Then cluster.nodes is refused, naming etcd as the fix', async () => {
  const lines = await problems((d) => d.cluster.nodes.push(third()));
  lineAbout(lines, 'agent.yaml', 'cluster.nodes', 'must list exactly two database nodes with quorum.backend "witness"', '(got 3)', 'set quorum.backend: etcd for 3 to 9 nodes');
});

test('Given one node, or ten on etcd, Then the list is refused with its bounds', async () => {
  lineAbout(await problems((d) => d.cluster.nodes.pop()), 'agent.yaml', 'cluster.nodes', 'must be a list of 2 to 9 database nodes', '(got 1)');
  lineAbout(await problems((d) => withNodes(d, 10)), 'agent.yaml', 'cluster.nodes', 'must be a list of 2 to 9 database nodes', '(got 10)');
});

test('Given too few nodes that may become primary, Then noFailover is refused with the fix', async () => {
  const two = await problems((d) => (d.cluster.nodes[1].noFailover = true));
  lineAbout(two, 'agent.yaml', 'cluster.nodes[1].noFailover', 'leaves 1 node(s) that may become primary', 'at least two nodes must be without noFailover');
  const three = await problems((d) => {
    withNodes(d, 3);
    d.cluster.nodes[0].noFailover = true;
    d.cluster.nodes[2].noFailover = true;
  });
  lineAbout(three, 'agent.yaml', 'cluster.nodes[0].noFailover', 'no failover would ever be possible');
  // One reporting replica beside two that may lead is the point of noFailover.
  assert.equal(parse((d) => {
    withNodes(d, 3);
    d.cluster.nodes[2].noFailover = true;
  }).cluster.nodes[2]!.noFailover, true);
});

test('Given synchronousCount above the standbys that can be synchronous, or with async replication, Then it is refused', async () => {
  const three = await problems((d) => {
    withNodes(d, 3);
    d.cluster.replication = { synchronousCount: 3 };
  });
  lineAbout(three, 'agent.yaml', 'cluster.replication.synchronousCount', 'at most 2 can be synchronous', 'set it to at most 2, or add a node');
  // noFailover nodes are never synchronous: with one among three, only one standby counts.
  const reporting = await problems((d) => {
    withNodes(d, 3);
    d.cluster.nodes[2].noFailover = true;
    d.cluster.replication = { synchronousCount: 2 };
  });
  lineAbout(reporting, 'agent.yaml', 'cluster.replication.synchronousCount', 'at most 1 can be synchronous');
  const two = await problems((d) => (d.cluster.replication = { synchronousCount: 2 }));
  lineAbout(two, 'agent.yaml', 'cluster.replication.synchronousCount', 'at most 1');
  const async = await problems((d) => (d.cluster.replication = { mode: 'async', synchronousCount: 1 }));
  lineAbout(async, 'agent.yaml', 'cluster.replication.synchronousCount', 'only applies with replication.mode "sync"', 'remove it');
  assert.equal(parse((d) => {
    withNodes(d, 5);
    d.cluster.replication = { synchronousCount: 4 };
  }).cluster.replication.synchronousCount, 4);
});

test('Given three nodes where the third repeats the second\'s id, Then nodes[2].id is refused', async () => {
  const lines = await problems((d) => {
    withNodes(d, 2);
    d.cluster.nodes.push(node('db-b', '10.0.3.13'));
  });
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[2].id', 'duplicates nodes[1].id', 'every node needs its own id');
});

// review-17b G6: the primary names, counts and slots its standbys by application_name; two nodes
// under one name would make ANY 2 hold with one standby caught up.
test('Given two nodes under one application_name, Then the field that was set is refused with the fix', async () => {
  const set = await problems((d) => {
    withNodes(d, 2);
    d.cluster.nodes.push(third({ postgres: { host: '10.0.3.13', dataDir: '/var/lib/postgresql/15/main', applicationName: 'db-b' } }));
    d.cluster.replication = { mode: 'sync', synchronousCount: 2 };
  });
  assert.deepEqual(set, [
    'agent.yaml: cluster.nodes[2].postgres.applicationName: duplicates nodes[1].id (its application_name by default): two nodes would stream under one application_name (got "db-b"); every node needs its own application_name: remove postgres.applicationName to use the node id, or set one no other node uses',
  ]);
  // An earlier node that took a later node's id as its name is the one named.
  const earlier = await problems((d) => {
    withNodes(d, 3);
    d.cluster.nodes[0].postgres.applicationName = 'db-c';
  });
  lineAbout(earlier, 'agent.yaml', 'cluster.nodes[0].postgres.applicationName', 'duplicates nodes[2].id (its application_name by default)', '(got "db-c")');
  // Two nodes both set to one name, with two nodes as well.
  const both = await problems((d) => {
    d.cluster.nodes[0].postgres.applicationName = 'pg';
    d.cluster.nodes[1].postgres.applicationName = 'pg';
  });
  lineAbout(both, 'agent.yaml', 'cluster.nodes[1].postgres.applicationName', 'duplicates nodes[0].postgres.applicationName', '(got "pg")');
  // Distinct names, set or not, parse.
  assert.deepEqual(parse((d) => {
    withNodes(d, 3);
    d.cluster.nodes[0].postgres.applicationName = 'pg-a';
  }).cluster.nodes.map((n) => n.postgres.applicationName), ['pg-a', 'db-b', 'db-c']);
});

// review-17b G4: PostgreSQL counts every streaming walsender of a listed name toward ANY k; without
// slots a reconnected standby beside its old walsender counts twice (the real-PostgreSQL proof:
// packages/agent/test/postgres-sync-any-k-walsenders.test.ts). A slot admits one walsender at a time.
test('Given synchronousCount 2 without replication slots, Then it is refused naming slots.enabled; with slots, or k = 1, it parses', async () => {
  const noSlots = await problems((d) => {
    withNodes(d, 3);
    d.cluster.replication = { synchronousCount: 2, slots: { enabled: false } };
  });
  assert.deepEqual(noSlots, [
    'agent.yaml: cluster.replication.synchronousCount: needs replication.slots.enabled: without slots PostgreSQL may count one standby twice toward ANY k (a reconnected standby beside its old walsender), so a commit could be acknowledged by fewer standbys than k (got 2); enable replication.slots.enabled (a slot admits one walsender at a time), or set synchronousCount: 1',
  ]);
  assert.equal(parse((d) => {
    withNodes(d, 3);
    d.cluster.replication = { synchronousCount: 2 };
  }).cluster.replication.slots.enabled, true);
  assert.equal(parse((d) => {
    withNodes(d, 3);
    d.cluster.replication = { synchronousCount: 1, slots: { enabled: false } };
  }).cluster.replication.synchronousCount, 1);
  assert.equal(parse((d) => {
    withNodes(d, 3);
    d.cluster.replication = { mode: 'async', slots: { enabled: false } };
  }).cluster.replication.mode, 'async');
});

function stateDirs(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-nodes-preflight-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('Given three nodes on etcd, Then both daemons\' preflights pass them; two nodes with the new fields start too', async (t) => {
  const dir = stateDirs(t);
  const agent = (count: number) => parse((d) => {
    withNodes(d, count);
    d.stateDir = path.join(dir, 'agent');
    d.cluster.auth = { disabled: true };
    d.cluster.nodes[1].priority = 5;
    d.cluster.replication = { synchronousCount: 1 };
  });
  assert.deepEqual(await agentPreflight(agent(3)), []);
  assert.deepEqual(await agentPreflight(agent(2)), []);

  const witness = parseConfigText(witnessYaml((d) => {
    d.stateDir = path.join(dir, 'witness');
    d.operatorApi = { auth: 'disabled' };
    d.clusters[0].auth = { disabled: true };
    d.clusters[0].quorum = onEtcd;
    d.clusters[0].nodes.push(third());
  }), 'witness', 'witness.yaml');
  assert.deepEqual(await witnessPreflight(witness), []);
});

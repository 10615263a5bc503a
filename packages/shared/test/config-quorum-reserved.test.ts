// Goal: on etcd the agents address their quorum messages to a reserved id (core/quorum.ts), so a
// cluster on etcd may not name a node or its witness so: the loader names the field and the fix. On
// the witness the name stays free (an existing cluster keeps loading after an upgrade).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ETCD_QUORUM_ID } from '../src/core/index.js';
import { parseConfigText } from '../src/index.js';
import { agentYaml, lineAbout, problemsOf, witnessYaml, type EditableDoc } from './config-helpers.js';

const onEtcd = (d: EditableDoc) => (d.cluster.quorum = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'] } });

test('Given backend etcd and a node named as the etcd quorum id, Then the node id is refused with a fix', async () => {
  const lines = await problemsOf(() => parseConfigText(agentYaml((d) => {
    onEtcd(d);
    d.cluster.nodes[1].id = ETCD_QUORUM_ID;
  }), 'agent', 'agent.yaml'), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[1].id', 'reserved with quorum.backend "etcd"', 'give the node another id');
});

test('Given backend etcd and a witness named as the etcd quorum id, Then witness.id is refused in both files', async () => {
  const agent = await problemsOf(() => parseConfigText(agentYaml((d) => {
    onEtcd(d);
    d.cluster.witness.id = ETCD_QUORUM_ID;
  }), 'agent', 'agent.yaml'), 'PGVIP_CONFIG_INVALID');
  lineAbout(agent, 'agent.yaml', 'cluster.witness.id', 'reserved', 'give the witness another id');
  const witness = await problemsOf(() => parseConfigText(witnessYaml((d) => {
    d.id = ETCD_QUORUM_ID;
    d.clusters[0].witness.id = ETCD_QUORUM_ID;
    d.clusters[0].quorum = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'] } };
  }), 'witness', 'witness.yaml'), 'PGVIP_CONFIG_INVALID');
  lineAbout(witness, 'witness.yaml', 'clusters[0].witness.id', 'reserved');
});

test('Given the witness backend, Then a node or witness may still be named etcd', () => {
  const cfg = parseConfigText(agentYaml((d) => {
    d.cluster.nodes[1].id = ETCD_QUORUM_ID;
  }), 'agent', 'agent.yaml');
  assert.equal(cfg.cluster.nodes[1]!.id, ETCD_QUORUM_ID);
});

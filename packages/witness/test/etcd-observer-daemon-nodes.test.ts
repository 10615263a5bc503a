// Goal: a witness daemon (real etcd, real signed polls of three emulated agents, the real CLI)
// observes a cluster of three database nodes on etcd: it polls every node, and the operator API,
// `pgvip status` and the metrics show each with its WAL position and sync membership; a switchover
// without a node writes the switchover key for the most advanced standby. The agents' own N-node
// behaviour is not here (emulated agents answer scripted statuses; the keys are written as the
// agents write them).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { parseConfigText } from '@pgvip/shared';
import { etcdMissing, startEtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';
import type { ClusterView } from '../src/view.js';
import { runPgvip, writeFile600 } from './cli-helpers.js';
import { agentStatus, emulatedAgent, startDaemon, tempDir, witnessDocument } from './witness-helpers.js';

const TOKEN = 'etcd-nodes-token-0123456789';
const NODES = ['db-a', 'db-b', 'db-c'] as const;
const LSN = { 'db-a': 0x3000200n, 'db-b': 0x3000100n, 'db-c': 0x3000180n } as const;

describe('a witness daemon observes three nodes on etcd (real etcd)', { skip: etcdMissing(), timeout: 180_000 }, () => {
  test('Given three agents and the keys on etcd, Then the API, pgvip status and the metrics show every node', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wn-${randomBytes(3).toString('hex')}`;
    // The keys as the agents leave them in term 1: db-a's leader key and term record, the sync record.
    const client = new Etcd3({ hosts: [...etcd.endpoints] });
    t.after(() => client.close());
    await client.put(`${prefix}/c1/term`).value(JSON.stringify({ term: 1, primary: 'db-a' }));
    await client.put(`${prefix}/c1/leader`).value(JSON.stringify({ node: 'db-a', term: 1 }));
    await client.put(`${prefix}/c1/sync`).value(JSON.stringify({ standby: 'db-b', term: 1 }));

    const agents = await Promise.all(NODES.map((node) => emulatedAgent(t, {
      cluster: 'c1', node, peer: 'db-a', key: null,
      status: agentStatus('c1', node, {
        ...(node === 'db-a' ? {} : { syncMember: true }),
        pg: { lsn: LSN[node], replayLsn: LSN[node] },
      }),
    })));
    const stateDir = tempDir(t, 'pgvip-etcd-nodes-daemon-');
    const doc = witnessDocument({ stateDir, token: TOKEN, timings: {}, clusters: [{ name: 'c1', key: null, replication: 'sync' }] });
    const c = (doc.clusters as Record<string, unknown>[])[0]!;
    const [first] = c.nodes as Record<string, { [k: string]: unknown }>[];
    c.nodes = NODES.map((id, i) => ({
      ...first, id, agent: { host: '127.0.0.1', port: agents[i]!.port }, ...(id === 'db-c' ? { priority: 2 } : {}),
    }));
    c.quorum = { backend: 'etcd', etcd: { endpoints: etcd.endpoints, prefix } };
    const daemon = await startDaemon(t, parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml'));
    daemon.startPolling();
    const api = (method: 'GET' | 'POST', url: string, payload?: unknown) => daemon.operator.inject({
      method, url,
      headers: { authorization: `Bearer ${TOKEN}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    const view = async (): Promise<ClusterView> => (await api('GET', '/api/v1/clusters/c1')).json();

    // When the witness has read the keys and polled every agent
    await waitUntil('every node polled and the keys read', 15_000, async () => {
      const v = await view();
      return v.term === 1 && v.nodes.every((n) => n.reachable);
    });

    // Then the view has the three nodes, each with its WAL position, lag and sync membership
    const v = await view();
    assert.deepEqual(v.nodes.map((n) => [n.node, n.role, n.lsn, n.lagBytes, n.syncMember, n.priority]), [
      ['db-a', 'primary', '0/3000200', null, null, 0],
      ['db-b', 'standby', '0/3000100', 0x100, true, 0],
      ['db-c', 'standby', '0/3000180', 0x80, true, 2],
    ]);
    assert.ok(NODES.every((n) => agents[NODES.indexOf(n)]!.statusCalls() > 0), 'every agent was polled');
    assert.deepEqual(v.quorum?.sync, { members: ['db-b'], k: 1, term: 1 });
    // and the metrics have a series per node
    const metrics = (await api('GET', '/metrics')).body;
    for (const line of [
      'pgvip_witness_node_reachable{cluster="c1",node="db-c"} 1',
      'pgvip_witness_node_lag_bytes{cluster="c1",node="db-b"} 256',
      'pgvip_witness_node_lag_bytes{cluster="c1",node="db-c"} 128',
      'pgvip_witness_node_sync_member{cluster="c1",node="db-b"} 1',
      'pgvip_witness_node_sync_member{cluster="c1",node="db-c"} 0',
      'pgvip_witness_primary{cluster="c1",node="db-c"} 0',
    ]) assert.ok(metrics.includes(line), line);
    // and pgvip status (the real CLI) prints a row per node with its LSN
    await daemon.operator.listen({ host: '127.0.0.1', port: 0 });
    const { port } = daemon.operator.server.address() as { port: number };
    const tokenFile = writeFile600(`${stateDir}/cli.token`, `${TOKEN}\n`);
    const status = await runPgvip(['--witness', `http://127.0.0.1:${port}`, '--token-file', tokenFile, 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\| db-c +\| standby +\| 1 +\| [^|]+\| 0\/3000180 +\| 128 B +\| 1 +\| member +\| 2 +\| [^|]+\| eligible +\|/);
    assert.match(status.stdout, /^sync record: ANY 1 \(db-b\) \(term 1\): every acknowledged write is on at least 1 of them$/m);

    // When an operator asks for a switchover without naming a node
    const r = await api('POST', '/api/v1/clusters/c1/switchover', {});
    assert.equal(r.statusCode, 200, r.body);
    // Then the switchover key names the most advanced standby
    const key = JSON.parse((await client.get(`${prefix}/c1/switchover`).string()) ?? '{}') as { to?: string };
    assert.equal(key.to, 'db-c');
    assert.match((r.json() as { message: string }).message, /^switchover to db-c \(the best live standby: timeline 1, WAL received 0\/3000180, priority 2\)/);
  });
});

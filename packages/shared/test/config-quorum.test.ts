// Goal: the cluster's quorum block defaults to the witness; an etcd block parses into endpoints a
// client can dial (etcd's port when none is given) and a prefix pgvip can append keys to, and refuses
// what could not work or would leak (a path in a URL, more than seven members, mixed schemes, a
// password over plain http, half a client certificate), naming the field and the fix. The preflight
// the daemons and check-config share refuses backend etcd in this release with its own code, and
// checks the files the etcd block names (a password file others can read, a CA that is not PEM).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { agentPreflight, parseConfigText, parseEtcdEndpoint, witnessPreflight } from '../src/index.js';
import { agentYaml, lineAbout, problemsOf, witnessYaml, type EditableDoc } from './config-helpers.js';

const parse = (edit: (d: EditableDoc) => void) => parseConfigText(agentYaml(edit), 'agent', 'agent.yaml');
const problems = (quorum: unknown) => problemsOf(() => parse((d) => (d.cluster.quorum = quorum)), 'PGVIP_CONFIG_INVALID');

test('Given no quorum block, Then the backend is the witness and there is no etcd block', () => {
  assert.deepEqual(parse(() => {}).cluster.quorum, { backend: 'witness' });
  assert.deepEqual(parse((d) => (d.cluster.quorum = {})).cluster.quorum, { backend: 'witness' });
});

test('Given an etcd block, Then endpoints get etcd\'s client port when they name none and the prefix defaults to /pgvip', () => {
  const q = parse((d) => (d.cluster.quorum = { backend: 'etcd', etcd: { endpoints: ['https://10.0.1.11', 'https://etcd-2.internal:2389/', 'https://10.0.2.20:2379'], tls: { caFile: '/etc/pgvip/etcd/ca.crt' } } })).cluster.quorum;
  assert.deepEqual(q, {
    backend: 'etcd',
    etcd: {
      endpoints: ['https://10.0.1.11:2379', 'https://etcd-2.internal:2389', 'https://10.0.2.20:2379'],
      prefix: '/pgvip',
      tls: { caFile: '/etc/pgvip/etcd/ca.crt' },
      electionTimeoutMs: 1000,
    },
  });
  // Kept while the witness still decides, so that doctor can check it before a move.
  assert.equal(parse((d) => (d.cluster.quorum = { etcd: { endpoints: ['http://10.0.1.11:2379'], prefix: '/ha/pgvip' } })).cluster.quorum.etcd?.prefix, '/ha/pgvip');
});

test('Given backend etcd without an etcd block, Then the field and an example are named', async () => {
  const lines = await problems({ backend: 'etcd' });
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd', 'is required when quorum.backend is "etcd"', 'endpoints', 'backend: witness');
  lineAbout(await problems({ backend: 'consul' }), 'agent.yaml', 'cluster.quorum.backend', 'must be one of witness, etcd');
});

test('Given endpoints that are not etcd client URLs, Then each is named with what a valid one looks like', async () => {
  const lines = await problems({ etcd: { endpoints: ['ftp://10.0.1.11:2379', 'https://10.0.1.11:2379/v3/kv', 'https://root:pw@10.0.1.12:2379', 'https://bad_host:2379', 'not a url'] } });
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd.endpoints[0]', 'http:// or https://');
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd.endpoints[1]', 'no path, query or fragment');
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd.endpoints[2]', 'must not carry a user or password', 'passwordFile');
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd.endpoints[3]', 'IPv4 address or a host name');
  lineAbout(lines, 'agent.yaml', 'cluster.quorum.etcd.endpoints[4]', 'etcd client URL');
  const eight = Array.from({ length: 8 }, (_, i) => `https://10.0.1.${i + 1}:2379`);
  lineAbout(await problems({ etcd: { endpoints: eight } }), 'agent.yaml', 'cluster.quorum.etcd.endpoints', 'at most 7');
  lineAbout(await problems({ etcd: { endpoints: [] } }), 'agent.yaml', 'cluster.quorum.etcd.endpoints', 'non-empty list');
  const twice = await problems({ etcd: { endpoints: ['https://10.0.1.11', 'https://10.0.1.11:2379'] } });
  lineAbout(twice, 'agent.yaml', 'cluster.quorum.etcd.endpoints[1]', 'duplicates endpoints[0]');
  const mixed = await problems({ etcd: { endpoints: ['https://10.0.1.11:2379', 'http://10.0.1.12:2379'] } });
  lineAbout(mixed, 'agent.yaml', 'cluster.quorum.etcd.endpoints', 'mixes http:// and https://');
  assert.deepEqual(parseEtcdEndpoint('HTTPS://Etcd.Internal'), { endpoint: 'https://etcd.internal:2379' });
});

test('Given a prefix that is not a plain key path, Then it is refused with an example', async () => {
  for (const prefix of ['pgvip', '/pgvip/', '/pg vip', '/a/../b', '/.', '//x', `/${'x'.repeat(130)}`]) {
    lineAbout(await problems({ etcd: { endpoints: ['https://10.0.1.11'], prefix } }), 'agent.yaml', 'cluster.quorum.etcd.prefix', 'key path', 'e.g. /pgvip');
  }
  assert.equal(parse((d) => (d.cluster.quorum = { etcd: { endpoints: ['https://10.0.1.11'], prefix: '/svc/pg-vip_1.0' } })).cluster.quorum.etcd?.prefix, '/svc/pg-vip_1.0');
});

test('Given half a client certificate, a user without a password, or a password over http, Then each names the fix', async () => {
  const https = ['https://10.0.1.11:2379'];
  lineAbout(await problems({ etcd: { endpoints: https, tls: { certFile: '/etc/pgvip/etcd/client.crt' } } }), 'agent.yaml', 'cluster.quorum.etcd.tls.keyFile', 'is required with quorum.etcd.tls.certFile');
  lineAbout(await problems({ etcd: { endpoints: https, user: 'pgvip' } }), 'agent.yaml', 'cluster.quorum.etcd.passwordFile', 'is required with quorum.etcd.user');
  lineAbout(await problems({ etcd: { endpoints: https, passwordFile: '/etc/pgvip/etcd/password' } }), 'agent.yaml', 'cluster.quorum.etcd.user', 'is required with quorum.etcd.passwordFile');
  lineAbout(await problems({ etcd: { endpoints: https, user: 'pg vip', passwordFile: '/p' } }), 'agent.yaml', 'cluster.quorum.etcd.user', 'etcd user name');
  const plain = await problems({ etcd: { endpoints: ['http://10.0.1.11:2379'], user: 'pgvip', passwordFile: '/etc/pgvip/etcd/password' } });
  lineAbout(plain, 'agent.yaml', 'cluster.quorum.etcd.user', 'crosses the network in clear', 'https://');
  lineAbout(await problems({ etcd: { endpoints: ['http://10.0.1.11:2379'], tls: { caFile: '/ca.crt' } } }), 'agent.yaml', 'cluster.quorum.etcd.tls', 'http://');
  // On loopback nothing crosses a network.
  assert.equal(parse((d) => (d.cluster.quorum = { etcd: { endpoints: ['http://127.0.0.1:2379'], user: 'pgvip', passwordFile: '/p' } })).cluster.quorum.etcd?.user, 'pgvip');
});

function hostFiles(t: TestContext) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-quorum-preflight-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('Given backend etcd, Then both daemons\' preflight check the etcd files they will read, and nothing else of the block', async (t) => {
  const dir = hostFiles(t);
  const password = path.join(dir, 'etcd-password');
  writeFileSync(password, 'secret\n');
  chmodSync(password, 0o644);
  const ca = path.join(dir, 'ca.crt');
  writeFileSync(ca, 'not a certificate\n');
  const quorum = (backend: string) => ({ backend, etcd: { endpoints: ['https://10.0.1.11:2379'], user: 'pgvip', passwordFile: password, tls: { caFile: ca } } });
  const agent = (backend: string) =>
    parseConfigText(agentYaml((d) => Object.assign(d, { stateDir: path.join(dir, 'agent-state') }, { cluster: { ...d.cluster, auth: { disabled: true }, quorum: quorum(backend) } })), 'agent', 'agent.yaml');
  // The agent runs a cluster on etcd: it refuses only the files it could not read at start.
  const got = await agentPreflight(agent('etcd'));
  assert.equal(got.length, 2, got.map((p) => p.message).join('\n'));
  assert.ok(got.some((p) => p.code === 'PGVIP_TLS_FILE' && p.detail.includes('cluster.quorum.etcd.tls.caFile')), got.map((p) => p.message).join('\n'));
  assert.ok(got.some((p) => p.detail.includes('cluster.quorum.etcd.passwordFile') && p.detail.includes('chmod 600')), got.map((p) => p.message).join('\n'));
  // The witness is the backend: the etcd block is kept for a later move, its files are not the daemon's business.
  assert.deepEqual(await agentPreflight(agent('witness')), []);

  const witness = parseConfigText(
    witnessYaml((d) => {
      d.stateDir = path.join(dir, 'witness-state');
      d.operatorApi = { auth: 'disabled' };
      d.clusters[0].auth = { disabled: true };
      d.clusters[0].quorum = quorum('etcd');
    }),
    'witness',
    'witness.yaml',
  );
  const w = await witnessPreflight(witness);
  assert.deepEqual(w.map((p) => p.detail.slice(0, p.detail.indexOf(':'))).sort(), ['clusters[0].quorum.etcd.passwordFile', 'clusters[0].quorum.etcd.tls.caFile']);
});

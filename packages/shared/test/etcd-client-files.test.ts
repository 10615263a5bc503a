// Goal: the files of a quorum.etcd block (TLS, password) are read once, for the agent's etcd client
// and the witness's alike (loadEtcdClientFiles): the buffers the client needs for https endpoints,
// nothing for plain http, the password with its user, and a bad file named under the caller's field.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isPgvipError, loadEtcdClientFiles, type EtcdConfig } from '../src/index.js';

test('https endpoints get the CA, certificate and key; the password comes with its user; errors name the field', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-etcd-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = (name: string) => path.join(dir, name);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=db-a', '-keyout', f('client.key'), '-out', f('client.crt')], { stdio: 'ignore' });
  writeFileSync(f('password'), 'etcd-secret\n', { mode: 0o600 });
  const base = { prefix: '/pgvip', user: 'pgvip', passwordFile: f('password') };
  const tls = { caFile: f('client.crt'), certFile: f('client.crt'), keyFile: f('client.key') };
  const https = { ...base, endpoints: ['https://127.0.0.1:2379'], tls } as unknown as EtcdConfig;

  const files = await loadEtcdClientFiles(https, 'cluster.quorum.etcd');
  assert.deepEqual(files.auth, { user: 'pgvip', password: 'etcd-secret' });
  assert.equal(files.tls?.ca?.toString(), readFileSync(f('client.crt'), 'utf8'));
  assert.equal(files.tls?.cert?.toString(), readFileSync(f('client.crt'), 'utf8'));
  assert.match(files.tls?.key?.toString() ?? '', /PRIVATE KEY/);

  const plain = await loadEtcdClientFiles({ ...https, endpoints: ['http://127.0.0.1:2379'] } as EtcdConfig, 'cluster.quorum.etcd');
  assert.equal(plain.tls, undefined, 'plain http: no TLS files read');

  writeFileSync(f('bad.crt'), 'not pem');
  const bad = { ...https, tls: { ...tls, caFile: f('bad.crt') } } as EtcdConfig;
  await assert.rejects(loadEtcdClientFiles(bad, 'clusters[1].quorum.etcd'), (e: unknown) => {
    assert.ok(isPgvipError(e), String(e));
    assert.match(e.message, /clusters\[1\]\.quorum\.etcd\.tls\.caFile/);
    return true;
  });
});

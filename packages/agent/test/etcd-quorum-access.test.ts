// Goal: the etcd quorum client reaches etcd the ways docs/etcd.md tells operators to run it — TLS with
// a client certificate, and etcd users with a role limited to pgvip's prefix — and fails within its
// deadline, saying why, when the certificate, the CA or the password is wrong or the role does not
// cover the prefix. Real etcd 3.4 (one member each: the access checks do not need a quorum of three).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3, Range } from 'etcd3';
import { EtcdQuorum, type EtcdQuorumOptions } from '../src/quorum/etcd/index.js';
import { issueCertificates } from '../../witness/src/cli/tls-certs.js';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../../test/fixtures/etcd-cluster.js';

const timeoutMs = 400;
const slackMs = 250;
const now = (): number => performance.now();

/** Bootstraps term 1 for db-a and renews it once: what an agent needs to be able to do. */
async function canHoldTheLeaderKey(opts: EtcdQuorumOptions): Promise<string | null> {
  const q = new EtcdQuorum(opts);
  try {
    const g = await q.grantLease(2000);
    if (!g.ok) return g.why;
    const c = await q.campaign({ node: 'db-a', after: null, lease: g.lease, sync: 'async' });
    if (!c.ok) return c.why;
    const r = await q.renew({ node: 'db-a', term: 1, lease: g.lease });
    return r.renewed ? null : r.why;
  } finally {
    await q.close();
  }
}

/** A read that must fail: it does, within the deadline, and says why. */
async function refusedRead(opts: EtcdQuorumOptions): Promise<string> {
  const q = new EtcdQuorum(opts);
  try {
    const started = now();
    const r = await q.read();
    assert.ok(!r.ok, 'the read should have been refused');
    assert.ok(now() - started <= timeoutMs + slackMs, `refused after ${Math.round(now() - started)} ms`);
    return r.why;
  } finally {
    await q.close();
  }
}

describe('etcd quorum access: TLS and etcd users (real etcd)', { skip: etcdMissing(), timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-etcd-access-'));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  let tlsEtcd: EtcdCluster;
  let authEtcd: EtcdCluster;
  let ca: Buffer;
  let client: { cert: Buffer; key: Buffer };
  let strangerCa: Buffer;
  before(async () => {
    const set = await issueCertificates([{ name: 'etcd', addresses: ['127.0.0.1'] }, { name: 'db-a', addresses: [] }], { cluster: 'etcd-test' });
    const other = await issueCertificates([{ name: 'db-a', addresses: [] }], { cluster: 'stranger' });
    const etcdCert = set.hosts.find((h) => h.name === 'etcd');
    const dbA = set.hosts.find((h) => h.name === 'db-a');
    assert.ok(etcdCert !== undefined && dbA !== undefined);
    ca = Buffer.from(set.caCert);
    client = { cert: Buffer.from(dbA.cert), key: Buffer.from(dbA.key) };
    strangerCa = Buffer.from(other.caCert);
    tlsEtcd = await startEtcdCluster(undefined, {
      members: 1,
      tls: { caFile: file('ca.crt', set.caCert), certFile: file('etcd.crt', etcdCert.cert), keyFile: file('etcd.key', etcdCert.key) },
    });
    authEtcd = await startEtcdCluster(undefined, { members: 1 });
    // etcd's own recipe: a root user with the root role, then a role that may read and write only
    // pgvip's prefix, a user with it, and auth switched on.
    const root = new Etcd3({ hosts: [...authEtcd.endpoints] });
    try {
      await root.user('root').create('root-secret');
      await root.user('root').addRole('root');
      await root.role('pgvip').create();
      await root.role('pgvip').grant({ permission: 'Readwrite', range: Range.prefix('/pgvip-auth/') });
      await root.user('pgvip').create('pgvip-secret');
      await root.user('pgvip').addRole('pgvip');
      await root.auth.authEnable({});
    } finally {
      root.close();
    }
  });
  after(async () => {
    await tlsEtcd.cleanup();
    await authEtcd.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('TLS with the cluster\'s CA and a client certificate: the agent holds the leader key', async () => {
    const why = await canHoldTheLeaderKey({
      endpoints: tlsEtcd.endpoints, prefix: '/pgvip-tls', cluster: 'main', timeoutMs, tls: { ca, ...client },
    });
    assert.equal(why, null);
  });

  it('TLS without a client certificate, or trusting another CA: refused within the deadline', async () => {
    const noCert = await refusedRead({ endpoints: tlsEtcd.endpoints, prefix: '/pgvip-tls', cluster: 'main', timeoutMs, tls: { ca } });
    const wrongCa = await refusedRead({
      endpoints: tlsEtcd.endpoints, prefix: '/pgvip-tls', cluster: 'main', timeoutMs, tls: { ca: strangerCa, ...client },
    });
    const plain = await refusedRead({
      endpoints: tlsEtcd.endpoints.map((e) => e.replace('https://', 'http://')), prefix: '/pgvip-tls', cluster: 'main', timeoutMs,
    });
    for (const why of [noCert, wrongCa, plain]) assert.match(why, /^read: /);
  });

  it('an etcd user whose role covers the prefix: the agent holds the leader key', async () => {
    const why = await canHoldTheLeaderKey({
      endpoints: authEtcd.endpoints, prefix: '/pgvip-auth', cluster: 'main', timeoutMs, auth: { user: 'pgvip', password: 'pgvip-secret' },
    });
    assert.equal(why, null);
  });

  it('a wrong password, or a prefix the role does not cover: refused within the deadline, saying why', async () => {
    const badPassword = await refusedRead({
      endpoints: authEtcd.endpoints, prefix: '/pgvip-auth', cluster: 'main', timeoutMs, auth: { user: 'pgvip', password: 'wrong' },
    });
    assert.match(badPassword, /authentication failed/i);
    const outside = await refusedRead({
      endpoints: authEtcd.endpoints, prefix: '/elsewhere', cluster: 'main', timeoutMs, auth: { user: 'pgvip', password: 'pgvip-secret' },
    });
    assert.match(outside, /permission denied/i);
  });
});

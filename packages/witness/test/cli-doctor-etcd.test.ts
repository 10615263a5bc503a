// Goal: `pgvip doctor` proves what a node needs of etcd against real members (Debian's etcd 3.4 on
// loopback), and says what to do when it is not so:
//   Given three healthy members, Then each endpoint answers with its round-trip time, the members follow
//     one named leader, and a probe key is written, read and deleted under the prefix;
//   Given an endpoint nobody listens on, and one that accepts and never answers, Then each fails on its
//     own (unreachable; no answer in time) within its deadline, and the rest still pass;
//   Given etcd auth, Then a wrong password is refused as such, and a user whose role covers another
//     prefix gets the etcdctl grant to run;
//   Given a TLS member with client-certificate auth, Then the right CA and certificate pass, another CA
//     fails the handshake, and no client certificate is refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '@pgvip/shared';
import { etcdChecks, etcdRttWarnMs } from '../src/cli/doctor-etcd.js';
import type { Check } from '../src/cli/doctor.js';
import { issueCertificates } from '../src/cli/tls-certs.js';
import { etcdBinary, etcdMissing, startEtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const skip = etcdMissing();
const timeoutMs = 1_500;

function cluster(etcd: Record<string, unknown>, backend = 'witness') {
  const doc = {
    self: 'db-a',
    cluster: {
      name: 'main',
      nodes: [
        { id: 'db-a', agent: { host: '198.18.1.10' }, postgres: { host: '198.18.1.10', dataDir: '/var/lib/postgresql/15/main' } },
        { id: 'db-b', agent: { host: '198.18.1.11' }, postgres: { host: '198.18.1.11', dataDir: '/var/lib/postgresql/15/main' } },
      ],
      witness: { host: '198.18.2.20' },
      vip: { mode: 'secondary-ip', address: '198.18.1.100' },
      auth: { disabled: true },
      quorum: { backend, etcd },
    },
  };
  return parseConfigText(JSON.stringify(doc), 'agent', 'agent.yaml').cluster;
}

const byTitle = (checks: readonly Check[], title: string): Check =>
  checks.find((c) => c.title === title) ?? assert.fail(`no check "${title}" in:\n${checks.map((c) => `${c.status} ${c.title}: ${c.detail}`).join('\n')}`);

function dir(t: TestContext): string {
  const d = mkdtempSync(path.join(tmpdir(), 'pgvip-doctor-etcd-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const etcdctl = (endpoint: string, ...args: string[]) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn('/usr/bin/etcdctl', ['--endpoints', endpoint, ...args], { env: { ETCDCTL_API: '3', PATH: '/usr/bin:/bin' } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`etcdctl ${args.join(' ')}: ${out}`))));
  });

/** A TCP port that accepts connections and never says a word (a member behind a black hole). */
async function silentPort(t: TestContext): Promise<number> {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

test('Given three healthy members, a dead endpoint and a silent one, Then doctor proves the live ones and fails each other on its own, in bounded time', { skip }, async (t) => {
  const etcd = await startEtcdCluster(t);
  const dead = 'http://127.0.0.1:1';
  const silent = `http://127.0.0.1:${await silentPort(t)}`;
  const t0 = Date.now();
  const checks = await etcdChecks(cluster({ endpoints: [...etcd.endpoints, dead, silent] }), 'db-a', timeoutMs);
  const took = Date.now() - t0;
  assert.equal(byTitle(checks, 'quorum backend').status, 'note');
  for (const e of etcd.endpoints) {
    const c = byTitle(checks, `etcd ${e}`);
    assert.equal(c.status, 'ok', c.detail);
    assert.match(c.detail, /^etcd 3\.4\.\d+, member [0-9a-f]+, raft term \d+; round trip \d+\.\d ms \(median of 3\)$/);
  }
  assert.match(byTitle(checks, `etcd ${dead}`).detail, /^unreachable: /);
  assert.match(byTitle(checks, `etcd ${silent}`).detail, /^no answer in time: /);
  const leader = byTitle(checks, 'etcd leader');
  assert.equal(leader.status, 'ok');
  assert.match(leader.detail, /^m[0-2] \(member [0-9a-f]+\), followed by every endpoint that answered$/);
  assert.equal(leader.detail.slice(0, 2), `m${await etcd.leaderIndex()}`);
  assert.match(byTitle(checks, 'etcd members').detail, /^3 members: m0 http:\/\/127\.0\.0\.1:\d+, m1 /);
  assert.equal(byTitle(checks, 'etcd permissions').detail, 'without authentication: wrote, read and deleted /pgvip/main/doctor-probe/db-a');
  assert.equal(await etcdctl(etcd.endpoints[0]!, 'get', '--prefix', '/pgvip/'), '', 'the probe key is gone');
  // Each endpoint is asked at the same time, each call with its deadline: a black hole costs a bounded wait.
  assert.ok(took < 6 * timeoutMs, `doctor took ${took} ms`);
  assert.ok(etcdRttWarnMs >= 10);

  // Only part of the cluster named: a note, so that the operator lists every member.
  const partial = await etcdChecks(cluster({ endpoints: [etcd.endpoints[0]!], prefix: '/ha' }), 'db-a', timeoutMs);
  assert.match(byTitle(partial, 'etcd endpoints').detail, /does not name m1 \(http:\/\/127\.0\.0\.1:\d+\), m2 /);
  assert.equal(byTitle(partial, 'etcd permissions').status, 'ok');
  // backend etcd: the agents run on it; doctor says so first, and the same checks follow.
  const chosen = await etcdChecks(cluster({ endpoints: etcd.endpoints }, 'etcd'), 'db-a', timeoutMs);
  assert.equal(chosen[0]?.status, 'note');
  assert.match(chosen[0]!.detail, /^etcd: the agents keep the leader key/);
  assert.equal(chosen.filter((c) => c.status === 'fail').length, 0, JSON.stringify(chosen));
});

test('Given etcd auth, Then doctor passes the right user, refuses a wrong password as such, and names the grant a user lacks', { skip }, async (t) => {
  const etcd = await startEtcdCluster(t);
  const e = etcd.endpoints[0]!;
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['role', 'add', 'pgvip'],
    ['role', 'grant-permission', 'pgvip', 'readwrite', '--prefix=true', '/pgvip/'],
    ['user', 'add', 'pgvip:good-password'],
    ['user', 'grant-role', 'pgvip', 'pgvip'],
    ['role', 'add', 'other'],
    ['role', 'grant-permission', 'other', 'readwrite', '--prefix=true', '/other/'],
    ['user', 'add', 'elsewhere:good-password'],
    ['user', 'grant-role', 'elsewhere', 'other'],
    ['auth', 'enable'],
  ]) {
    await etcdctl(e, ...args);
  }
  const d = dir(t);
  const good = path.join(d, 'good');
  writeFileSync(good, 'good-password\n', { mode: 0o600 });
  const bad = path.join(d, 'bad');
  writeFileSync(bad, 'wrong\n', { mode: 0o600 });
  const run = (user: string, passwordFile: string) => etcdChecks(cluster({ endpoints: etcd.endpoints, user, passwordFile }), 'db-a', timeoutMs);

  const ok = await run('pgvip', good);
  assert.equal(byTitle(ok, 'etcd permissions').detail, 'as user pgvip: wrote, read and deleted /pgvip/main/doctor-probe/db-a');
  assert.equal(byTitle(ok, `etcd ${e}`).status, 'ok');

  const refused = byTitle(await run('pgvip', bad), `etcd ${e}`);
  assert.equal(refused.status, 'fail');
  assert.match(refused.detail, /^authentication refused: /);
  assert.match(refused.fix ?? '', new RegExp(`check the password in ${bad} for user pgvip`));

  const denied = byTitle(await run('elsewhere', good), 'etcd permissions');
  assert.equal(denied.status, 'fail');
  assert.match(denied.detail, /^permission denied on \/pgvip\/main\/doctor-probe\/db-a: /);
  assert.equal(denied.fix, 'grant the user\'s role readwrite on the prefix: etcdctl role grant-permission <role> readwrite --prefix=true /pgvip/');

  // A password file others can read is refused as the daemons refuse it.
  const open = path.join(d, 'open');
  writeFileSync(open, 'good-password\n', { mode: 0o644 });
  const files = byTitle(await run('pgvip', open), 'etcd client files');
  assert.match(files.detail, /cluster\.quorum\.etcd\.passwordFile: .* chmod 600/);
});

/** One etcd member serving clients over TLS with client-certificate auth, on loopback. */
async function startTlsMember(t: TestContext, files: { ca: string; cert: string; key: string }): Promise<string> {
  const d = dir(t);
  const port = await silentPortNumber();
  const peer = await silentPortNumber();
  const url = `https://127.0.0.1:${port}`;
  const child = spawn(etcdBinary, [
    '--name', 'tls', '--data-dir', path.join(d, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `tls=http://127.0.0.1:${peer}`,
    '--cert-file', files.cert, '--key-file', files.key, '--trusted-ca-file', files.ca, '--client-cert-auth',
    '--log-level', 'warn',
  ], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin', HOME: d } });
  t.after(() => child.kill('SIGKILL'));
  await waitUntil('the TLS member to serve', 20_000, async () => {
    const r = await etcdctl(url, '--cacert', files.ca, '--cert', files.cert, '--key', files.key, 'endpoint', 'health').catch(() => '');
    return r.includes('is healthy');
  }, 100);
  return url;
}

async function silentPortNumber(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('Given a TLS member with client-certificate auth, Then the right CA and certificate pass, and another CA or no certificate fail', { skip }, async (t) => {
  const d = dir(t);
  const [set, other] = await Promise.all([
    issueCertificates([{ name: 'etcd', addresses: ['127.0.0.1'] }, { name: 'db-a', addresses: ['127.0.0.1'] }], { cluster: 'etcd' }),
    issueCertificates([{ name: 'etcd', addresses: ['127.0.0.1'] }], { cluster: 'elsewhere' }),
  ]);
  const write = (name: string, text: string, mode = 0o644) => {
    const f = path.join(d, name);
    writeFileSync(f, text, { mode });
    return f;
  };
  const ca = write('ca.crt', set.caCert);
  const otherCa = write('other-ca.crt', other.caCert);
  const host = (n: string) => set.hosts.find((h) => h.name === n)!;
  const url = await startTlsMember(t, { ca, cert: write('etcd.crt', host('etcd').cert), key: write('etcd.key', host('etcd').key, 0o600) });
  const certFile = write('db-a.crt', host('db-a').cert);
  const keyFile = write('db-a.key', host('db-a').key, 0o600);

  const ok = await etcdChecks(cluster({ endpoints: [url], tls: { caFile: ca, certFile, keyFile } }), 'db-a', timeoutMs);
  assert.match(byTitle(ok, `etcd ${url}`).detail, /, TLS verified; round trip /);
  assert.equal(byTitle(ok, 'etcd permissions').detail, 'as the client certificate\'s user: wrote, read and deleted /pgvip/main/doctor-probe/db-a');

  const wrongCa = byTitle(await etcdChecks(cluster({ endpoints: [url], tls: { caFile: otherCa, certFile, keyFile } }), 'db-a', timeoutMs), `etcd ${url}`);
  assert.equal(wrongCa.status, 'fail');
  assert.match(wrongCa.detail, /^TLS handshake failed: /);
  assert.match(wrongCa.fix ?? '', new RegExp(`check that ${otherCa} issued the member's certificate`));

  const noCert = byTitle(await etcdChecks(cluster({ endpoints: [url], tls: { caFile: ca } }), 'db-a', timeoutMs), `etcd ${url}`);
  assert.equal(noCert.status, 'fail', noCert.detail);
  assert.match(noCert.fix ?? '', /the member refused this host's client certificate \(or its absence\)/);
});

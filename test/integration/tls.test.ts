// Goal: TLS on every listener, with certificates from `pgvip init --tls`'s own code (openssl). The
// real daemons elect a primary over mutual TLS; a listener refuses plain HTTP, a server certificate of
// another CA is refused by the client, and under mutual TLS a client without a certificate (or with
// one of another CA) is refused in the handshake; a witness process serves a renewed certificate
// after SIGHUP without restarting, and keeps the old one when the new files are bad; an operator API
// bound beyond loopback without TLS does not start; bad files are refused naming the field.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import pino from 'pino';
import {
  formatKeyFile,
  generateKey,
  isPgvipError,
  loadTlsMaterial,
  parseConfigText,
  type AgentConfig,
  type WitnessConfig,
} from '@pgvip/shared';
import { FakePgNetwork, FakePostgres } from '../../packages/agent/src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon } from '../../packages/witness/src/daemon.js';
import { runInit } from '../../packages/witness/src/cli/init.js';
import { issueCertificates, type IssuedSet } from '../../packages/witness/src/cli/tls-certs.js';
import { clusterPorts, clusterYaml, freePort, pgPort, until } from './helpers.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const hosts = [
  { name: 'db-a', addresses: ['127.0.0.1'] },
  { name: 'db-b', addresses: ['127.0.0.1'] },
  { name: 'witness', addresses: ['127.0.0.1', 'localhost'] },
];

/** Writes an issued set as an operator installs it: certificates 0644, keys 0600. */
function install(set: IssuedSet, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'ca.crt'), set.caCert);
  for (const h of set.hosts) {
    writeFileSync(path.join(dir, `${h.name}.crt`), h.cert);
    writeFileSync(path.join(dir, `${h.name}.key`), h.key, { mode: 0o600 });
  }
}

const pemOf = (set: IssuedSet, name: string) => set.hosts.find((h) => h.name === name)!;

/** One HTTPS GET; resolves with the status, or rejects with the TLS/socket error. */
type GetOptions = ConnectionOptions & { headers?: Record<string, string> };

function get(port: number, urlPath: string, opts: GetOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5_000, ...opts }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** The SHA-256 fingerprint of the certificate a TLS listener serves now. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
    s.setTimeout(3_000, () => s.destroy(new Error('no handshake within 3 s')));
  });
}

/** What a plain-HTTP request to `port` gets: the status line, or the error that ended it. */
function plainHttp(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
    s.on('close', () => resolve(got === '' ? 'closed' : got.split('\r\n')[0]!));
  });
}

interface Certs {
  readonly dir: string;
  readonly set: IssuedSet;
  readonly other: IssuedSet;
}

async function certs(t: TestContext): Promise<Certs> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [set, other] = await Promise.all([issueCertificates(hosts, { cluster: 'orders' }), issueCertificates(hosts, { cluster: 'elsewhere' })]);
  install(set, path.join(dir, 'tls'));
  return { dir, set, other };
}

test('the daemons elect a primary over mutual TLS; the listeners refuse plain HTTP, other CAs and clients without a certificate', { timeout: 120_000 }, async (t) => {
  const { dir, set, other } = await certs(t);
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const token = generateKey().toString('hex');
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const ports = await clusterPorts();
  const { pa, pw, po, qa, qb } = ports;
  const tls = (self: string) => `tls: { certFile: ${dir}/tls/${self}.crt, keyFile: ${dir}/tls/${self}.key, caFile: ${dir}/tls/ca.crt, mutual: true }\n`;
  const cluster = clusterYaml(ports, `{ keyFile: ${keyFile} }`);
  const agentCfg = (self: string): AgentConfig =>
    parseConfigText(`self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n${tls(self)}cluster:${cluster}`, 'agent', `${self}.yaml`);
  const operatorTls = `tls: { certFile: ${dir}/tls/witness.crt, keyFile: ${dir}/tls/witness.key }`;
  const witnessCfg: WitnessConfig = parseConfigText(
    `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\n${tls('witness')}` +
      `operatorApi: { host: 127.0.0.1, port: ${po}, tokenFile: ${tokenFile}, ${operatorTls} }\nstateDir: ${dir}/witness\n` +
      `clusters:\n  -${cluster.replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
    'witness',
    'witness.yaml',
  );
  const network = new FakePgNetwork();
  const pgA = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: qa, user: 'pgvip', database: 'postgres' } });
  const pgB = new FakePostgres({ network, nodeName: 'db-b', endpoint: { host: '127.0.0.1', port: qb, user: 'pgvip', database: 'postgres' }, standbyOf: pgA.endpoint });
  const listeners = [await pgPort(qa), await pgPort(qb)];
  t.after(() => listeners.forEach((l) => l.close()));
  const cloud = new FakeVipCloud();
  const log = pino({ level: process.env.PGVIP_TEST_LOG ?? 'silent' });
  const witness = await createWitnessDaemon(witnessCfg, { log: log.child({ daemon: 'witness' }) });
  await witness.protocol.listen({ host: '127.0.0.1', port: pw });
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  witness.startPolling();
  t.after(() => witness.close());
  const agents: Record<string, AgentDaemon> = {};
  for (const [self, pg] of [['db-a', pgA], ['db-b', pgB]] as const) {
    const vip = new FakeVipPort(cloud, self);
    const logger = log.child({ daemon: self });
    agents[self] = await startAgentDaemon(agentCfg(self), { logger, pg, vip, onFatal: (e) => assert.fail(e) });
    t.after(() => agents[self]!.close());
  }

  // Given every listener on TLS (mutual between the daemons), When they run, Then db-a is elected:
  // every lease request and poll went over TLS, HMAC-signed inside.
  const ca = set.caCert;
  const a = pemOf(set, 'db-a');
  const w = pemOf(set, 'witness');
  const asWitness = { ca, cert: w.cert, key: w.key };
  await until('db-a to be primary over TLS', async () => (await get(pa, '/primary', asWitness).catch(() => 0)) === 200);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  // And the operator API answers over HTTPS, verified against the cluster's CA (no client certificate needed).
  assert.equal(await get(po, '/api/v1/clusters/orders', { ca, servername: 'localhost', headers: { authorization: `Bearer ${token}` } }), 200);

  // Plain HTTP to a TLS listener: no HTTP answer at all (the handshake fails, the socket is closed).
  for (const port of [pa, pw, po]) assert.doesNotMatch(await plainHttp(port), /^HTTP\//, `plain HTTP to port ${port}`);
  // A client that trusts another CA refuses the server's certificate.
  await assert.rejects(get(pa, '/health', { ca: other.caCert, cert: w.cert, key: w.key }), /unable to verify|self.signed|UNABLE_TO_VERIFY|certificate/i);
  // Mutual TLS: no client certificate, or one issued by another CA, is refused in the handshake.
  await assert.rejects(get(pa, '/health', { ca }), /certificate|alert|socket hang up|ECONNRESET|EPIPE/i);
  await assert.rejects(get(pw, '/health', { ca }), /certificate|alert|socket hang up|ECONNRESET|EPIPE/i);
  const stranger = pemOf(other, 'witness');
  await assert.rejects(get(pa, '/health', { ca, cert: stranger.cert, key: stranger.key }), /certificate|alert|socket hang up|ECONNRESET|EPIPE/i);
  // While a client with the cluster's CA and its own certificate gets in.
  assert.equal(await get(pa, '/health', { ca, cert: a.cert, key: a.key }), 200);
});

test('a TLS listener closes a connection whose handshake does not finish within the limit', { timeout: 30_000 }, async (t) => {
  const { dir } = await certs(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 'x'.repeat(64), { mode: 0o600 });
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const [pw, po] = await Promise.all([freePort(), freePort()]);
  const cfg: WitnessConfig = parseConfigText(witnessYaml(dir, pw, po, keyFile, tokenFile, '127.0.0.1', true), 'witness', 'witness.yaml');
  const witness = await createWitnessDaemon(cfg, { log: pino({ level: 'silent' }) });
  t.after(() => witness.close());
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  // A client that connects and never says hello.
  const t0 = Date.now();
  const closed = await new Promise<number>((resolve) => {
    const s = netConnect(po, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => resolve(Date.now() - t0));
  });
  assert.ok(closed >= 4_000 && closed < 10_000, `closed after ${closed} ms (handshake limit 5000 ms)`);
});

function witnessYaml(
  dir: string,
  pw: number,
  po: number,
  keyFile: string,
  tokenFile: string,
  host: string,
  operatorTls: boolean,
): string {
  const tls = operatorTls ? `, tls: { certFile: ${dir}/tls/witness.crt, keyFile: ${dir}/tls/witness.key }` : '';
  return [
    'id: witness',
    `listen: { host: 127.0.0.1, port: ${pw} }`,
    `tls: { certFile: ${dir}/tls/witness.crt, keyFile: ${dir}/tls/witness.key, caFile: ${dir}/tls/ca.crt }`,
    `operatorApi: { host: ${host}, port: ${po}, tokenFile: ${tokenFile}${tls} }`,
    `stateDir: ${dir}/witness`,
    'clusters:',
    '  - name: orders',
    '    nodes:',
    '      - { id: db-a, agent: { host: 127.0.0.1, port: 1 }, postgres: { host: 127.0.0.1, port: 2, dataDir: /srv/a } }',
    '      - { id: db-b, agent: { host: 127.0.0.1, port: 3 }, postgres: { host: 127.0.0.1, port: 4, dataDir: /srv/b } }',
    `    witness: { host: 127.0.0.1, port: ${pw} }`,
    '    vip: { mode: secondary-ip, address: 198.18.1.100, discovery: imds }',
    `    auth: { keyFile: ${keyFile} }`,
    '',
  ].join('\n');
}

/** The witness daemon as a process (scripts/run-ts.mjs, as `npm run witness` runs it). */
interface WitnessProcess {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

function spawnWitness(t: TestContext, config: string): WitnessProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/run-ts.mjs'), 'packages/witness/src/main.ts', '--config', config], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

test('SIGHUP makes a running witness serve a renewed certificate, and keeps the old one when the new files are bad', { timeout: 90_000 }, async (t) => {
  const { dir, set } = await certs(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 'x'.repeat(64), { mode: 0o600 });
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const [pw, po] = await Promise.all([freePort(), freePort()]);
  const config = path.join(dir, 'witness.yaml');
  writeFileSync(config, witnessYaml(dir, pw, po, keyFile, tokenFile, '127.0.0.1', true));
  const witness = spawnWitness(t, config);
  const ca = set.caCert;
  const before = await until('the witness to serve TLS', () => servedFingerprint(po, ca).catch(() => undefined), 30_000);
  assert.equal(before, await servedFingerprint(pw, ca));

  // When the certificate is renewed (a new key and certificate from the same CA) and SIGHUP sent,
  const renewed = await issueCertificates(hosts, { cluster: 'orders' });
  // (the new set's CA differs; the operator API has no caFile, and the peer listener trusts the old CA)
  const r = pemOf(renewed, 'witness');
  writeFileSync(path.join(dir, 'tls/witness.crt'), r.cert);
  writeFileSync(path.join(dir, 'tls/witness.key'), r.key, { mode: 0o600 });
  witness.child.kill('SIGHUP');
  // Then both listeners serve the new certificate, and the process never stopped.
  const after = await until('the renewed certificate to be served', async () => {
    const fp = await servedFingerprint(po, renewed.caCert).catch(() => undefined);
    return fp !== undefined && fp !== before ? fp : undefined;
  });
  assert.equal(await servedFingerprint(pw, renewed.caCert), after);
  assert.equal(witness.child.exitCode, null);
  assert.match(witness.output(), /TLS files of operatorApi\.tls reloaded/);

  // When the key no longer matches the certificate, SIGHUP changes nothing and says why.
  writeFileSync(path.join(dir, 'tls/witness.key'), pemOf(set, 'witness').key, { mode: 0o600 });
  witness.child.kill('SIGHUP');
  await until('the refused reload to be logged', () => /TLS files of tls not reloaded, its listener keeps serving the certificate it had: .*is not the private key of the certificate/.test(witness.output()));
  assert.equal(await servedFingerprint(po, renewed.caCert), after);
  assert.equal(witness.child.exitCode, null);
  witness.child.kill('SIGTERM');
  assert.equal(await witness.exited, 0);
});

test('an operator API bound beyond loopback without TLS does not start, naming operatorApi.tls and the fix', { timeout: 60_000 }, async (t) => {
  const { dir } = await certs(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 'x'.repeat(64), { mode: 0o600 });
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const config = path.join(dir, 'witness.yaml');
  writeFileSync(config, witnessYaml(dir, await freePort(), await freePort(), keyFile, tokenFile, '0.0.0.0', false));
  const witness = spawnWitness(t, config);
  assert.equal(await witness.exited, 2);
  const required = /operatorApi\.tls.*is required when operatorApi\.host is not a loopback address \(host is 0\.0\.0\.0\)/s;
  assert.match(witness.output(), required);
  assert.match(witness.output(), /the operator token crosses the network in clear/);
  assert.match(witness.output(), /set operatorApi\.tls\.certFile and keyFile/);
  // The same file with TLS on the operator API is accepted.
  const ok = parseConfigText(witnessYaml(dir, 1, 2, keyFile, tokenFile, '0.0.0.0', true), 'witness', 'witness.yaml');
  assert.equal(ok.operatorApi.tls?.certFile, `${dir}/tls/witness.crt`);
});

test('unusable TLS files are refused with PGVIP_TLS_FILE naming the field', { timeout: 60_000 }, async (t) => {
  const { dir, other } = await certs(t);
  const files = { certFile: `${dir}/tls/db-a.crt`, keyFile: `${dir}/tls/db-a.key`, caFile: `${dir}/tls/ca.crt` };
  const loaded = await loadTlsMaterial(files, 'tls');
  assert.ok(loaded.notAfter.getTime() > Date.now());
  const refusal = async (f: typeof files, pattern: RegExp) => {
    await assert.rejects(loadTlsMaterial(f, 'tls'), (e: unknown) => {
      assert.ok(isPgvipError(e, 'PGVIP_TLS_FILE'), String(e));
      assert.match(e.detail, pattern);
      return true;
    });
  };
  await refusal({ ...files, certFile: `${dir}/missing.crt` }, /^tls\.certFile: .*missing\.crt does not exist/);
  writeFileSync(`${dir}/junk.pem`, 'not a certificate\n');
  await refusal({ ...files, caFile: `${dir}/junk.pem` }, /^tls\.caFile: .*holds no PEM certificate/);
  const otherKey = `${dir}/other.key`;
  writeFileSync(otherKey, pemOf(other, 'db-a').key, { mode: 0o600 });
  await refusal({ ...files, keyFile: otherKey }, /^tls\.keyFile: .*is not the private key of the certificate/);
  chmodSync(otherKey, 0o644);
  await refusal({ ...files, keyFile: otherKey }, /tls\.keyFile: .*readable or writable by group or others.*chmod 600/);
  writeFileSync(`${dir}/junk.key`, 'junk\n', { mode: 0o600 });
  await refusal({ ...files, keyFile: `${dir}/junk.key` }, /^tls\.keyFile: .*holds no usable private key/);
});

test('pgvip init --tls writes a CA, a certificate per daemon naming its address, 0600 keys and configs that use them', { timeout: 60_000 }, async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'pgvip-init-tls-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await runInit(
    {
      cluster: 'orders', nodes: ['db-a=10.0.1.11', 'db-b=10.0.1.12'], witness: '10.0.2.20', vipMode: 'secondary-ip', vip: '10.0.1.100',
      routeTables: [], enis: [], configDir: '/etc/pgvip', pgDataDir: '/var/lib/postgresql/15/main', pgBinDir: '/usr/lib/postgresql/15/bin',
      out, force: true, tls: true,
    },
    undefined,
  );
  const tlsDir = path.join(out, 'tls');
  for (const name of ['ca.key', 'db-a.key', 'db-b.key', 'witness.key']) assert.equal(statSync(path.join(tlsDir, name)).mode & 0o777, 0o600, name);
  for (const name of ['ca.crt', 'db-a.crt', 'db-b.crt', 'witness.crt']) assert.ok(r.files.some((f) => f.path === path.join(tlsDir, name)), name);
  const { X509Certificate } = await import('node:crypto');
  const caCert = new X509Certificate(readFileSync(path.join(tlsDir, 'ca.crt')));
  const cert = (n: string) => new X509Certificate(readFileSync(path.join(tlsDir, `${n}.crt`)));
  assert.equal(cert('db-a').checkIP('10.0.1.11'), '10.0.1.11');
  assert.equal(cert('db-b').checkIP('10.0.1.11'), undefined);
  assert.equal(cert('witness').checkIP('127.0.0.1'), '127.0.0.1');
  assert.ok(cert('db-b').verify(caCert.publicKey) && cert('witness').checkIssued(caCert));
  const agent = parseConfigText(readFileSync(path.join(out, 'agent-db-a.yaml'), 'utf8'), 'agent', 'agent-db-a.yaml');
  assert.deepEqual(agent.tls, { certFile: '/etc/pgvip/tls/db-a.crt', keyFile: '/etc/pgvip/tls/db-a.key', caFile: '/etc/pgvip/tls/ca.crt', mutual: true });
  const witness = parseConfigText(readFileSync(path.join(out, 'witness.yaml'), 'utf8'), 'witness', 'witness.yaml');
  assert.equal(witness.tls?.certFile, '/etc/pgvip/tls/witness.crt');
  assert.deepEqual(witness.operatorApi.tls, { certFile: '/etc/pgvip/tls/witness.crt', keyFile: '/etc/pgvip/tls/witness.key' });
});

test('a TLS listener keeps the HTTP limits: headers that trickle in are cut, the cap spares a request being answered', { timeout: 60_000 }, async (t) => {
  const { set } = await certs(t);
  const { default: Fastify } = await import('fastify');
  const { applyServerLimits, serverLimitOptions } = await import('@pgvip/shared');
  const w = pemOf(set, 'witness');
  const m = { cert: w.cert, key: w.key, ca: set.caCert, fingerprint256: '', notAfter: new Date() };
  const app = Fastify({ ...serverLimitOptions({ tls: { material: m, mutual: false } }) });
  applyServerLimits(app, { maxConnections: 2 });
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as { port: number }).port;

  // Headers sent one byte a second after the handshake: cut at the request timeout (5 s, checked every
  // second), not after Node's 30 s check interval, which a TLS server would use without the limits.
  const t0 = Date.now();
  const cutAfter = await new Promise<number>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: set.caCert, servername: 'localhost' }, () => {
      const text = 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(60);
      let i = 0;
      const timer = setInterval(() => (i < text.length ? s.write(text[i++]!) : undefined), 1_000);
      s.on('close', () => clearInterval(timer));
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(Date.now() - t0));
  });
  assert.ok(cutAfter >= 4_000 && cutAfter < 9_000, `cut after ${cutAfter} ms`);

  // At the cap (2), a request being answered over TLS is not the connection evicted for a newcomer:
  // the one that has sent nothing yet is.
  const answered = get(port, '/slow', { ca: set.caCert, servername: 'localhost' });
  await new Promise((r) => setTimeout(r, 300));
  const silent = netConnect(port, '127.0.0.1');
  silent.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, 200));
  const newcomer = netConnect(port, '127.0.0.1');
  newcomer.on('error', () => undefined);
  t.after(() => {
    silent.destroy();
    newcomer.destroy();
  });
  assert.equal(await answered, 200);
});

test('the pgvip CLI reaches an HTTPS operator API with --ca-file, and says what to do without it', { timeout: 90_000 }, async (t) => {
  const { runPgvip } = await import('../../packages/witness/test/cli-helpers.js');
  const { dir } = await certs(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 'x'.repeat(64), { mode: 0o600 });
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const [pw, po] = await Promise.all([freePort(), freePort()]);
  const cfg: WitnessConfig = parseConfigText(witnessYaml(dir, pw, po, keyFile, tokenFile, '127.0.0.1', true), 'witness', 'witness.yaml');
  const witness = await createWitnessDaemon(cfg, { log: pino({ level: 'silent' }) });
  t.after(() => witness.close());
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  const common = ['--token-file', tokenFile, '--json'];

  const ok = await runPgvip(['--witness', `https://127.0.0.1:${po}`, '--ca-file', `${dir}/tls/ca.crt`, ...common, 'status']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /"cluster": ?"orders"/);
  // The same by name: the witness's certificate names localhost too (pgvip init --tls).
  const byName = await runPgvip(['--witness', `https://localhost:${po}`, ...common, 'status'], { env: { PGVIP_CA_FILE: `${dir}/tls/ca.crt` } });
  assert.equal(byName.code, 0, byName.stderr);

  const untrusted = await runPgvip(['--witness', `https://127.0.0.1:${po}`, ...common, 'status']);
  assert.notEqual(untrusted.code, 0);
  assert.match(untrusted.stderr + untrusted.stdout, /presented a certificate that was refused.*pass --ca-file with the cluster's ca\.crt/);
  const plain = await runPgvip(['--witness', `http://127.0.0.1:${po}`, ...common, 'status']);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr + plain.stdout, /use an https:\/\/ --witness/);
  const misplaced = await runPgvip(['--witness', `http://127.0.0.1:${po}`, '--ca-file', `${dir}/tls/ca.crt`, ...common, 'status']);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr + misplaced.stdout, /--ca-file is for an https:\/\/ --witness/);

  // pgvip init --tls, as typed.
  const out = path.join(dir, 'init');
  const init = await runPgvip([
    '--cluster', 'orders', 'init', '--tls', '--out', out, '--node', 'db-a=10.0.1.11', '--node', 'db-b=10.0.1.12',
    '--witness-host', '10.0.2.20', '--vip', '10.0.1.100',
  ]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /tls\/witness\.key \(0600\)/);
  assert.match(readFileSync(path.join(out, 'agent-db-b.yaml'), 'utf8'), /certFile: \/etc\/pgvip\/tls\/db-b\.crt/);
});

test('pgvip doctor reports the TLS certificate: fine, expiring within 30 days, expired, or unusable', { timeout: 60_000 }, async (t) => {
  const { tlsCheck } = await import('../../packages/witness/src/cli/doctor-tls.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-doctor-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  install(await issueCertificates(hosts, { cluster: 'orders', hostDays: 10 }), path.join(dir, 'tls'));
  const tls = { certFile: `${dir}/tls/db-a.crt`, keyFile: `${dir}/tls/db-a.key`, caFile: `${dir}/tls/ca.crt`, mutual: true };
  const config = { tls } as unknown as AgentConfig;
  const soon = await tlsCheck(config);
  assert.equal(soon?.status, 'fail');
  assert.match(soon?.detail ?? '', /expires in 9 days/);
  assert.equal((await tlsCheck(config, Date.now() - 30 * 86_400_000))?.status, 'ok');
  const expired = await tlsCheck(config, Date.now() + 11 * 86_400_000);
  assert.match(expired?.detail ?? '', /EXPIRED/);
  writeFileSync(`${dir}/tls/db-a.key`, pemOf(await issueCertificates(hosts.slice(0, 1), { cluster: 'x' }), 'db-a').key, { mode: 0o600 });
  const broken = await tlsCheck(config);
  assert.equal(broken?.status, 'fail');
  assert.match(broken?.detail ?? '', /PGVIP_TLS_FILE: tls\.keyFile: .*is not the private key/);
  assert.equal(await tlsCheck({} as AgentConfig), null);
});

test('pgvip check-config finds what would stop the daemon in its TLS files, as the daemon does', { timeout: 60_000 }, async (t) => {
  const { witnessPreflight } = await import('@pgvip/shared');
  const { dir, other } = await certs(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 'x'.repeat(64), { mode: 0o600 });
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const cfg: WitnessConfig = parseConfigText(witnessYaml(dir, 1, 2, keyFile, tokenFile, '127.0.0.1', true), 'witness', 'witness.yaml');
  assert.deepEqual((await witnessPreflight(cfg)).map((p) => p.code), []);
  // A key that is not the certificate's: named for both listeners that use the files.
  writeFileSync(path.join(dir, 'tls/witness.key'), pemOf(other, 'witness').key, { mode: 0o600 });
  const problems = await witnessPreflight(cfg);
  assert.deepEqual(problems.map((p) => p.code), ['PGVIP_TLS_FILE', 'PGVIP_TLS_FILE']);
  assert.match(problems[0]!.detail, /^tls\.keyFile: .*is not the private key/);
  assert.match(problems[1]!.detail, /^operatorApi\.tls\.keyFile: /);
});

// Goal: TLS can be turned on one daemon at a time, with no failover (docs/deploy.md, "Turning TLS on
// without a maintenance window"). The real daemons of a running cluster on plain HTTP are restarted
// one by one into tls.transition "listen" (each listener takes TLS and plain HTTP, requests stay
// plain), then into "dial" (requests over TLS), then into TLS alone. Throughout, db-a stays the
// primary in the same term, db-b never promotes, the VIP never moves, and after every restart the
// restarted daemon grants the primary's lease again before the next one goes. At the end every
// listener refuses plain HTTP and the cluster runs on mutual TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { formatKeyFile, generateKey, parseConfigText, type AgentConfig, type WitnessConfig } from '@pgvip/shared';
import { agentRole } from '@pgvip/shared/core';
import { FakePgNetwork, FakePostgres } from '../../packages/agent/src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon, type WitnessDaemon } from '../../packages/witness/src/daemon.js';
import { issueCertificates } from '../../packages/witness/src/cli/tls-certs.js';
import { clusterPorts, clusterYaml, pgPort, until } from './helpers.js';

/** Where a daemon is in the procedure: no tls block, the two transition steps, TLS alone. */
type Step = 'plain' | 'listen' | 'dial' | 'tls';

/** The first line a plain-HTTP GET /health on `port` gets back, or what ended the connection. */
function plainHttp(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
    s.on('close', () => resolve(got === '' ? 'closed' : got.split('\r\n')[0]!));
    s.setTimeout(5_000, () => s.destroy());
  });
}

/** The status of an HTTPS GET of `urlPath` on `port` with a client certificate, or the error. */
type Pem = { ca: string; cert: string; key: string };

function tlsGet(port: number, urlPath: string, pem: Pem): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5_000, ...pem }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

test('TLS is turned on one daemon at a time (transition listen, then dial, then TLS alone) with no failover', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-tls-rolling-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const set = await issueCertificates(
    [
      { name: 'db-a', addresses: ['127.0.0.1'] },
      { name: 'db-b', addresses: ['127.0.0.1'] },
      { name: 'witness', addresses: ['127.0.0.1'] },
    ],
    { cluster: 'orders' },
  );
  mkdirSync(path.join(dir, 'tls'));
  writeFileSync(path.join(dir, 'tls/ca.crt'), set.caCert);
  for (const h of set.hosts) {
    writeFileSync(path.join(dir, `tls/${h.name}.crt`), h.cert);
    writeFileSync(path.join(dir, `tls/${h.name}.key`), h.key, { mode: 0o600 });
  }
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, `${generateKey().toString('hex')}\n`, { mode: 0o600 });
  const ports = await clusterPorts();
  const { pa, pb, pw, po, qa, qb } = ports;
  const cluster = clusterYaml(ports, `{ keyFile: ${keyFile} }`);

  // The tls block of `self` at `step`: mutual TLS from the first step (pgvip's clients always present
  // their certificate; a plain connection has none to check, which is what the transition is for).
  const tlsBlock = (self: string, step: Step): string => {
    if (step === 'plain') return '';
    const transition = step === 'tls' ? '' : `, transition: ${step}`;
    return `tls: { certFile: ${dir}/tls/${self}.crt, keyFile: ${dir}/tls/${self}.key, caFile: ${dir}/tls/ca.crt, mutual: true${transition} }\n`;
  };
  const agentCfg = (self: string, step: Step): AgentConfig =>
    parseConfigText(`self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n${tlsBlock(self, step)}cluster:${cluster}`, 'agent', `${self}.yaml`);
  const witnessCfg = (step: Step): WitnessConfig =>
    parseConfigText(
      `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\n${tlsBlock('witness', step)}` +
        `operatorApi: { host: 127.0.0.1, port: ${po}, tokenFile: ${tokenFile} }\nstateDir: ${dir}/witness\n` +
        `clusters:\n  -${cluster.replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
      'witness',
      'witness.yaml',
    );

  const network = new FakePgNetwork();
  const pg = {
    'db-a': new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: qa, user: 'pgvip', database: 'postgres' } }),
    'db-b': undefined as FakePostgres | undefined,
  };
  pg['db-b'] = new FakePostgres({ network, nodeName: 'db-b', endpoint: { host: '127.0.0.1', port: qb, user: 'pgvip', database: 'postgres' }, standbyOf: pg['db-a'].endpoint });
  const listeners = [await pgPort(qa), await pgPort(qb)];
  t.after(() => listeners.forEach((l) => l.close()));
  const cloud = new FakeVipCloud();
  const log = pino({ level: process.env.PGVIP_TEST_LOG ?? 'silent' });

  let witness: WitnessDaemon | undefined;
  const agents: Record<'db-a' | 'db-b', AgentDaemon | undefined> = { 'db-a': undefined, 'db-b': undefined };
  t.after(async () => {
    await Promise.all([witness?.close(), agents['db-a']?.close(), agents['db-b']?.close()]);
  });
  const startWitness = async (step: Step): Promise<void> => {
    witness = await createWitnessDaemon(witnessCfg(step), { log: log.child({ daemon: 'witness' }) });
    await witness.protocol.listen({ host: '127.0.0.1', port: pw });
    await witness.operator.listen({ host: '127.0.0.1', port: po });
    witness.startPolling();
  };
  const startAgent = async (self: 'db-a' | 'db-b', step: Step): Promise<void> => {
    agents[self] = await startAgentDaemon(agentCfg(self, step), {
      logger: log.child({ daemon: self }),
      pg: pg[self]!,
      vip: new FakeVipPort(cloud, self),
      onFatal: (e) => assert.fail(e),
    });
  };

  /** The primary's lease renewals granted so far by `grantor` (its /metrics; a restarted db-a counts from 0). */
  const granted = async (grantor: 'witness' | 'peer'): Promise<number> => {
    const res = await agents['db-a']!.app.inject({ url: '/metrics' });
    const m = new RegExp(`^pgvip_agent_lease_renewals_total\\{[^}]*grantor="${grantor}"[^}]*result="granted"[^}]*\\} (\\d+)`, 'm').exec(res.body);
    return Number(m?.[1] ?? 0);
  };

  // Given a cluster on plain HTTP with db-a elected,
  await startWitness('plain');
  await startAgent('db-a', 'plain');
  await startAgent('db-b', 'plain');
  await until('db-a to be the primary', () => agents['db-a']!.runner.state && agentRole(agents['db-a']!.runner.state) === 'primary', 30_000);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  await until('both grantors renewing db-a\'s lease', async () => (await granted('witness')) > 0 && (await granted('peer')) > 0, 30_000);
  const term = agents['db-a']!.runner.state.durable.term;

  // Watched all along: no failover, ever.
  const seen = { bPrimary: false, vipElsewhere: new Set<string>(), terms: new Set<number>() };
  const watch = setInterval(() => {
    const b = agents['db-b'];
    if (b !== undefined && agentRole(b.runner.state) === 'primary') seen.bPrimary = true;
    if (cloud.assignedTo !== 'db-a') seen.vipElsewhere.add(String(cloud.assignedTo));
    for (const a of Object.values(agents)) if (a !== undefined) seen.terms.add(a.runner.state.durable.term);
  }, 20);
  t.after(() => clearInterval(watch));

  const order = ['witness', 'db-b', 'db-a'] as const;
  for (const step of ['listen', 'dial', 'tls'] as const) {
    for (const daemon of order) {
      // When one daemon is restarted into the next step,
      if (daemon === 'witness') {
        const before = await granted('witness');
        await witness!.close();
        await startWitness(step);
        // Then it grants the primary's lease again (it waits out its promise first) before the next goes.
        await until(`the witness (${step}) to grant db-a's lease again`, async () => (await granted('witness')) >= before + 2, 60_000);
      } else if (daemon === 'db-b') {
        const before = await granted('peer');
        await agents['db-b']!.close();
        await startAgent('db-b', step);
        await until(`db-b (${step}) to grant db-a's lease again`, async () => (await granted('peer')) >= before + 2, 60_000);
      } else {
        await agents['db-a']!.close();
        await startAgent('db-a', step);
        await until(`db-a (${step}) to be the primary again, renewing with both`, async () =>
          agentRole(agents['db-a']!.runner.state) === 'primary' && (await granted('witness')) >= 2 && (await granted('peer')) >= 2, 60_000);
      }
      assert.equal(seen.bPrimary, false, `db-b became primary after ${daemon} went to ${step}`);
      assert.deepEqual([...seen.vipElsewhere], [], `the VIP moved after ${daemon} went to ${step}`);
    }
    // While in transition every peer listener answers both plain HTTP and TLS (with a client
    // certificate); the agents' /health with 200, the witness's protocol port (no such route) with 404.
    const pem = { ca: set.caCert, cert: set.hosts.find((h) => h.name === 'witness')!.cert, key: set.hosts.find((h) => h.name === 'witness')!.key };
    for (const [port, status] of [[pa, 200], [pb, 200], [pw, 404]] as const) {
      assert.equal(await tlsGet(port, '/health', pem), status, `TLS GET /health on ${port} at ${step}`);
      if (step === 'tls') assert.doesNotMatch(await plainHttp(port), /^HTTP\//, `plain HTTP refused on ${port} once TLS is alone`);
      else assert.match(await plainHttp(port), new RegExp(`^HTTP/1\\.1 ${status}`), `plain HTTP still served on ${port} at ${step}`);
    }
  }

  // Then, TLS alone everywhere: still db-a, in the term it was elected in, its lease renewed over TLS.
  const witnessGrants = await granted('witness');
  const peerGrants = await granted('peer');
  await until('further renewals over TLS alone', async () => (await granted('witness')) > witnessGrants + 2 && (await granted('peer')) > peerGrants + 2, 30_000);
  assert.equal(agentRole(agents['db-a']!.runner.state), 'primary');
  assert.deepEqual([...seen.terms], [term], 'no new term: no election happened');
  assert.equal(cloud.assignedTo, 'db-a');
});

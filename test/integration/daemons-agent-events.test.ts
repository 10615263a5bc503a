// Goal: the agents' own events reach the witness's notification channels (protocol v2, GET
// /v2/events), deduplicated and naming the node, and an upgrade may run in either order: a new
// witness with agents of the last v1 release, and a witness of that release with new agents, both
// fail over as before, with nothing crashing. Real daemons on loopback (PostgreSQL and EC2 as the
// in-memory fakes, the before-promote hook a real script); the v1 release is that commit's own
// source (release-v1.ts), run in this process.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { clusterPorts, clusterYaml, freePort, pgPort, until } from './helpers.js';
import { releaseV1Root } from './release-v1.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** The daemons and fakes of one source tree (this checkout, or the v1 release). */
async function tree(root: string) {
  const src = (p: string) => import(path.join(root, 'packages', p)) as Promise<Record<string, unknown>>;
  const [agent, fakePg, fakeVip, witness, shared] = await Promise.all([
    src('agent/src/daemon.ts'), src('agent/src/postgres/fake.ts'), src('agent/src/vip/fake.ts'), src('witness/src/daemon.ts'), src('shared/src/index.ts'),
  ]);
  // Typed loosely on purpose: the two trees' types are not the same declarations.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  return {
    startAgentDaemon: agent.startAgentDaemon as (cfg: any, opts: any) => Promise<any>,
    FakePgNetwork: fakePg.FakePgNetwork as new () => any,
    FakePostgres: fakePg.FakePostgres as new (o: any) => any,
    FakeVipCloud: fakeVip.FakeVipCloud as new () => any,
    FakeVipPort: fakeVip.FakeVipPort as new (cloud: any, node: string) => any,
    createWitnessDaemon: witness.createWitnessDaemon as (cfg: any, deps: any) => Promise<any>,
    parseConfigText: shared.parseConfigText as (text: string, kind: string, file: string) => any,
  };
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

interface Received {
  readonly type: string;
  readonly node: string | null;
  readonly term: number;
  readonly detail: string;
}

async function startCluster(t: TestContext, roots: { agents: string; witness: string }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-agent-events-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const gate = path.join(dir, 'gate');
  writeFileSync(gate, `#!/bin/sh\n[ -e ${dir}/allow-$PGVIP_NODE ] || { echo "pgbouncer on $PGVIP_NODE not drained" >&2; exit 1; }\n`);
  chmodSync(gate, 0o755);
  // The notification channel: a webhook receiver on loopback.
  const received: Received[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as Received);
      res.writeHead(204).end();
    });
  });
  const ph = await freePort();
  await new Promise<void>((r) => hook.listen(ph, '127.0.0.1', r));
  t.after(() => hook.close());

  const ports = await clusterPorts();
  const { pw, po, qa, qb } = ports;
  // Mixed releases: the v1 release's default timings (docs/runbook.md, "Upgrading pgvip": the defaults
  // changed since, and every daemon of a cluster must use the same timings, so an upgrade from v1 writes
  // them into the config first).
  const v1Timings = roots.agents === roots.witness ? '' : '\n  timings: { heartbeatMs: 500, requestTimeoutMs: 400, leaseMs: 3000 }';
  const cluster = clusterYaml(ports, `{ disabled: true }`) + v1Timings;
  const a = await tree(roots.agents);
  const w = await tree(roots.witness);
  const hooks = `hooks:\n  beforePromote: { path: ${gate}, timeoutMs: 2000 }\n`;
  const agentCfg = (self: string) => a.parseConfigText(`self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n${hooks}cluster:${cluster}`, 'agent', `${self}.yaml`);
  const witnessCluster = `${cluster}\n  notifications:\n    webhooks: [{ url: 'http://127.0.0.1:${ph}/events' }]`;
  const witnessCfg = w.parseConfigText(
    `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\noperatorApi: { host: 127.0.0.1, port: ${po}, auth: disabled }\nstateDir: ${dir}/witness\nclusters:\n  -${witnessCluster.replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
    'witness',
    'witness.yaml',
  );
  const network = new a.FakePgNetwork();
  const pgA = new a.FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: qa, user: 'pgvip', database: 'postgres' } });
  const pgB = new a.FakePostgres({ network, nodeName: 'db-b', endpoint: { host: '127.0.0.1', port: qb, user: 'pgvip', database: 'postgres' }, standbyOf: pgA.endpoint });
  const listeners = { a: await pgPort(qa), b: await pgPort(qb) };
  t.after(() => {
    listeners.a.close();
    listeners.b.close();
  });
  const cloud = new a.FakeVipCloud();
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const witness = await w.createWitnessDaemon(witnessCfg, { log: log.child({ daemon: 'witness' }) });
  await witness.protocol.listen({ host: '127.0.0.1', port: pw });
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  witness.startPolling();
  t.after(() => witness.close());
  type Daemon = { app: { inject(o: { url: string }): Promise<{ statusCode: number }> }; close(): Promise<void> };
  const agents: Record<string, Daemon> = {};
  for (const [self, pg] of [['db-a', pgA], ['db-b', pgB]] as const) {
    agents[self] = await a.startAgentDaemon(agentCfg(self), {
      logger: log.child({ daemon: self }),
      pg,
      vip: new a.FakeVipPort(cloud, self),
      onFatal: (e: Error) => assert.fail(e),
    });
    t.after(() => agents[self]!.close());
  }
  const primaryCode = async (n: string) => (await agents[n]!.app.inject({ url: '/primary' })).statusCode;
  const allow = (self: string) => writeFileSync(path.join(dir, `allow-${self}`), '');
  const assigned = (): string | null => cloud.assignedTo as string | null;
  const syncEligible = async () => ((await (await fetch(`http://127.0.0.1:${po}/api/v1/clusters/orders`)).json()) as { syncEligible: string | null }).syncEligible;
  return { pgA, listeners, assigned, primaryCode, allow, received, lines, syncEligible };
}

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/**
 * db-a primary with the VIP; its PostgreSQL dies; db-b's hook vetoes twice, then allows: db-b is
 * primary with the VIP.
 */
async function failOver(c: Cluster): Promise<void> {
  c.allow('db-a');
  await until('db-a to be primary with a lease', async () => (await c.primaryCode('db-a')) === 200);
  await until('the VIP on db-a', () => c.assigned() === 'db-a');
  await until('db-b to be the sync-eligible standby', async () => (await c.syncEligible()) === 'db-b');
  c.pgA.crash();
  c.listeners.a.close();
  await until('two vetoes on db-b', () => c.lines.filter((l) => /vetoed by the before-promote hook/.test(l) && /"daemon":"db-b"/.test(l)).length >= 2 || undefined, 30_000);
  c.allow('db-b');
  await until('db-b to be primary', async () => (await c.primaryCode('db-b')) === 200, 20_000);
  await until('the VIP on db-b', () => c.assigned() === 'db-b');
}

test('the agents\' own events reach the witness\'s webhook once per node, type and term, naming the node', { timeout: 90_000 }, async (t) => {
  const c = await startCluster(t, { agents: repoRoot, witness: repoRoot });
  await failOver(c);
  const fromAgents = () => c.received.filter((e) => / \(its agent\): /.test(e.detail));
  await until('vip-moved of db-b at the webhook', () => fromAgents().some((e) => e.type === 'vip-moved' && e.node === 'db-b') || undefined, 10_000);
  const got = fromAgents();
  const vipA = got.filter((e) => e.type === 'vip-moved' && e.node === 'db-a');
  assert.equal(vipA.length, 1, JSON.stringify(got));
  assert.match(vipA[0]!.detail, /^db-a \(its agent\): VIP verified on db-a for term 1$/);
  // db-b vetoed at least twice in term 2: one notification, with the hook's words.
  const vetoes = got.filter((e) => e.type === 'promotion-vetoed');
  assert.equal(vetoes.length, 1, JSON.stringify(got));
  assert.equal(vetoes[0]!.node, 'db-b');
  assert.equal(vetoes[0]!.term, 2);
  assert.match(vetoes[0]!.detail, /^db-b \(its agent\): the before-promote hook vetoed the promotion: .*pgbouncer on db-b not drained/);
  assert.equal(got.filter((e) => e.type === 'vip-moved' && e.node === 'db-b').length, 1, JSON.stringify(got));
});

const v1 = releaseV1Root();
const skipV1 = v1 === null ? 'needs the git history (the v1 release is unpacked from it)' : false;

test('upgrade, witness first: a new witness with agents of the v1 release fails over as before and says once why agent events are missing', { timeout: 90_000, skip: skipV1 }, async (t) => {
  const c = await startCluster(t, { agents: v1!, witness: repoRoot });
  await failOver(c);
  assert.equal(c.received.filter((e) => / \(its agent\): /.test(e.detail)).length, 0);
  assert.ok(c.received.some((e) => e.type === 'vote-granted'), 'the witness\'s own events still reach the webhook');
  const refused = c.lines.filter((l) => /could not read its agent's own events \(protocol v2/.test(l));
  assert.deepEqual(refused.map((l) => (JSON.parse(l) as { node: string }).node).sort(), ['db-a', 'db-b'], 'logged once per node');
});

test('upgrade, agents first: a witness of the v1 release with new agents fails over as before', { timeout: 90_000, skip: skipV1 }, async (t) => {
  const c = await startCluster(t, { agents: repoRoot, witness: v1! });
  await failOver(c);
  assert.ok(c.received.some((e) => e.type === 'vote-granted'), 'the old witness notifies its own events');
  assert.equal(c.received.filter((e) => / \(its agent\): /.test(e.detail)).length, 0);
});

// Goal: the real agent and witness daemons, talking over real loopback sockets with authentication,
// bootstrap a cluster, fail over when the primary's PostgreSQL dies, bring the old primary back as a
// standby and hand the primary role back on a planned switchover. PostgreSQL and EC2 are in-memory
// fakes here (the lab runs the real ones).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { formatKeyFile, generateKey, parseConfigText, type AgentConfig, type WitnessConfig } from '@pgvip/shared';
import { FakePgNetwork, FakePostgres } from '../../packages/agent/src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon } from '../../packages/witness/src/daemon.js';
import { clusterPorts, clusterYaml, pgPort, until } from './helpers.js';

/** The witness's operator API token, as deploy/install.sh makes one, and the header that presents it. */
const operatorToken = generateKey().toString('hex');
const operatorAuth = { authorization: `Bearer ${operatorToken}` };

interface ClusterOptions {
  /** YAML lines appended to the cluster block of every daemon (e.g. notifications). */
  readonly extra?: string;
  /** YAML lines appended to the agents' cluster block only (e.g. other timings). */
  readonly agentExtra?: string;
  /** Where the daemons' log lines go (default: nowhere, or stdout with PGVIP_TEST_LOG=level). */
  readonly logLines?: string[];
  /** Both fake servers have pgvip_commit_guard loaded (default false). */
  readonly commitGuard?: boolean;
}

/** Both agents and the witness as real daemons on loopback. */
async function startCluster(t: TestContext, options: ClusterOptions = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-daemons-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, `${operatorToken}\n`, { mode: 0o600 });
  const ports = await clusterPorts();
  const { pw, po, qa, qb } = ports;
  const cluster = `${clusterYaml(ports, `{ keyFile: ${keyFile} }`)}${options.extra ?? ''}`;
  const agentCfg = (self: string): AgentConfig => parseConfigText(`self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\ncluster:${cluster}${options.agentExtra ?? ''}`, 'agent', `${self}.yaml`);
  const witnessCfg: WitnessConfig = parseConfigText(
    `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\noperatorApi: { host: 127.0.0.1, port: ${po}, tokenFile: ${tokenFile} }\nstateDir: ${dir}/witness\nclusters:\n  -${cluster.replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
    'witness',
    'witness.yaml',
  );

  const network = new FakePgNetwork();
  const guard = { commitGuard: options.commitGuard === true };
  const pgA = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: qa, user: 'pgvip', database: 'postgres' }, ...guard });
  const pgB = new FakePostgres({ network, nodeName: 'db-b', endpoint: { host: '127.0.0.1', port: qb, user: 'pgvip', database: 'postgres' }, standbyOf: pgA.endpoint, ...guard });
  const listeners = { a: await pgPort(qa), b: await pgPort(qb) };
  t.after(() => {
    listeners.a.close();
    listeners.b.close();
  });
  const cloud = new FakeVipCloud();
  const lines = options.logLines;
  const log = lines === undefined ? pino({ level: process.env.PGVIP_TEST_LOG ?? 'silent' }) : pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });

  const witness = await createWitnessDaemon(witnessCfg, { log: log.child({ daemon: 'witness' }) });
  await witness.protocol.listen({ host: '127.0.0.1', port: pw });
  await witness.operator.listen({ host: '127.0.0.1', port: po });
  witness.startPolling();
  t.after(() => witness.close());
  const agents: Record<string, AgentDaemon> = {};
  for (const [self, pg] of [['db-a', pgA], ['db-b', pgB]] as const) {
    agents[self] = await startAgentDaemon(agentCfg(self), {
      logger: log.child({ daemon: self }),
      pg,
      vip: new FakeVipPort(cloud, self),
      onFatal: (e) => assert.fail(e),
    });
    t.after(() => agents[self]!.close());
  }
  const primaryCode = async (n: string) => (await agents[n]!.app.inject({ url: '/primary' })).statusCode;
  const clusterView = async () => {
    const res = await fetch(`http://127.0.0.1:${po}/api/v1/clusters/orders`, { headers: operatorAuth });
    return (await res.json()) as {
      term: number;
      primary: string | null;
      syncEligible: string | null;
      nodes: { node: string; promotionBlocker: string | null }[];
    };
  };

  return { agents, witness, pgA, pgB, listeners, cloud, primaryCode, clusterView, operatorPort: po, pgPortA: qa };
}

test('bootstrap, failover on a dead PostgreSQL, rejoin and switchover through the real daemons', { timeout: 120_000 }, async (t) => {
  const started = await startCluster(t);
  const { agents, pgA, pgB, listeners, cloud, primaryCode, clusterView, operatorPort: po, pgPortA: qa } = started;
  const slotNames = async (pg: FakePostgres) => (await pg.replicationSlots()).map((slot) => `${slot.name}${slot.active ? '*' : ''}`).join(',');
  // Given a fresh cluster, Then db-a (already a running primary) is elected for term 1 and takes the VIP.
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  await until('db-b to be the sync-eligible standby', async () => (await clusterView()).syncEligible === 'db-b');
  // And the primary keeps a slot for db-b, which streams through it (the slot keepers, every 5 s).
  await until('db-b to stream through its slot on db-a', async () => (await slotNames(pgA)) === 'pgvip_db_b*' && pgB.primarySlotName === 'pgvip_db_b');
  assert.equal((await clusterView()).term, 1);
  assert.equal(await primaryCode('db-b'), 503);

  // When PostgreSQL on db-a dies, Then db-a fences and releases, and db-b is promoted with the VIP.
  pgA.crash();
  listeners.a.close();
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200);
  await until('the VIP on db-b', () => cloud.assignedTo === 'db-b');
  const view = await clusterView();
  assert.equal(view.term, 2);
  assert.equal(view.primary, 'db-b');
  // The promotion made the slot for db-a before db-a can rejoin.
  assert.equal(await slotNames(pgB), 'pgvip_db_a');

  // When db-a's PostgreSQL can run again, Then db-a rejoins as a standby of db-b.
  listeners.a = await pgPort(qa);
  await until('db-a to stream from db-b', async () => (await agents['db-a']!.app.inject({ url: '/replica?replication_state=streaming' })).statusCode === 200, 30_000);
  // Through its slot; and db-a no longer keeps the slot it held for db-b as primary.
  assert.equal(pgA.primarySlotName, 'pgvip_db_a');
  await until('db-a to drop its slot for db-b', async () => (await slotNames(pgB)) === 'pgvip_db_a*' && (await slotNames(pgA)) === '');

  // When an operator asks for a switchover, Then db-a is primary again in term 3 with nothing lost.
  await until('db-a to be sync-eligible again', async () => (await clusterView()).syncEligible === 'db-a', 30_000);
  await until('the witness to see db-a ready', async () => (await clusterView()).nodes.find((n) => n.node === 'db-a')?.promotionBlocker === null);
  const sw = await fetch(`http://127.0.0.1:${po}/api/v1/clusters/orders/switchover`, { method: 'POST', headers: { ...operatorAuth, 'content-type': 'application/json' }, body: '{"to":"db-a"}' });
  assert.equal(sw.status, 200, await sw.text());
  await until('db-a to be primary after the switchover', async () => (await primaryCode('db-a')) === 200, 30_000);
  await until('the VIP back on db-a', () => cloud.assignedTo === 'db-a');
  // The witness learns a handed-over term from its polls (a lease request teaches no term), so
  // within a poll of the handover rather than at once; db-b's grant carries db-a meanwhile.
  await until('the witness to learn term 3', async () => (await clusterView()).term === 3);
  await until('db-b to stream from db-a', async () => (await agents['db-b']!.app.inject({ url: '/replica?replication_state=streaming' })).statusCode === 200, 30_000);
  await until('db-b to stream through its slot on db-a, keeping none itself', async () => (await slotNames(pgA)) === 'pgvip_db_b*' && (await slotNames(pgB)) === '' && pgB.primarySlotName === 'pgvip_db_b');
});

test('operators hear through a real webhook that a failover is blocked, that it happened once unblocked, and that the old primary rejoined and recovered', { timeout: 120_000 }, async (t) => {
  const received: Array<{ type: string; node: string; detail: string }> = [];
  const hook = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push(JSON.parse(body) as { type: string; node: string; detail: string });
      res.end();
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => hook.once('listening', r));
  t.after(() => hook.close());
  const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/pgvip`;
  const { pgA, listeners, primaryCode, clusterView, operatorPort: po, pgPortA: qa } = await startCluster(t, {
    extra: `\n  notifications:\n    webhooks:\n      - url: ${hookUrl}\n        events: [failover, failover-blocked, node-unreachable, node-recovered, rejoined]`,
  });
  const operator = (what: string, body: object) =>
    fetch(`http://127.0.0.1:${po}/api/v1/clusters/orders/${what}`, { method: 'POST', headers: { ...operatorAuth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const types = () => received.map((e) => e.type);

  await until('db-a to be primary', async () => (await primaryCode('db-a')) === 200);
  await until('db-b to be the sync-eligible standby', async () => (await clusterView()).syncEligible === 'db-b');

  // Given maintenance, When the primary's PostgreSQL dies, Then operators hear that no failover follows.
  assert.equal((await operator('maintenance', { on: true })).status, 200);
  pgA.crash();
  listeners.a.close();
  const blocked = await until('a failover-blocked event', () => received.find((e) => e.type === 'failover-blocked'), 30_000);
  assert.match(blocked.detail, /primary db-a failed in term 1, but no automatic failover is allowed: the cluster is in maintenance/);
  assert.equal(await primaryCode('db-b'), 503, 'nobody promoted in maintenance');
  await until('db-a reported as failed', () => types().includes('failure-detected'), 10_000);

  // When maintenance ends, Then the failover happens and is announced; the old primary's return too.
  assert.equal((await operator('maintenance', { on: false })).status, 200);
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 30_000);
  await until('a failover event', () => types().includes('vote-granted'), 10_000);
  listeners.a = await pgPort(qa);
  const rejoined = await until('a rejoined event', () => received.find((e) => e.type === 'rejoined'), 40_000);
  assert.equal(rejoined.node, 'db-a');
  assert.match(rejoined.detail, /db-a is a standby of db-b again/);
  const recovered = await until('a node-recovered event', () => received.find((e) => e.type === 'node-recovered'), 10_000);
  assert.equal(recovered.node, 'db-a');
  assert.match(recovered.detail, /db-a answers again as standby/);
  assert.deepEqual(types().filter((x) => x === 'failover-blocked'), ['failover-blocked'], 'once per term');
});

test('agents whose timings give a longer lease than the witness\'s promise covers are refused, and the logs say why', { timeout: 60_000 }, async (t) => {
  const lines: string[] = [];
  const { primaryCode, clusterView } = await startCluster(t, { agentExtra: '\n  timings: { leaseMs: 6000 }', logLines: lines });
  const reason = /longer than the 2276 ms this node's promise covers: give every node the same timings/;
  await until('the witness to refuse db-a', () => lines.some((l) => reason.test(l)), 20_000);
  assert.equal((await clusterView()).term, 0, 'no election: the bootstrap vote is a lease too');
  assert.equal(await primaryCode('db-a'), 503);
});

test('the commit guard follows the lease: armed at every renewal, refusing writes by itself once a silent primary\'s lease ends, and armed on the new primary before it is promoted', { timeout: 60_000 }, async (t) => {
  const { agents, pgA, pgB, listeners, primaryCode, clusterView } = await startCluster(t, { commitGuard: true });
  const calls: string[] = [];
  const arm = pgB.armCommitGuard.bind(pgB);
  const promote = pgB.promote.bind(pgB);
  pgB.armCommitGuard = (untilMs) => (calls.push(untilMs > performance.now() ? 'arm' : 'arm-past'), arm(untilMs));
  pgB.promote = (waitSeconds) => (calls.push('promote'), promote(waitSeconds));

  // Given db-a is primary, Then its PostgreSQL holds a deadline that moves with every renewal.
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200);
  const first = await until('db-a\'s guard to be armed', async () => (await pgA.commitGuardStatus()).remainingMs ?? undefined);
  assert.ok(first > 0 && first <= 3_000, `remaining ${first} ms`);
  const firstEnd = performance.now() + first;
  await until('a renewal to move the deadline', async () => performance.now() + ((await pgA.commitGuardStatus()).remainingMs ?? 0) > firstEnd + 100);
  assert.equal((await pgA.writeProbe(1_000)).outcome, 'ok');
  await until('db-b to be the sync-eligible standby', async () => (await clusterView()).syncEligible === 'db-b');

  // When db-a's agent stops (as on a frozen host: its PostgreSQL runs on, nobody fences it),
  // Then once the lease has ended PostgreSQL refuses writes by itself.
  await agents['db-a']!.close();
  const left = (await pgA.commitGuardStatus()).remainingMs ?? 0;
  assert.ok(left > 0, 'still within the lease');
  await new Promise((r) => setTimeout(r, left + 20));
  const refused = await pgA.writeProbe(1_000);
  assert.ok(refused.outcome === 'read-only' && /pgvip commit guard/.test(refused.detail), JSON.stringify(refused));

  // And when the host stays frozen (its server answers nothing), db-b, elected, arms its own guard
  // before its promotion, so its first write is guarded.
  pgA.stall();
  listeners.a.close();
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 30_000);
  assert.ok(calls.indexOf('arm') >= 0 && calls.indexOf('arm') < calls.indexOf('promote'), calls.join(' '));
  const b = await pgB.commitGuardStatus();
  assert.ok(b.active && (b.remainingMs ?? 0) > 0, JSON.stringify(b));
});

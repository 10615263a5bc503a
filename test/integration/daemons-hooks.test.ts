// Goal: through the real agent and witness daemons (PostgreSQL and EC2 as in-memory fakes, the
// hooks as real scripts): a before-promote hook that says no keeps the standby from being promoted
// after the primary died — the cluster stays without a primary, never with two — and the same
// failover completes as soon as the hook says yes; the asynchronous hooks then fire in order with
// the event on stdin and in PGVIP_* variables.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfigText, type AgentConfig, type WitnessConfig } from '@pgvip/shared';
import { FakePgNetwork, FakePostgres } from '../../packages/agent/src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon } from '../../packages/witness/src/daemon.js';
import { clusterPorts, clusterYaml, pgPort, until } from './helpers.js';

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

interface Recorded {
  readonly argv1: string;
  readonly env: Record<string, string>;
  readonly stdin: {
    event: string;
    node: string;
    role: string;
    previousRole?: string;
    term: number;
    primary: string | null;
    detail: string;
  };
}

/** Two agents and a witness on loopback; every hook of each node appends one JSON line to hooks-<node>.log. */
async function startCluster(t: TestContext) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-hooks-daemons-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Records its first argument, the PGVIP_* variables and its stdin as one line (jq-free: the
  // payload is already one JSON line). The gate then allows only while allow-<node> exists.
  const record = script(dir, 'record', `log="$1"; shift\nprintf '{"argv1":"%s","env":{"PGVIP_EVENT":"%s","PGVIP_NODE":"%s","PGVIP_CLUSTER":"%s","PGVIP_ROLE":"%s","PGVIP_TERM":"%s","PGVIP_PRIMARY":"%s"},"stdin":%s}\\n' "$1" "$PGVIP_EVENT" "$PGVIP_NODE" "$PGVIP_CLUSTER" "$PGVIP_ROLE" "$PGVIP_TERM" "$PGVIP_PRIMARY" "$(cat)" >> "$log"`);
  const gate = script(dir, 'gate', `${record} "$@"\n[ -e ${dir}/allow-$PGVIP_NODE ] || { echo "pgbouncer on $PGVIP_NODE not drained" >&2; exit 1; }`);
  const canary = path.join(dir, 'canary');
  const hooksOf = (self: string) => {
    const log = path.join(dir, `hooks-${self}.log`);
    const h = (p: string, tag: string) => `{ path: ${p}, args: ['${log}', '${tag}'] }`;
    return `hooks:\n  beforePromote: { path: ${gate}, args: ['${log}', '$(touch ${canary}); touch ${canary}'], timeoutMs: 2000 }\n  afterPromote: ${h(record, 'after')}\n  onFence: ${h(record, 'fence')}\n  onRejoin: ${h(record, 'rejoin')}\n  onRoleChange: ${h(record, 'role')}\n`;
  };
  const ports = await clusterPorts();
  const { pw, po, qa, qb } = ports;
  const cluster = clusterYaml(ports, `{ disabled: true }`);
  const agentCfg = (self: string): AgentConfig => parseConfigText(`self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n${hooksOf(self)}cluster:${cluster}`, 'agent', `${self}.yaml`);
  const witnessCfg: WitnessConfig = parseConfigText(
    `id: witness\nlisten: { host: 127.0.0.1, port: ${pw} }\noperatorApi: { host: 127.0.0.1, port: ${po}, auth: disabled }\nstateDir: ${dir}/witness\nclusters:\n  -${cluster.replace(/\n {2}/g, '\n    ').replace(/^ {4}/, ' ')}`,
    'witness',
    'witness.yaml',
  );
  const network = new FakePgNetwork();
  const pgA = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: qa, user: 'pgvip', database: 'postgres' } });
  const pgB = new FakePostgres({ network, nodeName: 'db-b', endpoint: { host: '127.0.0.1', port: qb, user: 'pgvip', database: 'postgres' }, standbyOf: pgA.endpoint });
  const listeners = { a: await pgPort(qa), b: await pgPort(qb) };
  t.after(() => {
    listeners.a.close();
    listeners.b.close();
  });
  const cloud = new FakeVipCloud();
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  // PGVIP_TEST_DUMP=file keeps the daemons' log lines and the hooks' records for a failed run.
  const dump = process.env.PGVIP_TEST_DUMP;
  if (dump !== undefined) t.after(() => writeFileSync(dump, [...lines, ...['db-a', 'db-b'].map((n) => (existsSync(path.join(dir, `hooks-${n}.log`)) ? readFileSync(path.join(dir, `hooks-${n}.log`), 'utf8') : ''))].join('')));
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
  const recorded = (self: string): Recorded[] => {
    const file = path.join(dir, `hooks-${self}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Recorded) : [];
  };
  const syncEligible = async () => ((await (await fetch(`http://127.0.0.1:${po}/api/v1/clusters/orders`)).json()) as { syncEligible: string | null }).syncEligible;
  const allow = (self: string) => writeFileSync(path.join(dir, `allow-${self}`), '');
  return { agents, pgA, pgB, listeners, cloud, primaryCode, recorded, allow, canary, lines, syncEligible };
}

test('a before-promote veto keeps the standby from promoting after the primary died (no primary, never two) until the hook allows it; the hooks fire in order with their payloads', { timeout: 90_000 }, async (t) => {
  const started = await startCluster(t);
  const { agents, pgA, pgB, listeners, cloud, primaryCode, recorded, allow, canary, lines, syncEligible } = started;
  allow('db-a');
  // Given db-a is primary with the VIP and db-b its standby.
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  await until('db-b to be the sync-eligible standby', async () => (await syncEligible()) === 'db-b');

  // When db-a's PostgreSQL dies, and db-b's before-promote hook says no.
  pgA.crash();
  listeners.a.close();
  // Then db-b wins the term and asks its hook, again each time it retries, and stays a standby.
  await until('two vetoes on db-b', () => recorded('db-b').filter((r) => r.env.PGVIP_EVENT === 'before-promote').length >= 2 || undefined, 30_000);
  const asked = recorded('db-b').find((r) => r.env.PGVIP_EVENT === 'before-promote')!;
  assert.deepEqual(asked.env, { PGVIP_EVENT: 'before-promote', PGVIP_NODE: 'db-b', PGVIP_CLUSTER: 'orders', PGVIP_ROLE: 'promoting', PGVIP_TERM: '2', PGVIP_PRIMARY: 'db-b' });
  assert.equal(asked.stdin.event, 'before-promote');
  assert.equal(asked.stdin.term, 2);
  assert.equal(asked.argv1, `$(touch ${canary}); touch ${canary}`, 'the argument reached the hook as text');
  assert.equal(existsSync(canary), false, 'no shell ran it');
  for (let i = 0; i < 10; i++) {
    const b = await pgB.observe();
    assert.ok(b.reachable && b.inRecovery, 'db-b\'s PostgreSQL was not promoted');
    assert.equal(await primaryCode('db-b'), 503);
    assert.equal(await primaryCode('db-a'), 503);
    assert.notEqual(cloud.assignedTo, 'db-b');
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(lines.some((l) => /"effect":"promote".*vetoed by the before-promote hook \(exited 1 after \d+ ms: pgbouncer on db-b not drained\)/.test(l)), 'the veto is in the log with the hook\'s words');
  const vetoes = await agents['db-b']!.app.inject({ url: '/metrics' });
  assert.match(vetoes.body, /pgvip_agent_hook_vetoes_total\{[^}]*\} ([2-9]|[1-9]\d+)\n/, 'one veto per retry, a heartbeat apart');

  // When the hook allows it, Then the same failover completes: db-b is primary for term 2 with the VIP.
  allow('db-b');
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 20_000);
  await until('the VIP on db-b', () => cloud.assignedTo === 'db-b');
  const after = await until('after-promote on db-b', () => recorded('db-b').find((r) => r.env.PGVIP_EVENT === 'after-promote'), 10_000);
  assert.deepEqual(after.env, { PGVIP_EVENT: 'after-promote', PGVIP_NODE: 'db-b', PGVIP_CLUSTER: 'orders', PGVIP_ROLE: 'primary', PGVIP_TERM: '2', PGVIP_PRIMARY: 'db-b' });
  assert.match(after.stdin.detail, /^promoted to timeline \d+/, JSON.stringify(after));
  // The events on db-b, in the order they happened: vetoes, the allowed promotion, then after-promote.
  await until('db-b\'s role change to primary', () => recorded('db-b').some((r) => r.env.PGVIP_EVENT === 'on-role-change' && r.env.PGVIP_ROLE === 'primary') || undefined, 10_000);
  const events = recorded('db-b').map((r) => (r.env.PGVIP_EVENT === 'on-role-change' ? `${r.stdin.previousRole ?? ''}→${r.stdin.role}` : (r.env.PGVIP_EVENT ?? '')));
  const firstVeto = events.indexOf('before-promote');
  assert.ok(events.slice(0, firstVeto).some((e) => e.endsWith('→promoting')), events.join(', '));
  assert.deepEqual(events.slice(events.lastIndexOf('before-promote')), ['before-promote', 'promoting→primary', 'after-promote'], events.join(', '));
});

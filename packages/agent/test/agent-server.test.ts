// Goal: the agent's HTTP API answers like a health endpoint should (status codes, coded 4xx for bad
// input, authenticated protocol routes) and a primary that cannot renew its lease fences itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { agentDurableSchema, createDurableFile, generateKey } from '@pgvip/shared';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';
import { startAgentDaemon } from '../src/daemon.js';
import { daemonTestConfig } from './daemon-config.js';

async function startPrimary(t: { after: (fn: () => unknown) => void }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = daemonTestConfig(dir, generateKey());
  const network = new FakePgNetwork();
  const pg = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: 5432, user: 'pgvip', database: 'postgres' } });
  const cloud = new FakeVipCloud({ holder: 'db-a' });
  const vip = new FakeVipPort(cloud, 'db-a');
  // A durable record saying db-a leads term 1, as after a bootstrap.
  createDurableFile(path.join(cfg.stateDir, 'agent-c1.json'), agentDurableSchema, { term: 0, primaryOfTerm: null }).save({ term: 1, primaryOfTerm: 'db-a' });
  const d = await startAgentDaemon(cfg, { logger: pino({ level: 'silent' }), vip, pg, listen: false, onFatal: (e) => assert.fail(e) });
  t.after(() => d.close());
  return { d, pg };
}

test('health answers 200; /primary and /replica answer 503 on a primary without a lease', async (t) => {
  const { d } = await startPrimary(t);
  await new Promise((r) => setTimeout(r, 200));
  const health = await d.app.inject({ url: '/health' });
  assert.equal(health.statusCode, 200);
  assert.equal(JSON.parse(health.body).node, 'db-a');
  assert.equal((await d.app.inject({ url: '/primary' })).statusCode, 503);
  assert.equal((await d.app.inject({ url: '/replica' })).statusCode, 503);
  const status = JSON.parse((await d.app.inject({ url: '/status' })).body);
  assert.equal(status.term, 1);
  assert.equal(status.primaryOfTerm, 'db-a');
});

test('bad input gets coded 4xx and changes nothing', async (t) => {
  const { d } = await startPrimary(t);
  const before = d.runner.state.durable;
  const lag = await d.app.inject({ url: '/replica?lag=lots' });
  assert.equal(lag.statusCode, 400);
  assert.equal(JSON.parse(lag.body).error.code, 'PGVIP_HEALTH_QUERY');
  const nf = await d.app.inject({ url: '/nope' });
  assert.equal(nf.statusCode, 404);
  assert.equal(JSON.parse(nf.body).error.code, 'PGVIP_NOT_FOUND');
  const unsigned = await d.app.inject({ method: 'POST', url: '/v1/lease', headers: { 'content-type': 'application/json' }, payload: '{"v":1}' });
  assert.equal(unsigned.statusCode, 401);
  assert.equal(JSON.parse(unsigned.body).error.code, 'PGVIP_AUTH_MISSING');
  assert.deepEqual(d.runner.state.durable, before);
});

test('a primary that cannot reach the witness or its standby fences itself after the boot grace', async (t) => {
  const { d, pg } = await startPrimary(t);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const obs = await pg.observe();
    if (obs.reachable && obs.defaultTransactionReadOnly) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const obs = await pg.observe();
  assert.ok(obs.reachable && obs.defaultTransactionReadOnly, 'postgresql was fenced read-only');
  const metrics = (await d.app.inject({ url: '/metrics' })).body;
  assert.match(metrics, /pgvip_agent_role\{role="fenced",cluster="c1",node="db-a"\} 1/);
  assert.match(metrics, /pgvip_agent_term\{cluster="c1",node="db-a"\} 1/);
  // Its renewals went unanswered at both grantors: what PgvipLeaseRenewalsFailing alerts on.
  for (const grantor of ['witness', 'peer']) {
    assert.match(metrics, new RegExp(`pgvip_agent_lease_renewals_total\\{grantor="${grantor}",result="failed",cluster="c1",node="db-a"\\} [1-9]`));
  }
  assert.match(metrics, /pgvip_agent_lease_renewals_total\{grantor="witness",result="granted",cluster="c1",node="db-a"\} 0/);
});

// Goal: one correctly signed message from someone holding the cluster key cannot take a node out
// for good (docs/design.md, Failure scenarios, row 22). Given db-a's agent, primary of term 1, when
// a lease request in db-b's name arrives for term 2^53 − 1 it gets a coded 400
// (PGVIP_TERM_OUT_OF_RANGE); when one arrives for term 2, which no vote created, it is refused;
// then nothing was persisted, /status still answers 200 with term 1, and the agent starts again
// from its state file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { agentDurableSchema, createDurableFile, createSigner, generateKey, type AgentConfig } from '@pgvip/shared';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';
import { startAgentDaemon } from '../src/daemon.js';
import { daemonTestConfig } from './daemon-config.js';

const key = generateKey();

async function start(cfg: AgentConfig) {
  const pg = new FakePostgres({ network: new FakePgNetwork(), nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: 5432, user: 'pgvip', database: 'postgres' } });
  const vip = new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a');
  return startAgentDaemon(cfg, { logger: pino({ level: 'silent' }), vip, pg, listen: false, onFatal: (e) => assert.fail(e) });
}

test('a signed lease request for term 2^53 − 1 or an unvoted term changes nothing, and the agent still serves and restarts', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-agent-terms-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = daemonTestConfig(dir, key);
  const stateFile = path.join(cfg.stateDir, 'agent-c1.json');
  createDurableFile(stateFile, agentDurableSchema, { term: 0, primaryOfTerm: null }).save({ term: 1, primaryOfTerm: 'db-a' });
  const onDisk = readFileSync(stateFile, 'utf8');
  const d = await start(cfg);

  // A key holder signs as db-b; the body is written by hand, as a forger would.
  const signer = createSigner({ cluster: 'c1', sender: 'db-b', key });
  async function leaseRequest(term: number) {
    const body = `{"v":1,"cluster":"c1","term":${term},"from":"db-b","kind":"lease-request","seq":1,"lsn":"0/3000060","timeline":1,"syncStandby":null}`;
    for (;;) {
      const signed = signer.signRequest({ to: 'db-a', method: 'POST', path: '/v1/lease', body });
      const res = await d.app.inject({ method: 'POST', url: '/v1/lease', headers: { ...signed.headers, 'content-type': 'application/json' }, payload: body });
      // First contact learns db-a's epoch (PGVIP_AUTH_STALE_EPOCH), then the request goes through.
      const headers = res.headers as Record<string, string>;
      if (!signer.verifyReply({ request: signed, status: res.statusCode, headers, body: res.body }).resend) return res;
    }
  }

  const huge = await leaseRequest(Number.MAX_SAFE_INTEGER);
  assert.equal(huge.statusCode, 400, huge.body);
  assert.equal(JSON.parse(huge.body).error.code, 'PGVIP_TERM_OUT_OF_RANGE');
  assert.match(JSON.parse(huge.body).error.message, /term: 9007199254740991 is out of range: a term is a whole number from 0 to 2\^48/);

  const unvoted = await leaseRequest(2);
  assert.equal(unvoted.statusCode, 200, unvoted.body);
  const reply = JSON.parse(unvoted.body);
  assert.equal(reply.granted, false);
  assert.equal(reply.term, 1);
  assert.match(reply.reason, /term 2 is newer than term 1, the newest this node knows a vote or handover created/);

  assert.deepEqual(d.runner.state.durable, { term: 1, primaryOfTerm: 'db-a' });
  assert.equal(readFileSync(stateFile, 'utf8'), onDisk, 'nothing persisted');
  const status = await d.app.inject({ url: '/status' });
  assert.equal(status.statusCode, 200);
  assert.equal(JSON.parse(status.body).term, 1);
  await d.close();

  const again = await start(cfg);
  t.after(() => again.close());
  const restarted = await again.app.inject({ url: '/status' });
  assert.equal(restarted.statusCode, 200);
  assert.deepEqual([JSON.parse(restarted.body).term, JSON.parse(restarted.body).primaryOfTerm], [1, 'db-a']);
});

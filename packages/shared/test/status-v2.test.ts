// Goal: the status fields added in protocol v2 (a planned restart, a pending restart) reach new peers
// on GET /v2/status and never reach v1 peers, whose strict parser would refuse them: /v1/status
// serves exactly the v1 fields, and a new client polling an agent that predates v2 (its /v2/status
// is an unsigned 404) falls back to /v1/status and asks v2 again only after a while. Real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { createSigner, createVerifier, generateKey } from '../src/auth/index.js';
import type { AgentStatus } from '../src/core/messages.js';
import { createPeerClient, registerProtocolRoutes } from '../src/transport/index.js';
import { decodeMessageBody } from '../src/wire/codec.js';
import { agentStatusV1Schema } from '../src/wire/messages.js';
import * as fixtures from './wire-fixtures.js';

const key = generateKey();
const members = ['db-a', 'db-b', 'witness'];
const status: AgentStatus = {
  ...fixtures.agentStatus, cluster: 'c1', from: 'db-a', restarting: true, pendingRestart: true,
};

/** An agent on loopback; `v1Only` makes it answer /v2/* as a release before v2 does (fastify's unsigned 404). */
async function agentServer(t: { after: (fn: () => Promise<void> | void) => void }, v1Only: boolean) {
  const app = Fastify();
  const paths: string[] = [];
  app.addHook('onRequest', async (req, reply) => {
    paths.push(req.url);
    if (v1Only && req.url.startsWith('/v2/')) return reply.code(404).send({ message: `Route GET:${req.url} not found`, statusCode: 404 });
    return undefined;
  });
  registerProtocolRoutes(app, {
    daemon: 'agent',
    verifier: createVerifier({ self: 'db-a', clusters: { c1: { members, key } } }),
    handle: () => assert.fail('no request expected'),
    status: () => status,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return { app, port: (app.server.address() as { port: number }).port, paths };
}

function client(port: number) {
  return createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'witness', key }), peers: { 'db-a': { host: '127.0.0.1', port } }, timeoutMs: 1000 });
}

test('a new peer reads the v2 fields on GET /v2/status', async (t) => {
  const agent = await agentServer(t, false);
  const c = client(agent.port);
  t.after(() => c.close());
  const got = await c.status('db-a');
  assert.equal(got.restarting, true);
  assert.equal(got.pendingRestart, true);
  // (The first contact is sent twice: it learns the agent's epoch.)
  assert.deepEqual(new Set(agent.paths), new Set(['/v2/status']));
});

test('GET /v1/status carries exactly the v1 fields, so a v1 peer\'s strict parser accepts it', async (t) => {
  const agent = await agentServer(t, false);
  const signer = createSigner({ cluster: 'c1', sender: 'witness', key });
  const get = async () => {
    const signed = signer.signRequest({ to: 'db-a', method: 'GET', path: '/v1/status', body: '' });
    const reply = await agent.app.inject({ method: 'GET', url: '/v1/status', headers: signed.headers });
    const headers = reply.headers as Record<string, string | undefined>;
    signer.verifyReply({ request: signed, status: reply.statusCode, headers, body: reply.body });
    return reply;
  };
  // The first contact learns the agent's epoch and is sent again, as the peer client does.
  let res = await get();
  if (res.statusCode !== 200) res = await get();
  assert.equal(res.statusCode, 200, res.body);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal('restarting' in body, false);
  assert.equal('pendingRestart' in body, false);
  // The strict v1 schema (what a v1 peer runs) parses it; with the v2 fields it would not.
  assert.equal(decodeMessageBody(agentStatusV1Schema, res.body).from, 'db-a');
  assert.throws(() => decodeMessageBody(agentStatusV1Schema, JSON.stringify({ ...body, restarting: true })), /restarting/);
});

test('an agent that predates v2 is polled on /v1/status, and asked for v2 again only after a while', async (t) => {
  const agent = await agentServer(t, true);
  const c = client(agent.port);
  t.after(() => c.close());
  const first = await c.status('db-a');
  assert.equal(first.from, 'db-a');
  assert.equal(first.restarting, undefined, 'a v1 status has no v2 fields');
  await c.status('db-a');
  await c.status('db-a');
  // One v2 attempt, then v1 only (until V1_STATUS_RECHECK_MS has passed).
  assert.equal(agent.paths[0], '/v2/status');
  assert.deepEqual(agent.paths.slice(1).filter((p) => p !== '/v1/status'), []);
  assert.ok(agent.paths.length >= 4);
});

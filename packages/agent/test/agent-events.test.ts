// Goal: protocol v2's events pull (GET /v2/events) is authenticated like v1 over a real socket,
// refuses bad input with coded 4xx replies, keeps its replies bounded, and the agent's event log
// hands each event out once per cursor, from a bounded ring, telling a restarted agent's events
// from the old ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import {
  agentEventsPerReply,
  createPeerClient,
  createSigner,
  createVerifier,
  generateKey,
  isPgvipError,
  parseAgentEventsCursor,
  registerAgentEventsRoute,
  registerProtocolRoutes,
} from '@pgvip/shared';
import { AgentEventLog } from '../src/event-log.js';

const key = generateKey();
const members = ['db-a', 'db-b', 'witness'];

async function agentServer(t: { after: (fn: () => Promise<void> | void) => void }, log: AgentEventLog) {
  const app = Fastify();
  const verifier = createVerifier({ self: 'db-a', clusters: { c1: { members, key } } });
  // v1 beside v2, as the agent serves them.
  registerProtocolRoutes(app, { daemon: 'agent', verifier, handle: () => assert.fail('no v1 request is sent') });
  registerAgentEventsRoute(app, { verifier, events: (cluster, cursor) => log.reply({ cluster, term: 3, from: 'db-a' }, cursor) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return { app, port: (app.server.address() as { port: number }).port };
}

test('the witness pulls an agent\'s events after its cursor, each once, over a signed exchange', async (t) => {
  let nowMs = 1_000;
  const log = new AgentEventLog(() => nowMs);
  const { port } = await agentServer(t, log);
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'witness', key }), peers: { 'db-a': { host: '127.0.0.1', port } }, timeoutMs: 1000 });
  t.after(() => client.close());
  const empty = await client.events!('db-a', null);
  assert.deepEqual({ v: empty.v, kind: empty.kind, from: empty.from, last: empty.last, events: empty.events }, { v: 2, kind: 'agent-events', from: 'db-a', last: 0, events: [] });
  log.record('vip-moved', 3, 'VIP verified on db-a for term 3');
  nowMs += 250;
  log.record('vip-error', 3, '3 VIP steps in a row failed');
  const first = await client.events!('db-a', { log: empty.log, after: 0 });
  assert.deepEqual(first.events, [
    { seq: 1, event: 'vip-moved', term: 3, ageMs: 250, detail: 'VIP verified on db-a for term 3' },
    { seq: 2, event: 'vip-error', term: 3, ageMs: 0, detail: '3 VIP steps in a row failed' },
  ]);
  const again = await client.events!('db-a', { log: first.log, after: 2 });
  assert.deepEqual(again.events, []);
  assert.equal(again.last, 2);
  // A cursor of another log (the agent restarted) gets everything this log holds.
  const other = await client.events!('db-a', { log: 'f'.repeat(32), after: 2 });
  assert.equal(other.events.length, 2);
});

test('bad input gets coded 4xx replies: an unsigned pull 401, a malformed cursor 400, naming the field', async (t) => {
  const { app } = await agentServer(t, new AgentEventLog(() => 0));
  const unsigned = await app.inject({ method: 'GET', url: '/v2/events' });
  assert.equal(unsigned.statusCode, 401);
  assert.equal(JSON.parse(unsigned.body).error.code, 'PGVIP_AUTH_MISSING');
  const signer = createSigner({ cluster: 'c1', sender: 'witness', key });
  for (const [url, field] of [['/v2/events?log=xyz&after=1', /log: an event log id/], ['/v2/events?log=' + 'a'.repeat(32) + '&after=-1', /after: a whole number/], ['/v2/events?since=1', /takes either no query/]] as const) {
    for (let i = 0; i < 2; i++) {
      const signed = signer.signRequest({ to: 'db-a', method: 'GET', path: url, body: '' });
      const res = await app.inject({ method: 'GET', url, headers: signed.headers });
      const headers = res.headers as Record<string, string>;
      const verdict = signer.verifyReply({ request: signed, status: res.statusCode, headers, body: res.body });
      if (verdict.resend) continue;
      assert.equal(res.statusCode, 400, url);
      const error = (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'PGVIP_BAD_REQUEST');
      assert.match(error.message, field);
      break;
    }
  }
  assert.throws(() => parseAgentEventsCursor('/v2/events?log=a&log=b&after=1'), (e) => isPgvipError(e, 'PGVIP_BAD_REQUEST'));
});

test('the event log is a bounded ring, and a reply carries at most agentEventsPerReply events', () => {
  const log = new AgentEventLog(() => 0, 50);
  for (let i = 1; i <= 60; i++) log.record('rejoin-failed', 1, `try ${i}: ${'x'.repeat(2000)}`);
  const all = log.reply({ cluster: 'c1', term: 1, from: 'db-a' }, null);
  assert.equal(all.last, 60);
  assert.equal(all.events.length, agentEventsPerReply);
  assert.equal(all.events[0]!.seq, 11, 'the ten oldest were overwritten');
  assert.ok(all.events.every((e) => e.detail.length <= 1000), 'details are cut to the wire bound');
  const rest = log.reply({ cluster: 'c1', term: 1, from: 'db-a' }, { log: all.log, after: all.events.at(-1)!.seq });
  assert.deepEqual(rest.events.map((e) => e.seq), Array.from({ length: 18 }, (_, i) => 43 + i));
});

test('a full reply of long non-ASCII details stays under the reply cap, and the rest comes next', async (t) => {
  // 32 details of 1000 CJK characters are 96 KB of UTF-8: past the 64 KiB the witness reads, the
  // pull was refused every time and the cursor never moved, so the node's events stopped for good.
  const log = new AgentEventLog(() => 0);
  for (let i = 1; i <= 40; i++) log.record('reseed-fallback', 1, `${i} ${'日'.repeat(1000)}`);
  const { port } = await agentServer(t, log);
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'witness', key }), peers: { 'db-a': { host: '127.0.0.1', port } }, timeoutMs: 2000 });
  t.after(() => client.close());
  const seen: number[] = [];
  let cursor = null as { log: string; after: number } | null;
  for (let pull = 0; pull < 10 && seen.length < 40; pull++) {
    const reply = await client.events!('db-a', cursor);
    assert.ok(reply.events.length > 0, 'every pull makes progress');
    seen.push(...reply.events.map((e) => e.seq));
    cursor = { log: reply.log, after: reply.events.at(-1)!.seq };
  }
  assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => i + 1));
});

// Goal: the witness's reader of the agents' own events (protocol v2) tells an agent that does not
// serve them (an older release: tried again a minute later) from a pull that merely timed out, as
// pulls do while a node fails over: that one is tried again at the normal pace, so the vip-moved of
// a new primary is not held back a minute. A real agent route and peer client on loopback.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import pino from 'pino';
import { createPeerClient, createSigner, createVerifier, generateKey, registerAgentEventsRoute } from '@pgvip/shared';
import { AgentEventLog } from '../../agent/src/event-log.js';
import { AgentEventsReader } from '../src/agent-events.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

test('a pull that timed out is tried again at the pull pace, not after the minute an older agent gets', async (t) => {
  const key = generateKey();
  const events = new AgentEventLog(() => performance.now());
  const app = Fastify();
  let stallMs = 0;
  app.addHook('onRequest', async () => {
    if (stallMs > 0) await new Promise((r) => setTimeout(r, stallMs));
  });
  const verifier = createVerifier({ self: 'db-a', clusters: { c1: { members: ['db-a', 'db-b', 'witness'], key } } });
  registerAgentEventsRoute(app, { verifier, events: (cluster, cursor) => events.reply({ cluster, term: 3, from: 'db-a' }, cursor) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as { port: number }).port;
  const peers = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'witness', key }), peers: { 'db-a': { host: '127.0.0.1', port } }, timeoutMs: 200 });
  t.after(() => peers.close());

  let nowMs = 0;
  const recorded: string[] = [];
  const reader = new AgentEventsReader({
    cluster: 'c1',
    peers,
    clock: { monotonicMs: () => nowMs, wallMs: () => Date.now() },
    log: pino({ level: 'silent' }),
    record: (type, node, detail) => recorded.push(`${type} ${node}: ${detail}`),
  });
  t.after(() => reader.stop());

  events.record('vip-moved', 3, 'VIP verified on db-a for term 3');
  stallMs = 600;
  reader.statusAnswered('db-a');
  // Past the 200 ms timeout, the agent answers at once again.
  await new Promise((r) => setTimeout(r, 400));
  stallMs = 0;
  // A second and a half later on the witness's clock (a pull per second at most), not a minute.
  nowMs += 1_500;
  await waitUntil('the vip-moved of db-a to be recorded', 3_000, async () => {
    reader.statusAnswered('db-a');
    return recorded.length > 0;
  });
  assert.deepEqual(recorded, ['vip-moved db-a: db-a (its agent): VIP verified on db-a for term 3']);
});

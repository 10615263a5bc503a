// Goal: at the connection cap a server keeps taking new connections (a health check must get in) by
// closing an older one, in this order: one still sending its request, then one idle between
// requests (a peer's keep-alive connection), never one whose request is being answered. And the cap
// follows the open-file limit read from /proc. Real sockets on loopback.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import Fastify from 'fastify';
import { applyServerLimits, maxConnections, openFileLimit, serverLimitOptions } from '../src/transport/server-limits.js';

async function server(t: TestContext, cap: number) {
  const app = Fastify({ ...serverLimitOptions(), forceCloseConnections: true });
  applyServerLimits(app, { maxConnections: cap });
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  app.get('/health', async () => ({ ok: true }));
  app.get('/slow', async () => {
    await released;
    return { ok: true };
  });
  app.post('/v1/lease', async () => ({ ok: true }));
  // Refused before the body is read, as the operator API refuses a request without a token.
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/refused') return reply.code(401).send({ refused: true });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return { port: (app.server.address() as { port: number }).port, release };
}

/** A raw connection; `closed` resolves when the server ends it. */
async function open(port: number, send: string): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect({ host: '127.0.0.1', port });
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(send);
  await new Promise((r) => setTimeout(r, 50));
  return { socket, closed: () => closed };
}

function get(port: number, path: string, agent?: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: agent ?? false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const slowBody = 'POST /v1/lease HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('at the cap, a health check gets in by closing the oldest slow sender; idle keep-alive and answered requests stay', async (t) => {
  const { port, release } = await server(t, 4);
  t.after(release);
  // A peer's keep-alive connection, idle after a request; a request being answered; two slow senders.
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => keepAlive.destroy());
  assert.equal(await get(port, '/health', keepAlive), 200);
  const answering = await open(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  const slow1 = await open(port, slowBody);
  const slow2 = await open(port, slowBody);
  // Four open: a fifth (the health check) closes slow1, the longest-waiting sender.
  assert.equal(await get(port, '/health'), 200);
  await sleep(50);
  assert.deepEqual([slow1.closed(), slow2.closed(), answering.closed()], [true, false, false]);
  // Another slow sender fills the cap again; the next check closes slow2, now the longest-waiting.
  const slow3 = await open(port, slowBody);
  assert.equal(await get(port, '/health'), 200);
  await sleep(50);
  assert.deepEqual([slow2.closed(), slow3.closed(), answering.closed()], [true, false, false]);
  // slow3's body arrives at last: answered, it now idles between requests.
  slow3.socket.write(`${' '.repeat(98)}}`);
  await sleep(50);
  // The keep-alive connection was not closed: it serves the next request (one socket, reused).
  assert.equal(await get(port, '/health', keepAlive), 200);
  const sockets = Object.values(keepAlive.sockets).flat().length + Object.values(keepAlive.freeSockets).flat().length;
  assert.equal(sockets, 1);
  // With no sender left, the longest-idle connection (slow3's; the keep-alive one was just used)
  // makes room.
  const extra = await open(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(await get(port, '/health'), 200);
  await sleep(50);
  assert.deepEqual([slow3.closed(), extra.closed(), answering.closed()], [true, false, false], 'the longest-idle one, not those being answered');
  release();
  await sleep(50);
  for (const c of [answering, slow3, extra]) c.socket.destroy();
});

test('a request refused before its body arrived still counts as sending: it goes before an idle keep-alive connection', async (t) => {
  const { port } = await server(t, 3);
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => keepAlive.destroy());
  assert.equal(await get(port, '/health', keepAlive), 200);
  const refused = await open(port, 'POST /refused HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
  // Used after the refused connection opened: the keep-alive one is the more recent to progress.
  assert.equal(await get(port, '/health', keepAlive), 200);
  const other = await open(port, slowBody);
  assert.equal(await get(port, '/health'), 200);
  await sleep(50);
  assert.deepEqual([refused.closed(), other.closed()], [true, false]);
  assert.equal(await get(port, '/health', keepAlive), 200);
  other.socket.destroy();
});

test('when every connection is being answered, the newcomer is the one closed', async (t) => {
  const { port, release } = await server(t, 2);
  t.after(release);
  const a = await open(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  const b = await open(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await assert.rejects(get(port, '/health'));
  assert.deepEqual([a.closed(), b.closed()], [false, false]);
  release();
  await sleep(50);
  a.socket.destroy();
  b.socket.destroy();
});

test('the cap is derived from the soft open-file limit in /proc/self/limits', () => {
  const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            ${soft.padEnd(21)}524288               files     \n`;
  assert.equal(openFileLimit(limits('1024')), 1024);
  assert.equal(openFileLimit(limits('unlimited')), Number.POSITIVE_INFINITY);
  assert.equal(openFileLimit('nothing here'), null);
  assert.equal(maxConnections(1024), 384);
  assert.equal(maxConnections(256), 96);
  assert.equal(maxConnections(Number.POSITIVE_INFINITY), 512);
  assert.equal(maxConnections(8), 3);
  const own = openFileLimit();
  assert.ok(own === null || own > 0);
});

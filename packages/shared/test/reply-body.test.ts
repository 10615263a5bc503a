// Goal: a peer reply is read only up to 64 KiB. Something at a peer's address that answers 200 with a
// huge body (content-length 1 GB) or an endless chunked one makes the call fail at once with
// PGVIP_REPLY_TOO_LARGE, having read next to nothing, instead of buffering it all before the MAC
// check (a 1 GB reply once made the witness hold 742 MB). Real sockets on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createSigner, generateKey } from '../src/auth/index.js';
import { PROTOCOL_VERSION, type LeaseRequest } from '../src/core/messages.js';
import { isPgvipError } from '../src/errors.js';
import { createPeerClient, readReplyBody, replyLimitBytes } from '../src/transport/index.js';

/** Answers every request 200 with `bytes` bytes (Infinity: chunked, endless); counts what it wrote. */
async function bigReplies(
  t: { after: (fn: () => Promise<void>) => void },
  bytes: number,
): Promise<{ port: number; sent: () => number }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', ...(Number.isFinite(bytes) ? { 'content-length': String(bytes) } : {}) });
    let left = bytes;
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        left -= chunk.length;
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as { port: number }).port, sent: () => sent };
}

const lease: LeaseRequest = { v: PROTOCOL_VERSION, cluster: 'c1', term: 2, from: 'db-a', kind: 'lease-request', seq: 1, lsn: 0n, timeline: 1, syncStandby: null };

for (const [what, bytes] of [
  ['a 1 GB reply (content-length)', 1024 ** 3],
  ['an endless chunked reply', Number.POSITIVE_INFINITY],
] as const) {
  test(`${what} from a peer's address fails at once with PGVIP_REPLY_TOO_LARGE, reading next to nothing`, async (t) => {
    const peer = await bigReplies(t, bytes);
    // A generous timeout: without the cap, the client reads until it runs out.
    const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key: generateKey() }), peers: { witness: { host: '127.0.0.1', port: peer.port } }, timeoutMs: 5_000 });
    t.after(() => client.close());
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    for (const call of [() => client.send('witness', lease), () => client.status('witness')]) {
      await assert.rejects(call(), (e) => {
        assert.ok(isPgvipError(e, 'PGVIP_REPLY_TOO_LARGE'), `got ${String(e)}`);
        assert.match(e.message, /witness (POST \/v1\/lease|GET \/v2\/status): the reply is .* at most 65536 bytes/);
        return true;
      });
    }
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `the calls took ${Math.round(ms)} ms`);
    // What the server got out before the client hung up: socket buffers' worth, not the body.
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(peer.sent() < 16 * 1024 ** 2, `the server sent ${peer.sent()} bytes`);
    const grewMb = (process.memoryUsage().rss - rssBefore) / 1024 ** 2;
    assert.ok(grewMb < 64, `resident memory grew ${grewMb.toFixed(1)} MB`);
  });
}

test('readReplyBody returns a body within the limit, refuses one past it, and counts bytes, not characters', async () => {
  async function* chunks(...parts: string[]) {
    for (const p of parts) yield Buffer.from(p);
  }
  const body = (...parts: string[]) => Object.assign(chunks(...parts), { destroy: () => undefined });
  assert.equal(await readReplyBody(body('{"a":', '1}'), {}, 'x'), '{"a":1}');
  const atLimit = 'a'.repeat(replyLimitBytes);
  assert.equal((await readReplyBody(body(atLimit), { 'content-length': String(replyLimitBytes) }, 'x')).length, replyLimitBytes);
  await assert.rejects(readReplyBody(body(atLimit, 'b'), {}, 'x'), (e) => isPgvipError(e, 'PGVIP_REPLY_TOO_LARGE'));
  // 'é' is two bytes: half the limit in characters is the whole limit in bytes.
  await assert.rejects(readReplyBody(body('é'.repeat(replyLimitBytes / 2), 'é'), {}, 'x'), (e) => isPgvipError(e, 'PGVIP_REPLY_TOO_LARGE'));
  let destroyed = false;
  const declared = Object.assign(chunks(), { destroy: () => void (destroyed = true) });
  await assert.rejects(readReplyBody(declared, { 'content-length': '1073741824' }, 'db-b GET /v1/status'), /db-b GET \/v1\/status: the reply is 1073741824 bytes \(content-length\)/);
  assert.ok(destroyed, 'a declared oversize body is not read at all');
});

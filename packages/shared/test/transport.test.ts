// Goal: the peer transport carries signed requests and replies end to end over real sockets: the
// first request learns the peer's epoch, bad input gets a coded 4xx, and a peer that is down or
// silent fails within the timeout with a coded error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import Fastify from 'fastify';
import { createSigner, createVerifier, generateKey } from '../src/auth/index.js';
import { PROTOCOL_VERSION, type LeaseRequest, type PeerRequest } from '../src/core/messages.js';
import { isPgvipError } from '../src/errors.js';
import { createPeerClient, leaseValidHeader, registerProtocolRoutes, type RequestMeta } from '../src/transport/index.js';

const key = generateKey();
const members = ['db-a', 'db-b', 'witness'];

async function witnessServer(t: { after: (fn: () => Promise<void> | void) => void }) {
  const app = Fastify();
  const seen: PeerRequest[] = [];
  const metas: RequestMeta[] = [];
  registerProtocolRoutes(app, {
    daemon: 'witness',
    verifier: createVerifier({ self: 'witness', clusters: { c1: { members, key } } }),
    handle: (msg, _from, meta) => {
      seen.push(msg);
      metas.push(meta);
      return { v: PROTOCOL_VERSION, cluster: 'c1', term: msg.term, from: 'witness', kind: 'lease-reply', seq: (msg as LeaseRequest).seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: msg.from };
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as { port: number }).port;
  return { app, port, seen, metas };
}

const lease = (seq: number): LeaseRequest => ({ v: PROTOCOL_VERSION, cluster: 'c1', term: 2, from: 'db-a', kind: 'lease-request', seq, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' });

test('a signed lease request is answered with a verified, parsed reply', async (t) => {
  const { port, seen } = await witnessServer(t);
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key }), peers: { witness: { host: '127.0.0.1', port } }, timeoutMs: 1000 });
  t.after(() => client.close());
  for (const seq of [1, 2, 3]) {
    const reply = await client.send('witness', lease(seq));
    assert.equal(reply.kind, 'lease-reply');
    assert.ok(reply.kind === 'lease-reply' && reply.granted && reply.seq === seq);
  }
  assert.equal(seen.length, 3);
  assert.equal((seen[0] as LeaseRequest).lsn, 0x3000060n);
});

test('a client with the wrong key is refused with a coded error, and nothing is handled', async (t) => {
  const { port, seen } = await witnessServer(t);
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key: generateKey() }), peers: { witness: { host: '127.0.0.1', port } }, timeoutMs: 1000 });
  t.after(() => client.close());
  await assert.rejects(client.send('witness', lease(1)), (e) => isPgvipError(e) && /PGVIP_AUTH|PGVIP_PEER_REFUSED/.test(e.message));
  assert.equal(seen.length, 0);
});

test('a malformed body gets a coded 400, an unsigned request a coded 401', async (t) => {
  const { app } = await witnessServer(t);
  const unsigned = await app.inject({ method: 'POST', url: '/v1/lease', headers: { 'content-type': 'application/json' }, payload: '{}' });
  assert.equal(unsigned.statusCode, 401);
  assert.equal(JSON.parse(unsigned.body).error.code, 'PGVIP_AUTH_MISSING');
  const signer = createSigner({ cluster: 'c1', sender: 'db-a', key });
  // First contact learns the epoch; the second request is then accepted up to the schema check.
  for (let i = 0; i < 2; i++) {
    const body = '{"v":1,"cluster":"c1"}';
    const signed = signer.signRequest({ to: 'witness', method: 'POST', path: '/v1/lease', body });
    const res = await app.inject({ method: 'POST', url: '/v1/lease', headers: { ...signed.headers, 'content-type': 'application/json' }, payload: body });
    const verdict = signer.verifyReply({
      request: signed,
      status: res.statusCode,
      headers: res.headers as Record<string, string>,
      body: res.body,
    });
    if (verdict.resend) continue;
    assert.equal(res.statusCode, 400);
    assert.equal(JSON.parse(res.body).error.code, 'PGVIP_BAD_REQUEST');
  }
});

test('the sender\'s lease validity travels in a header to the handler; a malformed value gets a coded 400 and is not handled', async (t) => {
  const { app, port, seen, metas } = await witnessServer(t);
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key }), peers: { witness: { host: '127.0.0.1', port } }, timeoutMs: 1000, leaseValidMs: 2870 });
  t.after(() => client.close());
  await client.send('witness', lease(1));
  assert.deepEqual(metas, [{ peerLeaseValidMs: 2870 }]);
  const signer = createSigner({ cluster: 'c1', sender: 'db-a', key });
  for (const bad of ['soon', '-5', '']) {
    for (let i = 0; i < 2; i++) {
      const body = JSON.stringify({ ...lease(10 + i), lsn: '0/3000060' });
      const signed = signer.signRequest({ to: 'witness', method: 'POST', path: '/v1/lease', body });
      const res = await app.inject({ method: 'POST', url: '/v1/lease', headers: { ...signed.headers, [leaseValidHeader]: bad, 'content-type': 'application/json' }, payload: body });
      const verdict = signer.verifyReply({
        request: signed,
        status: res.statusCode,
        headers: res.headers as Record<string, string>,
        body: res.body,
      });
      if (verdict.resend) continue;
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(JSON.parse(res.body).error.code, 'PGVIP_BAD_REQUEST');
      assert.match(JSON.parse(res.body).error.message, /x-pgvip-lease-valid-ms must be a positive number/);
    }
  }
  assert.equal(seen.length, 1, 'nothing malformed reached the handler');
});

test('a silent peer times out and a closed port is unreachable, both coded', async (t) => {
  const silent = createServer(() => {}).listen(0, '127.0.0.1');
  t.after(() => silent.close());
  await new Promise((r) => silent.once('listening', r));
  const silentPort = (silent.address() as { port: number }).port;
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key }), peers: { witness: { host: '127.0.0.1', port: silentPort }, 'db-b': { host: '127.0.0.1', port: 1 } }, timeoutMs: 300 });
  t.after(() => client.close());
  const started = Date.now();
  await assert.rejects(client.send('witness', lease(1)), (e) => isPgvipError(e, 'PGVIP_PEER_TIMEOUT'));
  assert.ok(Date.now() - started < 3000);
  await assert.rejects(client.status('db-b'), (e) => isPgvipError(e, 'PGVIP_PEER_UNREACHABLE'));
});

/**
 * A peer whose TCP handshake never completes, as when its host drops packets: a listener that never
 * accepts, with its accept queue already full, so the kernel drops every further SYN. (Node always
 * accepts, so the listener is a python3 process.)
 */
async function unansweredPort(t: { after: (fn: () => Promise<void> | void) => void }): Promise<number> {
  const { spawn } = await import('node:child_process');
  const { connect } = await import('node:net');
  const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => void py.kill());
  const port = await new Promise<number>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  // Fill the accept queue (backlog 0 holds one connection; a second is kept half-open).
  for (let i = 0; i < 2; i++) {
    const filler = connect(port, '127.0.0.1');
    filler.on('error', () => undefined);
    t.after(() => void filler.destroy());
  }
  await new Promise((r) => setTimeout(r, 100));
  return port;
}

test('a peer whose connection never completes fails every call at the timeout, not at the HTTP client\'s own connect timer', async (t) => {
  const port = await unansweredPort(t);
  const timeoutMs = 200;
  const client = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: 'db-a', key }), peers: { witness: { host: '127.0.0.1', port } }, timeoutMs });
  t.after(() => client.close());
  // An HTTP client on its own ends such a call late (undici after its connect timeout, rounded up to
  // about a second; node:http only at the OS's): a heartbeat-paced caller would then miss beats. Each
  // call must end near timeoutMs.
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await assert.rejects(client.send('witness', lease(i + 1)), (e) => isPgvipError(e, 'PGVIP_PEER_TIMEOUT'));
    const took = performance.now() - started;
    assert.ok(took < 900, `call ${i + 1} took ${Math.round(took)} ms with a ${timeoutMs} ms timeout`);
  }
});

// Goal: a TLS listener under tls.transition (servePlaintextToo) serves plain HTTP and TLS on one port,
// telling connections apart by their first byte, with every byte of either reaching its parser (a
// body that arrives in pieces, keep-alive requests), and with the limits of the TLS side on the plain
// one: a connection that says nothing is closed, and so is a plain request that never completes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { servePlaintextToo } from '../src/transport/plaintext-too.js';

let cert: string;
let key: string;
let server: Server;
let port: number;
const clientErrors: string[] = [];

before(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-plaintext-too-'));
  try {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')]);
    assert.equal(r.status, 0, r.stderr.toString());
    cert = readFileSync(path.join(dir, 'c.pem'), 'utf8');
    key = readFileSync(path.join(dir, 'k.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Echoes what it received: the method, the path, the body's length and which side it came in on.
  server = createServer({ cert, key }, (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`${req.method} ${req.url} ${n} ${'encrypted' in req.socket ? 'tls' : 'plain'}`));
  });
  // As fastify does: a client error (here the plain side's request timeout) is answered and closed.
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    clientErrors.push(err.code ?? err.message);
    socket.end(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'HTTP/1.1 408 Request Timeout\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  servePlaintextToo(server, {
    firstByteTimeoutMs: 400,
    requestTimeoutMs: 600,
    headersTimeoutMs: 600,
    connectionsCheckingIntervalMs: 100,
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as { port: number }).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

/** Opens a plain connection; resolves with everything it received once the server closed it. */
function plainExchange(write: (s: Socket) => void): Promise<{ text: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => write(s));
    let text = '';
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ text, ms: Date.now() - t0 }));
  });
}

const bodies = (text: string): string[] => [...text.matchAll(/\r\n\r\n(?:[0-9a-f]+\r\n)?([A-Z]+ \/\S* \d+ (?:plain|tls))/g)].map((m) => m[1]!);

describe('a TLS listener that serves plain HTTP too', { timeout: 30_000 }, () => {
  it('answers plain keep-alive requests, with a body that arrives in pieces, in order', async () => {
    const body = 'x'.repeat(5000);
    const { text } = await plainExchange((s) => {
      s.write('GET /one HTTP/1.1\r\nHost: a\r\n\r\n');
      setTimeout(() => s.write(`POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 1000)}`), 50);
      setTimeout(() => s.write(body.slice(1000)), 150);
      setTimeout(() => s.write('GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), 250);
    });
    assert.deepEqual(bodies(text), ['GET /one 0 plain', 'POST /two 5000 plain', 'GET /three 0 plain']);
  });

  it('answers TLS requests on the same port', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/four', method: 'POST', ca: cert, agent: false }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end('abc');
    });
    assert.equal(answer, 'POST /four 3 tls');
  });

  it('closes a connection that sends nothing, and a plain request that never completes', async () => {
    const silent = await plainExchange(() => undefined);
    assert.ok(silent.text === '' && silent.ms >= 300 && silent.ms < 3_000, `silent connection closed after ${silent.ms} ms`);
    const slow = await plainExchange((s) => s.write('GET /five HTTP/1.1\r\nHost: a\r\n'));
    assert.ok(slow.ms >= 500 && slow.ms < 3_000, `incomplete request closed after ${slow.ms} ms`);
    assert.match(slow.text, /^HTTP\/1\.1 408/, 'answered 408 by the plain side\'s request timeout');
    assert.ok(clientErrors.includes('ERR_HTTP_REQUEST_TIMEOUT'), `the TLS server's clientError handlers heard it: ${clientErrors.join(', ')}`);
  });
});

// The emulator's HTTP front: EC2 Query API on `/`, admin JSON on `/__admin/`. It turns a query
// outcome into bytes on the wire — including the two faults that live below HTTP: a request that is
// never answered, and a connection cut after the mutation took effect.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleAdmin, type AdminDeps } from './admin-api.js';
import { handleQuery, type QueryApiDeps } from './query-api.js';

const bodyLimitBytes = 1 << 20;

/** The body's bytes as received (the signature covers them), or undefined past the size limit. */
export function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= bodyLimitBytes) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > bodyLimitBytes ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendQueryAnswer(res: ServerResponse, httpStatus: number, requestId: string, xml: string, nowMs: number): void {
  res.writeHead(httpStatus, {
    // The server's clock, which the SDKs sample to correct their own (a skewed host's next request is signed right).
    Date: new Date(nowMs).toUTCString(),
    'Content-Type': 'text/xml;charset=UTF-8',
    'Content-Length': Buffer.byteLength(xml),
    // The JS SDK reads $metadata.requestId only from this header, not from the body.
    'x-amzn-RequestId': requestId,
    Server: 'AmazonEC2',
  });
  res.end(xml);
}

async function serve(deps: QueryApiDeps & AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator');
  const body = await readBody(req);
  if (body === undefined) {
    res.writeHead(413, { 'Content-Type': 'text/plain' }).end('request body too large\n');
    return;
  }
  if (url.pathname.startsWith('/__admin/')) {
    const answer = await handleAdmin(deps, { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body: body.toString('utf8') });
    const json = JSON.stringify(answer.json, null, 2);
    res.writeHead(answer.httpStatus, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) }).end(json);
    return;
  }
  const outcome = handleQuery(deps, { method: req.method ?? 'GET', target: req.url ?? '/', rawHeaders: req.rawHeaders, body });
  switch (outcome.kind) {
    case 'answer':
      sendQueryAnswer(res, outcome.httpStatus, outcome.requestId, outcome.xml, (deps.now ?? Date.now)());
      return;
    case 'hang':
      // Leave the request open: only the client's timeout (or the emulator closing) ends it.
      return;
    case 'lost-response':
      // The mutation has been applied; the client sees a reset connection instead of the answer.
      req.socket.destroy();
      return;
  }
}

export function createEmulatorServer(deps: QueryApiDeps & AdminDeps): Server {
  return createServer((req, res) => {
    serve(deps, req, res).catch((err: unknown) => {
      console.error('ec2-emulator: request failed:', err);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('emulator error\n');
    });
  });
}

/** Listens and resolves with the bound port (port 0 picks a free one). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes the server, cutting open connections (hung requests and idle keep-alives) at once. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

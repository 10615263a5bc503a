// A TLS listener that also serves plain HTTP on the same port, for the rolling switch to TLS
// (tls.transition, docs/deploy.md "Turning TLS on without a maintenance window"): while some daemons
// of a cluster already speak TLS and others not yet, every listener must answer both. Each
// connection is told apart by its first byte: a TLS connection starts with a handshake record
// (content type 22), an HTTP request with a method name in ASCII letters.
//
// The HMAC of the protocol is the same on both: a plain request is as authenticated as before TLS
// was on, only readable on the network, which is what the daemons still on plain HTTP send anyway.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

/** The first byte of a TLS record that carries a handshake message (RFC 8446, ContentType). */
const tlsHandshakeRecord = 0x16;

export interface PlaintextTooOptions {
  /** A connection that sends nothing within this is closed (as the TLS handshake limit does). */
  readonly firstByteTimeoutMs: number;
  /** The HTTP timeouts of the TLS side, for the plain side. */
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly connectionsCheckingIntervalMs: number;
}

/**
 * Makes the freshly created https `server` (fastify's, before anything else listens for its
 * connections) hand each plain-HTTP connection to an HTTP server of the same limits, whose requests
 * and client errors it re-emits as its own: fastify's routes, the connection cap and the refusal
 * log see them as they see TLS ones. Call before applyServerLimits' listeners are added.
 */
export function servePlaintextToo(server: HttpServer, opts: PlaintextTooOptions): void {
  const tlsServer = server as unknown as TlsServer & HttpServer;
  // Node's TLS server starts the handshake from its one 'connection' listener, set in its constructor.
  const handshake = tlsServer.listeners('connection');
  if (handshake.length !== 1) {
    throw new Error(`servePlaintextToo: expected the TLS server's own connection listener alone, found ${handshake.length}`);
  }
  const startTls = handshake[0] as (this: TlsServer, socket: Socket) => void;
  tlsServer.removeListener('connection', startTls);

  const plain = createHttpServer(
    {
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: opts.headersTimeoutMs,
      connectionsCheckingInterval: opts.connectionsCheckingIntervalMs,
    },
    (req: IncomingMessage, res: ServerResponse) => tlsServer.emit('request', req, res),
  );
  // Its client errors (a request timeout, malformed HTTP) go to the TLS server's handlers (fastify
  // answers 408 or 400 and closes); a server without one closes the connection.
  plain.on('clientError', (err: Error, socket: Socket) => {
    if (!tlsServer.emit('clientError', err, socket)) socket.destroy();
  });
  // The plain server never listens itself; 'listening' starts its check of the request timeouts,
  // and closing it stops that check.
  tlsServer.on('listening', () => plain.emit('listening'));
  tlsServer.on('close', () => plain.close());

  // Prepended: it must run before applyServerLimits' listener, which only records the socket.
  tlsServer.prependListener('connection', (socket: Socket) => {
    socket.setTimeout(opts.firstByteTimeoutMs, () => socket.destroy());
    // Until one of the two servers owns the socket, its errors (a reset) only end it.
    const ended = (): void => void socket.destroy();
    socket.on('error', ended);
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.removeListener('error', ended);
      socket.pause();
      // The byte read is put back: the TLS socket (or the HTTP parser) reads the connection from its start.
      socket.unshift(first);
      if (first[0] === tlsHandshakeRecord) {
        startTls.call(tlsServer, socket);
        return;
      }
      // What fastify set on its server (idle and keep-alive timeouts) holds for this connection too.
      plain.timeout = tlsServer.timeout;
      plain.keepAliveTimeout = tlsServer.keepAliveTimeout;
      plain.maxHeadersCount = tlsServer.maxHeadersCount;
      plain.emit('connection', socket);
      socket.resume();
    });
  });
}

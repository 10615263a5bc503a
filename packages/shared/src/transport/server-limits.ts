// The limits every pgvip HTTP server applies (the agent's port, the witness's peer and operator
// ports): how long a request may take to arrive, how long a quiet connection stays open, how large a
// body may be, and how many connections may be open at once. pgvip's own requests are a few hundred
// bytes sent at once, so the limits can be tight; what they stop is a client that holds connections
// open by sending slowly — with the default limit of 1024 open files, 1,000 such connections once
// left the agent's /health, /primary and /replica unreachable for as long as the attack lasted.
//
// Defaults, not settings: no deployment of pgvip needs other values (docs/security.md, "HTTP limits").
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createRateLimitedLog, type RateLimitedLog, type WarnLogger } from './rate-limited-log.js';
import { servePlaintextToo } from './plaintext-too.js';
import { tlsServerOptions, type TlsMaterial } from './tls.js';

export const serverLimits = {
  /** The whole request (headers and body) must arrive within this; slower ones get 408 and are closed. */
  requestTimeoutMs: 5_000,
  /** The headers must arrive within this (at most requestTimeoutMs). */
  headersTimeoutMs: 5_000,
  /**
   * How often Node checks the two timeouts above (its default, 30 s, would let a slow request live
   * up to 35 s).
   */
  timeoutCheckIntervalMs: 1_000,
  /**
   * A TLS listener closes a connection whose handshake has not finished within this (Node's default,
   * 120 s, would let a client that opens connections and never says hello hold them for two minutes).
   */
  handshakeTimeoutMs: 5_000,
  /** A connection with no bytes in either direction for this long is closed. */
  idleTimeoutMs: 30_000,
  /** A keep-alive connection waits this long for its next request (peers send one every heartbeat). */
  keepAliveTimeoutMs: 10_000,
  /** Request bodies: the protocol's messages are under 2 KiB. */
  bodyLimitBytes: 64 * 1024,
  /** Open connections per server, at most; lower when the open-file limit is low (maxConnections()). */
  maxConnections: 512,
} as const;

/** The soft limit on open files of this process (RLIMIT_NOFILE), or null when it cannot be read (not Linux). */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (m === null) return null;
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

/**
 * Connections one server may hold open. Each holds a file descriptor, and running out of them is what
 * made the daemons unreachable, so the cap is derived from the open-file limit: a quarter of it (at
 * most 256) stays free for what the daemon itself opens (PostgreSQL sessions, requests to peers,
 * webhooks, state and history files), and the rest is shared by up to two servers (the witness runs
 * two in one process). With the default limit of 1024: 384 per server.
 */
export function maxConnections(nofile: number | null = openFileLimit()): number {
  if (nofile === null || !Number.isFinite(nofile)) return serverLimits.maxConnections;
  const reserved = Math.min(256, Math.floor(nofile / 4));
  return Math.max(1, Math.min(serverLimits.maxConnections, Math.floor((nofile - reserved) / 2)));
}

/**
 * The fastify constructor options that carry the limits; `bodyLimitBytes` may only be lowered. With
 * `tls`, the server is an https one: fastify then passes only its `https` options to Node, so the
 * HTTP timeouts go there too (in `http` they would be silently dropped), with the handshake timeout.
 */
export function serverLimitOptions(
  opts: { readonly bodyLimitBytes?: number; readonly tls?: { material: TlsMaterial; mutual: boolean } } = {},
) {
  const http = {
    requestTimeout: serverLimits.requestTimeoutMs,
    headersTimeout: serverLimits.headersTimeoutMs,
    connectionsCheckingInterval: serverLimits.timeoutCheckIntervalMs,
  };
  return {
    requestTimeout: serverLimits.requestTimeoutMs,
    connectionTimeout: serverLimits.idleTimeoutMs,
    keepAliveTimeout: serverLimits.keepAliveTimeoutMs,
    bodyLimit: Math.min(opts.bodyLimitBytes ?? serverLimits.bodyLimitBytes, serverLimits.bodyLimitBytes),
    http,
    // Typed as fastify's plain-HTTP options (`https` is then null) so every server keeps one
    // FastifyInstance type; at run time the https server is a subclass of the http one.
    https: (opts.tls === undefined
      ? null
      : { ...tlsServerOptions(opts.tls.material, opts.tls.mutual, serverLimits.handshakeTimeoutMs), ...http }) as null,
  };
}

const refusalLogs = new WeakMap<FastifyInstance, RateLimitedLog>();

/**
 * The rate-limited log for refusals on this server (bad tokens, bad MACs, cut connections): every
 * refusal a server logs goes through it, so no client can make the daemon print a line per request.
 */
export function refusalLog(app: FastifyInstance): RateLimitedLog {
  let log = refusalLogs.get(app);
  if (log === undefined) {
    log = createRateLimitedLog({ log: app.log as WarnLogger });
    refusalLogs.set(app, log);
  }
  return log;
}

/**
 * Caps the open connections of `app`'s server and logs, rate-limited, the connections the limits cut.
 * Call once, right after creating the app with serverLimitOptions().
 *
 * At the cap, a new connection does not get refused: an older one is closed to make room. A refused
 * newcomer would let a client that holds the cap in slow connections keep /health unreachable for as
 * long as it keeps them open, while a health check sends its request at once and is answered within
 * a millisecond. Closed first: the longest-waiting connection that is still sending a request (or
 * has sent nothing yet); only when there is none, the longest-idle keep-alive connection between two
 * requests (a peer's, which would reconnect for its next heartbeat). A connection whose request has
 * fully arrived and is being answered is never closed; when every one is such, the newcomer is.
 */
interface Conn {
  /** The connection's latest request (null before the first has its headers). */
  req: IncomingMessage | null;
  /** Its response is not finished yet. */
  responding: boolean;
}

/**
 * Still sending: nothing parsed yet, or a request whose body has not all arrived — also after it was
 * answered (a refusal does not wait for the body, which Node then reads and discards).
 */
const receiving = (c: Conn) => c.req === null || !c.req.complete;
/** Between two requests of a keep-alive connection. */
const idle = (c: Conn) => c.req !== null && c.req.complete && !c.responding;

export function applyServerLimits(
  app: FastifyInstance,
  opts: { readonly maxConnections?: number; readonly plaintextToo?: boolean } = {},
): void {
  const cap = opts.maxConnections ?? maxConnections();
  const refusals = refusalLog(app);
  const server = app.server;
  // tls.transition: this TLS listener serves plain HTTP too, under the same limits (plaintext-too.ts).
  if (opts.plaintextToo === true) {
    servePlaintextToo(server, {
      firstByteTimeoutMs: serverLimits.handshakeTimeoutMs,
      requestTimeoutMs: serverLimits.requestTimeoutMs,
      headersTimeoutMs: serverLimits.headersTimeoutMs,
      connectionsCheckingIntervalMs: serverLimits.timeoutCheckIntervalMs,
    });
  }
  // Least recently progressed first: Map keeps insertion order, and a request answered in full moves
  // its socket to the end.
  const sockets = new Map<Socket, Conn>();

  function evict(old: Socket, why: string): void {
    sockets.delete(old);
    old.destroy();
    refusals.warn('connection-evicted', { remoteAddress: old.remoteAddress, maxConnections: cap }, `${cap} connections open (the cap): closed ${why}`);
  }

  server.on('connection', (socket: Socket) => {
    sockets.set(socket, { req: null, responding: false });
    socket.once('close', () => sockets.delete(socket));
    if (sockets.size <= cap) return;
    let idleOne: Socket | null = null;
    for (const [old, conn] of sockets) {
      if (old === socket) break;
      if (receiving(conn)) return evict(old, 'the longest-waiting one that had not sent a complete request');
      if (idleOne === null && idle(conn)) idleOne = old;
    }
    if (idleOne !== null) return evict(idleOne, 'the longest-idle keep-alive connection');
    sockets.delete(socket);
    socket.destroy();
    refusals.warn('connection-refused', { remoteAddress: socket.remoteAddress, maxConnections: cap }, `${cap} connections open (the cap), all being answered: refused a new one`);
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // On a TLS listener, 'connection' gave the TCP socket and the request has the TLS socket over it
    // (its _parent); the map is keyed by the TCP socket, which exists from before the handshake.
    const socket = (req.socket as Socket & { _parent?: Socket })._parent ?? req.socket;
    const conn = sockets.get(socket);
    if (conn === undefined) return;
    conn.req = req;
    conn.responding = true;
    res.once('close', () => {
      if (sockets.get(socket) !== conn || conn.req !== req) return;
      conn.responding = false;
      if (!req.complete) return;
      // Moved to the end: it made progress.
      sockets.delete(socket);
      sockets.set(socket, conn);
    });
  });

  // Node reports the cut (and fastify answers 408) through clientError; this only logs it.
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (err.code === 'ECONNRESET') return;
    const slow = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    const kind = slow ? 'request-timeout' : 'bad-http';
    const msg = slow
      ? `closed a connection whose request did not arrive within ${serverLimits.requestTimeoutMs} ms`
      : `closed a connection that sent malformed HTTP (${err.code ?? err.message})`;
    refusals.warn(kind, { remoteAddress: socket.remoteAddress }, msg);
  });

  // A TLS listener reports a failed handshake here instead (plain HTTP sent to it, an unknown CA, no
  // client certificate under mutual TLS, a handshake not finished in time); Node closes the socket.
  server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
    if (err.code === 'ECONNRESET') return;
    refusals.warn('tls-handshake', { remoteAddress: socket.remoteAddress }, `closed a connection whose TLS handshake failed (${err.code ?? err.message})`);
  });

  app.addHook('onClose', async () => refusals.flush());
}

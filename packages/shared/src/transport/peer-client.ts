// The client side of the peer protocol: signed requests over keep-alive HTTP (node:http), one
// connection per peer so requests arrive in the order they were signed, a timeout on every call, and
// replies that are authenticated and parsed before anyone sees them.
//
// node:http rather than undici: undici parses HTTP with llhttp compiled to WebAssembly, and compiling
// and running it (V8's WebAssembly compilers, their code, the module's memory) cost the agent 7 MB of
// its resident set (bench:agent, 87.9 -> 80.9 MB), for a few requests a second that Node's own
// parser, in the binary and already serving the agent's API, reads as well.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { AUTH_HEADER } from '../auth/header.js';
import type { Signer } from '../auth/signer.js';
import type { AgentStatus, NodeId, PeerReply, PeerRequest } from '../core/messages.js';
import { PgvipError, isPgvipError } from '../errors.js';
import { decodeMessageBody, serializeMessage } from '../wire/codec.js';
import { agentEventsRequestPath, decodeAgentEventsReply, type AgentEventsCursor, type AgentEventsReply } from '../wire/agent-events.js';
import { endpoints, type EndpointSpec } from '../wire/endpoints.js';
import { readReplyBody } from './reply-body.js';
import { tlsClientOptions, type TlsSource } from './tls.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface PeerClientOptions {
  readonly signer: Signer;
  readonly peers: Readonly<Record<NodeId, PeerAddress>>;
  /** Per-call timeout (the protocol's requestTimeoutMs). */
  readonly timeoutMs: number;
  /**
   * How long this node counts a lease valid by its own timings (leaseValidMs), sent with every
   * request as leaseValidHeader so grantors can refuse a lease longer than their promise covers.
   */
  readonly leaseValidMs?: number;
  /**
   * Speak TLS to every peer (https), verifying its certificate against the source's CA and its name
   * against the address dialled, and presenting this daemon's own certificate (mutual TLS). After a
   * reload (SIGHUP) the next call dials a fresh connection with the new files.
   */
  readonly tls?: TlsSource;
}

/**
 * The sender's lease validity in ms. A header, not a message field: message objects are strict, so a
 * new field would be a new protocol version, while a header is ignored by releases that predate it
 * (they simply do not check). It is not covered by the MAC; it guards against misconfiguration, not
 * against someone on the path, who could drop the traffic anyway.
 */
export const leaseValidHeader = 'x-pgvip-lease-valid-ms';

/** How long a peer whose agent predates GET /v2/status is polled on /v1/status before v2 is tried again. */
export const V1_STATUS_RECHECK_MS = 60_000;

export interface PeerClient {
  /** Send one protocol request; resolves with the verified, parsed reply. Throws PgvipError. */
  send(to: NodeId, msg: PeerRequest): Promise<PeerReply>;
  /**
   * GET /v2/status of an agent, or GET /v1/status when the agent predates v2 (it answers /v2/status
   * with an unsigned 404; asked again after V1_STATUS_RECHECK_MS, so an upgraded agent is noticed).
   * Throws PgvipError.
   */
  status(to: NodeId): Promise<AgentStatus>;
  /**
   * GET /v2/events of an agent: its own events after `cursor` (wire/agent-events.ts). Throws
   * PgvipError; an agent that predates protocol v2 answers with an unsigned 404, an auth error here.
   * Optional so that fakes of v1 need not grow it.
   */
  events?(to: NodeId, cursor: AgentEventsCursor | null): Promise<AgentEventsReply>;
  close(): Promise<void>;
}

interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** The connection to one peer: an agent of one keep-alive socket, and what it dials. */
interface Channel {
  readonly agent: HttpAgent;
  readonly host: string;
  readonly port: number;
  /** The TLS version it was dialled with (undefined: plain HTTP); one from before a reload is retired. */
  readonly tlsVersion: number | undefined;
}

export function createPeerClient(options: PeerClientOptions): PeerClient {
  const pools = new Map<NodeId, Channel>();
  const extraHeaders: Record<string, string> = options.leaseValidMs === undefined
    ? {}
    : { [leaseValidHeader]: String(options.leaseValidMs) };
  const poolFor = (to: NodeId): Channel => {
    let pool = pools.get(to);
    const tls = options.tls;
    if (pool !== undefined && tls !== undefined && pool.tlsVersion !== tls.version) {
      retire(to, pool);
      pool = undefined;
    }
    if (pool === undefined) {
      const addr = options.peers[to];
      if (addr === undefined) throw new PgvipError('PGVIP_PEER_UNREACHABLE', `no address configured for ${to}`);
      // One socket, kept open between calls: requests queue behind each other in the order sent.
      const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
      const agent = tls === undefined
        ? new HttpAgent(agentOptions)
        : new HttpsAgent({ ...agentOptions, ...tlsClientOptions(tls.material) });
      pool = { agent, host: addr.host, port: addr.port, tlsVersion: tls?.version };
      pools.set(to, pool);
    }
    return pool;
  };

  type Route = Pick<EndpointSpec, 'method'> & { readonly path: string };

  async function exchange(to: NodeId, spec: Route, body: string, ifServed = false): Promise<string | null> {
    // At most two attempts: the second only when the peer restarted (new epoch) and asked for it.
    for (let attempt = 1; ; attempt++) {
      const signed = options.signer.signRequest({ to, method: spec.method, path: spec.path, body });
      const raw = await call(to, spec, body, signed.headers);
      // A route the peer does not have (it predates it) is an unsigned 404 from its web server. Not
      // authenticated, so it may only ever make the caller fall back to an older route.
      if (ifServed && raw.status === 404 && raw.headers[AUTH_HEADER] === undefined) return null;
      const verdict = options.signer.verifyReply({
        request: signed,
        status: raw.status,
        headers: raw.headers,
        body: raw.body,
      });
      if (verdict.resend && attempt === 1) continue;
      if (raw.status >= 400) throw remoteError(to, raw);
      return raw.body;
    }
  }

  /** Replaces the connection to `to` with a fresh one (at its next call) and ends the old one's socket. */
  function retire(to: NodeId, pool: Channel): void {
    if (pools.get(to) === pool) pools.delete(to);
    pool.agent.destroy();
  }

  /** One request on `pool`; resolves with the response (its body not read yet). */
  function send(
    pool: Channel,
    spec: Route,
    body: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = pool.tlsVersion === undefined ? httpRequest : httpsRequest;
      const { agent, host, port } = pool;
      const req = request({ agent, host, port, method: spec.method, path: spec.path, headers, signal }, resolve);
      req.once('error', reject);
      req.end(spec.method === 'POST' ? body : undefined);
    });
  }

  async function call(to: NodeId, spec: Route, body: string, auth: Record<string, string>): Promise<RawReply> {
    // A timer cleared on completion (AbortSignal.timeout would fire after every successful call too,
    // which costs a busy witness measurable CPU).
    const abort = new AbortController();
    const pool = poolFor(to);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new DOMException('request timed out', 'TimeoutError'));
      // The whole call, connection, request and reply, has timeoutMs. A peer that has not answered in
      // time gets a fresh connection: the old one is destroyed, which ends its connect attempt (a
      // host that drops packets) and the reply it was waiting for, and the calls queued behind it
      // go out on the new one with what is left of their own time.
      retire(to, pool);
    }, options.timeoutMs);
    try {
      const headers = { ...auth, ...extraHeaders, ...(spec.method === 'POST' ? { 'content-type': 'application/json' } : {}) };
      const res = await send(pool, spec, body, headers, abort.signal);
      // Capped: the whole body is read before its MAC can be checked, and anyone at the peer's
      // address decides its size (a 1 GB reply once made the witness hold 742 MB).
      const text = await readReplyBody(res, res.headers, `${to} ${spec.method} ${spec.path}`);
      return { status: res.statusCode ?? 0, headers: res.headers, body: text };
    } catch (e) {
      if (isPgvipError(e)) {
        // A connection abandoned in the middle of a reply: start the next call on a fresh one.
        retire(to, pool);
        throw e;
      }
      const err = e as Error & { code?: string };
      throw new PgvipError(timedOut ? 'PGVIP_PEER_TIMEOUT' : 'PGVIP_PEER_UNREACHABLE', `${to} ${spec.method} ${spec.path}: ${err.code ?? err.name}: ${err.message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /** When each peer that predates GET /v2/status is asked for it again (monotonic ms). */
  const v1StatusUntil = new Map<NodeId, number>();

  return {
    async send(to, msg) {
      const spec = endpoints[msg.kind];
      const text = await exchange(to, spec, serializeMessage(msg));
      return decodeMessageBody(spec.reply, text!) as PeerReply;
    },
    async status(to) {
      if ((v1StatusUntil.get(to) ?? -Infinity) <= performance.now()) {
        const text = await exchange(to, endpoints['status-v2'], '', true);
        if (text !== null) {
          v1StatusUntil.delete(to);
          return decodeMessageBody(endpoints['status-v2'].reply, text) as AgentStatus;
        }
        v1StatusUntil.set(to, performance.now() + V1_STATUS_RECHECK_MS);
      }
      const text = await exchange(to, endpoints.status, '');
      return decodeMessageBody(endpoints.status.reply, text!) as AgentStatus;
    },
    async events(to, cursor) {
      return decodeAgentEventsReply((await exchange(to, { method: 'GET', path: agentEventsRequestPath(cursor) }, ''))!);
    },
    async close() {
      for (const p of pools.values()) p.agent.destroy();
      pools.clear();
    },
  };
}

/** A coded error reply from a peer: `{ error: { code, message } }`. */
function remoteError(to: NodeId, raw: RawReply): PgvipError {
  let detail = `HTTP ${raw.status}`;
  try {
    const parsed = JSON.parse(raw.body) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code) detail = `${parsed.error.code}: ${parsed.error.message ?? ''}`;
  } catch {
    // not JSON: keep the status line
  }
  return new PgvipError('PGVIP_PEER_REFUSED', `${to} refused the request: ${detail}`);
}

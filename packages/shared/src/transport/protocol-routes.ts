// The server side of the peer protocol for fastify: routes come from the endpoint table, the MAC is
// checked over the raw body bytes before any parsing, the message must speak for its signer, and every
// reply — refusals included — is signed so the client can trust it. Errors are coded 4xx replies.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthenticatedRejection, checkEnvelopeIdentity, type Verifier, type VerifiedRequest } from '../auth/verifier.js';
import type { AgentStatus, PeerReply, PeerRequest } from '../core/messages.js';
import { PgvipError, isPgvipError } from '../errors.js';
import { decodeMessageBody, serializeMessage } from '../wire/codec.js';
import { endpoints, type Daemon, type EndpointName } from '../wire/endpoints.js';
import { agentStatusV1Of } from '../wire/messages.js';
import { leaseValidHeader } from './peer-client.js';
import { refusalLog } from './server-limits.js';

export interface ProtocolHandlers {
  readonly daemon: Daemon;
  readonly verifier: Verifier;
  /** Handle one verified, parsed request and return its reply. */
  handle(msg: PeerRequest, from: VerifiedRequest, meta: RequestMeta): Promise<PeerReply> | PeerReply;
  /**
   * For agents: the status served on GET /v2/status (for the cluster named by the signer), and
   * without the fields added since v1 on GET /v1/status.
   */
  status?(cluster: string): AgentStatus;
}

/** What a request says besides its message: the sender's lease validity (leaseValidHeader), when sent. */
export interface RequestMeta {
  readonly peerLeaseValidMs: number | undefined;
}

function requestMeta(headers: FastifyRequest['headers']): RequestMeta {
  const raw = headers[leaseValidHeader];
  if (raw === undefined) return { peerLeaseValidMs: undefined };
  const value = Array.isArray(raw) || raw.trim() === '' ? Number.NaN : Number(raw);
  if (!(Number.isFinite(value) && value > 0)) {
    throw new PgvipError('PGVIP_BAD_REQUEST', `header ${leaseValidHeader} must be a positive number of milliseconds, got ${JSON.stringify(raw)}`);
  }
  return { peerLeaseValidMs: value };
}

export function errorBody(e: PgvipError): string {
  return JSON.stringify({ error: { code: e.code, message: e.message } });
}

export function registerProtocolRoutes(app: FastifyInstance, h: ProtocolHandlers): void {
  // Keep the exact bytes: the MAC covers them, and JSON re-serialisation would not reproduce them.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  for (const [name, spec] of Object.entries(endpoints) as [EndpointName, (typeof endpoints)[EndpointName]][]) {
    if (!(spec.servedBy as readonly Daemon[]).includes(h.daemon)) continue;
    app.route({
      method: spec.method,
      url: spec.path,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const raw = typeof req.body === 'string' ? req.body : '';
        let verified: VerifiedRequest | null = null;
        try {
          verified = h.verifier.verifyRequest({ method: req.method, path: req.url, headers: req.headers, body: raw });
          let out: string;
          if (name === 'status' || name === 'status-v2') {
            if (h.status === undefined) throw new PgvipError('PGVIP_NOT_FOUND', 'this daemon serves no status');
            const status = h.status(verified.cluster);
            // v1 peers parse strictly: they get exactly the fields they know.
            out = serializeMessage(name === 'status' ? agentStatusV1Of(status) : status);
          } else {
            const msg = decodeMessageBody(spec.request!, raw) as PeerRequest;
            checkEnvelopeIdentity(msg, verified);
            out = serializeMessage(await h.handle(msg, verified, requestMeta(req.headers)));
          }
          return send(reply, 200, out, verified);
        } catch (e) {
          return refuseSigned(app, h.verifier, req, reply, e, verified);
        }
      },
    });
  }

  function send(reply: FastifyReply, status: number, body: string, signFor: VerifiedRequest | null) {
    return sendSigned(h.verifier, reply, status, body, signFor);
  }
}

/** A protocol reply, signed for the request it answers when that request was verified. */
export function sendSigned(
  verifier: Verifier, reply: FastifyReply, status: number, body: string, signFor: VerifiedRequest | null,
): FastifyReply {
  if (signFor !== null) reply.headers(verifier.signReply(signFor, { status, body }));
  return reply.code(status).type('application/json').send(body);
}

/**
 * The coded, signed refusal of a protocol request that failed with `e` (every v1 and v2 route):
 * signed whenever the request was authenticated, so the client can trust even a refusal.
 */
export function refuseSigned(
  app: FastifyInstance, verifier: Verifier, req: FastifyRequest, reply: FastifyReply, e: unknown,
  verified: VerifiedRequest | null,
): FastifyReply {
  const known = e instanceof AuthenticatedRejection ? e.request : verified;
  const err = isPgvipError(e) ? e : new PgvipError('PGVIP_INTERNAL', (e as Error).message, { cause: e });
  if (err.code === 'PGVIP_INTERNAL') req.log.error({ err: e }, 'protocol handler failed');
  // A node with the wrong key, or someone probing; rate-limited, since the sender sets the pace. A
  // stale epoch is routine (first contact, or after a restart) and not worth a line.
  else if (err.category === 'auth' && err.code !== 'PGVIP_AUTH_STALE_EPOCH') {
    refusalLog(app).warn(err.code, { remoteAddress: req.ip, url: req.url }, `protocol request refused: ${err.message}`);
  }
  return sendSigned(verifier, reply, err.httpStatus ?? 500, errorBody(err), known);
}

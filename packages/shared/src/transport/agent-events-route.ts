// The agent's side of protocol v2 (wire/agent-events.ts): GET /v2/events, authenticated exactly as
// the v1 routes are (the MAC covers method, path and query; the reply, refusals included, is
// signed), served beside them. Bad input is a coded 4xx: a malformed cursor PGVIP_BAD_REQUEST (400),
// a bad signature PGVIP_AUTH_* (401/403).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthenticatedRejection, type Verifier, type VerifiedRequest } from '../auth/verifier.js';
import { PgvipError, isPgvipError } from '../errors.js';
import { agentEventsPath, parseAgentEventsCursor, type AgentEventsCursor, type AgentEventsReply } from '../wire/agent-events.js';
import { errorBody } from './protocol-routes.js';
import { refusalLog } from './server-limits.js';

export interface AgentEventsRoute {
  readonly verifier: Verifier;
  /** The events after `cursor` (all it holds for null or another log), for the cluster named by the signer. */
  events(cluster: string, cursor: AgentEventsCursor | null): AgentEventsReply;
}

export function registerAgentEventsRoute(app: FastifyInstance, h: AgentEventsRoute): void {
  app.route({
    method: 'GET',
    url: agentEventsPath,
    handler: (req: FastifyRequest, reply: FastifyReply) => {
      let verified: VerifiedRequest | null = null;
      try {
        verified = h.verifier.verifyRequest({ method: req.method, path: req.url, headers: req.headers, body: '' });
        const cursor = parseAgentEventsCursor(req.url);
        return send(reply, 200, JSON.stringify(h.events(verified.cluster, cursor)), verified);
      } catch (e) {
        const known = e instanceof AuthenticatedRejection ? e.request : verified;
        const err = isPgvipError(e) ? e : new PgvipError('PGVIP_INTERNAL', (e as Error).message, { cause: e });
        if (err.code === 'PGVIP_INTERNAL') req.log.error({ err: e }, 'events handler failed');
        else if (err.category === 'auth' && err.code !== 'PGVIP_AUTH_STALE_EPOCH') {
          refusalLog(app).warn(err.code, { remoteAddress: req.ip, url: req.url }, `protocol request refused: ${err.message}`);
        }
        return send(reply, err.httpStatus ?? 500, errorBody(err), known);
      }
    },
  });

  function send(reply: FastifyReply, status: number, body: string, signFor: VerifiedRequest | null) {
    if (signFor !== null) reply.headers(h.verifier.signReply(signFor, { status, body }));
    return reply.code(status).type('application/json').send(body);
  }
}

// The agent's side of protocol v2 (wire/agent-events.ts): GET /v2/events, authenticated exactly as
// the v1 routes are (the MAC covers method, path and query; the reply, refusals included, is
// signed), served beside them. Bad input is a coded 4xx: a malformed cursor PGVIP_BAD_REQUEST (400),
// a bad signature PGVIP_AUTH_* (401/403).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Verifier, VerifiedRequest } from '../auth/verifier.js';
import { agentEventsPath, parseAgentEventsCursor, type AgentEventsCursor, type AgentEventsReply } from '../wire/agent-events.js';
import { refuseSigned, sendSigned } from './protocol-routes.js';

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
        return sendSigned(h.verifier, reply, 200, JSON.stringify(h.events(verified.cluster, cursor)), verified);
      } catch (e) {
        return refuseSigned(app, h.verifier, req, reply, e, verified);
      }
    },
  });
}

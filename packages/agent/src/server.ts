// The agent's HTTP API (fastify). Health endpoints answer with status codes like Patroni's, so load
// balancers and scripts can use them; the protocol endpoints are authenticated (transport/); only
// main.ts listens.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { agentRole, type AgentStatus, type PeerReply, type PeerRequest } from '@pgvip/shared/core';
import {
  PgvipError,
  applyServerLimits,
  encodeMessage,
  errorBody,
  registerAgentEventsRoute,
  registerProtocolRoutes,
  serverLimitOptions,
  type TlsMaterial,
  type Verifier,
} from '@pgvip/shared';
import { registerLbHealthRoutes } from './lb-health.js';
import type { AgentRunner } from './runner.js';
import type { AgentEventLog } from './event-log.js';
import type { AgentMetrics } from './metrics.js';

export interface ServerDeps {
  readonly runner: Pick<AgentRunner, 'state' | 'status' | 'handleRequest' | 'lastTickAtMs'>;
  readonly verifier: Verifier;
  readonly metrics: AgentMetrics;
  readonly logger?: Logger;
  readonly clock: () => number;
  /**
   * Serve HTTPS with this certificate; `mutual`: require a client certificate issued by its CA;
   * `plaintextToo`: serve plain HTTP on the same port as well (tls.transition).
   */
  readonly tls?: { readonly material: TlsMaterial; readonly mutual: boolean; readonly plaintextToo?: boolean };
  /** The agent's own events, served to the witness on GET /v2/events (protocol v2); absent: not served. */
  readonly events?: AgentEventLog;
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const app: FastifyInstance = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only bridges fastify's generic parameter.
    ...(deps.logger === undefined ? {} : { loggerInstance: deps.logger as unknown as FastifyBaseLogger }),
    // No log line per request (load balancers poll /health several times a second); the
    // top-level disableRequestLogging option is deprecated in fastify 5.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // Timeouts, body size and a connection cap (transport/server-limits.ts): slow clients must not
    // take the file descriptors /health, PostgreSQL and the peers need.
    ...serverLimitOptions(deps.tls === undefined ? {} : { tls: deps.tls }),
  });
  applyServerLimits(app, { plaintextToo: deps.tls?.plaintextToo === true });

  app.get('/health', async () => {
    const s = { ...deps.runner.state, nowMs: deps.clock() };
    const role = agentRole(s);
    return { status: 'ok', node: s.settings.self, cluster: s.settings.cluster, role, term: s.durable.term };
  });

  // /primary, /replica?lag=, /sync, /async, /read-only, /liveness, /readiness and their aliases, as
  // Patroni names them (lb-health.ts, docs/api.md).
  registerLbHealthRoutes(app, {
    state: () => deps.runner.state, lastTickAtMs: () => deps.runner.lastTickAtMs, clock: deps.clock,
  });

  app.get('/status', async () => encodeMessage(deps.runner.status()));

  app.get('/metrics', async (_req, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  registerProtocolRoutes(app, {
    daemon: 'agent',
    verifier: deps.verifier,
    handle: (msg: PeerRequest, _from, meta): PeerReply => deps.runner.handleRequest(msg, meta.peerLeaseValidMs),
    status: (): AgentStatus => deps.runner.status(),
  });
  const events = deps.events;
  if (events !== undefined) {
    registerAgentEventsRoute(app, {
      verifier: deps.verifier,
      events: (cluster, cursor) => {
        const s = deps.runner.state;
        return events.reply({ cluster, term: s.durable.term, from: s.settings.self }, cursor);
      },
    });
  }

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type('application/json').send(errorBody(new PgvipError('PGVIP_NOT_FOUND', `${req.method} ${req.url}`)));
  });
  return app;
}

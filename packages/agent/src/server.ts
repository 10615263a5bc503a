// The agent's HTTP API (fastify). Health endpoints answer with status codes like Patroni's, so load
// balancers and scripts can use them; the protocol endpoints are authenticated (transport/); only
// main.ts listens.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { agentRole, leaseRemainingMs, type AgentStatus, type PeerReply, type PeerRequest } from '@pgvip/shared/core';
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
import type { AgentRunner } from './runner.js';
import type { AgentEventLog } from './event-log.js';
import type { AgentMetrics } from './metrics.js';

export interface ServerDeps {
  readonly runner: Pick<AgentRunner, 'state' | 'status' | 'handleRequest'>;
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

  const snapshot = () => {
    const s = { ...deps.runner.state, nowMs: deps.clock() };
    return { s, role: agentRole(s), leaseMs: leaseRemainingMs(s) };
  };

  app.get('/health', async () => {
    const { s, role } = snapshot();
    return { status: 'ok', node: s.settings.self, cluster: s.settings.cluster, role, term: s.durable.term };
  });

  // 200 only while this node is the writable primary holding a valid lease.
  app.get('/primary', async (_req, reply) => {
    const { s, role, leaseMs } = snapshot();
    const ok = role === 'primary' && leaseMs > 0 && s.pg?.writable === true;
    return reply.code(ok ? 200 : 503).send({ role, term: s.durable.term, leaseRemainingMs: Math.round(leaseMs) });
  });

  // 200 while streaming as a standby; ?lag=BYTES also requires the lag to be within BYTES.
  app.get<{ Querystring: { lag?: string } }>('/replica', async (req, reply) => {
    const { s, role } = snapshot();
    let maxLag: bigint | null = null;
    if (req.query.lag !== undefined) {
      if (!/^\d{1,19}$/.test(req.query.lag)) {
        const e = new PgvipError('PGVIP_BAD_REQUEST', `lag must be a number of bytes, got ${JSON.stringify(req.query.lag)}`);
        return reply.code(400).type('application/json').send(errorBody(e));
      }
      maxLag = BigInt(req.query.lag);
    }
    const report = s.primaryReport;
    const lag = report !== null && s.pg !== null ? (report.lsn > s.pg.lsn ? report.lsn - s.pg.lsn : 0n) : null;
    const streaming = s.pg?.inRecovery === true && s.pg.streaming;
    const ok = (role === 'standby' || role === 'candidate') && streaming && (maxLag === null || (lag !== null && lag <= maxLag));
    return reply.code(ok ? 200 : 503).send({ role, streaming, lagBytes: lag === null ? null : Number(lag) });
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

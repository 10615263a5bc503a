// The witness's two HTTP servers, built but not started (only main.ts and tests listen):
//
//  - buildServer: the peer protocol on listen.port. Requests are authenticated by the shared
//    protocol routes, then routed to the runner of the cluster they were signed for.
//  - buildOperatorServer: the operator API on operatorApi.host:port (JSON), with /health and
//    /metrics; the CLI and the dashboard use it. Every request passes operator-guard.ts first: its
//    Host must name this API, a browser's Origin must be the API's own, commands must be JSON, and
//    every route except /health and the dashboard's page needs `Authorization: Bearer <token>`
//    (unless operatorApi.auth is "disabled").
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  PgvipError,
  applyServerLimits,
  isPgvipError,
  refusalLog,
  registerProtocolRoutes,
  serverLimitOptions,
  type OperatorCommand,
  type TlsMaterial,
  type Verifier,
} from '@pgvip/shared';
import { cleanText } from '@pgvip/shared/text';

/**
 * A listener's TLS: serve HTTPS with `material`; `mutual`: require a client certificate from its CA;
 * `plaintextToo`: serve plain HTTP on the same port as well (the peer listener under tls.transition).
 */
export interface ServerTls {
  readonly material: TlsMaterial;
  readonly mutual: boolean;
  readonly plaintextToo?: boolean;
}
import { handBackNodesProblem, noFailoverRefusal, type ClusterService } from './cluster-service.js';
import type { History } from './history.js';
import type { WitnessMetrics } from './metrics.js';
import type { Clock } from './clock.js';
import { operatorGuard } from './operator-guard.js';
import { describeStoppedInstance, parseStoppedInstance } from './stopped-instance.js';

export interface ProtocolServerDeps {
  readonly verifier: Verifier;
  readonly runners: ReadonlyMap<string, ClusterService>;
  readonly log: Logger;
  readonly tls?: ServerTls;
}

export function buildServer(deps: ProtocolServerDeps): FastifyInstance {
  // Requests are logged by the runners' decisions, not one line per lease renewal.
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: quietRequests(),
    return503OnClosing: true,
    ...serverLimitOptions(deps.tls === undefined ? {} : { tls: deps.tls }),
  });
  // Timeouts, body size and a connection cap, as on every pgvip server (transport/server-limits.ts).
  applyServerLimits(app, { plaintextToo: deps.tls?.plaintextToo === true });
  registerProtocolRoutes(app, {
    daemon: 'witness',
    verifier: deps.verifier,
    handle(msg, verified, meta) {
      const runner = deps.runners.get(verified.cluster);
      // The verifier only accepts clusters it has keys for, and it is built from the same config.
      if (runner === undefined) throw new PgvipError('PGVIP_AUTH_WRONG_CLUSTER', `this witness does not serve cluster ${verified.cluster}`);
      return runner.request(msg, meta.peerLeaseValidMs);
    },
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new PgvipError('PGVIP_NOT_FOUND', `${req.method} ${req.url}`)));
  return app;
}

export interface OperatorServerDeps {
  readonly runners: ReadonlyMap<string, ClusterService>;
  readonly history: History;
  readonly metrics: WitnessMetrics;
  /** The bearer token operators must present, or null when operatorApi.auth is "disabled" (loopback only). */
  readonly token: string | null;
  /** Names and addresses a request may give as its Host (allowedOperatorHosts). */
  readonly allowedHosts: ReadonlySet<string>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Routes of other modules on the same server (the dashboard). */
  readonly extend?: (app: FastifyInstance) => void;
  readonly tls?: ServerTls;
}

const HISTORY_LIMIT_DEFAULT = 50;
const HISTORY_LIMIT_MAX = 1000;
/** A scheduled switchover may name a time slightly in the past (clock skew, typing time); older means a mistake. */
const SWITCHOVER_PAST_TOLERANCE_MS = 60_000;
const SWITCHOVER_MAX_AHEAD_MS = 7 * 24 * 3600_000;
/**
 * `pgvip restart`: how long failure handling is held for a planned restart at most (the node's
 * PostgreSQL must be back by then, or the restart is handled as a failure).
 */
export const RESTART_TIMEOUT_DEFAULT_MS = 60_000;
const RESTART_TIMEOUT_MIN_MS = 1_000;
const RESTART_TIMEOUT_MAX_MS = 600_000;

export function buildOperatorServer(deps: OperatorServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: quietRequests(),
    return503OnClosing: true,
    ...serverLimitOptions({ bodyLimitBytes: 16 * 1024, ...(deps.tls === undefined ? {} : { tls: deps.tls }) }),
  });
  applyServerLimits(app);
  const guard = operatorGuard({ token: deps.token, allowedHosts: deps.allowedHosts });

  // onRequest: before the body is read or parsed, so a refused request costs nothing more.
  app.addHook('onRequest', async (req, reply) => {
    const refusal = guard(req);
    if (refusal === null) return;
    const { error, tokenPresent } = refusal;
    // Rate-limited per code: whoever sends refused requests must not decide how much the witness logs.
    refusalLog(app).warn(error.code, { ip: req.ip, method: req.method, url: req.url, host: req.headers.host, origin: req.headers.origin, tokenPresent, code: error.code }, `operator API request refused: ${error.detail}`);
    return sendError(reply, error);
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    if (isPgvipError(err)) {
      if ((err.httpStatus ?? 500) >= 500) req.log.error({ err }, 'operator request failed');
      return sendError(reply, err);
    }
    // Fastify's own refusals (bad JSON, wrong content type, body too large) are the client's fault.
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return sendError(reply, new PgvipError('PGVIP_OPERATOR_BAD_REQUEST', (err as Error).message));
    req.log.error({ err }, 'operator request failed');
    return sendError(reply, new PgvipError('PGVIP_INTERNAL', (err as Error).message ?? String(err)));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new PgvipError('PGVIP_NOT_FOUND', `${req.method} ${req.url}`)));

  const runnerOf = (name: string): ClusterService => {
    const r = deps.runners.get(name);
    if (r === undefined) throw new PgvipError('PGVIP_UNKNOWN_CLUSTER', `${name} (this witness serves ${[...deps.runners.keys()].join(', ')})`);
    return r;
  };

  app.get('/health', async () => ({ ok: true, clusters: deps.runners.size }));
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  app.get('/api/v1/clusters', async () => ({ clusters: [...deps.runners.values()].map((r) => r.view()) }));
  app.get<{ Params: { name: string } }>('/api/v1/clusters/:name', async (req) => runnerOf(req.params.name).view());
  app.get<{ Params: { name: string }; Querystring: Record<string, string | string[] | undefined> }>('/api/v1/clusters/:name/history', async (req) => {
    const runner = runnerOf(req.params.name);
    const q = req.query;
    onlyKeys(q, ['limit', 'before'], 'query');
    const limit = q.limit === undefined ? HISTORY_LIMIT_DEFAULT : wholeNumber(q.limit, 'limit', 1, HISTORY_LIMIT_MAX);
    const before = q.before === undefined ? undefined : wholeNumber(q.before, 'before', 1, Number.MAX_SAFE_INTEGER);
    const events = await deps.history.read({
      cluster: runner.name,
      limit,
      ...(before === undefined ? {} : { before }),
    });
    return { events };
  });

  type Post = FastifyRequest<{ Params: { name: string }; Body: unknown }>;

  app.post('/api/v1/clusters/:name/switchover', async (req: Post, reply) => {
    const runner = runnerOf(req.params.name);
    const body = objectBody(req.body, ['to', 'at']);
    const to = promotableField(body.to, runner);
    let delayMs = 0;
    if (body.at !== undefined) {
      const atMs = isoTime(body.at);
      const wallNow = deps.clock.wallMs();
      if (atMs < wallNow - SWITCHOVER_PAST_TOLERANCE_MS) throw badRequest(`at: ${String(body.at)} is in the past`);
      if (atMs > wallNow + SWITCHOVER_MAX_AHEAD_MS) throw badRequest(`at: ${String(body.at)} is more than 7 days ahead`);
      // Converted once, here: from now on the core counts the delay on the monotonic clock, so a
      // wall-clock jump on the witness cannot move the switchover.
      delayMs = Math.max(0, atMs - wallNow);
    }
    const by = claimedOperator(req);
    const what = `switchover${to === null ? '' : ` to ${to}`}${body.at === undefined ? '' : ` at ${String(body.at)}`}`;
    return command(reply, runner, { kind: 'switchover', to, delayMs, by: by.label }, by, what);
  });

  app.post('/api/v1/clusters/:name/failover', async (req: Post, reply) => {
    const runner = runnerOf(req.params.name);
    const body = objectBody(req.body, ['to', 'acceptDataLoss', 'stoppedInstance', 'check']);
    const to = promotableField(body.to, runner);
    if (body.acceptDataLoss !== true) throw badRequest('acceptDataLoss: must be true: a forced failover skips the vote and may lose acknowledged writes');
    if (body.check !== undefined && body.check !== true) throw badRequest(`check: must be true or absent (got ${JSON.stringify(body.check)})`);
    // The CLI stopped the old primary's instance first (--stop-old-primary): recorded with the failover.
    const stopped = parseStoppedInstance(body.stoppedInstance, runner.nodes);
    const stopWords = stopped === undefined ? '' : `; ${describeStoppedInstance(stopped)}`;
    const by = claimedOperator(req);
    if (body.check === true) {
      // `--stop-old-primary` asks this before it stops the instance: a refusal must come while the old
      // primary still runs (docs/runbook.md, "Manual failover"). Nothing changes, nothing is recorded.
      if (stopped !== undefined) throw badRequest('check: a check comes before the stop, so it carries no stoppedInstance');
      const verdict = await runner.checkFailover(to, by.label);
      deps.log.child({ cluster: runner.name, term: runner.term }).info(
        { by: by.operator, operatorClaimed: true, command: 'forced failover check', ok: verdict.ok },
        `operator forced failover check: ${verdict.ok ? 'would be accepted' : 'would be refused'}: ${verdict.message}`,
      );
      return verdict.ok ? { ok: true, message: verdict.message } : refuseCommand(reply, verdict.message);
    }
    const what = `forced failover${to === null ? '' : ` to ${to}`} (data loss accepted${stopWords})`;
    return command(reply, runner, { kind: 'failover', to, acceptDataLoss: true, by: by.label }, by, what);
  });

  app.post('/api/v1/clusters/:name/maintenance', async (req: Post, reply) => {
    const runner = runnerOf(req.params.name);
    const body = objectBody(req.body, ['on']);
    if (typeof body.on !== 'boolean') throw badRequest(`on: must be true or false (got ${JSON.stringify(body.on)})`);
    const by = claimedOperator(req);
    return command(reply, runner, { kind: 'maintenance', on: body.on, by: by.label }, by, `maintenance ${body.on ? 'on' : 'off'}`);
  });

  app.post('/api/v1/clusters/:name/restart', async (req: Post, reply) => {
    const runner = runnerOf(req.params.name);
    const body = objectBody(req.body, ['node', 'timeoutMs']);
    const node = typeof body.node === 'string' && runner.nodes.includes(body.node) ? body.node : null;
    if (node === null) {
      throw badRequest(`node: ${JSON.stringify(body.node)} is not a node of ${runner.name} (nodes: ${runner.nodes.join(', ')})`);
    }
    const timeoutMs = body.timeoutMs === undefined
      ? RESTART_TIMEOUT_DEFAULT_MS
      : wholeNumber(String(body.timeoutMs), 'timeoutMs', RESTART_TIMEOUT_MIN_MS, RESTART_TIMEOUT_MAX_MS);
    const by = claimedOperator(req);
    return command(reply, runner, { kind: 'restart', node, timeoutMs, by: by.label }, by, `restart of ${node}`);
  });

  // Moving the cluster's quorum (docs/etcd.md, "Moving a cluster between the witness and etcd"):
  // `to: etcd` seeds etcd with the witness's term, `to: witness` hands etcd's term to the witness.
  app.post('/api/v1/clusters/:name/quorum-move', async (req: Post, reply) => {
    const runner = runnerOf(req.params.name);
    const body = objectBody(req.body, ['to']);
    if (body.to !== 'etcd' && body.to !== 'witness') throw badRequest(`to: must be "etcd" or "witness" (got ${JSON.stringify(body.to)})`);
    const tooMany = body.to === 'witness' ? handBackNodesProblem(runner.name, runner.nodes.length) : null;
    if (tooMany !== null) throw new PgvipError('PGVIP_QUORUM_MOVE_NODES', tooMany);
    const by = claimedOperator(req);
    const what = body.to === 'etcd' ? 'etcd seed' : 'etcd hand-back';
    const verdict = await runner.moveQuorum(body.to, by.label);
    runner.record('operator-command', null, `${by.label}: ${what}: ${verdict.ok ? 'accepted' : 'refused'}: ${verdict.message}`, { operator: by.operator, operatorClaimed: true });
    const fields = { by: by.operator, operatorClaimed: true, command: what, ok: verdict.ok };
    deps.log.child({ cluster: runner.name, term: runner.term }).info(fields, `operator ${what}: ${verdict.message}`);
    return verdict.ok ? { ok: true, message: verdict.message } : refuseCommand(reply, verdict.message);
  });

  async function command(
    reply: FastifyReply,
    runner: ClusterService,
    cmd: OperatorCommand,
    by: ClaimedOperator,
    what: string,
  ) {
    const result = await runner.operator(cmd);
    // The node the command is about: as named, or as the core chose it (by default the other node).
    let node: string | null = null;
    if (cmd.kind === 'restart') {
      node = cmd.node;
    } else if (cmd.kind !== 'maintenance') {
      const chosen = cmd.kind === 'failover' ? runner.primaryOfTerm : runner.pendingSwitchoverTo;
      node = cmd.to ?? (result.verdict.ok ? chosen : null);
    }
    const log = deps.log.child({ cluster: runner.name, term: runner.term });
    // Wait for the primary's or the promoted node's answer (bounded by the peer timeout), so the
    // operator learns at once whether the node took the command, not only that the witness did.
    const outcomes = await result.sends;
    // A restart is asked of the node once: it is done only if the node took it.
    const refusedByNode = cmd.kind === 'restart' && outcomes.some((o) => !o.ok);
    const hint = refusedByNode && outcomes.some((o) => / did not answer: /.test(o.detail))
      ? ['an agent of a release before protocol v2 cannot restart its PostgreSQL: upgrade it first']
      : [];
    const message = [result.verdict.message, ...outcomes.map((o) => o.detail), ...hint].join('; ');
    runner.record('operator-command', node, `${by.label}: ${what}: ${result.verdict.ok ? 'accepted' : 'refused'}: ${message}`, { operator: by.operator, operatorClaimed: true });
    log.info({ by: by.operator, operatorClaimed: true, command: cmd.kind, ok: result.verdict.ok }, `operator ${what}: ${message}`);
    return !result.verdict.ok || refusedByNode ? refuseCommand(reply, message) : { ok: true, message };
  }

  deps.extend?.(app);
  return app;
}

/** No log line per request: the witness logs its decisions, and per-request lines would drown them. */
function quietRequests(): LogController {
  return new LogController({ disableRequestLogging: true });
}

function sendError(reply: FastifyReply, e: PgvipError) {
  return reply.code(e.httpStatus ?? 500).type('application/json').send({ error: { code: e.code, message: e.message } });
}

/** Refusals quote what the client sent; up to 16 KiB of it would come back, control characters and all. */
const BAD_REQUEST_DETAIL_MAX_CHARS = 500;

function badRequest(detail: string): PgvipError {
  return new PgvipError('PGVIP_OPERATOR_BAD_REQUEST', cleanText(detail, { maxChars: BAD_REQUEST_DETAIL_MAX_CHARS }));
}

/** A command the cluster refuses: 409 with the sentence at the top level and the code. */
function refuseCommand(reply: FastifyReply, message: string) {
  const refused = new PgvipError('PGVIP_OPERATOR_REFUSED', message);
  const error = { code: refused.code, message: refused.message };
  return reply.code(refused.httpStatus ?? 409).send({ ok: false, message, error });
}

/** A JSON object with only the known fields: a misspelt field would otherwise be silently ignored. */
function objectBody(body: unknown, known: readonly string[]): Record<string, unknown> {
  const obj = body === undefined || body === null ? {} : body;
  if (typeof obj !== 'object' || Array.isArray(obj)) throw badRequest('the body must be a JSON object');
  onlyKeys(obj as Record<string, unknown>, known, 'body');
  return obj as Record<string, unknown>;
}

function onlyKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  const unknown = Object.keys(obj).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw badRequest(`${where}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (expected ${known.join(', ') || 'none'})`);
}

function nodeField(value: unknown, runner: ClusterService): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !runner.nodes.includes(value)) {
    throw badRequest(`to: ${JSON.stringify(value)} is not a node of ${runner.name} (nodes: ${runner.nodes.join(', ')})`);
  }
  return value;
}

/** A node a switchover or failover may promote: of the cluster (else 400), without noFailover (else 409). */
function promotableField(value: unknown, runner: ClusterService): string | null {
  const to = nodeField(value, runner);
  if (to !== null && runner.noFailover?.has(to) === true) throw new PgvipError('PGVIP_OPERATOR_NO_FAILOVER', noFailoverRefusal(to));
  return to;
}

// An explicit offset is required: a bare local time would be read in the witness's time zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function isoTime(value: unknown): number {
  const ms = typeof value === 'string' && ISO_TIME.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw badRequest(`at: ${JSON.stringify(value)} is not an ISO-8601 time with an offset, e.g. 2030-01-31T14:00:00Z`);
  return ms;
}

function wholeNumber(raw: string | string[], name: string, min: number, max: number): number {
  const text = Array.isArray(raw) ? '' : raw;
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw badRequest(`${name}: must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

interface ClaimedOperator {
  /** `name@address`, for the event's operator field. */
  readonly operator: string;
  /** The same, marked as claimed, for sentences (history details, the core's events). */
  readonly label: string;
}

/**
 * Who asked, for the history: the optional x-pgvip-operator header (the CLI sends the OS user name)
 * and the client address. The name is the client's claim, not proven: every operator presents the
 * same token. So it is recorded as claimed, never as an authenticated identity.
 */
function claimedOperator(req: FastifyRequest): ClaimedOperator {
  const raw = req.headers['x-pgvip-operator'];
  const name = typeof raw === 'string' ? raw.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 100) : '';
  const operator = `${name || 'unnamed'}@${req.ip}`;
  return { operator, label: `${operator} (claimed)` };
}

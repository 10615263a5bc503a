// A stand-in for the witness's operator API (server.ts; the contract in docs/cli.md), with canned
// clusters, for the CLI and dashboard tests. It answers in the same shapes — the views are the
// server's own types, errors are PgvipErrors sent as server.ts sends them — and keeps just enough
// state for commands to have visible effects (a switchover changes the primary, maintenance shows
// in the next GET). It records every request.
import { PgvipError, type ErrorCode } from '@pgvip/shared';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PgvipEvent } from '../src/events.js';
import type { ClusterView, NodeView } from '../src/view.js';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly operator: string | undefined;
  readonly body: unknown;
}

export interface FakeApiOptions {
  /** When set, every /api/ request must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly clusters?: ClusterView[];
}

export interface FakeOperatorApi {
  readonly app: FastifyInstance;
  /** Mutable: tests change it between polls. */
  readonly clusters: ClusterView[];
  readonly history: Map<string, PgvipEvent[]>;
  readonly requests: RecordedRequest[];
  /** Answers every /api/ request with this instead, while set (status, body; or 'hang'). */
  override: { status: number; body: unknown } | 'hang' | undefined;
  /** A forced failover the cluster refuses, with this sentence: its check (`check: true`) too, unless `checkPasses`. */
  refuseFailover: { message: string; checkPasses?: boolean } | undefined;
  /** A witness older than the failover's `check` field: its strict body schema refuses the field. */
  failoverWithoutCheck: boolean;
}

const at = (minutesAgo: number) => new Date(Date.UTC(2025, 5, 1, 12, 0, 0) - minutesAgo * 60_000).toISOString();

export function node(overrides: Partial<NodeView> & { node: string }): NodeView {
  return {
    reachable: true,
    pgReachable: true,
    role: 'standby',
    term: 7,
    leaseRemainingMs: null,
    lagBytes: 0,
    timeline: 3,
    streaming: true,
    promotionBlocker: null,
    lastSeenMsAgo: 210,
    hosts: [],
    instanceId: null,
    restarting: false,
    pendingRestart: false,
    ...overrides,
  };
}

export function mainCluster(): ClusterView {
  return {
    cluster: 'main',
    term: 7,
    primary: 'db-a',
    syncEligible: 'db-b',
    maintenance: false,
    promiseRemainingMs: 2_950,
    vip: { address: '198.18.1.100', mode: 'secondary-ip' },
    switchover: null,
    restart: null,
    nodes: [
      // The addresses of the EC2 emulator's fixture (test/ec2-emulator/fixtures.ts, dbA and dbB).
      node({ node: 'db-a', role: 'primary', leaseRemainingMs: 2_400, lagBytes: null, streaming: null, hosts: ['198.18.1.10'] }),
      node({ node: 'db-b', lagBytes: 1_572_864, hosts: ['198.18.1.11'] }),
    ],
    events: [
      { id: 12, at: at(2), cluster: 'main', type: 'vip-moved', node: 'db-a', term: 7, detail: 'VIP 198.18.1.100 moved to db-a and verified' },
      { id: 11, at: at(3), cluster: 'main', type: 'switchover', node: 'db-a', term: 7, detail: 'switchover to db-a completed in 640 ms' },
    ],
  };
}

/** main with four nodes on etcd: db-a primary, db-b and db-c standbys (db-c priority 5), db-r noFailover. */
export function fourNodes(over: Partial<ClusterView> = {}): ClusterView {
  const base = mainCluster();
  return {
    ...base,
    syncEligible: null,
    promiseRemainingMs: 0,
    nodes: [
      node({ node: 'db-a', role: 'primary', leaseRemainingMs: 2_400, lagBytes: null, streaming: null, lsn: '0/3000200', priority: 0, noFailover: false, syncMember: null, withdrawn: false }),
      node({ node: 'db-b', lagBytes: 256, lsn: '0/3000100', priority: 0, noFailover: false, syncMember: true, withdrawn: false }),
      node({ node: 'db-c', lagBytes: 256, lsn: '0/3000100', priority: 5, noFailover: false, syncMember: true, withdrawn: false }),
      node({ node: 'db-r', lagBytes: 512, lsn: '0/3000000', priority: 0, noFailover: true, syncMember: false, withdrawn: false, promotionBlocker: 'db-r has noFailover' }),
    ],
    quorum: {
      backend: 'etcd', reachable: true, why: null, lastReadMsAgo: 300,
      leaderKey: { node: 'db-a', term: 7, leaseTtlS: 3 }, members: [], badKeys: [],
      sync: { members: ['db-b', 'db-c'], k: 1, term: 7 },
      positions: [],
    },
    ...over,
  };
}

export function billingCluster(): ClusterView {
  return {
    cluster: 'billing',
    term: 3,
    primary: 'billing-b',
    syncEligible: null,
    maintenance: false,
    promiseRemainingMs: 0,
    vip: { address: '198.19.0.10', mode: 'route-table' },
    switchover: null,
    restart: null,
    nodes: [
      node({ node: 'billing-a', reachable: false, pgReachable: true, role: null, term: 2, lagBytes: null, timeline: null, streaming: null, promotionBlocker: 'agent unreachable from the witness', lastSeenMsAgo: 42_000 }),
      node({ node: 'billing-b', role: 'primary', term: 3, leaseRemainingMs: 2_100, lagBytes: null, streaming: null }),
    ],
    events: [],
  };
}

function historyOf(view: ClusterView): PgvipEvent[] {
  const types = ['witness-started', 'node-unreachable', 'node-recovered', 'fenced', 'failover', 'vip-moved', 'rejoined', 'maintenance', 'switchover', 'vip-moved'];
  return types
    .map((type, i) => ({ id: i + 3, at: at(60 - i), cluster: view.cluster, type, node: type === 'witness-started' ? null : 'db-a', term: 5 + Math.floor(i / 4), detail: `${type} #${i + 3}` }))
    .reverse();
}

/** As server.ts answers a coded error. */
function refuse(reply: FastifyReply, code: ErrorCode, detail: string) {
  const e = new PgvipError(code, detail);
  return reply.code(e.httpStatus ?? 500).send({ error: { code: e.code, message: e.message } });
}

/** As server.ts answers a command the cluster refuses: 409 with the sentence and the code. */
function refuseCommand(reply: FastifyReply, message: string) {
  const e = new PgvipError('PGVIP_OPERATOR_REFUSED', message);
  return reply.code(409).send({ ok: false, message, error: { code: e.code, message: e.message } });
}

function unknownCluster(reply: FastifyReply, name: string) {
  return refuse(reply, 'PGVIP_UNKNOWN_CLUSTER', name);
}

export function buildFakeOperatorApi(options: FakeApiOptions = {}): FakeOperatorApi {
  const app = Fastify({ forceCloseConnections: true });
  const clusters = options.clusters ?? [mainCluster()];
  const api: FakeOperatorApi = {
    app,
    clusters,
    history: new Map(clusters.map((c) => [c.cluster, historyOf(c)])),
    requests: [],
    override: undefined,
    refuseFailover: undefined,
    failoverWithoutCheck: false,
  };
  const find = (name: string) => api.clusters.findIndex((c) => c.cluster === name);
  let nextId = 100;
  const record = (i: number, type: string, nodeName: string | null, detail: string) => {
    const view = api.clusters[i]!;
    const e: PgvipEvent = {
      id: nextId++,
      at: new Date().toISOString(),
      cluster: view.cluster,
      type,
      node: nodeName,
      term: view.term,
      detail,
    };
    api.clusters[i] = { ...view, events: [e, ...view.events] };
    api.history.get(view.cluster)?.unshift(e);
  };

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.url.startsWith('/api/')) return;
    if (api.override === 'hang') return new Promise<never>(() => undefined);
    if (api.override !== undefined) return reply.code(api.override.status).send(api.override.body);
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      return refuse(reply, 'PGVIP_OPERATOR_AUTH', req.headers.authorization === undefined ? 'no bearer token' : 'the bearer token does not match operatorApi.tokenFile');
    }
    return undefined;
  });
  app.addHook('preHandler', async (req) => {
    const operator = req.headers['x-pgvip-operator'];
    api.requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization, operator: typeof operator === 'string' ? operator : undefined, body: req.body });
  });

  app.get('/health', async () => ({ ok: true }));
  app.get('/api/v1/clusters', async () => ({ clusters: api.clusters }));
  app.get<{ Params: { name: string } }>('/api/v1/clusters/:name', async (req, reply) => {
    const i = find(req.params.name);
    return i < 0 ? unknownCluster(reply, req.params.name) : api.clusters[i];
  });
  app.get<{ Params: { name: string }; Querystring: { limit?: string; before?: string } }>('/api/v1/clusters/:name/history', async (req, reply) => {
    const events = api.history.get(req.params.name);
    if (events === undefined) return unknownCluster(reply, req.params.name);
    const limit = Number(req.query.limit ?? 50);
    const before = req.query.before === undefined ? Infinity : Number(req.query.before);
    return { events: events.filter((e) => e.id < before).slice(0, limit) };
  });
  app.post<{ Params: { name: string }; Body: { to?: string; at?: string } }>('/api/v1/clusters/:name/switchover', async (req, reply) => {
    const i = find(req.params.name);
    if (i < 0) return unknownCluster(reply, req.params.name);
    const view = api.clusters[i]!;
    // The refusals of the witness's core (core/witness.ts, onOperator), in its words.
    if (view.primary === null) return refuseCommand(reply, 'no primary known; nothing to switch over from');
    const to = req.body?.to ?? view.nodes.find((n) => n.node !== view.primary)?.node;
    const target = view.nodes.find((n) => n.node === to);
    if (target === undefined) return refuse(reply, 'PGVIP_OPERATOR_BAD_REQUEST', `to: ${JSON.stringify(to)} is not a node of ${view.cluster}`);
    if (to === view.primary) return refuseCommand(reply, `${to} is already the primary`);
    if (target.promotionBlocker !== null) return refuseCommand(reply, `${to} is not ready: ${target.promotionBlocker}`);
    if (req.body?.at !== undefined) return { ok: true, message: `switchover to ${to} scheduled at ${req.body.at}` };
    // The old primary rejoins and streams from the new one.
    api.clusters[i] = {
      ...view,
      term: view.term + 1,
      primary: to!,
      nodes: view.nodes.map((n) => ({ ...n, role: n.node === to ? 'primary' : 'standby', streaming: n.node === to ? null : true, term: view.term + 1 })),
    };
    record(i, 'switchover', to!, `switchover to ${to} completed`);
    return { ok: true, message: `switchover to ${to} completed: term ${view.term + 1}` };
  });
  type FailoverBody = { to?: string; acceptDataLoss?: boolean; check?: boolean };
  app.post<{ Params: { name: string }; Body: FailoverBody }>('/api/v1/clusters/:name/failover', async (req, reply) => {
    const i = find(req.params.name);
    if (i < 0) return unknownCluster(reply, req.params.name);
    if (api.failoverWithoutCheck && req.body?.check !== undefined) {
      return refuse(reply, 'PGVIP_OPERATOR_BAD_REQUEST', 'body: unknown field check (expected to, acceptDataLoss, stoppedInstance)');
    }
    if (req.body?.acceptDataLoss !== true) return refuse(reply, 'PGVIP_OPERATOR_BAD_REQUEST', 'acceptDataLoss: must be true');
    const view = api.clusters[i]!;
    const to = req.body.to ?? view.nodes.find((n) => n.node !== view.primary)?.node;
    const refusal = api.refuseFailover;
    const refused = refusal !== undefined && !(req.body.check === true && refusal.checkPasses === true);
    if (refused) return refuseCommand(reply, refusal.message);
    if (req.body.check === true) return { ok: true, message: `${to} would be forced to primary in term ${view.term + 1} (data loss accepted)` };
    api.clusters[i] = { ...view, term: view.term + 1, primary: to! };
    record(i, 'manual-override', to!, `manual failover to ${to}, accepting data loss`);
    return { ok: true, message: `${to} promoted at term ${view.term + 1}; writes it had not received are lost` };
  });
  // A planned restart the node takes and is back from at once (the CLI then sees it back in its role).
  app.post<{ Params: { name: string }; Body: { node?: string } }>('/api/v1/clusters/:name/restart', async (req, reply) => {
    const i = find(req.params.name);
    if (i < 0) return unknownCluster(reply, req.params.name);
    const view = api.clusters[i]!;
    if (!view.nodes.some((n) => n.node === req.body?.node)) return refuse(reply, 'PGVIP_OPERATOR_BAD_REQUEST', `node: ${JSON.stringify(req.body?.node)} is not a node of ${view.cluster}`);
    record(i, 'planned-restart', req.body!.node!, `${req.body!.node!} is restarting postgresql`);
    return { ok: true, message: `planned restart of ${req.body!.node!} asked of its agent in term ${view.term}` };
  });
  app.post<{ Params: { name: string }; Body: { on?: unknown } }>('/api/v1/clusters/:name/maintenance', async (req, reply) => {
    const i = find(req.params.name);
    if (i < 0) return unknownCluster(reply, req.params.name);
    if (typeof req.body?.on !== 'boolean') return refuse(reply, 'PGVIP_OPERATOR_BAD_REQUEST', 'on: must be true or false');
    api.clusters[i] = { ...api.clusters[i]!, maintenance: req.body.on };
    record(i, 'maintenance', null, `maintenance ${req.body.on ? 'on' : 'off'}`);
    return { ok: true, message: req.body.on ? 'maintenance on: automatic failover paused' : 'maintenance off: automatic failover resumed' };
  });
  return api;
}

/** Builds and starts the fake on a loopback port. */
export async function startFakeOperatorApi(
  options: FakeApiOptions = {},
): Promise<FakeOperatorApi & { url: string; close(): Promise<void> }> {
  const api = buildFakeOperatorApi(options);
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = api.app.server.address() as { port: number };
  return Object.assign(api, { url: `http://127.0.0.1:${port}`, close: () => api.app.close() });
}

// Health endpoints for load balancers (docs/api.md): the paths and status codes Patroni users already
// point HAProxy and AWS NLB target groups at, 200 when the node should get that kind of traffic and
// 503 when not. Where pgvip knows more than Patroni's role check, it answers so that no load balancer
// sends writes to a node that would refuse them: a primary that is fenced, fencing, switching over,
// restarting, promoting or whose lease renewals are two in a row overdue is not `/primary`.
//
// They read the agent's state and change nothing; they are unauthenticated by design and served
// under the listener's limits like every other route (docs/security.md, "Health endpoints").
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  agentStatus, leaseValidMs, type AgentRole, type AgentState, type AgentStatus, type Lsn, type Timings,
} from '@pgvip/shared/core';
import { PgvipError, errorBody } from '@pgvip/shared';

/** What a path checks; several paths are aliases (Patroni's names, old and new). */
export type LbCheck = 'primary' | 'replica' | 'read-only' | 'sync' | 'read-only-sync' | 'async' | 'liveness' | 'readiness';

export const lbPaths: Readonly<Record<string, LbCheck>> = {
  '/': 'primary',
  '/primary': 'primary',
  '/read-write': 'primary',
  '/master': 'primary',
  '/replica': 'replica',
  '/read-only': 'read-only',
  '/sync': 'sync',
  '/synchronous': 'sync',
  '/read-only-sync': 'read-only-sync',
  '/read-only-synchronous': 'read-only-sync',
  '/async': 'async',
  '/asynchronous': 'async',
  '/liveness': 'liveness',
  '/readiness': 'readiness',
};

type Param = 'lag' | 'replication_state' | 'mode';
const replicaParams: readonly Param[] = ['lag', 'replication_state'];
const paramsOf: Readonly<Record<LbCheck, readonly Param[]>> = {
  primary: [],
  replica: replicaParams,
  'read-only': replicaParams,
  sync: replicaParams,
  'read-only-sync': replicaParams,
  async: replicaParams,
  liveness: [],
  readiness: ['lag', 'mode'],
};

/** Longest query string accepted (`lag=1099511627776&replication_state=streaming` is 46). */
export const lbQueryMaxChars = 200;
/** Longest `why` in a body: the bodies stay a few hundred bytes whatever the state says. */
const whyMaxChars = 200;
const lagMaxBytes = 2n ** 63n - 1n;
// PostgreSQL's memory units (1024-based), as Patroni reads ?lag=; the unit's case is not checked.
const lagUnits: Readonly<Record<string, bigint>> = {
  b: 1n, kb: 1024n, mb: 1024n ** 2n, gb: 1024n ** 3n, tb: 1024n ** 4n,
};

export interface LbQuery {
  readonly lagBytesMax: bigint | null;
  readonly streamingOnly: boolean;
  readonly mode: 'apply' | 'write';
}

const shown = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
const bad = (detail: string) => new PgvipError('PGVIP_HEALTH_QUERY', detail);

/** A size in bytes as Patroni accepts it: `1048576`, `1024kB`, `16MB`, `1GB`. */
export function parseLagBytes(text: string): bigint {
  const m = /^(\d{1,19})([a-zA-Z]{1,2})?$/.exec(text);
  const unit = m === null ? undefined : lagUnits[(m[2] ?? 'b').toLowerCase()];
  if (m === null || unit === undefined) {
    throw bad(`lag must be bytes or a size like 1024kB, 16MB, 1GB (units B, kB, MB, GB, TB), got ${shown(text)}`);
  }
  const bytes = BigInt(m[1]!) * unit;
  if (bytes > lagMaxBytes) throw bad(`lag ${shown(text)} is more than 2^63-1 bytes`);
  return bytes;
}

/**
 * The query of one check, validated: each parameter the check knows at most once, nothing else, and
 * the whole string short. A load balancer's check is written once by an operator, so a mistake in it
 * is answered with 400 and the reason, rather than ignored (Patroni ignores an unreadable lag).
 */
export function parseLbQuery(check: LbCheck, url: string): LbQuery {
  const at = url.indexOf('?');
  const raw = at < 0 ? '' : url.slice(at + 1);
  const path = at < 0 ? url : url.slice(0, at);
  if (raw.length > lbQueryMaxChars) throw bad(`the query string has ${raw.length} characters; at most ${lbQueryMaxChars}`);
  const allowed = paramsOf[check];
  const seen = new Map<string, string>();
  for (const part of raw === '' ? [] : raw.split('&')) {
    const eq = part.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replaceAll('+', ' '));
      value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replaceAll('+', ' '));
    } catch {
      throw bad(`the query string is not valid percent-encoding: ${shown(part)}`);
    }
    if (!(allowed as readonly string[]).includes(key)) {
      const takes = allowed.length === 0 ? 'takes no parameters' : `takes only ${allowed.join(', ')}`;
      throw bad(`unknown parameter ${shown(key)}: ${shown(path)} ${takes}`);
    }
    if (seen.has(key)) throw bad(`parameter ${key} is given more than once`);
    seen.set(key, value);
  }
  const lag = seen.get('lag');
  const state = seen.get('replication_state');
  if (state !== undefined && state !== 'streaming') {
    throw bad(`replication_state can only be streaming (pgvip cannot tell archive recovery apart), got ${shown(state)}`);
  }
  const mode = seen.get('mode');
  if (mode !== undefined && mode !== 'apply' && mode !== 'write') throw bad(`mode must be apply or write, got ${shown(mode)}`);
  return {
    lagBytesMax: lag === undefined ? null : parseLagBytes(lag),
    streamingOnly: state === 'streaming',
    mode: mode === 'write' ? 'write' : 'apply',
  };
}

/**
 * Below this much lease left, two renewals in a row went unanswered (on time, each renewal leaves at
 * least leaseValidMs − heartbeatMs − requestTimeoutMs): the primary is about to fence, so a load
 * balancer should stop sending it writes now. 1470 ms at the default timings. The configuration's
 * inequality L·(1−ρ)−m ≥ 2·heartbeatMs + requestTimeoutMs keeps it at or above 0.
 */
export function leaseLapsingBelowMs(t: Timings): number {
  return Math.max(0, leaseValidMs(t) - 2 * t.heartbeatMs - t.requestTimeoutMs);
}

/** What the checks read from the agent's state, computed once per request. */
export interface LbView {
  readonly node: string;
  readonly role: AgentRole;
  readonly term: number;
  readonly leaseRemainingMs: number;
  /** Why this node is not a writable primary now, or null when it is. */
  readonly notPrimary: string | null;
  /** Why this node is not a running standby that may serve reads now, or null when it is. */
  readonly notReplica: string | null;
  readonly streaming: boolean;
  /** Replay and receive lag behind the primary of this term; null when that primary's position is unknown. */
  readonly lag: { readonly apply: bigint; readonly write: bigint } | null;
  /**
   * This standby may hold acknowledged commits: two nodes, it is the primary's synchronous standby;
   * three or more, a member of the primary's claim in force (ANY k). Null when unknown (two nodes:
   * its last check of the primary failed; three or more: no lease request of this term's primary
   * within a lease).
   */
  readonly sync: boolean | null;
  /** Why a standby cannot be synchronous now whatever the primary says, or null. */
  readonly notSync: string | null;
  /** Three or more database nodes (the N-node meaning of `sync`). */
  readonly many: boolean;
  /** How long ago the decision loop last completed a round, and the most a live one may take. */
  readonly tickAgoMs: number;
  readonly tickMaxMs: number;
}

const cut = (why: string) => (why.length > whyMaxChars ? `${why.slice(0, whyMaxChars - 1)}…` : why);
const minus = (a: Lsn, b: Lsn): bigint => (a > b ? a - b : 0n);

/** Why the primary of the term is not writable now (the core's role `fenced`). */
function notWritable(s: AgentState, leaseRemainingMs: number): string {
  if (s.fence.fenced) return `fenced: ${s.fence.reason ?? 'postgresql refuses writes'}`;
  // Not fenced yet: the lease just ran out (the fence follows), or a restarted agent awaits its first grant.
  if (leaseRemainingMs === 0) return `no valid lease for term ${s.durable.term}`;
  return 'postgresql refuses writes (read-only)';
}

export function lbView(s: AgentState, lastTickAtMs: number): LbView {
  const st = agentStatus(s);
  const role = st.role;
  const d = s.durable;
  const self = s.settings.self;
  const t = s.settings.timings;
  const primaryOfTerm = d.primaryOfTerm === self;
  const pg = s.pg;

  let notPrimary: string | null = null;
  if (pg === null) notPrimary = 'the agent has not looked at PostgreSQL yet';
  else if (!pg.running) notPrimary = 'postgresql is not running';
  else if (!primaryOfTerm) notPrimary = `${self} is ${role}; the primary of term ${d.term} is ${d.primaryOfTerm ?? 'unknown'}`;
  else if (role === 'promoting') notPrimary = 'promoting: postgresql is still in recovery';
  else if (role === 'fenced') notPrimary = notWritable(s, st.leaseRemainingMs);
  else if (s.fenceInFlight !== null) notPrimary = `fencing: ${s.fence.reason ?? 'refusing writes'}`;
  else if (s.switchover !== null) notPrimary = `switching over to ${s.switchover.to}`;
  else if (st.restarting === true) notPrimary = 'a planned restart of postgresql is under way';
  else if (st.leaseRemainingMs < leaseLapsingBelowMs(t)) {
    notPrimary = `lease renewals overdue: ${Math.round(st.leaseRemainingMs)} ms of lease left, fencing at 0`;
  }

  let notReplica: string | null = null;
  if (pg === null) notReplica = 'the agent has not looked at PostgreSQL yet';
  else if (!pg.running) notReplica = 'postgresql is not running';
  else if (role !== 'standby' && role !== 'candidate') notReplica = `${self} is ${role}, not a standby`;
  else if (st.restarting === true) notReplica = 'a planned restart of postgresql is under way';

  // The primary's position: its last lease request and its status from the last check, this term's only.
  let leader: Lsn | null = null;
  const report = s.primaryReport;
  if (report !== null && report.term === d.term) leader = report.lsn;
  // Two nodes: the peer is the only other node. Three or more: the term's primary among the peers.
  const many = s.settings.nodes.length > 2;
  const ofTerm = d.primaryOfTerm;
  const seen: AgentStatus | null = many ? (ofTerm === null ? null : (s.peers[ofTerm] ?? null)) : s.peer;
  const primarySeen = seen !== null && seen.term === d.term && seen.from === d.primaryOfTerm
    && seen.pg.running && !seen.pg.inRecovery ? seen : null;
  if (primarySeen !== null && (leader === null || primarySeen.pg.lsn > leader)) leader = primarySeen.pg.lsn;
  const lag = leader === null || pg === null
    ? null
    : { apply: minus(leader, pg.replayLsn), write: minus(leader, pg.lsn) };

  let sync: boolean | null = null;
  let notSync: string | null = null;
  if (s.settings.replication === 'async') sync = false;
  else if (!many) {
    if (primarySeen !== null) sync = primarySeen.pg.syncStandby === self && primarySeen.pg.standbyInSync;
  } else if (s.settings.nodes.find((n) => n.id === self)?.noFailover === true) {
    // Never named in synchronous_standby_names (docs/design.md, "More than one standby").
    sync = false;
  } else {
    // The claim in force rides on every lease request of the primary (AgentStatus.syncMember); a
    // report older than a lease says nothing about the claim now.
    const fresh = report !== null && report.term === d.term && s.nowMs - report.atMs <= t.leaseMs;
    if (fresh) sync = st.syncMember === true;
    if (st.withdrawn === true) notSync = 'withdrawn for an election: its WAL receiver is stopped';
  }

  return {
    node: self,
    role,
    term: d.term,
    leaseRemainingMs: Math.round(st.leaseRemainingMs),
    notPrimary: notPrimary === null ? null : cut(notPrimary),
    notReplica: notReplica === null ? null : cut(notReplica),
    streaming: pg?.streaming === true,
    lag,
    sync,
    notSync,
    many,
    tickAgoMs: Math.max(0, Math.round(s.nowMs - lastTickAtMs)),
    // Patroni's bound is ttl on the primary and twice that elsewhere; pgvip's lease plays ttl's part.
    tickMaxMs: (primaryOfTerm ? 1 : 2) * t.leaseMs,
  };
}

/** Why a standby does not pass the replica filters of `q`, or null. */
function replicaFilter(v: LbView, q: LbQuery, mode: 'apply' | 'write' = 'apply'): string | null {
  if (v.notReplica !== null) return v.notReplica;
  if (q.streamingOnly && !v.streaming) return 'not streaming from the primary';
  if (q.lagBytesMax === null) return null;
  if (v.lag === null) return `lag unknown: no position of the primary of term ${v.term} yet`;
  const lag = v.lag[mode];
  return lag > q.lagBytesMax ? `${mode === 'apply' ? 'replay' : 'receive'} lag ${lag} bytes is more than ${q.lagBytesMax}` : null;
}

function syncFilter(v: LbView, want: boolean): string | null {
  if (v.notReplica !== null) return v.notReplica;
  if (want && v.notSync !== null) return v.notSync;
  if (v.sync === null) {
    return v.many
      ? `unknown whether this standby is synchronous: no lease request of the primary of term ${v.term} within a lease`
      : 'unknown whether this standby is synchronous: its last check of the primary failed';
  }
  if (v.sync !== want) {
    if (v.many) return want ? 'not a member of the primary\'s synchronous quorum (ANY k) in force' : 'a member of the primary\'s synchronous quorum, not an asynchronous standby';
    return want ? 'not the synchronous standby' : 'the synchronous standby, not an asynchronous one';
  }
  return null;
}

/** Why `check` fails on this view with this query (503), or null (200). */
export function lbFailure(check: LbCheck, v: LbView, q: LbQuery, lagBytesMaxDefault: bigint): string | null {
  switch (check) {
    case 'primary':
      return v.notPrimary;
    case 'replica':
      return replicaFilter(v, q);
    case 'read-only':
      return v.notPrimary === null ? null : replicaFilter(v, q);
    case 'sync':
      return syncFilter(v, true) ?? replicaFilter(v, q);
    case 'read-only-sync':
      return v.notPrimary === null ? null : (syncFilter(v, true) ?? replicaFilter(v, q));
    case 'async':
      return syncFilter(v, false) ?? replicaFilter(v, q);
    case 'liveness':
      return v.tickAgoMs > v.tickMaxMs ? `the decision loop last ran ${v.tickAgoMs} ms ago, more than ${v.tickMaxMs}` : null;
    case 'readiness': {
      // Patroni's: the leader is ready; a standby when it streams and is within lag (default: the
      // promotion limit, replication.lagBytesMax) of the primary, by replay (mode=apply) or receipt.
      if (v.notPrimary === null) return null;
      const lagBytesMax = q.lagBytesMax ?? lagBytesMaxDefault;
      return replicaFilter(v, { lagBytesMax, streamingOnly: true, mode: q.mode }, q.mode);
    }
  }
}

export interface LbHealthDeps {
  readonly state: () => AgentState;
  /** When the decision loop last completed a round, on `clock`. */
  readonly lastTickAtMs: () => number;
  readonly clock: () => number;
}

/**
 * GET, HEAD and OPTIONS on every path of `lbPaths`. GET answers a small JSON; HEAD and OPTIONS the
 * same status with no body (HAProxy's `option httpchk OPTIONS /primary` reads only the status).
 */
export function registerLbHealthRoutes(app: FastifyInstance, deps: LbHealthDeps): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const check = lbPaths[req.routeOptions.url ?? ''];
    if (check === undefined) throw new PgvipError('PGVIP_INTERNAL', `no health check for ${req.routeOptions.url ?? '?'}`);
    reply.header('cache-control', 'no-store');
    let q: LbQuery;
    try {
      q = parseLbQuery(check, req.url);
    } catch (e) {
      if (!(e instanceof PgvipError)) throw e;
      return reply.code(400).type('application/json').send(req.method === 'OPTIONS' ? undefined : errorBody(e));
    }
    const s = { ...deps.state(), nowMs: deps.clock() };
    const v = lbView(s, deps.lastTickAtMs());
    const why = lbFailure(check, v, q, s.settings.lagBytesMax);
    reply.code(why === null ? 200 : 503);
    if (req.method === 'OPTIONS') return reply.send();
    const lag = v.lag === null ? null : Number(check === 'readiness' && q.mode === 'write' ? v.lag.write : v.lag.apply);
    return reply.send({
      node: v.node, role: v.role, term: v.term, leaseRemainingMs: v.leaseRemainingMs,
      streaming: v.streaming, lagBytes: lag, sync: v.sync, why,
    });
  };
  for (const url of Object.keys(lbPaths)) app.route({ method: ['GET', 'OPTIONS'], url, handler });
}

// One cluster whose quorum is on etcd (quorum.backend: etcd), as the witness serves it: an observer
// with no vote (docs/design.md, Quorum on etcd; docs/witness.md). It
//   - reads the cluster's keys from etcd: a linearizable read every heartbeat, and at once when the
//     watch says a key changed (the watch is only a hint: what the witness shows comes from reads);
//     the members' published statuses, the leader key's lease TTL, and each etcd member's health;
//   - keeps polling the agents' status over HTTP (the poller, as in witness mode) for the nodes' rows;
//   - records what changed as the witness's events (etcd-events.ts): history, notifications, metrics;
//   - turns operator commands into the operator txns of @pgvip/agent/quorum/etcd (operator.ts), and
//     a forced failover's txn into the manual-promote message to the node, as today;
//   - refuses every lease, vote or sync request an agent may still send it: etcd holds the quorum.
// Several witnesses may observe one cluster: none of this needs a single observer.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  PROTOCOL_VERSION,
  PgvipError,
  formatLsn,
  termAfter,
  termBoundReached,
  type AgentStatus,
  type ClusterConfig,
  type NodeId,
  type OperatorCommand,
  type PeerClient,
  type PeerReply,
  type PeerRequest,
} from '@pgvip/shared';
import type { ClusterView as EtcdKeys, EndpointHealth, EtcdObserverPort, MemberStatus, Versioned, WatchHandle } from '@pgvip/agent/quorum/etcd';
import type { Clock } from './clock.js';
import { handBackNodesProblem, noFailoverRefusal, recordEvent, type ClusterService } from './cluster-service.js';
import type { OperatorResult, SendOutcome, Verdict } from './cluster-runner.js';
import { etcdEvents, syncRecordOf } from './etcd-events.js';
import type { Notifier, PgvipEvent } from './events.js';
import type { History } from './history.js';
import type { ClusterMetricsSnapshot, WitnessMetrics } from './metrics.js';
import { freshMs, handBackState, trackEtcdTerm, type MoveVerdict } from './quorum-move.js';
import type { WitnessStateStore } from './state-store.js';
import { bestStandby, describeCandidate } from './switchover-target.js';
import type { ClusterView, EtcdQuorumView, NodeView, PositionView } from './view.js';

/** Reads an operator command makes before it is refused for want of etcd's answer (#fresh). */
const OPERATOR_READ_ATTEMPTS = 3;
/** The pause between them: long enough for an etcd leader election to settle more often than not. */
const OPERATOR_READ_PAUSE_MS = 250;

export interface EtcdObserverDeps {
  readonly cluster: ClusterConfig;
  readonly self: NodeId;
  readonly port: EtcdObserverPort;
  readonly peers: PeerClient;
  readonly history: History;
  readonly notifier: Notifier;
  readonly metrics: WitnessMetrics;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * The witness's state file: the observer keeps this cluster's term there at etcd's (and writes it
   * for `pgvip etcd hand-back`), so the witness, moved back to its vote, never votes in a term etcd
   * gave. Absent (tests): not kept.
   */
  readonly store?: WitnessStateStore;
  /** How often the keys are read (default: every second, or every heartbeat when that is longer). */
  readonly refreshMs?: number;
  /** How often each etcd member is asked for its status (default 5 s). */
  readonly healthEveryMs?: number;
}

/** Shell events of etcd mode, besides the core's names (etcd-events.ts). */
export const etcdUnreachableType = 'etcd-unreachable';
export const etcdReachableType = 'etcd-reachable';

const DEFAULT_HEALTH_EVERY_MS = 5_000;
/**
 * Reads between watch hints: often enough for a status and a failover's events to show within a
 * second, and few enough that many clusters and several witnesses do not load etcd (each read is
 * linearizable: a round through etcd's leader).
 */
const DEFAULT_REFRESH_MS = 1_000;
/** A watch that could not be started is tried again after this long (each try is a gRPC stream). */
const WATCH_RETRY_MS = 10_000;
const NEUTRAL_SENDS: Promise<SendOutcome[]> = Promise.resolve([]);

interface Polled {
  readonly status: AgentStatus | null;
  readonly pgReachable: boolean;
  readonly atMs: number;
  /** When the agent last answered (null: never). */
  readonly seenAtMs: number | null;
  readonly seen: AgentStatus | null;
  /** Consecutive polls the agent did not answer, and whether that was reported. */
  readonly missed: number;
  readonly reportedDown: boolean;
}

export class EtcdClusterObserver implements ClusterService {
  readonly name: string;
  /** Every database node of cluster.nodes, in config order (2 to 9 on etcd). */
  readonly nodes: readonly NodeId[];
  readonly noFailover: ReadonlySet<NodeId>;
  readonly #d: EtcdObserverDeps;
  readonly #log: Logger;
  readonly #refreshMs: number;
  readonly #healthEveryMs: number;
  /** The latest keys etcd answered with (null before the first answer). */
  #keys: EtcdKeys | null = null;
  #lastReadAtMs: number | null = null;
  /** Why the latest read failed, and since when etcd has not answered (null: it answers). */
  #down: { why: string; sinceMs: number } | null = null;
  #members: readonly Versioned<MemberStatus>[] = [];
  #memberBad: readonly { key: string; problem: string }[] = [];
  #leaderTtl: { lease: string; ttlS: number } | null = null;
  #health: readonly EndpointHealth[] = [];
  #healthAtMs: number | null = null;
  readonly #polled = new Map<NodeId, Polled>();
  #switchoverSeen: { to: string; term: number } | null = null;
  /**
   * A switchover asked for later (`at`): held here and written to etcd when due, then checked again
   * as a switchover asked now. Not durable, like the witness core's: a restart forgets it.
   */
  #scheduled: { to: NodeId; by: string; atMs: number; timer: NodeJS.Timeout } | null = null;
  #forcedHere: { to: string; term: number } | null = null;
  /**
   * A planned restart asked through this witness, shown (view.restart) until a poll has seen the node
   * restarting and then back, or until its deadline, as the witness core's record in witness mode; it
   * holds nothing (the agent holds its own failure handling). Not durable.
   */
  #restarting: {
    node: NodeId; term: number; timeoutMs: number; untilMs: number; accepted: boolean; seenRestarting: boolean;
    by: string;
  } | null = null;
  #watch: WatchHandle | null = null;
  #watchTriedAtMs: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** One refresh at a time; a hint during one asks for another right after. */
  #refreshing: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #started = false;

  constructor(deps: EtcdObserverDeps) {
    const c = deps.cluster;
    this.#d = deps;
    this.name = c.name;
    this.nodes = c.nodes.map((n) => n.id);
    this.noFailover = new Set(c.nodes.filter((n) => n.noFailover).map((n) => n.id));
    this.#log = deps.log;
    this.#refreshMs = Math.max(100, deps.refreshMs ?? Math.max(DEFAULT_REFRESH_MS, c.timings.heartbeatMs));
    this.#healthEveryMs = deps.healthEveryMs ?? DEFAULT_HEALTH_EVERY_MS;
    deps.metrics.addCluster(c.name, this.nodes, () => this.metricsSnapshot());
  }

  get term(): number {
    return this.#keys?.term?.value.term ?? 0;
  }

  get primaryOfTerm(): NodeId | null {
    return this.#keys?.term?.value.primary ?? null;
  }

  get pendingSwitchoverTo(): NodeId | null {
    return this.#keys?.switchover?.value.to ?? this.#scheduled?.to ?? null;
  }

  /** Whether etcd answered the latest read. */
  get etcdReachable(): boolean {
    return this.#down === null && this.#keys !== null;
  }

  /** Starts the watch and the periodic reads; resolves after the first read (answered or not). */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    await this.refresh();
    const tick = (): void => {
      if (this.#closed) return;
      this.#timer = setTimeout(() => {
        void this.refresh().finally(tick);
      }, this.#refreshMs);
    };
    tick();
  }

  /** Reads the keys now (and, when due, the members' health); concurrent calls share one read. */
  refresh(): Promise<void> {
    if (this.#refreshing !== null) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = (async () => {
      do {
        this.#again = false;
        await this.#refreshOnce();
      } while (this.#again && !this.#closed);
    })().catch((e: unknown) => this.#log.error({ err: e }, 'reading the cluster from etcd failed'))
      .finally(() => {
        this.#refreshing = null;
      });
    this.#refreshing = run;
    return run;
  }

  /**
   * A poll of one agent's status (the poller, as in witness mode). A node whose agent misses
   * failureChecks polls in a row is reported once (agent-unreachable when it is the primary and its
   * PostgreSQL answers, else node-unreachable), and node-recovered when it answers again. The
   * primary's failure itself is its leader key going (etcd-events.ts).
   */
  poll(node: NodeId, status: AgentStatus | null, pgReachable: boolean): void {
    if (this.#closed) return;
    const now = this.#d.clock.monotonicMs();
    const before = this.#polled.get(node);
    const missed = status === null ? (before?.missed ?? 0) + 1 : 0;
    const checks = this.#d.cluster.timings.failureChecks;
    const primary = node === this.primaryOfTerm;
    let reportedDown = before?.reportedDown ?? false;
    if (status === null && primary && !pgReachable) this.#d.metrics.checkFailed(this.name, node);
    if (status === null && missed === checks && !reportedDown) {
      reportedDown = true;
      const pg = `postgresql ${pgReachable ? 'reachable' : 'unreachable'}`;
      const [type, detail] = primary && pgReachable
        ? ['agent-unreachable', `agent on ${node} unreachable for ${checks} polls while its postgresql answers: agent failure, not a database failure`]
        : ['node-unreachable', `${node} did not answer ${checks} consecutive polls (${pg})${primary ? '' : '; it cannot take over meanwhile'}`];
      this.#log.warn({ node, term: this.term }, detail);
      this.record(type, node, detail);
      this.#d.metrics.event(this.name, type);
    } else if (status !== null && reportedDown) {
      reportedDown = false;
      const detail = `${node} answers again as ${status.role}`;
      this.#log.info({ node, term: this.term }, detail);
      this.record('node-recovered', node, detail);
    }
    this.#watchRestart(node, status, now);
    this.#polled.set(node, {
      status,
      pgReachable,
      atMs: now,
      seenAtMs: status === null ? (before?.seenAtMs ?? null) : now,
      seen: status ?? before?.seen ?? null,
      missed,
      reportedDown,
    });
  }

  request(msg: PeerRequest): PeerReply {
    if (this.#closed) throw new PgvipError('PGVIP_INTERNAL', 'the witness is shutting down');
    const reason = `cluster ${this.name} keeps its quorum on etcd (quorum.backend: etcd): witness ${this.#d.self} only observes; ask etcd`;
    const envelope = { v: PROTOCOL_VERSION, cluster: this.name, term: msg.term, from: this.#d.self };
    switch (msg.kind) {
      case 'lease-request':
        return { ...envelope, kind: 'lease-reply', seq: msg.seq, granted: false, reason, primaryOfTerm: this.primaryOfTerm, maintenance: this.#keys?.maintenance != null };
      case 'vote-request':
        this.#d.metrics.vote(this.name, false);
        return { ...envelope, kind: 'vote-reply', granted: false, reason, primaryOfTerm: this.primaryOfTerm };
      case 'sync-update':
        return { ...envelope, kind: 'sync-update-reply', granted: false, reason };
      default:
        return { ...envelope, kind: 'ack', accepted: false, reason };
    }
  }

  async operator(cmd: OperatorCommand): Promise<OperatorResult> {
    if (this.#closed) throw new PgvipError('PGVIP_INTERNAL', 'the witness is shutting down');
    const refuse = (message: string): OperatorResult => ({ verdict: { ok: false, message }, sends: NEUTRAL_SENDS });
    switch (cmd.kind) {
      case 'maintenance': {
        const r = await this.#d.port.setMaintenance(cmd.on ? { requestedBy: cmd.by.slice(0, 128), reason: `maintenance on for ${this.name} by ${cmd.by}` } : null);
        if (!r.ok) return refuse(`etcd did not take the maintenance key: ${r.why}`);
        await this.refresh();
        const message = cmd.on
          ? 'maintenance on: automatic failover paused (the maintenance key is set on etcd: no campaign can win)'
          : 'maintenance off: automatic failover active (the maintenance key is deleted on etcd)';
        return { verdict: { ok: true, message }, sends: NEUTRAL_SENDS };
      }
      case 'restart':
        return this.#restart(cmd.node, cmd.timeoutMs, cmd.by);
      case 'switchover':
        return this.#switchover(cmd.to, cmd.delayMs, cmd.by);
      case 'failover':
        return this.#failover(cmd.to, cmd.by);
    }
  }

  /**
   * `pgvip etcd hand-back` (quorum-move.ts): on a fresh read, etcd's term and primary go into the
   * witness's state file with maintenance on, for the witness's restart with backend witness.
   */
  async moveQuorum(to: 'etcd' | 'witness', by: string): Promise<MoveVerdict> {
    if (to === 'etcd') return { ok: false, message: `${this.name} already keeps its quorum on etcd (quorum.backend: etcd); nothing to seed` };
    const tooMany = handBackNodesProblem(this.name, this.nodes.length);
    if (tooMany !== null) return { ok: false, message: `not handed back: ${tooMany}` };
    const store = this.#d.store;
    if (store === undefined) return { ok: false, message: 'not handed back: this witness keeps no state file' };
    const f = await this.#fresh();
    if ('why' in f) return { ok: false, message: `not handed back: ${f.why}` };
    const t = this.#d.cluster.timings;
    const now = this.#d.clock.monotonicMs();
    const seen = (node: NodeId) => {
      const p = this.#polled.get(node);
      return { status: p?.status ?? null, seenMsAgo: p?.seenAtMs == null ? null : now - p.seenAtMs };
    };
    const maxAgeMs = freshMs(t.heartbeatMs, t.requestTimeoutMs);
    const next = handBackState(f.keys, store.durable(this.name), this.nodes, seen, maxAgeMs);
    if ('why' in next) return { ok: false, message: `not handed back: ${next.why}` };
    // Durable before the answer: the operator restarts the witness on the strength of it.
    store.save(this.name, next.durable);
    this.#log.info({ term: next.term, primary: next.primary, by }, 'hand-back: etcd\'s term written to the witness\'s state file');
    return {
      ok: true,
      message: `the witness's state file holds term ${next.term} (primary ${next.primary}) with maintenance on; set quorum.backend: witness in the three files and restart the witness first, then the standby's agent, then the primary's`,
    };
  }

  record(type: string, node: NodeId | null, detail: string, who?: Pick<PgvipEvent, 'operator' | 'operatorClaimed'>): PgvipEvent {
    return recordEvent(this.#d, { cluster: this.name, type, node, term: this.term, detail }, who);
  }

  view(eventCount = 10): ClusterView {
    const c = this.#d.cluster;
    const now = this.#d.clock.monotonicMs();
    const k = this.#keys;
    const primary = this.primaryOfTerm;
    const member = (node: NodeId): MemberStatus | null =>
      this.#members.find((m) => m.value.node === node)?.value ?? null;
    const lsnOf = (node: NodeId): bigint | null => {
      const p = this.#polled.get(node);
      return p?.status?.pg.lsn ?? member(node)?.lsn ?? p?.seen?.pg.lsn ?? null;
    };
    const primaryLsn = primary === null ? null : lsnOf(primary);
    const positions = this.#positions();
    const nodes = this.nodes.map((node): NodeView => {
      const p = this.#polled.get(node);
      const st = p?.status ?? null;
      const m = member(node);
      const reachable = st !== null;
      const lsn = lsnOf(node);
      const lag = node === primary || lsn === null || primaryLsn === null ? null
        : primaryLsn > lsn ? Number(primaryLsn - lsn)
          : 0;
      const n = c.nodes.find((x) => x.id === node);
      // The agent's own answer first; what it last published on etcd when the witness cannot reach it.
      const blocker = st !== null ? st.promotionBlocker
        : m !== null ? m.promotionBlocker ?? null
          : 'agent unreachable from the witness, and no status of it on etcd';
      return {
        node,
        reachable,
        pgReachable: p?.pgReachable ?? false,
        role: st?.role ?? m?.role ?? null,
        term: st?.term ?? m?.term ?? null,
        leaseRemainingMs: st?.leaseRemainingMs ?? null,
        lagBytes: lag,
        timeline: st?.pg.timeline ?? m?.timeline ?? null,
        streaming: st?.pg.streaming ?? m?.streaming ?? null,
        promotionBlocker: blocker,
        lastSeenMsAgo: p?.seenAtMs === null || p?.seenAtMs === undefined
          ? null
          : Math.max(0, Math.round(now - p.seenAtMs)),
        hosts: n === undefined ? [] : [...new Set([n.agent.host, n.postgres.host])],
        instanceId: n?.vip?.instanceId ?? null,
        restarting: st?.restarting === true,
        pendingRestart: st?.pendingRestart ?? null,
        priority: n?.priority ?? 0,
        noFailover: n?.noFailover ?? false,
        lsn: lsn === null ? null : formatLsn(lsn),
        syncMember: st?.syncMember ?? null,
        // Its agent says so, or its final position of this term is on etcd (an agent that stopped
        // answering after it withdrew).
        withdrawn: st?.withdrawn === true || positions.some((x) => x.node === node),
      };
    });
    const record = syncRecordOf(k?.sync?.value);
    return {
      cluster: this.name,
      term: this.term,
      primary,
      syncEligible: c.replication.mode === 'sync' ? holdsEverything(record) : null,
      maintenance: k?.maintenance != null,
      // No witness promise on etcd: the leader key's lease is shown in `quorum` instead.
      promiseRemainingMs: 0,
      vip: { address: c.vip.address, mode: c.vip.mode },
      switchover: k?.switchover != null ? { to: k.switchover.value.to, dueInMs: 0 }
        : this.#scheduled === null ? null
          : { to: this.#scheduled.to, dueInMs: Math.max(0, Math.round(this.#scheduled.atMs - now)) },
      restart: this.#restarting === null ? null : {
        node: this.#restarting.node,
        accepted: this.#restarting.accepted,
        leftMs: Math.max(0, Math.round(this.#restarting.untilMs - now)),
      },
      nodes,
      events: this.#d.history.recent(this.name, eventCount),
      quorum: this.quorumView(now),
    };
  }

  /**
   * The final positions on etcd that belong to the current term (a standby withdrew for an election);
   * one left from an older term is not shown.
   */
  #positions(): PositionView[] {
    const term = this.term;
    return (this.#keys?.positions ?? [])
      .filter((p) => p.value.term === term && this.nodes.includes(p.node))
      .sort((a, b) => this.nodes.indexOf(a.node) - this.nodes.indexOf(b.node))
      .map((p) => ({
        node: p.node,
        term: p.value.term,
        timeline: p.value.timeline,
        flushLsn: formatLsn(p.value.flushLsn),
        eligible: p.value.eligible,
      }));
  }

  quorumView(now = this.#d.clock.monotonicMs()): EtcdQuorumView {
    const leader = this.#keys?.leader ?? null;
    const ttl = this.#leaderTtl;
    return {
      backend: 'etcd',
      reachable: this.etcdReachable,
      why: this.#down?.why ?? (this.#keys === null ? 'not read yet' : null),
      lastReadMsAgo: this.#lastReadAtMs === null ? null : Math.max(0, Math.round(now - this.#lastReadAtMs)),
      leaderKey: leader === null ? null : {
        node: leader.value.node,
        term: leader.value.term,
        leaseTtlS: ttl !== null && ttl.lease === leader.lease ? ttl.ttlS : null,
      },
      members: this.#health.map((h) => ({
        endpoint: h.endpoint, ok: h.ok, leader: h.leader, version: h.version, rttMs: h.rttMs, why: h.why,
      })),
      sync: syncRecordOf(this.#keys?.sync?.value),
      positions: this.#positions(),
      badKeys: [...(this.#keys?.bad ?? []), ...this.#memberBad],
    };
  }

  metricsSnapshot(): ClusterMetricsSnapshot {
    const v = this.view(0);
    return {
      cluster: v.cluster,
      term: v.term,
      primary: v.primary,
      nodes: v.nodes.map((n) => ({
        node: n.node, reachable: n.reachable, pgReachable: n.pgReachable, lagBytes: n.lagBytes,
        syncMember: v.quorum?.sync?.members.includes(n.node) === true && (v.quorum.sync.k > 0),
        withdrawn: n.withdrawn === true,
      })),
      promiseRemainingMs: 0,
      maintenance: v.maintenance,
      syncDegraded: this.#d.cluster.replication.mode === 'sync' && v.primary !== null && (v.quorum?.sync?.k ?? 0) === 0,
      syncK: this.#d.cluster.replication.mode === 'sync' ? (v.quorum?.sync?.k ?? 0) : null,
      etcd: { reachable: this.etcdReachable, leaderKeyHeld: this.#keys?.leader != null },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#scheduled !== null) clearTimeout(this.#scheduled.timer);
    await this.#refreshing;
    await this.#watch?.close();
    await this.#d.port.close();
  }

  async #refreshOnce(): Promise<void> {
    if (this.#closed) return;
    const port = this.#d.port;
    const now = (): number => this.#d.clock.monotonicMs();
    const r = await port.read();
    if (!r.ok) {
      if (this.#down === null) {
        this.#down = { why: r.why, sinceMs: now() };
        this.#log.warn({ why: r.why }, `etcd does not answer: ${r.why}`);
        this.record(etcdUnreachableType, null, `etcd does not answer this witness (${r.why}); the status shown is the last etcd answered${this.#lastReadAtMs === null ? ' (none yet)' : ''}`);
      } else {
        this.#down.why = r.why;
      }
      // A member's health says which members are gone; checked now, not in 5 s.
      await this.#checkHealth(true);
      return;
    }
    if (this.#down !== null) {
      const gone = Math.round(now() - this.#down.sinceMs);
      this.#down = null;
      this.#log.info({ unreachableMs: gone }, 'etcd answers again');
      this.record(etcdReachableType, null, `etcd answers again after ${gone} ms`);
    }
    const prev = this.#keys;
    const next = r.view;
    this.#keys = next;
    this.#lastReadAtMs = now();
    this.#keepTerm(next);
    // Only once etcd answers: a watch asked of an etcd that does not is a stream left pending.
    if (this.#watch === null && (this.#watchTriedAtMs === null || now() - this.#watchTriedAtMs >= WATCH_RETRY_MS)) {
      this.#watchTriedAtMs = now();
      await this.#startWatch();
    }
    if (prev === null) {
      const t = next.term?.value;
      this.#log.info({ term: t?.term ?? 0, primary: t?.primary ?? null }, `observing ${this.name} on etcd: ${t === undefined ? 'no term yet' : `term ${t.term}, primary ${t.primary}`}`);
    } else {
      for (const e of etcdEvents(prev, next, {
        replication: this.#d.cluster.replication.mode,
        switchoverSeen: this.#switchoverSeen,
        forcedHere: this.#forcedHere,
        nodes: this.nodes.length,
      })) {
        this.#log.info({ term: this.term, event: e.type, node: e.node }, e.detail);
        this.record(e.type, e.node, e.detail);
        this.#d.metrics.event(this.name, e.type);
        if (e.failover !== undefined) this.#d.metrics.failover(this.name, e.failover);
      }
    }
    for (const b of next.bad) {
      if (!(prev?.bad ?? []).some((x) => x.key === b.key)) this.#log.warn({ key: b.key, problem: b.problem }, `etcd key ${b.key} holds a value pgvip did not write: ${b.problem}`);
    }
    const sw = next.switchover?.value;
    if (sw !== undefined) this.#switchoverSeen = { to: sw.to, term: sw.term };
    else if ((prev?.term?.modRevision ?? null) !== (next.term?.modRevision ?? null)) this.#switchoverSeen = null;

    const members = await port.readMembers();
    if (members.ok) {
      this.#members = members.members;
      this.#memberBad = members.bad;
    }
    const leader = next.leader;
    if (leader === null) {
      this.#leaderTtl = null;
    } else {
      const ttl = await port.leaseTtl(leader.lease);
      if (ttl.ok) this.#leaderTtl = { lease: leader.lease, ttlS: ttl.ttlS };
    }
    await this.#checkHealth(false);
  }

  /** The state file's term for this cluster at etcd's (trackEtcdTerm); a failed write is tried at the next read. */
  #keepTerm(keys: EtcdKeys): void {
    const store = this.#d.store;
    if (store === undefined) return;
    const next = trackEtcdTerm(keys, store.durable(this.name));
    if (next === null) return;
    try {
      store.save(this.name, next);
    } catch (e) {
      this.#log.error({ err: e, term: next.term }, 'could not keep etcd\'s term in the witness\'s state file; trying again at the next read');
    }
  }

  async #checkHealth(now: boolean): Promise<void> {
    const at = this.#d.clock.monotonicMs();
    if (!now && this.#healthAtMs !== null && at - this.#healthAtMs < this.#healthEveryMs) return;
    this.#healthAtMs = at;
    this.#health = await this.#d.port.endpointsHealth();
  }

  async #startWatch(): Promise<void> {
    const w = await this.#d.port.watch((key) => {
      // Members publish their status every heartbeat: those come with the periodic reads; a change
      // of the cluster's own keys (a failover, maintenance, a switchover) is read at once.
      if (!this.#closed && !key.startsWith('members/')) void this.refresh();
    });
    if (w.ok) this.#watch = w.handle;
    else this.#log.debug({ why: w.why }, 'etcd watch not started; reading every heartbeat meanwhile');
  }

  /**
   * A fresh linearizable read, for a command's conditions (the periodic one may be a heartbeat old).
   * An operator is not on the failover's clock, so a read that etcd does not answer in time (a leader
   * election, a loaded member) is tried again, OPERATOR_READ_ATTEMPTS times in all, before the command
   * is refused: a read changes nothing, and each try is bounded by the port's timeout.
   */
  async #fresh(): Promise<{ keys: EtcdKeys } | { why: string }> {
    let why = '';
    for (let attempt = 1; attempt <= OPERATOR_READ_ATTEMPTS; attempt++) {
      const r = await this.#d.port.read();
      if (r.ok) return { keys: r.view };
      why = r.why;
      if (attempt < OPERATOR_READ_ATTEMPTS) {
        this.#log.info({ attempt, why }, 'etcd did not answer an operator command\'s read; reading again');
        await delay(OPERATOR_READ_PAUSE_MS);
      }
    }
    return { why: `etcd did not answer ${OPERATOR_READ_ATTEMPTS} reads: ${why}` };
  }

  async #switchover(want: NodeId | null, delayMs: number, by: string): Promise<OperatorResult> {
    const refuse = (message: string): OperatorResult => ({ verdict: { ok: false, message }, sends: NEUTRAL_SENDS });
    const f = await this.#fresh();
    if ('why' in f) return refuse(f.why);
    const record = f.keys.term;
    if (record === null) return refuse('no primary known on etcd (no term record); nothing to switch over from');
    const primary = record.value.primary;
    if (want !== null && this.noFailover.has(want)) return refuse(noFailoverRefusal(want));
    let to: NodeId;
    let chosen = '';
    if (want !== null) {
      to = want;
    } else if (this.nodes.length <= 2) {
      to = this.nodes.find((n) => n !== primary) ?? primary;
    } else {
      // More than two nodes: the best live standby, by the failover's ranking.
      const best = bestStandby(this.view(0).nodes, primary);
      if (!best.ok) return refuse(best.why);
      to = best.node;
      chosen = ` (the best live standby: ${describeCandidate(best.view)})`;
    }
    if (to === primary) return refuse(`${to} is already the primary`);
    if (f.keys.leader === null) return refuse(`no leader key on etcd: ${primary} does not hold term ${record.value.term} now, so nobody would take the switchover key`);
    const blocker = this.#readiness(to);
    if (blocker !== null) return refuse(blocker);
    if (delayMs > 0) return this.#schedule(to, delayMs, by);
    const r = await this.#d.port.requestSwitchover({ to, requestedBy: by.slice(0, 128), after: record });
    if (!r.ok) return refuse(`the switchover key was not written: ${r.why}`);
    this.#switchoverSeen = { to, term: record.value.term };
    await this.refresh();
    return { verdict: { ok: true, message: `switchover to ${to}${chosen} requested: the switchover key names term ${record.value.term} on etcd; ${primary} takes it and hands over` }, sends: NEUTRAL_SENDS };
  }

  /**
   * `pgvip restart` on etcd: asked of the node's agent once, as in witness mode (core/agent/restart.ts).
   * The observer holds nothing: the agent holds its own failure handling until PostgreSQL is back or
   * the deadline, and a restarting primary keeps renewing its leader key, so no campaign can win
   * while the key lives (the standby's own checks hold for a primary that says it is restarting).
   * Refused unless the primary holds its key in the term record's term and no switchover is pending.
   */
  async #restart(node: NodeId, timeoutMs: number, by: string): Promise<OperatorResult> {
    const refuse = (message: string): OperatorResult => ({ verdict: { ok: false, message }, sends: NEUTRAL_SENDS });
    if (!this.nodes.includes(node)) return refuse(`${node} is not a node of ${this.name}`);
    const now = this.#d.clock.monotonicMs();
    const running = this.#restarting;
    if (running !== null && now < running.untilMs) {
      return refuse(`a planned restart of ${running.node} is still running (${Math.ceil((running.untilMs - now) / 1000)} s left)`);
    }
    const f = await this.#fresh();
    if ('why' in f) return refuse(f.why);
    const record = f.keys.term?.value;
    if (record === undefined) return refuse('no primary known on etcd yet (no term record); nothing is held for a restart before the cluster has one');
    const leader = f.keys.leader?.value;
    if (leader === undefined || leader.node !== record.primary || leader.term !== record.term) {
      return refuse(`${record.primary} does not hold its leader key in term ${record.term} now: a restart needs the primary's lease renewed throughout`);
    }
    if (f.keys.switchover !== null) return refuse(`a switchover to ${f.keys.switchover.value.to} is pending`);
    if (this.#polled.get(node)?.status == null) return refuse(`${node} is unreachable`);
    const msg: PeerRequest = { v: PROTOCOL_VERSION, cluster: this.name, term: record.term, from: this.#d.self, kind: 'restart-request', to: node, timeoutMs };
    const role = node === record.primary ? 'the primary' : 'the standby';
    const message = `planned restart of ${node} (${role}) asked of its agent in term ${record.term}; it holds its failure handling for at most ${Math.round(timeoutMs / 1000)} s`;
    const r = {
      node, term: record.term, timeoutMs, untilMs: now + timeoutMs, accepted: false, seenRestarting: false, by,
    };
    this.#restarting = r;
    const sends = this.#send(node, msg).then((o) => {
      if (this.#restarting !== r) return [o];
      if (o.ok) {
        r.accepted = true;
        this.record('planned-restart', node, `${node} is restarting postgresql (asked for by ${by}); it holds its failure handling for at most ${Math.round(timeoutMs / 1000)} s`);
      } else {
        this.#restarting = null;
        this.record('planned-restart', node, `${node} did not take the planned restart asked for by ${by}: ${o.detail}`);
      }
      return [o];
    });
    return { verdict: { ok: true, message }, sends };
  }

  /** After each poll: the restart is over once the node, seen restarting, is back in its role; or at its deadline. */
  #watchRestart(node: NodeId, status: AgentStatus | null, now: number): void {
    const r = this.#restarting;
    if (r === null || r.node !== node) return;
    if (status?.restarting === true) r.seenRestarting = true;
    const back = status !== null && status.restarting !== true && status.pg.running
      && (status.role === 'primary' || status.role === 'standby');
    if (r.accepted && r.seenRestarting && back) {
      this.#restarting = null;
      this.record('planned-restart', node, `${node} is back as ${status.role} after its planned restart`);
    } else if (now >= r.untilMs || this.term !== r.term) {
      this.#restarting = null;
      this.record('planned-restart', node, back
        ? `${node} is running as ${status.role} after its planned restart`
        : `the planned restart of ${node} did not finish within ${Math.round(r.timeoutMs / 1000)} s: it is handled as a failure from now on`);
    }
  }

  /** Holds a switchover until it is due (a later request replaces it, as in witness mode). */
  #schedule(to: NodeId, delayMs: number, by: string): OperatorResult {
    if (this.#scheduled !== null) clearTimeout(this.#scheduled.timer);
    const timer = setTimeout(() => void this.#due(), delayMs);
    this.#scheduled = { to, by, atMs: this.#d.clock.monotonicMs() + delayMs, timer };
    const message = `switchover to ${to} scheduled in ${Math.round(delayMs / 1000)} s: the witness writes the switchover key on etcd then`;
    return { verdict: { ok: true, message }, sends: NEUTRAL_SENDS };
  }

  async #due(): Promise<void> {
    const s = this.#scheduled;
    if (s === null || this.#closed) return;
    this.#scheduled = null;
    const r = await this.#switchover(s.to, 0, s.by);
    const detail = `scheduled switchover to ${s.to} by ${s.by}: ${r.verdict.ok ? '' : 'refused: '}${r.verdict.message}`;
    this.#log.info({ term: this.term, ok: r.verdict.ok }, detail);
    // Written: the switchover event comes when the term moves. Refused: the operator hears of it now.
    this.record(r.verdict.ok ? 'operator-command' : 'switchover', s.to, detail);
  }

  /** Why `node` cannot take a switchover now, from its agent's answer or, failing that, its status on etcd. */
  #readiness(node: NodeId): string | null {
    const st = this.#polled.get(node)?.status ?? null;
    if (st?.withdrawn === true) return `${node} is not ready: it stopped its WAL receiver for an election`;
    if (st !== null) return st.promotionBlocker === null ? null : `${node} is not ready: ${st.promotionBlocker}`;
    const m = this.#members.find((x) => x.value.node === node)?.value;
    if (m === undefined) return `${node} is unreachable (its agent does not answer the witness and publishes no status on etcd)`;
    return m.promotionBlocker === null ? null : `${node} is not ready: ${m.promotionBlocker}`;
  }

  /** What #failover checks before its txn, on a fresh read of etcd; nothing is written. */
  async checkFailover(want: NodeId | null, _by: string): Promise<Verdict> {
    if (this.#closed) return { ok: false, message: 'the witness is shutting down' };
    const plan = await this.#failoverPlan(want);
    if ('why' in plan) return { ok: false, message: plan.why };
    const term = termAfter(plan.keys.term?.value.term ?? 0);
    if (term === null) return { ok: false, message: termBoundReached };
    return { ok: true, message: `etcd answers; ${plan.to} would be forced to primary in term ${term} (data loss accepted)` };
  }

  /** The node a forced failover promotes, on a fresh read of etcd, or why there is none. */
  async #failoverPlan(want: NodeId | null): Promise<{ to: NodeId; keys: EtcdKeys } | { why: string }> {
    const f = await this.#fresh();
    if ('why' in f) return f;
    const primary = f.keys.term?.value.primary ?? null;
    if (want !== null && this.noFailover.has(want)) return { why: noFailoverRefusal(want) };
    if (want === null && this.nodes.length > 2) {
      // A forced failover may lose writes: with more than one standby the operator names the node.
      const best = bestStandby(this.view(0).nodes, primary);
      const hint = best.ok ? `; the best live standby now is ${best.node} (${describeCandidate(best.view)})` : '';
      return { why: `${this.name} has ${this.nodes.length} nodes: name the node to promote with --to${hint}` };
    }
    const to = want ?? (primary === null ? null : this.nodes.find((n) => n !== primary) ?? null);
    if (to === null) return { why: 'name the node to promote with --to' };
    return { to, keys: f.keys };
  }

  async #failover(want: NodeId | null, by: string): Promise<OperatorResult> {
    const refuse = (message: string): OperatorResult => ({ verdict: { ok: false, message }, sends: NEUTRAL_SENDS });
    const plan = await this.#failoverPlan(want);
    if ('why' in plan) return refuse(plan.why);
    const { to, keys } = plan;
    const record = keys.term;
    // More than two nodes: the new term names its grantors, the standbys whose grants its primary
    // counts and which alone may campaign in it (two nodes keep the old record form).
    // Loaded as etcd-connect.ts loads the observer: the witness loads etcd's code only on etcd.
    const { grantorsOf } = await import('@pgvip/agent/quorum/etcd');
    const grantors = this.nodes.length > 2
      ? grantorsOf(this.nodes.map((id) => ({ id, noFailover: this.noFailover.has(id) })), to)
      : undefined;
    const r = await this.#d.port.forceFailover({ to, after: record, ...(grantors === undefined ? {} : { grantors }) });
    if (!r.ok) return refuse(`the forced failover txn was refused: ${r.why}`);
    this.#forcedHere = { to, term: r.term };
    const held = keys.leader === null ? '' : `, the leader key of ${keys.leader.value.node} deleted`;
    const message = `forcing ${to} to primary in term ${r.term} (data loss accepted): the term record names it on etcd${held}`;
    const msg: PeerRequest = { v: PROTOCOL_VERSION, cluster: this.name, term: r.term, from: this.#d.self, kind: 'manual-promote', acceptDataLoss: true, requestedBy: by.slice(0, 200) };
    await this.refresh();
    return { verdict: { ok: true, message }, sends: this.#send(to, msg).then((o) => [o]) };
  }

  async #send(to: NodeId, msg: PeerRequest): Promise<SendOutcome> {
    try {
      const reply = await this.#d.peers.send(to, msg);
      if (reply.from !== to || reply.cluster !== this.name) return { to, kind: msg.kind, ok: false, detail: `${to} answered as ${reply.from} of ${reply.cluster}` };
      const accepted = reply.kind === 'ack' ? reply.accepted : reply.granted;
      return { to, kind: msg.kind, ok: accepted, detail: `${to} ${accepted ? 'accepted' : 'refused'}: ${reply.reason}` };
    } catch (e) {
      const why = e instanceof PgvipError ? e.message : String(e);
      this.#log.warn({ err: e, to, kind: msg.kind }, `sending ${msg.kind} to ${to} failed`);
      return { to, kind: msg.kind, ok: false, detail: `${to} did not answer: ${why}` };
    }
  }
}

/** The standby known to hold every acknowledged write: a member of a claim every member keeps (k = n). */
function holdsEverything(record: { readonly members: readonly NodeId[]; readonly k: number } | null): NodeId | null {
  if (record === null || record.k === 0 || record.k < record.members.length) return null;
  return record.members[0] ?? null;
}

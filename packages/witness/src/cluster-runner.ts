// One cluster's shell around the witness core. It owns the core state and is the only place that
// feeds it: polls, peer requests, replies to the witness's own sends, operator commands. Each input
// is one synchronous step, so steps of a cluster never interleave, and its output runs group by group
// in the order core/actions.ts fixes (through core/execute.ts):
//
//   persist        first, and on disk (fsync) before anything else of the same step happens: a vote
//                  or a new term is never answered or acted on before it is durable. If it cannot be
//                  written, the whole step is discarded: the old state stays in force, nothing is sent.
//   replies        returned to the HTTP handler that delivered the request.
//   sends          through the signed peer client; the peer's reply comes back as a `reply` input.
//   notifications  recorded in the history and handed to the notifier, which never blocks.
import type { Logger } from 'pino';
import {
  PgvipError,
  bootWitness,
  executeStep,
  stepWitness,
  type ClusterConfig,
  type NodeId,
  type OperatorCommand,
  type PeerClient,
  type PeerReply,
  type PeerRequest,
  type AgentStatus,
  type WitnessDurable,
  type WitnessInput,
  type WitnessOutput,
  type WitnessState,
} from '@pgvip/shared';
import type { Clock } from './clock.js';
import type { Notifier, PgvipEvent } from './events.js';
import type { History } from './history.js';
import type { ClusterMetricsSnapshot, WitnessMetrics } from './metrics.js';
import { nodePair, recordEvent, type ClusterService } from './cluster-service.js';
import type { WitnessStateStore } from './state-store.js';
import type { EtcdObserverPort } from '@pgvip/agent/quorum/etcd';
import { freshMs, seedEtcd, type MoveVerdict } from './quorum-move.js';
import { clusterView, type ClusterView } from './view.js';

export interface ClusterRunnerDeps {
  readonly cluster: ClusterConfig;
  /** This witness's node id. */
  readonly self: NodeId;
  readonly store: WitnessStateStore;
  readonly peers: PeerClient;
  readonly history: History;
  readonly notifier: Notifier;
  readonly metrics: WitnessMetrics;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * A client of the etcd the cluster's quorum.etcd block names, opened for `pgvip etcd seed` and
   * closed after it; absent when the block is not set.
   */
  readonly etcd?: () => Promise<EtcdObserverPort>;
}

/** How a send triggered by a step ended: the peer's answer, or why there was none. */
export interface SendOutcome {
  readonly to: NodeId;
  readonly kind: PeerRequest['kind'];
  readonly ok: boolean;
  readonly detail: string;
}

/** Accepted or refused, and why. */
export interface Verdict {
  readonly ok: boolean;
  readonly message: string;
}

export interface OperatorResult {
  /** The core's verdict: accepted or refused, and why. */
  readonly verdict: Verdict;
  /** The sends the command caused (switchover request, manual promote), once they are answered. */
  readonly sends: Promise<SendOutcome[]>;
}

const NEUTRAL_SENDS: Promise<SendOutcome[]> = Promise.resolve([]);

export class ClusterRunner implements ClusterService {
  readonly name: string;
  readonly nodes: readonly [NodeId, NodeId];
  #state: WitnessState;
  readonly #d: ClusterRunnerDeps;
  readonly #log: Logger;
  /** Whether each agent answered its last status poll (the core keeps the last status, not this). */
  readonly #reachable = new Map<NodeId, boolean>();
  #closed = false;

  constructor(deps: ClusterRunnerDeps) {
    const c = deps.cluster;
    this.#d = deps;
    this.name = c.name;
    this.nodes = nodePair(c);
    this.#log = deps.log;
    const durable = deps.store.durable(c.name);
    const settings = {
      cluster: c.name, self: deps.self, nodes: this.nodes, timings: c.timings, replication: c.replication.mode,
      lagBytesMax: BigInt(c.replication.lagBytesMax), failoverMinIntervalMs: c.failover.minIntervalMs,
      nodeHoldDownMs: c.notifications.nodeHoldDownMs,
    };
    this.#state = bootWitness(
      settings,
      durable,
      deps.clock.monotonicMs(),
    );
    deps.metrics.addCluster(c.name, this.nodes, () => this.metricsSnapshot());
  }

  get state(): WitnessState {
    return this.#state;
  }

  get durable(): WitnessDurable {
    return this.#state.durable;
  }

  get term(): number {
    return this.#state.durable.term;
  }

  get primaryOfTerm(): NodeId | null {
    return this.#state.durable.primaryOfTerm;
  }

  get pendingSwitchoverTo(): NodeId | null {
    return this.#state.switchover?.to ?? null;
  }

  /** The result of one poll of one node. */
  poll(node: NodeId, status: AgentStatus | null, pgReachable: boolean): void {
    if (this.#closed) return;
    this.#reachable.set(node, status !== null);
    try {
      this.#run({ kind: 'poll', nowMs: this.#d.clock.monotonicMs(), node, status, pgReachable });
    } catch (e) {
      // The step was discarded (its state could not be persisted); the next poll tries again.
      this.#log.error({ err: e, term: this.#state.durable.term, node }, 'poll step failed; state unchanged');
    }
  }

  /**
   * A verified request from an agent of this cluster; returns the reply to send back. Throws a
   * PgvipError when the step could not be made durable (the request is then answered with an error,
   * never with a decision that is not on disk).
   */
  request(msg: PeerRequest, peerLeaseValidMs?: number): PeerReply {
    if (this.#closed) throw new PgvipError('PGVIP_INTERNAL', 'the witness is shutting down');
    const { replies } = this.#run({ kind: 'request', nowMs: this.#d.clock.monotonicMs(), msg, peerLeaseValidMs });
    const [reply, ...extra] = replies;
    if (reply === undefined || extra.length > 0) {
      throw new PgvipError('PGVIP_INTERNAL', `the witness core produced ${replies.length} replies to one ${msg.kind}`);
    }
    return reply;
  }

  /** An operator command; the verdict is the core's. Throws PgvipError when it could not be persisted. */
  operator(command: OperatorCommand): OperatorResult {
    if (this.#closed) throw new PgvipError('PGVIP_INTERNAL', 'the witness is shutting down');
    const { out, sends } = this.#run({ kind: 'operator', nowMs: this.#d.clock.monotonicMs(), command });
    const verdict = out.verdict ?? { ok: false, message: 'the witness core gave no verdict' };
    return { verdict, sends: sends.length === 0 ? NEUTRAL_SENDS : Promise.all(sends) };
  }

  /**
   * The core's verdict on a forced failover, stepped on the current state and thrown away: nothing is
   * persisted, sent or recorded. The step is the one operator() would take now.
   */
  checkFailover(to: NodeId | null, by: string): Verdict {
    if (this.#closed) return { ok: false, message: 'the witness is shutting down' };
    const command: OperatorCommand = { kind: 'failover', to, acceptDataLoss: true, by };
    const out = stepWitness(this.#state, { kind: 'operator', nowMs: this.#d.clock.monotonicMs(), command });
    return out.verdict ?? { ok: false, message: 'the witness core gave no verdict' };
  }

  /** `pgvip etcd seed` (quorum-move.ts): etcd's term record gets this witness's term and primary. */
  async moveQuorum(to: 'etcd' | 'witness', by: string): Promise<MoveVerdict> {
    if (to === 'witness') return { ok: false, message: `${this.name} already keeps its quorum on this witness (quorum.backend: witness)` };
    const connect = this.#d.etcd;
    if (connect === undefined) return { ok: false, message: `not seeded: ${this.name} has no quorum.etcd block in the witness's config; add it (with backend: witness) and restart the witness` };
    const t = this.#d.cluster.timings;
    const now = this.#d.clock.monotonicMs();
    const seen = (node: NodeId) => {
      const v = this.#state.views[node];
      return { status: v?.status ?? null, seenMsAgo: v?.lastSeenAtMs == null ? null : now - v.lastSeenAtMs };
    };
    const port = await connect();
    try {
      return await seedEtcd(this.#state, seen, port, by, freshMs(t.heartbeatMs, t.requestTimeoutMs));
    } finally {
      await port.close();
    }
  }

  /** Records an event of the shell's own (start, operator command, failed notification). */
  record(type: string, node: NodeId | null, detail: string, who?: Pick<PgvipEvent, 'operator' | 'operatorClaimed'>): PgvipEvent {
    return recordEvent(this.#d, { cluster: this.name, type, node, term: this.#state.durable.term, detail }, who);
  }

  view(eventCount = 10): ClusterView {
    const c = this.#d.cluster;
    return clusterView(this.#state, {
      nowMs: this.#d.clock.monotonicMs(),
      reachable: this.#reachable,
      vip: { address: c.vip.address, mode: c.vip.mode },
      events: this.#d.history.recent(this.name, eventCount),
      identities: new Map(
        c.nodes.map((n) => {
          const hosts = [...new Set([n.agent.host, n.postgres.host])];
          return [n.id, { hosts, instanceId: n.vip?.instanceId ?? null }];
        }),
      ),
    });
  }

  metricsSnapshot(): ClusterMetricsSnapshot {
    const v = this.view(0);
    return {
      cluster: v.cluster,
      term: v.term,
      primary: v.primary,
      nodes: v.nodes.map((n) => ({ node: n.node, reachable: n.reachable, pgReachable: n.pgReachable })),
      promiseRemainingMs: v.promiseRemainingMs,
      maintenance: v.maintenance,
      syncDegraded: this.#d.cluster.replication.mode === 'sync' && v.primary !== null && v.syncEligible === null,
    };
  }

  /** Stops feeding the core: late replies to earlier sends are dropped. */
  close(): void {
    this.#closed = true;
  }

  #run(input: WitnessInput): { out: WitnessOutput; replies: PeerReply[]; sends: Promise<SendOutcome>[] } {
    const before = this.#state;
    const out = stepWitness(before, input);
    const replies: PeerReply[] = [];
    const sends: Promise<SendOutcome>[] = [];
    // core/execute.ts: persist first; if it throws (PGVIP_STATE_WRITE), this step never happened:
    // the old state stays in force, nothing is answered or sent, and the error goes to the caller.
    executeStep(out, (state) => {
      this.#state = state;
      this.#logStep(input, out);
      this.#count(input, before, out);
    }, {
      persist: (state) => {
        try {
          this.#d.store.save(this.name, state);
        } catch (e) {
          this.#d.metrics.stateWriteFailed(this.name);
          throw e;
        }
      },
      reply: (msg) => replies.push(msg),
      send: (to, msg) => sends.push(this.#send(to, msg)),
      notify: (event, detail) => this.#notify(event, detail, input, before, out.state),
      // The witness has no effects to run; the core never asks for one here.
      effect: (_id, effect) => {
        this.#log.error({ term: out.state.durable.term, effect: effect.kind }, 'witness core asked for an effect; ignored');
      },
    });
    return { out, replies, sends };
  }

  async #send(to: NodeId, msg: PeerRequest): Promise<SendOutcome> {
    const log = this.#log.child({ to, kind: msg.kind });
    try {
      const reply = await this.#d.peers.send(to, msg);
      // The transport proved who signed the reply; its body must speak for the same node and cluster.
      if (reply.from !== to || reply.cluster !== this.name) {
        log.warn({ term: this.#state.durable.term, replyFrom: reply.from, replyCluster: reply.cluster }, 'reply speaks for another node or cluster; ignored');
        return { to, kind: msg.kind, ok: false, detail: `${to} answered as ${reply.from} of ${reply.cluster}` };
      }
      if (!this.#closed) {
        try {
          this.#run({ kind: 'reply', nowMs: this.#d.clock.monotonicMs(), msg: reply, inReplyTo: msg.kind });
        } catch (e) {
          log.error({ err: e, term: this.#state.durable.term }, 'reply step failed; state unchanged');
        }
      }
      // Every reply kind carries a decision and its reason (ack: accepted; the others: granted).
      const accepted = reply.kind === 'ack' ? reply.accepted : reply.granted;
      return { to, kind: msg.kind, ok: accepted, detail: `${to} ${accepted ? 'accepted' : 'refused'}: ${reply.reason}` };
    } catch (e) {
      const why = e instanceof PgvipError ? e.message : String(e);
      log.warn({ err: e, term: this.#state.durable.term }, `sending ${msg.kind} to ${to} failed`);
      return { to, kind: msg.kind, ok: false, detail: `${to} did not answer: ${why}` };
    }
  }

  #notify(event: string, detail: string, input: WitnessInput, before: WitnessState, after: WitnessState): void {
    const history = this.#d.history.append({
      cluster: this.name,
      type: event,
      node: eventNode(event, input, before, after),
      term: after.durable.term,
      detail,
    });
    this.#d.notifier.notify(history);
  }

  /** The core says whether a step was routine (nothing decided, persisted or notified): debug, else info. */
  #logStep(input: WitnessInput, out: WitnessOutput): void {
    const fields = { term: out.state.durable.term, input: input.kind };
    if (out.routine) this.#log.debug(fields, out.reason);
    else this.#log.info(fields, out.reason);
  }

  #count(input: WitnessInput, before: WitnessState, out: WitnessOutput): void {
    const m = this.#d.metrics;
    if (input.kind === 'poll') {
      const was = before.views[input.node]?.failedChecks ?? 0;
      const now = out.state.views[input.node]?.failedChecks ?? 0;
      if (now > was) m.checkFailed(this.name, input.node);
    }
    for (const r of out.replies) if (r.msg.kind === 'vote-reply') m.vote(this.name, r.msg.granted);
    for (const n of out.notifications) {
      // A vote while some node was primary replaces it: an automatic failover. The first vote
      // of a new cluster (no primary yet) is a bootstrap, not a failover.
      if (n.event === 'vote-granted' && before.durable.primaryOfTerm !== null) m.failover(this.name, 'automatic');
      if (n.event === 'manual-failover') m.failover(this.name, 'manual');
      m.event(this.name, n.event);
    }
  }
}

/** Which node an event is about, from the step that raised it. */
function eventNode(event: string, input: WitnessInput, before: WitnessState, after: WitnessState): NodeId | null {
  switch (event) {
    case 'vote-granted':
    case 'manual-failover':
      return after.durable.primaryOfTerm;
    case 'switchover':
      return before.switchover?.to ?? null;
    case 'maintenance':
      return null;
    case 'sync-degraded':
    case 'sync-restored':
      return input.kind === 'request' && input.msg.kind === 'sync-update' && input.msg.change !== 'record' ? input.msg.standby : null;
  }
  switch (input.kind) {
    case 'poll':
      return input.node;
    case 'request':
    case 'reply':
      return input.msg.from;
    case 'operator':
      return null;
  }
}

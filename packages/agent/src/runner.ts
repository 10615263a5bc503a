// The agent's shell around the decision core: it observes PostgreSQL and the peer every heartbeat,
// feeds the core, and carries out what the core returns through core/execute.ts: persist (fsync)
// first, then the replies, sends, effects (whose results come back as inputs) and fire-and-forget
// notifications in the order the core wrote them. All core steps run one at a time on the event loop.
import type { Logger } from 'pino';
import {
  agentRole,
  agentStatus,
  leaseRemainingMs,
  leaseValidUntilMs,
  executeStep,
  renewalWaitBoundMs,
  receiverSilenceMs,
  stepAgent,
  type AgentDurable,
  type AgentInput,
  type AgentOutput,
  type AgentState,
  type AgentStatus,
  type PeerReply,
  type PeerRequest,
  type PgSnapshot,
} from '@pgvip/shared/core';
import { PgvipError, agentEventNames, type AgentEventName, type DurableFile, type PeerClient } from '@pgvip/shared';
import type { MonotonicClock } from './clock.js';
import { CommitGuardArmer, type CommitGuardMode } from './commit-guard-armer.js';
import { runEffect, type EffectPorts } from './effects.js';
import { AgentEventLog } from './event-log.js';
import type { AsyncHookEvent, HookContext, HookPort } from './hooks/hooks.js';
import { ROLES, type AgentMetrics, type LeaseRenewalResult } from './metrics.js';
import { replyAges, ReplicaReplies, ReplyWatch, SyncCatchUp, toSnapshot, toWriteProbe } from './pg-snapshot.js';
import type { WriteProbeResult } from './postgres/port.js';
import type { QuorumRoute } from './quorum/route.js';
import type { LoopKeepAlive } from './watchdog.js';

/** How often the primary looks at its standby while a switchover waits for it to catch up. */
export const switchoverCatchUpPollMs = 50;

/** Effects that touch only the VIP: every other one may change what PostgreSQL reports. */
const vipOnlyEffects: ReadonlySet<string> = new Set(['drop-vip-local', 'move-vip-cloud', 'add-vip-local', 'verify-vip']);

export interface RunnerDeps {
  readonly initial: AgentState;
  readonly ports: EffectPorts;
  readonly peers: PeerClient;
  readonly stateFile: DurableFile<AgentDurable>;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly clock: MonotonicClock;
  /** Called when durable state cannot be written: continuing could break I2, so the process must stop. */
  readonly onFatal: (err: Error) => void;
  /** fencing.commitGuard (default 'auto': arm PostgreSQL's commit guard when it has one). */
  readonly commitGuard?: CommitGuardMode;
  /** The hooks of the agent config (docs/hooks.md); none when absent. */
  readonly hooks?: HookPort;
  /**
   * Told after every heartbeat that ran to its end (systemd's watchdog, watchdog.ts): a heartbeat
   * stuck in an await tells it nothing more, though timers still fire.
   */
  readonly keepAlive?: LoopKeepAlive;
  /**
   * The quorum, when it is not a witness daemon (etcd): every message the core sends to its id is
   * answered through it instead of over HTTP (quorum/route.ts).
   */
  readonly quorum?: QuorumRoute;
}

export class AgentRunner {
  #s: AgentState;
  readonly #d: RunnerDeps;
  #timer: NodeJS.Timeout | null = null;
  /** When #timer fires (this agent's clock). */
  #timerDueAtMs = Infinity;
  /** Notices that this process did not run for a while (see #watchPauses). */
  #pauseWatch: NodeJS.Timeout | null = null;
  #pauseWatchAtMs = 0;
  #stopped = false;
  #ticking = false;
  #probe: Promise<void> | null = null;
  #probeResult: WriteProbeResult | null = null;
  #lastSnapshot: PgSnapshot | null = null;
  /** PostgreSQL's pending_restart (any setting), as last observed; null until known. */
  #pendingRestart: boolean | null = null;
  readonly #replies = new ReplyWatch();
  /** Every standby's replies, for the snapshot's replicas (N nodes). */
  readonly #replicaReplies = new ReplicaReplies();
  readonly #catchUp = new SyncCatchUp();
  /** Effects on PostgreSQL finished so far: a look begun before one finished may be out of date. */
  #pgChanges = 0;
  /** #pgChanges as of the last look PostgreSQL answered (#lastSnapshot shows the server from then). */
  #viewChanges = 0;
  #lastReason = '';
  #lastTickAtMs: number;
  #schemaReady = false;
  readonly #guard: CommitGuardArmer;
  /** When the before-promote hook last vetoed (paces the retries). */
  #lastVetoAtMs = -Infinity;
  /**
   * The quorum's term record has been read and stepped in since this process started (always, with a
   * quorum that has none to read: the witness). Until then no lease request goes to the peer.
   */
  #quorumTermKnown: boolean;
  /** The next read of the quorum's term record, and the bound on waiting for the first. */
  #termRetry: NodeJS.Timeout | null = null;
  #termBound: NodeJS.Timeout | null = null;
  /** This agent's own events, which the witness pulls for its notification channels (protocol v2). */
  readonly events: AgentEventLog;
  readonly #ports: EffectPorts;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#s = deps.initial;
    this.#lastTickAtMs = deps.clock();
    this.#quorumTermKnown = deps.quorum?.termAtStart === undefined;
    this.events = new AgentEventLog(deps.clock);
    this.#ports = { ...deps.ports, onReseed: (detail) => this.#agentEvent('reseed-fallback', detail) };
    this.#guard = new CommitGuardArmer({ pg: deps.ports.pg, logger: deps.logger.child({ component: 'commit-guard' }), clock: deps.clock, mode: deps.commitGuard ?? 'auto' });
  }

  get state(): AgentState {
    return this.#s;
  }

  /** When the decision loop last finished a round (GET /liveness); the runner's creation before the first. */
  get lastTickAtMs(): number {
    return this.#lastTickAtMs;
  }

  status(): AgentStatus {
    const status = agentStatus({ ...this.#s, nowMs: this.#d.clock() });
    return this.#pendingRestart === null ? status : { ...status, pendingRestart: this.#pendingRestart };
  }

  start(): void {
    this.#d.logger.info({ term: this.#s.durable.term, primaryOfTerm: this.#s.durable.primaryOfTerm }, 'agent loop started');
    if (this.#quorumTermKnown) this.#schedule(0);
    else this.#startAfterQuorumTerm();
    this.#pauseWatchAtMs = this.#d.clock();
    this.#pauseWatch = setInterval(() => this.#watchPauses(), this.#s.settings.timings.heartbeatMs);
  }

  /**
   * On etcd (docs/design.md, Quorum on etcd, "The agent's start"): the term record is read and stepped
   * in before the first tick, so an agent that died after its switchover's handover txn committed and
   * before it persisted the next term never acts in the old one. etcd unreachable: the ticks start once
   * the read failed (each etcd call ends by requestTimeoutMs; the timer below bounds it even if one
   * did not), and the read is tried again every heartbeat. Meanwhile no lease request goes to the
   * peer, so a primary renews only through etcd, which refuses a term it moved past: it stays fenced.
   */
  #startAfterQuorumTerm(): void {
    const t = this.#s.settings.timings;
    const startedAtMs = this.#d.clock();
    let ticking = false;
    const firstTick = (): void => {
      if (ticking) return;
      ticking = true;
      if (this.#termBound !== null) clearTimeout(this.#termBound);
      this.#schedule(0);
    };
    this.#termBound = setTimeout(firstTick, t.requestTimeoutMs + t.heartbeatMs);
    const attempt = async (first: boolean): Promise<void> => {
      const quorum = this.#d.quorum;
      if (quorum?.termAtStart === undefined) return;
      const r = await quorum.termAtStart().catch((e: unknown) => ({ ok: false as const, why: String(e) }));
      if (this.#stopped) return;
      if (r.ok) {
        this.#quorumTermKnown = true;
        this.#learnedQuorumTerm(r.reply, r.detail, first ? null : this.#d.clock() - startedAtMs);
      } else if (first) {
        this.#d.logger.warn(
          { quorum: quorum.id, why: r.why },
          `${quorum.id} did not answer at start (${r.why}): until it does, this node asks its standby for no lease, so as ` +
            `primary it stays fenced; asked again every heartbeat (docs/etcd.md, "The agent's start")`,
        );
      } else {
        this.#d.logger.debug({ quorum: quorum.id, why: r.why }, 'the quorum\'s term record still unread');
      }
      firstTick();
      if (!r.ok) this.#termRetry = setTimeout(() => void attempt(false), t.heartbeatMs);
    };
    void attempt(true);
  }

  /** The quorum's term record, read: stepped in as its reply (the core adopts a newer term, persisted first). */
  #learnedQuorumTerm(reply: PeerReply, detail: string, lateMs: number | null): void {
    const before = this.#s.durable;
    this.#step({ kind: 'reply', nowMs: this.#d.clock(), msg: reply });
    const after = this.#s.durable;
    const log = { quorum: reply.from, record: detail, term: after.term, primaryOfTerm: after.primaryOfTerm };
    const late = lateMs === null ? '' : ` after ${Math.round(lateMs)} ms; the standby is asked for leases again`;
    if (after.term > before.term) {
      this.#d.logger.warn(log, `${reply.from}'s term record at start (${detail}) is past this node's term ${before.term}: adopted term ${after.term}${late}`);
    } else if (reply.term < before.term) {
      this.#d.logger.error(
        log,
        `${reply.from}'s term record (${detail}) is below this node's term ${before.term}: was etcd restored from an older backup, ` +
          `or is its prefix new? No campaign can win until an operator moves the term record forward (docs/etcd.md)${late}`,
      );
    } else {
      this.#d.logger.info(log, `${reply.from}'s term record at start: ${detail}${late}`);
    }
  }

  /**
   * A timer that should fire every heartbeat and fires much later means the process did not run
   * (SIGSTOP, a frozen cgroup, a paused VM, a stalled event loop). On resume every overdue timer
   * fires at once, this one among the first: the core decides again right away — a primary whose
   * lease lapsed meanwhile fences now, not after the next tick's observations (which may wait for
   * a peer's timeout first).
   */
  #watchPauses(): void {
    const now = this.#d.clock();
    const gapMs = now - this.#pauseWatchAtMs;
    this.#pauseWatchAtMs = now;
    if (gapMs <= 2 * this.#s.settings.timings.heartbeatMs) return;
    this.#d.logger.warn({ pausedMs: Math.round(gapMs) }, `the agent did not run for ${Math.round(gapMs)} ms: deciding again before anything else`);
    this.#step({ kind: 'wake', nowMs: now, pausedMs: gapMs });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#pauseWatch !== null) clearInterval(this.#pauseWatch);
    if (this.#termRetry !== null) clearTimeout(this.#termRetry);
    if (this.#termBound !== null) clearTimeout(this.#termBound);
    await this.#probe;
    await this.#guard.idle();
  }

  /** A request from the witness or the peer; resolves with the core's reply (after any persist). */
  handleRequest(msg: PeerRequest, peerLeaseValidMs?: number): PeerReply {
    let reply: PeerReply | null = null;
    this.#step({ kind: 'request', nowMs: this.#d.clock(), msg, peerLeaseValidMs }, (r) => (reply = r));
    if (reply === null) throw new PgvipError('PGVIP_INTERNAL', `the core produced no reply to ${msg.kind}`);
    return reply;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timerDueAtMs = this.#d.clock() + delayMs;
    this.#timer = setTimeout(() => void this.#tick(), delayMs);
  }

  /**
   * A switchover that starts catching up (its fence took) looks at the standby within
   * switchoverCatchUpPollMs, not at the tick planned a heartbeat ahead before it began: writes are
   * down from the fence on, so up to a heartbeat of waiting would go straight into the write gap.
   */
  #hurryForSwitchover(): void {
    if (this.#ticking || this.#s.switchover?.step !== 'catching-up') return;
    const soonMs = Math.min(switchoverCatchUpPollMs, this.#s.settings.timings.heartbeatMs);
    if (this.#timerDueAtMs - this.#d.clock() <= soonMs) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#schedule(soonMs);
  }

  async #tick(): Promise<void> {
    const t = this.#s.settings.timings;
    const started = this.#d.clock();
    if (!this.#ticking) {
      this.#ticking = true;
      try {
        await this.#observeAndStep();
      } catch (e) {
        this.#d.logger.error({ err: e }, 'tick failed');
      } finally {
        this.#ticking = false;
      }
      this.#lastTickAtMs = this.#d.clock();
      this.#d.keepAlive?.alive();
    }
    // While a switchover waits for the standby to replay our final LSN, writes are down: look again
    // soon instead of a heartbeat later (the primary sends no lease renewals meanwhile).
    const periodMs = this.#s.switchover?.step === 'catching-up' ? Math.min(switchoverCatchUpPollMs, t.heartbeatMs) : t.heartbeatMs;
    this.#schedule(Math.max(0, periodMs - (this.#d.clock() - started)));
  }

  async #observeAndStep(): Promise<void> {
    const s = this.#s;
    const { settings } = s;
    const pgChangesBefore = this.#pgChanges;
    // Every other database node, polled together (with two nodes: the peer alone).
    const others = settings.nodes.map((n) => n.id).filter((id) => id !== settings.self);
    // A look at a stalled server must not hold the heartbeat (and the lease's renewal) past its bound.
    const lookMs = renewalWaitBoundMs(settings.timings);
    const [firstLook, ...statuses] = await Promise.all([
      this.#d.ports.pg.observe(lookMs),
      ...others.map((id) => this.#d.peers.status(id).catch((e: unknown) => {
        this.#d.metrics.checksFailed.inc({ check: 'peer' });
        this.#d.logger.debug({ err: e, node: id }, 'peer status failed');
        return null;
      })),
    ]);
    const peers: Record<string, AgentStatus | null> = {};
    others.forEach((id, i) => (peers[id] = statuses[i] ?? null));
    const peer = peers[settings.peer] ?? null;
    // An effect on PostgreSQL (a promotion above all) that finished while this look was under way has
    // already been stepped; the look may have read the server from before it (still in recovery) and
    // would then walk the role back: promoting again, its hooks run twice. Look once more.
    const changesSeen = this.#pgChanges;
    const obs = changesSeen === pgChangesBefore ? firstLook : await this.#d.ports.pg.observe(lookMs);
    if (obs.reachable) {
      this.#viewChanges = changesSeen;
    } else if (obs.errorCode === 'PGVIP_PG_TIMEOUT' && this.#viewChanges !== this.#pgChanges) {
      // A look that timed out stands in for the last view (toSnapshot), but not for one from before an
      // effect changed the server (a promotion, a fence): deciding on it would walk that change back.
      this.#d.logger.debug('PostgreSQL did not answer since it was last changed; deciding at the next look');
      return;
    }
    const snapshotContext = {
      peerName: this.#d.ports.names[settings.peer] ?? settings.peer,
      peerNode: settings.peer,
      streamFreshMs: receiverSilenceMs(settings.timings),
      previous: this.#lastSnapshot,
      replies: this.#replies,
      catchUp: this.#catchUp,
      nowMs: this.#d.clock(),
      // syncClaim, replicas and upstream, read for every node count (the core uses them with N nodes).
      nodes: { names: this.#d.ports.names, endpoints: this.#d.ports.endpoints, replies: this.#replicaReplies },
    };
    const pg = toSnapshot(obs, snapshotContext);
    const replyAgeMs = replyAges(obs, snapshotContext);
    if (!obs.reachable) this.#d.metrics.checksFailed.inc({ check: 'postgres' });
    // Kept from the last answer while the server is down (a restart is what would clear it).
    if (obs.reachable) this.#pendingRestart = obs.pendingRestart ?? null;
    this.#lastSnapshot = pg;
    this.#maybeStartProbe(pg);
    const probe = this.#probeResult;
    this.#probeResult = null;
    if (probe !== null && probe.outcome !== 'ok') this.#d.metrics.checksFailed.inc({ check: 'write-probe' });
    this.#step({
      kind: 'tick', nowMs: this.#d.clock(), pg, writeProbe: toWriteProbe(probe), peer, peers,
      ...(replyAgeMs === undefined ? {} : { replyAgeMs }),
    });
  }

  /** The write probe runs beside the ticks: a stalled one may outlive several heartbeats. */
  #maybeStartProbe(pg: PgSnapshot): void {
    const s = this.#s;
    if (this.#probe !== null || s.durable.primaryOfTerm !== s.settings.self || !pg.running || pg.inRecovery) return;
    const port = this.#d.ports.pg;
    this.#probe = this.#ensureSchema()
      .then(() => port.writeProbe(s.settings.timings.writeProbeTimeoutMs, { localCommit: true }))
      .then((r) => {
        this.#probeResult = r;
      })
      .finally(() => {
        this.#probe = null;
      });
  }

  /** The probe's heartbeat table is created once per process, on the first writable primary. */
  async #ensureSchema(): Promise<void> {
    if (this.#schemaReady) return;
    try {
      await this.#d.ports.pg.ensureSchema();
      this.#schemaReady = true;
    } catch (e) {
      // The probe that follows reports the same problem as a failed write; nothing more to do here.
      this.#d.logger.debug({ err: e }, 'could not create the heartbeat table');
    }
  }

  #step(input: AgentInput, respond?: (r: PeerReply) => void): void {
    const roleBefore = agentRole(this.#s);
    const out = stepAgent(this.#s, input);
    try {
      // core/execute.ts: persist first; a step whose persist fails never happened (not adopted,
      // nothing sent or started), and the agent stops: a node whose disk refuses its term can keep
      // no promise, and no action may run on a term that is not on disk.
      executeStep(out, () => this.#adopt(out, roleBefore), {
        persist: (state) => this.#d.stateFile.save(state),
        reply: (msg) => respond?.(msg),
        send: (to, msg) => this.#send(to, msg),
        effect: (id, effect) => this.#effect(id, effect),
        notify: (event, detail) => {
          this.#d.metrics.events.inc({ event });
          this.#d.logger.warn({ event, term: this.#s.durable.term }, detail);
          if (isAgentEventName(event)) this.events.record(event, this.#s.durable.term, detail);
        },
      });
    } catch (e) {
      this.#d.onFatal(e as Error);
      return;
    }
    this.#armCommitGuard();
  }

  /** The step's state is in force (its persist, if any, is on disk): hooks, log line, gauges. */
  #adopt(out: AgentOutput, roleBefore: string): void {
    this.#s = out.state;
    const roleAfter = agentRole(out.state);
    if (roleAfter !== roleBefore) this.#hook('on-role-change', `role ${roleBefore} → ${roleAfter}: ${out.reason}`, roleBefore);
    // The core says whether a step was routine (nothing decided, persisted or notified): debug level.
    if (!out.routine && out.reason !== this.#lastReason) {
      this.#d.logger.info({ term: out.state.durable.term, role: agentRole(out.state) }, out.reason);
    } else {
      this.#d.logger.debug({ term: out.state.durable.term }, out.reason);
    }
    this.#lastReason = out.reason;
    this.#updateGauges();
    this.#hurryForSwitchover();
  }

  /**
   * PostgreSQL's commit guard follows the lease: armed with its end at every renewal, and with the
   * vote that wins a term, so it is armed before the promotion that follows (docs/design.md, "Terms, leases, votes").
   */
  #armCommitGuard(): void {
    const s = this.#s;
    this.#guard.update(leaseRemainingMs(s) > 0 ? leaseValidUntilMs(s) : null);
  }

  #send(to: string, msg: PeerRequest): void {
    // Lease renewals are counted per grantor, so an operator sees a failing quorum or peer while the
    // other still keeps the lease alive (deploy/prometheus alerts on it). The quorum counts as
    // "witness" whether it is the witness or etcd, so the alerts hold on both backends; every standby
    // (one with two nodes) counts as "peer".
    const toQuorum = to === this.#s.settings.quorum.id;
    const grantor = toQuorum ? 'witness' : 'peer';
    const renewal = msg.kind === 'lease-request' ? (result: LeaseRenewalResult) => this.#d.metrics.leaseRenewals.inc({ grantor, result }) : null;
    const quorum = this.#d.quorum;
    // Until the quorum's term record was read at start, the standby's grant could be for a term the
    // quorum moved past (#startAfterQuorumTerm): not asked, as if lost on the way (every standby's).
    if (msg.kind === 'lease-request' && !toQuorum && !this.#quorumTermKnown) {
      this.#d.logger.debug({ to }, 'lease request to the standby held back: the quorum\'s term record is still unread');
      return;
    }
    // To the quorum on etcd: the bridge's answer is the reply the witness would have sent, stepped in
    // alike (the core counts a renewal from its own send, which came before any etcd call).
    const answer = quorum !== undefined && to === quorum.id ? quorum.ask(msg) : this.#d.peers.send(to, msg);
    answer
      .then((reply) => {
        if (reply === null) {
          renewal?.('failed');
          return;
        }
        renewal?.(reply.kind === 'lease-reply' && reply.granted ? 'granted' : 'refused');
        if (!this.#stopped) this.#step({ kind: 'reply', nowMs: this.#d.clock(), msg: reply });
      })
      .catch((e: unknown) => {
        renewal?.('failed');
        this.#d.logger.debug({ err: e, to, kind: msg.kind }, 'request failed');
      });
  }

  /** What hooks are told about this node now. */
  #hookContext(detail: string, previousRole?: string): HookContext {
    const s = this.#s;
    return {
      cluster: s.settings.cluster,
      node: s.settings.self,
      peer: s.settings.peer,
      role: agentRole(s),
      ...(previousRole === undefined ? {} : { previousRole }),
      term: s.durable.term,
      primary: s.durable.primaryOfTerm,
      detail,
    };
  }

  /** An event of the shell's own (not the core's): logged, counted and kept for the witness like the core's. */
  #agentEvent(event: AgentEventName, detail: string): void {
    this.#d.metrics.events.inc({ event });
    this.#d.logger.warn({ event, term: this.#s.durable.term }, detail);
    this.events.record(event, this.#s.durable.term, detail);
  }

  #hook(event: AsyncHookEvent, detail: string, previousRole?: string): void {
    const hooks = this.#d.hooks;
    if (hooks?.has(event)) hooks.notify(event, this.#hookContext(detail, previousRole));
  }

  /**
   * The promote effect behind the before-promote hook. A veto comes back as a failed promote:
   * the core already treats one (the node stays a standby in recovery and tries again), so a veto
   * needs no decision of its own and can never leave a half-promoted node (docs/hooks.md).
   */
  async #promote(id: number, effect: Parameters<typeof runEffect>[1]): Promise<Awaited<ReturnType<typeof runEffect>>> {
    const hooks = this.#d.hooks;
    if (hooks?.has('before-promote')) {
      // The core tries a failed promote again at once; after a veto, ask the hook again only a
      // heartbeat later, not in a loop of back-to-back runs.
      const waitMs = this.#lastVetoAtMs + this.#s.settings.timings.heartbeatMs - this.#d.clock();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      // An agent stopped meanwhile starts no promotion (the effect's result goes nowhere).
      if (this.#stopped) return { id, ok: false, detail: 'the agent is stopping' };
      const verdict = await hooks.beforePromote(this.#hookContext(`promoting for term ${this.#s.durable.term}`));
      if (!verdict.allowed) {
        this.#lastVetoAtMs = this.#d.clock();
        this.#agentEvent('promotion-vetoed', `the before-promote hook vetoed the promotion: ${verdict.detail}`);
        return { id, ok: false, detail: verdict.detail };
      }
    }
    return runEffect(id, effect, this.#ports);
  }

  #effect(id: number, effect: Parameters<typeof runEffect>[1]): void {
    const log = this.#d.logger.child({ effect: effect.kind });
    // The primary re-verifies the VIP it holds every vipVerifyEveryMs: routine, so at debug level
    // when it confirms what is known (a failure still warns). Every other effect is news.
    const routine = effect.kind === 'verify-vip' && this.#s.vip.phase === 'held';
    log[routine ? 'debug' : 'info']('effect started');
    const run = effect.kind === 'promote' ? this.#promote(id, effect) : runEffect(id, effect, this.#ports);
    void run.then((result) => {
      if (result.ok) {
        log[routine ? 'debug' : 'info']({ detail: result.detail }, 'effect done');
        if (effect.kind === 'promote') this.#d.metrics.promotions.inc();
        if (effect.kind === 'move-vip-cloud') this.#d.metrics.vipMoves.inc();
      } else {
        log.warn({ detail: result.detail }, 'effect failed');
        this.#d.metrics.effectErrors.inc({ effect: effect.kind });
      }
      if (!vipOnlyEffects.has(effect.kind)) this.#pgChanges++;
      if (!this.#stopped) this.#step({ kind: 'effect-done', nowMs: this.#d.clock(), result });
      // After the core took the result in, so the hook sees the role it led to.
      if (result.ok) {
        const event = effect.kind === 'promote' ? 'after-promote' : effect.kind === 'fence' ? 'on-fence' : effect.kind === 'rejoin' ? 'on-rejoin' : null;
        if (event !== null) this.#hook(event, result.detail);
      }
    });
  }

  #updateGauges(): void {
    const s = this.#s;
    const m = this.#d.metrics;
    const role = agentRole(s);
    for (const r of ROLES) m.role.set({ role: r }, r === role ? 1 : 0);
    m.term.set(s.durable.term);
    m.leaseRemaining.set(leaseRemainingMs(s) / 1000);
    const report = s.primaryReport;
    if (report !== null && s.pg !== null && s.pg.inRecovery) {
      m.lagBytes.set(Number(report.lsn > s.pg.lsn ? report.lsn - s.pg.lsn : 0n));
    }
  }
}

const agentEvents: ReadonlySet<string> = new Set(agentEventNames);

/** Whether a core event is one the witness gets from the agent (the rest it sees for itself). */
function isAgentEventName(event: string): event is AgentEventName {
  return agentEvents.has(event);
}

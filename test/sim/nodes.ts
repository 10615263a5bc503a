// The processes of the simulated cluster: the agents of the database nodes (db-a, db-b, and db-c in
// three-node runs on etcd) and the witness (two nodes only), each the
// real decision core (or a variant of it) driven by ticks, requests, replies and finished effects,
// and the executor of what the core returns (persist first and durably, then replies, sends,
// effects and notifications; see core/actions.ts). Durable state survives crashes; a restarted
// process boots from it with a new incarnation, and events of an older incarnation are dropped.
import {
  agentStatus,
  defaultAgentSettings,
  ETCD_QUORUM_ID,
  quorumOf,
  actionsOf,
  executeStep,
  type OutputPorts,
  initialWitnessDurable,
  leaseValidMs,
  type AgentDurable,
  type AgentOutput,
  type AgentSettings,
  type AgentState,
  type AgentStatus,
  type Effect,
  type EffectResult,
  type OperatorCommand,
  type PeerReply,
  type PeerRequest,
  type Send,
  type stepAgent,
  type stepWitness,
  type Timings,
  type WitnessDurable,
  type WitnessOutput,
  type WitnessSettings,
  type WitnessState,
} from '@pgvip/shared/core';
import type { Checker, ClusterView } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Ec2 } from './ec2.js';
import type { EtcdAnswer, EtcdCluster } from './etcd.js';
import { EtcdAgentShell } from './etcd-shell.js';
import type { Network } from './network.js';
import type { Postgres } from './postgres.js';
import type { RngStreams } from './rng.js';
import { dbNodesOf, type DbNode, type Host, type Schedule } from './schedule.js';
import type { Transcript } from './transcript.js';
import type { Cores } from './world.js';

type Durable = AgentDurable | WitnessDurable;
/** The simulator adopts a step's state before it executes the output (see Nodes.#execute). */
const noAdopt = (): void => undefined;

interface AgentProc {
  state: AgentState | null;
  inc: number;
  disk: AgentDurable;
}

interface WitnessProc {
  state: WitnessState | null;
  inc: number;
  disk: WitnessDurable;
}

export interface NodesDeps {
  readonly sched: Schedule;
  readonly timings: Timings;
  readonly cores: Cores;
  readonly clock: SimClock;
  readonly hosts: Hosts;
  readonly rngs: RngStreams;
  readonly net: Network;
  readonly pg: Postgres;
  readonly ec2: Ec2;
  readonly check: Checker;
  readonly view: ClusterView;
  readonly transcript: Transcript;
  /** The etcd cluster when the schedule runs on etcd (the agents' quorum messages go to it, not to the witness). */
  readonly etcd: EtcdCluster | null;
  /** A bridge promise settled or started: the world runs its continuations before the next event. */
  readonly wake: () => void;
  /** A planted etcd-shell bug (variants.ts). */
  readonly etcdBug?: EtcdBug;
}

/** Bugs planted in the simulated etcd shell (variants.ts). */
export type EtcdBug =
  | 'validity-from-keepalive-reply'
  | 'no-term-read-at-start'
  | 'answer-after-request-timeout'
  | 'candidate-in-record'
  | 'withdraw-without-asking';

export class Nodes {
  readonly agents: Record<DbNode, AgentProc>;
  /** The database nodes, config order (db-a starts as primary). */
  readonly #nodes: readonly DbNode[];
  readonly witness: WitnessProc;
  readonly notifications: { t: number; host: Host; event: string; detail: string }[] = [];
  readonly #agentSettings: Record<DbNode, AgentSettings>;
  readonly #witnessSettings: WitnessSettings;
  /** On etcd: each agent process's shell (a new one per process), null while none runs. */
  readonly #shells: Record<DbNode, EtcdAgentShell | null> = { 'db-a': null, 'db-b': null, 'db-c': null };
  /** On etcd: until when (its own clock) each agent counts the validity etcd's latest grant gave it, per term. */
  readonly #etcdValid: Record<DbNode, { term: number; untilMs: number } | null> = {
    'db-a': null, 'db-b': null, 'db-c': null,
  };
  /**
   * On etcd: whether each agent process read etcd's term record since it started (runner.ts,
   * #startAfterQuorumTerm); until then it asks its standby for no lease. Always true on the witness.
   */
  readonly #quorumTermKnown: Record<DbNode, boolean> = { 'db-a': true, 'db-b': true, 'db-c': true };
  /** On etcd: the targeted crash armed by a switchover fault, for the primary it went to (faults.ts). */
  readonly #crashAfterHandover: Record<DbNode, { downMs: number } | null> = { 'db-a': null, 'db-b': null, 'db-c': null };
  /**
   * Every sim node runs the same timings, so the grantors' lease-length check always passes; it
   * is exercised on every request.
   */
  readonly #senderLeaseValidMs: number;

  constructor(private readonly d: NodesDeps, readonly lagBytesMax: bigint) {
    const { sched, timings: t } = d;
    const nodes = dbNodesOf(sched);
    this.#nodes = nodes;
    this.#senderLeaseValidMs = leaseValidMs(t);
    // Two nodes: exactly the settings of before (nodes defaults to the pair). Three: every node,
    // config order, with the schedule's priorities, noFailover nodes, degrade and synchronousCount.
    const settings = (self: DbNode): AgentSettings =>
      defaultAgentSettings({
        cluster: 'sim', self, peer: nodes.find((m) => m !== self)!, witness: 'witness', timings: t,
        replication: sched.replication,
        ...(d.etcd === null ? {} : { quorum: quorumOf('etcd', 'witness') }),
        ...(nodes.length > 2 ? {
          nodes: nodes.map((id) => ({
            id, priority: sched.priority?.[id] ?? 0, noFailover: (sched.noFailover ?? []).includes(id),
          })),
          degrade: sched.degrade ?? 'async',
          ...(sched.synchronousCount === undefined ? {} : { synchronousCount: sched.synchronousCount }),
        } : {}),
      });
    const perNode = <T>(f: (n: DbNode) => T): Record<DbNode, T> => {
      const r: Partial<Record<DbNode, T>> = {};
      for (const n of nodes) r[n] = f(n);
      return r as Record<DbNode, T>;
    };
    this.#agentSettings = perNode(settings);
    this.#witnessSettings = {
      cluster: 'sim', self: 'witness', nodes: ['db-a', 'db-b'], timings: t, replication: sched.replication, lagBytesMax,
    };
    const disk: AgentDurable = { term: 1, primaryOfTerm: 'db-a' };
    this.agents = perNode(() => ({ state: null, inc: 0, disk }));
    this.witness = {
      state: null,
      inc: 0,
      disk: {
        ...initialWitnessDurable, term: 1, primaryOfTerm: 'db-a', votedTerm: 1, votedFor: 'db-a',
        syncEligible: sched.replication === 'sync' ? 'db-b' : null,
      },
    };
    if (sched.bootstrap === true) {
      const fresh: AgentDurable = { term: 0, primaryOfTerm: null };
      for (const n of nodes) this.agents[n].disk = fresh;
      this.witness.disk = { ...initialWitnessDurable, syncEligible: null };
    }
  }

  start(): void {
    for (const n of this.#nodes) this.#startAgent(n);
    // On etcd the witness host runs only its etcd member: the witness daemon observes, and the
    // simulator leaves it out (nothing it does there bears on safety).
    if (this.d.etcd === null) this.#startWitness();
  }
  #log(who: string, text: string): void {
    this.d.transcript.log(who, text);
  }
  #procInc(h: Host): number {
    return h === 'witness' ? this.witness.inc : this.agents[h].inc;
  }

  // --- agents ----------------------------------------------------------------------------------

  #startAgent(n: DbNode): void {
    const { clock, hosts, rngs } = this.d;
    const proc = this.agents[n];
    proc.inc++;
    // Each process's lease seqs start above every earlier one's (the shell's persisted boot counter).
    proc.state = this.d.cores.bootAgent(this.#agentSettings[n], proc.disk, clock.local(n), proc.inc * 2 ** 32);
    this.#log(n, `agent started (term ${proc.disk.term}, primary ${proc.disk.primaryOfTerm})`);
    const inc = proc.inc;
    this.#etcdValid[n] = null;
    this.#crashAfterHandover[n] = null;
    const bootMs = rngs.get(`boot ${n}`).int(0, 50);
    const firstTick = () => clock.after(bootMs, () => hosts.run(n, () => this.#agentTick(n, inc)));
    const shell = this.d.etcd === null ? null : this.#newShell(n, inc, this.d.etcd);
    this.#shells[n] = shell;
    this.#quorumTermKnown[n] = shell === null || this.d.etcdBug === 'no-term-read-at-start';
    if (shell === null || this.#quorumTermKnown[n]) firstTick();
    else this.#readTermAtStart(n, inc, shell, firstTick);
  }
  /**
   * The agent's start on etcd, as the runner does it (runner.ts, #startAfterQuorumTerm; docs/etcd.md,
   * "The agent's start"): the route reads etcd's term record (the real EtcdAgentQuorum.termAtStart)
   * and the reply is stepped in before the first tick, so a term etcd moved past the persisted one is
   * adopted. The ticks start once the first read ended, or requestTimeoutMs + heartbeatMs after the
   * start at the latest; a failed read is tried again every heartbeat, and until one answered the
   * standby is asked for no lease (#send).
   */
  #readTermAtStart(n: DbNode, inc: number, shell: EtcdAgentShell, firstTick: () => void): void {
    const { clock, hosts, timings: t } = this.d;
    let ticking = false;
    const tickOnce = () => {
      if (ticking) return;
      ticking = true;
      firstTick();
    };
    clock.after(clock.realDelay(n, t.requestTimeoutMs + t.heartbeatMs), () => hosts.run(n, () => {
      if (this.#agentAlive(n, inc)) tickOnce();
    }));
    const attempt = () => shell.termAtStart((r) => {
      if (!this.#agentAlive(n, inc)) return;
      if (r.ok) {
        this.#quorumTermKnown[n] = true;
        this.#log(n, `etcd's term record at start: ${r.detail}`);
        this.#stepAgent(n, inc, { kind: 'reply', nowMs: clock.local(n), msg: r.reply });
      }
      tickOnce();
      if (!r.ok) clock.after(clock.realDelay(n, t.heartbeatMs), () => hosts.run(n, () => {
        if (this.#agentAlive(n, inc)) attempt();
      }));
    });
    attempt();
  }
  #agentAlive(n: DbNode, inc: number): boolean {
    const p = this.agents[n];
    return p.inc === inc && p.state !== null;
  }
  #agentTick(n: DbNode, inc: number): void {
    if (!this.#agentAlive(n, inc)) return;
    const { clock, hosts, pg } = this.d;
    const peer = this.#agentSettings[n].peer as DbNode;
    const tick = (peers: Record<DbNode, AgentStatus | null> | null, status: AgentStatus | null) => {
      if (!this.#agentAlive(n, inc)) return;
      const snapshot = pg.snapshot(n);
      const probe = pg.writeProbe(n);
      this.#stepAgent(n, inc, {
        kind: 'tick', nowMs: clock.local(n), pg: snapshot, writeProbe: probe, peer: status,
        ...(peers === null ? {} : { peers }),
      });
    };
    if (this.#nodes.length === 2) {
      this.#poll(n, peer, (status) => tick(null, status));
    } else {
      // The runner polls every other node at once and steps when every check ended (answer or timeout).
      const others = this.#nodes.filter((m) => m !== n);
      const peers: Partial<Record<DbNode, AgentStatus | null>> = {};
      let left = others.length;
      for (const m of others) {
        this.#poll(n, m, (status) => {
          peers[m] = status;
          if (--left === 0) tick(peers as Record<DbNode, AgentStatus | null>, peers[peer] ?? null);
        });
      }
    }
    clock.after(clock.realDelay(n, this.d.timings.heartbeatMs), () => hosts.run(n, () => this.#agentTick(n, inc)));
  }
  /** n's check of peer's agent (its status, or null when it did not answer in time). */
  #poll(n: DbNode, peer: DbNode, done: (status: AgentStatus | null) => void): void {
    const { clock, net } = this.d;
    net.exchange<AgentStatus | null>(
      n,
      peer,
      (answer) => {
        const ps = this.agents[peer].state;
        if (ps !== null) answer(agentStatus({ ...ps, nowMs: clock.local(peer) }));
      },
      done,
    );
  }
  #stepAgent(n: DbNode, inc: number, input: Parameters<typeof stepAgent>[1], respond?: (r: PeerReply) => void): void {
    const proc = this.agents[n];
    if (proc.state === null || proc.inc !== inc) return;
    const before = proc.state;
    const out: AgentOutput = this.d.cores.stepAgent(before, input);
    proc.state = out.state;
    this.d.check.agentStep(n, before, out, input.kind);
    this.d.transcript.noteOutput(n, out.reason, actionsOf(out));
    this.d.transcript.noteReason(n, out.reason);
    this.#execute(n, inc, out, respond);
    this.d.check.writers(this.d.view);
  }

  // --- the witness -------------------------------------------------------------------------------

  #startWitness(): void {
    const { clock, hosts, rngs } = this.d;
    const w = this.witness;
    w.inc++;
    w.state = this.d.cores.bootWitness(this.#witnessSettings, w.disk, clock.local('witness'));
    this.#log('witness', `witness started (term ${w.disk.term})`);
    const inc = w.inc;
    clock.after(rngs.get('boot witness').int(0, 50), () => hosts.run('witness', () => this.#witnessTick(inc)));
  }
  #witnessTick(inc: number): void {
    if (this.witness.inc !== inc || this.witness.state === null) return;
    const { clock, hosts, net, pg } = this.d;
    for (const n of this.#nodes) {
      net.exchange<AgentStatus | null>(
        'witness',
        n,
        (answer) => {
          const s = this.agents[n].state;
          if (s !== null) answer(agentStatus({ ...s, nowMs: clock.local(n) }));
        },
        (status) => {
          const pgReachable = net.linkUp('witness', n) && net.linkUp(n, 'witness') && pg.usable(n);
          this.#stepWitness(inc, { kind: 'poll', nowMs: clock.local('witness'), node: n, status, pgReachable });
        },
      );
    }
    const next = clock.realDelay('witness', this.d.timings.heartbeatMs);
    clock.after(next, () => hosts.run('witness', () => this.#witnessTick(inc)));
  }
  #stepWitness(
    inc: number,
    input: Parameters<typeof stepWitness>[1],
    respond?: (r: PeerReply) => void,
  ): WitnessOutput | null {
    const w = this.witness;
    if (w.state === null || w.inc !== inc) return null;
    const before = w.state;
    const out = this.d.cores.stepWitness(before, input);
    w.state = out.state;
    this.d.check.witnessStep(before, out, input.kind);
    this.d.transcript.noteOutput('witness', out.reason, actionsOf(out), out.verdict);
    this.d.transcript.noteReason('witness', out.reason);
    this.#execute('witness', inc, out, respond);
    this.d.check.writers(this.d.view);
    return out;
  }
  /** The primary the witness knows, as the CLI would read it from its status (null while none, or down). */
  witnessPrimary(): DbNode | null {
    const p = this.witness.state?.durable.primaryOfTerm ?? null;
    return this.#nodes.find((n) => n === p) ?? null;
  }
  /** An operator command, given to the witness (as the CLI does). */
  operator(command: OperatorCommand): void {
    this.d.hosts.run('witness', () => {
      const nowMs = this.d.clock.local('witness');
      const out = this.#stepWitness(this.witness.inc, { kind: 'operator', nowMs, command });
      if (out?.verdict) {
        this.#log('operator', `${command.kind}: ${out.verdict.ok ? 'accepted' : 'refused'}: ${out.verdict.message}`);
      }
    });
  }

  // --- the executor ------------------------------------------------------------------------------

  /**
   * Execute a step's output with the daemons' executor (core/execute.ts); only the rest of a step
   * that persisted waits for the fsync, and a crash meanwhile loses it but never the persisted term.
   */
  #execute(h: Host, inc: number, out: AgentOutput | WitnessOutput, respond?: (r: PeerReply) => void): void {
    // The state was adopted by the step already: at one simulated instant, the same as after the persist.
    const ports = new Nodes.#StepPorts(this, h, inc, out.sends, respond);
    executeStep<unknown, Durable>(out, noAdopt, ports, out.persist === null ? {} : {
      afterPersist: (rest) => this.d.clock.after(1, () => this.d.hosts.run(h, () => {
        if (this.#procInc(h) === inc) rest();
      })),
    });
  }
  /**
   * The ports one step's output runs through: an object whose methods live on its class, not five
   * closures made for every step (the simulator runs millions of steps, and under tsx each closure
   * made is also named at run time).
   */
  static readonly #StepPorts = class implements OutputPorts<Durable> {
    constructor(
      readonly nodes: Nodes,
      readonly h: Host,
      readonly inc: number,
      readonly sends: readonly Send[],
      readonly respond: ((r: PeerReply) => void) | undefined,
    ) {}
    persist(d: Durable): void {
      this.nodes.#persist(this.h, d, this.sends);
    }
    reply(msg: PeerReply): void {
      this.nodes.d.check.reply(this.h, msg);
      this.respond?.(msg);
    }
    send(to: string, msg: PeerRequest): void {
      this.nodes.#send(this.h, this.inc, to as Host, msg);
    }
    notify(event: string, detail: string): void {
      this.nodes.notifications.push({ t: this.nodes.d.clock.t, host: this.h, event, detail });
      this.nodes.#log(this.h, `notify ${event}: ${detail}`);
    }
    effect(id: number, effect: Effect): void {
      if (this.h !== 'witness') this.nodes.#startEffect(this.h, this.inc, id, effect);
    }
  };
  #persist(h: Host, d: Durable, sends: readonly Send[]): void {
    this.d.check.persisted(h, d, h === 'witness' ? this.witness.disk : this.agents[h].disk, sends);
    if (h === 'witness') this.witness.disk = d as WitnessDurable;
    else this.agents[h].disk = d as AgentDurable;
  }
  #send(from: Host, inc: number, to: Host, msg: PeerRequest): void {
    const { clock } = this.d;
    if (this.d.etcd !== null && (to as string) === ETCD_QUORUM_ID && from !== 'witness') {
      return this.#askEtcd(from, inc, msg);
    }
    // Until etcd's term record was read at start, the standby's grant could be for a term etcd moved
    // past: not asked, as if lost on the way (runner.ts).
    if (from !== 'witness' && msg.kind === 'lease-request' && !this.#quorumTermKnown[from]) return;
    this.d.net.exchange<PeerReply>(
      from,
      to,
      (answer) => this.serve(to, msg, answer),
      (reply) => {
        if (reply === null || this.#procInc(from) !== inc) return;
        if (from === 'witness') {
          this.#stepWitness(inc, { kind: 'reply', nowMs: clock.local('witness'), msg: reply, inReplyTo: msg.kind });
        } else {
          this.#stepAgent(from, inc, { kind: 'reply', nowMs: clock.local(from), msg: reply });
        }
      },
    );
  }
  /** A request arrives at `to` (from a peer, or forged by a key holder). */
  serve(to: Host, msg: PeerRequest, answer: (r: PeerReply) => void): void {
    const nowMs = this.d.clock.local(to);
    const peerLeaseValidMs = this.#senderLeaseValidMs;
    if (to === 'witness') {
      if (this.witness.state === null) return;
      this.#stepWitness(this.witness.inc, { kind: 'request', nowMs, msg, peerLeaseValidMs }, answer);
    } else {
      const proc = this.agents[to];
      if (proc.state === null) return;
      this.#stepAgent(to, proc.inc, { kind: 'request', nowMs, msg, peerLeaseValidMs }, answer);
    }
  }
  #startEffect(n: DbNode, inc: number, id: number, e: Effect): void {
    const { clock, hosts } = this.d;
    const finish = (delayMs: number, apply: () => Omit<EffectResult, 'id'>) => {
      clock.after(delayMs, () => {
        if (hosts.crashed(n)) return;
        const r = apply();
        hosts.run(n, () => {
          if (!this.#agentAlive(n, inc)) return;
          this.#stepAgent(n, inc, { kind: 'effect-done', nowMs: clock.local(n), result: { id, ...r } });
        });
      });
    };
    switch (e.kind) {
      case 'drop-vip-local':
      case 'add-vip-local':
        return finish(5, () => ({ ok: true, detail: e.kind }));
      case 'move-vip-cloud':
        return this.d.ec2.moveVip(n, e.term, e.budgetMs, finish);
      case 'verify-vip':
        return this.d.ec2.verifyVip(n, finish);
      case 'quorum-handover': {
        const shell = this.#shells[n];
        // The witness has nothing to record: its shell reports the handover done at once.
        if (shell === null) return finish(0, () => ({ ok: true, detail: `term ${e.term + 1} goes to ${e.to}` }));
        // On etcd: the bridge's handover txn (etcd-shell.ts), done when etcd answered.
        return shell.handover(e.term, e.to, (r) => {
          if (r.ok) this.d.check.handedOver(e.term + 1);
          const crash = this.#crashAfterHandover[n];
          this.#crashAfterHandover[n] = null;
          if (r.ok && crash !== null) return this.#crashBeforePersist(n, e.term, crash.downMs);
          this.#stepAgent(n, inc, { kind: 'effect-done', nowMs: clock.local(n), result: { id, ok: r.ok, detail: r.detail } });
        });
      }
      default:
        if (!this.d.pg.effect(n, e, finish, () => this.agents[n].disk.term)) {
          throw new Error(`the simulator has no model of effect ${e.kind}`);
        }
    }
  }

  // --- etcd ----------------------------------------------------------------------------------------

  #newShell(n: DbNode, inc: number, etcd: EtcdCluster): EtcdAgentShell {
    return new EtcdAgentShell({
      etcd: this.d.etcdBug === 'candidate-in-record' ? this.#readsItselfIntoRecord(n, etcd) : etcd,
      clock: this.d.clock, hosts: this.d.hosts, node: n, alive: () => this.#agentAlive(n, inc), wake: this.d.wake,
      timings: this.d.timings, replication: this.d.sched.replication, rng: this.d.rngs.get(`etcd client ${n}`),
      // As the daemon gives its route (open.ts): every node, for the grantors of new terms and elections.
      nodes: this.#agentSettings[n].nodes,
      failed: (what, err) => this.d.check.violation(`etcd shell of ${n}: ${what} threw ${String(err)}`),
      unboundedAnswers: this.d.etcdBug === 'answer-after-request-timeout',
      withdrawUnasked: this.d.etcdBug === 'withdraw-without-asking',
    });
  }
  /**
   * The planted bug 'candidate-in-record' (variants.ts): every view etcd gives n's shell while n is
   * not the primary of its term names n in the sync record in place of its first other member, so a
   * standby outside the synchronous quorum counts itself in it (as a misread member list would).
   */
  #readsItselfIntoRecord(n: DbNode, etcd: EtcdCluster): EtcdCluster {
    const lie = (a: EtcdAnswer): EtcdAnswer => {
      if (a.kind !== 'read' && a.kind !== 'txn') return a;
      const sync = a.view.sync;
      const primary = this.agents[n].state?.durable.primaryOfTerm === n;
      if (sync === null || sync.value.members.includes(n) || primary) return a;
      const [, ...rest] = sync.value.members;
      const members = [n, ...rest];
      return { ...a, view: { ...a.view, sync: { ...sync, value: { ...sync.value, members } } } };
    };
    const call: EtcdCluster['call'] = (node, to, op, answer) => etcd.call(node, to, op, (a) => answer(lie(a)));
    return new Proxy(etcd, {
      get: (target, key) => {
        if (key === 'call') return call;
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
  /** On etcd: the core's message to its quorum goes through this process's shell (the bridge). */
  #askEtcd(n: DbNode, inc: number, msg: PeerRequest): void {
    const shell = this.#shells[n];
    if (shell === null || !this.#agentAlive(n, inc)) return;
    shell.ask(msg, (reply) => {
      if (this.d.etcdBug === 'validity-from-keepalive-reply') this.#restamp(n, reply, shell.port.keepAliveAnsweredAtMs);
      const campaign = this.agents[n].state?.campaign ?? null;
      this.#stepAgent(n, inc, { kind: 'reply', nowMs: this.d.clock.local(n), msg: reply });
      this.#noteEtcdGrant(n, reply, campaign?.sentAtMs ?? null);
    });
  }
  /**
   * What the core counts from etcd's grant: a renewal from its request's send (as the core recorded
   * it), a won vote from the campaign's send. Checked when etcd's lease ends (etcdKeyExpired).
   */
  #noteEtcdGrant(n: DbNode, reply: PeerReply, campaignSentAtMs: number | null): void {
    const s = this.agents[n].state;
    let sentAtMs: number | null = null;
    if (s === null) return;
    if (reply.kind === 'lease-reply' && reply.granted) {
      sentAtMs = s.lease.sends.find((x) => x.seq === reply.seq && x.term === s.durable.term)?.sentAtMs ?? null;
    } else if (reply.kind === 'vote-reply' && reply.granted) {
      sentAtMs = campaignSentAtMs;
    }
    if (sentAtMs === null || s.durable.term !== reply.term || s.durable.primaryOfTerm !== n) return;
    const untilMs = sentAtMs + leaseValidMs(this.d.timings);
    const known = this.#etcdValid[n];
    if (known === null || known.term !== reply.term || known.untilMs < untilMs) {
      this.#etcdValid[n] = { term: reply.term, untilMs };
    }
  }
  /**
   * I1 on etcd (docs/design.md, Quorum on etcd): a holder's validity from etcd's grant ends before
   * etcd deletes its key. The key of `node` for `term` went with its lease's expiry now.
   */
  etcdKeyExpired(key: string, term: number): void {
    const node = this.#nodes.find((n) => n === key);
    if (node === undefined) return;
    const valid = this.#etcdValid[node];
    if (this.agents[node].state === null || valid === null || valid.term !== term) return;
    const leftMs = valid.untilMs - this.d.clock.local(node);
    if (leftMs > 0) {
      this.d.check.violation(
        `I1: etcd's lease of ${node}'s leader key for term ${term} ran out while ${node} counts etcd's grant valid ` +
        `for ${Math.round(leftMs)} ms more`,
      );
    }
  }
  /** The planted bug: the granted request counts as sent when the keepalive's answer arrived. */
  #restamp(n: DbNode, reply: PeerReply, atMs: number): void {
    const s = this.agents[n].state;
    if (s === null || reply.kind !== 'lease-reply' || !reply.granted) return;
    const sends = s.lease.sends.map((x) => (x.seq === reply.seq ? { ...x, sentAtMs: Math.max(x.sentAtMs, atMs) } : x));
    this.agents[n].state = { ...s, lease: { ...s.lease, sends } };
  }
  /**
   * On etcd, the operator's switchover: the request reaches the primary as its shell hands it to the
   * core after taking the switchover key (agent-quorum.ts; the key and its watch are not modelled).
   * The shell looks every four heartbeats, on the node that is primary by its own state.
   */
  etcdSwitchover(triesLeft = 10, crashAfterHandover: { downMs: number } | null = null, to: DbNode | null = null): void {
    const { clock, hosts, timings } = this.d;
    for (const n of this.#nodes) {
      const s = this.agents[n].state;
      if (s === null || hosts.crashed(n) || hosts.paused(n) || s.durable.primaryOfTerm !== n) continue;
      if (agentStatus({ ...s, nowMs: clock.local(n) }).role !== 'primary') continue;
      // Two nodes: the other node. Three: the fault's target, else the first other node.
      const target = to !== null && to !== n ? to : this.#nodes.find((m) => m !== n)!;
      const msg: PeerRequest = {
        v: 1, cluster: 'sim', term: s.durable.term, from: ETCD_QUORUM_ID, kind: 'switchover-request', to: target,
      };
      this.#crashAfterHandover[n] = crashAfterHandover;
      return this.serve(n, msg, (r) => {
        const verdict = r.kind === 'ack' ? `${r.accepted ? 'accepted' : 'refused'}: ${r.reason}` : r.kind;
        this.#log('operator', `switchover (etcd) on ${n}: ${verdict}`);
      });
    }
    if (triesLeft > 0) {
      clock.after(4 * timings.heartbeatMs, () => this.etcdSwitchover(triesLeft - 1, crashAfterHandover, to));
    }
  }

  /**
   * The targeted crash: etcd committed the handover txn (its term record names the successor for
   * term + 1), and the agent process dies before its core persisted term + 1 (it has not even seen
   * the ok). systemd starts it again `downMs` later, in `term` by its disk.
   */
  #crashBeforePersist(n: DbNode, term: number, downMs: number): void {
    this.#log('FAULT', `agent on ${n} crashes after etcd's handover txn for term ${term + 1}, before it persisted it`);
    this.crash(n);
    this.d.clock.after(downMs, () => this.restart(n));
  }

  // --- crashes -----------------------------------------------------------------------------------

  /** The process on h dies (its durable state stays on disk). */
  crash(h: Host): void {
    if (h === 'witness') {
      this.witness.state = null;
      this.witness.inc++;
    } else {
      this.agents[h].state = null;
      this.agents[h].inc++;
    }
  }
  /** systemd starts the process on h again, if the host is up and it is not running. */
  restart(h: Host): void {
    if (this.d.hosts.crashed(h)) return;
    if (h === 'witness') {
      if (this.witness.state === null && this.d.etcd === null) this.#startWitness();
    } else if (this.agents[h].state === null) {
      this.#startAgent(h);
    }
  }
}

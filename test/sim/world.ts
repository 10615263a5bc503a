// The deterministic simulator: the real decision core of db-a, db-b and the witness, driven by a
// model of PostgreSQL (LSNs, sync acks, promotion, timelines), of EC2 (asynchronous remap, faults)
// and of the network (partitions, loss, delay, duplication, reordering), with crashes and restarts
// that keep durable state, pauses, and clocks drifting within ρ. A global observer checks the
// invariants I1–I7 (docs/design.md, "The simulator") after every event, and each node's own state
// invariants (core/invariants.ts) after each of its steps.

import {
  agentStatus,
  agentStepViolations,
  bootAgent,
  bootWitness,
  defaultAgentSettings,
  defaultTimings,
  initialWitnessDurable,
  leaseValidMs,
  stepAgent,
  stepWitness,
  witnessStepViolations,
  type Action,
  type AgentDurable,
  type AgentOutput,
  type AgentSettings,
  type AgentState,
  type AgentStatus,
  type Effect,
  type EffectResult,
  type PeerReply,
  type PeerRequest,
  type PgSnapshot,
  type Timings,
  type WitnessDurable,
  type WitnessOutput,
  type WitnessSettings,
  type WitnessState,
  type WriteProbe,
  type OperatorCommand,
} from '@pgvip/shared/core';
import { createHash } from 'node:crypto';
import { EventHeap, type Timed } from './heap.js';
import { Rng } from './rng.js';
import { DB_NODES, describeFault, HOSTS, type DbNode, type Ec2FaultKind, type Fault, type Host, type Schedule } from './schedule.js';

/** The cores under test; variants wrap these to plant known bugs. */
export interface Cores {
  readonly bootAgent: typeof bootAgent;
  readonly stepAgent: typeof stepAgent;
  readonly bootWitness: typeof bootWitness;
  readonly stepWitness: typeof stepWitness;
}
export const realCores: Cores = { bootAgent, stepAgent, bootWitness, stepWitness };

export interface RunOptions {
  readonly cores?: Cores;
  readonly timings?: Timings;
  /** Record a readable transcript (costs time; off for bulk runs). */
  readonly transcript?: boolean;
  /**
   * With the transcript: every this many simulated ms, a line with a digest of every core output
   * so far (reason and actions of each step, routine ones included), so golden transcripts pin
   * what the readable lines leave out (every grant, every send) and show where a change begins.
   */
  readonly digestEveryMs?: number;
}

export interface AckRecord {
  readonly t: number;
  readonly node: DbNode;
  readonly timeline: number;
  readonly lsn: bigint;
}

export interface PromotionRecord {
  readonly t: number;
  readonly node: DbNode;
  readonly term: number;
  readonly lostWrites: number;
}

export interface RunResult {
  readonly schedule: Schedule;
  readonly violations: string[];
  readonly transcript: string[];
  readonly acks: readonly AckRecord[];
  readonly promotions: readonly PromotionRecord[];
  readonly vipMoves: readonly { t: number; node: DbNode; term: number }[];
  /** What the cores told operators (notify actions), in order. */
  readonly notifications: readonly { t: number; host: Host; event: string; detail: string }[];
  readonly finalPrimary: DbNode | null;
  readonly writesAttempted: number;
}

interface Ev extends Timed {
  readonly fn: () => void;
}

interface PgModel {
  running: boolean;
  inRecovery: boolean;
  readOnly: boolean;
  timeline: number;
  /** Ancestor timelines and the LSN where each ended (PostgreSQL's timeline history). */
  history: Map<number, bigint>;
  lsn: bigint;
  receiverOn: boolean;
  lastStreamAt: number;
  caughtUpAt: number;
  ssn: DbNode | null;
  stalledUntil: number;
  /** Until when the node's before-promote hook vetoes promotions (the veto-promote fault). */
  vetoUntil: number;
  pending: { lsn: bigint; issuedAt: number }[];
}

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

interface HostState {
  crashed: boolean;
  paused: boolean;
  backlog: (() => void)[];
}

const WRITE_EVERY_MS = 100;
const PUMP_EVERY_MS = 25;
const STREAM_FRESH_MS = 1000;
const COMMIT_TIMEOUT_MS = 2000;
const WRITE_BYTES = 100n;
const other = (n: DbNode): DbNode => (n === 'db-a' ? 'db-b' : 'db-a');

export class World {
  readonly sched: Schedule;
  readonly timings: Timings;
  readonly cores: Cores;
  readonly rng: Rng;
  readonly violations: string[] = [];
  readonly transcript: string[] = [];
  readonly notifications: { t: number; host: Host; event: string; detail: string }[] = [];
  /** Every sim node runs the same timings, so the grantors' lease-length check always passes; it is exercised on every request. */
  readonly #senderLeaseValidMs: number;
  readonly acks: AckRecord[] = [];
  readonly promotions: PromotionRecord[] = [];
  readonly vipMoves: { t: number; node: DbNode; term: number }[] = [];
  writesAttempted = 0;
  readonly #record: boolean;
  readonly #digest: OutputDigest | null;
  t = 0;
  #seq = 0;
  readonly #q = new EventHeap<Ev>();
  readonly hosts: Record<Host, HostState>;
  readonly pg: Record<DbNode, PgModel>;
  readonly agents: Record<DbNode, AgentProc>;
  readonly witness: WitnessProc;
  readonly #agentSettings: Record<DbNode, AgentSettings>;
  readonly #witnessSettings: WitnessSettings;
  // network
  readonly #blocked = new Map<string, number>();
  readonly #loss = new Map<string, number>();
  readonly #extraDelay = new Map<string, number>();
  // EC2
  ec2Owner: DbNode | null = 'db-a';
  ec2OwnerTerm = 1;
  routed: DbNode | null = 'db-a';
  readonly #ownerHistory: { t: number; owner: DbNode | null }[] = [{ t: 0, owner: 'db-a' }];
  readonly #ec2Faults = new Map<Ec2FaultKind, number>();
  #remapSeq = 0;
  // observer
  #maxAckTimeline = 0;
  #maxTermSeen: Record<Host, number> = { 'db-a': 0, 'db-b': 0, witness: 0 };
  #manualTerms = new Set<number>();
  /** Terms that a vote, a forced failover or a handover created (I7: no node holds any other). */
  readonly #createdTerms = new Set<number>([1]);

  constructor(sched: Schedule, opts: RunOptions = {}) {
    this.sched = sched;
    this.timings = opts.timings ?? defaultTimings;
    this.#senderLeaseValidMs = leaseValidMs(this.timings);
    this.cores = opts.cores ?? realCores;
    this.#record = opts.transcript ?? false;
    this.#digest = this.#record && opts.digestEveryMs !== undefined ? new OutputDigest(opts.digestEveryMs) : null;
    this.rng = new Rng(sched.seed);
    this.hosts = { 'db-a': { crashed: false, paused: false, backlog: [] }, 'db-b': { crashed: false, paused: false, backlog: [] }, witness: { crashed: false, paused: false, backlog: [] } };
    const mkPg = (primary: boolean): PgModel => ({
      running: true, inRecovery: !primary, readOnly: false, timeline: 1, history: new Map(), lsn: 1000n,
      receiverOn: !primary, lastStreamAt: 0, caughtUpAt: 0, ssn: primary && sched.replication === 'sync' ? 'db-b' : null, stalledUntil: 0, vetoUntil: 0, pending: [],
    });
    this.pg = { 'db-a': mkPg(true), 'db-b': mkPg(false) };
    const t = this.timings;
    const settings = (self: DbNode): AgentSettings => defaultAgentSettings({ cluster: 'sim', self, peer: other(self), witness: 'witness', timings: t, replication: sched.replication });
    this.#agentSettings = { 'db-a': settings('db-a'), 'db-b': settings('db-b') };
    this.#witnessSettings = { cluster: 'sim', self: 'witness', nodes: ['db-a', 'db-b'], timings: t, replication: sched.replication, lagBytesMax: 16n * 1024n * 1024n };
    const disk: AgentDurable = { term: 1, primaryOfTerm: 'db-a' };
    this.agents = {
      'db-a': { state: null, inc: 0, disk },
      'db-b': { state: null, inc: 0, disk },
    };
    this.witness = {
      state: null,
      inc: 0,
      disk: { ...initialWitnessDurable, term: 1, primaryOfTerm: 'db-a', votedTerm: 1, votedFor: 'db-a', syncEligible: sched.replication === 'sync' ? 'db-b' : null },
    };
    for (const h of HOSTS) this.#maxTermSeen[h] = 1;
    if (sched.bootstrap === true) {
      const fresh: AgentDurable = { term: 0, primaryOfTerm: null };
      this.agents['db-a'].disk = fresh;
      this.agents['db-b'].disk = fresh;
      this.witness.disk = { ...initialWitnessDurable, syncEligible: null };
      this.ec2Owner = null;
      this.ec2OwnerTerm = 0;
      this.routed = null;
      this.#ownerHistory.length = 0;
      for (const h of HOSTS) this.#maxTermSeen[h] = 0;
      this.#createdTerms.clear();
    }
  }

  // --- time and events -------------------------------------------------------------------------

  local(h: Host): number {
    return this.t * this.sched.clockRates[h];
  }
  /** Real delay for a duration measured on host h's clock. */
  #realDelay(h: Host, localMs: number): number {
    return localMs / this.sched.clockRates[h];
  }
  at(t: number, fn: () => void): void {
    this.#q.push({ at: Math.max(t, this.t), seq: this.#seq++, fn });
  }
  after(ms: number, fn: () => void): void {
    this.at(this.t + ms, fn);
  }
  /** Run fn as a process on host h: dropped if the host is down, deferred while it is paused. */
  #onHost(h: Host, fn: () => void): void {
    const hs = this.hosts[h];
    if (hs.crashed) return;
    if (hs.paused) hs.backlog.push(fn);
    else fn();
  }
  log(who: string, text: string): void {
    if (this.#record) this.transcript.push(`[${(this.t / 1000).toFixed(3).padStart(7)}] ${who.padEnd(8)} ${text}`);
  }
  violation(text: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${Math.round(this.t)}ms: ${text}`);
    this.log('OBSERVER', `VIOLATION ${text}`);
  }

  // --- network -----------------------------------------------------------------------------------

  #key(a: string, b: string): string {
    return `${a}>${b}`;
  }
  linkUp(a: Host | 'client', b: Host | 'client'): boolean {
    return !((this.#blocked.get(this.#key(a, b)) ?? 0) > 0);
  }
  #block(a: Host | 'client', b: Host | 'client', delta: number): void {
    const k = this.#key(a, b);
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + delta);
  }
  /** Deliver a packet a→b, or lose it. Returns whether it will arrive. */
  #transmit(a: Host, b: Host, fn: () => void): void {
    if (!this.linkUp(a, b)) return;
    const k = this.#key(a, b);
    if (this.rng.chance(this.#loss.get(k) ?? 0)) return;
    const [lo, hi] = this.sched.delayMs;
    const d = this.rng.int(lo, hi) + (this.#extraDelay.get(k) ?? 0);
    this.after(d, () => this.#onHost(b, fn));
    if (this.rng.chance(this.sched.duplicateP)) this.after(d + this.rng.int(0, 20), () => this.#onHost(b, fn));
  }
  /**
   * A request/response exchange with a timeout on the requester's clock. `serve` runs on the
   * target and answers through its callback (or not at all); `done` runs once with the answer or null.
   */
  #exchange<R>(from: Host, to: Host, serve: (answer: (r: R) => void) => void, done: (r: R | null) => void): void {
    let settled = false;
    const settle = (r: R | null) => {
      if (settled) return;
      settled = true;
      done(r);
    };
    this.#transmit(from, to, () => serve((r) => this.#transmit(to, from, () => settle(r))));
    this.after(this.#realDelay(from, this.timings.requestTimeoutMs), () => this.#onHost(from, () => settle(null)));
  }

  // --- PostgreSQL model ------------------------------------------------------------------------

  #pgUsable(n: DbNode): boolean {
    return this.pg[n].running && !this.hosts[n].crashed && !this.hosts[n].paused;
  }
  #stalled(n: DbNode): boolean {
    return this.t < this.pg[n].stalledUntil;
  }
  #streaming(n: DbNode): boolean {
    const p = this.pg[n];
    return p.running && p.inRecovery && p.receiverOn && this.t - p.lastStreamAt <= STREAM_FRESH_MS && p.lastStreamAt > 0;
  }
  snapshot(n: DbNode): PgSnapshot {
    const p = this.pg[n];
    if (!p.running) {
      return { running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n, streaming: false, syncStandby: null, standbyInSync: false };
    }
    const s = other(n);
    const standbyInSync = !p.inRecovery && p.ssn === s && this.#streaming(s) && this.t - this.pg[s].caughtUpAt <= 2 * PUMP_EVERY_MS;
    return {
      running: true,
      inRecovery: p.inRecovery,
      writable: !p.inRecovery && !p.readOnly,
      timeline: p.timeline,
      lsn: p.lsn,
      replayLsn: p.lsn,
      streaming: this.#streaming(n),
      syncStandby: p.inRecovery ? null : p.ssn,
      standbyInSync,
    };
  }
  #writeProbe(n: DbNode): WriteProbe {
    const p = this.pg[n];
    if (!p.running) return 'failed';
    if (p.inRecovery) return 'not-run';
    // A probe on a stalled disk finishes late; it only counts as stalled if it outlasts its timeout.
    if (this.#stalled(n) && p.stalledUntil - this.t >= this.timings.writeProbeTimeoutMs) return 'stalled';
    if (p.readOnly) return 'read-only';
    // The probe commits with synchronous_commit = local: a lost standby must not look like a stall.
    p.lsn += 10n;
    return 'ok';
  }
  #pump(): void {
    for (const s of DB_NODES) {
      const sp = this.pg[s];
      const u = other(s);
      const up = this.pg[u];
      if (!sp.running || !sp.inRecovery || !sp.receiverOn || !this.#pgUsable(s) || this.#stalled(s)) continue;
      if (!this.#pgUsable(u) || up.inRecovery || up.timeline !== sp.timeline) continue;
      if (!this.linkUp(u, s) || !this.linkUp(s, u)) continue;
      if (this.rng.chance(this.#loss.get(this.#key(u, s)) ?? 0)) continue;
      if (up.lsn > sp.lsn) sp.lsn = up.lsn;
      sp.lastStreamAt = this.t;
      if (sp.lsn >= up.lsn) sp.caughtUpAt = this.t;
      if (up.ssn === s && up.pending.length > 0) {
        const keep: PgModel['pending'] = [];
        for (const c of up.pending) {
          if (c.lsn <= sp.lsn) this.#ack(u, c.lsn);
          else keep.push(c);
        }
        up.pending = keep;
      }
    }
    for (const n of DB_NODES) {
      const p = this.pg[n];
      if (p.pending.length > 0 && this.t - p.pending[0]!.issuedAt > COMMIT_TIMEOUT_MS) {
        p.pending = p.pending.filter((c) => this.t - c.issuedAt <= COMMIT_TIMEOUT_MS);
      }
    }
    this.after(PUMP_EVERY_MS, () => this.#pump());
  }
  #ack(n: DbNode, lsn: bigint): void {
    const tl = this.pg[n].timeline;
    this.acks.push({ t: this.t, node: n, timeline: tl, lsn });
    if (tl < this.#maxAckTimeline) {
      this.violation(`I1: ${n} acknowledged a write on timeline ${tl} after a write was acknowledged on timeline ${this.#maxAckTimeline}`);
    }
    this.#maxAckTimeline = Math.max(this.#maxAckTimeline, tl);
  }
  #clientWrite(): void {
    this.writesAttempted++;
    const n = this.routed;
    if (n !== null && this.linkUp('client', n) && this.#pgUsable(n) && !this.#stalled(n)) {
      const p = this.pg[n];
      if (!p.inRecovery && !p.readOnly) {
        p.lsn += WRITE_BYTES;
        if (p.ssn !== null) p.pending.push({ lsn: p.lsn, issuedAt: this.t });
        else this.#ack(n, p.lsn);
      }
    }
    this.after(WRITE_EVERY_MS, () => this.#clientWrite());
  }
  #preserved(n: DbNode, a: AckRecord): boolean {
    const p = this.pg[n];
    if (a.timeline === p.timeline) return a.lsn <= p.lsn;
    const end = p.history.get(a.timeline);
    return end !== undefined && a.lsn <= end;
  }

  // --- agents ----------------------------------------------------------------------------------

  #startAgent(n: DbNode): void {
    const proc = this.agents[n];
    proc.inc++;
    // Each process's lease seqs start above every earlier one's (the shell's persisted boot counter).
    proc.state = this.cores.bootAgent(this.#agentSettings[n], proc.disk, this.local(n), proc.inc * 2 ** 32);
    this.log(n, `agent started (term ${proc.disk.term}, primary ${proc.disk.primaryOfTerm})`);
    const inc = proc.inc;
    this.after(this.rng.int(0, 50), () => this.#onHost(n, () => this.#agentTick(n, inc)));
  }
  #agentAlive(n: DbNode, inc: number): boolean {
    const p = this.agents[n];
    return p.inc === inc && p.state !== null;
  }
  #agentTick(n: DbNode, inc: number): void {
    if (!this.#agentAlive(n, inc)) return;
    const peer = other(n);
    this.#exchange<AgentStatus | null>(
      n,
      peer,
      (answer) => {
        const ps = this.agents[peer].state;
        if (ps !== null) answer(agentStatus({ ...ps, nowMs: this.local(peer) }));
      },
      (status) => {
        if (!this.#agentAlive(n, inc)) return;
        const pg = this.snapshot(n);
        const probe = this.#writeProbe(n);
        this.#stepAgent(n, inc, { kind: 'tick', nowMs: this.local(n), pg, writeProbe: probe, peer: status });
      },
    );
    this.after(this.#realDelay(n, this.timings.heartbeatMs), () => this.#onHost(n, () => this.#agentTick(n, inc)));
  }
  #stepAgent(n: DbNode, inc: number, input: Parameters<typeof stepAgent>[1], respond?: (r: PeerReply) => void): void {
    const proc = this.agents[n];
    if (proc.state === null || proc.inc !== inc) return;
    const before = proc.state;
    const out: AgentOutput = this.cores.stepAgent(before, input);
    proc.state = out.state;
    for (const v of agentStepViolations(before, out)) this.violation(`core invariant: ${n} ${v} (after ${input.kind})`);
    this.#noteOutput(n, out.reason, out.actions);
    this.#noteReason(n, out.reason);
    this.#execute(n, inc, out.actions, respond);
    this.#observe();
  }
  #noteOutput(who: string, reason: string, actions: readonly unknown[], verdict?: unknown): void {
    const d = this.#digest;
    if (d === null) return;
    while (this.t >= d.nextAtMs) {
      this.log('DIGEST', d.value());
      d.nextAtMs += d.everyMs;
    }
    d.add(canonicalJson([who, Math.round(this.t * 1000), reason, actions, verdict ?? null]));
  }
  #noteReason(who: string, reason: string): void {
    if (!this.#record) return;
    if (/^(nothing to do|answered (lease-request|vote-request|sync-update)|noted (lease-reply|ack|sync-update-reply)|effect finished|polled)/.test(reason)) return;
    this.log(who, reason);
  }

  /** Execute an action list with the order rules of core/actions.ts. */
  #execute(h: Host, inc: number, actions: readonly Action<AgentDurable | WitnessDurable>[], respond?: (r: PeerReply) => void): void {
    actions.forEach((a, i) => {
      if (a.kind === 'persist' && i !== 0) this.violation(`order: ${h} emitted persist at position ${i}, not first`);
    });
    const first = actions[0];
    const run = (list: readonly Action<AgentDurable | WitnessDurable>[]) => {
      for (const a of list) this.#perform(h, inc, a, respond);
    };
    if (first?.kind === 'persist') {
      this.#noteCreatedTerm(h, first.state, actions);
      this.#persist(h, first.state);
      // fsync takes a moment: a crash in between loses the sends but never the persisted term.
      this.after(1, () => this.#onHost(h, () => {
        if (this.#procInc(h) === inc) run(actions.slice(1));
      }));
    } else {
      run(actions);
    }
  }
  #procInc(h: Host): number {
    return h === 'witness' ? this.witness.inc : this.agents[h].inc;
  }
  /**
   * Terms are created in three places only: the witness's vote and forced failover (a new votedTerm)
   * and a primary's handover (it persists the next term and sends it in the same step).
   */
  #noteCreatedTerm(h: Host, d: AgentDurable | WitnessDurable, actions: readonly Action<AgentDurable | WitnessDurable>[]): void {
    if (h === 'witness') {
      const w = d as WitnessDurable;
      if (w.votedTerm > this.witness.disk.votedTerm) this.#createdTerms.add(w.votedTerm);
    } else if (actions.some((a) => a.kind === 'send' && a.msg.kind === 'handover' && a.msg.term === d.term)) {
      this.#createdTerms.add(d.term);
    }
  }
  #persist(h: Host, d: AgentDurable | WitnessDurable): void {
    if (d.term < this.#maxTermSeen[h]) this.violation(`I2: ${h} persisted term ${d.term} below ${this.#maxTermSeen[h]}`);
    // I7: a node adopts only terms that were created; a forged one (a key holder's lease request)
    // must be refused, above all one that leaves no room for the next term.
    if (d.term > 0 && !this.#createdTerms.has(d.term)) this.violation(`I7: ${h} persisted term ${d.term}, which no vote, forced failover or handover created`);
    this.#maxTermSeen[h] = Math.max(this.#maxTermSeen[h], d.term);
    if (h === 'witness') {
      const w = d as WitnessDurable;
      // I4: automatic failover is paused in maintenance — no new vote may be recorded while it is on.
      if (w.maintenance && w.votedTerm > this.witness.disk.votedTerm && !this.#manualTerms.has(w.votedTerm)) {
        this.violation(`I4: the witness voted for ${w.votedFor} in term ${w.votedTerm} while the cluster is in maintenance`);
      }
      this.witness.disk = w;
    }
    else this.agents[h].disk = d as AgentDurable;
  }
  #perform(h: Host, inc: number, a: Action<AgentDurable | WitnessDurable>, respond?: (r: PeerReply) => void): void {
    switch (a.kind) {
      case 'persist':
        return;
      case 'reply':
        this.#checkReply(h, a.msg);
        respond?.(a.msg);
        return;
      case 'send':
        return this.#send(h, inc, a.to as Host, a.msg);
      case 'notify':
        this.notifications.push({ t: this.t, host: h, event: a.event, detail: a.detail });
        this.log(h, `notify ${a.event}: ${a.detail}`);
        return;
      case 'effect':
        if (h === 'witness') return;
        return this.#startEffect(h, inc, a.id, a.effect);
    }
  }
  #checkReply(h: Host, msg: PeerReply): void {
    // I2: a grant is only ever given in the grantor's current term, never to a lower one.
    if ((msg.kind === 'lease-reply' || msg.kind === 'vote-reply') && msg.granted && msg.term < this.#maxTermSeen[h]) {
      this.violation(`I2: ${h} granted ${msg.kind} in term ${msg.term} after seeing ${this.#maxTermSeen[h]}`);
    }
  }
  #send(from: Host, inc: number, to: Host, msg: PeerRequest): void {
    this.#exchange<PeerReply>(
      from,
      to,
      (answer) => this.#serve(to, msg, answer),
      (reply) => {
        if (reply === null || this.#procInc(from) !== inc) return;
        if (from === 'witness') this.#stepWitness(inc, { kind: 'reply', nowMs: this.local('witness'), msg: reply, inReplyTo: msg.kind });
        else this.#stepAgent(from, inc, { kind: 'reply', nowMs: this.local(from), msg: reply });
      },
    );
  }
  #serve(to: Host, msg: PeerRequest, answer: (r: PeerReply) => void): void {
    if (to === 'witness') {
      if (this.witness.state === null) return;
      this.#stepWitness(this.witness.inc, { kind: 'request', nowMs: this.local('witness'), msg, peerLeaseValidMs: this.#senderLeaseValidMs }, answer);
    } else {
      const proc = this.agents[to];
      if (proc.state === null) return;
      this.#stepAgent(to, proc.inc, { kind: 'request', nowMs: this.local(to), msg, peerLeaseValidMs: this.#senderLeaseValidMs }, answer);
    }
  }

  // --- effects -----------------------------------------------------------------------------------

  #startEffect(n: DbNode, inc: number, id: number, e: Effect): void {
    const finish = (delayMs: number, apply: () => Omit<EffectResult, 'id'>) => {
      this.after(delayMs, () => {
        if (this.hosts[n].crashed) return;
        const r = apply();
        this.#onHost(n, () => {
          if (this.#agentAlive(n, inc)) this.#stepAgent(n, inc, { kind: 'effect-done', nowMs: this.local(n), result: { id, ...r } });
        });
      });
    };
    const p = this.pg[n];
    const fail = (detail: string) => ({ ok: false, detail });
    switch (e.kind) {
      case 'fence':
        if (this.#stalled(n)) {
          // ALTER SYSTEM cannot write on a stalled disk: the shell falls back to an immediate stop.
          return finish(1000, () => {
            this.#pgDown(n);
            p.readOnly = true;
            return { ok: true, detail: 'stopped (disk stalled)', finalLsn: p.lsn };
          });
        }
        return finish(this.rng.int(10, 50), () => {
          p.readOnly = true;
          p.pending = [];
          if (e.mode === 'fast-stop') this.#pgDown(n);
          this.log(n, `postgresql fenced (${e.mode})`);
          return { ok: true, detail: 'fenced', finalLsn: p.lsn };
        });
      case 'unfence':
        return finish(this.rng.int(10, 30), () => {
          if (!p.running) return fail('postgresql not running');
          p.readOnly = false;
          return { ok: true, detail: 'unfenced' };
        });
      case 'drop-vip-local':
      case 'add-vip-local':
        return finish(5, () => ({ ok: true, detail: e.kind }));
      case 'stop-wal-receiver':
        return finish(this.rng.int(20, 100), () => {
          if (!p.running) return fail('postgresql not running');
          p.receiverOn = false;
          return { ok: true, detail: 'receiver stopped', finalLsn: p.lsn };
        });
      case 'set-sync-standby':
        return finish(this.rng.int(10, 30), () => {
          if (!p.running || this.#stalled(n)) return fail('postgresql not available');
          p.ssn = e.standby as DbNode | null;
          if (p.ssn === null) {
            for (const c of p.pending) this.#ack(n, c.lsn);
            p.pending = [];
          }
          return { ok: true, detail: `synchronous_standby_names=${e.standby ?? ''}` };
        });
      case 'promote':
        return finish(this.rng.int(200, 600), () => this.#promote(n));
      case 'move-vip-cloud':
        return this.#moveVip(n, e.term, e.budgetMs, finish);
      case 'verify-vip':
        return finish(this.rng.int(30, 150), () => {
          const stale = (this.#ec2Faults.get('stale') ?? 0) > this.t;
          const seen = stale ? this.#ownerAt(this.t - 2000) : this.routed;
          return { ok: true, detail: 'described', vipPlacement: seen === n ? 'here' : 'elsewhere' };
        });
      case 'start-postgres':
        return finish(this.rng.int(300, 800), () => {
          if (this.#stalled(n)) return fail('start timed out (disk stalled)');
          p.running = true;
          return { ok: true, detail: 'started' };
        });
      case 'rejoin': {
        const src = e.primary as DbNode;
        const ok = this.#pgUsable(src) && !this.pg[src].inRecovery && this.linkUp(n, src) && this.linkUp(src, n);
        if (!ok) return finish(500, () => fail(`cannot reach primary ${src}`));
        return finish(this.rng.int(1000, 3000), () => {
          const sp = this.pg[src];
          if (!this.#pgUsable(src) || sp.inRecovery) return fail(`${src} is no longer a usable primary`);
          p.running = true;
          p.inRecovery = true;
          p.readOnly = false;
          p.timeline = sp.timeline;
          p.history = new Map(sp.history);
          p.lsn = sp.lsn;
          p.receiverOn = true;
          p.lastStreamAt = 0;
          p.pending = [];
          this.log(n, `rewound and restarted as a standby of ${src} on timeline ${sp.timeline}`);
          return { ok: true, detail: 'pg_rewind' };
        });
      }
    }
  }
  #promote(n: DbNode): Omit<EffectResult, 'id'> {
    const p = this.pg[n];
    // As the agent's runner does: the hook runs before pg_promote() and its veto is a failed promote.
    if (this.t < p.vetoUntil) return { ok: false, detail: 'vetoed by the before-promote hook (exited 1)' };
    if (!p.running) return { ok: false, detail: 'postgresql not running' };
    if (!p.inRecovery) return { ok: true, detail: 'already primary' };
    if (p.receiverOn) this.violation(`I4: ${n} promoted while its WAL receiver was running`);
    const term = this.agents[n].disk.term;
    const maxTl = Math.max(this.pg['db-a'].timeline, this.pg['db-b'].timeline);
    if (p.timeline < maxTl) this.violation(`I4: ${n} promoted from stale timeline ${p.timeline} (newest ${maxTl})`);
    p.history.set(p.timeline, p.lsn);
    p.timeline = maxTl + 1;
    p.inRecovery = false;
    p.receiverOn = false;
    p.ssn = null;
    let lost = 0;
    let lostBytes = 0n;
    for (const a of this.acks) {
      if (!this.#preserved(n, a)) {
        lost++;
        lostBytes += WRITE_BYTES;
      }
    }
    const manual = this.#manualTerms.has(term);
    if (lost > 0 && !manual) {
      if (this.sched.replication === 'sync') this.violation(`I3: promoting ${n} (term ${term}) loses ${lost} acknowledged writes`);
      else if (lostBytes > this.#witnessSettings.lagBytesMax) this.violation(`I3: promoting ${n} loses ${lostBytes} bytes, above lagBytesMax`);
    }
    this.promotions.push({ t: this.t, node: n, term, lostWrites: lost });
    this.log(n, `postgresql promoted to timeline ${p.timeline} at lsn ${p.lsn} (term ${term}${lost ? `, ${lost} acked writes lost` : ''})`);
    return { ok: true, detail: 'promoted' };
  }
  #ownerAt(t: number): DbNode | null {
    let o: DbNode | null = null;
    for (const h of this.#ownerHistory) {
      if (h.t <= t) o = h.owner;
      else break;
    }
    return o;
  }
  #moveVip(n: DbNode, term: number, budgetMs: number, finish: (d: number, f: () => Omit<EffectResult, 'id'>) => void): void {
    const fault = (k: Ec2FaultKind) => (this.#ec2Faults.get(k) ?? 0) > this.t;
    const budget = this.#realDelay(n, budgetMs);
    const arrive = this.rng.int(20, 150);
    if (fault('hang')) return finish(budget, () => ({ ok: false, detail: 'timed out (hang)' }));
    if (fault('throttle')) return finish(arrive * 2, () => ({ ok: false, detail: 'RequestLimitExceeded' }));
    if (fault('5xx')) return finish(arrive * 2, () => ({ ok: false, detail: 'InternalError' }));
    const lost = fault('lost');
    this.after(arrive, () => {
      this.#acceptMove(n, term);
    });
    finish(Math.min(budget, arrive * 2), () => (lost ? { ok: false, detail: 'response lost' } : { ok: true, detail: 'assigned' }));
  }
  #acceptMove(n: DbNode, term: number): void {
    // I5: the VIP is only ever moved to the node holding the newest term.
    const newest = Math.max(...Object.values(this.#maxTermSeen));
    if (term < this.ec2OwnerTerm) this.violation(`I5: VIP moved to ${n} for term ${term} after a move for term ${this.ec2OwnerTerm}`);
    if (term < newest && this.agents[n].disk.term < newest) this.violation(`I5: VIP moved to ${n} for term ${term} while term ${newest} exists`);
    this.ec2OwnerTerm = Math.max(this.ec2OwnerTerm, term);
    this.vipMoves.push({ t: this.t, node: n, term });
    if (this.ec2Owner === n) return; // already assigned: EC2 treats it as done
    this.ec2Owner = n;
    this.#ownerHistory.push({ t: this.t, owner: n });
    const slow = (this.#ec2Faults.get('slow-remap') ?? 0) > this.t;
    const remap = slow ? this.rng.int(3000, 6000) : this.rng.int(200, 800);
    const seq = ++this.#remapSeq;
    this.log('ec2', `VIP assigned to ${n} (term ${term}); remap in ${remap} ms`);
    this.after(remap, () => {
      if (seq !== this.#remapSeq) return;
      this.routed = n;
      this.log('ec2', `VIP now routes to ${n}`);
    });
  }

  // --- witness -------------------------------------------------------------------------------------

  #startWitness(): void {
    const w = this.witness;
    w.inc++;
    w.state = this.cores.bootWitness(this.#witnessSettings, w.disk, this.local('witness'));
    this.log('witness', `witness started (term ${w.disk.term})`);
    const inc = w.inc;
    this.after(this.rng.int(0, 50), () => this.#onHost('witness', () => this.#witnessTick(inc)));
  }
  #witnessTick(inc: number): void {
    if (this.witness.inc !== inc || this.witness.state === null) return;
    for (const n of DB_NODES) {
      this.#exchange<AgentStatus | null>(
        'witness',
        n,
        (answer) => {
          const s = this.agents[n].state;
          if (s !== null) answer(agentStatus({ ...s, nowMs: this.local(n) }));
        },
        (status) => {
          const pgReachable = this.linkUp('witness', n) && this.linkUp(n, 'witness') && this.#pgUsable(n);
          this.#stepWitness(inc, { kind: 'poll', nowMs: this.local('witness'), node: n, status, pgReachable });
        },
      );
    }
    this.after(this.#realDelay('witness', this.timings.heartbeatMs), () => this.#onHost('witness', () => this.#witnessTick(inc)));
  }
  #stepWitness(inc: number, input: Parameters<typeof stepWitness>[1], respond?: (r: PeerReply) => void): WitnessOutput | null {
    const w = this.witness;
    if (w.state === null || w.inc !== inc) return null;
    const before = w.state;
    const out = this.cores.stepWitness(before, input);
    w.state = out.state;
    for (const v of witnessStepViolations(before, out)) this.violation(`core invariant: witness ${v} (after ${input.kind})`);
    this.#noteOutput('witness', out.reason, out.actions, out.verdict);
    this.#noteReason('witness', out.reason);
    this.#execute('witness', inc, out.actions, respond);
    this.#observe();
    return out;
  }
  operator(command: OperatorCommand): void {
    this.#onHost('witness', () => {
      const out = this.#stepWitness(this.witness.inc, { kind: 'operator', nowMs: this.local('witness'), command });
      if (out?.verdict) this.log('operator', `${command.kind}: ${out.verdict.ok ? 'accepted' : 'refused'}: ${out.verdict.message}`);
    });
  }

  // --- the observer ----------------------------------------------------------------------------

  /** Write authority in real time: a lease that is valid now AND a PostgreSQL that accepts writes. */
  authority(n: DbNode): boolean {
    const s = this.agents[n].state;
    const p = this.pg[n];
    if (s === null || !p.running || p.inRecovery || p.readOnly) return false;
    if (s.durable.primaryOfTerm !== n || s.lease === null || s.lease.term !== s.durable.term) return false;
    return this.local(n) < s.lease.validUntilMs;
  }
  #observe(): void {
    if (this.authority('db-a') && this.authority('db-b')) this.violation('I1: db-a and db-b both hold write authority');
  }

  // --- faults ------------------------------------------------------------------------------------

  #pgDown(n: DbNode): void {
    const p = this.pg[n];
    p.running = false;
    p.pending = [];
  }
  #crashAgent(h: Host): void {
    if (h === 'witness') {
      this.witness.state = null;
      this.witness.inc++;
    } else {
      this.agents[h].state = null;
      this.agents[h].inc++;
    }
  }
  #restartAgent(h: Host): void {
    if (this.hosts[h].crashed) return;
    if (h === 'witness') {
      if (this.witness.state === null) this.#startWitness();
    } else if (this.agents[h].state === null) {
      this.#startAgent(h);
    }
  }
  #linkFault(a: Host, b: Host, oneWay: boolean, durMs: number): void {
    this.#block(a, b, 1);
    if (!oneWay) this.#block(b, a, 1);
    this.after(durMs, () => {
      this.#block(a, b, -1);
      if (!oneWay) this.#block(b, a, -1);
    });
  }
  #isolate(n: Host, durMs: number): void {
    for (const h of HOSTS) if (h !== n) this.#linkFault(n, h, false, durMs);
    this.#block('client', n, 1);
    this.after(durMs, () => this.#block('client', n, -1));
  }
  #apply(f: Fault): void {
    this.log('FAULT', describeFault(f));
    switch (f.kind) {
      case 'partition':
        return this.#linkFault(f.a, f.b, f.oneWay, f.durMs);
      case 'isolate':
        return this.#isolate(f.node, f.durMs);
      case 'loss': {
        const set = (k: string, p: number) => (p > 0 ? this.#loss.set(k, p) : this.#loss.delete(k));
        set(this.#key(f.a, f.b), f.p);
        set(this.#key(f.b, f.a), f.p);
        this.after(f.durMs, () => {
          set(this.#key(f.a, f.b), 0);
          set(this.#key(f.b, f.a), 0);
        });
        return;
      }
      case 'delay': {
        const k = this.#key(f.a, f.b);
        this.#extraDelay.set(k, (this.#extraDelay.get(k) ?? 0) + f.extraMs);
        this.after(f.durMs, () => this.#extraDelay.set(k, (this.#extraDelay.get(k) ?? 0) - f.extraMs));
        return;
      }
      case 'flap':
        for (let s = 0; s + f.cutMs <= f.durMs; s += f.periodMs) this.after(s, () => this.#linkFault(f.a, f.b, false, f.cutMs));
        return;
      case 'crash-agent':
        this.#crashAgent(f.node);
        this.after(f.downMs, () => this.#restartAgent(f.node));
        return;
      case 'crash-host': {
        const h = f.node;
        this.#crashAgent(h);
        this.hosts[h].crashed = true;
        this.hosts[h].backlog = [];
        if (h !== 'witness') this.#pgDown(h);
        this.after(f.downMs, () => {
          this.hosts[h].crashed = false;
          if (h !== 'witness') this.pg[h].running = true; // PostgreSQL starts at boot as it was configured
          this.#restartAgent(h);
        });
        return;
      }
      case 'kill-pg':
        this.#pgDown(f.node);
        this.after(f.downMs, () => {
          if (!this.hosts[f.node].crashed) this.pg[f.node].running = true;
        });
        return;
      case 'pause-host': {
        const hs = this.hosts[f.node];
        hs.paused = true;
        this.after(f.durMs, () => {
          hs.paused = false;
          const backlog = hs.backlog;
          hs.backlog = [];
          this.log('FAULT', `resume host ${f.node} (${backlog.length} deferred events)`);
          for (const fn of backlog) fn();
        });
        return;
      }
      case 'veto-promote':
        this.pg[f.node].vetoUntil = Math.max(this.pg[f.node].vetoUntil, this.t + f.durMs);
        return;
      case 'stall-disk':
        this.pg[f.node].stalledUntil = Math.max(this.pg[f.node].stalledUntil, this.t + f.durMs);
        return;
      case 'ec2':
        this.#ec2Faults.set(f.fault, Math.max(this.#ec2Faults.get(f.fault) ?? 0, this.t + f.durMs));
        return;
      case 'switchover':
        return this.operator({ kind: 'switchover', to: null, delayMs: 0, by: 'sim' });
      case 'maintenance':
        this.operator({ kind: 'maintenance', on: true, by: 'sim' });
        this.after(f.durMs, () => this.operator({ kind: 'maintenance', on: false, by: 'sim' }));
        return;
      case 'forge-lease-request':
        return this.#forgeLeaseRequest(f.to, f.from, f.ahead);
    }
  }
  /** A key holder's lease request: it arrives wherever the attacker sits, past every partition. */
  #forgeLeaseRequest(to: Host, from: DbNode, ahead: number | 'max-safe-integer'): void {
    const term = ahead === 'max-safe-integer' ? Number.MAX_SAFE_INTEGER : Math.max(...Object.values(this.#maxTermSeen)) + ahead;
    const msg: PeerRequest = { v: 1, cluster: 'sim', term, from, kind: 'lease-request', seq: 2 ** 40, lsn: 0n, timeline: 1, syncStandby: null };
    this.after(this.rng.int(1, 3), () => this.#onHost(to, () => this.#serve(to, msg, (r) => this.log(to, `answered the forged lease request for term ${term}: ${r.kind === 'lease-reply' && r.granted ? 'granted' : 'refused'}`))));
  }
  /** Force-manual promotion bookkeeping (accept-data-loss runs are exempt from I3/I4 data checks). */
  markManual(term: number): void {
    this.#manualTerms.add(term);
  }

  // --- run -----------------------------------------------------------------------------------------

  run(): RunResult {
    const s = this.sched;
    for (const n of DB_NODES) this.#startAgent(n);
    this.#startWitness();
    this.after(PUMP_EVERY_MS, () => this.#pump());
    this.after(WRITE_EVERY_MS, () => this.#clientWrite());
    for (const f of s.faults) this.at(f.at, () => this.#apply(f));
    for (;;) {
      const e = this.#q.pop();
      if (e === undefined || e.at > s.endMs) break;
      this.t = e.at;
      e.fn();
    }
    this.t = s.endMs;
    if (this.#digest !== null) this.log('DIGEST', `${this.#digest.value()} (end)`);
    const finalPrimary = this.#checkConverged();
    return {
      schedule: s,
      violations: this.violations,
      transcript: this.transcript,
      notifications: this.notifications,
      acks: this.acks,
      promotions: this.promotions,
      vipMoves: this.vipMoves,
      finalPrimary,
      writesAttempted: this.writesAttempted,
    };
  }

  /** Liveness after healing: exactly one writable primary with a lease, holding the newest term and the VIP. */
  #checkConverged(): DbNode | null {
    const holders = DB_NODES.filter((n) => this.authority(n));
    if (holders.length !== 1) {
      this.violation(`liveness: ${holders.length} nodes hold write authority ${this.sched.endMs - this.sched.healAtMs} ms after every fault healed`);
      return null;
    }
    const p = holders[0]!;
    const newest = Math.max(...Object.values(this.#maxTermSeen));
    if (this.agents[p].disk.term !== newest) this.violation(`I5: primary ${p} holds term ${this.agents[p].disk.term}, newest is ${newest}`);
    if (this.routed !== p) this.violation(`I5: VIP routes to ${this.routed} but the primary is ${p}`);
    const standby = other(p);
    if (!this.#streaming(standby)) this.violation(`liveness: ${standby} is not streaming from ${p} after healing`);
    return p;
  }
}

/** A running sha256 over the core's outputs (see RunOptions.digestEveryMs). */
class OutputDigest {
  readonly #hash = createHash('sha256');
  nextAtMs: number;
  constructor(readonly everyMs: number) {
    this.nextAtMs = everyMs;
  }
  add(text: string): void {
    this.#hash.update(text).update('\n');
  }
  /** The digest so far (the running hash goes on). */
  value(): string {
    return `outputs so far ${this.#hash.copy().digest('hex').slice(0, 16)}`;
  }
}

/** JSON with sorted keys and bigints as strings: no object-order accident changes it. */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'bigint') return `"${v}n"`;
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export function runSchedule(s: Schedule, opts: RunOptions = {}): RunResult {
  return new World(s, opts).run();
}

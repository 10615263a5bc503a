// The deterministic simulator: the real decision core of the database nodes (db-a, db-b, and db-c
// in three-node runs on etcd) and the witness (nodes.ts),
// driven by models of PostgreSQL (postgres.ts: LSNs, sync acks, promotion, timelines), of EC2
// (ec2.ts: asynchronous remap, faults) and of the network (network.ts: partitions, loss, delay,
// duplication, reordering), with crashes and restarts that keep durable state, pauses, and clocks
// drifting within ρ (clock.ts). The checker (checker.ts) holds every invariant (docs/design.md,
// "The simulator") and checks them after every event; faults.ts says what each fault does.
// A run is a pure function of its schedule and timings: the seed replays it.
import { bootAgent, bootWitness, defaultTimings, receiverSilenceMs, stepAgent, stepWitness, type Timings } from '@pgvip/shared/core';
import { Checker, holdsWriteAuthority, type ClusterView } from './checker.js';
import { Hosts, SimClock } from './clock.js';
import { Ec2 } from './ec2.js';
import { EtcdCluster } from './etcd.js';
import { applyFault } from './faults.js';
import { Network } from './network.js';
import { Nodes, type EtcdBug } from './nodes.js';
import { Postgres, type AckRecord, type PgBug, type PromotionRecord } from './postgres.js';
import { RngStreams } from './rng.js';
import { dbNodesOf, eligibleOf, type DbNode, type Host, type Schedule } from './schedule.js';
import { Transcript } from './transcript.js';

export type { AckRecord, PromotionRecord } from './postgres.js';
export { canonicalJson } from './transcript.js';

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
  /** Overrides the schedule's timings. */
  readonly timings?: Timings;
  /** Record a readable transcript (costs time; off for bulk runs). */
  readonly transcript?: boolean;
  /**
   * With the transcript: every this many simulated ms, a line with a digest of every core output
   * so far (reason and actions of each step, routine ones included), so golden transcripts pin
   * what the readable lines leave out (every grant, every send) and show where a change begins.
   */
  readonly digestEveryMs?: number;
  /** A bug planted in the simulated etcd shell (variants.ts); only etcd runs have one. */
  readonly etcdBug?: EtcdBug;
  /** A bug planted in the agent's PostgreSQL shell (variants.ts). */
  readonly pgBug?: PgBug;
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
  /** On etcd: the host whose member led etcd as the schedule's first fault began (null: none). */
  readonly etcdLeader?: Host | null;
}

/** The witness's limit on what an async failover may lose. */
const LAG_BYTES_MAX = 16n * 1024n * 1024n;

/** One simulated run: the models wired together. */
class World implements ClusterView {
  readonly clock: SimClock;
  readonly hosts = new Hosts();
  readonly rngs: RngStreams;
  readonly transcript: Transcript;
  readonly check: Checker;
  readonly net: Network;
  readonly ec2: Ec2;
  readonly pg: Postgres;
  readonly nodes: Nodes;
  readonly etcd: EtcdCluster | null;
  /** An etcd bridge promise settled or started in the current event (runAsync drains them). */
  #woken = false;
  #etcdLeader: Host | null | undefined = undefined;
  readonly log = (who: string, text: string): void => this.transcript.log(who, text);

  constructor(readonly sched: Schedule, opts: RunOptions) {
    const timings = opts.timings ?? sched.timings ?? defaultTimings;
    const bootstrap = sched.bootstrap === true;
    this.clock = new SimClock(sched.clockRates);
    this.rngs = new RngStreams(sched.seed);
    this.transcript = new Transcript(this.clock, opts.transcript ?? false, opts.digestEveryMs);
    if (sched.nodes === 3 && sched.backend !== 'etcd') {
      throw new Error('three database nodes run only on etcd (the witness backend keeps two)');
    }
    const nodes = dbNodesOf(sched);
    // Who may be promoted: the sync record's and the grantors' candidates (noFailover nodes never are).
    const eligible = eligibleOf(sched);
    const check = new Checker(() => this.clock.t, this.log, {
      replication: sched.replication, lagBytesMax: LAG_BYTES_MAX, bootstrap, nodes,
      noFailover: sched.noFailover ?? [],
    });
    this.check = check;
    this.net = new Network(this.clock, this.hosts, this.rngs, sched, timings.requestTimeoutMs);
    this.ec2 = new Ec2(this.clock, this.rngs, check, this.log, (n) => this.nodes.agents[n].disk.term, bootstrap);
    this.pg = new Postgres({
      clock: this.clock, hosts: this.hosts, rngs: this.rngs, net: this.net, check, log: this.log,
      routed: () => this.ec2.routed, replication: sched.replication, writeProbeTimeoutMs: timings.writeProbeTimeoutMs,
      receiverSilenceMs: receiverSilenceMs(timings), nodes, syncStandbys: eligible.slice(1),
      ...(opts.pgBug === undefined ? {} : { bug: opts.pgBug }),
    });
    this.etcd = sched.backend === 'etcd'
      ? new EtcdCluster({
        clock: this.clock, hosts: this.hosts, net: this.net, rngs: this.rngs, check, log: this.log,
        replication: sched.replication, leaseMs: timings.leaseMs, bootstrap,
        leaderKeyExpired: (node, term) => this.nodes.etcdKeyExpired(node, term), nodes: eligible,
      })
      : null;
    const etcd = this.etcd;
    if (etcd !== null) check.watchSyncRecord(() => etcd.syncRecordBytes(), (n, tl, lsn) => this.pg.holds(n, tl, lsn));
    this.nodes = new Nodes({
      sched, timings, cores: opts.cores ?? realCores, clock: this.clock, hosts: this.hosts, rngs: this.rngs,
      net: this.net, pg: this.pg, ec2: this.ec2, check, view: this, transcript: this.transcript, etcd: this.etcd,
      wake: () => {
        this.#woken = true;
      },
      ...(opts.etcdBug === undefined ? {} : { etcdBug: opts.etcdBug }),
    }, LAG_BYTES_MAX);
  }

  // --- what the checker sees (ClusterView) ---------------------------------------------------------

  authority(n: DbNode): boolean {
    return holdsWriteAuthority(n, this.nodes.agents[n].state, this.pg.pg[n], this.clock.local(n));
  }
  durableTerm(n: DbNode): number {
    return this.nodes.agents[n].disk.term;
  }
  routed(): DbNode | null {
    return this.ec2.routed;
  }
  streaming(n: DbNode): boolean {
    return this.pg.streaming(n);
  }
  upstream(n: DbNode): DbNode | null {
    const p = this.pg.pg[n];
    return p.inRecovery ? p.upstream : null;
  }

  run(): RunResult {
    if (this.etcd !== null) throw new Error('a run on etcd is async: use runScheduleAsync');
    this.#start();
    this.clock.runUntil(this.sched.endMs);
    return this.#result();
  }
  async runAsync(): Promise<RunResult> {
    this.#start();
    await this.clock.runUntilAsync(this.sched.endMs, () => {
      const woken = this.#woken;
      this.#woken = false;
      return woken;
    });
    return this.#result();
  }
  #start(): void {
    this.etcd?.start();
    this.nodes.start();
    this.pg.start();
    this.sched.faults.forEach((f, i) => this.clock.at(f.at, () => {
      if (i === 0 && this.etcd !== null) this.#etcdLeader = this.etcd.leader();
      applyFault(this, f);
    }));
  }
  #result(): RunResult {
    const s = this.sched;
    this.transcript.end();
    const finalPrimary = this.check.converged(this, s.endMs - s.healAtMs);
    return {
      schedule: s,
      violations: this.check.violations,
      transcript: this.transcript.lines,
      notifications: this.nodes.notifications,
      acks: this.pg.acks,
      promotions: this.pg.promotions,
      vipMoves: this.ec2.vipMoves,
      finalPrimary,
      writesAttempted: this.pg.writesAttempted,
      ...(this.#etcdLeader === undefined ? {} : { etcdLeader: this.#etcdLeader }),
    };
  }
}

/** One run on the witness backend (synchronous). */
export function runSchedule(s: Schedule, opts: RunOptions = {}): RunResult {
  return new World(s, opts).run();
}

/** One run on either backend: on etcd the agents' real bridge is async (nodes.ts, etcd-shell.ts). */
export function runScheduleAsync(s: Schedule, opts: RunOptions = {}): Promise<RunResult> {
  const w = new World(s, opts);
  return w.etcd === null ? Promise.resolve(w.run()) : w.runAsync();
}

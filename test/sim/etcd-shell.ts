// The agent's shell on etcd, in the simulator: the core's messages to its quorum (ETCD_QUORUM_ID) go
// through the daemon's REAL etcd route, EtcdAgentQuorum (packages/agent/src/quorum/etcd/agent-quorum.ts:
// one call at a time, a lease request that finds one waiting dropped) and its EtcdQuorumBridge
// (bridge.ts), over a port in simulated time (etcd-port.ts); the switchover's quorum-handover effect
// runs the route's handover txn, and a (re)started agent reads the term record with the route's
// termAtStart (nodes.ts steps the reply in before the first tick, as runner.ts does). The route's bound
// on an answer (within requestTimeoutMs of the ask, #inTime) runs on the agent's simulated clock. Its
// member-status and switchover-key loops (start()) run on timers and are not modelled. One shell per
// agent process: a restarted agent starts with a new bridge that knows no lease.
//
// The bridge is async; the simulator is not. Every promise here settles inside a simulator event
// (an answer or a deadline), and the world runs the continuations it wakes (world.ts, runAsync)
// before the next event, at the same simulated instant: a seed still replays the same run.
import { pino } from 'pino';
import {
  ETCD_QUORUM_ID, type NodeId, type NodeTraits, type PeerReply, type PeerRequest, type Timings,
} from '@pgvip/shared/core';
import { EtcdAgentQuorum } from '../../packages/agent/src/quorum/etcd/agent-quorum.js';
import type { QuorumTermAtStart } from '../../packages/agent/src/quorum/route.js';
import type { Hosts, SimClock } from './clock.js';
import type { EtcdCluster } from './etcd.js';
import { SimEtcdPort } from './etcd-port.js';
import type { Rng } from './rng.js';
import type { DbNode } from './schedule.js';

export interface EtcdShellDeps {
  readonly etcd: EtcdCluster;
  readonly clock: SimClock;
  readonly hosts: Hosts;
  readonly node: DbNode;
  readonly alive: () => boolean;
  readonly wake: () => void;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  /** Every database node (the agent's settings.nodes): the grantors of new terms, and elections. */
  readonly nodes?: readonly NodeTraits[];
  /** The agent's draws of etcd members. */
  readonly rng: Rng;
  /** A bridge call threw (a bug in the bridge or the port): the checker reports it. */
  readonly failed: (what: string, err: unknown) => void;
  /**
   * The planted bug 'answer-after-request-timeout' (variants.ts): the route's clock stands still, so
   * its bound on an answer (within requestTimeoutMs of the ask, agent-quorum.ts #inTime) never cuts.
   */
  readonly unboundedAnswers?: boolean;
  /**
   * The planted bug 'withdraw-without-asking' (variants.ts): the question a standby asks before it
   * withdraws (a vote request without a final position, three or more nodes) is answered "the leader
   * key is gone" at once, without etcd: the behaviour before review-17 F9's fix.
   */
  readonly withdrawUnasked?: boolean;
}

/** The route logs nothing in the simulator (its messages are the transcript's business). */
const silent = pino({ level: 'silent' });

export class EtcdAgentShell {
  readonly port: SimEtcdPort;
  readonly #route: EtcdAgentQuorum;

  constructor(private readonly d: EtcdShellDeps) {
    this.port = new SimEtcdPort({
      etcd: d.etcd, clock: d.clock, hosts: d.hosts, node: d.node, alive: d.alive, wake: d.wake,
      timeoutMs: d.timings.requestTimeoutMs, rng: d.rng,
    });
    this.#route = new EtcdAgentQuorum(this.port, {
      cluster: 'sim', self: d.node, quorumId: ETCD_QUORUM_ID, timings: d.timings, replication: d.replication,
      ...(d.nodes === undefined ? {} : { nodes: d.nodes }),
      logger: silent, clock: d.unboundedAnswers === true ? () => 0 : () => d.clock.local(d.node),
      timer: d.unboundedAnswers === true ? () => () => undefined : (ms, fire) => this.#after(ms, fire),
    });
  }

  /** The core sent `msg` to its quorum; `deliver` gets etcd's answer as the reply the core takes. */
  ask(msg: PeerRequest, deliver: (reply: PeerReply) => void): void {
    const question = msg.kind === 'vote-request' && msg.withdrawn === undefined && msg.term > 1 && (this.d.nodes?.length ?? 2) > 2;
    if (question && this.d.withdrawUnasked === true) {
      const reply: PeerReply = {
        v: msg.v, cluster: msg.cluster, term: msg.term - 1, from: ETCD_QUORUM_ID, kind: 'vote-reply', granted: false,
        reason: 'withdrawing without asking etcd (planted bug)', primaryOfTerm: null, leaderKeyGone: true,
      };
      this.#run(msg.kind, Promise.resolve(reply), deliver);
      return;
    }
    this.#run(msg.kind, this.#route.ask(msg), (r) => {
      if (r !== null) deliver(r);
    });
  }

  /**
   * The agent's start on etcd (runner.ts, #startAfterQuorumTerm): the route's read of etcd's term
   * record, as the reply the runner steps in before its first tick, or why etcd did not answer.
   */
  termAtStart(done: (r: QuorumTermAtStart) => void): void {
    this.#run('term record at start', this.#route.termAtStart(), done);
  }

  /** The quorum-handover effect: the handover txn, as the holder of `term`, naming `to` for term + 1. */
  handover(term: number, to: NodeId, done: (r: { readonly ok: boolean; readonly detail: string }) => void): void {
    this.#run('handover', this.#route.handover(term, to), done);
  }

  /** The route's bound on an answer, in simulated time on this agent's clock (review-17b G8). */
  #after(ms: number, fire: () => void): () => void {
    let cancelled = false;
    this.d.clock.after(this.d.clock.realDelay(this.d.node, ms), () => {
      if (cancelled) return;
      this.d.wake();
      fire();
    });
    return () => { cancelled = true; };
  }

  #run<T>(what: string, run: Promise<T>, then: (r: T) => void): void {
    // The route chains the call behind the one before: it starts in a continuation.
    this.d.wake();
    run.then(
      (r) => this.d.hosts.run(this.d.node, () => {
        if (this.d.alive()) then(r);
      }),
      (err: unknown) => this.d.failed(what, err),
    );
  }
}

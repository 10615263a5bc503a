// The agent's shell on etcd (docs/design.md, Quorum on etcd): the quorum route the runner sends the
// core's quorum messages through (answered by EtcdQuorumBridge), the switchover's handover txn, and
// two loops of their own beside the decision loop: this member's status under members/<node>, and
// the operator's switchover key, which the primary takes and gives the core as the switchover
// request the witness sent before. Nothing here imports etcd3: the daemon opens the real client in
// open.ts, and tests run this on the fake.
import type { Logger } from 'pino';
import {
  PROTOCOL_VERSION, renewalWaitBoundMs, type AgentStatus, type NodeId, type NodeTraits, type PeerReply,
  type PeerRequest, type Timings,
} from '@pgvip/shared/core';
import type { MonotonicClock } from '../../clock.js';
import type { QuorumRoute, QuorumTermAtStart } from '../route.js';
import { EtcdQuorumBridge } from './bridge.js';
import type { KeepLeaderAway } from './leadership.js';
import type { EtcdQuorumPort, LeaseId, WatchHandle } from './port.js';
import type { MemberStatus } from './records.js';

/** What the loops need of the runner. */
export interface RunnerView {
  status(): AgentStatus;
  handleRequest(msg: PeerRequest): PeerReply;
}

export interface EtcdAgentQuorumOptions {
  readonly cluster: string;
  readonly self: NodeId;
  /** The id the core sends its quorum's messages to. */
  readonly quorumId: NodeId;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  /** Every database node (settings.nodes): the grantors of the terms it creates, and its elections. */
  readonly nodes?: readonly NodeTraits[];
  readonly logger: Logger;
  readonly clock: MonotonicClock;
  /** The member status is published every this many heartbeats (default 4). */
  readonly memberEveryHeartbeats?: number;
  /**
   * Calls `fire` after `ms` on `clock`'s time; returns its cancel. Default: a real timer. The
   * simulator passes one on simulated time, so a loaded host cannot cut an answer a seed replays.
   */
  readonly timer?: (ms: number, fire: () => void) => () => void;
  /**
   * Keeps etcd's leader off this host while this node is primary (quorum.etcd.keepLeaderOffPrimary):
   * looked at every status round, beside it.
   */
  readonly keepLeaderAway?: KeepLeaderAway;
}

function realTimer(ms: number, fire: () => void): () => void {
  const t = setTimeout(fire, ms);
  return () => clearTimeout(t);
}

/** A member status's reason fits the record (reasonSchema: 1000 characters). */
const maxBlocker = 1000;

export class EtcdAgentQuorum implements QuorumRoute {
  readonly id: NodeId;
  readonly #port: EtcdQuorumPort;
  readonly #bridge: EtcdQuorumBridge;
  readonly #o: EtcdAgentQuorumOptions;
  readonly #log: Logger;
  /** The bridge's calls, one at a time: each reads what the one before wrote. */
  #chain: Promise<unknown> = Promise.resolve();
  /**
   * Sync updates, one at a time, beside #chain. While its standby is lost a primary asks for the degrade
   * every heartbeat, each ask up to two etcd calls: in #chain they left its lease requests no turn in
   * time (the etcd flap row's lapses). Beside a renewal is safe: a sync txn compares the leader key's
   * lease and the sync record as read, so it fails rather than writes over what the renewal changed.
   */
  #syncChain: Promise<unknown> = Promise.resolve();
  /** A lease request waits or runs: a newer one is dropped rather than queued behind it. */
  #leasePending = false;
  #runner: RunnerView | null = null;
  #timer: NodeJS.Timeout | null = null;
  #watch: WatchHandle | null = null;
  #memberLease: LeaseId | null = null;
  #roundRunning = false;
  /** The status round under way (or the last one): close() waits for it. */
  #roundDone: Promise<void> = Promise.resolve();
  #switchoverRunning = false;
  /** The switchover check under way (a round's or the watch's): stopLoops() waits for it. */
  #switchoverDone: Promise<void> = Promise.resolve();
  #closed = false;
  /** The leadership look under way (or the last): stopLoops() waits for it. */
  #leadershipDone: Promise<void> = Promise.resolve();

  constructor(port: EtcdQuorumPort, opts: EtcdAgentQuorumOptions) {
    this.#port = port;
    this.#o = opts;
    this.id = opts.quorumId;
    this.#log = opts.logger.child({ component: 'etcd' });
    this.#bridge = new EtcdQuorumBridge(port, {
      cluster: opts.cluster,
      self: opts.self,
      quorumId: opts.quorumId,
      leaseMs: opts.timings.leaseMs,
      replication: opts.replication,
      ...(opts.nodes === undefined ? {} : { nodes: opts.nodes }),
      clock: opts.clock,
    });
  }

  ask(msg: PeerRequest): Promise<PeerReply | null> {
    if (msg.kind === 'lease-request') {
      // The core asks every heartbeat; while etcd is slow, a renewal sent later than asked only counts
      // for less (the core counts from its own send), and a queue of them would only grow.
      if (this.#leasePending) return Promise.resolve(null);
      this.#leasePending = true;
      // A renewal (a keepalive and a linearizable read, each through etcd's leader) waits
      // renewalWaitBoundMs, not requestTimeoutMs: a late grant is safe, since the core matches a lease
      // reply to its request by seq and counts the lease from that request's send, before the keepalive,
      // so the validity it counts never outlasts the leader key's etcd lease. Votes keep requestTimeoutMs
      // (#inTime: a vote reply names no request). Pending until etcd is done with it, even when its
      // answer came too late to count.
      return this.#inTime(msg, renewalWaitBoundMs(this.#o.timings), () => {
        this.#leasePending = false;
      });
    }
    return this.#inTime(msg, this.#o.timings.requestTimeoutMs);
  }

  handover(term: number, to: NodeId): Promise<{ readonly ok: boolean; readonly detail: string }> {
    return this.#serial(() => this.#bridge.handover(term, to));
  }

  /** etcd's term record as the quorum's reply, for the runner to step in before its first tick. */
  async termAtStart(): Promise<QuorumTermAtStart> {
    const r = await this.#serial(() => this.#bridge.termAtStart());
    return 'why' in r ? { ok: false, why: r.why } : { ok: true, reply: r.reply, detail: r.detail };
  }

  /** Starts the member-status and switchover loops; they never hold up the decision loop. */
  start(runner: RunnerView): void {
    this.#runner = runner;
    const periodMs = (this.#o.memberEveryHeartbeats ?? 4) * this.#o.timings.heartbeatMs;
    this.#timer = setInterval(() => this.#startRound(), periodMs);
    this.#startRound();
  }

  /**
   * Ends the member-status and switchover loops and waits for a round or switchover check under way.
   * The daemon calls it before it stops the runner: a round in between would take the operator's
   * switchover key and hand the request to a runner that no longer acts on it, and the request
   * would be lost. A key seen after this stays in etcd for the primary that runs next.
   */
  async stopLoops(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    // A round under way may still grant the status its lease: the revoke in close() must come after it.
    await this.#roundDone;
    await this.#switchoverDone.catch(() => undefined);
    await this.#leadershipDone;
    await this.#watch?.close();
    this.#watch = null;
  }

  async close(): Promise<void> {
    await this.stopLoops();
    await this.#chain.catch(() => undefined);
    await this.#syncChain.catch(() => undefined);
    // The status goes with the member; the leader key stays: a restarted agent renews it (I6).
    if (this.#memberLease !== null) await this.#port.revokeLease(this.#memberLease);
    await this.#port.close();
  }

  /**
   * The answer if it comes within `withinMs` of the ask (requestTimeoutMs, as a witness's reply over
   * HTTP; a lease request's longer bound, renewalWaitBoundMs); later it is lost (null), and a call still
   * waiting its turn then is not made. The core takes a vote reply as the answer to its latest vote
   * request for that term and counts the won lease from that request's send: a reply to an earlier
   * request, arriving after the core asked again, would be counted from the later send while etcd's
   * lease ran from the earlier one. The core asks again only requestTimeoutMs + heartbeatMs after a
   * request, so an answer in time is always its own.
   */
  #inTime(msg: PeerRequest, withinMs: number, done?: () => void): Promise<PeerReply | null> {
    const askedAt = this.#o.clock();
    const inTime = (): boolean => this.#o.clock() - askedAt <= withinMs;
    // The bridge may spend the time left on a withdrawn vote's wait for positions (bridge.ts).
    const answerBy = askedAt + withinMs;
    const call = (): Promise<PeerReply | null> => (inTime() ? this.#bridge.ask(msg, answerBy) : Promise.resolve(null));
    const run = (msg.kind === 'sync-update' ? this.#serialSync(call) : this.#serial(call)).finally(done);
    return new Promise((resolve) => {
      const cancelLate = (this.#o.timer ?? realTimer)(withinMs, () => resolve(null));
      run.then(
        (reply) => resolve(inTime() ? reply : null),
        (err: unknown) => {
          this.#log.warn({ err }, 'the etcd quorum call failed');
          resolve(null);
        },
      ).finally(cancelLate);
    });
  }

  #serial<T>(call: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(call, call);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #serialSync<T>(call: () => Promise<T>): Promise<T> {
    const run = this.#syncChain.then(call, call);
    this.#syncChain = run.catch(() => undefined);
    return run;
  }

  #startRound(): void {
    if (this.#closed) return;
    this.#lookAtLeadership();
    if (this.#roundRunning) return;
    this.#roundDone = this.#round();
  }

  /** While primary, beside the round (a MoveLeader takes up to an etcd election): etcd's leader off this host. */
  #lookAtLeadership(): void {
    const keep = this.#o.keepLeaderAway;
    const st = this.#runner?.status();
    if (keep === undefined || st === undefined || st.role !== 'primary' || st.primaryOfTerm !== this.#o.self) return;
    // step() returns at once while a look runs: the one under way stays awaited.
    const look = keep.step().catch((e: unknown) => this.#log.warn({ err: e }, 'etcd leadership look failed'));
    this.#leadershipDone = Promise.all([this.#leadershipDone, look]).then(() => undefined);
  }

  async #round(): Promise<void> {
    this.#roundRunning = true;
    try {
      await this.#ensureWatch();
      await this.#publishStatus();
      await this.#checkSwitchover();
    } catch (e) {
      this.#log.warn({ err: e }, 'etcd status round failed');
    } finally {
      this.#roundRunning = false;
    }
  }

  /** The watch is only a hint to look at the switchover key sooner; rounds read it anyway. */
  async #ensureWatch(): Promise<void> {
    if (this.#watch !== null) return;
    const w = await this.#port.watch((key) => {
      // Outside the round's catch: a throw here (the core's, say) must not become an unhandled
      // rejection, which ends the agent's process.
      if (key === 'switchover') void this.#checkSwitchover().catch((e: unknown) => this.#log.warn({ err: e }, 'etcd switchover check failed'));
    });
    if (!w.ok) {
      this.#log.debug({ why: w.why }, 'etcd watch not open yet');
      return;
    }
    if (this.#closed) await w.handle.close();
    else this.#watch = w.handle;
  }

  /** members/<node>: what observers show; on a lease of its own, so a member that stops goes away. */
  async #publishStatus(): Promise<void> {
    const runner = this.#runner;
    if (runner === null) return;
    if (this.#memberLease !== null && !(await this.#port.keepAlive(this.#memberLease)).ok) this.#memberLease = null;
    if (this.#memberLease === null) {
      // Several rounds long, at least a lease: a missed round or two does not make the member vanish.
      const t = this.#o.timings;
      const ttlMs = Math.max(t.leaseMs, 3 * (this.#o.memberEveryHeartbeats ?? 4) * t.heartbeatMs);
      const g = await this.#port.grantLease(ttlMs);
      if (!g.ok) {
        this.#log.debug({ why: g.why }, 'no lease for the member status');
        return;
      }
      this.#memberLease = g.lease;
    }
    const r = await this.#port.publishMember(memberStatusOf(this.#o.self, runner.status()), this.#memberLease);
    if (!r.ok) {
      this.#log.debug({ why: r.why }, 'member status not published');
      this.#memberLease = null;
    }
  }

  /**
   * The primary takes the operator's switchover key (a delete that compares its mod revision, so one
   * request starts one switchover) and gives the core the switchover request the witness sent
   * before. A refusal is the core's, with its reason; the operator asks again.
   */
  #checkSwitchover(): Promise<void> {
    if (this.#switchoverRunning || this.#closed) return Promise.resolve();
    this.#switchoverDone = this.#takeSwitchover();
    return this.#switchoverDone;
  }

  async #takeSwitchover(): Promise<void> {
    const runner = this.#runner;
    if (runner === null) return;
    const st = runner.status();
    if (st.primaryOfTerm !== this.#o.self || st.role !== 'primary') return;
    this.#switchoverRunning = true;
    try {
      const seen = await this.#port.read();
      // Stopping meanwhile: the key stays for the primary that runs next.
      if (!seen.ok || seen.view.switchover === null || this.#closed) return;
      const request = seen.view.switchover;
      const took = await this.#port.takeSwitchover(request);
      if (!took.ok) {
        this.#log.info({ why: took.why }, 'switchover key not taken');
        return;
      }
      const { to, term, requestedBy } = request.value;
      const ack = runner.handleRequest({
        v: PROTOCOL_VERSION, cluster: this.#o.cluster, term, from: this.#o.quorumId, kind: 'switchover-request', to,
      });
      const accepted = ack.kind === 'ack' && ack.accepted;
      this.#log[accepted ? 'info' : 'warn'](
        { to, term, requestedBy },
        accepted ? `switchover to ${to} asked for in etcd by ${requestedBy}: started` : `switchover to ${to} asked for in etcd by ${requestedBy} refused: ${ack.reason}`,
      );
    } finally {
      this.#switchoverRunning = false;
    }
  }
}

export function memberStatusOf(self: NodeId, st: AgentStatus): MemberStatus {
  const blocker = st.promotionBlocker;
  return {
    node: self,
    role: st.role,
    term: st.term,
    timeline: st.pg.timeline,
    lsn: st.pg.lsn,
    replayLsn: st.pg.replayLsn,
    streaming: st.pg.streaming,
    writable: st.pg.writable,
    promotionBlocker: blocker === null ? null : blocker.slice(0, maxBlocker),
  };
}

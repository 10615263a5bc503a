// The agent's EtcdQuorumPort in simulated time: etcd's primitives (a keepalive, a linearizable read,
// a txn, a lease grant and revoke) as client calls that cross the simulated network to an etcd member
// (etcd.ts), each ending by its deadline on the agent's own clock. The protocol on top — which txn,
// on which compares, what a refusal means, the renewal's same-raft-term check — is TxnQuorum's, the
// very code the agent runs on a real etcd (packages/agent/src/quorum/etcd/txn-quorum.ts).
//
// Members are chosen as the agent's etcd client chooses them (members.ts, one rule for both): the member
// that answered last first, a member that failed tried last for a while, and the next member brought
// in beside a try that has no answer after its share of the deadline, or at once when a connection is
// refused (the member's process is down), all within the call's one deadline. A port whose agent
// process died answers nothing more: its promises never settle.
import { callOnMembers, MemberChoice, REPEATABLE_TXNS } from '../../packages/agent/src/quorum/etcd/members.js';
import { TxnQuorum, type Cmp, type Op, type Outcome, type TxnOutcome } from '../../packages/agent/src/quorum/etcd/txn-quorum.js';
import type { ClusterView, KeepAlive, LeaseGrant, LeaseId, Members, Result, WatchHandle } from '../../packages/agent/src/quorum/etcd/port.js';
import type { Hosts, SimClock } from './clock.js';
import type { EtcdAnswer, EtcdCluster, EtcdOp } from './etcd.js';
import type { Rng } from './rng.js';
import { HOSTS, type DbNode } from './schedule.js';

export interface SimEtcdPortDeps {
  readonly etcd: EtcdCluster;
  readonly clock: SimClock;
  readonly hosts: Hosts;
  readonly node: DbNode;
  /** Whether the agent process that owns this port still runs. */
  readonly alive: () => boolean;
  /** A promise of this port settled: the world runs the continuations before its next event. */
  readonly wake: () => void;
  readonly timeoutMs: number;
  /** The agent's draws of members (a stream of its own). */
  readonly rng: Rng;
}

const notModelled = { ok: false as const, why: 'not modelled in the simulator' };

export class SimEtcdPort extends TxnQuorum {
  /** The agent's client rule: the member that answered last first, members that failed last. */
  readonly #choice = new MemberChoice(HOSTS.length);
  /** When (agent clock) the last keepalive that renewed was answered: what the planted bug counts from. */
  keepAliveAnsweredAtMs = -Infinity;

  constructor(private readonly p: SimEtcdPortDeps) {
    super(p.etcd.keys, p.timeoutMs, () => p.clock.local(p.node));
  }

  async grantLease(leaseMs: number): Promise<LeaseGrant> {
    const sentAtMs = this.now();
    const ttlS = this.p.etcd.ttlFor(leaseMs);
    const r = await this.#call('lease grant', { kind: 'grant', ttlS }, this.deadline());
    if (!r.ok) return r;
    return r.value.kind === 'grant' ? { ok: true, lease: r.value.lease, ttlS: r.value.ttlS, sentAtMs } : unexpected(r.value);
  }

  async revokeLease(lease: LeaseId): Promise<Result<object>> {
    const r = await this.#call('lease revoke', { kind: 'revoke', lease }, this.deadline());
    return r.ok ? { ok: true } : r;
  }

  /**
   * The bridge's wait for positions, in simulated time on the agent's clock; it ends on its host (a
   * paused host resumes it late), and never for an agent process that died.
   */
  override pause(ms: number): Promise<void> {
    const { clock, hosts, node } = this.p;
    return new Promise((resolve) => {
      clock.after(clock.realDelay(node, Math.max(0, ms)), () => hosts.run(node, () => {
        if (!this.p.alive()) return;
        this.p.wake();
        resolve();
      }));
    });
  }

  publishMember(): Promise<Result<object>> {
    return Promise.resolve(notModelled);
  }
  readMembers(): Promise<Members> {
    return Promise.resolve(notModelled);
  }
  watch(): Promise<Result<{ readonly handle: WatchHandle }>> {
    return Promise.resolve(notModelled);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }

  protected async keepAliveBy(lease: LeaseId, deadlineAt: number): Promise<KeepAlive> {
    const sentAtMs = this.now();
    const r = await this.#call('lease keepalive', { kind: 'keepalive', lease }, deadlineAt);
    if (!r.ok) return r;
    if (r.value.kind !== 'keepalive') return unexpected(r.value);
    if (!(r.value.ttlS > 0)) return { ok: false, why: `lease ${lease} expired or was revoked` };
    this.keepAliveAnsweredAtMs = this.now();
    return { ok: true, ttlS: r.value.ttlS, raftTerm: r.value.raftTerm, sentAtMs };
  }

  protected async readViewBy(deadlineAt: number): Promise<Outcome<ClusterView>> {
    const r = await this.#call('read', { kind: 'read' }, deadlineAt);
    if (!r.ok) return r;
    return r.value.kind === 'read' ? { ok: true, value: r.value.view } : unexpected(r.value);
  }

  protected async txnBy(
    what: string, compares: readonly Cmp[], success: readonly Op[], deadlineAt: number,
  ): Promise<Outcome<TxnOutcome>> {
    const r = await this.#call(what, { kind: 'txn', compares, success }, deadlineAt, REPEATABLE_TXNS.has(what));
    if (!r.ok) return r;
    if (r.value.kind !== 'txn') return unexpected(r.value);
    return { ok: true, value: r.value.succeeded ? { succeeded: true } : { succeeded: false, view: r.value.view } };
  }

  /**
   * One operation under the deadline `deadlineAt` (agent clock), on the members in the order the
   * agent's client rule gives (members.ts): the very rule and retry schedule the etcd client runs.
   */
  #call(what: string, op: EtcdOp, deadlineAt: number, beside = true): Promise<Outcome<EtcdAnswer>> {
    const { clock, hosts, node, etcd } = this.p;
    return new Promise((resolve) => {
      callOnMembers<EtcdAnswer>({
        what, choice: this.#choice, now: this.now, deadlineAt, timeoutMs: this.timeoutMs, beside,
        draw: (n) => this.p.rng.int(0, n - 1),
        after: (ms, fn) => clock.after(clock.realDelay(node, ms), () => hosts.run(node, fn)),
        attempt: (m, end) => {
          const to = HOSTS[m]!;
          etcd.call(node, to, op, (a) => end(a.kind === 'refused'
            ? { kind: 'unavailable', why: `connection refused by etcd on ${to}` }
            : { kind: 'answer', value: a }));
        },
      }, (r) => {
        // A port whose agent process died answers nothing more.
        if (!this.p.alive()) return;
        this.p.wake();
        resolve(r.ok ? { ok: true, value: r.value } : r);
      });
    });
  }
}

function unexpected(a: EtcdAnswer): { ok: false; why: string } {
  return { ok: false, why: `etcd answered ${a.kind}` };
}

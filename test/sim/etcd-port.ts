// The agent's EtcdQuorumPort in simulated time: etcd's primitives (a keepalive, a linearizable read,
// a txn, a lease grant and revoke) as client calls that cross the simulated network to an etcd member
// (etcd.ts), each ending by its deadline on the agent's own clock. The protocol on top — which txn,
// on which compares, what a refusal means, the renewal's same-raft-term check — is TxnQuorum's, the
// very code the agent runs on a real etcd (packages/agent/src/quorum/etcd/txn-quorum.ts).
//
// As the etcd3 client does (its ConnectionPool shuffles the endpoints for every call), each operation
// goes to a member picked at random, so a renewal's keepalive and its read may reach different
// members; a refused connection (the member's process is down) moves on to another member at once,
// within the same deadline; a member that does not answer holds the operation until its deadline
// (etcd3 retries unavailable members, not deadlines). A port whose agent process died answers
// nothing more: its promises never settle.
import { TxnQuorum, type Cmp, type Op, type Outcome, type TxnOutcome } from '../../packages/agent/src/quorum/etcd/txn-quorum.js';
import type { ClusterView, KeepAlive, LeaseGrant, LeaseId, Members, Result, WatchHandle } from '../../packages/agent/src/quorum/etcd/port.js';
import type { Hosts, SimClock } from './clock.js';
import type { EtcdAnswer, EtcdCluster, EtcdOp } from './etcd.js';
import type { Rng } from './rng.js';
import { HOSTS, type DbNode, type Host } from './schedule.js';

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
  /**
   * 'per-call' (etcd3's: a random member for every call) or 'sticky' (an alternative the bench
   * compares: keep to the member that answered last, and drop it when a call to it times out).
   */
  readonly members: EtcdMemberChoice;
}

export type EtcdMemberChoice = 'per-call' | 'sticky';

const notModelled = { ok: false as const, why: 'not modelled in the simulator' };

export class SimEtcdPort extends TxnQuorum {
  /** 'sticky': the member that answered last, until a call to it times out. */
  #preferred: Host | null = null;
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
    const r = await this.#call(what, { kind: 'txn', compares, success }, deadlineAt);
    if (!r.ok) return r;
    if (r.value.kind !== 'txn') return unexpected(r.value);
    return { ok: true, value: r.value.succeeded ? { succeeded: true } : { succeeded: false, view: r.value.view } };
  }

  /** One operation under the deadline `deadlineAt` (agent clock), on a random member and, if refused, the others. */
  #call(what: string, op: EtcdOp, deadlineAt: number): Promise<Outcome<EtcdAnswer>> {
    const { clock, hosts, node, etcd } = this.p;
    const leftMs = deadlineAt - this.now();
    if (leftMs <= 0) return Promise.resolve({ ok: false, why: `${what}: no time left of ${this.timeoutMs} ms` });
    return new Promise((resolve) => {
      let settled = false;
      const settle = (r: Outcome<EtcdAnswer>): void => {
        if (settled || !this.p.alive()) return;
        settled = true;
        this.p.wake();
        resolve(r);
      };
      const shuffled = shuffle(this.p.rng);
      const first = this.p.members === 'sticky' ? this.#preferred : null;
      const order = first === null ? shuffled : [first, ...shuffled.filter((h) => h !== first)];
      let asked: Host = order[0]!;
      const attempt = (tries: number): void => {
        const to: Host = (asked = order[tries]!);
        etcd.call(node, to, op, (a) => {
          if (settled) return;
          if (a.kind !== 'refused') {
            this.#preferred = to;
            return settle({ ok: true, value: a });
          }
          if (tries + 1 < order.length && this.now() < deadlineAt) attempt(tries + 1);
          else settle({ ok: false, why: `${what}: connection refused by etcd on ${to}` });
        });
      };
      attempt(0);
      clock.after(clock.realDelay(node, leftMs), () => hosts.run(node, () => {
        if (!settled && this.#preferred === asked) this.#preferred = null;
        settle({ ok: false, why: `${what}: etcd did not answer within ${this.timeoutMs} ms` });
      }));
    });
  }
}

/** The members in a fresh random order (Fisher-Yates, as etcd3's shuffledHosts). */
function shuffle(rng: Rng): Host[] {
  const hosts = [...HOSTS];
  for (let i = hosts.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [hosts[i], hosts[j]] = [hosts[j]!, hosts[i]!];
  }
  return hosts;
}

function unexpected(a: EtcdAnswer): { ok: false; why: string } {
  return { ok: false, why: `etcd answered ${a.kind}` };
}

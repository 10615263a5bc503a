// The agent's EtcdQuorumPort in simulated time: etcd's primitives (a keepalive, a linearizable read,
// a txn, a lease grant and revoke) as client calls that cross the simulated network to an etcd member
// (etcd.ts), each ending by its deadline on the agent's own clock. The protocol on top — which txn,
// on which compares, what a refusal means, the renewal's same-raft-term check — is TxnQuorum's, the
// very code the agent runs on a real etcd (packages/agent/src/quorum/etcd/txn-quorum.ts).
//
// The client talks to one member at a time, starting at the member on its own host as the etcd3
// client would with that member first among its endpoints. A refused connection (the member's
// process is down) moves to the next member at once, within the same deadline; an operation that
// timed out moves the next operation to the next member (etcd3 retries unavailable members, not
// deadlines). A port whose agent process died answers nothing more: its promises never settle.
import { TxnQuorum, type Cmp, type Op, type Outcome, type TxnOutcome } from '../../packages/agent/src/quorum/etcd/txn-quorum.js';
import type { ClusterView, KeepAlive, LeaseGrant, LeaseId, Members, Result, WatchHandle } from '../../packages/agent/src/quorum/etcd/port.js';
import type { Hosts, SimClock } from './clock.js';
import type { EtcdAnswer, EtcdCluster, EtcdOp } from './etcd.js';
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
}

const notModelled = { ok: false as const, why: 'not modelled in the simulator' };

export class SimEtcdPort extends TxnQuorum {
  #endpoint: number;
  /** When (agent clock) the last keepalive that renewed was answered: what the planted bug counts from. */
  keepAliveAnsweredAtMs = -Infinity;

  constructor(private readonly p: SimEtcdPortDeps) {
    super(p.etcd.keys, p.timeoutMs, () => p.clock.local(p.node));
    this.#endpoint = HOSTS.indexOf(p.node);
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

  /** One operation under the deadline `deadlineAt` (agent clock), on the current member and, if refused, the next. */
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
      const next = (): void => {
        this.#endpoint = (this.#endpoint + 1) % HOSTS.length;
      };
      const attempt = (tries: number): void => {
        const to: Host = HOSTS[this.#endpoint]!;
        etcd.call(node, to, op, (a) => {
          if (settled) return;
          if (a.kind !== 'refused') return settle({ ok: true, value: a });
          next();
          if (tries + 1 < HOSTS.length && this.now() < deadlineAt) attempt(tries + 1);
          else settle({ ok: false, why: `${what}: connection refused by etcd on ${to}` });
        });
      };
      attempt(0);
      clock.after(clock.realDelay(node, leftMs), () => hosts.run(node, () => {
        if (settled) return;
        next();
        settle({ ok: false, why: `${what}: etcd did not answer within ${this.timeoutMs} ms` });
      }));
    });
  }
}

function unexpected(a: EtcdAnswer): { ok: false; why: string } {
  return { ok: false, why: `etcd answered ${a.kind}` };
}

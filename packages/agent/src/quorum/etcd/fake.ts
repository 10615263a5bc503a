// An in-memory etcd for unit tests of what builds on the quorum port: one FakeEtcd is the linearizable
// store several FakeEtcdQuorum clients share (one per agent), with leases timed on a clock the test
// drives. The protocol is TxnQuorum's, the same code the real client runs; only etcd's primitives are
// modelled here: revisions, compares, leases that end at their TTL after the last keepalive (and are
// deleted with their keys), and a quorum that a test can take away (`available = false`: every call
// fails, as with no etcd leader). The contract tests (packages/agent/test/etcd-quorum-contract.ts)
// hold it to what a real etcd does.
import type { MonotonicClock } from '../../clock.js';
import { clusterKeys } from './keys.js';
import type { ClusterView, KeepAlive, LeaseGrant, LeaseId, Members, Result, WatchHandle } from './port.js';
import { decodeRecord, encodeRecord, memberStatusSchema, type BadValue, type MemberStatus, type Versioned } from './records.js';
import { TxnQuorum, type Cmp, type Op, type Outcome, type TxnOutcome } from './txn-quorum.js';
import { viewKeys, viewOf } from './view.js';

interface StoredKv {
  readonly value: Buffer;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: string;
}

export class FakeEtcd {
  /** False: no quorum; every call of every client fails at once. */
  available = true;
  /** etcd's raft term, as its answers carry it; a test may move it (an etcd leader change). */
  raftTerm = 2;
  readonly #now: MonotonicClock;
  #revision = 1;
  #nextLease = 0x1000;
  readonly #kvs = new Map<string, StoredKv>();
  readonly #leases = new Map<string, { ttlS: number; expiresAtMs: number }>();
  readonly #watchers = new Set<(key: string) => void>();

  constructor(now: MonotonicClock) {
    this.#now = now;
  }

  get revision(): number {
    return this.#revision;
  }

  /** Writes raw bytes, as any client with write access to the prefix could (tests of bad values). */
  putRaw(key: string, value: Buffer, lease = '0'): void {
    this.#expire();
    this.#put(key, value, lease);
  }

  get(key: string): Buffer | null {
    this.#expire();
    return this.#kvs.get(key)?.value ?? null;
  }

  /** An etcd leader change: leases get their full TTL again from now (etcd's lessor promotion). */
  changeLeader(): void {
    this.#expire();
    this.raftTerm += 1;
    const now = this.#now();
    for (const l of this.#leases.values()) l.expiresAtMs = Math.max(l.expiresAtMs, now + l.ttlS * 1000);
  }

  grant(ttlS: number): string {
    this.#expire();
    const id = String(this.#nextLease++);
    this.#leases.set(id, { ttlS, expiresAtMs: this.#now() + ttlS * 1000 });
    return id;
  }

  keepAlive(id: string): number {
    this.#expire();
    const l = this.#leases.get(id);
    if (l === undefined) return 0;
    l.expiresAtMs = this.#now() + l.ttlS * 1000;
    return l.ttlS;
  }

  /** etcd's LeaseTimeToLive: whole seconds left (rounded up), -1 for a lease it does not have. */
  leaseTtlS(id: string): number {
    this.#expire();
    const l = this.#leases.get(id);
    return l === undefined ? -1 : Math.ceil((l.expiresAtMs - this.#now()) / 1000);
  }

  revoke(id: string): void {
    this.#expire();
    this.#dropLease(id);
  }

  read(keys: readonly string[]): ({ value: Buffer; modRevision: string; lease: string } | undefined)[] {
    this.#expire();
    return keys.map((k) => {
      const kv = this.#kvs.get(k);
      return kv === undefined ? undefined : { value: kv.value, modRevision: String(kv.modRevision), lease: kv.lease };
    });
  }

  range(prefix: string): { key: string; value: Buffer; modRevision: string; lease: string }[] {
    this.#expire();
    return [...this.#kvs.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, kv]) => ({ key, value: kv.value, modRevision: String(kv.modRevision), lease: kv.lease }));
  }

  /** etcd's Txn: every compare holds → the writes, in one revision; otherwise nothing. */
  txn(compares: readonly Cmp[], success: readonly Op[]): boolean {
    this.#expire();
    const holds = compares.every((c) => {
      const kv = this.#kvs.get(c.key);
      switch (c.kind) {
        case 'absent':
          return kv === undefined;
        case 'mod':
          return String(kv?.modRevision ?? 0) === c.modRevision;
        case 'value':
          return kv !== undefined && kv.value.equals(c.value);
        case 'lease':
          return (kv?.lease ?? '0') === c.lease;
      }
    });
    if (!holds) return false;
    for (const op of success) {
      if (op.kind === 'put' && op.lease !== undefined && op.lease !== '0' && !this.#leases.has(op.lease)) return false; // etcd: lease not found
    }
    this.#revision += 1;
    for (const op of success) {
      if (op.kind === 'put') this.#put(op.key, op.value, op.lease ?? '0', false);
      else this.#delete(op.key, false);
    }
    return true;
  }

  watch(fn: (key: string) => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** Deletes the keys of leases whose time ran out (etcd's lessor revokes them). */
  #expire(): void {
    const now = this.#now();
    for (const [id, l] of this.#leases) if (now >= l.expiresAtMs) this.#dropLease(id);
  }

  #dropLease(id: string): void {
    if (!this.#leases.delete(id)) return;
    const keys = [...this.#kvs.entries()].filter(([, kv]) => kv.lease === id).map(([k]) => k);
    if (keys.length === 0) return;
    this.#revision += 1;
    for (const k of keys) this.#delete(k, false);
  }

  #put(key: string, value: Buffer, lease: string, bump = true): void {
    if (bump) this.#revision += 1;
    const old = this.#kvs.get(key);
    const createRevision = old?.createRevision ?? this.#revision;
    this.#kvs.set(key, { value, createRevision, modRevision: this.#revision, lease });
    this.#tell(key);
  }

  /**
   * Watchers hear of a change after the operation that made it, as etcd's watch delivers events of
   * a committed revision: never in the middle of a txn, when a read would see half of it.
   */
  #tell(key: string): void {
    for (const w of this.#watchers) {
      queueMicrotask(() => {
        if (this.#watchers.has(w)) w(key);
      });
    }
  }

  #delete(key: string, bump = true): void {
    if (!this.#kvs.has(key)) return;
    if (bump) this.#revision += 1;
    this.#kvs.delete(key);
    this.#tell(key);
  }
}

export class FakeEtcdQuorum extends TxnQuorum {
  readonly #etcd: FakeEtcd;
  readonly #unwatch = new Set<() => void>();

  constructor(etcd: FakeEtcd, opts: { prefix: string; cluster: string; timeoutMs: number; clock: MonotonicClock }) {
    super(clusterKeys(opts.prefix, opts.cluster), opts.timeoutMs, opts.clock);
    this.#etcd = etcd;
  }

  grantLease(leaseMs: number): Promise<LeaseGrant> {
    const sentAtMs = this.now();
    const ttlS = Math.max(1, Math.ceil(leaseMs / 1000));
    return Promise.resolve(this.#up('lease grant') ?? { ok: true, lease: this.#etcd.grant(ttlS), ttlS, sentAtMs });
  }

  revokeLease(lease: LeaseId): Promise<Result<object>> {
    const down = this.#up('lease revoke');
    if (down === null) this.#etcd.revoke(lease);
    return Promise.resolve(down ?? { ok: true });
  }

  publishMember(status: MemberStatus, lease: LeaseId): Promise<Result<object>> {
    const down = this.#up('member status');
    if (down !== null) return Promise.resolve(down);
    const ok = this.#etcd.txn([], [{ kind: 'put', key: this.keys.member(status.node), value: encodeRecord(memberStatusSchema, status), lease }]);
    return Promise.resolve(ok ? { ok: true } : { ok: false, why: `member status: lease ${lease} not found` });
  }

  readMembers(): Promise<Members> {
    const down = this.#up('members');
    if (down !== null) return Promise.resolve(down);
    const prefix = this.keys.membersPrefix;
    const members: Versioned<MemberStatus>[] = [];
    const bad: BadValue[] = [];
    for (const kv of this.#etcd.range(prefix).slice(0, 16)) {
      const decoded = decodeRecord(memberStatusSchema, kv.value);
      if (!decoded.ok) bad.push({ key: kv.key, problem: decoded.problem });
      else if (kv.key !== `${prefix}${decoded.value.node}`) bad.push({ key: kv.key, problem: `names node ${decoded.value.node}` });
      else members.push({ value: decoded.value, modRevision: kv.modRevision, lease: kv.lease });
    }
    return Promise.resolve({ ok: true, members, bad });
  }

  watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>> {
    const down = this.#up('watch');
    if (down !== null) return Promise.resolve(down);
    const base = this.keys.clusterPrefix;
    const stop = this.#etcd.watch((key) => {
      if (key.startsWith(base)) onChange(key.slice(base.length));
    });
    this.#unwatch.add(stop);
    const close = (): Promise<void> => {
      stop();
      this.#unwatch.delete(stop);
      return Promise.resolve();
    };
    return Promise.resolve({ ok: true, handle: { close } });
  }

  close(): Promise<void> {
    for (const stop of this.#unwatch) stop();
    this.#unwatch.clear();
    return Promise.resolve();
  }

  protected keepAliveBy(lease: LeaseId): Promise<KeepAlive> {
    const sentAtMs = this.now();
    const down = this.#up('lease keepalive');
    if (down !== null) return Promise.resolve(down);
    const ttlS = this.#etcd.keepAlive(lease);
    if (ttlS === 0) return Promise.resolve({ ok: false, why: `lease ${lease} expired or was revoked` });
    return Promise.resolve({ ok: true, ttlS, raftTerm: String(this.#etcd.raftTerm), sentAtMs });
  }

  protected readViewBy(): Promise<Outcome<ClusterView>> {
    return Promise.resolve(this.#up('read') ?? { ok: true, value: this.#view() });
  }

  protected txnBy(what: string, compares: readonly Cmp[], success: readonly Op[]): Promise<Outcome<TxnOutcome>> {
    const down = this.#up(what);
    if (down !== null) return Promise.resolve(down);
    const succeeded = this.#etcd.txn(compares, success);
    const outcome: TxnOutcome = succeeded ? { succeeded: true } : { succeeded: false, view: this.#view() };
    return Promise.resolve({ ok: true, value: outcome });
  }

  #view(): ClusterView {
    const e = this.#etcd;
    const positions = e.range(this.keys.positionsPrefix);
    return viewOf(this.keys, String(e.raftTerm), String(e.revision), e.read(viewKeys(this.keys)), positions);
  }

  #up(what: string): { ok: false; why: string } | null {
    return this.#etcd.available ? null : { ok: false, why: `${what}: etcd has no quorum (fake)` };
  }
}

// EtcdQuorum: the EtcdQuorumPort on a real etcd (v3 API over gRPC, the `etcd3` package). The protocol
// (which txn, on which conditions, what an outcome means) is TxnQuorum's; this file is etcd's
// primitives. What each operation means is in port.ts; docs/design.md, Quorum on etcd, says why it is
// safe.
//
// Bounded time: each operation has one deadline, `timeoutMs` from its start on the monotonic clock.
// gRPC gets what is left of it as its call deadline (a retry on another member shares it, so retries
// never add up), and a monotonic timer answers "no answer in time" at the deadline whatever gRPC does,
// so neither a wall-clock jump nor a hung channel can stretch a call.
//
// Which member: not etcd3's (a random member for every call, so a third of the calls wait out their
// deadline on a lost host's member, which drops packets rather than refuse them), but members.ts's
// rule, the one the simulator measures: one etcd3 client per endpoint, the member that answered last
// first, and the next member brought in beside a try unanswered after its share of the deadline. No
// per-member circuit breaker (one that opened on every member during an etcd election would stop
// renewals for seconds after etcd recovered): a member that failed is only tried last for a while.
import { ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel';
import {
  Etcd3, GRPCDeadlineExceededError, isRecoverableError, type ICompare, type IKeyValue, type IRequestOp,
  type IResponseHeader, type ITxnResponse, type IOptions, type Watcher,
} from 'etcd3';
import { monotonicNow, type MonotonicClock } from '../../clock.js';
import { clusterKeys, prefixRangeEnd } from './keys.js';
import type { EtcdLeadershipPort, EtcdMemberSeen } from './leadership.js';
import { MemberChoice, onMembers, REPEATABLE_TXNS, type TryEnd } from './members.js';
import type { ClusterView, KeepAlive, LeaseGrant, LeaseId, Members, Result, WatchHandle } from './port.js';
import { decodeRecord, encodeRecord, memberStatusSchema, type BadValue, type MemberStatus, type Versioned } from './records.js';
import { TxnQuorum, type Cmp, type Op, type Outcome, type TxnOutcome } from './txn-quorum.js';
import { maxPositions, viewKeys, viewOf, type KeyedRawKv, type RawKv } from './view.js';

export interface EtcdQuorumOptions {
  /** etcd client URLs (the config's quorum.etcd.endpoints, already normalised). */
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly cluster: string;
  /** The bound on every operation; at most the agent's requestTimeoutMs. */
  readonly timeoutMs: number;
  /** PEM contents (the config names files; the daemon reads them). */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  readonly auth?: { readonly user: string; readonly password: string };
  readonly clock?: MonotonicClock;
}

/** Members' keys read at most: a cluster has two database nodes; more is not pgvip's doing. */
const maxMembers = 16;
/** No etcd answer pgvip asks for comes near this; a larger one is refused by gRPC. */
const maxMessageBytes = 1024 * 1024;

/** Status and MoveLeader run beside the decision loop (leadership.ts): bounds of their own, not a request's. */
const statusCallMs = 1000;
/** etcd answers MoveLeader once the transferee leads: an election's time at most, etcd's default 1 s. */
const moveLeaderCallMs = 3000;

export class EtcdQuorum extends TxnQuorum implements EtcdLeadershipPort {
  /** All endpoints: the watch (its manager moves to another member by itself) and subclasses' calls. */
  readonly #client: Etcd3;
  /** One client per endpoint: the protocol's calls, each on the member members.ts chooses. */
  readonly #members: readonly Etcd3[];
  readonly #choice: MemberChoice;
  readonly #watchers = new Set<Watcher>();
  readonly #endpoints: readonly string[];

  constructor(opts: EtcdQuorumOptions) {
    super(clusterKeys(opts.prefix, opts.cluster), opts.timeoutMs, opts.clock ?? monotonicNow);
    if (opts.endpoints.length === 0) throw new RangeError('at least one etcd endpoint is needed');
    this.#client = new Etcd3(etcd3Options(opts, opts.endpoints));
    this.#members = opts.endpoints.map((endpoint) => new Etcd3(etcd3Options(opts, [endpoint])));
    this.#choice = new MemberChoice(opts.endpoints.length);
    this.#endpoints = [...opts.endpoints];
  }

  /** Each endpoint's own Status (not onMembers': every member is asked, in parallel, each once). */
  async memberStatuses(): Promise<readonly (EtcdMemberSeen | null)[]> {
    const deadlineAt = this.now() + statusCallMs;
    return Promise.all(this.#members.map(async (member, i) => {
      const endpoint = this.#endpoints[i]!;
      const r = await this.bounded('status', deadlineAt, (deadline) => member.maintenance.status({ deadline }));
      if (!r.ok) return null;
      const s = r.value;
      return { endpoint, memberId: s.header.member_id, leaderId: s.leader, appliedIndex: s.raftAppliedIndex || s.raftIndex || '0', isLearner: s.isLearner };
    }));
  }

  /** MoveLeader on the member at `endpoint` (etcd takes it only from its leader). */
  async moveLeader(endpoint: string, targetId: string): Promise<Result<object>> {
    const i = this.#endpoints.indexOf(endpoint);
    const member = this.#members[i];
    if (member === undefined) return { ok: false, why: `move leader: ${endpoint} is not one of the endpoints` };
    const r = await this.bounded('move leader', this.now() + moveLeaderCallMs, (deadline) =>
      member.maintenance.moveLeader({ targetID: targetId }, { deadline }));
    return r.ok ? { ok: true } : r;
  }

  /** The etcd3 client, for subclasses that add operations of their own (observer.ts). */
  protected get etcd(): Etcd3 {
    return this.#client;
  }

  async grantLease(leaseMs: number): Promise<LeaseGrant> {
    const ttlS = Math.max(1, Math.ceil(leaseMs / 1000));
    const sentAtMs = this.now();
    const r = await this.onMembers('lease grant', this.deadline(), (member, deadline) =>
      member.leaseClient.leaseGrant({ TTL: String(ttlS) }, { deadline }));
    if (!r.ok) return r;
    if (r.value.error !== '') return { ok: false, why: `lease grant refused: ${r.value.error.slice(0, 200)}` };
    return { ok: true, lease: r.value.ID, ttlS: Number(r.value.TTL), sentAtMs };
  }

  async revokeLease(lease: LeaseId): Promise<Result<object>> {
    const r = await this.onMembers('lease revoke', this.deadline(), (member, deadline) =>
      member.leaseClient.leaseRevoke({ ID: lease }, { deadline }));
    if (!r.ok && /lease not found/i.test(r.why)) return { ok: true }; // already gone: what a revoke wants
    return r.ok ? { ok: true } : r;
  }

  async publishMember(status: MemberStatus, lease: LeaseId): Promise<Result<object>> {
    const key = this.keys.member(status.node);
    const value = encodeRecord(memberStatusSchema, status);
    const r = await this.onMembers('member status', this.deadline(), (member, deadline) =>
      member.kv.put({ key: Buffer.from(key), value, lease }, { deadline }));
    return r.ok ? { ok: true } : r;
  }

  async readMembers(): Promise<Members> {
    const prefix = this.keys.membersPrefix;
    const r = await this.onMembers('members', this.deadline(), (member, deadline) =>
      member.kv.range(
        { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix), limit: String(maxMembers) },
        { deadline },
      ));
    if (!r.ok) return r;
    const members: Versioned<MemberStatus>[] = [];
    const bad: BadValue[] = [];
    for (const kv of r.value.kvs) {
      const key = kv.key.toString('utf8');
      const decoded = decodeRecord(memberStatusSchema, kv.value);
      if (!decoded.ok) bad.push({ key, problem: decoded.problem });
      else if (key !== `${prefix}${decoded.value.node}`) bad.push({ key, problem: `names node ${decoded.value.node}` });
      else members.push({ value: decoded.value, modRevision: kv.mod_revision, lease: kv.lease });
    }
    if (r.value.more) bad.push({ key: prefix, problem: `more than ${maxMembers} member keys: only the first were read` });
    return { ok: true, members, bad };
  }

  async watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>> {
    const base = this.keys.clusterPrefix;
    // The watcher joins etcd3's watch manager as soon as it exists, and the manager opens it once etcd
    // answers, however late: one not connected by the deadline is cancelled here, or every try while
    // etcd is away would leave one more watch behind, held by nobody, each opened on etcd's return.
    const watcher = this.#client.watch().prefix(base).watcher();
    const tell = (kv: IKeyValue): void => onChange(kv.key.toString('utf8').slice(base.length));
    watcher.on('put', tell);
    watcher.on('delete', tell);
    // The watch manager reconnects by itself; a lost watch only delays news that reads also bring.
    watcher.on('error', () => undefined);
    const connected = new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', reject);
    });
    connected.catch(() => undefined); // also awaited below; never an unhandled rejection
    const r = await this.bounded('watch', this.deadline(), () => connected);
    if (!r.ok) {
      watcher.removeListener('put', tell);
      watcher.removeListener('delete', tell);
      await this.bounded('watch cancel', this.deadline(), () => watcher.cancel());
      return r;
    }
    this.#watchers.add(watcher);
    const handle: WatchHandle = {
      close: async () => {
        if (!this.#watchers.delete(watcher)) return;
        await this.bounded('watch cancel', this.deadline(), () => watcher.cancel());
      },
    };
    return { ok: true, handle };
  }

  async close(): Promise<void> {
    for (const w of [...this.#watchers]) {
      this.#watchers.delete(w);
      await this.bounded('watch cancel', this.deadline(), () => w.cancel());
    }
    this.#client.close();
    for (const m of this.#members) m.close();
  }

  protected async keepAliveBy(lease: LeaseId, deadlineAt: number): Promise<KeepAlive> {
    // Counted from before the first try: a later try only renews later, so the count stays short.
    const sentAtMs = this.now();
    const r = await this.onMembers('lease keepalive', deadlineAt, (member, deadline) => keepAliveOnce(member, lease, deadline));
    if (!r.ok) return r;
    const ttlS = Number(r.value.ttl);
    // etcd answers TTL 0 for a lease it does not have: expired, revoked, or never granted.
    if (!(ttlS > 0)) return { ok: false, why: `lease ${lease} expired or was revoked` };
    return { ok: true, ttlS, raftTerm: r.value.header.raft_term, sentAtMs };
  }

  protected async readViewBy(deadlineAt: number): Promise<Outcome<ClusterView>> {
    // A txn of ranges only is one linearizable read of all five keys and the positions at one revision.
    const r = await this.onMembers('read', deadlineAt, (member, deadline) =>
      member.kv.txn({ compare: [], success: this.#rangeOps() }, { deadline }));
    return r.ok ? { ok: true, value: this.#view(r.value) } : r;
  }

  protected async txnBy(
    what: string, compares: readonly Cmp[], success: readonly Op[], deadlineAt: number,
  ): Promise<Outcome<TxnOutcome>> {
    const req = { compare: compares.map(toCompare), success: success.map(toRequestOp), failure: this.#rangeOps() };
    const txn = (member: Etcd3, deadline: Date) => member.kv.txn(req, { deadline });
    const r = await this.onMembers(what, deadlineAt, txn, REPEATABLE_TXNS.has(what));
    if (!r.ok) return r;
    if (r.value.succeeded) return { ok: true, value: { succeeded: true } };
    return { ok: true, value: { succeeded: false, view: this.#view(r.value) } };
  }

  #rangeOps(): IRequestOp[] {
    const prefix = this.keys.positionsPrefix;
    return [
      ...viewKeys(this.keys).map((key) => ({ request_range: { key: Buffer.from(key) } })),
      // One more than are read, so that too many keys are seen and reported (viewOf).
      {
        request_range: { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix), limit: String(maxPositions + 1) },
      },
    ];
  }

  #view(res: ITxnResponse): ClusterView {
    const n = viewKeys(this.keys).length;
    const values = res.responses.slice(0, n).map((op): RawKv | undefined => {
      const kv = op.response_range?.kvs[0];
      return kv === undefined ? undefined : { value: kv.value, modRevision: kv.mod_revision, lease: kv.lease };
    });
    const positions = (res.responses[n]?.response_range?.kvs ?? []).map((kv): KeyedRawKv => ({
      key: kv.key.toString('utf8'), value: kv.value, modRevision: kv.mod_revision, lease: kv.lease,
    }));
    return viewOf(this.keys, res.header.raft_term, res.header.revision, values, positions);
  }

  /**
   * Runs one call under the monotonic deadline `deadlineAt` on the members in members.ts's order (a
   * member's client each): gRPC gets what is left of the deadline, and the call fails at the deadline
   * whatever the tries do. A member that could not be reached (etcd3's recoverable errors, among them
   * etcd's "no leader") lets the next member in at once; any other error is etcd's answer.
   */
  protected async onMembers<T>(
    what: string, deadlineAt: number, call: (member: Etcd3, deadline: Date) => Promise<T>, beside = true,
  ): Promise<Outcome<T>> {
    const r = await onMembers<Outcome<T>>({
      what, choice: this.#choice, now: this.now, deadlineAt, timeoutMs: this.timeoutMs, beside,
      draw: (n) => Math.floor(Math.random() * n),
      after: (ms, fn) => {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      },
      attempt: (m, end) => {
        const deadline = new Date(Date.now() + Math.max(0, deadlineAt - this.now()));
        call(this.#members[m]!, deadline).then(
          (value) => end({ kind: 'answer', value: { ok: true, value } }),
          (err: unknown) => end(tryEndOf<T>(what, err)),
        );
      },
    });
    return r.ok ? r.value : r;
  }

  /**
   * Runs one call under the monotonic deadline `deadlineAt`: gRPC gets what is left of it, and the
   * answer "no answer in time" comes at the deadline whatever the call does.
   */
  protected async bounded<T>(
    what: string, deadlineAt: number, call: (deadline: Date) => Promise<T>,
  ): Promise<Outcome<T>> {
    const leftMs = deadlineAt - this.now();
    if (leftMs <= 0) return { ok: false, why: `${what}: no time left of ${this.timeoutMs} ms` };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Outcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, why: `${what}: etcd did not answer within ${Math.round(leftMs)} ms` }), leftMs);
    });
    const done = (async (): Promise<Outcome<T>> => {
      try {
        return { ok: true, value: await call(new Date(Date.now() + leftMs)) };
      } catch (err) {
        return { ok: false, why: `${what}: ${errorText(err)}` };
      }
    })();
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The etcd3 client's options for `hosts` (all endpoints, or one: an observer asks each member for its
 * own status): TLS, auth, the dial deadline, and fault handling reduced to one try per member.
 */
export function etcd3Options(opts: EtcdQuorumOptions, hosts: readonly string[]): IOptions {
  const tls = opts.tls;
  return {
    hosts: [...hosts],
    // gRPC's createSsl takes null roots for the system's CA store; the typing wants a Buffer.
    ...(tls === undefined ? {} : {
      credentials: {
        rootCertificate: tls.ca ?? (null as unknown as Buffer),
        ...(tls.key === undefined ? {} : { privateKey: tls.key }),
        ...(tls.cert === undefined ? {} : { certChain: tls.cert }),
      },
    }),
    ...(opts.auth === undefined ? {} : {
      auth: {
        username: opts.auth.user,
        password: opts.auth.password,
        callOptions: () => ({ deadline: new Date(Date.now() + opts.timeoutMs) }),
      },
    }),
    dialTimeout: opts.timeoutMs,
    grpcOptions: { 'grpc.max_receive_message_length': maxMessageBytes },
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: hosts.length - 1 }),
      // etcd3 wants a first backoff step (it calls next() itself), not cockatiel 3's factory.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
    },
  };
}

/**
 * One keepalive on `member`, on a stream of its own, ended once it answered (etcd3 never retries a stream
 * on another member; onMembers brings the next member in).
 */
async function keepAliveOnce(
  member: Etcd3, lease: LeaseId, deadline: Date,
): Promise<{ ttl: string; header: IResponseHeader }> {
  const stream = await member.leaseClient.leaseKeepAlive({ deadline });
  try {
    return await new Promise<{ ttl: string; header: IResponseHeader }>((resolve, reject) => {
      stream.on('data', (res) => resolve({ ttl: res.TTL, header: res.header }));
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('the keepalive stream ended without an answer')));
      stream.write({ ID: lease });
    });
  } finally {
    // Half-close first: etcd then ends the stream cleanly. A stream still writable when it errors
    // makes etcd3 reset every channel to that member, failing the read that follows on it.
    stream.on('error', () => undefined);
    stream.end();
    stream.cancel();
  }
}

/**
 * A try's error: the member could not serve it (try the next), or etcd's answer (the call's outcome).
 * Not served: etcd3's recoverable errors; a gRPC status of UNAVAILABLE or DEADLINE_EXCEEDED, which a
 * keepalive stream's error carries raw (etcd3 casts only unary calls' errors); and a member that
 * reached no leader in time ("context deadline exceeded", "no leader", "leader changed"), where another
 * member may. A retry elsewhere is safe for every call (members.ts).
 */
function tryEndOf<T>(what: string, err: unknown): TryEnd<Outcome<T>> {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  const unserved = err instanceof Error && (
    isRecoverableError(err) || err instanceof GRPCDeadlineExceededError
    || code === grpcUnavailable || code === grpcDeadlineExceeded || /context deadline exceeded|no leader|leader changed/i.test(err.message));
  if (unserved) return { kind: 'unavailable', why: errorText(err) };
  return { kind: 'answer', value: { ok: false, why: `${what}: ${errorText(err)}` } };
}
/** gRPC status codes (grpc-js's Status), as a raw stream error carries them. */
const grpcDeadlineExceeded = 4;
const grpcUnavailable = 14;

function toCompare(c: Cmp): ICompare {
  const key = Buffer.from(c.key);
  switch (c.kind) {
    case 'absent':
      return { key, target: 'Create', result: 'Equal', create_revision: '0' };
    case 'mod':
      return { key, target: 'Mod', result: 'Equal', mod_revision: c.modRevision };
    case 'value':
      return { key, target: 'Value', result: 'Equal', value: c.value };
    case 'lease':
      return { key, target: 'Lease', result: 'Equal', lease: c.lease };
  }
}

function toRequestOp(op: Op): IRequestOp {
  if (op.kind === 'delete') return { request_delete_range: { key: Buffer.from(op.key) } };
  const lease = op.lease === undefined ? {} : { lease: op.lease };
  return { request_put: { key: Buffer.from(op.key), value: op.value, ...lease } };
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

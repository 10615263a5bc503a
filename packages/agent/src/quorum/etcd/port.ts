// The port between an agent and etcd when etcd holds the cluster's quorum (docs/design.md, Quorum on
// etcd). It says what each operation does atomically and what it promises about time; the etcd3
// implementation is client.ts, the in-memory fake for unit tests is fake.ts.
//
// Rules every implementation keeps:
//  * Every operation ends within the port's timeout (≤ the agent's requestTimeoutMs), whatever etcd
//    does: a member that hangs, no quorum, no route. Expected failures are values (`ok: false` with
//    why), never exceptions: the caller's next heartbeat simply asks again.
//  * Reads are linearizable (a quorum confirmed them), so a read that follows a write sees it.
//  * Every value read is size-bounded and schema-checked (records.ts); keys come only from keys.ts.
//  * Times are on the agent's monotonic clock. `sentAtMs` is read before the request leaves, so it is
//    never later than the moment etcd acted on it: validity counted from it is never too long.
import type { MaintenanceRecord, LeaderRecord, MemberStatus, SwitchoverRecord, SyncRecord, TermRecord, Versioned, BadValue } from './records.js';

/** An etcd lease id (int64, as decimal text). */
export type LeaseId = string;

/** The cluster's keys as one linearizable read saw them. */
export interface ClusterView {
  /** The raft term of the etcd member that answered: ties this read to a keepalive (renew). */
  readonly raftTerm: string;
  readonly revision: string;
  readonly leader: Versioned<LeaderRecord> | null;
  readonly term: Versioned<TermRecord> | null;
  readonly sync: Versioned<SyncRecord> | null;
  readonly maintenance: Versioned<MaintenanceRecord> | null;
  readonly switchover: Versioned<SwitchoverRecord> | null;
  /** Keys whose values are not pgvip's (too large, not JSON, not the schema): never believed. */
  readonly bad: readonly BadValue[];
}

export type Failed = { readonly ok: false; readonly why: string };
export type Result<T> = ({ readonly ok: true } & T) | Failed;

export type LeaseGrant = Result<{ readonly lease: LeaseId; readonly ttlS: number; readonly sentAtMs: number }>;

/** One keepalive round: `ttlS` > 0 means etcd renewed the lease for that long from when it got it. */
export type KeepAlive = Result<{ readonly ttlS: number; readonly raftTerm: string; readonly sentAtMs: number }>;

/**
 * A renewal of the leader key's lease, for `ttlS` (its TTL, as the keepalive answered). `renewed` only
 * when the keepalive renewed the lease AND a linearizable read after it, answered in the same etcd
 * raft term, shows the leader key naming the holder and term on that very lease and the term record
 * naming them too. Then the key cannot vanish before sentAtMs + TTL (on the etcd leader's clock),
 * except by the holder's own release or handover.
 */
export type Renewal =
  | { readonly renewed: true; readonly sentAtMs: number; readonly ttlS: number; readonly view: ClusterView }
  | { readonly renewed: false; readonly sentAtMs: number; readonly why: string; readonly view: ClusterView | null };

export interface Holder {
  readonly node: string;
  readonly term: number;
  readonly lease: LeaseId;
}

export interface CampaignRequest {
  readonly node: string;
  /** The term record the candidate read; null when there is none yet (bootstrap: term 1). */
  readonly after: Versioned<TermRecord> | null;
  /** A lease granted (or renewed) after the decision to campaign: the new leader key goes on it. */
  readonly lease: LeaseId;
  /**
   * Sync mode: the sync record as read; the campaign needs it to name the candidate and to be
   * unchanged when the txn runs. 'async': no such condition.
   */
  readonly sync: Versioned<SyncRecord> | null | 'async';
}

/** The outcome of a txn that needs conditions: done, or refused with why and what etcd held. */
export type Conditional<T> =
  | ({ readonly ok: true } & T)
  | { readonly ok: false; readonly why: string; readonly view: ClusterView | null };

/** Every member's published status; values that fail their checks are listed, never believed. */
export type Members = Result<{
  readonly members: readonly Versioned<MemberStatus>[];
  readonly bad: readonly BadValue[];
}>;

export interface WatchHandle {
  close(): Promise<void>;
}

export interface EtcdQuorumPort {
  /** A new lease of ceil(leaseMs / 1000) seconds (etcd may raise it to its minimum TTL). */
  grantLease(leaseMs: number): Promise<LeaseGrant>;
  /** One keepalive of `lease`. A lease etcd no longer has answers ok: false ("lease expired or revoked"). */
  keepAlive(lease: LeaseId): Promise<KeepAlive>;
  /** Ends the lease now; its keys are deleted in the same revision. Idempotent. */
  revokeLease(lease: LeaseId): Promise<Result<object>>;
  /** One linearizable read of the cluster's keys. */
  read(): Promise<Result<{ readonly view: ClusterView }>>;
  /** Renews the holder's leader key (keepalive, then a linearizable read in the same raft term). */
  renew(holder: Holder): Promise<Renewal>;
  /**
   * The vote: ONE txn that, only if there is no leader key, the term record is the one the candidate
   * read (none for term 1), the cluster is not in maintenance and (sync mode) the sync record names the
   * candidate unchanged, writes the term record {term + 1, node} and the leader key {node, term + 1} on
   * `lease`. A retry that finds its own earlier txn committed counts as won.
   */
  campaign(req: CampaignRequest): Promise<Conditional<{ readonly term: number }>>;
  /**
   * The holder of a term whose leader key is gone (its lease ran out while etcd was out of reach, or
   * the term was handed to it) takes the key again in the same term: only if there is no leader key
   * and the term record names exactly this node and term. Moves no term.
   */
  takeLeaderKey(holder: Holder): Promise<Conditional<object>>;
  /** The current leader changes the sync record: only if its leader key (on its lease) and the term record name it. */
  setSync(holder: Holder, standby: string | null): Promise<Conditional<object>>;
  /**
   * A switchover's handover: only the current leader, in one txn, writes the term record
   * {term + 1, to} and deletes its leader key. The successor then takes the key (takeLeaderKey).
   */
  handover(holder: Holder, to: string): Promise<Conditional<{ readonly term: number }>>;
  /**
   * The primary takes the operator's switchover request: deletes the switchover key only if it is
   * still the one read (same mod revision), so a request written again meanwhile is not lost unseen.
   */
  takeSwitchover(request: Versioned<SwitchoverRecord>): Promise<Conditional<object>>;
  /** Publishes this member's status on its own lease (no compare: each member writes only its key). */
  publishMember(status: MemberStatus, lease: LeaseId): Promise<Result<object>>;
  /** Every member's status (at most 16 keys), linearizable; bad values listed, never believed. */
  readMembers(): Promise<Members>;
  /**
   * Calls `onChange` with the key (relative to the cluster: 'leader', 'term', 'sync', 'members/db-a',
   * …) whenever one changes. Only a hint to read again sooner: decisions come from reads.
   */
  watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>>;
  close(): Promise<void>;
}

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
import type {
  MaintenanceRecord, LeaderRecord, MemberStatus, PositionRecord, SwitchoverRecord, SyncRecordRead, TermRecord,
  Versioned, BadValue,
} from './records.js';

/** An etcd lease id (int64, as decimal text). */
export type LeaseId = string;

/** The cluster's keys as one linearizable read saw them. */
export interface ClusterView {
  /** The raft term of the etcd member that answered: ties this read to a keepalive (renew). */
  readonly raftTerm: string;
  readonly revision: string;
  readonly leader: Versioned<LeaderRecord> | null;
  readonly term: Versioned<TermRecord> | null;
  readonly sync: Versioned<SyncRecordRead> | null;
  readonly maintenance: Versioned<MaintenanceRecord> | null;
  readonly switchover: Versioned<SwitchoverRecord> | null;
  /** The final positions published under position/<node>, in key order (old terms' included). */
  readonly positions: readonly NodePosition[];
  /** Keys whose values are not pgvip's (too large, not JSON, not the schema): never believed. */
  readonly bad: readonly BadValue[];
}

/** A withdrawn standby's final position, with the node its key names. */
export type NodePosition = Versioned<PositionRecord> & { readonly node: string };

/** "Every acknowledged commit is flushed on at least k of these members" (the core's SyncClaim). */
export interface Claim {
  readonly members: readonly string[];
  readonly k: number;
}

/** A position key as the candidate read it: its mod revision, or null when it was absent. */
export interface PositionSeen {
  readonly node: string;
  readonly modRevision: string | null;
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
  /**
   * The grantors the term record of `term` names (null: an old record without them). The holder's
   * txns compare the term record's bytes, which include them.
   */
  readonly grantors?: readonly string[] | null;
}

export interface CampaignRequest {
  readonly node: string;
  /** The term record the candidate read; null when there is none yet (bootstrap: term 1). */
  readonly after: Versioned<TermRecord> | null;
  /** A lease granted (or renewed) after the decision to campaign: the new leader key goes on it. */
  readonly lease: LeaseId;
  /**
   * Sync mode: the sync record as read; the campaign needs it to claim something (k ≥ 1) with the
   * candidate among its members, and to be unchanged when the txn runs. 'async': no such condition.
   */
  readonly sync: Versioned<SyncRecordRead> | null | 'async';
  /**
   * The new term's grantors: the nodes other than the candidate that may be promoted (not
   * noFailover); null or absent writes an old-form record, whose grantor is "the other node" (two nodes).
   */
  readonly grantors?: readonly string[] | null;
  /**
   * Nodes ≥ 3: every eligible node's position key as read, absent included; the txn fails when one
   * changed, so the candidate ranked first among all the positions published when it committed.
   */
  readonly positions?: readonly PositionSeen[];
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
  /** The clock of the port's deadlines (the agent's monotonic clock), when it has one. */
  readonly now?: () => number;
  /** A new lease of ceil(leaseMs / 1000) seconds (etcd may raise it to its minimum TTL). */
  grantLease(leaseMs: number): Promise<LeaseGrant>;
  /** One keepalive of `lease`. A lease etcd no longer has answers ok: false ("lease expired or revoked"). */
  keepAlive(lease: LeaseId): Promise<KeepAlive>;
  /** Ends the lease now; its keys are deleted in the same revision. Idempotent. */
  revokeLease(lease: LeaseId): Promise<Result<object>>;
  /** One linearizable read of the cluster's keys. */
  read(): Promise<Result<{ readonly view: ClusterView }>>;
  /**
   * Renews the holder's leader key (keepalive, then a linearizable read in the same raft term), both
   * within `withinMs` (default: the port's bound on every operation).
   */
  renew(holder: Holder, withinMs?: number): Promise<Renewal>;
  /**
   * The vote: ONE txn that, only if there is no leader key, the term record is the one the candidate
   * read (none for term 1) and names it among its grantors (an old record without them: anyone), the
   * cluster is not in maintenance, (sync mode) the sync record claims the candidate unchanged, and
   * every position key in `positions` is as read, writes the term record {term + 1, node, grantors},
   * the leader key {node, term + 1} on `lease`, and the reset sync record {members: [], k: 0,
   * term + 1}, and deletes the candidate's own position. A retry that finds its own earlier txn
   * committed counts as won.
   */
  campaign(req: CampaignRequest): Promise<Conditional<{ readonly term: number }>>;
  /**
   * The holder of a term whose leader key is gone (its lease ran out while etcd was out of reach, or
   * the term was handed to it) takes the key again in the same term: only if there is no leader key
   * and the term record names exactly this node and term. Moves no term.
   */
  takeLeaderKey(holder: Holder): Promise<Conditional<object>>;
  /**
   * The current leader writes the sync record {members, k, term}: only if its leader key (on its
   * lease) and the term record name it. A node's name (or null) is the two-node form: ANY 1 of it
   * (or nothing claimed). With `after` (the sync record's mod revision as read, null: absent) it
   * writes only over that record: a txn whose answer was lost cannot land over a newer record.
   */
  setSync(
    holder: Holder, claim: Claim | string | null, after?: { readonly modRevision: string | null },
  ): Promise<Conditional<object>>;
  /**
   * A switchover's handover: only the current leader, in one txn, writes the term record
   * {term + 1, to, grantors} and the reset sync record, and deletes its leader key. The successor
   * then takes the key (takeLeaderKey).
   */
  handover(
    holder: Holder, to: string, grantors?: readonly string[] | null,
  ): Promise<Conditional<{ readonly term: number }>>;
  /**
   * A withdrawn standby publishes its final position under position/<node>, on no lease (it stays
   * true when the node dies). No compare: each node writes only its own key.
   */
  publishPosition(node: string, position: PositionRecord): Promise<Result<object>>;
  /**
   * A withdrawn standby takes its position back before it resumes its WAL receiver: deletes
   * position/<node> only if the term record is exactly as read (`after`), so either this comes
   * before a campaign (which then fails on the changed key) or the term moved and it follows.
   */
  clearPosition(node: string, after: Versioned<TermRecord> | null): Promise<Conditional<object>>;
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
   * Resolves after `ms` on the port's clock (the simulator's port: in simulated time). The bridge
   * waits by it, within a request's budget, for the final positions an election still lacks; a port
   * without it never waits.
   */
  pause?(ms: number): Promise<void>;
  /**
   * Calls `onChange` with the key (relative to the cluster: 'leader', 'term', 'sync', 'members/db-a',
   * …) whenever one changes. Only a hint to read again sooner: decisions come from reads.
   */
  watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>>;
  close(): Promise<void>;
}

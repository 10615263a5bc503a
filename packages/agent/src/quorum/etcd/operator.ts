// What observers and operators do with a cluster's keys on etcd (docs/design.md, Quorum on etcd): the
// witness daemon in etcd mode has no vote, so it only reads the keys (the port's linearizable read,
// the members' statuses, a watch as a hint, the leader key's lease TTL, each etcd member's health) and
// writes the three operator keys, each in one txn whose conditions are written here once, for the
// etcd client (observer.ts) and the fake (observer-fake.ts) alike:
//
//   switchover   only if no switchover key exists and the term record is exactly as read: the
//                primary's agent takes the key and runs the switchover (handover txn, then the message);
//   maintenance  put or delete, no condition: while the key exists no campaign succeeds;
//   forced       the operator's forced failover: only if the term record is exactly as read (absent:
//                none yet), write {T+1, node, grantors} and the reset sync record {members: [], k: 0,
//                T+1}, and delete the leader key (and a pending switchover) in one revision. The node
//                then takes the leader key in T+1, since the term record names it.
//   seed         moving a cluster from the witness to etcd (docs/etcd.md, Moving a cluster between the
//                witness and etcd): only if there is no leader key and the term record is exactly as
//                read (absent, or a lower term left from an earlier time on etcd), write the term
//                record {T, primary} of the witness's current term, the maintenance key, and a sync
//                record claiming nothing (sync mode; deleted in async mode), and delete a stale switchover
//                key, in one revision. The primary's agent then takes the leader key in T (the bridge's
//                same-term take); no term is created and none goes back.
import { MAX_TERM } from '@pgvip/shared';
import type { ClusterKeys } from './keys.js';
import type { ClusterView, Conditional, LeaseId, Members, Result, WatchHandle } from './port.js';
import {
  encodeRecord, maintenanceRecordSchema, resetSyncBytes, switchoverRecordSchema, termRecordSchema,
  type MaintenanceRecord, type TermRecord, type Versioned,
} from './records.js';
import { termRecord, type Cmp, type Op, type Outcome, type TxnOutcome } from './txn-quorum.js';
import { describeTerm } from './view.js';

/** One etcd member as an observer sees it: answering or not, and whether it is the raft leader. */
export interface EndpointHealth {
  readonly endpoint: string;
  readonly ok: boolean;
  /** This member answered that it is etcd's raft leader. */
  readonly leader: boolean;
  readonly raftTerm: string | null;
  readonly version: string | null;
  readonly rttMs: number | null;
  /** Why it did not answer (null when it did). */
  readonly why: string | null;
}

export interface SwitchoverRequest {
  readonly to: string;
  readonly requestedBy: string;
  /** The term record the operator's command read; the key names its term. */
  readonly after: Versioned<TermRecord>;
}

export interface SeedRequest {
  /** The cluster's current term and its primary, as the witness and both agents hold them. */
  readonly term: number;
  readonly primary: string;
  readonly replication: 'sync' | 'async';
  readonly maintenance: MaintenanceRecord;
  /** The term record as read; null when etcd has none. */
  readonly after: Versioned<TermRecord> | null;
}

export interface ForcedFailover {
  readonly to: string;
  /**
   * The new term's grantors (grantorsOf(nodes, to): the nodes other than `to` without noFailover).
   * Absent: an old-form record, whose grantor is "the other node" (two nodes only).
   */
  readonly grantors?: readonly string[];
  /** The term record as read; null when etcd has none yet. */
  readonly after: Versioned<TermRecord> | null;
}

/** An observer's and operator's view of a cluster on etcd. Every call ends by the port's timeout. */
export interface EtcdObserverPort {
  /** One linearizable read of leader, term, sync, maintenance and switchover. */
  read(): Promise<Result<{ readonly view: ClusterView }>>;
  readMembers(): Promise<Members>;
  /** A hint to read again sooner (keys relative to the cluster: 'term', 'members/db-a', …). */
  watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>>;
  /** Whole seconds left on `lease` (etcd's LeaseTimeToLive), -1 when etcd no longer has it. */
  leaseTtl(lease: LeaseId): Promise<Result<{ readonly ttlS: number }>>;
  /** Each configured endpoint's own answer (status), asked in parallel. */
  endpointsHealth(): Promise<readonly EndpointHealth[]>;
  requestSwitchover(req: SwitchoverRequest): Promise<Conditional<object>>;
  /** Puts the maintenance key (a record) or deletes it (null). */
  setMaintenance(record: MaintenanceRecord | null): Promise<Result<object>>;
  forceFailover(req: ForcedFailover): Promise<Conditional<{ readonly term: number }>>;
  /** Writes the witness's current term into etcd for a move to etcd (seed, above). */
  seedTerm(req: SeedRequest): Promise<Conditional<object>>;
  close(): Promise<void>;
}

/** One txn under the port's deadline (TxnQuorum.txnBy of the implementation). */
export type RunTxn = (what: string, compares: readonly Cmp[], success: readonly Op[]) => Promise<Outcome<TxnOutcome>>;

/** The term record exactly as read: its mod revision and its bytes (absent when none was read). */
function termAsRead(k: ClusterKeys, after: Versioned<TermRecord> | null): Cmp[] {
  if (after === null) return [{ kind: 'absent', key: k.term }];
  return [
    { kind: 'mod', key: k.term, modRevision: after.modRevision },
    { kind: 'value', key: k.term, value: encodeRecord(termRecordSchema, after.value) },
  ];
}

function termMoved(view: ClusterView, after: Versioned<TermRecord> | null): string | null {
  if ((view.term?.modRevision ?? null) === (after?.modRevision ?? null)) return null;
  const was = after === null ? 'none' : `term ${after.value.term} for ${after.value.primary}`;
  return `the term record moved since it was read (was ${was}, now ${describeTerm(view)})`;
}

export async function requestSwitchover(
  k: ClusterKeys, txn: RunTxn, req: SwitchoverRequest,
): Promise<Conditional<object>> {
  const record = { to: req.to, term: req.after.value.term, requestedBy: req.requestedBy };
  const value = encodeRecord(switchoverRecordSchema, record);
  const r = await txn('switchover', [{ kind: 'absent', key: k.switchover }, ...termAsRead(k, req.after)], [{ kind: 'put', key: k.switchover, value }]);
  if (!r.ok) return { ok: false, why: r.why, view: null };
  if (r.value.succeeded) return { ok: true };
  const v = r.value.view;
  const pending = v.switchover?.value;
  const why = termMoved(v, req.after)
    ?? (pending === undefined ? 'the keys changed meanwhile' : `a switchover to ${pending.to} in term ${pending.term} is already pending (by ${pending.requestedBy})`);
  return { ok: false, why, view: v };
}

export async function setMaintenance(
  k: ClusterKeys, txn: RunTxn, record: MaintenanceRecord | null,
): Promise<Result<object>> {
  const op: Op = record === null
    ? { kind: 'delete', key: k.maintenance }
    : { kind: 'put', key: k.maintenance, value: encodeRecord(maintenanceRecordSchema, record) };
  const r = await txn('maintenance', [], [op]);
  return r.ok ? { ok: true } : r;
}

export async function forceFailover(
  k: ClusterKeys, txn: RunTxn, req: ForcedFailover,
): Promise<Conditional<{ readonly term: number }>> {
  const term = (req.after?.value.term ?? 0) + 1;
  if (term > MAX_TERM) return { ok: false, why: `term ${term} is above 2^48`, view: null };
  const success: Op[] = [
    { kind: 'put', key: k.term, value: encodeRecord(termRecordSchema, termRecord(term, req.to, req.grantors)) },
    { kind: 'delete', key: k.leader },
    // The forced node may lack acknowledged commits: nothing is claimed until it restores.
    { kind: 'put', key: k.sync, value: resetSyncBytes(term, req.grantors) },
    // A switchover asked in the old term can no longer happen; the agent would only refuse it.
    { kind: 'delete', key: k.switchover },
  ];
  const r = await txn('forced failover', termAsRead(k, req.after), success);
  if (!r.ok) return { ok: false, why: r.why, view: null };
  if (r.value.succeeded) return { ok: true, term };
  const v = r.value.view;
  // A retry after a lost answer (or the same command through another observer): the term record
  // already names this node in the next term, which is what was asked.
  if (v.term?.value.term === term && v.term.value.primary === req.to) return { ok: true, term };
  return { ok: false, why: termMoved(v, req.after) ?? 'the term record changed meanwhile', view: v };
}

/** Why etcd's term record forbids seeding term `term` for `primary`, or null (terms never go back). */
export function seedProblem(record: TermRecord | null, term: number, primary: string): string | null {
  if (record === null || record.term < term) return null;
  if (record.term === term && record.primary === primary) return null;
  const held = `etcd's term record is term ${record.term} for ${record.primary}`;
  return record.term > term
    ? `${held}, ahead of the witness's term ${term}: etcd ran this cluster after the witness did, and seeding would move the term back`
    : `${held}, not for ${primary}: the witness and etcd disagree on who holds term ${term}`;
}

export async function seedTerm(k: ClusterKeys, txn: RunTxn, req: SeedRequest): Promise<Conditional<object>> {
  if (!(req.term >= 1 && req.term <= MAX_TERM)) return { ok: false, why: `term ${req.term} cannot be seeded`, view: null };
  const problem = seedProblem(req.after?.value ?? null, req.term, req.primary);
  if (problem !== null) return { ok: false, why: problem, view: null };
  const success: Op[] = [
    { kind: 'put', key: k.term, value: encodeRecord(termRecordSchema, { term: req.term, primary: req.primary }) },
    { kind: 'put', key: k.maintenance, value: encodeRecord(maintenanceRecordSchema, req.maintenance) },
    // Nobody is known in sync on etcd yet: the primary names its standby once it sees it caught up.
    req.replication === 'sync'
      ? { kind: 'put', key: k.sync, value: resetSyncBytes(req.term, null) }
      : { kind: 'delete', key: k.sync },
    // A switchover asked during an earlier time on etcd must not be taken now.
    { kind: 'delete', key: k.switchover },
  ];
  const r = await txn('seed', [{ kind: 'absent', key: k.leader }, ...termAsRead(k, req.after)], success);
  if (!r.ok) return { ok: false, why: r.why, view: null };
  if (r.value.succeeded) return { ok: true };
  const v = r.value.view;
  const why = v.leader !== null
    ? `the leader key names ${v.leader.value.node} for term ${v.leader.value.term}: an agent already runs this cluster on etcd`
    : termMoved(v, req.after) ?? 'the keys changed meanwhile';
  return { ok: false, why, view: v };
}

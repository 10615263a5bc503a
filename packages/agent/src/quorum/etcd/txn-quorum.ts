// The protocol on etcd, once: the conditions of each txn and what its outcome means (docs/design.md,
// Quorum on etcd). An implementation supplies only etcd's primitives — leases, one linearizable read
// of the cluster's keys, one txn of compares and writes — so the etcd client (client.ts) and the
// in-memory fake (fake.ts) run the very same conditions, and the contract tests check both.
import { MAX_TERM } from '@pgvip/shared';
import type { MonotonicClock } from '../../clock.js';
import { campaignRefusal, describeMembers, describeTerm, holderProblem } from './view.js';
import type { ClusterKeys } from './keys.js';
import type {
  CampaignRequest, Claim, ClusterView, Conditional, EtcdQuorumPort, Holder, KeepAlive, LeaseGrant, LeaseId, Members,
  Renewal, Result, WatchHandle,
} from './port.js';
import {
  encodeRecord, leaderRecordSchema, legacySyncRecordSchema, positionRecordSchema, resetSyncBytes, resetSyncRecord,
  syncRecordSchema, termRecordSchema,
  type MemberStatus, type PositionRecord, type SwitchoverRecord, type TermRecord, type Versioned,
} from './records.js';

/** A txn condition, as etcd's Compare: the key absent, or its mod revision, value or lease equal. */
export type Cmp =
  | { readonly kind: 'absent'; readonly key: string }
  | { readonly kind: 'mod'; readonly key: string; readonly modRevision: string }
  | { readonly kind: 'value'; readonly key: string; readonly value: Buffer }
  | { readonly kind: 'lease'; readonly key: string; readonly lease: LeaseId };

export type Op =
  | { readonly kind: 'put'; readonly key: string; readonly value: Buffer; readonly lease?: LeaseId }
  | { readonly kind: 'delete'; readonly key: string };

/** What a txn did: its writes, or (compares failed) the cluster's keys as they were. */
export type TxnOutcome = { readonly succeeded: true } | { readonly succeeded: false; readonly view: ClusterView };

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: string };

export abstract class TxnQuorum implements EtcdQuorumPort {
  protected readonly keys: ClusterKeys;
  protected readonly timeoutMs: number;
  /** The agent's monotonic clock, on which every deadline is kept (the bridge times its election by it). */
  readonly now: MonotonicClock;

  protected constructor(keys: ClusterKeys, timeoutMs: number, now: MonotonicClock) {
    if (!(timeoutMs > 0 && timeoutMs <= 60_000)) throw new RangeError(`timeoutMs ${timeoutMs} must be from 1 to 60000`);
    this.keys = keys;
    this.timeoutMs = timeoutMs;
    this.now = now;
  }

  // --- etcd's primitives, each bounded by the monotonic deadline it is given ----------------------

  abstract grantLease(leaseMs: number): Promise<LeaseGrant>;
  abstract revokeLease(lease: LeaseId): Promise<Result<object>>;
  abstract publishMember(status: MemberStatus, lease: LeaseId): Promise<Result<object>>;
  abstract readMembers(): Promise<Members>;
  abstract watch(onChange: (key: string) => void): Promise<Result<{ readonly handle: WatchHandle }>>;
  abstract close(): Promise<void>;
  protected abstract keepAliveBy(lease: LeaseId, deadlineAt: number): Promise<KeepAlive>;
  /** One linearizable read of leader, term, sync, maintenance and switchover. */
  protected abstract readViewBy(deadlineAt: number): Promise<Outcome<ClusterView>>;
  /** One txn; on failed compares it reads the cluster's keys in the same revision. */
  protected abstract txnBy(
    what: string, compares: readonly Cmp[], success: readonly Op[], deadlineAt: number,
  ): Promise<Outcome<TxnOutcome>>;

  /** A timer of the process (the simulator's port overrides it with simulated time). */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }

  protected deadline(): number {
    return this.now() + this.timeoutMs;
  }

  keepAlive(lease: LeaseId): Promise<KeepAlive> {
    return this.keepAliveBy(lease, this.deadline());
  }

  async read(): Promise<Result<{ readonly view: ClusterView }>> {
    const r = await this.readViewBy(this.deadline());
    return r.ok ? { ok: true, view: r.value } : r;
  }

  async renew(holder: Holder, withinMs?: number): Promise<Renewal> {
    const deadlineAt = withinMs === undefined ? this.deadline() : this.now() + withinMs;
    const sentAtMs = this.now();
    const ka = await this.keepAliveBy(holder.lease, deadlineAt);
    if (!ka.ok) return { renewed: false, sentAtMs, why: ka.why, view: null };
    const r = await this.readViewBy(deadlineAt);
    if (!r.ok) return { renewed: false, sentAtMs, why: r.why, view: null };
    const view = r.value;
    // etcd without the fixes for etcd-io/etcd#15247 and for a linearizable LeaseRenew (Debian's 3.4.23
    // among them) may renew on a leader that was already deposed. A linearizable read, sent after the
    // keepalive's answer and served in the same raft term, shows that the member which renewed was
    // still the leader of that term afterwards, so the renewal is in the lease's real countdown.
    if (view.raftTerm !== ka.raftTerm) {
      return { renewed: false, sentAtMs, why: `etcd's raft term moved from ${ka.raftTerm} to ${view.raftTerm} during the renewal`, view };
    }
    const why = holderProblem(view, holder);
    return why === null ? { renewed: true, sentAtMs, ttlS: ka.ttlS, view } : { renewed: false, sentAtMs, why, view };
  }

  async campaign(req: CampaignRequest): Promise<Conditional<{ readonly term: number }>> {
    const k = this.keys;
    const term = (req.after?.value.term ?? 0) + 1;
    if (term > MAX_TERM) return { ok: false, why: `term ${term} is above 2^48`, view: null };
    if (req.sync !== 'async' && (req.sync === null || req.sync.value.k === 0 || !req.sync.value.members.includes(req.node))) {
      const named = req.sync === null ? 'there is no sync record' : `the sync record names ${describeMembers(req.sync.value)}`;
      return { ok: false, why: `${req.node} may not be promoted: ${named}`, view: null };
    }
    // The grantors of the term the candidate read: the primary of that term counted only their
    // grants, so a node outside them may hold a lease it never gave (a config change half rolled out).
    const grantors = req.after?.value.grantors;
    if (grantors !== undefined && !grantors.includes(req.node)) {
      return { ok: false, why: `${req.node} is not a grantor of term ${req.after?.value.term ?? 0} (${grantors.join(', ') || 'none'}): a change of nodes takes effect at the next term`, view: null };
    }
    const compares: Cmp[] = [
      { kind: 'absent', key: k.leader },
      { kind: 'absent', key: k.maintenance },
      ...termAsRead(k.term, req.after),
      ...(req.sync === 'async' || req.sync === null ? [] : [{ kind: 'mod' as const, key: k.sync, modRevision: req.sync.modRevision }]),
      ...(req.positions ?? []).map((p): Cmp => (p.modRevision === null
        ? { kind: 'absent', key: k.position(p.node) }
        : { kind: 'mod', key: k.position(p.node), modRevision: p.modRevision })),
    ];
    const success: Op[] = [
      { kind: 'put', key: k.term, value: encodeRecord(termRecordSchema, termRecord(term, req.node, req.grantors)) },
      { kind: 'put', key: k.leader, value: encodeRecord(leaderRecordSchema, { node: req.node, term }), lease: req.lease },
      { kind: 'put', key: k.sync, value: resetSyncBytes(term, req.grantors) },
      // The winner is no longer withdrawn: its position of the old term would only mislead observers.
      { kind: 'delete', key: k.position(req.node) },
    ];
    const r = await this.txnBy('campaign', compares, success, this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded) return { ok: true, term };
    const view = r.value.view;
    // The client may have sent the txn again after an answer was lost: finding our own commit is a win.
    if (holderProblem(view, { node: req.node, term, lease: req.lease, grantors: req.grantors }) === null) {
      return { ok: true, term };
    }
    return { ok: false, why: campaignRefusal(view, req), view };
  }

  async takeLeaderKey(holder: Holder): Promise<Conditional<object>> {
    const k = this.keys;
    const compares: Cmp[] = [
      { kind: 'absent', key: k.leader },
      { kind: 'value', key: k.term, value: termRecordOf(holder) },
    ];
    const value = encodeRecord(leaderRecordSchema, { node: holder.node, term: holder.term });
    const r = await this.txnBy('leader key', compares, [{ kind: 'put', key: k.leader, value, lease: holder.lease }], this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded || holderProblem(r.value.view, holder) === null) return { ok: true };
    const v = r.value.view;
    const why = v.leader !== null
      ? `the leader key names ${v.leader.value.node} for term ${v.leader.value.term}`
      : `the term record is ${describeTerm(v)}, not term ${holder.term} for ${holder.node}`;
    return { ok: false, why, view: v };
  }

  async setSync(holder: Holder, wanted: Claim | string | null, after?: SyncAsRead): Promise<Conditional<object>> {
    let value: Buffer;
    if (typeof wanted === 'string' || wanted === null) {
      // The two-node form, in the bytes every release reads.
      value = encodeRecord(legacySyncRecordSchema, { standby: wanted, term: holder.term });
    } else {
      const members = [...new Set(wanted.members)].sort();
      const record = wanted.k === 0 ? resetSyncRecord(holder.term) : { members, k: wanted.k, term: holder.term };
      if (!syncRecordSchema.safeParse(record).success) {
        return { ok: false, why: `ANY ${wanted.k} of ${members.join(', ') || 'no member'} is not a sync record pgvip writes`, view: null };
      }
      value = encodeRecord(syncRecordSchema, record);
    }
    const k = this.keys;
    const compares = [
      ...this.holderCompares(holder),
      // A txn whose answer was lost may still commit, arbitrarily late: compared with the record as
      // read, it commits only while no record was written since, never over a newer one.
      ...(after === undefined ? [] : [after.modRevision === null
        ? { kind: 'absent' as const, key: k.sync }
        : { kind: 'mod' as const, key: k.sync, modRevision: after.modRevision }]),
    ];
    const r = await this.txnBy('sync record', compares, [{ kind: 'put', key: k.sync, value }], this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded) return { ok: true };
    const v = r.value.view;
    const why = holderProblem(v, holder);
    // Tried again on another member after the first try committed: the record is what was asked.
    const asked = why === null && after !== undefined && v.sync !== null;
    if (asked && encodeRecord(syncRecordSchema, v.sync.value).equals(value)) return { ok: true };
    return { ok: false, why: why ?? (after === undefined ? 'the leader key changed meanwhile' : 'the sync record changed since it was read'), view: v };
  }

  async handover(
    holder: Holder, to: string, grantors?: readonly string[] | null,
  ): Promise<Conditional<{ readonly term: number }>> {
    const k = this.keys;
    const term = holder.term + 1;
    if (term > MAX_TERM) return { ok: false, why: `term ${term} is above 2^48`, view: null };
    const success: Op[] = [
      { kind: 'put', key: k.term, value: encodeRecord(termRecordSchema, termRecord(term, to, grantors)) },
      { kind: 'delete', key: k.leader },
      // The successor acknowledges commits no standby has yet: nothing is claimed until it restores.
      { kind: 'put', key: k.sync, value: resetSyncBytes(term, grantors) },
    ];
    const r = await this.txnBy('handover', this.holderCompares(holder), success, this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded) return { ok: true, term };
    const v = r.value.view;
    // A retry after a lost answer: the term record already names the successor in the next term.
    if (v.term?.value.term === term && v.term.value.primary === to && v.leader === null) return { ok: true, term };
    return { ok: false, why: holderProblem(v, holder) ?? 'the leader key changed meanwhile', view: v };
  }

  async publishPosition(node: string, position: PositionRecord): Promise<Result<object>> {
    const op: Op = { kind: 'put', key: this.keys.position(node), value: encodeRecord(positionRecordSchema, position) };
    const r = await this.txnBy('position', [], [op], this.deadline());
    return r.ok ? { ok: true } : r;
  }

  async clearPosition(node: string, after: Versioned<TermRecord> | null): Promise<Conditional<object>> {
    const k = this.keys;
    const r = await this.txnBy('position clear', termAsRead(k.term, after), [{ kind: 'delete', key: k.position(node) }], this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded) return { ok: true };
    const was = after === null ? 'none' : `term ${after.value.term} for ${after.value.primary}`;
    return { ok: false, why: `the term record moved since it was read (was ${was}, now ${describeTerm(r.value.view)})`, view: r.value.view };
  }

  async takeSwitchover(request: Versioned<SwitchoverRecord>): Promise<Conditional<object>> {
    const key = this.keys.switchover;
    const compares: Cmp[] = [{ kind: 'mod', key, modRevision: request.modRevision }];
    const r = await this.txnBy('switchover key', compares, [{ kind: 'delete', key }], this.deadline());
    if (!r.ok) return { ok: false, why: r.why, view: null };
    if (r.value.succeeded) return { ok: true };
    const now = r.value.view.switchover;
    return { ok: false, why: now === null ? 'the switchover key is gone' : 'the switchover key was written again', view: r.value.view };
  }

  /** Only the current leader passes: its key, on its lease, names it and its term, and so does the term record. */
  protected holderCompares(holder: Holder): Cmp[] {
    const k = this.keys;
    return [
      { kind: 'lease', key: k.leader, lease: holder.lease },
      { kind: 'value', key: k.leader, value: encodeRecord(leaderRecordSchema, { node: holder.node, term: holder.term }) },
      { kind: 'value', key: k.term, value: termRecordOf(holder) },
    ];
  }
}

/** The sync record as the writer read it: its mod revision, or null when it was absent. */
export interface SyncAsRead {
  readonly modRevision: string | null;
}

/** The bytes of the term record that names `holder`: an old record's when it had no grantors. */
function termRecordOf(holder: Holder): Buffer {
  return encodeRecord(termRecordSchema, termRecord(holder.term, holder.node, holder.grantors));
}

/** A term record; without grantors (null) in the old form, whose grantor is "the other node". */
export function termRecord(term: number, primary: string, grantors: readonly string[] | null | undefined): TermRecord {
  return grantors === null || grantors === undefined ? { term, primary } : { term, primary, grantors: [...grantors] };
}

/** The term record exactly as read: its mod revision and its bytes (absent when none was read). */
export function termAsRead(key: string, after: Versioned<TermRecord> | null): Cmp[] {
  if (after === null) return [{ kind: 'absent', key }];
  return [
    { kind: 'mod', key, modRevision: after.modRevision },
    { kind: 'value', key, value: encodeRecord(termRecordSchema, after.value) },
  ];
}

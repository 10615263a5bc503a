// Quorum commit with N database nodes: the arithmetic of `synchronous_standby_names = 'ANY k (…)'`
// and of the etcd sync record, as pure functions (docs/design.md, "More than one standby").
//
// Both are read as one kind of statement, a *claim*: "every acknowledged commit is flushed on at
// least k of these members". PostgreSQL's setting makes its claim true for every commit it
// acknowledges from the moment it is in force; the record in etcd is the claim a failover relies on.
// The whole safety argument is two rules:
//   R1  the setting in force always implies the record (so every future acknowledgement keeps the
//       record true);
//   R2  the record only changes to a claim that is already true: one the old record implies (a
//       weaker claim), or one the setting in force implies *and* that enough members proved by
//       catching up to a WAL position read after the setting took effect (a stronger claim).
// A failover candidate that has the final positions of n − k + 1 members of the record and is at
// least as advanced as every one of them holds every acknowledged commit: any k members and any
// n − k + 1 members of the same n share at least one.
//
// Wired into stepAgent by core/agent/withdrawal.ts and core/agent/claim-sync.ts; etcd's bridge runs
// electionDecision (docs/design.md, "More than one standby").
import type { Lsn, NodeId } from '../messages.js';

/** "Every acknowledged commit is flushed on at least `k` of `members`"; k = 0 claims nothing. */
export interface SyncClaim {
  readonly members: readonly NodeId[];
  readonly k: number;
}

/** The claim that makes no promise: degraded (etcd record) or async (PostgreSQL setting). */
export const NO_CLAIM: SyncClaim = { members: [], k: 0 };

/** Sorted, without duplicates, and k = 0 with no members: two equal claims compare equal. */
export function normalClaim(claim: SyncClaim): SyncClaim {
  if (claim.k <= 0) return NO_CLAIM;
  return { members: [...new Set(claim.members)].sort(), k: claim.k };
}

/** A claim PostgreSQL can keep at all: 0 ≤ k ≤ |members|. */
export function claimProblem(claim: SyncClaim): string | null {
  const n = new Set(claim.members).size;
  if (!Number.isInteger(claim.k) || claim.k < 0) return `k must be an integer ≥ 0 (got ${claim.k})`;
  if (claim.k > n) return `ANY ${claim.k} of ${n} member(s) can never be satisfied`;
  return null;
}

export function sameClaim(a: SyncClaim, b: SyncClaim): boolean {
  const x = normalClaim(a);
  const y = normalClaim(b);
  return x.k === y.k && x.members.length === y.members.length && x.members.every((m, i) => m === y.members[i]);
}

/**
 * Whether `stronger` being true makes `weaker` true, whichever members acknowledged: in the worst
 * case the acknowledgements fell on the members `weaker` leaves out first, so
 * weaker.k ≤ stronger.k − |stronger.members \ weaker.members|. Exact: when it is false there is an
 * acknowledgement pattern that keeps `stronger` and breaks `weaker`.
 */
export function claimImplies(stronger: SyncClaim, weaker: SyncClaim): boolean {
  const w = normalClaim(weaker);
  if (w.k === 0) return true;
  const s = normalClaim(stronger);
  const kept = new Set(w.members);
  const outside = s.members.filter((m) => !kept.has(m)).length;
  return w.k <= s.k - outside;
}

/** How many members' final positions a candidate needs: n − k + 1 (none needed when nothing is claimed). */
export function membersToHear(claim: SyncClaim): number {
  const c = normalClaim(claim);
  return c.k === 0 ? 0 : c.members.length - c.k + 1;
}

/** A member's position once it stopped receiving WAL of the term (its WAL receiver stopped). */
export interface FinalPosition {
  readonly node: NodeId;
  readonly timeline: number;
  /** WAL flushed by the receiver (pg_last_wal_receive_lsn): what a synchronous commit waited for. */
  readonly flushLsn: Lsn;
}

export type PromotionSafety =
  | { readonly safe: true; readonly heard: readonly NodeId[] }
  | { readonly safe: false; readonly why: string };

/**
 * Whether promoting `candidate` loses no acknowledged commit, given the sync record and the final
 * positions the candidate knows (its own included). Only final positions count: a member still
 * receiving could acknowledge a commit after it was read. The candidate must be a member (a node
 * outside the record may lack what the members acknowledged, and the record is what says who may
 * win), the record must claim something (k ≥ 1; k = 0 is the degraded state, where only the
 * operator's forced failover promotes), n − k + 1 members must have been heard on the candidate's
 * timeline, and the candidate must be at least as advanced as each of them.
 */
export function promotionSafety(
  record: SyncClaim,
  candidate: NodeId,
  finals: readonly FinalPosition[],
): PromotionSafety {
  const claim = normalClaim(record);
  if (claim.k === 0) return { safe: false, why: 'the sync record is degraded (k = 0): no standby is known to hold every acknowledged commit' };
  if (!claim.members.includes(candidate)) return { safe: false, why: `${candidate} is not in the sync record (${claim.members.join(', ')})` };
  const own = finals.find((p) => p.node === candidate);
  if (own === undefined) return { safe: false, why: `${candidate} has no final position: its WAL receiver has not stopped` };
  const byNode = new Map<NodeId, FinalPosition>();
  for (const p of finals) if (claim.members.includes(p.node) && p.timeline === own.timeline) byNode.set(p.node, p);
  const heard = [...byNode.values()];
  const need = membersToHear(claim);
  if (heard.length < need) {
    return { safe: false, why: `ANY ${claim.k} of ${claim.members.length}: ${need} members' final positions are needed, ${heard.length} known (${heard.map((p) => p.node).join(', ')})` };
  }
  const ahead = heard.find((p) => p.flushLsn > own.flushLsn);
  if (ahead !== undefined) return { safe: false, why: `${ahead.node} flushed more (${ahead.flushLsn} > ${own.flushLsn})` };
  return { safe: true, heard: heard.map((p) => p.node).sort() };
}

/** One step of a change of the sync state; the shell runs them in order, each after the last is done. */
export type SyncStep =
  | { readonly kind: 'record'; readonly claim: SyncClaim }
  | { readonly kind: 'postgres'; readonly claim: SyncClaim }
  /** Read the primary's WAL position L now (the setting in force); wait until `count` of `members` flushed ≥ L. */
  | { readonly kind: 'catch-up'; readonly members: readonly NodeId[]; readonly count: number };

export interface SyncState {
  /** The etcd sync record of this term. */
  readonly record: SyncClaim;
  /** synchronous_standby_names in force. */
  readonly postgres: SyncClaim;
}

/**
 * The steps from `now` to `want` that keep R1 and R2 at every step. `now` must satisfy R1 (the
 * setting implies the record), as every state these steps pass through does:
 *  1. when the wanted setting would not imply the record, weaken the record first to the union of
 *     both member sets with the smaller k (implied by the old record and by both settings);
 *  2. change the setting;
 *  3. write the wanted record: at once when the record it replaces implies it, else after the
 *     wanted k members caught up with the WAL written before the setting took effect.
 * Adding a member with k unchanged is therefore record first (a weaker claim), removing one is
 * setting first, catch-up, then record (a stronger claim), as are raising k and a restore; lowering
 * k and the degrade are record first.
 */
export function syncPlan(now: SyncState, want: SyncClaim): SyncStep[] {
  const target = normalClaim(want);
  const steps: SyncStep[] = [];
  let record = normalClaim(now.record);
  if (!claimImplies(target, record)) {
    record = normalClaim({ members: [...record.members, ...target.members], k: Math.min(record.k, target.k) });
    steps.push({ kind: 'record', claim: record });
  }
  if (!sameClaim(now.postgres, target)) steps.push({ kind: 'postgres', claim: target });
  if (!sameClaim(record, target)) {
    if (!claimImplies(record, target)) steps.push({ kind: 'catch-up', members: target.members, count: target.k });
    steps.push({ kind: 'record', claim: target });
  }
  return steps;
}

/** What the sync state should be: every sync-capable standby that streams, k as configured or as many as stream. */
export function wantedClaim(streaming: readonly NodeId[], synchronousCount: number): SyncClaim {
  const members = [...new Set(streaming)].sort();
  return normalClaim({ members, k: Math.min(synchronousCount, members.length) });
}

/** synchronous_standby_names for a claim: '' (async) or ANY k ("a", "b"), names quoted as PostgreSQL reads them. */
export function synchronousStandbyNames(claim: SyncClaim): string {
  const c = normalClaim(claim);
  if (c.k === 0) return '';
  return `ANY ${c.k} (${c.members.map((m) => `"${m.replaceAll('"', '""')}"`).join(', ')})`;
}

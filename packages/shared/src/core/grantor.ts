// The lease grantor: the one set of rules by which a standby and the witness grant the primary its
// lease, take a release, keep the promise that comes with a grant, and tell whether a promise is
// still live (invariant I6, docs/design.md, Safety invariants). Both grantors hold the same three
// fields (`promise`, `releasedTerm`, `primaryReport`); these functions read and return them, and the
// callers keep only what is truly theirs: who may ask (the standby serves its peer, the witness both
// nodes), how a term is adopted, the standby's own refusals (campaigning, not a standby), and what
// each logs.

import type { PrimaryReport } from './eligibility.js';
import type { LeaseRelease, LeaseRequest, NodeId } from './messages.js';
import { unvotedTermProblem } from './terms.js';
import { leaseLengthConflict, promiseMs, type Timings } from './timings.js';

/** What a grantor promised with its last grant: not to grant or vote another lease until `untilMs`. */
export interface LeasePromise {
  readonly term: number;
  readonly holder: NodeId;
  readonly untilMs: number;
  /** The seq of the lease request behind this promise (0 when assumed at boot, or made by a vote). */
  readonly seq: number;
}

export interface GrantorState {
  readonly nowMs: number;
  readonly promise: LeasePromise | null;
  /** The primary of this term released its lease (fast path) or handed the term over. */
  readonly releasedTerm: number | null;
  /** The last lease request of the primary (its LSN, timeline, sync standby). */
  readonly primaryReport: PrimaryReport | null;
}

interface TermRecord {
  readonly term: number;
  readonly primaryOfTerm: NodeId | null;
}

/**
 * I6: a restarted grantor cannot know what it promised before, so it assumes a full promise to the
 * primary of its durable term (unless it is that primary itself).
 */
export function assumedPromise(durable: TermRecord, self: NodeId, nowMs: number, t: Timings): LeasePromise | null {
  if (durable.primaryOfTerm === null || durable.primaryOfTerm === self) return null;
  return { term: durable.term, holder: durable.primaryOfTerm, untilMs: nowMs + promiseMs(t), seq: 0 };
}

/** A promise made (or assumed) is still binding: not run out, and not released by its holder. */
export function promiseLive(g: GrantorState): boolean {
  return g.promise !== null && g.nowMs < g.promise.untilMs && g.releasedTerm !== g.promise.term;
}

/** Which rule refused a lease request; callers choose what to log by it. */
export type LeaseRefusal = 'stale' | 'unvoted' | 'holder' | 'local' | 'length';

export type LeaseVerdict =
  | { readonly granted: true }
  | { readonly granted: false; readonly check: LeaseRefusal; readonly reason: string };

export interface LeaseRequestHooks {
  /** Learn the requester as primary of the term it asks in (the term is known to be created). */
  adopt(): void;
  /** The grantor's term record after adopt. */
  durable(): TermRecord;
  /** A refusal of this grantor's own, checked once the requester owns the term (e.g. campaigning). */
  localProblem?(): string | null;
  /** Where terms are created, as refusals name it: "the witness" (absent) or "etcd". */
  readonly quorum?: string;
}

/**
 * Decide a lease request, in the one order both grantors follow: a stale term; a term no vote
 * created (a lease request never teaches a term: anyone holding the cluster key could claim any);
 * then adopt the requester as primary of the term; another node's term; the grantor's own
 * refusals; and a lease longer than this grantor's promise covers (leaseLengthConflict).
 */
export function decideLeaseRequest(
  known: TermRecord, msg: LeaseRequest, t: Timings, peerLeaseValidMs: number | undefined, hooks: LeaseRequestHooks,
): LeaseVerdict {
  if (msg.term < known.term) return { granted: false, check: 'stale', reason: `stale term ${msg.term} < ${known.term}` };
  const unvoted = unvotedTermProblem(msg.term, known.term, hooks.quorum);
  if (unvoted !== null) return { granted: false, check: 'unvoted', reason: unvoted };
  hooks.adopt();
  const d = hooks.durable();
  if (d.primaryOfTerm !== msg.from) return { granted: false, check: 'holder', reason: `term ${d.term} belongs to ${d.primaryOfTerm}` };
  const local = hooks.localProblem?.() ?? null;
  if (local !== null) return { granted: false, check: 'local', reason: local };
  const conflict = leaseLengthConflict(t, peerLeaseValidMs);
  if (conflict !== null) return { granted: false, check: 'length', reason: conflict };
  return { granted: true };
}

/**
 * The grant: a promise of promiseMs from now (counted from receipt), the primary's report for
 * promotion checks, and a release of this term undone (the primary asked again in the same term,
 * e.g. after its PostgreSQL recovered: the new grant binds as any other).
 */
type Grant = Pick<GrantorState, 'promise' | 'releasedTerm' | 'primaryReport'>;

export function grantLease(g: GrantorState, term: number, msg: LeaseRequest, t: Timings): Grant {
  return {
    promise: { term, holder: msg.from, untilMs: g.nowMs + promiseMs(t), seq: msg.seq },
    releasedTerm: g.releasedTerm === term ? null : g.releasedTerm,
    primaryReport: {
      term: msg.term, lsn: msg.lsn, timeline: msg.timeline, syncStandby: msg.syncStandby, atMs: g.nowMs,
      ...(msg.syncClaim === undefined ? {} : { syncClaim: msg.syncClaim }),
    },
  };
}

/** A vote is also the first lease grant of its term: the same promise, from the vote on. */
export function grantByVote(g: GrantorState, term: number, holder: NodeId, t: Timings): Grant {
  const promise = { term, holder, untilMs: g.nowMs + promiseMs(t), seq: 0 };
  return { promise, releasedTerm: null, primaryReport: null };
}

export type ReleaseVerdict =
  /** The primary of the current term gave its lease back: the promise ends now. */
  | { readonly kind: 'released'; readonly patch: Pick<GrantorState, 'promise' | 'releasedTerm'> }
  /**
   * Older than the request behind the current promise (an earlier agent process, or delayed): it must
   * not cancel the lease granted since.
   */
  | { readonly kind: 'stale' }
  /** Not from the primary of the current term: nothing to release. */
  | { readonly kind: 'ignored' };

export function decideRelease(g: GrantorState, durable: TermRecord, msg: LeaseRelease): ReleaseVerdict {
  if (g.promise !== null && g.promise.holder === msg.from && msg.leaseSeq < g.promise.seq) return { kind: 'stale' };
  if (msg.term !== durable.term || msg.from !== durable.primaryOfTerm) return { kind: 'ignored' };
  return { kind: 'released', patch: { releasedTerm: msg.term, promise: null } };
}

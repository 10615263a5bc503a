// Promotion: standby → primary in the current term, one effect at a time (docs/design.md, The
// decision loop: stop the WAL receiver before promoting):
//
//   stop-receiver ──► clear-sync ──► promote ──(promoted)──► writable
//   beside it, in the VIP slot: OS address + EC2 call (vip.ts moveFirst: which first) ──► verify

import { promiseLive } from '../grantor.js';
import { NO_CLAIM } from '../nodes/quorum-commit.js';
import { manyNodes } from './facts.js';
import { unfencedByPromotion } from './fence.js';
import type { Step } from './step.js';
import { vipWhilePromoting } from './vip.js';

export interface PromotionState {
  /** The pipeline's next step; a vote won or a rejoin starts it again from `stop-receiver`. */
  readonly next: 'stop-receiver' | 'clear-sync' | 'promote';
  /** An operator asked this node to promote without a vote in this term (accept data loss). */
  readonly forcedTerm: number | null;
}

export const initialPromotion: PromotionState = { next: 'stop-receiver', forcedTerm: null };

/** A vote won or a rejoin: the next promotion starts from the beginning. */
export function promotionReset(st: Step): void {
  st.set({ promotion: { ...st.s.promotion, next: 'stop-receiver' } });
}

/**
 * The primary of the term, its PostgreSQL in recovery: the promotion's next step, and beside it the
 * VIP's (its own slot). Both wait out this node's promise to the old primary (a forced promotion
 * does not), so neither starts while the old primary may still count on our grant.
 */
export function promoting(st: Step): void {
  const s = st.s;
  if (s.fenceInFlight !== null) return;
  if (promiseLive(s) && s.promotion.forcedTerm !== s.durable.term) {
    const left = Math.round((s.promise?.untilMs ?? 0) - s.nowMs);
    st.because(`won term ${s.durable.term} but waiting out the promise to ${s.promise?.holder} (${left} ms left)`);
    return;
  }
  // With a before-promote hook the VIP waits for the promotion (the primary's pipeline moves it then).
  if (s.settings.vipAfterPromotion !== true) vipWhilePromoting(st);
  promotionPipeline(st);
}

function promotionPipeline(st: Step): void {
  const s = st.s;
  if (s.inFlight !== null) return;
  switch (s.promotion.next) {
    case 'stop-receiver':
      st.effect({ kind: 'stop-wal-receiver' });
      st.because(`promoting for term ${s.durable.term}: stopping the WAL receiver`);
      return;
    case 'clear-sync':
      // Three or more nodes: the claim form (etcd's record was reset by the txn that made the term).
      st.effect(manyNodes(s) ? { kind: 'set-sync', claim: NO_CLAIM } : { kind: 'set-sync-standby', standby: null });
      return;
    case 'promote':
      st.effect({ kind: 'promote' });
      st.because(`promoting for term ${s.durable.term}`);
  }
}

export function onReceiverStopped(st: Step): void {
  const next = st.s.promotion.next;
  st.set({ promotion: { ...st.s.promotion, next: next === 'stop-receiver' ? 'clear-sync' : next } });
}

export function onPromotionSyncCleared(st: Step): void {
  const next = st.s.promotion.next;
  st.set({ promotion: { ...st.s.promotion, next: next === 'clear-sync' ? 'promote' : next } });
}

export function onPromoted(st: Step): void {
  const s = st.s;
  st.notify('promoted', `promoted for term ${s.durable.term}`);
  st.because(`promoted for term ${s.durable.term}`);
  st.set({
    pg: s.pg === null ? null : { ...s.pg, inRecovery: false, writable: true, streaming: false },
    receiverStopped: false,
  });
  // The VIP moved beside the promotion (vip.ts, vipWhilePromoting) and goes on from where it is.
  unfencedByPromotion(st);
}

export function forcePromotion(st: Step, term: number): void {
  st.set({ promotion: { ...st.s.promotion, forcedTerm: term } });
}

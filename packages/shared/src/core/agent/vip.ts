// The VIP: where EC2 routes it, as far as this node knows, and whether it is leaving this node.
//
//   unknown ──verify: here──► held ◄──verify: here── moving (add-local → cloud → verify)
//      │  ▲                    │                        ▲          │ elsewhere: the remap is
//      │  └─verify: elsewhere──┘ (a primary moves it) ──┘          ▼ still running
//      │                                                       confirming ──verify: here──► held
//      ▼ (may no longer hold it)
//   leaving ──EC2 routes it elsewhere, or vipKeepWhileRoutedMs──► drop-vip-local ──► dropped
//
// A primary (or a node promoting in its term) may hold it; any other node lets it leave its
// interface. VIP effects run in their own slot (state.ts `vipInFlight`): a slow remap holds up no
// promotion, rejoin or sync step, and the new primary's EC2 call goes out beside its promotion, as
// soon as it holds the term and a lease that outlives the call (docs/vip.md, "When the VIP moves").
// With three or more nodes the address goes on the interface BEFORE the EC2 call: EC2 sends the
// VIP's packets here from the moment it remaps, and an address not yet on the OS drops them (AWS),
// or leaves the router's ARP unanswered (the lab): each lost SYN costs its client a 1 s
// retransmission. Two nodes keep the call first (moveFirst: the lab measured them slower the other way).

import type { EffectKind, EffectResult } from '../actions.js';
import type { Timings } from '../timings.js';
import { leaseRemainingMs, manyNodes, mayHoldVip } from './facts.js';
import type { Step } from './step.js';

export type VipPhase =
  /** Not known whether EC2 routes the VIP here: verify before acting. */
  | { readonly phase: 'unknown' }
  /**
   * Being moved here: the OS address, the EC2 call, then both are verified (moveFirst: which goes
   * first). `add-local` then `verify` (no call): EC2 routes the VIP here already, or was just called.
   */
  | { readonly phase: 'moving'; readonly next: 'add-local'; readonly then: 'cloud' | 'verify' }
  | { readonly phase: 'moving'; readonly next: 'cloud' | 'verify' }
  /**
   * EC2 accepted our move and the address is on the interface, but EC2 does not route it here yet
   * (its remap is asynchronous, its Describe eventually consistent): verified again on the next input
   * at most every vipConfirmEveryMs, and moved again at most once per vipCallBudgetMs.
   */
  | { readonly phase: 'confirming' }
  /** Verified here, in EC2 and on the interface; re-verified every vipVerifyEveryMs. */
  | { readonly phase: 'held' }
  /** This node may no longer hold it but keeps it on its interface while EC2 may still route it here. */
  | { readonly phase: 'leaving'; readonly sinceMs: number; readonly routedElsewhere: boolean }
  /** Removed from the interface; stays so until a fence, unfence or rejoin starts a new chapter. */
  | { readonly phase: 'dropped' };

export type VipState = VipPhase & {
  /** When we last asked EC2 where it routes the VIP. */
  readonly checkedAtMs: number;
  /** VIP steps (EC2 move, OS address, verification) that failed in a row. */
  readonly failures: number;
  /** When this node last sent the EC2 call (move-vip-cloud); confirming, it calls again vipCallBudgetMs later. */
  readonly movedAtMs: number;
  /** The newest term in which this node, promoting, started moving the VIP here (vipWhilePromoting). */
  readonly moveTerm: number;
};

/** Consecutive failures of VIP steps after which the agent reports `vip-error`. */
export const vipErrorAfterFailures = 3;

export const initialVip: VipState = {
  phase: 'unknown', checkedAtMs: -Infinity, failures: 0, movedAtMs: -Infinity, moveTerm: 0,
};

function withPhase(v: VipState, p: VipPhase): VipState {
  return { ...p, checkedAtMs: v.checkedAtMs, failures: v.failures, movedAtMs: v.movedAtMs, moveTerm: v.moveTerm };
}

/**
 * How often a primary whose move EC2 accepted asks again whether EC2 routes the VIP here yet (on
 * its next input after that): a tenth of the EC2 call's budget, 100 ms at the default. It scales
 * with the EC2 budget, not the heartbeat: each ask is a Describe call, EC2 throttles them per
 * account and Region, and a faster heartbeat must not spend more of that (docs/vip.md).
 */
export function vipConfirmEveryMs(t: Timings): number {
  return t.vipCallBudgetMs / 10;
}

/** A fence starts: a VIP dropped before may be on the interface again by the time it ends. */
export function vipAfterFenceStarted(v: VipState): VipState {
  return v.phase === 'dropped' ? withPhase(v, { phase: 'unknown' }) : v;
}

/** Where the VIP is must be asked again (a term won, a promotion, an unfence); a drop stays known. */
function vipForgotten(v: VipState): VipState {
  const p: VipPhase = v.phase === 'dropped' || v.phase === 'leaving' ? v : { phase: 'unknown' };
  return { ...withPhase(v, p), checkedAtMs: -Infinity };
}

/**
 * A move's first step. Three or more nodes: the OS address, then the EC2 call — nothing reaches the
 * address before EC2 routes the VIP here, and once EC2 does, every packet finds it (the lab's
 * three-node switchover gap: 0.83–1.49 s with the call first, 0.62–0.70 s with the address first).
 * Two nodes: the call, then the address, as before — in the lab the address first made their
 * switchover gap longer (0.26–0.38 s → 0.25–0.65 s, cause not found yet; docs/vip.md).
 */
function moveFirst(st: Step): VipPhase {
  return manyNodes(st.s) ? { phase: 'moving', next: 'add-local', then: 'cloud' } : { phase: 'moving', next: 'cloud' };
}

export function vipAfterVoteWon(st: Step): void {
  st.set({ vip: vipForgotten(st.s.vip) });
}

/**
 * The primary of the term is promoting (its PostgreSQL still in recovery, its promise to the old
 * primary over): once per term it starts moving the VIP here, beside the promotion rather than after
 * it: the OS address, then the EC2 call (vipPipeline). A standby never held the VIP, so it moves at
 * once instead of asking EC2 first. Should it lose the term with the address on its interface, it
 * lets the address leave like any node that may not hold it (checkVip: EC2 routes it elsewhere, so
 * it drops it on its next check).
 * Safe while PostgreSQL still promotes: the node holds the term and a lease (moveVip checks it
 * outlives the call), the old primary's lease is over, and clients the VIP reaches meanwhile meet a
 * server in recovery, which refuses every write (docs/vip.md, "When the VIP moves").
 */
export function vipWhilePromoting(st: Step): void {
  const v = st.s.vip;
  const term = st.s.durable.term;
  if (v.moveTerm < term) {
    st.set({ vip: { ...withPhase(v, moveFirst(st)), moveTerm: term } });
  }
  vipPipeline(st);
}

export function vipAfterUnfenced(st: Step): void {
  const v = st.s.vip;
  st.set({ vip: vipForgotten(v.phase === 'dropped' ? withPhase(v, { phase: 'unknown' }) : v) });
}

export function vipAfterRejoined(st: Step): void {
  st.set({ vip: vipAfterFenceStarted(st.s.vip) });
}

/**
 * Each decision: a node that may hold the VIP stops letting it leave; one that may not starts to
 * (unless it dropped it already, or a fence, another effect or a switchover is under way).
 */
export function checkVip(st: Step): void {
  const s = st.s;
  if (s.pg === null || s.durable.term === 0) return;
  if (mayHoldVip(s)) {
    if (s.vip.phase === 'leaving') st.set({ vip: withPhase(s.vip, { phase: 'unknown' }) });
  } else if (s.vip.phase !== 'dropped' && s.fenceInFlight === null && s.vipInFlight === null && s.switchover === null) {
    releaseLocalVip(st);
  }
}

/**
 * A node that may no longer hold the VIP removes it from its interface — but not while EC2 may still
 * route it here: until the new primary has taken it, clients reaching this node are better served by
 * a refusal (PostgreSQL down: connection refused; fenced: a read-only error), on which they retry at
 * once, than by an address that is gone, which silently drops their connection attempts and costs
 * each a TCP SYN retransmission (1 s, then 2 s...). Writes are unaffected: this node is fenced or
 * down already. So it checks where EC2 routes the VIP, every heartbeat, and drops it as soon as EC2
 * routes it elsewhere, or after vipKeepWhileRoutedMs in any case (EC2 unreachable from here).
 */
function releaseLocalVip(st: Step): void {
  const s = st.s;
  const v = s.vip.phase === 'leaving'
    ? s.vip
    : { ...s.vip, phase: 'leaving' as const, sinceMs: s.nowMs, routedElsewhere: false };
  if (v.routedElsewhere || s.nowMs - v.sinceMs >= s.settings.vipKeepWhileRoutedMs) {
    st.effect({ kind: 'drop-vip-local' }, 'vip');
    st.set({ vip: withPhase(v, { phase: 'unknown' }) });
    return;
  }
  st.set({ vip: v });
  if (s.nowMs - v.checkedAtMs >= s.settings.timings.heartbeatMs) {
    st.effect({ kind: 'verify-vip' }, 'vip');
    st.set({ vip: { ...v, checkedAtMs: s.nowMs } });
  }
}

/** The primary's next VIP step, if one is due and the VIP slot is free. Returns true when it started one. */
export function vipPipeline(st: Step): boolean {
  const s = st.s;
  const v = s.vip;
  if (s.vipInFlight !== null) return false;
  const verify = (): true => {
    st.effect({ kind: 'verify-vip' }, 'vip');
    st.set({ vip: { ...v, checkedAtMs: s.nowMs } });
    return true;
  };
  switch (v.phase) {
    case 'unknown':
    case 'dropped':
    case 'leaving':
      return s.nowMs - v.checkedAtMs >= s.settings.timings.heartbeatMs && verify();
    case 'moving':
      if (v.next === 'cloud') return moveVip(st);
      if (v.next === 'verify') return verify();
      st.effect({ kind: 'add-vip-local' }, 'vip');
      return true;
    case 'confirming':
      return s.nowMs - v.checkedAtMs >= vipConfirmEveryMs(s.settings.timings) && verify();
    case 'held':
      return s.nowMs - v.checkedAtMs >= s.settings.vipVerifyEveryMs && verify();
  }
}

/**
 * Move the VIP here in EC2, if the lease outlives the EC2 call's budget (timings.vipCallBudgetMs,
 * validated against the lease with the other timings: vipMoveRoomMs). Until then the move stays
 * due (`moving` → `cloud`) and goes out on the input that brings the lease. Returns true when the
 * call went out.
 */
export function moveVip(st: Step): boolean {
  const s = st.s;
  const t = s.settings.timings;
  if (s.vipInFlight !== null) return false;
  if (leaseRemainingMs(s) - t.leaseMarginMs < t.vipCallBudgetMs) {
    st.set({ vip: withPhase(s.vip, { phase: 'moving', next: 'cloud' }) });
    st.because('VIP move waits for a fresher lease');
    return false;
  }
  st.effect({ kind: 'move-vip-cloud', term: s.durable.term, budgetMs: t.vipCallBudgetMs }, 'vip');
  st.set({ vip: { ...withPhase(s.vip, { phase: 'moving', next: 'cloud' }), movedAtMs: s.nowMs } });
  st.because(`moving the VIP to ${s.settings.self} for term ${s.durable.term}`);
  return true;
}

export function isVipEffect(kind: EffectKind): boolean {
  return kind === 'move-vip-cloud' || kind === 'add-vip-local' || kind === 'verify-vip' || kind === 'drop-vip-local';
}

/** A VIP step finished (its failures are counted; a drop's are not). */
export function onVipEffectDone(st: Step, kind: EffectKind, r: EffectResult): void {
  const s = st.s;
  const v = s.vip;
  if (kind !== 'drop-vip-local') countVipFailure(st, kind, r);
  const set = (p: VipPhase): void => st.set({ vip: withPhase(st.s.vip, p) });
  if (!r.ok) {
    if (kind === 'verify-vip' && (v.phase === 'held' || v.phase === 'confirming' || (v.phase === 'moving' && v.next === 'verify'))) {
      set({ phase: 'unknown' });
    }
    if (kind === 'move-vip-cloud') set({ phase: 'unknown' });
    return;
  }
  switch (kind) {
    case 'verify-vip':
      // A node on its way out only learns whether EC2 still routes the VIP here (releaseLocalVip).
      if (!mayHoldVip(s)) {
        if (r.vipPlacement === 'elsewhere' && v.phase === 'leaving') set({ ...v, routedElsewhere: true });
        return;
      }
      if (r.vipPlacement === 'elsewhere') {
        // Our own move of this term is under way (EC2 remaps asynchronously, Describe lags): ask
        // again shortly, and send the call again only once its budget has passed since the last.
        // Its address is on the interface already; any other move adds it first (vipPipeline).
        const moved = v.phase === 'confirming' || (v.phase === 'moving' && v.next === 'verify');
        if (moved && s.nowMs - v.movedAtMs < s.settings.timings.vipCallBudgetMs) return set({ phase: 'confirming' });
        if (moved || !manyNodes(s)) {
          set({ phase: 'unknown' });
          moveVip(st);
          return;
        }
        set(moveFirst(st));
        vipPipeline(st);
      } else if (r.vipPlacement === 'cloud-only') {
        set({ phase: 'moving', next: 'add-local', then: 'verify' });
      } else {
        if (v.phase !== 'held') st.notify('vip-moved', `VIP verified on ${s.settings.self} for term ${s.durable.term}`);
        set({ phase: 'held' });
      }
      return;
    case 'move-vip-cloud':
      // Three or more nodes added the address before the call; two add it now.
      return set(manyNodes(s) ? { phase: 'moving', next: 'verify' } : { phase: 'moving', next: 'add-local', then: 'verify' });
    case 'add-vip-local':
      // The address is on the interface: now the EC2 call, if it is still to be made (vipPipeline).
      if (v.phase === 'moving' && v.next === 'add-local' && v.then === 'cloud') return set({ phase: 'moving', next: 'cloud' });
      return set({ phase: 'moving', next: 'verify' });
    case 'drop-vip-local':
      // A term won while the drop ran: the move that started meanwhile adds the address back.
      if (v.phase === 'moving') return;
      return set({ phase: 'dropped' });
  }
}

/** VIP steps failing in a row: operators hear of it once, at vipErrorAfterFailures. */
function countVipFailure(st: Step, kind: EffectKind, r: EffectResult): void {
  const failures = r.ok ? 0 : st.s.vip.failures + 1;
  st.set({ vip: { ...st.s.vip, failures } });
  if (failures === vipErrorAfterFailures) {
    st.notify('vip-error', `${vipErrorAfterFailures} VIP steps in a row failed, the last (${kind}): ${r.detail}`);
  }
}


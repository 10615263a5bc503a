// The fence: this incarnation made its PostgreSQL refuse writes (read-only or stopped). It runs in
// its own effect slot, so a fence is never queued behind a VIP step or a rejoin.

import type { EffectResult, FenceMode } from '../actions.js';
import type { Step } from './step.js';
import { vipAfterFenceStarted } from './vip.js';

export interface FenceState {
  /** PostgreSQL is fenced by us in this incarnation (read-only or stopped). */
  readonly fenced: boolean;
  /** Why the last fence was started (said in its notification and the release). */
  readonly reason: string | null;
  /** When we last started a PostgreSQL that we had fenced (restartFencedPostgres). */
  readonly restartedAtMs: number;
  /** When the last fence failed: the next try waits a heartbeat (see fence). Absent: none failed. */
  readonly failedAtMs?: number;
}

export const initialFence: FenceState = { fenced: false, reason: null, restartedAtMs: -Infinity };

/** Fences as configured (`fencing`), or by `mode` when the caller needs that one (a switchover's clean stop). */
export function fence(st: Step, why: string, mode: FenceMode = st.s.settings.fencing): void {
  if (st.s.fenceInFlight !== null) return;
  // A fence that failed is tried again at the next heartbeat, not in the step its failure arrives in:
  // one that fails at once (a refused session, a missing binary) would otherwise be retried in a loop
  // that starves the agent's own event loop (its renewals, its answers). The commit guard holds meanwhile.
  const failedAtMs = st.s.fence.failedAtMs;
  if (failedAtMs !== undefined && st.s.nowMs - failedAtMs < st.s.settings.timings.heartbeatMs) return;
  st.effect({ kind: 'fence', mode }, 'fence');
  st.set({ fence: { ...st.s.fence, reason: why }, vip: vipAfterFenceStarted(st.s.vip) });
  st.because(`fencing: ${why}`);
}

/** The fence slot's effect finished. */
export function onFenceDone(st: Step, r: EffectResult): void {
  const s = st.s;
  const { failedAtMs: _earlier, ...fenceState } = s.fence;
  st.set({
    fenceInFlight: null,
    fence: r.ok ? { ...fenceState, fenced: true } : { ...s.fence, failedAtMs: s.nowMs },
    pg: r.ok && s.pg !== null ? { ...s.pg, writable: false } : s.pg,
  });
  if (r.ok) {
    st.notify('fenced', `fenced (${s.settings.fencing}): ${s.fence.reason ?? ''}`);
  } else {
    st.because(`fence failed (${r.detail}); trying again at the next heartbeat`);
  }
}

/** PostgreSQL writes again (unfenced, or rejoined as a standby): the fence and its reason are over. */
export function unfenced(st: Step): void {
  st.set({ fence: { ...st.s.fence, fenced: false, reason: null } });
}

/** PostgreSQL was promoted: it writes in its new term (the reason of an earlier fence stays said). */
export function unfencedByPromotion(st: Step): void {
  st.set({ fence: { ...st.s.fence, fenced: false } });
}

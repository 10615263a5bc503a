// Rejoin: a node whose PostgreSQL is no longer in recovery while another node is primary of the
// term (a deposed or fenced primary) rewinds it, or copies it afresh, as a standby of that primary.
// Failures in a row back off, and each is reported.

import type { EffectResult } from '../actions.js';
import { isOtherNode, statusOf } from './facts.js';
import { unfenced } from './fence.js';
import { promotionReset } from './promotion.js';
import type { Step } from './step.js';
import { vipAfterRejoined } from './vip.js';

export interface RejoinState {
  /** Rejoins that failed in a row (rewind and base backup both), and when the last one did. */
  readonly failures: number;
  readonly lastFailedAtMs: number;
}

export const initialRejoin: RejoinState = { failures: 0, lastFailedAtMs: -Infinity };

/**
 * How long a node waits after its n-th failed rejoin in a row before the next attempt: 1 s doubling
 * to at most 60 s. Each attempt may copy the whole database (the base-backup fallback), so a cause
 * that needs an operator (a wrong password, a full disk) must not turn into back-to-back copies.
 */
export function rejoinBackoffMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(60_000, 1000 * 2 ** (failures - 1));
}

export function rejoinIfPossible(st: Step): void {
  const s = st.s;
  if (s.fenceInFlight !== null || s.inFlight !== null) return;
  if (s.pg?.running && s.pg.writable && !s.fence.fenced) return; // checkLease is fencing it
  const primary = s.durable.primaryOfTerm;
  if (!isOtherNode(s, primary)) return;
  const peer = statusOf(s, primary);
  if (peer === null) return;
  // Rewind only from a primary that has finished promoting in our term.
  if (peer.term !== s.durable.term || peer.pg.inRecovery || !peer.pg.running) return;
  if (s.nowMs - s.rejoin.lastFailedAtMs < rejoinBackoffMs(s.rejoin.failures)) return;
  st.effect({ kind: 'rejoin', primary });
  st.because(`rejoining as a standby of ${primary} (term ${s.durable.term})`);
}

export function onRejoinDone(st: Step, r: EffectResult): void {
  const s = st.s;
  if (!r.ok) {
    const failures = s.rejoin.failures + 1;
    st.set({ rejoin: { failures, lastFailedAtMs: s.nowMs } });
    const next = rejoinBackoffMs(failures) / 1000;
    st.notify('rejoin-failed', `rejoin as a standby of ${s.durable.primaryOfTerm} failed (${failures} in a row; next try in ${next} s): ${r.detail}`);
    return;
  }
  st.set({ rejoin: initialRejoin, follow: null, receiverStopped: false });
  unfenced(st);
  vipAfterRejoined(st);
  promotionReset(st);
  const upstream = s.settings.nodes.length > 2 ? { upstream: s.durable.primaryOfTerm } : {};
  st.set({ pg: s.pg === null ? null : { ...s.pg, inRecovery: true, writable: false, ...upstream } });
  st.notify('rejoined', `rejoined as a standby of ${s.durable.primaryOfTerm}: ${r.detail}`);
  st.because(`rejoined as a standby of ${s.durable.primaryOfTerm}`);
}

// A planned restart of this node's PostgreSQL (`pgvip restart`), asked for by the witness. It is no
// failure, so for a bounded time the agent holds what would treat it as one:
//
//   primary:  fencing ──(fenced)──► pending ──► restarting ──(effect done)──► starting ──(unfenced)──► done
//   standby:                        pending ──► restarting ──(effect done)──► starting ──(running)──► done
//
// (pending waits for the pipeline slot: one effect at a time.)
//
// While held (until PostgreSQL is back, or `untilMs` on this node's clock): a down server counts no
// failed write probe, so the fast path neither fences nor releases; the primary keeps renewing its
// lease with the report it had before the restart, so neither grantor's promise runs out and nobody
// may campaign; its status says `restarting`, which the standby's and the witness's failure checks
// hold for. Nothing else changes: a lease that lapses still fences (rule one), and a fenced server
// comes back fenced and is unfenced only under a valid lease of the same term (the primary restarts
// behind a read-only fence, so it can never come back writable without one). The hold ends at the
// deadline whatever happens; a restart that has not finished by then, or whose effect failed, is from
// then on an ordinary failure. docs/design.md, Planned restarts.

import type { EffectResult } from '../actions.js';
import type { Lsn, NodeId, PeerRequest } from '../messages.js';
import { agentRole, isPrimaryOfTerm, restartHeld } from './facts.js';
import { fence } from './fence.js';
import type { AgentState } from './state.js';
import type { Step } from './step.js';

export interface RestartState {
  /** The term the restart was asked for in; a new term ends it. */
  readonly term: number;
  /** When the hold ends, on this node's clock. */
  readonly untilMs: number;
  /** fencing (a primary) → pending (the pipeline slot is busy) → restarting (the effect runs) → starting. */
  readonly step: 'fencing' | 'pending' | 'restarting' | 'starting';
  /** The primary's report before the restart: its lease renewals carry it while the server is down. */
  readonly report: { readonly lsn: Lsn; readonly timeline: number; readonly syncStandby: NodeId | null } | null;
}

type RestartRequest = Extract<PeerRequest, { kind: 'restart-request' }>;


/** Why this node refuses a restart request now, or null. */
function refusal(s: AgentState, msg: RestartRequest): string | null {
  if (msg.from !== s.settings.witness) return `a restart is asked for by the witness ${s.settings.witness}, not ${msg.from}`;
  if (msg.to !== s.settings.self) return `this is ${s.settings.self}, not ${msg.to}`;
  if (msg.term !== s.durable.term) return `term ${msg.term} is not this node's term ${s.durable.term}`;
  if (!(msg.timeoutMs > 0)) return 'the restart needs a deadline above 0 ms';
  const role = agentRole(s);
  if (isPrimaryOfTerm(s)) {
    if (role !== 'primary') return `this node is ${role}, not a healthy primary`;
    if (s.switchover !== null) return 'a switchover is running';
  } else if (role !== 'standby' || s.pg?.running !== true) {
    return `this node is ${role}, not a running standby`;
  }
  return null;
}

/** The witness asks for a restart: accepted (and answered) or refused with the reason. */
export function onRestartRequest(st: Step, msg: RestartRequest): boolean {
  const s = st.s;
  const ack = (accepted: boolean, reason: string) => st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted, reason });
  if (restartHeld(s) && msg.from === s.settings.witness && msg.to === s.settings.self) {
    ack(true, 'already restarting'); // the witness resends until it hears an answer
    return false;
  }
  const why = refusal(s, msg);
  if (why !== null) {
    ack(false, why);
    st.because(`refused a planned restart: ${why}`);
    return false;
  }
  const pg = s.pg!;
  const primary = isPrimaryOfTerm(s);
  st.set({
    restart: {
      term: s.durable.term,
      untilMs: s.nowMs + msg.timeoutMs,
      step: primary ? 'fencing' : 'pending',
      report: primary ? { lsn: pg.lsn, timeline: pg.timeline, syncStandby: pg.syncStandby } : null,
    },
  });
  st.notify('planned-restart', `restarting postgresql on ${s.settings.self} (planned, at most ${msg.timeoutMs} ms)`);
  ack(true, `restarting postgresql (failure handling held for at most ${msg.timeoutMs} ms)`);
  return true;
}

/**
 * The restart's next step while it is held; returns false when no restart is held (then the caller
 * goes on as usual). A primary restarts behind its read-only fence; a standby restarts at once.
 */
export function progressRestart(st: Step): boolean {
  const s = st.s;
  const r = s.restart;
  if (r === null) return false;
  if (!restartHeld(s)) {
    // Deadline passed (or a new term): from now on an ordinary failure, if it is one.
    st.set({ restart: null });
    if (r.term === s.durable.term) st.because(`planned restart did not finish by its deadline: handled as a failure from now on`);
    return false;
  }
  if (r.step === 'fencing') {
    if (s.fenceInFlight !== null) return true;
    if (!s.fence.fenced) {
      fence(st, 'planned restart');
      return true;
    }
    st.set({ restart: { ...r, step: 'pending' } });
  }
  if (st.s.restart?.step === 'pending' && s.inFlight === null) {
    st.set({ restart: { ...r, step: 'restarting' } });
    st.effect({ kind: 'restart-postgres' });
    st.because(`planned restart: restarting postgresql${r.report === null ? '' : ' behind the read-only fence'}`);
  }
  // Started again: the role's usual logic takes over (a primary unfences under its lease) while the
  // hold still keeps the VIP and the failure checks, until restartObserved sees the server serve.
  return st.s.restart?.step !== 'starting';
}

/** The restart's fence took: its lease renewals report the final LSN from now on. */
export function restartFenced(st: Step, finalLsn: Lsn): void {
  const r = st.s.restart;
  if (r === null || r.report === null || finalLsn <= r.report.lsn) return;
  st.set({ restart: { ...r, report: { ...r.report, lsn: finalLsn } } });
}

/** The restart effect finished: on success the hold lasts until PostgreSQL is seen running. */
export function onRestartDone(st: Step, r: EffectResult): void {
  const s = st.s;
  if (s.restart === null) return;
  if (!r.ok) {
    st.set({ restart: null });
    st.notify('planned-restart', `planned restart of postgresql on ${s.settings.self} failed: ${r.detail}; handled as a failure from now on`);
    st.because(`planned restart failed: ${r.detail}`);
    return;
  }
  st.set({ restart: { ...s.restart, step: 'starting' } });
}

/**
 * A tick saw PostgreSQL serve again after the restart: the hold ends (a primary once it writes again,
 * unfenced under its lease; a standby once it runs).
 */
export function restartObserved(st: Step): void {
  const s = st.s;
  const r = s.restart;
  if (r === null || r.step !== 'starting' || s.pg === null || !s.pg.running) return;
  if (r.report !== null && (!s.pg.writable || s.fence.fenced)) return;
  st.set({ restart: null });
  st.notify('planned-restart', `postgresql on ${s.settings.self} is back after a planned restart`);
  st.because('planned restart done: postgresql is running again');
}

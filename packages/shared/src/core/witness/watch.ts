// The witness's watch over both nodes: each poll updates the node's view, counts a primary's failed
// checks (judged on the agent and on PostgreSQL directly), tells operators when a node goes away,
// comes back or rejoins, and when a failed primary goes unreplaced.

import type { AgentStatus, NodeId } from '../messages.js';
import { promiseMs } from '../timings.js';
import type { HoldDown, NodeView, Step, WitnessState } from './state.js';
import { restartHoldsCheck, watchRestart } from './restart.js';
import { adopt } from './term.js';

export function otherNode(s: WitnessState, node: NodeId): NodeId {
  const [a, b] = s.settings.nodes;
  return node === a ? b : a;
}

export function primaryFailed(s: WitnessState): boolean {
  const p = s.durable.primaryOfTerm;
  if (p === null) return true;
  if (s.releasedTerm === s.durable.term) return true;
  return (s.views[p]?.failedChecks ?? 0) >= s.settings.timings.failureChecks;
}

/** One check of a node as primary: judged on the agent and on PostgreSQL directly, never the agent alone. */
function checkFailed(s: WitnessState, node: NodeId, status: AgentStatus | null, pgReachable: boolean): boolean {
  if (node !== s.durable.primaryOfTerm) return false;
  if (restartHoldsCheck(s, node, status)) return false;
  if (status === null) return !pgReachable;
  if (status.term > s.durable.term) return false;
  return !((status.role === 'primary' || status.role === 'promoting') && status.pg.running);
}

export function onPoll(st: Step, node: NodeId, status: AgentStatus | null, pgReachable: boolean): void {
  const s = st.s;
  const prev = s.views[node];
  if (prev === undefined) return;
  const failed = checkFailed(s, node, status, pgReachable);
  const checks = s.settings.timings.failureChecks;
  const pgSays = `postgresql ${pgReachable ? 'reachable' : 'unreachable'}`;
  let view: NodeView = {
    status: status ?? prev.status,
    pgReachable,
    failedChecks: failed ? prev.failedChecks + 1 : 0,
    lastSeenAtMs: status !== null ? s.nowMs : prev.lastSeenAtMs,
    missedPolls: status === null ? prev.missedPolls + 1 : 0,
    reportedDown: prev.reportedDown,
    rejoinFailedTerm: prev.rejoinFailedTerm,
    rejoinedTerm: prev.rejoinedTerm,
    ...(prev.holdDown === undefined ? {} : { holdDown: prev.holdDown }),
  };
  view = { ...view, ...reportRejoin(st, node, prev, status) };
  if (failed && view.failedChecks === checks) {
    const agentSays = status === null ? 'unreachable' : `reports ${status.role}`;
    const detail = `primary ${node} failed ${view.failedChecks} consecutive checks (agent ${agentSays}, ${pgSays})`;
    st.because(`primary ${node} failed ${view.failedChecks} checks`);
    view = { ...view, reportedDown: true, ...wentDown(st, node, view, 'failure-detected', detail) };
  } else if (!failed && node !== s.durable.primaryOfTerm && view.missedPolls === checks && !view.reportedDown) {
    // The primary's failures are reported above; a standby (or a deposed primary) that stops
    // answering matters too: it can no longer take over.
    const detail = `${node} did not answer ${checks} consecutive polls (${pgSays}); it cannot take over meanwhile`;
    view = { ...view, reportedDown: true, ...wentDown(st, node, view, 'node-unreachable', detail) };
  } else if (view.reportedDown && !failed && status !== null && status.pg.running
    && (status.role === 'primary' || status.role === 'standby')) {
    view = { ...view, reportedDown: false, ...cameBack(st, node, view, `${node} answers again as ${status.role}`) };
  } else {
    view = { ...view, ...settled(st, node, view) };
  }
  st.set({ views: { ...s.views, [node]: view } });
  const wasAnswering = prev.status !== null && prev.failedChecks === 0 && prev.lastSeenAtMs !== null;
  if (status === null && wasAnswering && node === s.durable.primaryOfTerm && pgReachable) {
    st.notify('agent-unreachable', `agent on ${node} unreachable while its postgresql answers: agent failure, not a database failure`);
  }
  // A node in a newer term (e.g. after a switchover handover) teaches the witness that term.
  if (status !== null && status.term > s.durable.term && status.primaryOfTerm !== null) {
    adopt(st, status.term, status.primaryOfTerm, node);
  }
  watchRestart(st, node, status);
}

/**
 * Tells operators, once per term, that the primary has failed and no automatic failover will follow
 * unless something changes: the standby says why it cannot be promoted, or does not answer either.
 * Only after the time a failover would normally take (the standby's promise plus its own checks),
 * and only while the standby does not stream: a standby still streaming sees a live primary (the
 * witness alone lost it: docs/design.md, Failure scenarios, row 8), which is no failure at all. A
 * refused vote reports at once (decideVote).
 */
export function watchForBlockedFailover(st: Step): void {
  const s = st.s;
  const d = s.durable;
  const failed = d.primaryOfTerm !== null && primaryFailed(s);
  const since = s.blocked.primaryFailedSinceMs;
  if (!failed) {
    if (since !== null) st.set({ blocked: { ...s.blocked, primaryFailedSinceMs: null } });
    return;
  }
  if (since === null) {
    st.set({ blocked: { ...s.blocked, primaryFailedSinceMs: s.nowMs } });
    return;
  }
  const t = s.settings.timings;
  if (s.nowMs - since < promiseMs(t) + (t.failureChecks + 2) * t.heartbeatMs) return;
  const standby = otherNode(s, d.primaryOfTerm!);
  const view = s.views[standby];
  if (view === undefined) return;
  if (view.status === null || view.missedPolls >= t.failureChecks) {
    return reportBlocked(st, `${standby} does not answer the witness either`);
  }
  if (view.status.term > d.term || view.status.pg.streaming) return;
  if (d.maintenance) return reportBlocked(st, 'the cluster is in maintenance');
  if (view.status.promotionBlocker !== null) {
    return reportBlocked(st, `${standby} cannot be promoted: ${view.status.promotionBlocker}`);
  }
}

export function reportBlocked(st: Step, why: string): void {
  const s = st.s;
  const d = s.durable;
  if (s.blocked.notifiedTerm === d.term) return;
  st.set({ blocked: { ...s.blocked, notifiedTerm: d.term } });
  st.notify('failover-blocked', `primary ${d.primaryOfTerm} failed in term ${d.term}, but no automatic failover is allowed: ${why}`);
  st.because(`failover blocked: ${why}`);
}

/**
 * How an old primary's way back looks from the polls, once per term and node: `rejoined` when it
 * reports a standby of the current term; `rejoin-failed` when an attempt ends in anything else (the
 * agent retries with growing waits, and its log has the reason). Returns the view's new marks.
 */
function reportRejoin(st: Step, node: NodeId, prev: NodeView, status: AgentStatus | null): Partial<NodeView> {
  const s = st.s;
  const term = s.durable.term;
  const primary = s.durable.primaryOfTerm;
  if (status === null || prev.status === null) return {};
  const isStandby = status.role === 'standby' && status.pg.inRecovery;
  if (prev.status.role === 'rejoining' && status.role !== 'rejoining' && !isStandby && prev.rejoinFailedTerm !== term) {
    st.notify('rejoin-failed', `${node} tried to rejoin as a standby of ${primary} and is ${status.role} again; it retries with growing waits (its agent log says why)`);
    return { rejoinFailedTerm: term };
  }
  const wasOutOfService = ['rejoining', 'demoted', 'fenced', 'primary', 'promoting'].includes(prev.status.role);
  if (wasOutOfService && isStandby && status.term === term && node !== primary && prev.rejoinedTerm !== term) {
    st.notify('rejoined', `${node} is a standby of ${primary} again`);
    return { rejoinedTerm: term };
  }
  return {};
}

// ---- the hold-down of a flapping node's notifications --------------------------------------------
// A link that flaps raised a failure-detected (or node-unreachable) / node-recovered pair every few
// seconds: 24 pairs in two minutes. Once a node has come back, its next failure-detected or
// node-unreachable within nodeHoldDownMs of that is held back, and so is the recovery that ends it;
// the held transitions are counted and summarised ("flapping: N transitions in T") when the node
// settles, up or down, for a whole hold-down, or every FLAP_SUMMARY_EVERY_MS while it goes on. Each
// summary goes out as the event of the node's state at that moment, so the last event a channel got
// always says whether the node is up. Only notifications are held: failedChecks and missedPolls,
// which decisions read, count as before, and what follows a failure (a vote, failover-blocked) is
// announced as always.

/** While a node keeps flapping, a summary at most this often. */
export const FLAP_SUMMARY_EVERY_MS = 5 * 60_000;

type DownEvent = 'failure-detected' | 'node-unreachable';

function holdDownMs(st: Step): number {
  return st.s.settings.nodeHoldDownMs ?? 0;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/** A node failed or stopped answering: announce it, unless it came back within the hold-down. */
function wentDown(st: Step, node: NodeId, view: NodeView, event: DownEvent, detail: string): Partial<NodeView> {
  const h = view.holdDown;
  const now = st.s.nowMs;
  if (h === undefined || now - h.recoveredAtMs >= holdDownMs(st)) {
    st.notify(event, detail);
    // Announced: the recovery that ends it is announced too.
    return h === undefined ? {} : { holdDown: { ...h, heldDownAtMs: null } };
  }
  const sinceMs = h.held === 0 ? now : h.sinceMs;
  const holdDown: HoldDown = { ...h, heldDownAtMs: now, heldAs: event, held: h.held + 1, sinceMs };
  st.because(`held back ${event} for ${node}: it came back ${seconds(now - h.recoveredAtMs)} ago (flapping)`);
  return { holdDown };
}

/** A node answers again: announce it, unless the down it ends was held back. */
function cameBack(st: Step, node: NodeId, view: NodeView, detail: string): Partial<NodeView> {
  const h = view.holdDown;
  const now = st.s.nowMs;
  if (holdDownMs(st) <= 0) {
    st.notify('node-recovered', detail);
    return {};
  }
  if (h === undefined || h.heldDownAtMs === null) {
    st.notify('node-recovered', detail);
    const counts = h === undefined ? { held: 0, sinceMs: now } : { held: h.held, sinceMs: h.sinceMs };
    return { holdDown: { recoveredAtMs: now, heldDownAtMs: null, heldAs: 'node-unreachable', ...counts } };
  }
  st.because(`held back node-recovered for ${node} (flapping)`);
  return { holdDown: { ...h, recoveredAtMs: now, heldDownAtMs: null, held: h.held + 1 } };
}

/**
 * No transition in this poll: if transitions were held back, summarise them once the node has
 * stayed up (or down) for a whole hold-down, or at most every FLAP_SUMMARY_EVERY_MS while it flaps.
 */
function settled(st: Step, node: NodeId, view: NodeView): Partial<NodeView> {
  const h = view.holdDown;
  const holdMs = holdDownMs(st);
  if (h === undefined || h.held === 0 || holdMs <= 0) return {};
  const now = st.s.nowMs;
  const down = h.heldDownAtMs !== null;
  const lastChangeAtMs = h.heldDownAtMs ?? h.recoveredAtMs;
  const steadyMs = now - lastChangeAtMs;
  if (steadyMs >= holdMs) {
    const flapping = `flapping: ${h.held} transitions in ${seconds(lastChangeAtMs - h.sinceMs)}`;
    if (down) {
      const what = h.heldAs === 'failure-detected'
        ? `primary ${node} ${flapping}; it has failed its checks for ${seconds(steadyMs)}`
        : `${node} ${flapping}; it has not answered for ${seconds(steadyMs)}, so it cannot take over meanwhile`;
      st.notify(h.heldAs, what);
      // Announced now: its recovery is announced too.
      return { holdDown: { ...h, heldDownAtMs: null, held: 0, sinceMs: now } };
    }
    st.notify('node-recovered', `${node} ${flapping}; it has answered for ${seconds(steadyMs)} since`);
    return { holdDown: { ...h, held: 0, sinceMs: now } };
  }
  if (now - h.sinceMs < FLAP_SUMMARY_EVERY_MS) return {};
  const flapping = `flapping: ${h.held} transitions in ${seconds(now - h.sinceMs)}`;
  const event = down ? h.heldAs : 'node-recovered';
  st.notify(event, `${node} ${flapping}, and still flapping (${down ? 'down' : 'answering'} now)`);
  return { holdDown: { ...h, held: 0, sinceMs: now } };
}

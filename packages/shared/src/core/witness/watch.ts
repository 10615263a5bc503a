// The witness's watch over both nodes: each poll updates the node's view, counts a primary's failed
// checks (judged on the agent and on PostgreSQL directly), tells operators when a node goes away,
// comes back or rejoins, and when a failed primary goes unreplaced.

import type { AgentStatus, NodeId } from '../messages.js';
import { promiseMs } from '../timings.js';
import type { NodeView, Step, WitnessState } from './state.js';
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
  };
  view = { ...view, ...reportRejoin(st, node, prev, status) };
  if (failed && view.failedChecks === checks) {
    const agentSays = status === null ? 'unreachable' : `reports ${status.role}`;
    st.notify('failure-detected', `primary ${node} failed ${view.failedChecks} consecutive checks (agent ${agentSays}, ${pgSays})`);
    st.because(`primary ${node} failed ${view.failedChecks} checks`);
    view = { ...view, reportedDown: true };
  } else if (!failed && node !== s.durable.primaryOfTerm && view.missedPolls === checks && !view.reportedDown) {
    // The primary's failures are reported above; a standby (or a deposed primary) that stops
    // answering matters too: it can no longer take over.
    st.notify('node-unreachable', `${node} did not answer ${checks} consecutive polls (${pgSays}); it cannot take over meanwhile`);
    view = { ...view, reportedDown: true };
  } else if (view.reportedDown && !failed && status !== null && status.pg.running
    && (status.role === 'primary' || status.role === 'standby')) {
    st.notify('node-recovered', `${node} answers again as ${status.role}`);
    view = { ...view, reportedDown: false };
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

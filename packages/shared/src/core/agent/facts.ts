// Facts derived from the agent's state. Roles are not stored; they follow from the durable term
// record and PostgreSQL's observed state:
//   primaryOfTerm = self, PG in recovery        → promoting (run the promotion pipeline)
//   primaryOfTerm = self, PG writable, lease ok → primary
//   primaryOfTerm = self, no valid lease        → fenced (keep asking for the lease)
//   primaryOfTerm ≠ self, PG not in recovery    → demoted (fence, drop the VIP, rejoin)
//   primaryOfTerm ≠ self, PG in recovery        → standby (grant leases, watch the primary, campaign)

import { promotionBlocker } from '../eligibility.js';
import { PROTOCOL_VERSION, type AgentRole, type AgentStatus, type NodeId, type PgSnapshot } from '../messages.js';
import type { AgentState } from './state.js';

export function isPrimaryOfTerm(s: AgentState): boolean {
  return s.durable.primaryOfTerm === s.settings.self;
}

export function leaseRemainingMs(s: AgentState): number {
  const held = s.lease.held;
  if (held === null || held.term !== s.durable.term || !isPrimaryOfTerm(s)) return 0;
  return Math.max(0, held.validUntilMs - s.nowMs);
}

/**
 * When this node's lease for its current term ends on its own clock, or null when it holds none (not
 * primary of the term, or no grant yet). The simulator's observer reads write authority from it.
 */
export function leaseValidUntilMs(s: AgentState): number | null {
  const held = s.lease.held;
  if (held === null || held.term !== s.durable.term || !isPrimaryOfTerm(s)) return null;
  return held.validUntilMs;
}

/** This node released its lease for the current term (fast path) and has not asked for it again. */
export function releasedOwnLease(s: AgentState): boolean {
  return s.lease.release.phase === 'released' && s.lease.release.term === s.durable.term;
}

/** A planned restart's hold is on (agent/restart.ts): asked for in this term, its deadline not passed. */
export function restartHeld(s: AgentState): boolean {
  const r = s.restart;
  return r !== null && r.term === s.durable.term && s.nowMs < r.untilMs;
}

/** Boot grace of a restarted primary: one lease round trip before it fences for want of a lease. */
export function inBootGrace(s: AgentState): boolean {
  const t = s.settings.timings;
  return s.nowMs < s.bootAtMs + t.heartbeatMs + t.requestTimeoutMs;
}

/**
 * Only a node that may write keeps the VIP for good: once fenced, released or deposed it removes it
 * from its interface (EC2 routes it to the new primary). A promoting node and a primary within its
 * lease or boot grace may hold it.
 */
export function mayHoldVip(s: AgentState): boolean {
  if (!isPrimaryOfTerm(s) || releasedOwnLease(s) || s.pg === null) return false;
  // A planned restart fences the primary but does not end it: it keeps the VIP while its lease lasts.
  if (s.fence.fenced && !restartHeld(s)) return false;
  return s.pg.inRecovery || leaseRemainingMs(s) > 0 || inBootGrace(s);
}

export function agentRole(s: AgentState): AgentRole {
  const pg = s.pg;
  if (pg === null) return 'starting';
  if (isPrimaryOfTerm(s)) {
    if (pg.inRecovery) return 'promoting';
    if (s.fence.fenced || !pg.writable || leaseRemainingMs(s) === 0) return 'fenced';
    return 'primary';
  }
  if (s.inFlight?.kind === 'rejoin') return 'rejoining';
  if (!pg.inRecovery && pg.running) return 'demoted';
  if (s.campaign !== null || s.withdrawal !== null) return 'candidate';
  return 'standby';
}

/** Why this node may not be promoted now, or null. */
export function blocker(s: AgentState): string | null {
  const why = promotionBlocker({
    self: s.settings.self,
    nowMs: s.nowMs,
    timings: s.settings.timings,
    replication: s.settings.replication,
    lagBytesMax: s.settings.lagBytesMax,
    pg: s.pg,
    lastStreamingAtMs: s.lastStreamingAtMs,
    primaryReport: s.primaryReport,
    maintenance: s.maintenance,
    // With three or more nodes the sync record in etcd says who may win (electionDecision), not the
    // standby the primary names.
    recordDecides: manyNodes(s),
  });
  if (why !== null || !manyNodes(s)) return why;
  // Three or more nodes: a standby that learned its term from etcd but never streamed from that term's
  // primary (it failed right after promoting) holds an older primary's WAL on an older timeline, and
  // its report and streaming grace are that older primary's: it may not win (review-17b G9).
  const d = s.durable;
  if (d.primaryOfTerm !== null && d.primaryOfTerm !== s.settings.self && s.streamedTerm !== d.term) {
    return `has not streamed from ${d.primaryOfTerm}, primary of term ${d.term}`;
  }
  return null;
}

const downPg: PgSnapshot = {
  running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n,
  streaming: false, syncStandby: null, standbyInSync: false,
};

/** Three or more database nodes: the N-node paths and fields are on (docs/design.md, "More than one standby"). */
export function manyNodes(s: AgentState): boolean {
  return s.settings.nodes.length > 2;
}

/** A database node of the config other than this one (with two nodes: the peer). */
export function isOtherNode(s: AgentState, node: NodeId | null): node is NodeId {
  if (node === null || node === s.settings.self) return false;
  return node === s.settings.peer || s.settings.nodes.some((n) => n.id === node);
}

/** The last status of another node: from the tick's `peers`, or the peer's (two nodes). */
export function statusOf(s: AgentState, node: NodeId): AgentStatus | null {
  if (Object.hasOwn(s.peers, node)) return s.peers[node] ?? null;
  return node === s.settings.peer ? s.peer : null;
}

/** The status of the term's primary when it is another node (null: unknown, unreachable or self). */
export function primaryStatus(s: AgentState): AgentStatus | null {
  const primary = s.durable.primaryOfTerm;
  return isOtherNode(s, primary) ? statusOf(s, primary) : null;
}

/**
 * Who grants this node's lease besides its quorum: the peer with two nodes; with more, every other
 * node that may be promoted (noFailover nodes never campaign, so the primary does not wait for them).
 */
export function standbyGrantors(s: AgentState): readonly NodeId[] {
  if (!manyNodes(s)) return [s.settings.peer];
  return s.settings.nodes.filter((n) => n.id !== s.settings.self && !n.noFailover).map((n) => n.id);
}

/** This node may never be promoted (cluster.nodes[].noFailover). */
export function isNoFailover(s: AgentState): boolean {
  return s.settings.nodes.some((n) => n.id === s.settings.self && n.noFailover);
}

/** This standby is a member of the claim its primary reported in force for the current term. */
export function syncMember(s: AgentState): boolean {
  const claim = s.primaryReport?.term === s.durable.term ? s.primaryReport.syncClaim : undefined;
  return claim !== undefined && claim.k > 0 && claim.members.includes(s.settings.self);
}

/** The snapshot as a two-node cluster serves it: the fields of N nodes left out (its wire is unchanged). */
function twoNodePg(pg: PgSnapshot): PgSnapshot {
  const { syncClaim: _claim, replicas: _replicas, upstream: _upstream, ...rest } = pg;
  return rest;
}

/** The status this agent serves on GET /status. */
export function agentStatus(s: AgentState): AgentStatus {
  const many = manyNodes(s);
  const pg = s.pg ?? downPg;
  return {
    v: PROTOCOL_VERSION,
    cluster: s.settings.cluster,
    term: s.durable.term,
    from: s.settings.self,
    primaryOfTerm: s.durable.primaryOfTerm,
    role: agentRole(s),
    pg: many ? pg : twoNodePg(pg),
    leaseRemainingMs: leaseRemainingMs(s),
    promotionBlocker: blocker(s),
    maintenance: s.maintenance,
    ...(restartHeld(s) ? { restarting: true } : {}),
    ...(many ? { syncMember: syncMember(s), withdrawn: s.withdrawal !== null } : {}),
  };
}

/** Whether a status shows a primary that is alive and serving writes. */
export function showsHealthyPrimary(st: AgentStatus): boolean {
  const pg = st.pg;
  return (st.role === 'primary' || st.role === 'promoting') && pg.running && (pg.writable || pg.inRecovery);
}

// Which standby should win a failover among N database nodes, as pure functions (docs/design.md,
// "More than one standby", Candidate choice). Every standby ranks the same published final positions
// the same way, so the standbys that see the same positions agree on one winner and the others
// yield; the campaign txn compares every eligible member's position key, so one that saw fewer
// positions than were published cannot win (its txn fails and it ranks again).
//
// Wired into stepAgent by core/agent/withdrawal.ts and core/agent/claim-sync.ts; etcd's bridge runs
// electionDecision (docs/design.md, "More than one standby").
import type { Lsn, NodeId } from '../messages.js';
import { promotionSafety, type FinalPosition, type SyncClaim } from './quorum-commit.js';

/** What the config says of a node (cluster.nodes[]). */
export interface NodeTraits {
  readonly id: NodeId;
  /** Higher wins among the equally advanced. */
  readonly priority: number;
  /** Never promoted (e.g. a reporting replica); never in the sync record, never a grantor. */
  readonly noFailover: boolean;
}

/** A standby's published position in the current term. */
export interface CandidatePosition extends FinalPosition {
  /** Streamed from the failed primary within streamingGraceMs before it stopped. */
  readonly streamedRecently: boolean;
  /** The failed primary's last LSN this standby knows (for the async lag bound), or null. */
  readonly primaryLsn: Lsn | null;
}

export interface RankingRules {
  readonly mode: 'sync' | 'async';
  /** The async bound on loss: a standby further behind the primary's last known LSN is not eligible. */
  readonly lagBytesMax: bigint;
  /** The newest timeline: a standby on an older one has not followed the last failover. */
  readonly timeline: number;
  /** The sync record of the term (sync mode). */
  readonly record: SyncClaim;
  /** The primary of the term, which failed: never a candidate, and nobody waits for its position. */
  readonly primaryOfTerm: NodeId | null;
}

export type Ranked =
  | { readonly node: NodeId; readonly eligible: true; readonly position: CandidatePosition; readonly priority: number }
  | { readonly node: NodeId; readonly eligible: false; readonly why: string };

/** Why `node` may not be promoted automatically, or null (docs/design.md, I4). */
export function candidateBlocker(
  node: NodeTraits,
  position: CandidatePosition | undefined,
  rules: RankingRules,
): string | null {
  if (node.id === rules.primaryOfTerm) return `${node.id} is the primary that failed`;
  if (node.noFailover) return `${node.id} has noFailover`;
  if (position === undefined) return `${node.id} published no final position`;
  if (position.timeline !== rules.timeline) return `${node.id} is on timeline ${position.timeline}, not ${rules.timeline}`;
  if (!position.streamedRecently) return `${node.id} had not streamed recently`;
  if (rules.mode === 'sync') {
    if (!rules.record.members.includes(node.id)) return `${node.id} is not in the sync record`;
  } else if (position.primaryLsn !== null && position.primaryLsn - position.flushLsn > rules.lagBytesMax) {
    return `${node.id} is ${position.primaryLsn - position.flushLsn} bytes behind (lagBytesMax ${rules.lagBytesMax})`;
  }
  return null;
}

/**
 * Most advanced first: timeline, then flushed LSN, then priority, then the node id (so that every
 * standby breaks a full tie the same way). Negative when `a` ranks before `b`.
 */
export function compareCandidates(
  a: { readonly node: NodeId; readonly position: FinalPosition; readonly priority: number },
  b: { readonly node: NodeId; readonly position: FinalPosition; readonly priority: number },
): number {
  if (a.position.timeline !== b.position.timeline) return b.position.timeline - a.position.timeline;
  if (a.position.flushLsn !== b.position.flushLsn) return a.position.flushLsn > b.position.flushLsn ? -1 : 1;
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** Every node of the config, eligible ones first in rank order, then the others with why (in id order). */
export function rankCandidates(
  nodes: readonly NodeTraits[],
  positions: readonly CandidatePosition[],
  rules: RankingRules,
): Ranked[] {
  const byNode = new Map(positions.map((p) => [p.node, p] as const));
  const eligible: Extract<Ranked, { eligible: true }>[] = [];
  const blocked: Extract<Ranked, { eligible: false }>[] = [];
  for (const node of nodes) {
    const position = byNode.get(node.id);
    const why = candidateBlocker(node, position, rules);
    if (why === null && position !== undefined) {
      eligible.push({ node: node.id, eligible: true, position, priority: node.priority });
    } else {
      blocked.push({ node: node.id, eligible: false, why: why ?? `${node.id} published no final position` });
    }
  }
  eligible.sort(compareCandidates);
  blocked.sort((a, b) => (a.node < b.node ? -1 : 1));
  return [...eligible, ...blocked];
}

export type ElectionDecision =
  | { readonly campaign: true; readonly reason: string }
  | { readonly campaign: false; readonly wait: boolean; readonly reason: string };

/**
 * Whether `self` campaigns now. It campaigns only when it ranks first among the eligible positions
 * it knows and, in sync mode, promoting it is safe (promotionSafety). It waits, rather than gives
 * up, while the election window is open and an eligible member has not published yet, or while the
 * sync rule still lacks positions; it yields to a better candidate.
 */
export function electionDecision(
  self: NodeId,
  nodes: readonly NodeTraits[],
  positions: readonly CandidatePosition[],
  rules: RankingRules,
  windowOpen: boolean,
): ElectionDecision {
  const me = nodes.find((n) => n.id === self);
  if (me === undefined) return { campaign: false, wait: false, reason: `${self} is not a node of the cluster` };
  const ranked = rankCandidates(nodes, positions, rules);
  const mine = ranked.find((r) => r.node === self);
  if (mine === undefined || !mine.eligible) {
    return { campaign: false, wait: false, reason: mine?.eligible === false ? mine.why : `${self} is not ranked` };
  }
  const first = ranked[0];
  if (first !== undefined && first.node !== self) {
    return { campaign: false, wait: false, reason: `${first.node} ranks first: more advanced, or as advanced with a higher priority` };
  }
  const published = new Set(positions.map((p) => p.node));
  const silent = nodes.filter(
    (n) => n.id !== self && n.id !== rules.primaryOfTerm && !n.noFailover && !published.has(n.id),
  );
  if (windowOpen && silent.length > 0) {
    return { campaign: false, wait: true, reason: `waiting for the final positions of ${silent.map((n) => n.id).join(', ')}` };
  }
  if (rules.mode === 'sync') {
    const safety = promotionSafety(rules.record, self, positions);
    if (!safety.safe) return { campaign: false, wait: true, reason: safety.why };
    return { campaign: true, reason: `${self} ranks first and holds every acknowledged commit (final positions of ${safety.heard.join(', ')})` };
  }
  return { campaign: true, reason: `${self} ranks first among the eligible standbys` };
}

/** What the switchover's ranking reads of a live standby (its agent's status). */
export interface LiveStandby {
  readonly node: NodeId;
  readonly term: number;
  /** Running, in recovery and streaming from the primary. */
  readonly streaming: boolean;
  readonly timeline: number;
  /** Received (flushed) WAL. */
  readonly lsn: Lsn;
}

/**
 * The best target of a switchover to "the best node": among the live standbys of the primary's term
 * that stream and may be promoted (not noFailover, not the primary), the first by the failover's
 * ranking (timeline, LSN, priority, id); null when there is none. `term` is the primary's.
 */
export function bestSwitchoverTarget(
  nodes: readonly NodeTraits[], primary: NodeId, term: number, standbys: readonly LiveStandby[],
): NodeId | null {
  const traits = new Map(nodes.map((n) => [n.id, n] as const));
  const ranked = standbys
    .filter((s) => s.node !== primary && s.term === term && s.streaming && traits.get(s.node)?.noFailover === false)
    .map((s) => ({
      node: s.node,
      position: { node: s.node, timeline: s.timeline, flushLsn: s.lsn },
      priority: traits.get(s.node)?.priority ?? 0,
    }))
    .sort(compareCandidates);
  return ranked[0]?.node ?? null;
}

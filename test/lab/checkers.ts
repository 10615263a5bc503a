// What the lab checks after every fault, computed from the writer probe's records and the final
// state of the cluster. Pure functions: tested on hand-made records in checkers.test.ts.
//
//   write gap         the longest time without an acknowledged write around the fault
//   lost writes       acknowledged ids missing from the final primary (must be 0 in sync mode: I3)
//   overlapping       two servers acknowledging writes in overlapping time spans (must be 0: I1)
//   final state       exactly one primary, holding the newest term, a lease and the VIP (I5)
import type { WriteRecord } from './writer.js';

export function acknowledged(records: readonly WriteRecord[]): WriteRecord[] {
  return records.filter((r) => r.outcome === 'ok').sort((a, b) => a.doneAt - b.doneAt);
}

/** The first write sent at or after `fromMs` that was acknowledged (optionally by / not by a server). */
export function firstAckAfter(
  records: readonly WriteRecord[],
  fromMs: number,
  filter: { server?: string; notServer?: string } = {},
): WriteRecord | undefined {
  return acknowledged(records).find(
    (r) =>
      r.sentAt >= fromMs &&
      (filter.server === undefined || r.server === filter.server) &&
      (filter.notServer === undefined || r.server !== filter.notServer),
  );
}

export interface WriteGap {
  readonly gapMs: number;
  /** The acknowledgement before the gap (or the window start) and the one ending it (or the window end). */
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * The longest stretch without an acknowledged write in [fromMs, toMs], counted from the last
 * acknowledgement before fromMs (a write gap that began just before the fault belongs to it).
 */
export function writeGap(records: readonly WriteRecord[], fromMs: number, toMs: number): WriteGap {
  const acks = acknowledged(records);
  const before = acks.filter((r) => r.doneAt < fromMs).at(-1);
  const inside = acks.filter((r) => r.doneAt >= fromMs && r.doneAt <= toMs).map((r) => r.doneAt);
  const points = [before?.doneAt ?? fromMs, ...inside, toMs];
  let best: WriteGap = { gapMs: 0, fromMs, toMs: fromMs };
  for (let i = 1; i < points.length; i++) {
    const gap = points[i]! - points[i - 1]!;
    if (gap > best.gapMs) best = { gapMs: gap, fromMs: points[i - 1]!, toMs: points[i]! };
  }
  return best;
}

/** Acknowledged writes whose rows are not on the final primary. */
export function lostAckedWrites(records: readonly WriteRecord[], presentIds: ReadonlySet<number>): WriteRecord[] {
  return acknowledged(records).filter((r) => !presentIds.has(r.id));
}

/** The span of time in which one server, on one timeline, acknowledged writes. */
export interface WriterEpoch {
  readonly server: string;
  readonly timeline: number;
  readonly firstAckAt: number;
  readonly lastAckAt: number;
  readonly acks: number;
}

export function writerEpochs(records: readonly WriteRecord[]): WriterEpoch[] {
  const byKey = new Map<
    string,
    { server: string; timeline: number; firstAckAt: number; lastAckAt: number; acks: number }
  >();
  for (const r of acknowledged(records)) {
    const key = `${r.server}@${r.timeline}`;
    const e = byKey.get(key);
    if (e === undefined) byKey.set(key, { server: r.server ?? '?', timeline: r.timeline ?? 0, firstAckAt: r.doneAt, lastAckAt: r.doneAt, acks: 1 });
    else {
      e.lastAckAt = r.doneAt;
      e.acks += 1;
    }
  }
  return [...byKey.values()].sort((a, b) => a.firstAckAt - b.firstAckAt);
}

export interface Overlap {
  /** Acknowledged writes that fall in a time span in which another server also acknowledged writes. */
  readonly writes: number;
  readonly details: readonly string[];
}

/**
 * Two writers at once: for every pair of epochs of different servers whose acknowledgement spans
 * intersect, the writes acknowledged inside the intersection. A correct failover hands over
 * strictly: the old server's last acknowledgement comes before the new server's first.
 */
export function overlappingWriters(records: readonly WriteRecord[]): Overlap {
  const epochs = writerEpochs(records);
  const acks = acknowledged(records);
  let writes = 0;
  const details: string[] = [];
  for (let i = 0; i < epochs.length; i++) {
    for (let j = i + 1; j < epochs.length; j++) {
      const a = epochs[i]!;
      const b = epochs[j]!;
      if (a.server === b.server) continue;
      const from = Math.max(a.firstAckAt, b.firstAckAt);
      const to = Math.min(a.lastAckAt, b.lastAckAt);
      if (from > to) continue;
      const inside = acks.filter(
        (r) =>
          r.doneAt >= from &&
          r.doneAt <= to &&
          ((r.server === a.server && r.timeline === a.timeline) ||
            (r.server === b.server && r.timeline === b.timeline)),
      ).length;
      writes += inside;
      details.push(`${a.server} (timeline ${a.timeline}) and ${b.server} (timeline ${b.timeline}) both acknowledged writes during ${to - from} ms (${inside} writes)`);
    }
  }
  return { writes, details };
}

// --- the final state ------------------------------------------------------------------------------

/** The fields of an agent's GET /status the checks read (the full shape is AgentStatus in @pgvip/shared). */
export interface AgentStatusView {
  readonly from: string;
  readonly term: number;
  readonly role: string;
  readonly primaryOfTerm: string | null;
  readonly leaseRemainingMs: number;
  readonly promotionBlocker: string | null;
  /** Three or more nodes: this standby is a member of the primary's claim in force. */
  readonly syncMember?: boolean;
  /** Three or more nodes: this standby stopped its receiver for an election. */
  readonly withdrawn?: boolean;
  readonly pg: {
    readonly running: boolean;
    readonly inRecovery: boolean;
    readonly writable: boolean;
    readonly timeline: number;
    readonly streaming: boolean;
    readonly syncStandby: string | null;
    readonly standbyInSync: boolean;
    /** The primary's synchronous_standby_names in force, parsed (three or more nodes). */
    readonly syncClaim?: { readonly members: readonly string[]; readonly k: number };
    /** A standby: the node its primary_conninfo names (three or more nodes). */
    readonly upstream?: string | null;
  };
}

export interface ClusterSnapshot {
  readonly statuses: Readonly<Record<string, AgentStatusView | null>>;
  /** The node the EC2 truth (and so the router) sends VIP traffic to. */
  readonly vipNode: string | null;
  /** The witness's view of the cluster (term, primary, the standby it holds eligible), when it answered. */
  readonly witness: {
    readonly term: number;
    readonly primary: string | null;
    readonly syncEligible: string | null;
  } | null;
}

export interface HealthyCluster {
  readonly primary: string;
  /** The standby (two nodes); with more, the first of `standbys` in config order. */
  readonly standby: string;
  /** Every node other than the primary, in config order. */
  readonly standbys: readonly string[];
  readonly term: number;
}

/**
 * Problems that keep the cluster from being settled and healthy: exactly one primary with the
 * newest term, a lease, writable PostgreSQL and the VIP; the other node a streaming standby on the
 * same term that is eligible for promotion (in sync when `sync`); the witness agreeing.
 */
export function clusterProblems(
  s: ClusterSnapshot,
  options: { sync: boolean; noFailover?: readonly string[] },
): { problems: string[]; healthy: HealthyCluster | null } {
  const nodes = Object.keys(s.statuses);
  if (nodes.length > 2) return nodesProblems(s, { sync: options.sync, noFailover: options.noFailover ?? [] });
  const problems: string[] = [];
  for (const n of nodes) if (s.statuses[n] === null) problems.push(`${n}'s agent does not answer /status`);
  const known = nodes.flatMap((n) => (s.statuses[n] ? [s.statuses[n]] : []));
  if (known.length < nodes.length) return { problems, healthy: null };
  const term = Math.max(...known.map((x) => x.term));
  const primaries = known.filter((x) => x.role === 'primary');
  if (primaries.length !== 1) return { problems: [...problems, `${primaries.length} nodes report role primary (${known.map((x) => `${x.from}: ${x.role}`).join(', ')})`], healthy: null };
  const p = primaries[0]!;
  const sb = known.find((x) => x !== p)!;
  if (p.term !== term) problems.push(`primary ${p.from} is on term ${p.term}, the newest is ${term}`);
  if (!p.pg.writable) problems.push(`primary ${p.from}'s PostgreSQL is not writable`);
  if (p.leaseRemainingMs <= 0) problems.push(`primary ${p.from} holds no lease`);
  if (sb.pg.writable) problems.push(`${sb.from} is not the primary but its PostgreSQL accepts writes`);
  if (sb.term !== term) problems.push(`standby ${sb.from} is on term ${sb.term}, not ${term}`);
  if (sb.role !== 'standby') problems.push(`${sb.from} is ${sb.role}, not standby`);
  if (!sb.pg.inRecovery || !sb.pg.streaming) problems.push(`${sb.from} is not streaming (${sb.pg.inRecovery ? 'in recovery' : 'not in recovery'}, streaming ${sb.pg.streaming})`);
  if (sb.promotionBlocker !== null) problems.push(`${sb.from} is not eligible: ${sb.promotionBlocker}`);
  if (options.sync && (p.pg.syncStandby !== sb.from || !p.pg.standbyInSync)) problems.push(`${sb.from} is not ${p.from}'s synchronous standby yet (sync standby ${p.pg.syncStandby ?? 'none'}, in sync ${p.pg.standbyInSync})`);
  if (s.vipNode !== p.from) problems.push(`the VIP routes to ${s.vipNode ?? 'nowhere'}, not to the primary ${p.from}`);
  if (s.witness === null) problems.push('the witness does not answer');
  else if (s.witness.term !== term || s.witness.primary !== p.from) problems.push(`the witness sees term ${s.witness.term} primary ${s.witness.primary ?? 'none'}, not term ${term} primary ${p.from}`);
  // In sync mode the witness votes only for the standby it recorded as holding every acknowledged
  // write; until it has re-marked the standby, a failover is (rightly) refused.
  else if (options.sync && s.witness.syncEligible !== sb.from) problems.push(`the witness does not hold ${sb.from} sync-eligible yet (it holds ${s.witness.syncEligible ?? 'nobody'})`);
  const healthy = { primary: p.from, standby: sb.from, standbys: [sb.from], term };
  return { problems, healthy: problems.length === 0 ? healthy : null };
}

/**
 * Three or more nodes (etcd): one primary as with two; every other node a streaming standby on the
 * term that follows the primary (its primary_conninfo names it); the eligible ones (not noFailover)
 * eligible for promotion and, in sync mode, members of the primary's claim in force (ANY k, k ≥ 1);
 * a noFailover node never a member. The witness, an observer on etcd, agrees on the term and primary.
 */
function nodesProblems(
  s: ClusterSnapshot,
  options: { sync: boolean; noFailover: readonly string[] },
): { problems: string[]; healthy: HealthyCluster | null } {
  const problems: string[] = [];
  const nodes = Object.keys(s.statuses);
  for (const n of nodes) if (s.statuses[n] === null) problems.push(`${n}'s agent does not answer /status`);
  const known = nodes.flatMap((n) => (s.statuses[n] ? [s.statuses[n]] : []));
  if (known.length < nodes.length) return { problems, healthy: null };
  const term = Math.max(...known.map((x) => x.term));
  const primaries = known.filter((x) => x.role === 'primary');
  if (primaries.length !== 1) return { problems: [`${primaries.length} nodes report role primary (${known.map((x) => `${x.from}: ${x.role}`).join(', ')})`], healthy: null };
  const p = primaries[0]!;
  if (p.term !== term) problems.push(`primary ${p.from} is on term ${p.term}, the newest is ${term}`);
  if (!p.pg.writable) problems.push(`primary ${p.from}'s PostgreSQL is not writable`);
  if (p.leaseRemainingMs <= 0) problems.push(`primary ${p.from} holds no lease`);
  const standbys = known.filter((x) => x !== p);
  const claim = p.pg.syncClaim;
  for (const sb of standbys) {
    const eligible = !options.noFailover.includes(sb.from);
    if (sb.pg.writable) problems.push(`${sb.from} is not the primary but its PostgreSQL accepts writes`);
    if (sb.term !== term) problems.push(`standby ${sb.from} is on term ${sb.term}, not ${term}`);
    if (sb.role !== 'standby') problems.push(`${sb.from} is ${sb.role}, not standby`);
    if (!sb.pg.inRecovery || !sb.pg.streaming) problems.push(`${sb.from} is not streaming (${sb.pg.inRecovery ? 'in recovery' : 'not in recovery'}, streaming ${sb.pg.streaming})`);
    if (sb.pg.upstream !== undefined && sb.pg.upstream !== p.from) problems.push(`${sb.from} follows ${sb.pg.upstream ?? 'nobody'}, not the primary ${p.from}`);
    if (sb.withdrawn === true) problems.push(`${sb.from} is withdrawn (its receiver stopped for an election)`);
    if (eligible && sb.promotionBlocker !== null) problems.push(`${sb.from} is not eligible: ${sb.promotionBlocker}`);
    const member = sb.syncMember === true && claim !== undefined && claim.k >= 1 && claim.members.includes(sb.from);
    if (options.sync && eligible && !member) {
      problems.push(`${sb.from} is not a member of ${p.from}'s synchronous claim yet (claim ${claim === undefined ? 'not reported' : `ANY ${claim.k} (${claim.members.join(', ')})`}, syncMember ${String(sb.syncMember)})`);
    }
    if (!eligible && claim?.members.includes(sb.from) === true) problems.push(`${sb.from} is noFailover but ${p.from}'s synchronous claim names it`);
  }
  if (s.vipNode !== p.from) problems.push(`the VIP routes to ${s.vipNode ?? 'nowhere'}, not to the primary ${p.from}`);
  if (s.witness === null) problems.push('the witness does not answer');
  else if (s.witness.term !== term || s.witness.primary !== p.from) problems.push(`the witness sees term ${s.witness.term} primary ${s.witness.primary ?? 'none'}, not term ${term} primary ${p.from}`);
  const names = standbys.map((x) => x.from);
  const healthy = { primary: p.from, standby: names[0]!, standbys: names, term };
  return { problems, healthy: problems.length === 0 ? healthy : null };
}

// --- summaries --------------------------------------------------------------------------------------

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.max(0, Math.min(sorted.length - 1, rank))]!;
}

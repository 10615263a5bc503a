// What happened between two reads of a cluster's keys on etcd, as the witness's events (the same
// names its core notifies in witness mode, where they have a meaning on etcd). Pure, so the rules are
// tested without etcd:
//
//   the term record moved        to the node whose leader key was created in the same revision: a
//                                campaign won, i.e. an automatic failover ('vote-granted'; the first
//                                term of a cluster is its bootstrap, not a failover);
//                                to the node a switchover key named: 'switchover';
//                                otherwise the leader key was deleted by a handover or by an operator's
//                                forced txn, which look alike on etcd: 'manual-failover', saying so;
//   the leader key vanished      in the same term: its lease ran out ('failure-detected'); back in the
//                                same term: 'node-recovered';
//   the maintenance key          appeared or vanished: 'maintenance';
//   the sync record              named nobody after a standby: 'sync-degraded'; a standby: 'sync-restored'.
//                                With more members (ANY k): a member left or k went down:
//                                'sync-degraded'; a member joined or k went up: 'sync-restored'.
import { formatLsn } from '@pgvip/shared';
import type { ClusterView as EtcdKeys } from '@pgvip/agent/quorum/etcd';
import type { SyncRecordView } from './view.js';

export interface ObservedEvent {
  readonly type: 'vote-granted' | 'switchover' | 'manual-failover' | 'failure-detected' | 'node-recovered' | 'maintenance' | 'sync-degraded' | 'sync-restored';
  readonly node: string | null;
  readonly detail: string;
  /** A vote-granted that replaced a primary (not a bootstrap): counted as an automatic failover. */
  readonly failover?: 'automatic' | 'manual';
}

export interface EventContext {
  readonly replication: 'sync' | 'async';
  /** The last switchover key this witness saw before the term moved (the agent deletes it when it takes it). */
  readonly switchoverSeen: { readonly to: string; readonly term: number } | null;
  /** A forced failover this witness wrote: {term, to}. */
  readonly forcedHere: { readonly to: string; readonly term: number } | null;
  /** The cluster's database nodes (default 2): with more, the primary writes on every eligible standby's grant. */
  readonly nodes?: number;
}

export function etcdEvents(prev: EtcdKeys, next: EtcdKeys, x: EventContext): ObservedEvent[] {
  const out: ObservedEvent[] = [];
  const was = prev.term?.value ?? null;
  const now = next.term?.value ?? null;
  const termMoved = now !== null && (prev.term?.modRevision ?? null) !== next.term?.modRevision;
  if (termMoved) {
    const leader = next.leader;
    const campaign = leader !== null && leader.modRevision === next.term?.modRevision && leader.value.term === now.term;
    const from = was === null ? '' : ` (term ${was.term} was ${was.primary}'s)`;
    if (campaign) {
      const failover = was !== null && was.primary !== now.primary;
      out.push({
        type: 'vote-granted',
        node: now.primary,
        detail: was === null
          ? `${now.primary} won term ${now.term} on etcd: the cluster's first leader key`
          : `${now.primary} won term ${now.term} on etcd (its campaign txn created the leader key)${from}${electionPositions(prev, next, was.term)}`,
        ...(failover ? { failover: 'automatic' as const } : {}),
      });
    } else if (x.forcedHere !== null && x.forcedHere.term === now.term && x.forcedHere.to === now.primary) {
      out.push({ type: 'manual-failover', node: now.primary, detail: `${now.primary} forced to primary in term ${now.term} through this witness, accepting data loss${from}`, failover: 'manual' });
    } else if (x.switchoverSeen?.to === now.primary && x.switchoverSeen.term + 1 === now.term) {
      out.push({ type: 'switchover', node: now.primary, detail: `switchover to ${now.primary}: term ${now.term} handed over on etcd${from}` });
    } else {
      out.push({
        type: 'manual-failover',
        node: now.primary,
        detail: `term ${now.term} moved to ${now.primary} on etcd without a campaign${from}: a forced failover (perhaps through another witness) or a handover whose switchover key this witness did not see`,
        failover: 'manual',
      });
    }
  } else if (now !== null) {
    const a = prev.leader?.value ?? null;
    const b = next.leader?.value ?? null;
    if (a !== null && b === null) {
      const grants = (x.nodes ?? 2) > 2 ? 'the grants of every eligible standby' : 'its standby\'s grant';
      out.push({ type: 'failure-detected', node: a.node, detail: `the leader key of ${a.node} (term ${a.term}) is gone from etcd: its lease ran out or was released; ${a.node} keeps its writes only through ${grants}` });
    } else if (a === null && b !== null && b.term === now.term) {
      out.push({ type: 'node-recovered', node: b.node, detail: `${b.node} holds the leader key of term ${b.term} on etcd again` });
    }
  }
  const m0 = prev.maintenance?.value ?? null;
  const m1 = next.maintenance?.value ?? null;
  if (m0 === null && m1 !== null) out.push({ type: 'maintenance', node: null, detail: `maintenance on (the etcd key) by ${m1.requestedBy}: ${m1.reason}` });
  if (m0 !== null && m1 === null) out.push({ type: 'maintenance', node: null, detail: 'maintenance off (the etcd key was deleted)' });
  if (x.replication === 'sync') out.push(...syncEvents(prev, next));
  return out;
}

/**
 * More than two nodes: the final positions the standbys published in `term`, the election's
 * evidence, as seen in either read (the winner's own goes with its campaign txn); '' when none.
 */
function electionPositions(prev: EtcdKeys, next: EtcdKeys, term: number): string {
  const seen = new Map<string, bigint>();
  for (const keys of [prev, next]) {
    for (const p of keys.positions) if (p.value.term === term) seen.set(p.node, p.value.flushLsn);
  }
  if (seen.size === 0) return '';
  const list = [...seen].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, lsn]) => `${node} ${formatLsn(lsn)}`);
  return `; final positions published: ${list.join(', ')}`;
}

/**
 * The sync record as a claim, whichever form etcd holds: `{members, k, term}`, or the two-node
 * `{standby, term}` of older releases (ANY 1 (standby), or no claim when it names nobody).
 */
export function syncRecordOf(record: object | null | undefined): SyncRecordView | null {
  if (record === null || record === undefined) return null;
  const r = record as { members?: unknown; k?: unknown; standby?: unknown; term?: unknown };
  const term = typeof r.term === 'number' ? r.term : 0;
  if (Array.isArray(r.members) && typeof r.k === 'number') {
    const members = r.members.filter((m): m is string => typeof m === 'string');
    return { members, k: r.k, term };
  }
  if (typeof r.standby === 'string') return { members: [r.standby], k: 1, term };
  return { members: [], k: 0, term };
}

/** `ANY k (a, b)`, as synchronous_standby_names says it; `none (async)` for no claim. */
export function describeClaim(c: Pick<SyncRecordView, 'members' | 'k'>): string {
  return c.k <= 0 || c.members.length === 0 ? 'none (async)' : `ANY ${c.k} (${c.members.join(', ')})`;
}

function syncEvents(prev: EtcdKeys, next: EtcdKeys): ObservedEvent[] {
  const a = syncRecordOf(prev.sync?.value);
  const b = syncRecordOf(next.sync?.value);
  if (b === null) return [];
  const before = a ?? { members: [], k: 0, term: 0 };
  const term = b.term;
  // Two nodes: one standby or none, in the words of the witness backend.
  if (before.members.length <= 1 && b.members.length <= 1 && before.k <= 1 && b.k <= 1) {
    const s0 = before.k === 1 ? (before.members[0] ?? null) : null;
    const s1 = b.k === 1 ? (b.members[0] ?? null) : null;
    if (s0 !== null && s1 === null) {
      return [{ type: 'sync-degraded', node: s0, detail: `the sync record of term ${term} names no standby: ${s0} may no longer hold every acknowledged write, and no automatic failover is possible` }];
    }
    if (s1 !== null && s1 !== s0) return [{ type: 'sync-restored', node: s1, detail: `the sync record of term ${term} names ${s1}: it holds every acknowledged write` }];
    return [];
  }
  const left = before.members.filter((m) => !b.members.includes(m));
  const joined = b.members.filter((m) => !before.members.includes(m));
  if (left.length === 0 && joined.length === 0 && before.k === b.k) return [];
  const was = describeClaim(before);
  const now = describeClaim(b);
  const only = (list: readonly string[]): string | null => (list.length === 1 ? list[0]! : null);
  if (left.length > 0 || b.k < before.k) {
    const why = b.k === 0 ? ': no standby is known to hold every acknowledged write, and no automatic failover is possible'
      : left.length > 0 ? `: ${left.join(', ')} may no longer hold every acknowledged write and cannot win a failover` : '';
    return [{ type: 'sync-degraded', node: only(left), detail: `the sync record of term ${term} is ${now}, was ${was}${why}` }];
  }
  const why = joined.length > 0 ? `: ${joined.join(', ')} may win a failover again` : '';
  return [{ type: 'sync-restored', node: only(joined), detail: `the sync record of term ${term} is ${now}, was ${was}${why}` }];
}

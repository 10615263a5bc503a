// The cluster's keys as one read saw them (ClusterView): built from raw key-values with every value
// size- and schema-checked, whether it shows a holder as the current leader, and why a campaign was
// refused. Shared by the etcd implementation and the fake, so both read and explain alike.
import type { ClusterKeys } from './keys.js';
import type { CampaignRequest, ClusterView, Holder, NodePosition } from './port.js';
import {
  decodeRecord, leaderRecordSchema, maintenanceRecordSchema, maxNodes, positionRecordSchema, switchoverRecordSchema,
  syncRecordReadSchema, termRecordSchema, type BadValue, type Versioned,
} from './records.js';
import { nodeIdSchema } from '@pgvip/shared';
import type { z } from 'zod';

/** A key as etcd holds it; the numbers are int64 as decimal text. */
export interface RawKv {
  readonly value: Buffer;
  readonly modRevision: string;
  readonly lease: string;
}

/** A key under a prefix (the positions), as a range read returns it. */
export interface KeyedRawKv extends RawKv {
  readonly key: string;
}

/** Position keys read at most: one per node; one more tells that there were more. */
export const maxPositions = maxNodes;

/** The keys a view reads, in the order viewOf takes their values (the positions are a range beside them). */
export function viewKeys(k: ClusterKeys): readonly string[] {
  return [k.leader, k.term, k.sync, k.maintenance, k.switchover];
}

/** A view from the values of viewKeys (undefined: key absent); a value that fails its checks is listed as bad. */
export function viewOf(
  k: ClusterKeys, raftTerm: string, revision: string, values: readonly (RawKv | undefined)[],
  positionKvs: readonly KeyedRawKv[] = [],
): ClusterView {
  const bad: BadValue[] = [];
  const keys = viewKeys(k);
  const pick = <T, I>(i: number, schema: z.ZodType<T, I>): Versioned<T> | null => {
    const kv = values[i];
    if (kv === undefined) return null;
    const decoded = decodeRecord(schema, kv.value);
    if (!decoded.ok) {
      bad.push({ key: keys[i] ?? '?', problem: decoded.problem });
      return null;
    }
    return { value: decoded.value, modRevision: kv.modRevision, lease: kv.lease };
  };
  return {
    raftTerm,
    revision,
    leader: pick(0, leaderRecordSchema),
    term: pick(1, termRecordSchema),
    sync: pick(2, syncRecordReadSchema),
    maintenance: pick(3, maintenanceRecordSchema),
    switchover: pick(4, switchoverRecordSchema),
    positions: positionsOf(k, positionKvs, bad),
    bad,
  };
}

/**
 * The final positions under position/, by node: a key whose name is not a node id, or whose value
 * fails its checks, is listed as bad; past maxPositions keys the rest are not read (and said so).
 */
function positionsOf(k: ClusterKeys, kvs: readonly KeyedRawKv[], bad: BadValue[]): NodePosition[] {
  const out: NodePosition[] = [];
  for (const kv of kvs.slice(0, maxPositions)) {
    const node = kv.key.startsWith(k.positionsPrefix) ? kv.key.slice(k.positionsPrefix.length) : '';
    if (!nodeIdSchema.safeParse(node).success) {
      bad.push({ key: kv.key.slice(0, 300), problem: 'is not position/<node>' });
      continue;
    }
    const decoded = decodeRecord(positionRecordSchema, kv.value);
    if (!decoded.ok) bad.push({ key: kv.key, problem: decoded.problem });
    else out.push({ node, value: decoded.value, modRevision: kv.modRevision, lease: kv.lease });
  }
  if (kvs.length > maxPositions) bad.push({ key: k.positionsPrefix, problem: `more than ${maxPositions} position keys: only the first were read` });
  return out;
}

/** Why `view` does not show `holder` as the current leader, or null when it does. */
export function holderProblem(view: ClusterView, holder: Holder): string | null {
  const l = view.leader;
  if (l === null) return 'the leader key is gone';
  if (l.value.node !== holder.node || l.value.term !== holder.term) return `the leader key names ${l.value.node} for term ${l.value.term}`;
  if (l.lease !== holder.lease) return `the leader key is on lease ${l.lease}, not ${holder.lease}`;
  const t = view.term;
  if (t === null || t.value.term !== holder.term || t.value.primary !== holder.node) {
    return `the term record is ${describeTerm(view)}, not term ${holder.term} for ${holder.node}`;
  }
  return null;
}

export function describeTerm(view: ClusterView): string {
  return view.term === null ? 'missing' : `term ${view.term.value.term} for ${view.term.value.primary}`;
}

export function campaignRefusal(view: ClusterView, req: CampaignRequest): string {
  const bad = view.bad[0];
  if (bad !== undefined) return `${bad.key} holds a value pgvip did not write (${bad.problem}): an operator must look`;
  if (view.leader !== null) return `the leader key is held by ${view.leader.value.node} for term ${view.leader.value.term}`;
  if (view.maintenance !== null) return 'the cluster is in maintenance';
  if ((view.term?.modRevision ?? null) !== (req.after?.modRevision ?? null)) return `the term record moved on: ${describeTerm(view)}`;
  if (req.sync !== 'async' && (view.sync?.modRevision ?? null) !== (req.sync?.modRevision ?? null)) {
    return `the sync record changed: it names ${describeMembers(view.sync?.value ?? null)}`;
  }
  const now = (node: string): string | null => view.positions.find((q) => q.node === node)?.modRevision ?? null;
  const moved = (req.positions ?? []).find((p) => now(p.node) !== p.modRevision);
  if (moved !== undefined) return `the final position of ${moved.node} changed since it was read`;
  return 'the keys changed meanwhile';
}

/** A sync record's members for a reason: "db-b", "db-b, db-c (ANY 1)", or "no standby". */
export function describeMembers(claim: { readonly members: readonly string[]; readonly k: number } | null): string {
  if (claim === null || claim.k === 0 || claim.members.length === 0) return 'no standby';
  if (claim.k === 1 && claim.members.length === 1) return claim.members[0] ?? 'no standby';
  return `${claim.members.join(', ')} (ANY ${claim.k})`;
}

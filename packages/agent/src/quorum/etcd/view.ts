// The cluster's keys as one read saw them (ClusterView): built from raw key-values with every value
// size- and schema-checked, whether it shows a holder as the current leader, and why a campaign was
// refused. Shared by the etcd implementation and the fake, so both read and explain alike.
import type { ClusterKeys } from './keys.js';
import type { CampaignRequest, ClusterView, Holder } from './port.js';
import {
  decodeRecord, leaderRecordSchema, maintenanceRecordSchema, switchoverRecordSchema, syncRecordSchema, termRecordSchema,
  type BadValue, type Versioned,
} from './records.js';
import type { z } from 'zod';

/** A key as etcd holds it; the numbers are int64 as decimal text. */
export interface RawKv {
  readonly value: Buffer;
  readonly modRevision: string;
  readonly lease: string;
}

/** The keys a view reads, in the order viewOf takes their values. */
export function viewKeys(k: ClusterKeys): readonly string[] {
  return [k.leader, k.term, k.sync, k.maintenance, k.switchover];
}

/** A view from the values of viewKeys (undefined: key absent); a value that fails its checks is listed as bad. */
export function viewOf(
  k: ClusterKeys, raftTerm: string, revision: string, values: readonly (RawKv | undefined)[],
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
    sync: pick(2, syncRecordSchema),
    maintenance: pick(3, maintenanceRecordSchema),
    switchover: pick(4, switchoverRecordSchema),
    bad,
  };
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
  if (req.sync !== 'async') return `the sync record changed: it names ${view.sync?.value.standby ?? 'no standby'}`;
  return 'the keys changed meanwhile';
}

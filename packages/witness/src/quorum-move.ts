// Moving a cluster's quorum between the witness and etcd without a failover (docs/etcd.md, "Moving a
// cluster between the witness and etcd"). Terms must never be reused or go back across the move, so
// each direction carries the current term over before any agent depends on the other quorum:
//
//   to etcd   `pgvip etcd seed`, on the witness while it still holds the quorum: etcd's term record
//             gets the witness's term T and its primary (operator.ts, seedTerm), with the maintenance
//             key and no sync standby. The primary's agent, restarted on etcd, takes the leader key in
//             T (the bridge's same-term take); no term is created.
//   to the    `pgvip etcd hand-back`, on the witness while it observes: its state file gets etcd's term
//   witness   T and primary, votedTerm T (it never votes in T or below) and maintenance on. Restarted
//             with backend witness, it grants the primary's leases in T from its first poll on.
//
// Both refuse when the cluster is not at rest: not in maintenance, a failover, switchover or restart
// under way, or the agents not both answering in T with the primary writable and the other a standby.
import type { AgentStatus, NodeId, WitnessDurable, WitnessState } from '@pgvip/shared';
import type { ClusterView as EtcdKeys, EtcdObserverPort } from '@pgvip/agent/quorum/etcd';

export interface MoveVerdict {
  readonly ok: boolean;
  readonly message: string;
}

/** One agent as the witness last heard it. */
export interface AgentSeen {
  readonly status: AgentStatus | null;
  /** How long ago the agent last answered (null: never). */
  readonly seenMsAgo: number | null;
}

/**
 * Why the two agents do not both stand in `term` with `primary` writable and the other streaming as
 * its standby, or null. Answers older than `maxAgeMs` count as none: the move needs what they say now.
 */
export function agentsProblem(
  nodes: readonly NodeId[], seen: (node: NodeId) => AgentSeen, term: number, primary: NodeId, maxAgeMs: number,
): string | null {
  for (const node of nodes) {
    const { status, seenMsAgo } = seen(node);
    if (status === null || seenMsAgo === null || seenMsAgo > maxAgeMs) {
      const when = seenMsAgo === null ? 'never answered' : `has not answered for ${Math.round(seenMsAgo)} ms`;
      return `the agent of ${node} ${when}: both agents must answer the witness, in the same term, before the quorum moves`;
    }
    if (status.term !== term || status.primaryOfTerm !== primary) {
      return `the agents disagree: ${node} is in term ${status.term} (primary ${status.primaryOfTerm ?? 'none'}), the cluster in term ${term} (primary ${primary}); wait until they agree`;
    }
    if (status.restarting === true) return `${node} is restarting its PostgreSQL; move the quorum once the restart is over`;
    const role = node === primary ? 'primary' : 'standby';
    if (status.role !== role) return `${node} is ${status.role}, not ${role}: a failover or rejoin may be under way; wait until the cluster settles`;
    if (node === primary && !status.pg.writable) return `${node}, the primary, is not writable now (fenced?); move the quorum only while it serves writes`;
  }
  return null;
}

/** How recent an agent's answer must be: a few of the witness's polls. */
export function freshMs(heartbeatMs: number, requestTimeoutMs: number): number {
  return 3 * heartbeatMs + requestTimeoutMs;
}

/**
 * `pgvip etcd seed`: writes the witness's current term into etcd. The witness keeps its quorum (and
 * maintenance on) until its agents move; the txn refuses a leader key, or a term record that would
 * move the term back or name another primary.
 */
export async function seedEtcd(
  state: WitnessState, seen: (node: NodeId) => AgentSeen, port: EtcdObserverPort, by: string, maxAgeMs: number,
): Promise<MoveVerdict> {
  const refuse = (why: string): MoveVerdict => ({ ok: false, message: `not seeded: ${why}` });
  const d = state.durable;
  if (!d.maintenance) return refuse('put the cluster in maintenance first (pgvip maintenance on), so nobody is voted in while the quorum moves');
  if (d.term === 0 || d.primaryOfTerm === null) return refuse('the witness knows no term yet; start the cluster on etcd directly');
  if (d.votedTerm > d.term) return refuse(`a failover is under way: the witness voted for ${d.votedFor ?? '?'} in term ${d.votedTerm}, the cluster is still in term ${d.term}`);
  if (state.switchover !== null) return refuse(`a switchover to ${state.switchover.to} is pending; let it finish or wait until it is dropped`);
  if (state.restart != null) return refuse(`a restart of ${state.restart.node} is under way`);
  const agents = agentsProblem(state.settings.nodes, seen, d.term, d.primaryOfTerm, maxAgeMs);
  if (agents !== null) return refuse(agents);
  const read = await port.read();
  if (!read.ok) return refuse(`etcd did not answer: ${read.why}`);
  const r = await port.seedTerm({
    term: d.term,
    primary: d.primaryOfTerm,
    replication: state.settings.replication,
    maintenance: { requestedBy: by.slice(0, 128), reason: `moving ${state.settings.cluster} from the witness to etcd (pgvip etcd seed by ${by})`.slice(0, 200) },
    after: read.view.term,
  });
  if (!r.ok) return refuse(r.why);
  return {
    ok: true,
    message: `etcd's term record names ${d.primaryOfTerm} for term ${d.term}, with the maintenance key set; restart the agents with quorum.backend: etcd, the standby first, then the primary (it takes the leader key in term ${d.term}), then the witness`,
  };
}

/**
 * `pgvip etcd hand-back`: what the witness's state file must hold for this cluster so that the witness,
 * restarted with backend witness, carries on in etcd's term; or why not now.
 */
export function handBackState(
  keys: EtcdKeys, stored: WitnessDurable, nodes: readonly NodeId[], seen: (node: NodeId) => AgentSeen, maxAgeMs: number,
): { readonly durable: WitnessDurable; readonly term: number; readonly primary: NodeId } | { readonly why: string } {
  if (keys.bad.length > 0) return { why: `${keys.bad[0]!.key} holds a value pgvip did not write: look at it first` };
  if (keys.maintenance === null) return { why: 'put the cluster in maintenance first (pgvip maintenance on), so no campaign wins while the quorum moves' };
  const record = keys.term?.value;
  if (record === undefined) return { why: 'etcd holds no term for this cluster: nothing to hand back' };
  const leader = keys.leader?.value;
  if (leader === undefined) return { why: `no leader key on etcd: ${record.primary} does not hold term ${record.term} now (a failover or a restart may be under way)` };
  if (leader.term !== record.term || leader.node !== record.primary) {
    return { why: `the leader key names ${leader.node} for term ${leader.term}, the term record ${record.primary} for term ${record.term}: a handover is under way` };
  }
  if (keys.switchover !== null) return { why: `a switchover to ${keys.switchover.value.to} is pending on etcd; let it finish first` };
  const agents = agentsProblem(nodes, seen, record.term, record.primary, maxAgeMs);
  if (agents !== null) return { why: agents };
  if (stored.term > record.term || stored.votedTerm > record.term) {
    return { why: `the witness's state file is at term ${Math.max(stored.term, stored.votedTerm)}, ahead of etcd's ${record.term}: the terms would go back; find out why before moving` };
  }
  return {
    term: record.term,
    primary: record.primary,
    durable: {
      ...stored,
      term: record.term,
      primaryOfTerm: record.primary,
      // Never a vote in etcd's term or below: those terms were etcd's to give.
      votedTerm: record.term,
      votedFor: record.primary,
      // The primary names its standby again once the witness sees it in sync (its restore request).
      syncEligible: null,
      maintenance: true,
    },
  };
}

/**
 * What the state file should hold for a cluster on etcd once etcd's term moved past it (kept by the
 * observer as it reads), so a witness moved back without `hand-back` still never votes in a term etcd
 * gave; null when the stored state is already at or past it.
 */
export function trackEtcdTerm(keys: EtcdKeys, stored: WitnessDurable): WitnessDurable | null {
  const record = keys.term?.value;
  if (record === undefined || (stored.term >= record.term && stored.votedTerm >= record.term)) return null;
  return {
    ...stored,
    term: Math.max(stored.term, record.term),
    primaryOfTerm: stored.term >= record.term ? stored.primaryOfTerm : record.primary,
    votedTerm: Math.max(stored.votedTerm, record.term),
    votedFor: stored.votedTerm >= record.term ? stored.votedFor : record.primary,
    syncEligible: null,
  };
}

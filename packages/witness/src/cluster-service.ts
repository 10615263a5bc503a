// What the witness's two servers need of one cluster, whoever keeps its quorum: the ClusterRunner
// (the witness votes: quorum.backend witness) or the EtcdClusterObserver (etcd holds the quorum and
// the witness only observes and writes the operators' keys: quorum.backend etcd). The operator API,
// the CLI, the dashboard and the metrics see the same ClusterView either way.
import type { ClusterConfig, NodeId, OperatorCommand, PeerReply, PeerRequest } from '@pgvip/shared';
import type { OperatorResult, Verdict } from './cluster-runner.js';
import type { Notifier, PgvipEvent } from './events.js';
import type { History } from './history.js';
import type { MoveVerdict } from './quorum-move.js';
import type { ClusterView } from './view.js';

export interface ClusterService {
  readonly name: string;
  /** The cluster's database nodes in config order: two on the witness backend, 2 to 9 on etcd. */
  readonly nodes: readonly NodeId[];
  /** The nodes with noFailover: true, which no switchover or failover may promote (none: absent). */
  readonly noFailover?: ReadonlySet<NodeId>;
  /** The cluster's current term as this witness knows it. */
  readonly term: number;
  /** The primary of the current term, if any. */
  readonly primaryOfTerm: NodeId | null;
  /** The target of a switchover requested and not yet taken, if any. */
  readonly pendingSwitchoverTo: NodeId | null;
  /** A verified peer request; the reply to send back (throws PgvipError when it cannot answer). */
  request(msg: PeerRequest, peerLeaseValidMs?: number): PeerReply;
  /** An operator command: the verdict, and the sends it caused once they are answered. */
  operator(command: OperatorCommand): OperatorResult | Promise<OperatorResult>;
  /**
   * Whether a forced failover would be accepted now, decided as operator() decides it but changing
   * nothing: `pgvip failover --stop-old-primary` asks before it stops the old primary's instance.
   */
  checkFailover(to: NodeId | null, by: string): Verdict | Promise<Verdict>;
  /** Records (and notifies) an event of the shell's own. */
  record(type: string, node: NodeId | null, detail: string, who?: Pick<PgvipEvent, 'operator' | 'operatorClaimed'>): PgvipEvent;
  view(eventCount?: number): ClusterView;
  /**
   * Carries the cluster's term over to the other quorum (quorum-move.ts): `etcd` from the witness
   * (pgvip etcd seed), `witness` from etcd (pgvip etcd hand-back). Refused with why when not at rest.
   */
  moveQuorum(to: 'etcd' | 'witness', by: string): Promise<MoveVerdict>;
}

/** The cluster's two node ids, in config order (the config's checks require exactly two). */
export function nodePair(c: ClusterConfig): readonly [NodeId, NodeId] {
  const [a, b] = c.nodes;
  if (a === undefined || b === undefined) throw new RangeError(`cluster ${c.name} needs exactly two nodes`);
  return [a.id, b.id];
}

/** Appends a shell's own event (start, operator command, failed notification) and notifies it. */
export function recordEvent(
  d: { readonly history: History; readonly notifier: Notifier },
  e: { cluster: string; type: string; node: NodeId | null; term: number; detail: string },
  who?: Pick<PgvipEvent, 'operator' | 'operatorClaimed'>,
): PgvipEvent {
  const event = d.history.append({ ...e, ...who });
  d.notifier.notify(event);
  return event;
}

/**
 * Why `pgvip etcd hand-back` cannot move this cluster, by its node count, or null: the witness backend
 * runs exactly two database nodes (docs/design.md, "More than one standby").
 */
export function handBackNodesProblem(cluster: string, nodes: number): string | null {
  if (nodes <= 2) return null;
  return `${cluster} has ${nodes} database nodes and the witness backend runs exactly two (it elects between a primary and one standby): the cluster stays on etcd; to hand it back, first remove nodes from cluster.nodes until two remain`;
}

/** A command that names a noFailover node: what to do instead. */
export function noFailoverRefusal(node: NodeId): string {
  return `${node} has noFailover: true in cluster.nodes and is never promoted, by a switchover or a failover; name another node with --to, or leave --to out for the best live standby (or set noFailover: false for ${node} in every daemon's config and restart them)`;
}

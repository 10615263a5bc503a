// What the operator API (and through it the CLI and the dashboard) shows of a cluster. Built from
// the core's state by a pure function, so a test can check it without a daemon.
import type { AgentRole, NodeId, WitnessState } from '@pgvip/shared';
import type { PgvipEvent } from './events.js';

export interface NodeView {
  readonly node: NodeId;
  /** The agent answered the witness's last status poll. */
  readonly reachable: boolean;
  /** The witness's last direct TCP check of the node's PostgreSQL port succeeded. */
  readonly pgReachable: boolean;
  /** The rest comes from the node's last status (possibly old when unreachable: see lastSeenMsAgo). */
  readonly role: AgentRole | null;
  readonly term: number | null;
  readonly leaseRemainingMs: number | null;
  /** Bytes of WAL the node is behind the primary (primary LSN − node LSN); null for the primary or when unknown. */
  readonly lagBytes: number | null;
  readonly timeline: number | null;
  readonly streaming: boolean | null;
  /** Why the node could not be promoted now (its own verdict, or unreachable); null when eligible. */
  readonly promotionBlocker: string | null;
  readonly lastSeenMsAgo: number | null;
  /**
   * Where the node is, from the cluster config: its agent.host and postgres.host (addresses or names),
   * and its EC2 instance id when configured (null: discovered through IMDS). `pgvip failover
   * --stop-old-primary` checks with them that the instance it is given is the old primary's.
   */
  readonly hosts: readonly string[];
  readonly instanceId: string | null;
  /** The node's agent says it runs a planned restart of its PostgreSQL (`pgvip restart`). */
  readonly restarting: boolean;
  /**
   * Its PostgreSQL has a setting changed in its files that waits for a restart
   * (pg_settings.pending_restart); null when unknown (an agent that predates protocol v2).
   */
  readonly pendingRestart: boolean | null;
  /**
   * Clusters on etcd only (absent in witness mode, which runs two nodes). From the cluster config:
   * the node's `priority` and `noFailover`. From its agent: its WAL position (received on a
   * standby, written on the primary) as PostgreSQL prints it; whether it is a member of the
   * primary's synchronous claim in force (AgentStatus.syncMember; null: not said); whether it
   * stopped its WAL receiver for an election (withdrawn).
   */
  readonly priority?: number;
  readonly noFailover?: boolean;
  readonly lsn?: string | null;
  readonly syncMember?: boolean | null;
  readonly withdrawn?: boolean;
}

/** A node's place in the cluster config (NodeView.hosts, NodeView.instanceId). */
export interface NodeIdentity {
  readonly hosts: readonly string[];
  readonly instanceId: string | null;
}

export interface ClusterView {
  readonly cluster: string;
  readonly term: number;
  readonly primary: NodeId | null;
  readonly syncEligible: NodeId | null;
  readonly maintenance: boolean;
  /** How long the witness keeps its lease promise (no vote for another node before then). */
  readonly promiseRemainingMs: number;
  readonly vip: { readonly address: string; readonly mode: string };
  /** A requested switchover not yet acknowledged by the primary, and when it is due. */
  readonly switchover: { readonly to: NodeId; readonly dueInMs: number } | null;
  /** A planned restart (`pgvip restart`) the witness holds failure checks for, and how long at most. */
  readonly restart: { readonly node: NodeId; readonly accepted: boolean; readonly leftMs: number } | null;
  readonly nodes: readonly NodeView[];
  /** The latest events, newest first. */
  readonly events: readonly PgvipEvent[];
  /** Present when etcd holds the cluster's quorum (quorum.backend: etcd): what the witness observes there. */
  readonly quorum?: EtcdQuorumView;
}

/**
 * The sync record on etcd read as a claim: every acknowledged commit is on at least `k` of `members`
 * (`ANY k (members)`; k = 0: no claim, async or degraded). `term`: the term it was written in.
 */
export interface SyncRecordView {
  readonly members: readonly NodeId[];
  readonly k: number;
  readonly term: number;
}

/** A standby's final position, published when it stopped its WAL receiver for an election. */
export interface PositionView {
  readonly node: NodeId;
  readonly term: number;
  readonly timeline: number;
  /** As PostgreSQL prints an LSN (0/3000060). */
  readonly flushLsn: string;
  /** Its own checks allowed its promotion (false: it publishes only so that its position counts). */
  readonly eligible: boolean;
}

/** A cluster on etcd as an observing witness sees it (etcd-observer.ts). */
export interface EtcdQuorumView {
  readonly backend: 'etcd';
  /** The latest linearizable read of the cluster's keys succeeded. */
  readonly reachable: boolean;
  /** Why etcd did not answer the latest read (null when it did). */
  readonly why: string | null;
  /** How long ago the last read etcd answered was made (null: never). */
  readonly lastReadMsAgo: number | null;
  /** The leader key: its holder, term, and its lease's TTL as etcd last told it (null: no key). */
  readonly leaderKey: { readonly node: NodeId; readonly term: number; readonly leaseTtlS: number | null } | null;
  /** Each endpoint's own answer, from the latest health check. */
  readonly members: readonly {
    readonly endpoint: string;
    readonly ok: boolean;
    readonly leader: boolean;
    readonly version: string | null;
    readonly rttMs: number | null;
    readonly why: string | null;
  }[];
  /** The sync record (null: none written in this cluster yet). */
  readonly sync?: SyncRecordView | null;
  /** The final positions published during an election, in node order (empty outside one). */
  readonly positions?: readonly PositionView[];
  /** Keys whose values are not pgvip's: never believed, shown so an operator looks. */
  readonly badKeys: readonly { readonly key: string; readonly problem: string }[];
}

export interface ViewExtras {
  readonly nowMs: number;
  readonly reachable: ReadonlyMap<NodeId, boolean>;
  readonly vip: { readonly address: string; readonly mode: string };
  readonly events: readonly PgvipEvent[];
  /** The nodes' identities from the config; a node without one shows no hosts. */
  readonly identities?: ReadonlyMap<NodeId, NodeIdentity>;
}

export function clusterView(s: WitnessState, x: ViewExtras): ClusterView {
  const primary = s.durable.primaryOfTerm;
  const primaryLsn = primary === null ? null : (s.views[primary]?.status?.pg.lsn ?? null);
  const promise = s.promise;
  return {
    cluster: s.settings.cluster,
    term: s.durable.term,
    primary,
    syncEligible: s.durable.syncEligible,
    maintenance: s.durable.maintenance,
    // Measured against the caller's clock, not the time of the last step: the view may be read
    // between polls.
    promiseRemainingMs:
      promise === null || s.releasedTerm === promise.term ? 0 : Math.max(0, Math.round(promise.untilMs - x.nowMs)),
    vip: x.vip,
    switchover:
      s.switchover === null
        ? null
        : { to: s.switchover.to, dueInMs: Math.max(0, Math.round(s.switchover.atMs - x.nowMs)) },
    restart:
      s.restart === undefined || s.restart === null
        ? null
        : {
          node: s.restart.node,
          accepted: s.restart.accepted,
          leftMs: Math.max(0, Math.round(s.restart.untilMs - x.nowMs)),
        },
    nodes: s.settings.nodes.map((node): NodeView => {
      const v = s.views[node];
      const st = v?.status ?? null;
      const reachable = x.reachable.get(node) ?? false;
      const lag =
        node === primary || st === null || primaryLsn === null ? null
        : primaryLsn > st.pg.lsn ? primaryLsn - st.pg.lsn
        : 0n;
      return {
        node,
        reachable,
        pgReachable: v?.pgReachable ?? false,
        role: st?.role ?? null,
        term: st?.term ?? null,
        leaseRemainingMs: st?.leaseRemainingMs ?? null,
        lagBytes: lag === null ? null : Number(lag),
        timeline: st?.pg.timeline ?? null,
        streaming: st?.pg.streaming ?? null,
        // A node the witness cannot reach is never shown as eligible on the strength of an old report.
        promotionBlocker: !reachable ? 'agent unreachable from the witness' : st === null ? 'no status received yet' : st.promotionBlocker,
        lastSeenMsAgo:
          v?.lastSeenAtMs === null || v?.lastSeenAtMs === undefined
            ? null
            : Math.max(0, Math.round(x.nowMs - v.lastSeenAtMs)),
        hosts: x.identities?.get(node)?.hosts ?? [],
        instanceId: x.identities?.get(node)?.instanceId ?? null,
        restarting: st?.restarting === true,
        pendingRestart: st?.pendingRestart ?? null,
      };
    }),
    events: x.events,
  };
}

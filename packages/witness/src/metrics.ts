// Prometheus metrics of the witness. Gauges that describe the current state of a cluster are read
// from the cluster runners at scrape time (so they can never disagree with the operator API);
// counters and the poll histogram are fed as things happen. One registry per daemon, so tests can
// run several witnesses in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What a cluster looks like right now, as the metrics need it. */
export interface ClusterMetricsSnapshot {
  readonly cluster: string;
  readonly term: number;
  readonly primary: string | null;
  readonly nodes: readonly NodeMetrics[];
  readonly promiseRemainingMs: number;
  readonly maintenance: boolean;
  /** Sync mode with a primary but no sync-eligible standby: no automatic failover is possible now. */
  readonly syncDegraded: boolean;
  /** Clusters on etcd (quorum.backend: etcd): etcd answered the latest read; a leader key exists. */
  readonly etcd?: { readonly reachable: boolean; readonly leaderKeyHeld: boolean };
  /** Clusters on etcd in sync mode: the k of the sync record's ANY k (0: degraded, or none yet). */
  readonly syncK?: number | null;
}

export interface NodeMetrics {
  readonly node: string;
  readonly reachable: boolean;
  readonly pgReachable: boolean;
  /** Clusters on etcd: bytes of WAL behind the primary (null: the primary, or unknown). */
  readonly lagBytes?: number | null;
  /** Clusters on etcd: a member of the sync record's claim (k ≥ 1). */
  readonly syncMember?: boolean;
  /** Clusters on etcd: stopped its WAL receiver for an election. */
  readonly withdrawn?: boolean;
}

export interface WitnessMetrics {
  readonly registry: Registry;
  /** Adds a cluster whose state gauges are read from `snapshot` at every scrape. */
  addCluster(cluster: string, nodes: readonly string[], snapshot: () => ClusterMetricsSnapshot): void;
  /** One poll of one node (status request, and the PostgreSQL probe when one was made) took this long. */
  pollObserved(seconds: number): void;
  /** A poll of a node started more than 1.5 heartbeats after the previous one. */
  missedHeartbeat(cluster: string, node: string): void;
  /** A poll counted as a failed check of the primary (the core's failure counter went up). */
  checkFailed(cluster: string, node: string): void;
  vote(cluster: string, granted: boolean): void;
  failover(cluster: string, kind: 'automatic' | 'manual'): void;
  /** An event the core notified (failover-blocked, sync-degraded, ...), as the operator's pager gets it. */
  event(cluster: string, event: string): void;
  /** A step of the cluster was discarded because its durable state could not be written. */
  stateWriteFailed(cluster: string): void;
}

/** Events deploy/prometheus alerts on: exported as zeros from the start, so increase() sees them rise. */
const alertedEvents = ['failover-blocked', 'sync-degraded', 'failure-detected', 'node-unreachable', 'agent-unreachable', 'rejoin-failed'];

// Polls on loopback take well under a millisecond; over a VPC a few; a poll near requestTimeoutMs
// (400 ms by default) is a problem. Fine buckets at the low end make the p99 meaningful.
const pollBuckets = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 1];

export function createWitnessMetrics(options: { readonly defaultMetrics?: boolean } = {}): WitnessMetrics {
  const registry = new Registry();
  // Process CPU, memory, event-loop lag: what tells an operator the witness itself is healthy.
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const sources = new Map<string, () => ClusterMetricsSnapshot>();
  const snapshots = (): ClusterMetricsSnapshot[] => [...sources.values()].map((f) => f());

  new Gauge({
    name: 'pgvip_witness_term',
    help: 'Current term of each cluster, as the witness knows it.',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) this.set({ cluster: s.cluster }, s.term);
    },
  });
  new Gauge({
    name: 'pgvip_witness_primary',
    help: '1 for the node the witness counts as primary of the current term, 0 for every other node.',
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        for (const n of s.nodes) this.set({ cluster: s.cluster, node: n.node }, n.node === s.primary ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_promise_remaining_seconds',
    help: 'How long the witness still keeps its lease promise (it votes for no other node before then).',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) this.set({ cluster: s.cluster }, s.promiseRemainingMs / 1000);
    },
  });
  new Gauge({
    name: 'pgvip_witness_maintenance',
    help: '1 while automatic failover of the cluster is paused for maintenance.',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) this.set({ cluster: s.cluster }, s.maintenance ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgvip_witness_node_reachable',
    help: "1 when the node's agent answered the witness's last status poll.",
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        for (const n of s.nodes) this.set({ cluster: s.cluster, node: n.node }, n.reachable ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_postgres_reachable',
    help: "1 when the witness's latest direct probe of the node's PostgreSQL port succeeded (made on every poll the agent does not answer, else every 10 s).",
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        for (const n of s.nodes) this.set({ cluster: s.cluster, node: n.node }, n.pgReachable ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_sync_degraded',
    help: '1 while a sync-mode cluster has a primary but no sync-eligible standby (a failover now would be refused).',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) this.set({ cluster: s.cluster }, s.syncDegraded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgvip_witness_node_lag_bytes',
    help: 'Clusters on etcd only: bytes of WAL each standby is behind the primary, as of the latest status (no series while unknown).',
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        for (const n of s.nodes) {
          if (typeof n.lagBytes === 'number') this.set({ cluster: s.cluster, node: n.node }, n.lagBytes);
        }
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_node_sync_member',
    help: 'Clusters on etcd in sync mode only: 1 when the node is a member of the sync record (ANY k of its members hold every acknowledged write), else 0.',
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        if (s.syncK === undefined || s.syncK === null) continue;
        for (const n of s.nodes) {
          if (n.syncMember !== undefined) this.set({ cluster: s.cluster, node: n.node }, n.syncMember ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_sync_quorum',
    help: 'Clusters on etcd in sync mode only: the k of the sync record\'s ANY k (0: degraded to async, no automatic failover).',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        if (s.syncK !== undefined && s.syncK !== null) this.set({ cluster: s.cluster }, s.syncK);
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_node_withdrawn',
    help: 'Clusters on etcd only: 1 while the node has stopped its WAL receiver for an election (its final position is published), else 0.',
    labelNames: ['cluster', 'node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        if (s.etcd === undefined) continue;
        for (const n of s.nodes) {
          if (n.withdrawn !== undefined) this.set({ cluster: s.cluster, node: n.node }, n.withdrawn ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'pgvip_witness_etcd_reachable',
    help: "Clusters on etcd only: 1 when etcd answered the witness's latest linearizable read of the cluster's keys.",
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) if (s.etcd !== undefined) this.set({ cluster: s.cluster }, s.etcd.reachable ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgvip_witness_etcd_leader_key',
    help: 'Clusters on etcd only: 1 while the leader key exists (a primary holds its etcd lease), as of the latest read.',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshots()) {
        if (s.etcd !== undefined) this.set({ cluster: s.cluster }, s.etcd.leaderKeyHeld ? 1 : 0);
      }
    },
  });
  const events = new Counter({
    name: 'pgvip_witness_events_total',
    help: 'Events the witness notified (as sent to the notification command and webhook), by type.',
    labelNames: ['cluster', 'event'],
    registers: [registry],
  });
  const stateWriteErrors = new Counter({
    name: 'pgvip_witness_state_write_errors_total',
    help: "Steps discarded because the cluster's durable state could not be written (the witness cannot vote or grant meanwhile).",
    labelNames: ['cluster'],
    registers: [registry],
  });
  const checksFailed = new Counter({
    name: 'pgvip_witness_checks_failed_total',
    help: 'Polls that counted as a failed check of the primary (agent and PostgreSQL judged together).',
    labelNames: ['cluster', 'node'],
    registers: [registry],
  });
  const missed = new Counter({
    name: 'pgvip_witness_missed_heartbeats_total',
    help: 'Polls that started more than 1.5 heartbeats after the previous poll of the same node (the witness fell behind).',
    labelNames: ['cluster', 'node'],
    registers: [registry],
  });
  const votes = new Counter({
    name: 'pgvip_witness_votes_total',
    help: 'Vote requests answered, by result.',
    labelNames: ['cluster', 'result'],
    registers: [registry],
  });
  const failovers = new Counter({
    name: 'pgvip_witness_failovers_total',
    help: 'New primaries made through this witness: automatic (a vote after the primary failed) or manual (operator, data loss accepted).',
    labelNames: ['cluster', 'kind'],
    registers: [registry],
  });
  const pollDuration = new Histogram({
    name: 'pgvip_witness_poll_duration_seconds',
    help: "Duration of one poll of one node: the agent's status, and the PostgreSQL probe when one was made.",
    buckets: pollBuckets,
    registers: [registry],
  });

  return {
    registry,
    addCluster(cluster, nodes, snapshot) {
      sources.set(cluster, snapshot);
      // Export zeros from the start, so rate() and alerts see a series before the first event.
      for (const node of nodes) {
        checksFailed.inc({ cluster, node }, 0);
        missed.inc({ cluster, node }, 0);
      }
      for (const result of ['granted', 'refused']) votes.inc({ cluster, result }, 0);
      for (const kind of ['automatic', 'manual']) failovers.inc({ cluster, kind }, 0);
      for (const event of alertedEvents) events.inc({ cluster, event }, 0);
      stateWriteErrors.inc({ cluster }, 0);
    },
    pollObserved: (seconds) => pollDuration.observe(seconds),
    missedHeartbeat: (cluster, node) => missed.inc({ cluster, node }),
    checkFailed: (cluster, node) => checksFailed.inc({ cluster, node }),
    vote: (cluster, granted) => votes.inc({ cluster, result: granted ? 'granted' : 'refused' }),
    failover: (cluster, kind) => failovers.inc({ cluster, kind }),
    event: (cluster, event) => events.inc({ cluster, event }),
    stateWriteFailed: (cluster) => stateWriteErrors.inc({ cluster }),
  };
}

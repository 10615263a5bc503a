// Translates the PostgreSQL port's observations into the core's PgSnapshot and WriteProbe values.
import type { NodeId, PgSnapshot, ReplicaState, WriteProbe } from '@pgvip/shared/core';
import type { Lsn } from './postgres/lsn.js';
import type { PgObservation, PgReachableObservation, ReplicaView, WriteProbeResult } from './postgres/port.js';
import { synchronousStandbyNamesFor } from './postgres/port.js';
import { claimOfSetting, parseSynchronousStandbyNames } from './postgres/sync-names.js';

type SyncClaim = NonNullable<PgSnapshot['syncClaim']>;
/** The claim of '' (core/nodes' NO_CLAIM). */
const NO_CLAIM: SyncClaim = { members: [], k: 0 };

export const downSnapshot: PgSnapshot = {
  running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n,
  streaming: false, syncStandby: null, standbyInSync: false,
};

export interface SnapshotContext {
  /** The peer's application_name: the only standby pgvip manages. */
  readonly peerName: string;
  readonly peerNode: string;
  /** WAL older than this on the receiver means streaming has stopped, whatever its status says. */
  readonly streamFreshMs: number;
  /** The last good snapshot, kept while the server is merely slow (a stall is not a crash). */
  readonly previous: PgSnapshot | null;
  /** Tracks the peer's replies to this primary (pg_stat_replication.reply_time). */
  readonly replies: ReplyWatch;
  /** Tracks whether the peer has flushed what was committed before it became synchronous. */
  readonly catchUp: SyncCatchUp;
  /** This agent's monotonic clock, ms. */
  readonly nowMs: number;
  /**
   * Every database node, for the N-node fields (syncClaim, replicas, upstream); absent: they are left
   * out (the two-node core reads syncStandby and standbyInSync).
   */
  readonly nodes?: SnapshotNodes;
}

export interface SnapshotNodes {
  /** Node id → application_name (what pg_stat_replication and synchronous_standby_names carry). */
  readonly names: Readonly<Record<NodeId, string>>;
  /** Node id → where its PostgreSQL listens (what a standby's primary_conninfo names). */
  readonly endpoints: Readonly<Record<NodeId, { readonly host: string; readonly port: number }>>;
  /** Each standby's replies, for the silence rule; absent: state 'streaming' alone counts. */
  readonly replies?: ReplicaReplies;
}

/**
 * A standby silent for longer than this is not in sync, whatever pg_stat_replication's state says.
 * The standby replies at least every wal_receiver_status_interval (1 s, a managed setting), so three
 * missed replies are a lost standby, not a slow one. Without this a silently cut standby would show
 * as "streaming, sync" until wal_sender_timeout (60 s) and commits would hang that long before the
 * sync degrade could even start.
 */
export const standbyReplySilenceMs = 3_000;

/**
 * Notices a standby that stopped replying. reply_time is the standby's own wall clock, so its age
 * cannot be computed against ours (clocks differ, and jump); instead this remembers, on the agent's
 * monotonic clock, when the value last changed.
 */
export class ReplyWatch {
  #value: string | null = null;
  #changedAtMs = 0;
  /** The last sign of life: a new reply_time, or a walsender that has not replied yet (a new connection). */
  #lastSignAtMs: number | null = null;

  /**
   * ms since the standby's reply_time last changed; null when there is no reply to watch. `row`: a
   * walsender row is there (its reply_time may still be null); by default, when reply_time is not null.
   */
  silentMs(replyTime: string | null, nowMs: number, row = replyTime !== null): number | null {
    if (replyTime === null) {
      this.#value = null;
      if (row) this.#lastSignAtMs = nowMs;
      return null;
    }
    if (replyTime !== this.#value) {
      this.#value = replyTime;
      this.#changedAtMs = nowMs;
      this.#lastSignAtMs = nowMs;
    }
    return nowMs - this.#changedAtMs;
  }

  /**
   * ms since the standby's last sign of life as the looks so far saw it, null before any. Unlike
   * silentMs it keeps counting once the walsender is gone: a lost standby's walsender ends (the link's
   * tcp_user_timeout, wal_sender_timeout) about when the silence rule counts it lost, and the loss
   * still began at its last reply.
   */
  lastSilentMs(nowMs: number): number | null {
    return this.#lastSignAtMs === null ? null : nowMs - this.#lastSignAtMs;
  }
}

/** A ReplyWatch per standby node (the primary's view of each), for ReplicaState.streaming. */
export class ReplicaReplies {
  readonly #watches = new Map<NodeId, ReplyWatch>();

  /** Whether `node` replied within standbyReplySilenceMs; false when it never replied. */
  replying(node: NodeId, replyTime: string | null, nowMs: number): boolean {
    let watch = this.#watches.get(node);
    if (watch === undefined) {
      watch = new ReplyWatch();
      this.#watches.set(node, watch);
    }
    const silentMs = watch.silentMs(replyTime, nowMs, true);
    return silentMs !== null && silentMs <= standbyReplySilenceMs;
  }

  /** ms since `node`'s last sign of life as `replying` saw it (ReplyWatch.lastSilentMs); null: none seen. */
  silentMs(node: NodeId, nowMs: number): number | null {
    return this.#watches.get(node)?.lastSilentMs(nowMs) ?? null;
  }
}

/**
 * Whether a synchronous standby holds every commit acknowledged before it became synchronous.
 *
 * PostgreSQL reports a standby as streaming and `sync` as soon as its walsender has SENT everything
 * and the standby is named in synchronous_standby_names, not once the standby has FLUSHED it. Commits
 * acknowledged before that (while replication was degraded to async, or before the standby was named)
 * never waited for it, so for a moment the standby can show "in sync" while it lacks some of them. If
 * it were reported in sync then, the witness would mark it eligible, and a failover in that moment
 * would lose those commits (I3). So the first time the standby shows as synchronous, the primary's WAL
 * position (pg_current_wal_lsn, at or past every acknowledged commit, since a commit is flushed before
 * it is acknowledged) becomes its target; it counts as in sync only once its flush_lsn reached that
 * target. From then on PostgreSQL makes every commit wait for it, until it stops looking synchronous,
 * which starts the wait over.
 */
export class SyncCatchUp {
  #target: Lsn | null = null;
  #caughtUp = false;

  holdsAcknowledged(looksSynchronous: boolean, standbyFlushLsn: Lsn | null, primaryLsn: Lsn): boolean {
    if (!looksSynchronous) {
      this.#target = null;
      this.#caughtUp = false;
      return false;
    }
    if (this.#caughtUp) return true;
    this.#target ??= primaryLsn;
    this.#caughtUp = standbyFlushLsn !== null && standbyFlushLsn >= this.#target;
    return this.#caughtUp;
  }
}

export function toSnapshot(obs: PgObservation, ctx: SnapshotContext): PgSnapshot {
  if (!obs.reachable) {
    // A timeout means a stalled server, not a dead one: keep the last view and let the write probe
    // decide (a refused connection, by contrast, is definitive).
    if (obs.errorCode === 'PGVIP_PG_TIMEOUT' && ctx.previous !== null && ctx.previous.running) return ctx.previous;
    return downSnapshot;
  }
  const lsn = obs.currentLsn ?? obs.receiveLsn ?? obs.replayLsn ?? 0n;
  const receiver = obs.walReceiver;
  const streaming = obs.inRecovery && receiver !== null && receiver.status === 'streaming' && (receiver.lastMessageAgeMs ?? Infinity) <= ctx.streamFreshMs;
  const namesPeer = !obs.inRecovery && namesPeerAlone(obs.synchronousStandbyNames, ctx.peerName);
  const syncStandby = namesPeer ? ctx.peerNode : null;
  const replica = bestReplica(obs.replicas.filter((r) => r.applicationName === ctx.peerName));
  const silentMs = ctx.replies.silentMs(replica?.replyTime ?? null, ctx.nowMs, replica !== undefined);
  const replying = silentMs !== null && silentMs <= standbyReplySilenceMs;
  // 'quorum' is what PostgreSQL shows under ANY 1 ("db-b") (etcd's claim path), 'sync' under "db-b".
  const looksSynchronous = syncStandby !== null && replica !== undefined && replica.state === 'streaming' &&
    (replica.syncState === 'sync' || replica.syncState === 'quorum') && replying;
  return {
    running: true,
    inRecovery: obs.inRecovery,
    writable: !obs.inRecovery && !obs.defaultTransactionReadOnly,
    timeline: obs.timelineId,
    lsn,
    replayLsn: obs.replayLsn ?? lsn,
    streaming,
    syncStandby,
    standbyInSync: ctx.catchUp.holdsAcknowledged(looksSynchronous, replica?.flushLsn ?? null, lsn),
    ...(ctx.nodes === undefined ? {} : nodeFields(obs, ctx.nodes, ctx.nowMs)),
  };
}

/**
 * The primary's view of each standby's silence, for the tick (AgentInput's `replyAgeMs`): ms since
 * its last sign of life (ReplyWatch.lastSilentMs), by the watches `toSnapshot` just updated with
 * `obs` (the peer's, and with `nodes` every other node's); a standby never seen replying has none.
 * Undefined on a standby or an unreachable server. The core starts a lost standby's degrade clock at
 * its last reply, since the silence rule above counts it lost only standbyReplySilenceMs later.
 */
export function replyAges(obs: PgObservation, ctx: SnapshotContext): Record<NodeId, number> | undefined {
  if (!obs.reachable || obs.inRecovery) return undefined;
  const ages: Record<NodeId, number> = {};
  const nodes = ctx.nodes;
  if (nodes?.replies !== undefined) {
    for (const node of Object.keys(nodes.names)) {
      const age = nodes.replies.silentMs(node, ctx.nowMs);
      if (age !== null) ages[node] = age;
    }
  }
  const peerAge = ctx.replies.lastSilentMs(ctx.nowMs);
  if (peerAge !== null) ages[ctx.peerNode] = peerAge;
  return ages;
}

/**
 * Whether the setting makes the peer the one synchronous standby: "db-b" (set-sync-standby) or the
 * same claim written another way, ANY 1 ("db-b") (set-sync) or FIRST 1 (…).
 */
function namesPeerAlone(value: string, peerName: string): boolean {
  if (value.trim() === synchronousStandbyNamesFor(peerName)) return true;
  const claim = syncClaimOf(value, (name) => (name.toLowerCase() === peerName.toLowerCase() ? peerName : undefined));
  return claim.k === 1 && claim.members.length === 1 && claim.members[0] === peerName;
}

/** The N-node fields of a snapshot (docs/design.md, "More than one standby"). */
export function nodeFields(
  obs: PgReachableObservation,
  nodes: SnapshotNodes,
  nowMs: number,
): { syncClaim: SyncClaim; replicas: ReplicaState[]; upstream: NodeId | null } {
  const byName = new Map(Object.entries(nodes.names).map(([node, name]) => [name.toLowerCase(), node]));
  const nodeOf = (name: string): NodeId | undefined => byName.get(name.toLowerCase());
  return {
    syncClaim: obs.inRecovery ? NO_CLAIM : syncClaimOf(obs.synchronousStandbyNames, nodeOf),
    replicas: obs.inRecovery ? [] : replicaStates(obs.replicas, nodeOf, nodes.replies, nowMs),
    upstream: obs.inRecovery ? upstreamOf(obs.upstream ?? null, nodes.endpoints) : null,
  };
}

/** The claim synchronous_standby_names makes; NO_CLAIM for '' and for a value that cannot be read. */
export function syncClaimOf(value: string, nodeOf: (name: string) => NodeId | undefined): SyncClaim {
  try {
    return claimOfSetting(parseSynchronousStandbyNames(value), nodeOf);
  } catch {
    return NO_CLAIM; // PostgreSQL refuses such a value: it cannot be the one in force
  }
}

const syncStates = new Set(['sync', 'quorum', 'potential', 'async']);

/**
 * Of one standby's walsenders, the one that says most about it: streaming first, then the most flushed.
 * A standby that reconnected can leave others behind: the lab's flap-loss run left three of db-b in
 * `startup` (no reply, no position; their standby ends gone, their TCP still open) beside the streaming
 * one, in any order; reading the first made the primary see db-b out of sync for ever.
 */
export function bestReplica(rows: readonly ReplicaView[]): ReplicaView | undefined {
  const rank = (r: ReplicaView): [number, bigint] => [r.state === 'streaming' ? 1 : 0, r.flushLsn ?? -1n];
  let best: ReplicaView | undefined;
  for (const r of rows) {
    const [a, b] = [rank(r), best === undefined ? null : rank(best)];
    if (b === null || a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])) best = r;
  }
  return best;
}

/**
 * pg_stat_replication by node: walsenders of names no node uses (a base backup, a tool) are left out;
 * when a node has several (a reconnect), the streaming one that flushed most. streaming: state
 * 'streaming' and, with `replies`, a reply within standbyReplySilenceMs.
 */
function replicaStates(
  rows: readonly ReplicaView[],
  nodeOf: (name: string) => NodeId | undefined,
  replies: ReplicaReplies | undefined,
  nowMs: number,
): ReplicaState[] {
  const byNode = new Map<NodeId, ReplicaView[]>();
  for (const r of rows) {
    const node = nodeOf(r.applicationName);
    if (node !== undefined) byNode.set(node, [...(byNode.get(node) ?? []), r]);
  }
  const best = new Map([...byNode].map(([node, of]) => [node, bestReplica(of)!] as const));
  return [...best.entries()]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([node, r]) => ({
      node,
      flushLsn: r.flushLsn ?? 0n,
      streaming: r.state === 'streaming' && (replies === undefined || replies.replying(node, r.replyTime, nowMs)),
      syncState: (syncStates.has(r.syncState) ? r.syncState : 'async') as ReplicaState['syncState'],
    }));
}

/** The node whose PostgreSQL listens where primary_conninfo points; null for none. */
function upstreamOf(
  target: { readonly host: string; readonly port: number } | null,
  endpoints: SnapshotNodes['endpoints'],
): NodeId | null {
  if (target === null) return null;
  const host = target.host.toLowerCase();
  const hit = Object.entries(endpoints).find(([, e]) => e.host.toLowerCase() === host && e.port === target.port);
  return hit === undefined ? null : hit[0];
}

export function toWriteProbe(r: WriteProbeResult | null): WriteProbe {
  if (r === null) return 'not-run';
  switch (r.outcome) {
    case 'ok':
      return 'ok';
    case 'timeout':
      return 'stalled';
    case 'read-only':
      return 'read-only';
    case 'error':
      return 'failed';
  }
}

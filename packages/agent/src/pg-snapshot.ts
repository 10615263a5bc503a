// Translates the PostgreSQL port's observations into the core's PgSnapshot and WriteProbe values.
import type { PgSnapshot, WriteProbe } from '@pgvip/shared/core';
import type { Lsn } from './postgres/lsn.js';
import type { PgObservation, WriteProbeResult } from './postgres/port.js';
import { synchronousStandbyNamesFor } from './postgres/port.js';

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

  /** ms since the standby's reply_time last changed; null when there is no reply to watch. */
  silentMs(replyTime: string | null, nowMs: number): number | null {
    if (replyTime === null) {
      this.#value = null;
      return null;
    }
    if (replyTime !== this.#value) {
      this.#value = replyTime;
      this.#changedAtMs = nowMs;
    }
    return nowMs - this.#changedAtMs;
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
  const syncStandby = !obs.inRecovery && obs.synchronousStandbyNames.trim() === synchronousStandbyNamesFor(ctx.peerName)
    ? ctx.peerNode
    : null;
  const replica = obs.replicas.find((r) => r.applicationName === ctx.peerName);
  const silentMs = ctx.replies.silentMs(replica?.replyTime ?? null, ctx.nowMs);
  const replying = silentMs !== null && silentMs <= standbyReplySilenceMs;
  const looksSynchronous = syncStandby !== null && replica !== undefined && replica.state === 'streaming' &&
    replica.syncState === 'sync' && replying;
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
  };
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

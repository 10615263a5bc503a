// The one query behind observe(): everything the decision loop needs about this server, in one
// round trip, so the snapshot is consistent and cheap.
import { conninfoTarget } from './conninfo-target.js';
import { parseLsnOrNull } from './lsn.js';
import type { PgReachableObservation, ReplicaView, WalReceiverView } from './port.js';

// Notes on the less obvious columns:
// - pg_current_wal_lsn() errors during recovery, so it sits behind CASE (volatile calls there are not
//   evaluated early).
// - The primary's timeline comes from the current WAL file name (its first 8 hex digits):
//   pg_control_checkpoint() only shows a promotion's new timeline after the next checkpoint, which
//   PostgreSQL spreads out over minutes.
// - A standby has no exact "current timeline" function in PostgreSQL 15. Its WAL reached the highest
//   of: the last restartpoint's and the min-recovery-point's timelines (both lag a timeline switch by
//   up to a checkpoint_timeout), and the WAL receiver's received_tli, or, with no receiver (stopped
//   for an election, or its primary lost), the highest timeline of a WAL segment in pg_wal: a segment
//   is named by the timeline it was received or replayed on, so none is newer than the WAL this
//   standby has (history files, fetched before a timeline is streamed, are not counted). Without that
//   fallback a standby that followed a promotion and then lost its receiver reported the timeline
//   before the promotion, and an election waited on it (docs/design.md, "More than one standby").
// - Ages are computed on the server (clock_timestamp() minus the server's own timestamps), so the
//   agent's clock plays no part.
export const standbyTimelineSql = `greatest(
    (SELECT timeline_id FROM pg_control_checkpoint()),
    (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
    coalesce(
      (SELECT received_tli FROM pg_stat_wal_receiver),
      (SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$')))`;

export const observeSql = `
SELECT
  pg_is_in_recovery() AS in_recovery,
  current_setting('synchronous_standby_names') AS synchronous_standby_names,
  current_setting('default_transaction_read_only') AS default_transaction_read_only,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS primary_timeline,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  ${standbyTimelineSql} AS standby_timeline,
  (SELECT json_build_object(
      'status', status,
      'sender_host', sender_host,
      'sender_port', sender_port,
      'received_tli', received_tli,
      'last_message_age_ms', (extract(epoch FROM clock_timestamp() - last_msg_receipt_time) * 1000)::bigint)
     FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS wal_receiver,
  (SELECT coalesce(json_agg(json_build_object(
      'application_name', application_name,
      'client_addr', client_addr::text,
      'state', state,
      'sync_state', sync_state,
      'flush_lsn', flush_lsn::text,
      'replay_lsn', replay_lsn::text,
      'reply_time', reply_time::text)
      ORDER BY application_name), '[]'::json)
     FROM pg_stat_replication) AS replicas,
  (SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings) AS pending_restart,
  CASE WHEN pg_is_in_recovery() THEN current_setting('primary_conninfo') END AS primary_conninfo
`;

export interface ObserveRow {
  in_recovery: boolean;
  synchronous_standby_names: string;
  default_transaction_read_only: string;
  current_lsn: string | null;
  primary_timeline: number | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  standby_timeline: number | null;
  wal_receiver: {
    status: string;
    sender_host: string | null;
    sender_port: number | null;
    received_tli: number | null;
    last_message_age_ms: number | string | null;
  } | null;
  replicas: Array<{
    application_name: string;
    client_addr: string | null;
    state: string;
    sync_state: string;
    flush_lsn: string | null;
    replay_lsn: string | null;
    reply_time: string | null;
  }>;
  pending_restart: boolean;
  /** Read only for its host and port (conninfoTarget): it may carry a password. */
  primary_conninfo: string | null;
}

function numberOrNull(value: number | string | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function observationFromRow(row: ObserveRow): PgReachableObservation {
  const inRecovery = row.in_recovery;
  const walReceiver: WalReceiverView | null = row.wal_receiver && {
    status: row.wal_receiver.status,
    senderHost: row.wal_receiver.sender_host,
    senderPort: row.wal_receiver.sender_port,
    receivedTimelineId: row.wal_receiver.received_tli,
    lastMessageAgeMs: numberOrNull(row.wal_receiver.last_message_age_ms),
  };
  const replicas: ReplicaView[] = row.replicas.map((r) => ({
    applicationName: r.application_name,
    clientAddress: r.client_addr,
    state: r.state,
    syncState: r.sync_state,
    flushLsn: parseLsnOrNull(r.flush_lsn),
    replayLsn: parseLsnOrNull(r.replay_lsn),
    replyTime: r.reply_time,
  }));
  return {
    reachable: true,
    role: inRecovery ? 'standby' : 'primary',
    inRecovery,
    timelineId: Number(inRecovery ? row.standby_timeline : row.primary_timeline),
    currentLsn: inRecovery ? null : parseLsnOrNull(row.current_lsn),
    receiveLsn: inRecovery ? parseLsnOrNull(row.receive_lsn) : null,
    replayLsn: inRecovery ? parseLsnOrNull(row.replay_lsn) : null,
    walReceiver,
    replicas,
    upstream: inRecovery ? conninfoTarget(row.primary_conninfo ?? '') : null,
    synchronousStandbyNames: row.synchronous_standby_names,
    defaultTransactionReadOnly: row.default_transaction_read_only === 'on',
    pendingRestart: row.pending_restart,
  };
}

// The agent's view of its local PostgreSQL: everything the decision loop may observe or do to it.
// Two implementations: LocalPostgres (SQL over short-lived connections, pg_ctl, pg_rewind) and
// FakePostgres (in memory, for unit tests of the agent). Both follow the contract below, which
// test/fixtures/postgres-port-contract.ts checks against each.
//
// Rules every method follows:
// - Bounded: every call finishes within its configured timeout, even against a stalled server.
// - Probes return values, commands throw: observe() and writeProbe() never reject for a PostgreSQL
//   fault (an unknown state is an observation); every other method rejects with a PgvipError
//   (PGVIP_PG_*), most often PGVIP_PG_UNREACHABLE (nothing to talk to) or PGVIP_PG_TIMEOUT (stalled).
// - Idempotent: calling a command again after it succeeded (or after a crash half-way) is safe and
//   ends in the same state, so a restarted agent can replay its last action.
import type { ErrorCode } from '@pgvip/shared';
import type { Lsn } from './lsn.js';

/** How to reach a PostgreSQL server. The user must be a superuser with the REPLICATION attribute. */
export interface PgEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly password?: string;
}

export type PgRole = 'primary' | 'standby';

/** A standby as the primary sees it (one row of pg_stat_replication). */
export interface ReplicaView {
  readonly applicationName: string;
  readonly clientAddress: string | null;
  /** 'startup' | 'catchup' | 'streaming' | 'backup' | 'stopping' */
  readonly state: string;
  /** 'async' | 'potential' | 'sync' | 'quorum' */
  readonly syncState: string;
  readonly flushLsn: Lsn | null;
  readonly replayLsn: Lsn | null;
  /**
   * reply_time as text: when the standby sent its last reply, by the STANDBY's wall clock. Only ever
   * compared with its own earlier values (has a new reply come?), never with a local clock: the two
   * hosts' wall clocks may differ by any amount. Null before the first reply.
   */
  readonly replyTime: string | null;
}

/** This standby's WAL receiver (pg_stat_wal_receiver); absent when no receiver runs. */
export interface WalReceiverView {
  /** 'starting' | 'streaming' | 'waiting' | 'restarting' | 'stopping' */
  readonly status: string;
  readonly senderHost: string | null;
  readonly senderPort: number | null;
  readonly receivedTimelineId: number | null;
  /** How long ago the last message from the primary arrived, by this server's clock. */
  readonly lastMessageAgeMs: number | null;
}

export interface PgReachableObservation {
  readonly reachable: true;
  readonly role: PgRole;
  /** pg_is_in_recovery(); role is derived from it and kept for readability. */
  readonly inRecovery: boolean;
  /**
   * The timeline this server writes (primary: from the current WAL file name, exact right after a
   * promotion) or its WAL reached (standby: the highest of the restartpoint and min-recovery timelines and
   * the receiver's received_tli, or with no receiver the newest timeline of a WAL segment in pg_wal).
   */
  readonly timelineId: number;
  /** Primary: pg_current_wal_lsn(); null on a standby. */
  readonly currentLsn: Lsn | null;
  /** Standby: last WAL flushed by the receiver; null on a primary or a standby that never streamed since start. */
  readonly receiveLsn: Lsn | null;
  /** Standby: last WAL replayed; null on a primary. */
  readonly replayLsn: Lsn | null;
  readonly walReceiver: WalReceiverView | null;
  /** Standbys connected to this server; empty on a standby without cascading replicas. */
  readonly replicas: readonly ReplicaView[];
  /**
   * Standby: host and port of the server its primary_conninfo names (nothing else of it: it may carry
   * a password); null when it names none (an empty one: the receiver stopped). Absent: not read.
   */
  readonly upstream?: { readonly host: string; readonly port: number } | null;
  /** The raw setting; compare with synchronousStandbyNamesFor(name) to know whether it names a standby. */
  readonly synchronousStandbyNames: string;
  /** true while the server is fenced read-only (or configured so by someone else). */
  readonly defaultTransactionReadOnly: boolean;
  /**
   * A setting changed in the configuration files waits for a restart (pg_settings.pending_restart
   * of any setting: `pgvip restart --pending-restart` restarts such nodes). Absent: not known.
   */
  readonly pendingRestart?: boolean;
}

export interface PgUnreachableObservation {
  readonly reachable: false;
  /** PGVIP_PG_UNREACHABLE (down), PGVIP_PG_TIMEOUT (stalled) or PGVIP_PG_QUERY_FAILED. */
  readonly errorCode: ErrorCode;
  readonly detail: string;
}

export type PgObservation = PgReachableObservation | PgUnreachableObservation;

export type WriteProbeResult =
  | { readonly outcome: 'ok'; readonly durationMs: number }
  /** No commit acknowledged within the bound: stalled server or disk, or a synchronous standby that does not answer. */
  | { readonly outcome: 'timeout'; readonly durationMs: number; readonly detail: string }
  /** The server refused the write: it is a standby or fenced read-only. */
  | { readonly outcome: 'read-only'; readonly durationMs: number; readonly detail: string }
  | { readonly outcome: 'error'; readonly durationMs: number; readonly errorCode: ErrorCode; readonly detail: string };

/** Where a standby stood once its WAL receiver had stopped and replay had caught up with what it received. */
export interface FinalWalPosition {
  /** Last WAL flushed by the receiver before it stopped; null when it never streamed since start. */
  readonly receiveLsn: Lsn | null;
  /**
   * Last WAL replayed: at or past receiveLsn, or before it when the stream was cut inside a record
   * (that incomplete record is never replayed; promotion discards it).
   */
  readonly replayLsn: Lsn;
  readonly timelineId: number;
}

export interface PromoteResult {
  /** true when the server was already a primary and nothing was done. */
  readonly alreadyPrimary: boolean;
  /** The timeline the server now writes. */
  readonly timelineId: number;
}

/**
 * read-only: a pg_hba.conf block refusing every role but the agent's (see hba-fence.ts) and
 * default_transaction_read_only=on, loaded, and then every client session terminated, so no client
 * can write by any path (SET default_transaction_read_only = off, BEGIN READ WRITE...); replication
 * keeps streaming so a standby can catch up to the final LSN (switchover), and the server keeps its
 * caches. fast-stop: the server is stopped (pg_ctl -m fast, then -m immediate); the hard fence. Both
 * persist the block and read-only, so a server someone else restarts comes back fenced; unfence and
 * rejoin remove both.
 */
export type FenceMode = 'read-only' | 'fast-stop';

export interface FenceResult {
  readonly mode: FenceMode;
  /** Client backends terminated (read-only mode); 0 for fast-stop. */
  readonly terminatedBackends: number;
  /**
   * fast-stop of a primary that shut down cleanly: the end of its shutdown checkpoint, the last
   * record it will ever write (shutdown-lsn.ts); absent when not known (the stop escalated to
   * immediate, a standby, a tool failed). A switchover's final LSN.
   */
  readonly finalLsn?: bigint;
  /** Why finalLsn is absent after a fast-stop. */
  readonly finalLsnUnknown?: string;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface ManagedSettingsReport {
  /** Settings whose value this call changed, e.g. ['wal_retrieve_retry_interval']. */
  readonly changed: readonly string[];
  /** Managed settings that only take effect after a restart and are still waiting for it. */
  readonly pendingRestart: readonly string[];
  /**
   * Logical slots a failover would lose (all before PostgreSQL 17; see failover-slots.ts); absent when
   * not looked at.
   */
  readonly logicalSlotsLostAtFailover?: readonly string[];
}

export interface RejoinOptions {
  /** The new primary to rewind against and stream from. */
  readonly primary: PgEndpoint;
  /**
   * When pg_rewind fails, re-seed the data directory through the configured methods (default true);
   * false: fail with PGVIP_PG_REWIND_FAILED and leave the directory as it is.
   */
  readonly allowReseed?: boolean;
  /**
   * Stream through this physical slot on the primary (primary_slot_name): the rejoin creates it there
   * when it is missing, and replaces one PostgreSQL invalidated (wal_status 'lost'). Absent: no slot.
   */
  readonly slotName?: string;
  /**
   * Skip pg_rewind and copy the data directory afresh (pg_basebackup): a standby the primary can no
   * longer feed (its slot was invalidated, the WAL it needs is gone) has nothing to rewind.
   */
  readonly reseed?: boolean;
}

/** A physical replication slot on this server (pg_replication_slots). */
export interface ReplicationSlotView {
  readonly name: string;
  /** A WAL sender streams through it now. */
  readonly active: boolean;
  /** The oldest WAL the slot keeps; null once invalidated (or never reserved). */
  readonly restartLsn: Lsn | null;
  /**
   * 'reserved' | 'extended' | 'unreserved' | 'lost' (PostgreSQL's wal_status); 'lost': past
   * max_slot_wal_keep_size, the WAL its standby needs is gone and that standby must be re-seeded.
   */
  readonly walStatus: string | null;
  /**
   * Bytes of WAL the slot holds back: current (primary) or replay (standby) LSN minus restartLsn; null
   * without a restartLsn.
   */
  readonly keptBytes: bigint | null;
  /** Bytes left before max_slot_wal_keep_size invalidates the slot (safe_wal_size); null when unbounded. */
  readonly safeWalBytes: bigint | null;
}

/** What a standby found on its primary when it made sure it streams through its slot. */
export interface SlotFollowResult {
  /** The slot was missing on the primary and this call created it. */
  readonly created: boolean;
  /** primary_slot_name was changed here (the WAL receiver restarts with it). */
  readonly configured: boolean;
  /** The slot's wal_status on the primary; 'lost' means this standby must be re-seeded. */
  readonly walStatus: string | null;
}

export interface RejoinResult {
  /**
   * rewind: pg_rewind succeeded (or found nothing to rewind); base-backup: the data directory was
   * replaced by pg_basebackup; command: by the configured re-seed command (a restore from backups).
   */
  readonly path: 'rewind' | 'base-backup' | 'command';
  /** Why pg_rewind was not enough, when the data directory was re-seeded. */
  readonly rewindFailure: string | null;
  /** Why each re-seed method before the one that worked failed ("command: exit 3 ..."), in order. */
  readonly reseedFailures: readonly string[];
  readonly durationMs: number;
}

export interface WriteProbeOptions {
  /**
   * Commit with synchronous_commit = local: the probe then measures this server and its disk only.
   * The agent's health probe uses it, because a lost synchronous standby is handled by degrading to
   * async with the witness's agreement — it must not look like a stalled primary.
   */
  readonly localCommit?: boolean;
}

/** pgvip_commit_guard as this server has it (see packages/agent/pg-commit-guard). */
export interface CommitGuardStatus {
  /** The library is loaded (it is in shared_preload_libraries): the guard can work. */
  readonly loaded: boolean;
  /** Its functions exist in the agent's database (CREATE EXTENSION ran); armCommitGuard creates them on a primary. */
  readonly created: boolean;
  /** pgvip_commit_guard.enabled (an operator may switch the guard off with a reload). */
  readonly enabled: boolean;
  /** Armed, enabled and not in recovery: a write commit past the deadline is refused now. */
  readonly active: boolean;
  /** Milliseconds until the deadline (negative once past); null while never armed. */
  readonly remainingMs: number | null;
}

/** applySynchronousStandbyNames's account of what it waited for. */
export interface SyncSettingReport {
  /** Already in force by an earlier call: nothing done. */
  readonly unchanged: boolean;
  /** The checkpointer was waited for (the value was '' before, or not known to be in force). */
  readonly checkpointer: boolean;
  /** The walsenders that showed the new value: `name(pid)`. */
  readonly walsenders: readonly string[];
  readonly durationMs: number;
}

export interface SyncCatchUpReport {
  readonly caughtUp: boolean;
  /** L, read once the setting was in force. */
  readonly targetLsn: Lsn;
  /** Each member's flush position (null: not connected, or nothing confirmed) and walsender state. */
  readonly positions: readonly MemberFlush[];
  readonly durationMs: number;
}

/** A member's flush position as the primary's walsenders report it. */
export interface MemberFlush {
  readonly applicationName: string;
  readonly flushLsn: Lsn | null;
  readonly state: string | null;
}

export interface FollowOptions {
  /** The primary's node id, for details. */
  readonly name: string;
  /** This node's slot on the primary (created there when missing); null: stream without a slot. */
  readonly slotName: string | null;
  /** Default: the port's follow timeout. */
  readonly timeoutMs?: number;
}

export type FollowReport =
  | { readonly outcome: 'streaming'; readonly reconfigured: boolean; readonly durationMs: number }
  | { readonly outcome: 'diverged' | 'timeout'; readonly detail: string; readonly durationMs: number };

export interface PostgresPort {
  /** Releases connections kept between calls (daemon shutdown); later calls still work. */
  close(): void;

  /**
   * One snapshot in one round trip, within `timeoutMs` when given (never longer than the port's
   * queryMs). Never rejects for PostgreSQL faults; a timeout is PGVIP_PG_TIMEOUT.
   */
  observe(timeoutMs?: number): Promise<PgObservation>;

  /**
   * A real write (upsert of this node's heartbeat row, committed, synchronously replicated when
   * synchronous mode is on), bounded end to end by timeoutMs including connecting. Never rejects.
   */
  writeProbe(timeoutMs: number, options?: WriteProbeOptions): Promise<WriteProbeResult>;

  /**
   * Creates the pgvip schema and heartbeat table on a primary. Idempotent. Throws PGVIP_PG_READ_ONLY on
   * a standby or fenced server.
   */
  ensureSchema(): Promise<void>;

  /** Sets the server settings pgvip depends on (see managed-settings.ts) and reloads. Idempotent. */
  ensureManagedSettings(): Promise<ManagedSettingsReport>;

  /**
   * Stops this standby's WAL receiver, waits for replay to reach what was received, and returns that
   * final position; the first step of a promotion (I4). Idempotent. Throws PGVIP_PG_NOT_STANDBY on a
   * primary, PGVIP_PG_TIMEOUT when the receiver does not stop or replay does not catch up in time.
   */
  stopWalReceiverAndReadFinalLsn(): Promise<FinalWalPosition>;

  /**
   * Undoes stopWalReceiverAndReadFinalLsn (an aborted promotion, a withdrawn standby resuming):
   * streams from `primary` again; without it, from the primary_conninfo this port cleared when it
   * stopped the receiver (kept in memory; forgotten by a follow or a rejoin since, which set their
   * own; PGVIP_PG_QUERY_FAILED when there is none), and nothing when the receiver is not stopped.
   * Idempotent. Throws PGVIP_PG_NOT_STANDBY on a primary.
   */
  resumeWalReceiver(primary?: PgEndpoint): Promise<void>;

  /**
   * Sets synchronous_standby_names to `value` (any form PostgreSQL accepts; pgvip sets '' or
   * ANY k (…)) and returns once it is in force: every walsender releases commits by it and shows its
   * sync_priority, and a commit waits whenever the value is not '' (sync-setting.ts says how this is
   * known). Idempotent. Throws PGVIP_PG_TIMEOUT when a walsender does not show it in time.
   */
  applySynchronousStandbyNames(value: string): Promise<SyncSettingReport>;

  /**
   * R2's catch-up on a primary: makes sure the setting is in force (as applySynchronousStandbyNames
   * would), reads L = pg_current_wal_lsn(), then waits up to `timeoutMs` until `count` of `members`
   * (application names) report flush_lsn ≥ L. Resolves with caughtUp false when the time runs out.
   */
  syncCatchUp(members: readonly string[], count: number, timeoutMs: number): Promise<SyncCatchUpReport>;

  /**
   * On a standby: streams from `primary` (primary_conninfo, application_name = this node, and
   * primary_slot_name = `slotName`, created on the primary first; null: none) by ALTER SYSTEM and a
   * reload, no restart. Resolves 'streaming' once the WAL receiver streams from it, 'diverged' when
   * PostgreSQL refuses the primary's timeline (this node must be rewound), 'timeout' otherwise.
   * Throws PGVIP_PG_NOT_STANDBY on a primary, PGVIP_PG_* when the primary cannot be read.
   */
  followPrimary(primary: PgEndpoint, options: FollowOptions): Promise<FollowReport>;

  /**
   * Names the one synchronous standby (by application_name), or null for asynchronous replication;
   * reloads and returns once this server uses the new value. Idempotent.
   */
  setSynchronousStandby(name: string | null): Promise<void>;

  /**
   * Clears synchronous_standby_names (a promoted standby must not wait for itself), then
   * pg_promote(wait) and returns the new timeline. Idempotent: on a primary it returns alreadyPrimary.
   * Throws PGVIP_PG_PROMOTE_FAILED when promotion does not finish within waitSeconds.
   */
  promote(waitSeconds: number): Promise<PromoteResult>;

  /**
   * Stops the server from accepting writes (see FenceMode). Idempotent; on a stopped server it only
   * persists the fence. Throws PGVIP_PG_FENCE_FAILED (also when pg_hba.conf cannot be written or
   * has an error that keeps the server on its old rules: clients could log in again).
   */
  fence(mode: FenceMode): Promise<FenceResult>;

  /**
   * Accepts writes again: clears the persisted fence (pg_hba.conf block, read-only) and starts the
   * server if it is stopped. Idempotent.
   */
  unfence(): Promise<void>;

  /**
   * Turns this server into a streaming standby of `primary`: stop, pg_rewind (base backup when that
   * fails and is allowed), write standby.signal and primary_conninfo, start. Idempotent: a failed or
   * interrupted rejoin can be run again. Throws PGVIP_PG_REWIND_FAILED, PGVIP_PG_BASE_BACKUP_FAILED,
   * PGVIP_PG_RESEED_COMMAND_FAILED, PGVIP_PG_CTL_FAILED.
   */
  rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult>;

  /**
   * Starts the server as it is configured (primary or standby) and waits until it accepts connections;
   * a server fenced while stopped gets its fence completed (the roles to refuse are read now).
   * Idempotent. Throws PGVIP_PG_CTL_FAILED, PGVIP_PG_FENCE_FAILED.
   */
  start(): Promise<void>;

  /**
   * Stops the server and waits for it to exit. Idempotent. Throws PGVIP_PG_CTL_FAILED (e.g. fast stop
   * hangs on a stalled disk).
   */
  stop(mode: StopMode): Promise<void>;

  /** Physical replication slots on this server, by name. Throws PGVIP_PG_*. */
  replicationSlots(): Promise<readonly ReplicationSlotView[]>;

  /**
   * Makes sure a physical slot `name` exists here and reserves WAL now (from the last checkpoint's
   * redo point); works on a standby too, and the slot survives its promotion. An existing slot is
   * left as it is, even when invalidated (the re-seed of its standby replaces it). Returns true when
   * it created the slot. Idempotent. Throws PGVIP_PG_QUERY_FAILED (e.g. max_replication_slots reached), PGVIP_PG_*.
   */
  ensureReplicationSlot(name: string): Promise<boolean>;

  /**
   * Drops the physical slot `name` when it exists and nothing streams through it; returns whether it
   * dropped one. Idempotent. Throws PGVIP_PG_*.
   */
  dropReplicationSlot(name: string): Promise<boolean>;

  /**
   * On a standby: makes sure `slotName` exists on `primary` (created there when missing) and that
   * this server streams through it (primary_slot_name, reloaded). Reports the slot's wal_status on
   * the primary. Idempotent. Throws PGVIP_PG_NOT_STANDBY on a primary, PGVIP_PG_*.
   */
  followSlot(primary: PgEndpoint, slotName: string): Promise<SlotFollowResult>;

  /** Whether a postmaster runs for the data directory (pg_ctl status), reachable or not. Never rejects. */
  isRunning(): Promise<boolean>;

  /** The commit guard's state; `loaded: false` when the server does not have it. Throws PGVIP_PG_*. */
  commitGuardStatus(): Promise<CommitGuardStatus>;

  /**
   * Arms the commit guard: from `untilMs` on (the agent's monotonic clock, performance.now(), which
   * reads this host's CLOCK_MONOTONIC) the server refuses every commit that writes, until armed
   * again with a later deadline; an earlier one ends writes sooner. The server converts nothing
   * relative, so a call that arrives late still ends writes at `untilMs`. Works on a standby too
   * (which ignores the guard until promoted), so a promoted server is guarded from its first write.
   * Creates the extension's functions when they are missing and the server can write. Returns false,
   * and does nothing, when the library is not loaded. Idempotent. Throws PGVIP_PG_*.
   */
  armCommitGuard(untilMs: number): Promise<boolean>;
}

/** The synchronous_standby_names value that makes `name` the one synchronous standby ('' for async). */
export function synchronousStandbyNamesFor(name: string | null): string {
  return name === null ? '' : `"${name}"`;
}

const standbyNamePattern = /^[A-Za-z0-9_.-]{1,63}$/;

/**
 * The physical slot pgvip keeps for a standby: 'pgvip_' + its application_name lower-cased, with
 * every character outside [a-z0-9_] ('-', '.') turned into '_' (PostgreSQL's slot-name rule), at
 * most 63 characters. The config's application names are [a-z0-9-], so two of them map to one slot
 * name only when they agree in their first 57 characters.
 */
export function slotNameFor(standbyName: string): string {
  return `pgvip_${standbyName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

const slotNamePattern = /^[a-z0-9_]{1,63}$/;

/** PostgreSQL's rule for replication slot names. */
export function isValidSlotName(name: string): boolean {
  return slotNamePattern.test(name);
}

/** application_name values pgvip accepts for standbys: they travel unquoted through conninfo and SQL. */
export function isValidStandbyName(name: string): boolean {
  return standbyNamePattern.test(name);
}

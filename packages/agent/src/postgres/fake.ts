// An in-memory PostgresPort with the behaviour of LocalPostgres, for unit tests of the agent. The same
// contract tests (test/fixtures/postgres-port-contract.ts) run against both.
//
// The model: nodes on a FakePgNetwork, found by host:port, each with its FakeServer (fake-server.ts:
// WAL positions, timelines, streaming). The fake never sleeps: a probe that would time out returns
// 'timeout' at once with durationMs equal to the bound.
//
// Test controls: crash(), stall()/resume() (a SIGSTOPped server), cutLinkToUpstream()/healLinkToUpstream(),
// breakRewind() (pg_rewind will fail: the base-backup fallback runs), invalidateSlot() (past
// max_slot_wal_keep_size: its standby can no longer stream), clientWrite() (an application
// session that leaves read-only mode and inserts). The commit guard is modelled
// when the node is made with commitGuard: true (its deadline on the `clock` option, default performance.now).
import { PgvipError } from '@pgvip/shared';
import type { Lsn } from './lsn.js';
import { FakeCommitGuard } from './fake-commit-guard.js';
import { endpointKey, type FakePgNetwork } from './fake-network.js';
import { FakeServer } from './fake-server.js';
import { FakeSettings } from './fake-settings.js';
import { parseSynchronousStandbyNames } from './sync-names.js';
import { checkSlotName } from './fake-slots.js';
import {
  isValidStandbyName,
  type CommitGuardStatus,
  synchronousStandbyNamesFor,
  type FenceMode,
  type FenceResult,
  type FinalWalPosition,
  type FollowOptions,
  type FollowReport,
  type ManagedSettingsReport,
  type PgEndpoint,
  type PgObservation,
  type PostgresPort,
  type PromoteResult,
  type RejoinOptions,
  type RejoinResult,
  type ReplicationSlotView,
  type SlotFollowResult,
  type StopMode,
  type SyncCatchUpReport,
  type SyncSettingReport,
  type WriteProbeOptions,
  type WriteProbeResult,
} from './port.js';

export { FakePgNetwork } from './fake-network.js';

/** What became of FakePostgres.clientWrite(). */
export type FakeClientWrite = 'written' | 'refused' | 'read-only' | 'unreachable';

const bytesPerHeartbeat: Lsn = 0x80n;

export interface FakePostgresOptions {
  readonly network: FakePgNetwork;
  readonly nodeName: string;
  readonly endpoint: PgEndpoint;
  /** Start as a standby streaming from this primary (a fresh base backup of it); default: a new primary. */
  readonly standbyOf?: PgEndpoint;
  readonly dataChecksums?: boolean;
  /** pgvip_commit_guard is loaded and created (default false: the server does not have it). */
  readonly commitGuard?: boolean;
  /** The clock armCommitGuard deadlines are on (default performance.now, as the agent's). */
  readonly clock?: () => number;
}

export class FakePostgres implements PostgresPort {
  readonly network: FakePgNetwork;
  readonly nodeName: string;
  readonly endpoint: PgEndpoint;
  /** Server settings as current_setting() shows them; ALTER SYSTEM and reload are instant here. */
  readonly settings = new FakeSettings();

  readonly #m: FakeServer;
  #rewindBroken = false;
  /** The fence's pg_hba.conf block: application roles are refused; kept across restarts, as the file is. */
  #clientsRefused = false;
  readonly #guard: FakeCommitGuard;
  /** The upstream stopWalReceiverAndReadFinalLsn switched off, for resumeWalReceiver(). */
  #stoppedUpstream: PgEndpoint | null = null;

  constructor(options: FakePostgresOptions) {
    this.network = options.network;
    this.nodeName = options.nodeName;
    this.endpoint = options.endpoint;
    this.settings.set('data_checksums', options.dataChecksums ? 'on' : 'off');
    this.#m = new FakeServer(options.nodeName, options.endpoint, this.settings, {
      nodes: () => this.network.nodes().map((n) => n.#m),
      resolve: (e) => {
        const node = this.network.resolve(e);
        return node === undefined ? undefined : node.#m;
      },
    });
    this.#guard = new FakeCommitGuard(options.commitGuard === true, options.clock ?? (() => performance.now()));
    options.network.register(this);
    if (options.standbyOf) {
      const primary = this.#resolve(options.standbyOf);
      this.#m.becomeCopyOf(primary.#m);
      this.#m.upstream = options.standbyOf;
    }
  }

  // --- test controls ---------------------------------------------------------------------------

  /** The server dies without a clean shutdown (kill -9 of the postmaster). */
  crash(): void {
    this.#m.settle();
    this.#m.running = false;
    this.#guard.clear();
  }

  /** The server stops answering but stays "running" (SIGSTOP, a frozen host, a hung disk). */
  stall(): void {
    this.#m.settle();
    this.#m.stalled = true;
  }

  resume(): void {
    this.#m.stalled = false;
  }

  /** Replication traffic between this standby and its primary is dropped. */
  cutLinkToUpstream(): void {
    this.#m.settle();
    this.#m.linkToUpstreamUp = false;
  }

  healLinkToUpstream(): void {
    this.#m.linkToUpstreamUp = true;
  }

  /** The next pg_rewind fails (its WAL since the fork is gone), so a rejoin falls back to a base backup. */
  breakRewind(): void {
    this.#rewindBroken = true;
  }

  /** PostgreSQL invalidates the slot (past max_slot_wal_keep_size): the standby using it stops streaming for good. */
  invalidateSlot(name: string): void {
    this.#m.settle();
    const slot = this.#m.slots.get(name);
    if (slot) slot.lost = true;
  }

  /** primary_slot_name as this server has it ('' for none). */
  get primarySlotName(): string {
    return this.#m.slotName ?? '';
  }

  get running(): boolean {
    return this.#m.running;
  }

  /**
   * An application session (not the agent's role) that logs in, leaves read-only mode (SET SESSION
   * CHARACTERISTICS AS TRANSACTION READ WRITE) and inserts: 'refused' while fenced, 'read-only' on a
   * standby, 'unreachable' when the server is down or stalled.
   */
  async clientWrite(): Promise<FakeClientWrite> {
    if (this.#m.sqlFailure() !== null) return 'unreachable';
    if (this.#clientsRefused) return 'refused';
    if (this.#m.inRecovery) return 'read-only';
    this.#m.walLsn += bytesPerHeartbeat;
    this.#m.settle();
    return 'written';
  }

  // --- PostgresPort ----------------------------------------------------------------------------

  /** Nothing is kept open here. */
  close(): void {}

  async observe(): Promise<PgObservation> {
    const failure = this.#m.sqlFailure();
    if (failure) return { reachable: false, errorCode: failure.code, detail: failure.detail };
    this.#m.settle();
    const streaming = this.#m.isStreaming();
    return {
      reachable: true,
      role: this.#m.inRecovery ? 'standby' : 'primary',
      inRecovery: this.#m.inRecovery,
      timelineId: this.#m.timelineId,
      currentLsn: this.#m.inRecovery ? null : this.#m.walLsn,
      receiveLsn: this.#m.inRecovery ? this.#m.receiveLsn : null,
      replayLsn: this.#m.inRecovery ? this.#m.walLsn : null,
      walReceiver:
        this.#m.inRecovery && this.#m.upstream !== null
          ? {
              status: streaming ? 'streaming' : 'waiting',
              senderHost: streaming ? this.#m.upstream.host : null,
              senderPort: streaming ? this.#m.upstream.port : null,
              receivedTimelineId: streaming ? this.#m.timelineId : null,
              lastMessageAgeMs: streaming ? 0 : null,
            }
          : null,
      replicas: this.#m.replicas(),
      upstream: this.#m.inRecovery && this.#m.upstream !== null
        ? { host: this.#m.upstream.host, port: this.#m.upstream.port }
        : null,
      synchronousStandbyNames: this.#m.setting('synchronous_standby_names'),
      defaultTransactionReadOnly: this.#m.setting('default_transaction_read_only') === 'on',
    };
  }

  async writeProbe(timeoutMs: number, options: WriteProbeOptions = {}): Promise<WriteProbeResult> {
    const failure = this.#m.sqlFailure();
    if (failure?.code === 'PGVIP_PG_TIMEOUT') return { outcome: 'timeout', durationMs: timeoutMs, detail: failure.detail };
    if (failure) return { outcome: 'error', durationMs: 0, errorCode: failure.code, detail: failure.detail };
    this.#m.settle();
    // As in PostgreSQL, a missing table fails at parse time, before the read-only check.
    if (!this.#m.hasSchema) {
      return { outcome: 'error', durationMs: 0, errorCode: 'PGVIP_PG_QUERY_FAILED', detail: 'relation "pgvip.heartbeat" does not exist' };
    }
    if (this.#m.inRecovery || this.#m.setting('default_transaction_read_only') === 'on') {
      return { outcome: 'read-only', durationMs: 0, detail: 'cannot execute INSERT in a read-only transaction' };
    }
    const guard = this.#guardRefusal('start a write');
    if (guard !== null) return { outcome: 'read-only', durationMs: 0, detail: guard };
    this.#m.walLsn += bytesPerHeartbeat; // committed locally in any case
    this.#m.settle();
    const syncNames = this.#m.setting('synchronous_standby_names');
    if (!options.localCommit && syncNames !== '' && !this.#m.replicas().some((r) => r.syncState === 'sync')) {
      return { outcome: 'timeout', durationMs: timeoutMs, detail: `committed locally but the synchronous standby did not confirm within ${timeoutMs} ms` };
    }
    return { outcome: 'ok', durationMs: 0 };
  }

  async ensureSchema(): Promise<void> {
    this.#m.requireSql();
    if (this.#m.inRecovery || this.#m.setting('default_transaction_read_only') === 'on') {
      throw new PgvipError('PGVIP_PG_READ_ONLY', 'cannot execute CREATE SCHEMA in a read-only transaction');
    }
    // IF NOT EXISTS writes nothing when the table is there, so the guard lets that commit through.
    const guard = this.#m.hasSchema ? null : this.#guardRefusal('commit a transaction that wrote');
    if (guard !== null) throw new PgvipError('PGVIP_PG_READ_ONLY', guard);
    this.#m.hasSchema = true;
    this.#m.walLsn += bytesPerHeartbeat;
  }

  async ensureManagedSettings(): Promise<ManagedSettingsReport> {
    this.#m.requireSql();
    const changed = this.settings.applyManaged();
    // The fake models PostgreSQL 15 without logical slots: none to lose at a failover.
    return { changed, pendingRestart: this.settings.pendingRestart(), logicalSlotsLostAtFailover: [] };
  }

  async stopWalReceiverAndReadFinalLsn(): Promise<FinalWalPosition> {
    this.#m.requireSql();
    this.#m.requireStandby('stopping the WAL receiver');
    this.#m.settle();
    if (this.#m.upstream !== null) this.#stoppedUpstream = this.#m.upstream;
    this.#m.upstream = null;
    return { receiveLsn: this.#m.receiveLsn, replayLsn: this.#m.walLsn, timelineId: this.#m.timelineId };
  }

  async resumeWalReceiver(primary?: PgEndpoint): Promise<void> {
    this.#m.requireSql();
    this.#m.requireStandby('resuming the WAL receiver');
    if (primary === undefined && this.#m.upstream !== null) return; // not stopped: streaming already
    const to = primary ?? this.#stoppedUpstream;
    if (to === null) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'no primary to resume the WAL receiver from: this agent did not stop it (restarted since?)');
    this.#m.upstream = to;
    this.#stoppedUpstream = null;
  }

  async applySynchronousStandbyNames(value: string): Promise<SyncSettingReport> {
    try {
      parseSynchronousStandbyNames(value);
    } catch (err) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', (err as Error).message);
    }
    this.#m.requireSql();
    const unchanged = this.#m.setting('synchronous_standby_names') === value;
    // Reloads are instant here: every walsender has the value at once.
    this.settings.set('synchronous_standby_names', value);
    this.#m.settle();
    const walsenders = this.#m.replicas().map((r) => r.applicationName);
    return { unchanged, checkpointer: false, walsenders, durationMs: 0 };
  }

  async syncCatchUp(members: readonly string[], count: number, timeoutMs: number): Promise<SyncCatchUpReport> {
    this.#m.requireSql();
    this.#m.settle();
    const targetLsn = this.#m.walLsn;
    const replicas = this.#m.replicas();
    const positions = members.map((m) => {
      const r = replicas.find((x) => x.applicationName.toLowerCase() === m.toLowerCase());
      return { applicationName: m, flushLsn: r?.flushLsn ?? null, state: r?.state ?? null };
    });
    const caughtUp = positions.filter((p) => p.flushLsn !== null && p.flushLsn >= targetLsn).length >= count;
    // The fake never sleeps: a wait that cannot end ends at once with the bound as its duration.
    return { caughtUp, targetLsn, positions, durationMs: caughtUp ? 0 : timeoutMs };
  }

  async followPrimary(primary: PgEndpoint, options: FollowOptions): Promise<FollowReport> {
    this.#m.requireSql();
    this.#m.requireStandby('following a new primary');
    const upstream = this.#resolve(primary);
    upstream.#m.requireSql();
    if (options.slotName !== null) upstream.#m.createSlot(options.slotName);
    this.#stoppedUpstream = null;
    const reconfigured = this.#m.upstream === null || endpointKey(this.#m.upstream) !== endpointKey(primary) ||
      this.#m.slotName !== options.slotName;
    this.#m.upstream = primary;
    this.#m.slotName = options.slotName;
    this.#m.settle();
    if (this.#m.isStreaming()) return { outcome: 'streaming', reconfigured, durationMs: 0 };
    const u = upstream.#m;
    const end = u.timelineEnds.get(this.#m.timelineId);
    if (u.timelineId !== this.#m.timelineId && (end === undefined || this.#m.walLsn > end)) {
      return { outcome: 'diverged', detail: `this standby's timeline ${this.#m.timelineId} forked from ${options.name}'s timeline ${u.timelineId} before its position`, durationMs: 0 };
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    return { outcome: 'timeout', detail: `not streaming from ${options.name} after ${timeoutMs} ms`, durationMs: timeoutMs };
  }

  async setSynchronousStandby(name: string | null): Promise<void> {
    if (name !== null && !isValidStandbyName(name)) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', `standby name ${JSON.stringify(name)} must match [A-Za-z0-9_.-]{1,63}`);
    }
    this.#m.requireSql();
    this.settings.set('synchronous_standby_names', synchronousStandbyNamesFor(name));
  }

  async promote(waitSeconds: number): Promise<PromoteResult> {
    this.#m.requireSql();
    if (!this.#m.inRecovery) return { alreadyPrimary: true, timelineId: this.#m.timelineId };
    if (waitSeconds <= 0) throw new PgvipError('PGVIP_PG_PROMOTE_FAILED', `still in recovery ${waitSeconds} s after pg_promote`);
    this.#m.settle();
    this.settings.set('synchronous_standby_names', '');
    this.#m.timelineEnds.set(this.#m.timelineId, this.#m.walLsn);
    this.#m.timelineId += 1;
    this.#m.inRecovery = false;
    this.#m.upstream = null;
    return { alreadyPrimary: false, timelineId: this.#m.timelineId };
  }

  async fence(mode: FenceMode): Promise<FenceResult> {
    if (mode === 'fast-stop') {
      if (this.#m.stalled) throw new PgvipError('PGVIP_PG_FENCE_FAILED', 'cannot stop the server: pg_ctl stop timed out');
      this.#m.settle();
      this.#m.running = false;
      this.settings.set('default_transaction_read_only', 'on');
      this.#guard.clear();
      this.#clientsRefused = true;
      // A clean stop of a primary: its WAL ends where it stopped (the real one reads its shutdown checkpoint).
      return { mode, terminatedBackends: 0, ...(this.#m.inRecovery ? {} : { finalLsn: this.#m.walLsn }) };
    }
    if (this.#m.stalled) throw new PgvipError('PGVIP_PG_FENCE_FAILED', `${endpointKey(this.endpoint)} did not answer within the bound`);
    this.settings.set('default_transaction_read_only', 'on');
    this.#clientsRefused = true;
    return { mode, terminatedBackends: 0 };
  }

  async unfence(): Promise<void> {
    if (this.#m.running) this.#m.requireSql();
    this.settings.set('default_transaction_read_only', 'off');
    this.#clientsRefused = false;
    if (!this.#m.running) await this.start();
  }

  async rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult> {
    this.#stoppedUpstream = null;
    await this.stop('fast');
    const primary = this.#resolve(options.primary);
    if (!primary.#m.running) throw new PgvipError('PGVIP_PG_UNREACHABLE', `${endpointKey(options.primary)}: connection refused`);
    if (primary.#m.stalled) throw new PgvipError('PGVIP_PG_TIMEOUT', `${endpointKey(options.primary)} did not answer`);
    if (options.slotName !== undefined) {
      if (primary.#m.slots.get(options.slotName)?.lost) primary.#m.slots.delete(options.slotName);
      primary.#m.createSlot(options.slotName);
    }
    const rewindFailure =
      options.reseed === true
        ? 're-seed asked for: the primary can no longer feed this standby'
        : this.#rewindBroken
          ? 'pg_rewind exit 1: could not open file pg_wal/...: No such file or directory'
          : null;
    if (rewindFailure !== null && options.allowReseed === false) throw new PgvipError('PGVIP_PG_REWIND_FAILED', rewindFailure);
    this.#rewindBroken = false;
    // pg_basebackup copies no slots; pg_rewind leaves this node's own as they were.
    if (rewindFailure !== null) this.#m.slots.clear();
    this.#m.becomeCopyOf(primary.#m);
    this.#m.upstream = options.primary;
    this.#m.slotName = options.slotName ?? null;
    this.settings.set('default_transaction_read_only', 'off');
    this.#clientsRefused = false;
    this.#m.running = true;
    this.settings.applyPendingRestart();
    return { path: rewindFailure === null ? 'rewind' : 'base-backup', rewindFailure, reseedFailures: [], durationMs: 0 };
  }

  async start(): Promise<void> {
    if (this.#m.running) return;
    this.#m.running = true;
    this.settings.applyPendingRestart();
  }

  async stop(_mode: StopMode): Promise<void> {
    if (!this.#m.running) return;
    if (this.#m.stalled) throw new PgvipError('PGVIP_PG_CTL_FAILED', `pg_ctl stop of ${this.nodeName} timed out`);
    this.#m.settle();
    this.#m.running = false;
    this.#guard.clear(); // shared memory goes with the server
  }

  async replicationSlots(): Promise<readonly ReplicationSlotView[]> {
    this.#m.requireSql();
    this.#m.settle();
    return this.#m.slots.views(this.#m.walLsn, (name) =>
      this.network.nodes().some((n) => n.#m.upstreamNode() === this.#m && n.#m.slotName === name && n.#m.isStreaming()),
    );
  }

  async ensureReplicationSlot(name: string): Promise<boolean> {
    this.#m.requireSql();
    return this.#m.createSlot(name);
  }

  async dropReplicationSlot(name: string): Promise<boolean> {
    this.#m.requireSql();
    checkSlotName(name);
    const inUse = this.network
      .nodes()
      .some((n) => n.#m.upstreamNode() === this.#m && n.#m.slotName === name && n.#m.isStreaming());
    return !inUse && this.#m.slots.delete(name);
  }

  async followSlot(primary: PgEndpoint, slotName: string): Promise<SlotFollowResult> {
    this.#m.requireSql();
    this.#m.requireStandby('following a replication slot');
    const upstream = this.#resolve(primary);
    upstream.#m.requireSql();
    const created = upstream.#m.createSlot(slotName);
    const walStatus = upstream.#m.slots.get(slotName)?.lost ? 'lost' : 'reserved';
    this.#m.requireSql();
    this.#m.requireStandby('following a replication slot');
    const configured = this.#m.slotName !== slotName;
    this.#m.slotName = slotName;
    return { created, configured, walStatus };
  }

  async isRunning(): Promise<boolean> {
    return this.#m.running;
  }

  async commitGuardStatus(): Promise<CommitGuardStatus> {
    this.#m.requireSql();
    return this.#guard.status(this.#m.inRecovery);
  }

  async armCommitGuard(untilMs: number): Promise<boolean> {
    this.#m.requireSql();
    return this.#guard.arm(untilMs);
  }

  #guardRefusal(what: string): string | null {
    return this.#guard.refusal(what, this.#m.inRecovery);
  }

  #resolve(endpoint: PgEndpoint): FakePostgres {
    const node = this.network.resolve(endpoint);
    if (!node) throw new PgvipError('PGVIP_PG_UNREACHABLE', `${endpointKey(endpoint)}: no such server`);
    return node;
  }
}

// An in-memory PostgresPort with the behaviour of LocalPostgres, for unit tests of the agent. The same
// contract tests (test/fixtures/postgres-port-contract.ts) run against both.
//
// The model: nodes on a FakePgNetwork, found by host:port. A primary's WAL position grows with each
// write; a standby whose receiver runs, and whose primary is up and reachable, has received and
// replayed everything at once. Promotion starts a new timeline and remembers where the old one ended,
// so a former primary that wrote past that point cannot stream until it rejoins (as in PostgreSQL).
// The fake never sleeps: a probe that would time out returns 'timeout' at once with durationMs equal
// to the bound.
//
// Test controls: crash(), stall()/resume() (a SIGSTOPped server), cutLinkToUpstream()/healLinkToUpstream(),
// breakRewind() (pg_rewind will fail: the base-backup fallback runs), invalidateSlot() (past
// max_slot_wal_keep_size: its standby can no longer stream), clientWrite() (an application
// session that leaves read-only mode and inserts). The commit guard is modelled
// when the node is made with commitGuard: true (its deadline on the `clock` option, default performance.now).
import { PgvipError, type ErrorCode } from '@pgvip/shared';
import type { Lsn } from './lsn.js';
import { managedSettings } from './managed-settings.js';
import {
  isValidSlotName,
  isValidStandbyName,
  type CommitGuardStatus,
  synchronousStandbyNamesFor,
  type FenceMode,
  type FenceResult,
  type FinalWalPosition,
  type ManagedSettingsReport,
  type PgEndpoint,
  type PgObservation,
  type PostgresPort,
  type PromoteResult,
  type RejoinOptions,
  type RejoinResult,
  type ReplicaView,
  type ReplicationSlotView,
  type SlotFollowResult,
  type StopMode,
  type WriteProbeOptions,
  type WriteProbeResult,
} from './port.js';

/** What became of FakePostgres.clientWrite(). */
export type FakeClientWrite = 'written' | 'refused' | 'read-only' | 'unreachable';

const firstLsn: Lsn = 0x3000000n;
const bytesPerHeartbeat: Lsn = 0x80n;

const endpointKey = (e: PgEndpoint): string => `${e.host}:${e.port}`;

/** Where the nodes find each other: a primary_conninfo or rejoin endpoint resolves to a node here. */
export class FakePgNetwork {
  readonly #nodes = new Map<string, FakePostgres>();

  register(node: FakePostgres): void {
    this.#nodes.set(endpointKey(node.endpoint), node);
  }

  resolve(endpoint: PgEndpoint): FakePostgres | undefined {
    return this.#nodes.get(endpointKey(endpoint));
  }

  nodes(): FakePostgres[] {
    return [...this.#nodes.values()];
  }

  /** A primary 'db-a' and a standby 'db-b' streaming from it, like test/fixtures/pg-cluster.ts. */
  static pair(options: { synchronous?: boolean; commitGuard?: boolean } = {}): { network: FakePgNetwork; primary: FakePostgres; standby: FakePostgres } {
    const network = new FakePgNetwork();
    const guard = { commitGuard: options.commitGuard === true };
    const primary = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' }, ...guard });
    if (options.synchronous) primary.settings.set('synchronous_standby_names', synchronousStandbyNamesFor('db-b'));
    const standby = new FakePostgres({
      network,
      nodeName: 'db-b',
      endpoint: { host: '127.0.0.2', port: 5432, user: 'postgres', database: 'postgres' },
      standbyOf: primary.endpoint,
      ...guard,
    });
    return { network, primary, standby };
  }
}

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
  readonly settings = new Map<string, string>([
    ['synchronous_standby_names', ''],
    ['default_transaction_read_only', 'off'],
    ['wal_retrieve_retry_interval', '5s'],
    ['wal_receiver_status_interval', '10s'],
    ['hot_standby', 'on'],
    ['recovery_target_timeline', 'latest'],
    ['full_page_writes', 'on'],
    ['wal_log_hints', 'off'],
  ]);

  #running = true;
  #stalled = false;
  #inRecovery = false;
  #timelineId = 1;
  /** Primary: current WAL position. Standby: replay position. */
  #walLsn: Lsn = firstLsn;
  #receiveLsn: Lsn | null = null;
  /** Where each earlier timeline of this node's history ended (the promotion points). */
  #timelineEnds = new Map<number, Lsn>();
  /** primary_conninfo; null when the WAL receiver is switched off (or on a primary). */
  #upstream: PgEndpoint | null = null;
  #linkToUpstreamUp = true;
  #hasSchema = false;
  #rewindBroken = false;
  /** Physical slots on this server: the oldest WAL each keeps, and whether PostgreSQL invalidated it. */
  readonly #slots = new Map<string, { restartLsn: Lsn; lost: boolean }>();
  /** primary_slot_name: the slot on the upstream this standby streams through. */
  #slotName: string | null = null;
  /** Restart-only settings changed since the last start, with their new value. */
  #pendingRestart = new Map<string, string>();
  /** The fence's pg_hba.conf block: application roles are refused; kept across restarts, as the file is. */
  #clientsRefused = false;
  readonly #guardLoaded: boolean;
  readonly #clock: () => number;
  /** The commit guard's deadline in shared memory: null until armed, and again after every restart. */
  #guardDeadlineMs: number | null = null;

  constructor(options: FakePostgresOptions) {
    this.network = options.network;
    this.nodeName = options.nodeName;
    this.endpoint = options.endpoint;
    this.settings.set('data_checksums', options.dataChecksums ? 'on' : 'off');
    this.#guardLoaded = options.commitGuard === true;
    this.#clock = options.clock ?? (() => performance.now());
    options.network.register(this);
    if (options.standbyOf) {
      const primary = this.#resolve(options.standbyOf);
      this.#becomeCopyOf(primary);
      this.#upstream = options.standbyOf;
    }
  }

  // --- test controls ---------------------------------------------------------------------------

  /** The server dies without a clean shutdown (kill -9 of the postmaster). */
  crash(): void {
    this.#settle();
    this.#running = false;
    this.#guardDeadlineMs = null;
  }

  /** The server stops answering but stays "running" (SIGSTOP, a frozen host, a hung disk). */
  stall(): void {
    this.#settle();
    this.#stalled = true;
  }

  resume(): void {
    this.#stalled = false;
  }

  /** Replication traffic between this standby and its primary is dropped. */
  cutLinkToUpstream(): void {
    this.#settle();
    this.#linkToUpstreamUp = false;
  }

  healLinkToUpstream(): void {
    this.#linkToUpstreamUp = true;
  }

  /** The next pg_rewind fails (its WAL since the fork is gone), so a rejoin falls back to a base backup. */
  breakRewind(): void {
    this.#rewindBroken = true;
  }

  /** PostgreSQL invalidates the slot (max_slot_wal_keep_size exceeded): the standby using it stops streaming for good. */
  invalidateSlot(name: string): void {
    this.#settle();
    const slot = this.#slots.get(name);
    if (slot) slot.lost = true;
  }

  /** primary_slot_name as this server has it ('' for none). */
  get primarySlotName(): string {
    return this.#slotName ?? '';
  }

  get running(): boolean {
    return this.#running;
  }

  /**
   * An application session (not the agent's role) that logs in, leaves read-only mode (SET SESSION
   * CHARACTERISTICS AS TRANSACTION READ WRITE) and inserts: 'refused' while fenced, 'read-only' on a
   * standby, 'unreachable' when the server is down or stalled.
   */
  async clientWrite(): Promise<FakeClientWrite> {
    if (this.#sqlFailure() !== null) return 'unreachable';
    if (this.#clientsRefused) return 'refused';
    if (this.#inRecovery) return 'read-only';
    this.#walLsn += bytesPerHeartbeat;
    this.#settle();
    return 'written';
  }

  // --- PostgresPort ----------------------------------------------------------------------------

  /** Nothing is kept open here. */
  close(): void {}

  async observe(): Promise<PgObservation> {
    const failure = this.#sqlFailure();
    if (failure) return { reachable: false, errorCode: failure.code, detail: failure.detail };
    this.#settle();
    const streaming = this.#isStreaming();
    return {
      reachable: true,
      role: this.#inRecovery ? 'standby' : 'primary',
      inRecovery: this.#inRecovery,
      timelineId: this.#timelineId,
      currentLsn: this.#inRecovery ? null : this.#walLsn,
      receiveLsn: this.#inRecovery ? this.#receiveLsn : null,
      replayLsn: this.#inRecovery ? this.#walLsn : null,
      walReceiver:
        this.#inRecovery && this.#upstream !== null
          ? {
              status: streaming ? 'streaming' : 'waiting',
              senderHost: streaming ? this.#upstream.host : null,
              senderPort: streaming ? this.#upstream.port : null,
              receivedTimelineId: streaming ? this.#timelineId : null,
              lastMessageAgeMs: streaming ? 0 : null,
            }
          : null,
      replicas: this.#replicas(),
      synchronousStandbyNames: this.#setting('synchronous_standby_names'),
      defaultTransactionReadOnly: this.#setting('default_transaction_read_only') === 'on',
    };
  }

  async writeProbe(timeoutMs: number, options: WriteProbeOptions = {}): Promise<WriteProbeResult> {
    const failure = this.#sqlFailure();
    if (failure?.code === 'PGVIP_PG_TIMEOUT') return { outcome: 'timeout', durationMs: timeoutMs, detail: failure.detail };
    if (failure) return { outcome: 'error', durationMs: 0, errorCode: failure.code, detail: failure.detail };
    this.#settle();
    // As in PostgreSQL, a missing table fails at parse time, before the read-only check.
    if (!this.#hasSchema) {
      return { outcome: 'error', durationMs: 0, errorCode: 'PGVIP_PG_QUERY_FAILED', detail: 'relation "pgvip.heartbeat" does not exist' };
    }
    if (this.#inRecovery || this.#setting('default_transaction_read_only') === 'on') {
      return { outcome: 'read-only', durationMs: 0, detail: 'cannot execute INSERT in a read-only transaction' };
    }
    const guard = this.#guardRefusal('start a write');
    if (guard !== null) return { outcome: 'read-only', durationMs: 0, detail: guard };
    this.#walLsn += bytesPerHeartbeat; // committed locally in any case
    this.#settle();
    const syncNames = this.#setting('synchronous_standby_names');
    if (!options.localCommit && syncNames !== '' && !this.#replicas().some((r) => r.syncState === 'sync')) {
      return { outcome: 'timeout', durationMs: timeoutMs, detail: `committed locally but the synchronous standby did not confirm within ${timeoutMs} ms` };
    }
    return { outcome: 'ok', durationMs: 0 };
  }

  async ensureSchema(): Promise<void> {
    this.#requireSql();
    if (this.#inRecovery || this.#setting('default_transaction_read_only') === 'on') {
      throw new PgvipError('PGVIP_PG_READ_ONLY', 'cannot execute CREATE SCHEMA in a read-only transaction');
    }
    // IF NOT EXISTS writes nothing when the table is there, so the guard lets that commit through.
    const guard = this.#hasSchema ? null : this.#guardRefusal('commit a transaction that wrote');
    if (guard !== null) throw new PgvipError('PGVIP_PG_READ_ONLY', guard);
    this.#hasSchema = true;
    this.#walLsn += bytesPerHeartbeat;
  }

  async ensureManagedSettings(): Promise<ManagedSettingsReport> {
    this.#requireSql();
    const changed: string[] = [];
    for (const setting of managedSettings) {
      if (setting.notNeededWhen?.(this.settings)) continue;
      if (this.#setting(setting.name) === setting.value || this.#pendingRestart.has(setting.name)) continue;
      if (restartOnlySettings.has(setting.name)) this.#pendingRestart.set(setting.name, setting.value);
      else this.settings.set(setting.name, setting.value);
      changed.push(setting.name);
    }
    // The fake models PostgreSQL 15 without logical slots: none to lose at a failover.
    return { changed, pendingRestart: [...this.#pendingRestart.keys()].sort(), logicalSlotsLostAtFailover: [] };
  }

  async stopWalReceiverAndReadFinalLsn(): Promise<FinalWalPosition> {
    this.#requireSql();
    this.#requireStandby('stopping the WAL receiver');
    this.#settle();
    this.#upstream = null;
    return { receiveLsn: this.#receiveLsn, replayLsn: this.#walLsn, timelineId: this.#timelineId };
  }

  async resumeWalReceiver(primary: PgEndpoint): Promise<void> {
    this.#requireSql();
    this.#requireStandby('resuming the WAL receiver');
    this.#upstream = primary;
  }

  async setSynchronousStandby(name: string | null): Promise<void> {
    if (name !== null && !isValidStandbyName(name)) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', `standby name ${JSON.stringify(name)} must match [A-Za-z0-9_.-]{1,63}`);
    }
    this.#requireSql();
    this.settings.set('synchronous_standby_names', synchronousStandbyNamesFor(name));
  }

  async promote(waitSeconds: number): Promise<PromoteResult> {
    this.#requireSql();
    if (!this.#inRecovery) return { alreadyPrimary: true, timelineId: this.#timelineId };
    if (waitSeconds <= 0) throw new PgvipError('PGVIP_PG_PROMOTE_FAILED', `still in recovery ${waitSeconds} s after pg_promote`);
    this.#settle();
    this.settings.set('synchronous_standby_names', '');
    this.#timelineEnds.set(this.#timelineId, this.#walLsn);
    this.#timelineId += 1;
    this.#inRecovery = false;
    this.#upstream = null;
    return { alreadyPrimary: false, timelineId: this.#timelineId };
  }

  async fence(mode: FenceMode): Promise<FenceResult> {
    if (mode === 'fast-stop') {
      if (this.#stalled) throw new PgvipError('PGVIP_PG_FENCE_FAILED', 'cannot stop the server: pg_ctl stop timed out');
      this.#settle();
      this.#running = false;
      this.settings.set('default_transaction_read_only', 'on');
      this.#guardDeadlineMs = null;
      this.#clientsRefused = true;
      return { mode, terminatedBackends: 0 };
    }
    if (this.#stalled) throw new PgvipError('PGVIP_PG_FENCE_FAILED', `${endpointKey(this.endpoint)} did not answer within the bound`);
    this.settings.set('default_transaction_read_only', 'on');
    this.#clientsRefused = true;
    return { mode, terminatedBackends: 0 };
  }

  async unfence(): Promise<void> {
    if (this.#running) this.#requireSql();
    this.settings.set('default_transaction_read_only', 'off');
    this.#clientsRefused = false;
    if (!this.#running) await this.start();
  }

  async rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult> {
    await this.stop('fast');
    const primary = this.#resolve(options.primary);
    if (!primary.#running) throw new PgvipError('PGVIP_PG_UNREACHABLE', `${endpointKey(options.primary)}: connection refused`);
    if (primary.#stalled) throw new PgvipError('PGVIP_PG_TIMEOUT', `${endpointKey(options.primary)} did not answer`);
    if (options.slotName !== undefined) {
      if (primary.#slots.get(options.slotName)?.lost) primary.#slots.delete(options.slotName);
      primary.#createSlot(options.slotName);
    }
    const rewindFailure =
      options.reseed === true
        ? 're-seed asked for: the primary can no longer feed this standby'
        : this.#rewindBroken
          ? 'pg_rewind exit 1: could not open file pg_wal/...: No such file or directory'
          : null;
    if (rewindFailure !== null && options.allowBaseBackup === false) throw new PgvipError('PGVIP_PG_REWIND_FAILED', rewindFailure);
    this.#rewindBroken = false;
    // pg_basebackup copies no slots; pg_rewind leaves this node's own as they were.
    if (rewindFailure !== null) this.#slots.clear();
    this.#becomeCopyOf(primary);
    this.#upstream = options.primary;
    this.#slotName = options.slotName ?? null;
    this.settings.set('default_transaction_read_only', 'off');
    this.#clientsRefused = false;
    this.#running = true;
    this.#applyPendingRestart();
    return { path: rewindFailure === null ? 'rewind' : 'base-backup', rewindFailure, durationMs: 0 };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#applyPendingRestart();
  }

  async stop(_mode: StopMode): Promise<void> {
    if (!this.#running) return;
    if (this.#stalled) throw new PgvipError('PGVIP_PG_CTL_FAILED', `pg_ctl stop of ${this.nodeName} timed out`);
    this.#settle();
    this.#running = false;
    this.#guardDeadlineMs = null; // shared memory goes with the server
  }

  async replicationSlots(): Promise<readonly ReplicationSlotView[]> {
    this.#requireSql();
    this.#settle();
    return [...this.#slots.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, slot]) => ({
        name,
        active: this.network.nodes().some((n) => n.#upstreamNode() === this && n.#slotName === name && n.#isStreaming()),
        restartLsn: slot.lost ? null : slot.restartLsn,
        walStatus: slot.lost ? 'lost' : 'reserved',
        keptBytes: slot.lost ? null : this.#walLsn - slot.restartLsn,
        safeWalBytes: null,
      }));
  }

  async ensureReplicationSlot(name: string): Promise<boolean> {
    this.#requireSql();
    return this.#createSlot(name);
  }

  async dropReplicationSlot(name: string): Promise<boolean> {
    this.#requireSql();
    checkSlotName(name);
    const inUse = this.network.nodes().some((n) => n.#upstreamNode() === this && n.#slotName === name && n.#isStreaming());
    return !inUse && this.#slots.delete(name);
  }

  async followSlot(primary: PgEndpoint, slotName: string): Promise<SlotFollowResult> {
    this.#requireSql();
    this.#requireStandby('following a replication slot');
    const upstream = this.#resolve(primary);
    upstream.#requireSql();
    const created = upstream.#createSlot(slotName);
    const walStatus = upstream.#slots.get(slotName)?.lost ? 'lost' : 'reserved';
    this.#requireSql();
    this.#requireStandby('following a replication slot');
    const configured = this.#slotName !== slotName;
    this.#slotName = slotName;
    return { created, configured, walStatus };
  }

  async isRunning(): Promise<boolean> {
    return this.#running;
  }

  async commitGuardStatus(): Promise<CommitGuardStatus> {
    this.#requireSql();
    if (!this.#guardLoaded) return { loaded: false, created: false, enabled: false, active: false, remainingMs: null };
    const d = this.#guardDeadlineMs;
    return { loaded: true, created: true, enabled: true, active: d !== null && !this.#inRecovery, remainingMs: d === null ? null : d - this.#clock() };
  }

  async armCommitGuard(untilMs: number): Promise<boolean> {
    this.#requireSql();
    if (!this.#guardLoaded) return false;
    this.#guardDeadlineMs = untilMs;
    return true;
  }

  /** The guard's refusal of a write commit, as pgvip_commit_guard words it, or null when it lets it through. */
  #guardRefusal(what: string): string | null {
    const d = this.#guardDeadlineMs;
    if (d === null || this.#inRecovery) return null;
    const lateMs = this.#clock() - d;
    return lateMs >= 0 ? `pgvip commit guard: cannot ${what}: this server's pgvip lease ended ${lateMs.toFixed(1)} ms ago` : null;
  }

  // --- the model -------------------------------------------------------------------------------

  #createSlot(name: string): boolean {
    checkSlotName(name);
    if (this.#slots.has(name)) return false;
    this.#slots.set(name, { restartLsn: this.#walLsn, lost: false });
    return true;
  }

  #setting(name: string): string {
    return this.settings.get(name) ?? '';
  }

  #sqlFailure(): { code: ErrorCode; detail: string } | null {
    if (!this.#running) return { code: 'PGVIP_PG_UNREACHABLE', detail: `${endpointKey(this.endpoint)}: connect ECONNREFUSED` };
    if (this.#stalled) return { code: 'PGVIP_PG_TIMEOUT', detail: `${endpointKey(this.endpoint)} accepted no session within the bound` };
    return null;
  }

  #requireSql(): void {
    const failure = this.#sqlFailure();
    if (failure) throw new PgvipError(failure.code, failure.detail);
  }

  #requireStandby(what: string): void {
    if (!this.#inRecovery) throw new PgvipError('PGVIP_PG_NOT_STANDBY', `${what} needs a standby; this server is a primary`);
  }

  #resolve(endpoint: PgEndpoint): FakePostgres {
    const node = this.network.resolve(endpoint);
    if (!node) throw new PgvipError('PGVIP_PG_UNREACHABLE', `${endpointKey(endpoint)}: no such server`);
    return node;
  }

  /** This node's data becomes a copy of `primary` (base backup, or rewind + catch-up): same history and position. */
  #becomeCopyOf(primary: FakePostgres): void {
    this.#inRecovery = true;
    this.#timelineId = primary.#timelineId;
    this.#timelineEnds = new Map(primary.#timelineEnds);
    this.#walLsn = primary.#walLsn;
    this.#receiveLsn = primary.#walLsn;
    this.#hasSchema = primary.#hasSchema;
    // pg_basebackup and pg_rewind copy postgresql.auto.conf, synchronous_standby_names included.
    this.settings.set('synchronous_standby_names', primary.#setting('synchronous_standby_names'));
  }

  #upstreamNode(): FakePostgres | undefined {
    return this.#upstream === null ? undefined : this.network.resolve(this.#upstream);
  }

  /**
   * Whether this standby can stream from its upstream now: both up, link up, upstream a primary, and
   * this node's history a prefix of the upstream's (on its timeline, or not past the point where the
   * upstream left this node's timeline).
   */
  #isStreaming(): boolean {
    const upstream = this.#upstreamNode();
    if (!this.#inRecovery || !this.#running || this.#stalled || !this.#linkToUpstreamUp || !upstream) return false;
    if (!upstream.#running || upstream.#stalled || upstream.#inRecovery) return false;
    // A slot named in primary_slot_name must exist on the upstream and still hold WAL.
    if (this.#slotName !== null) {
      const slot = upstream.#slots.get(this.#slotName);
      if (slot === undefined || slot.lost) return false;
    }
    if (upstream.#timelineId === this.#timelineId) return this.#walLsn <= upstream.#walLsn;
    const end = upstream.#timelineEnds.get(this.#timelineId);
    return upstream.#timelineId > this.#timelineId && end !== undefined && this.#walLsn <= end;
  }

  /** Standbys streaming from each primary catch up with it. */
  #settle(): void {
    for (const node of this.network.nodes()) {
      const upstream = node.#upstreamNode();
      if (!upstream || !node.#isStreaming()) continue;
      node.#timelineId = upstream.#timelineId;
      node.#timelineEnds = new Map(upstream.#timelineEnds);
      node.#walLsn = upstream.#walLsn;
      node.#receiveLsn = upstream.#walLsn;
      node.#hasSchema = upstream.#hasSchema;
      // The standby confirms everything at once, so its slot keeps nothing.
      const slot = node.#slotName === null ? undefined : upstream.#slots.get(node.#slotName);
      if (slot) slot.restartLsn = upstream.#walLsn;
    }
  }

  #replies = 0;

  #replicas(): ReplicaView[] {
    const syncNames = this.#setting('synchronous_standby_names');
    return this.network
      .nodes()
      .filter((n) => n !== this && n.#upstreamNode() === this && n.#isStreaming())
      .map((n) => ({
        applicationName: n.nodeName,
        clientAddress: n.endpoint.host,
        state: 'streaming',
        syncState: syncNames !== '' && syncNames === synchronousStandbyNamesFor(n.nodeName) ? 'sync' : 'async',
        flushLsn: n.#receiveLsn,
        replayLsn: n.#walLsn,
        // A streaming standby replies all the time: a new reply at every look.
        replyTime: String(++this.#replies),
      }))
      .sort((x, y) => x.applicationName.localeCompare(y.applicationName));
  }

  #applyPendingRestart(): void {
    for (const [name, value] of this.#pendingRestart) this.settings.set(name, value);
    this.#pendingRestart.clear();
  }
}

function checkSlotName(name: string): void {
  if (!isValidSlotName(name)) throw new PgvipError('PGVIP_CONFIG_INVALID', `replication slot name ${JSON.stringify(name)} must match [a-z0-9_]{1,63}`);
}

/** Managed settings PostgreSQL only applies at server start (context 'postmaster'). */
const restartOnlySettings = new Set(['hot_standby', 'wal_log_hints', 'recovery_target_timeline']);

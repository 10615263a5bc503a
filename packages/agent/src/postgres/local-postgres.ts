// PostgresPort for the PostgreSQL server on this host: SQL through short-lived bounded sessions
// (sql-session.ts), process control through pg_ctl, rejoin through pg_rewind / pg_basebackup.
import path from 'node:path';
import { PgvipError, isPgvipError } from '@pgvip/shared';
import { updateAutoConfFile } from './auto-conf.js';
import { toHostMonotonicUs } from '../clock.js';
import { armCommitGuardIn, readCommitGuardStatus, setCommitGuardDeadline } from './commit-guard.js';
import { resolvePostgresConfig, type LocalPostgresConfig, type ResolvedPostgresConfig } from './config.js';
import { hbaFenceInstalled, setHbaFence } from './hba-fence.js';
import { parseLsn, parseLsnOrNull } from './lsn.js';
import { applyManagedSettings } from './managed-settings.js';
import { observationFromRow, observeSql, standbyTimelineSql, type ObserveRow } from './observe-query.js';
import { lookUpOsUser, type OsUser } from './os-command.js';
import { isPostmasterRunning, startPostmaster, stopPostmaster, stopPostmasterEscalating, type PgCtlContext } from './pg-ctl.js';
import {
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
  type ReplicationSlotView,
  type SlotFollowResult,
  type StopMode,
  type WriteProbeOptions,
  type WriteProbeResult,
} from './port.js';
import { configureAsStandby, conninfoFor, replaceWithBaseBackup, rewindFrom } from './rejoin.js';
import { alterSystem, reloadAndWait } from './server-config.js';
import { failoverSlotSettings, logicalSlotsLostAtFailover, logicalSlotsSql, type LogicalSlotRow } from './failover-slots.js';
import { createSlotIfMissing, dropSlotIfIdle, listSlots, renewSlotForRebuild, slotWalStatus } from './slots.js';
import { KeptSession, cancelLeadMs, pollInSession, sqlLiteral, withSession, type SqlSession } from './sql-session.js';
import { processExists, terminateUnlistedBackends } from './unlisted-backends.js';

/** The warning PostgreSQL gives when a statement timeout interrupts the wait for the synchronous standby: the commit is local only. */
const syncWaitCancelled = /canceling (the )?wait for synchronous replication/i;

export class LocalPostgres implements PostgresPort {
  readonly #config: ResolvedPostgresConfig;
  /** The heartbeat's two statements each keep a connection open (see KeptSession). */
  readonly #observeSession: KeptSession;
  readonly #probeSession: KeptSession;
  /** The commit guard is armed at every lease renewal (see commit-guard.ts). */
  readonly #guardSession: KeptSession;
  /** The last arm found the extension and set the deadline. */
  #guardArmed = false;
  /**
   * What the fence's pg_hba.conf block needs, as last read from the running server (every fence, and
   * at start through ensureManagedSettings), so a fence of a stopped server can write the block too.
   */
  #fenceTargets: FenceTargets | null = null;

  constructor(config: LocalPostgresConfig) {
    this.#config = resolvePostgresConfig(config);
    this.#observeSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
    // The probe bounds its transaction with SET LOCAL; the session's own timeout only backs that up.
    this.#probeSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
    this.#guardSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
  }

  /** Closes the kept connections (daemon shutdown). */
  close(): void {
    this.#observeSession.close();
    this.#probeSession.close();
    this.#guardSession.close();
  }

  get config(): ResolvedPostgresConfig {
    return this.#config;
  }

  #session<T>(timeoutMs: number, work: (session: SqlSession) => Promise<T>): Promise<T> {
    return withSession(this.#config, { timeoutMs, connectTimeoutMs: this.#config.timeouts.connectMs }, work);
  }

  async #processContext(): Promise<PgCtlContext> {
    return { config: this.#config, osUser: await this.#osUser() };
  }

  #osUser(): Promise<OsUser> {
    return lookUpOsUser(this.#config.osUser);
  }

  async observe(): Promise<PgObservation> {
    try {
      const [row] = await this.#observeSession.run({ timeoutMs: this.#config.timeouts.queryMs, connectTimeoutMs: this.#config.timeouts.connectMs }, (s) =>
        s.query<ObserveRow>(observeSql),
      );
      if (!row) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'the observation query returned no row');
      return observationFromRow(row);
    } catch (err) {
      if (!isPgvipError(err)) throw err;
      return { reachable: false, errorCode: err.code, detail: err.detail };
    }
  }

  async writeProbe(timeoutMs: number, options: WriteProbeOptions = {}): Promise<WriteProbeResult> {
    const startedAt = performance.now();
    const elapsed = (): number => Math.round(performance.now() - startedAt);
    try {
      await this.#probeSession.run({ timeoutMs, connectTimeoutMs: Math.min(this.#config.timeouts.connectMs, timeoutMs) }, async (s) => {
        // One round trip. The statement timeout travels with the transaction and bounds the INSERT (a
        // lock, a stalled disk) even if this agent dies; COMMIT's wait for the synchronous standby is
        // bounded by the session's cancel request instead (see sql-session.ts).
        const budgetMs = Math.max(1, Math.floor(s.remainingMs()) - cancelLeadMs(timeoutMs));
        await s.query(
          `BEGIN; SET LOCAL statement_timeout = ${budgetMs}; ${options.localCommit ? 'SET LOCAL synchronous_commit = local; ' : ''}` +
            `INSERT INTO pgvip.heartbeat AS h (node, beats, written_at) VALUES (${sqlLiteral(this.#config.nodeName)}, 1, clock_timestamp()) ` +
            `ON CONFLICT (node) DO UPDATE SET beats = h.beats + 1, written_at = excluded.written_at; COMMIT;`,
        );
        // A cancelled synchronous-commit wait still returns COMMIT: the write is local only, not acknowledged.
        if (s.notices.some((n) => syncWaitCancelled.test(n))) {
          throw new PgvipError('PGVIP_PG_TIMEOUT', `committed locally but the synchronous standby did not confirm within ${timeoutMs} ms`);
        }
      });
      return { outcome: 'ok', durationMs: elapsed() };
    } catch (err) {
      if (!isPgvipError(err)) throw err;
      if (err.code === 'PGVIP_PG_TIMEOUT') return { outcome: 'timeout', durationMs: elapsed(), detail: err.detail };
      if (err.code === 'PGVIP_PG_READ_ONLY') return { outcome: 'read-only', durationMs: elapsed(), detail: err.detail };
      return { outcome: 'error', durationMs: elapsed(), errorCode: err.code, detail: err.detail };
    }
  }

  async ensureSchema(): Promise<void> {
    await this.#session(this.#config.timeouts.queryMs, (s) =>
      // synchronous_commit local: creating the table must not hang behind a missing synchronous standby;
      // it reaches the standby with the next replicated write anyway.
      s.query(
        'SET synchronous_commit = local; CREATE SCHEMA IF NOT EXISTS pgvip; ' +
          'CREATE TABLE IF NOT EXISTS pgvip.heartbeat (node text PRIMARY KEY, beats bigint NOT NULL, written_at timestamptz NOT NULL);',
      ),
    );
  }

  async ensureManagedSettings(): Promise<ManagedSettingsReport> {
    return this.#session(this.#config.timeouts.queryMs, async (s) => {
      this.#fenceTargets = await readFenceTargets(s);
      const report = await applyManagedSettings(s);
      const changed = [...report.changed, ...(await this.#applySlotSettings(s))];
      const [version] = await s.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
      const versionNum = Number(version?.v);
      const logical = await s.query<LogicalSlotRow>(logicalSlotsSql(versionNum));
      return { ...report, changed, logicalSlotsLostAtFailover: logicalSlotsLostAtFailover(versionNum, logical) };
    });
  }

  /** max_slot_wal_keep_size, and on PostgreSQL 17+ the failover-slot settings; returns the names changed. */
  async #applySlotSettings(s: SqlSession): Promise<string[]> {
    const changes: Record<string, string> = {};
    const wantedMb = this.#config.maxSlotWalKeepSizeMb;
    if (wantedMb !== undefined) {
      // Compared in MB as pg_settings has it (current_setting shows '8GB' for 8192).
      const [row] = await s.query<{ mb: string }>("SELECT setting AS mb FROM pg_settings WHERE name = 'max_slot_wal_keep_size'");
      if (row?.mb !== String(wantedMb)) changes.max_slot_wal_keep_size = wantedMb < 0 ? '-1' : `${wantedMb}MB`;
    }
    if (this.#config.peerSlotName !== undefined) {
      const [version] = await s.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
      for (const [name, value] of Object.entries(failoverSlotSettings(Number(version?.v), this.#config.peerSlotName))) {
        if ((await currentSetting(s, name)) !== value) changes[name] = value;
      }
    }
    if (Object.keys(changes).length > 0) await alterSystem(s, changes);
    return Object.keys(changes);
  }

  async stopWalReceiverAndReadFinalLsn(): Promise<FinalWalPosition> {
    return this.#session(this.#config.timeouts.walReceiverStopMs, async (s) => {
      await requireStandby(s, 'stopping the WAL receiver');
      // An empty primary_conninfo (reloadable since PostgreSQL 13) stops the receiver and keeps it
      // stopped; terminating the walreceiver process instead would only restart it after
      // wal_retrieve_retry_interval. Persisted, so a restart does not resume streaming either.
      await alterSystem(s, { primary_conninfo: '' });
      await pollInSession(s, 'the WAL receiver to stop', async () => {
        const [row] = await s.query<{ running: number }>('SELECT count(*)::int AS running FROM pg_stat_wal_receiver WHERE pid IS NOT NULL');
        return row?.running === 0 ? true : undefined;
      });
      // A paused replay would hold the final position back forever; promotion ends the pause anyway.
      await s.query("SELECT pg_wal_replay_resume() WHERE pg_get_wal_replay_pause_state() <> 'not paused'");
      // Replay normally reaches the received position. It cannot when the stream was cut inside a
      // record (a primary frozen or cut off while it streamed a large record, or just after its WAL
      // writer flushed a page boundary inside one): that incomplete record is never replayed, and
      // pg_promote discards it. It holds no acknowledged commit (a commit is acknowledged only once
      // its whole record is flushed here). The startup process says when it has nothing left to
      // replay: it sleeps out wal_retrieve_retry_interval between rounds over its WAL sources. Seen
      // sleeping twice more than one interval apart with replay unchanged, it has read everything
      // received at least once since the receiver stopped: the rest is an incomplete record.
      let idleSince: { atMs: number; replayLsn: bigint } | null = null;
      return pollInSession(s, 'replay to reach the last received WAL', async () => {
        const [row] = await s.query<{ receive_lsn: string | null; replay_lsn: string; timeline: number; startup_wait: string | null; retry_ms: number }>(
          `SELECT pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text AS replay_lsn, ${standbyTimelineSql} AS timeline,
             (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup') AS startup_wait,
             (SELECT setting::int FROM pg_settings WHERE name = 'wal_retrieve_retry_interval') AS retry_ms`,
        );
        if (!row) return undefined;
        const receiveLsn = parseLsnOrNull(row.receive_lsn);
        const replayLsn = parseLsn(row.replay_lsn);
        const position = { receiveLsn, replayLsn, timelineId: Number(row.timeline) };
        if (receiveLsn === null || replayLsn >= receiveLsn) return position;
        const nowMs = performance.now();
        if (idleSince?.replayLsn !== replayLsn) idleSince = null;
        if (row.startup_wait !== 'RecoveryRetrieveRetryInterval') return undefined;
        idleSince ??= { atMs: nowMs, replayLsn };
        return nowMs - idleSince.atMs > Number(row.retry_ms) + 50 ? position : undefined;
      });
    });
  }

  async resumeWalReceiver(primary: PgEndpoint): Promise<void> {
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      await requireStandby(s, 'resuming the WAL receiver');
      await alterSystem(s, { primary_conninfo: conninfoFor(primary, { applicationName: this.#config.nodeName, includePassword: true }) });
    });
  }

  async setSynchronousStandby(name: string | null): Promise<void> {
    if (name !== null && !isValidStandbyName(name)) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', `standby name ${JSON.stringify(name)} must match [A-Za-z0-9_.-]{1,63}`);
    }
    const wanted = synchronousStandbyNamesFor(name);
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      // Commits waiting for a standby are released by the checkpointer once it has reloaded, a moment
      // after this returns; new commits already use the new value.
      if ((await currentSetting(s, 'synchronous_standby_names')) !== wanted) await alterSystem(s, { synchronous_standby_names: wanted });
    });
  }

  async promote(waitSeconds: number): Promise<PromoteResult> {
    return this.#session(waitSeconds * 1000 + this.#config.timeouts.queryMs, async (s) => {
      if (await isInRecovery(s)) {
        if ((await currentSetting(s, 'synchronous_standby_names')) !== '') await alterSystem(s, { synchronous_standby_names: '' });
        // The new primary must admit its clients: a fence block left from this node's past (one a
        // rejoin could not find, or copied by hand) would refuse them all.
        this.#fenceTargets = await readFenceTargets(s);
        if (await setHbaFence(this.#fenceTargets.hbaFile, null)) await reloadAndWait(s);
        const [row] = await s.query<{ promoted: boolean }>('SELECT pg_promote(true, $1) AS promoted', [waitSeconds]);
        if (!row?.promoted) throw new PgvipError('PGVIP_PG_PROMOTE_FAILED', `still in recovery ${waitSeconds} s after pg_promote`);
        return { alreadyPrimary: false, timelineId: await primaryTimeline(s) };
      }
      return { alreadyPrimary: true, timelineId: await primaryTimeline(s) };
    });
  }

  async fence(mode: FenceMode): Promise<FenceResult> {
    if (mode === 'fast-stop') {
      const ctx = await this.#processContext();
      try {
        await stopPostmasterEscalating(ctx);
      } catch (err) {
        throw new PgvipError('PGVIP_PG_FENCE_FAILED', `cannot stop the server: ${describe(err)}`, { cause: err });
      }
      await this.#persistFence();
      return { mode, terminatedBackends: 0 };
    }
    try {
      return { mode, terminatedBackends: await this.#session(this.#config.timeouts.queryMs, (s) => this.#fenceRunning(s)) };
    } catch (err) {
      if (isPgvipError(err, 'PGVIP_PG_UNREACHABLE') && !(await this.isRunning())) {
        // Nothing accepts writes now; make sure nothing will after a restart either.
        await this.#persistFence();
        return { mode, terminatedBackends: 0 };
      }
      throw isPgvipError(err, 'PGVIP_PG_FENCE_FAILED') ? err : new PgvipError('PGVIP_PG_FENCE_FAILED', describe(err), { cause: err });
    }
  }

  async unfence(): Promise<void> {
    if (!(await this.isRunning())) {
      await setHbaFence(this.#hbaFile(), null);
      await this.#persistReadOnly(false);
      await this.start();
      return;
    }
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      this.#fenceTargets = await readFenceTargets(s);
      // Both in one reload: clients are admitted again and may write.
      const hbaChanged = await setHbaFence(this.#fenceTargets.hbaFile, null);
      const readOnly = (await currentSetting(s, 'default_transaction_read_only')) !== 'off';
      if (readOnly) await alterSystem(s, { default_transaction_read_only: null });
      else if (hbaChanged) await reloadAndWait(s);
    });
  }

  async #persistReadOnly(readOnly: boolean): Promise<void> {
    await updateAutoConfFile(this.#config.dataDir, await this.#osUser(), { default_transaction_read_only: readOnly ? 'on' : null });
  }

  /** The server's pg_hba.conf: as it last said (hba_file may point outside dataDir), else the default. */
  #hbaFile(): string {
    return this.#fenceTargets?.hbaFile ?? path.join(this.#config.dataDir, 'pg_hba.conf');
  }

  /**
   * The fence of a stopped server, for whoever starts it next: read-only in postgresql.auto.conf and
   * the pg_hba.conf block with the roles last seen (none known yet: an empty block, which start()
   * fills in).
   */
  async #persistFence(): Promise<void> {
    await setHbaFence(this.#hbaFile(), this.#fenceTargets?.roles ?? []);
    await this.#persistReadOnly(true);
  }

  /**
   * The read-only fence on a running server; returns how many client sessions it ended. The order
   * matters: the pg_hba.conf block and read-only are loaded first (one reload), so a client cut off
   * below can neither log in again nor find a writable default; then every client session goes,
   * including those still logging in under the old rules. Walsenders and background processes stay:
   * a standby keeps streaming (it can catch up to the final LSN of a switchover), caches stay warm.
   */
  async #fenceRunning(s: SqlSession): Promise<number> {
    const targets = await readFenceTargets(s);
    this.#fenceTargets = targets;
    // The file's fsync and ALTER SYSTEM's overlap; one reload then loads both. reloadAndWait returns
    // once the postmaster has reloaded, so no session can log in or start read-write after this.
    const hbaWritten = setHbaFence(targets.hbaFile, targets.roles);
    hbaWritten.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
    await s.query("ALTER SYSTEM SET default_transaction_read_only = 'on'");
    await hbaWritten;
    await reloadAndWait(s, 2);
    const terminated = await terminateClientBackends(s, this.#config.dataDir);
    // A pg_hba.conf with an error anywhere is not reloaded at all, so the block is not in force: a
    // failed fence (retried, and the lease is not released early) says so rather than a false success.
    const [broken] = await s.query<{ line_number: number; error: string }>('SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL LIMIT 1');
    if (broken) {
      throw new PgvipError(
        'PGVIP_PG_FENCE_FAILED',
        `read-only is set and ${terminated} client sessions ended, but ${targets.hbaFile} line ${broken.line_number} has an error (${broken.error}), so the server ` +
          'keeps its previous rules and clients may log in again: fix that line',
      );
    }
    return terminated;
  }

  async rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult> {
    const startedAt = performance.now();
    const ctx = await this.#processContext();
    await stopPostmasterEscalating(ctx);
    // pg_rewind reads the source's timeline from its control file, which shows a promotion only after
    // the next checkpoint; without one it would report "no rewind required" for a diverged node. The
    // slot this node will stream through is made ready in the same session, before any copying: a
    // lost one is replaced, so the fresh copy is fed from a fresh reservation.
    const { slotName } = options;
    await withSession(options.primary, { timeoutMs: this.#config.timeouts.rewindMs, connectTimeoutMs: this.#config.timeouts.connectMs }, async (s) => {
      await s.query('CHECKPOINT');
      if (slotName !== undefined) await renewSlotForRebuild(s, slotName);
    });
    const rewindFailure = options.reseed === true ? 're-seed asked for: the primary can no longer feed this standby' : await rewindFrom(ctx, options.primary);
    if (rewindFailure !== null) {
      if (options.allowBaseBackup === false) throw new PgvipError('PGVIP_PG_REWIND_FAILED', rewindFailure);
      await replaceWithBaseBackup(ctx, options.primary);
    }
    await configureAsStandby(ctx, options.primary, slotName ?? null);
    // A standby serves reads: no fence block (pg_rewind and pg_basebackup replace a pg_hba.conf that
    // lives in dataDir with the primary's copy, but hba_file may point elsewhere: where it was last
    // seen here, then where the running server says; promote() checks once more).
    await setHbaFence(this.#hbaFile(), null);
    await startPostmaster(ctx);
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      this.#fenceTargets = await readFenceTargets(s);
      if (await setHbaFence(this.#fenceTargets.hbaFile, null)) await reloadAndWait(s);
    }).catch(() => undefined); // the rejoin itself succeeded; a standby that refuses reads is fixed by the next promote()
    return { path: rewindFailure === null ? 'rewind' : 'base-backup', rewindFailure, durationMs: Math.round(performance.now() - startedAt) };
  }

  async start(): Promise<void> {
    await startPostmaster(await this.#processContext());
    // A server fenced while stopped has a block with the roles known then (perhaps none): complete the
    // fence now that the server can say which roles exist, and end any session that got in meanwhile.
    if (await hbaFenceInstalled(this.#hbaFile())) {
      await this.#session(this.#config.timeouts.queryMs, (s) => this.#fenceRunning(s));
    }
  }

  async stop(mode: StopMode): Promise<void> {
    await stopPostmaster(await this.#processContext(), mode);
  }

  async replicationSlots(): Promise<readonly ReplicationSlotView[]> {
    return this.#session(this.#config.timeouts.queryMs, listSlots);
  }

  async ensureReplicationSlot(name: string): Promise<boolean> {
    return this.#session(this.#config.timeouts.queryMs, (s) => createSlotIfMissing(s, name));
  }

  async dropReplicationSlot(name: string): Promise<boolean> {
    return this.#session(this.#config.timeouts.queryMs, (s) => dropSlotIfIdle(s, name));
  }

  async followSlot(primary: PgEndpoint, slotName: string): Promise<SlotFollowResult> {
    const bounds = { timeoutMs: this.#config.timeouts.queryMs, connectTimeoutMs: this.#config.timeouts.connectMs };
    await this.#session(this.#config.timeouts.queryMs, (s) => requireStandby(s, 'following a replication slot'));
    // The slot first, on the primary: a standby told to use a slot that does not exist stops streaming
    // (and a synchronous one stops every commit) until someone creates it.
    const { created, walStatus } = await withSession(primary, bounds, async (s) => {
      const made = await createSlotIfMissing(s, slotName);
      return { created: made, walStatus: (await slotWalStatus(s, slotName)) ?? null };
    });
    const configured = await this.#session(this.#config.timeouts.queryMs, async (s) => {
      await requireStandby(s, 'following a replication slot');
      if ((await currentSetting(s, 'primary_slot_name')) === slotName) return false;
      await alterSystem(s, { primary_slot_name: slotName }); // the WAL receiver restarts with it (PostgreSQL 13+)
      return true;
    });
    return { created, configured, walStatus };
  }

  async isRunning(): Promise<boolean> {
    try {
      return await isPostmasterRunning(await this.#processContext());
    } catch {
      return false;
    }
  }

  async commitGuardStatus(): Promise<CommitGuardStatus> {
    return this.#guardSession.run(this.#guardBounds(), readCommitGuardStatus);
  }

  async armCommitGuard(untilMs: number): Promise<boolean> {
    const deadlineUs = toHostMonotonicUs(untilMs);
    // Once armed, each renewal is one statement; any failure checks everything again next time
    // (a restart without the library, a dropped extension).
    if (this.#guardArmed) {
      try {
        await this.#guardSession.run(this.#guardBounds(), (s) => setCommitGuardDeadline(s, deadlineUs));
        return true;
      } catch (err) {
        this.#guardArmed = false;
        throw err;
      }
    }
    this.#guardArmed = await this.#guardSession.run(this.#guardBounds(), (s) => armCommitGuardIn(s, deadlineUs));
    return this.#guardArmed;
  }

  #guardBounds(): { timeoutMs: number; connectTimeoutMs: number } {
    return { timeoutMs: this.#config.timeouts.queryMs, connectTimeoutMs: this.#config.timeouts.connectMs };
  }
}

interface FenceTargets {
  /** The server's hba_file setting. */
  readonly hbaFile: string;
  /** Roles the fence refuses: every role that can log in, except the agent's own (session_user). */
  readonly roles: readonly string[];
}

async function readFenceTargets(s: SqlSession): Promise<FenceTargets> {
  const [row] = await s.query<{ hba_file: string; roles: string[] }>(
    "SELECT current_setting('hba_file') AS hba_file, array(SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname <> session_user ORDER BY 1) AS roles",
  );
  if (!row) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'reading hba_file and the login roles returned no row');
  return { hbaFile: row.hba_file, roles: row.roles };
}

/**
 * Ends every client session but ours and waits until they have exited; returns how many. Only client
 * backends go (walsenders, autovacuum and background workers stay), plus the server processes not
 * listed yet, which are clients still logging in (see unlisted-backends.ts).
 */
async function terminateClientBackends(s: SqlSession, dataDir: string): Promise<number> {
  // OFFSET 0 keeps the filter inside: pg_terminate_backend must only ever see other client backends.
  const [row] = await s.query<{ pids: number[]; listed: number[]; own: number }>(
    `SELECT (SELECT coalesce(array_agg(pid), '{}')
               FROM (SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() OFFSET 0) AS others
              WHERE pg_terminate_backend(pid)) AS pids,
            array(SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL) AS listed,
            pg_backend_pid() AS own`,
  );
  const pids = row?.pids ?? [];
  const unlisted = row ? await terminateUnlistedBackends(dataDir, row.own, new Set(row.listed)) : [];
  if (pids.length + unlisted.length > 0) {
    try {
      await pollInSession(s, 'terminated backends to exit', async () => {
        const [left] = await s.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
        return left?.n === 0 && !unlisted.some(processExists) ? true : undefined;
      }, 2);
    } catch (err) {
      throw new PgvipError('PGVIP_PG_FENCE_FAILED', `read-only is set but client backends did not exit: ${describe(err)}`, { cause: err });
    }
  }
  return pids.length + unlisted.length;
}

async function isInRecovery(s: SqlSession): Promise<boolean> {
  const [row] = await s.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
  return row?.in_recovery === true;
}

async function requireStandby(s: SqlSession, what: string): Promise<void> {
  if (!(await isInRecovery(s))) throw new PgvipError('PGVIP_PG_NOT_STANDBY', `${what} needs a standby; this server is a primary`);
}

async function currentSetting(s: SqlSession, name: string): Promise<string> {
  const [row] = await s.query<{ value: string }>('SELECT current_setting($1) AS value', [name]);
  return row?.value ?? '';
}

/** The timeline a primary writes, from its current WAL file name (exact right after promotion). */
async function primaryTimeline(s: SqlSession): Promise<number> {
  const [row] = await s.query<{ timeline: number }>("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline");
  return Number(row?.timeline);
}

function describe(err: unknown): string {
  if (isPgvipError(err)) return `${err.code}: ${err.detail}`;
  return err instanceof Error ? err.message : String(err);
}

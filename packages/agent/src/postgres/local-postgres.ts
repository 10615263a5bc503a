// PostgresPort for the PostgreSQL server on this host: SQL through short-lived bounded sessions
// (sql-session.ts), process control through pg_ctl, rejoin through pg_rewind / pg_basebackup.
import path from 'node:path';
import { PgvipError, isPgvipError } from '@pgvip/shared';
import { updateAutoConfFile } from './auto-conf.js';
import { toHostMonotonicUs } from '../clock.js';
import { armCommitGuardIn, readCommitGuardStatus, setCommitGuardDeadline } from './commit-guard.js';
import { resolvePostgresConfig, type LocalPostgresConfig, type ResolvedPostgresConfig } from './config.js';
import { hbaFenceInstalled, setHbaFence } from './hba-fence.js';
import { applyManagedSettings } from './managed-settings.js';
import { ensureReplicationTransport } from './replication-transport.js';
import { observationFromRow, observeSql, type ObserveRow } from './observe-query.js';
import { stopReceiverAndReadFinalLsn } from './final-lsn.js';
import { readShutdownEnd } from './shutdown-lsn.js';
import { fenceRunningServer, readFenceTargets, type FenceTargets } from './fence-running.js';
import { currentSetting, describeError, isInRecovery, primaryTimeline, requireStandby } from './server-queries.js';
import { lookUpOsUser, type OsUser } from './os-command.js';
import { isPostmasterRunning, startPostmaster, stopPostmaster, stopPostmasterEscalating, type PgCtlContext } from './pg-ctl.js';
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
import { configureAsStandby, conninfoFor, rewindFrom } from './rejoin.js';
import { reseedFrom } from './reseed.js';
import { alterSystem, reloadAndWait } from './server-config.js';
import { failoverSlotSettings, logicalSlotCopySettings, logicalSlotsLostAtFailover, logicalSlotsSql, type LogicalSlotRow } from './failover-slots.js';
import { createSlotIfMissing, dropSlotIfIdle, listSlots, renewSlotForRebuild, slotWalStatus } from './slots.js';
import { readPrimaryTimeline, repointAndWait } from './follow.js';
import { parseSynchronousStandbyNames } from './sync-names.js';
import { applySyncSetting, catchUpTo } from './sync-setting.js';
import { KeptSession, SpareSessions, cancelLeadMs, sqlLiteral, withSession, type SqlSession } from './sql-session.js';

/** PostgreSQL's warning when a statement timeout ends the wait for the synchronous standby: a local commit only. */
const syncWaitCancelled = /canceling (the )?wait for synchronous replication/i;

export class LocalPostgres implements PostgresPort {
  readonly #config: ResolvedPostgresConfig;
  /** The heartbeat's two statements each keep a connection open (see KeptSession). */
  readonly #observeSession: KeptSession;
  readonly #probeSession: KeptSession;
  /** The commit guard is armed at every lease renewal (see commit-guard.ts). */
  readonly #guardSession: KeptSession;
  /** The effects' sessions, connected ahead of each call (see SpareSessions). */
  readonly #effectSessions: SpareSessions;
  /** The last arm found the extension and set the deadline. */
  #guardArmed = false;
  /**
   * What the fence's pg_hba.conf block needs, as last read from the running server (every fence, and
   * at start through ensureManagedSettings), so a fence of a stopped server can write the block too.
   */
  #fenceTargets: FenceTargets | null = null;
  /** The tail of the operations run through exclusive(). */
  #exclusive: Promise<void> = Promise.resolve();
  /**
   * synchronous_standby_names as last made in force by applySynchronousStandbyNames (its wait done);
   * undefined: not known (another change since, or none yet in this process).
   */
  #syncInForce: string | undefined;
  /**
   * A value setSynchronousStandby set whose wait has not ended (running, or failed): observe()
   * reports '' instead while the server's setting is this one, since commits may not wait for the
   * standby yet (docs/design.md, "When a sync setting is in force").
   */
  #syncUnconfirmed: string | null = null;
  /** primary_conninfo as it was before stopWalReceiverAndReadFinalLsn emptied it. */
  #stoppedConninfo: string | undefined;

  constructor(config: LocalPostgresConfig) {
    this.#config = resolvePostgresConfig(config);
    this.#observeSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
    // The probe bounds its transaction with SET LOCAL; the session's own timeout only backs that up.
    this.#probeSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
    this.#guardSession = new KeptSession(this.#config, this.#config.timeouts.queryMs);
    this.#effectSessions = new SpareSessions(this.#config, this.#config.timeouts.connectMs);
  }

  /** Closes the kept connections (daemon shutdown). */
  close(): void {
    this.#observeSession.close();
    this.#probeSession.close();
    this.#guardSession.close();
    this.#effectSessions.close();
  }

  get config(): ResolvedPostgresConfig {
    return this.#config;
  }

  #session<T>(timeoutMs: number, work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#effectSessions.run({ timeoutMs, connectTimeoutMs: this.#config.timeouts.connectMs }, work);
  }

  async #processContext(): Promise<PgCtlContext> {
    return { config: this.#config, osUser: await this.#osUser() };
  }

  #osUser(): Promise<OsUser> {
    return lookUpOsUser(this.#config.osUser);
  }

  async observe(timeoutMs?: number): Promise<PgObservation> {
    try {
      const bounds = this.#queryBounds(timeoutMs);
      const [row] = await this.#observeSession.run(bounds, (s) => s.query<ObserveRow>(observeSql));
      if (!row) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'the observation query returned no row');
      const obs = observationFromRow(row);
      this.#effectSessions.prepare();
      // Named but not yet in force: the snapshot must not count the standby as synchronous (its
      // catch-up target would be read while commits still go without waiting for it).
      const pending = this.#syncUnconfirmed;
      return pending !== null && obs.reachable && obs.synchronousStandbyNames === pending ? { ...obs, synchronousStandbyNames: '' } : obs;
    } catch (err) {
      if (!isPgvipError(err)) throw err;
      return { reachable: false, errorCode: err.code, detail: err.detail };
    }
  }

  async writeProbe(timeoutMs: number, options: WriteProbeOptions = {}): Promise<WriteProbeResult> {
    const startedAt = performance.now();
    const elapsed = (): number => Math.round(performance.now() - startedAt);
    try {
      const bounds = { timeoutMs, connectTimeoutMs: Math.min(this.#config.timeouts.connectMs, timeoutMs) };
      await this.#probeSession.run(bounds, async (s) => {
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
      const changed = [
        ...report.changed,
        ...(await this.#applySlotSettings(s)),
        ...(await ensureReplicationTransport(s)),
      ];
      const [version] = await s.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
      const versionNum = Number(version?.v);
      const logical = await s.query<LogicalSlotRow>(logicalSlotsSql(versionNum));
      const lost = logicalSlotsLostAtFailover(versionNum, logical, this.#config.logicalSlotCopy);
      return { ...report, changed, logicalSlotsLostAtFailover: lost };
    });
  }

  /**
   * max_slot_wal_keep_size, on PostgreSQL 17+ the failover-slot settings, before 17 what copies of
   * logical slots need (when on); returns the names changed.
   */
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
      const wanted = {
        ...failoverSlotSettings(Number(version?.v), this.#config.standbySlotNames ?? this.#config.peerSlotName),
        ...(this.#config.logicalSlotCopy === undefined ? {} : logicalSlotCopySettings(Number(version?.v))),
      };
      for (const [name, value] of Object.entries(wanted)) {
        if ((await currentSetting(s, name)) !== value) changes[name] = value;
      }
    }
    if (Object.keys(changes).length > 0) await alterSystem(s, changes);
    return Object.keys(changes);
  }

  async stopWalReceiverAndReadFinalLsn(): Promise<FinalWalPosition> {
    return this.#session(this.#config.timeouts.walReceiverStopMs, async (s) => {
      // Kept for resumeWalReceiver(): stopping empties primary_conninfo.
      const conninfo = await currentSetting(s, 'primary_conninfo');
      if (conninfo !== '') this.#stoppedConninfo = conninfo;
      return stopReceiverAndReadFinalLsn(s);
    });
  }

  async resumeWalReceiver(primary?: PgEndpoint): Promise<void> {
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      await requireStandby(s, 'resuming the WAL receiver');
      const current = await currentSetting(s, 'primary_conninfo');
      // Not stopped (a follow or a rejoin since): streaming already, from where the core last said.
      if (primary === undefined && current !== '') return;
      const conninfo = primary === undefined
        ? this.#stoppedConninfo
        : conninfoFor(primary, { applicationName: this.#config.nodeName, includePassword: true, streaming: true });
      if (conninfo === undefined || conninfo === '') {
        throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'no primary to resume the WAL receiver from: this agent did not stop it (restarted since?)');
      }
      if (current !== conninfo) await alterSystem(s, { primary_conninfo: conninfo });
      this.#stoppedConninfo = undefined;
    });
  }

  async applySynchronousStandbyNames(value: string): Promise<SyncSettingReport> {
    try {
      parseSynchronousStandbyNames(value);
    } catch (err) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', (err as Error).message);
    }
    return this.#session(this.#config.timeouts.syncSettingMs, async (s) => {
      const inForce = this.#syncInForce;
      this.#syncInForce = undefined; // until this call's wait is over
      const report = await applySyncSetting(s, value, inForce);
      this.#syncInForce = value;
      return report;
    });
  }

  async syncCatchUp(members: readonly string[], count: number, timeoutMs: number): Promise<SyncCatchUpReport> {
    return this.#session(this.#config.timeouts.syncSettingMs + timeoutMs, async (s) => {
      // L only once the setting is in force: a walsender still on the old list could release a
      // commit past L that the new members do not have.
      const value = await currentSetting(s, 'synchronous_standby_names');
      if (this.#syncInForce !== value) {
        this.#syncInForce = undefined;
        await applySyncSetting(s, value, undefined);
        this.#syncInForce = value;
      }
      return catchUpTo(s, members, count, timeoutMs);
    });
  }

  async followPrimary(primary: PgEndpoint, options: FollowOptions): Promise<FollowReport> {
    const timeoutMs = options.timeoutMs ?? this.#config.timeouts.followMs;
    const bounds = { timeoutMs: this.#config.timeouts.queryMs, connectTimeoutMs: this.#config.timeouts.connectMs };
    await this.#session(this.#config.timeouts.queryMs, (s) => requireStandby(s, 'following a new primary'));
    this.#stoppedConninfo = undefined; // a later resume must not go back to the primary of before
    // The slot first, as followSlot does: a receiver told to use a missing slot never streams.
    const timeline = await withSession(primary, bounds, async (s) => {
      if (options.slotName !== null) await createSlotIfMissing(s, options.slotName);
      return readPrimaryTimeline(s);
    });
    return this.#session(timeoutMs + this.#config.timeouts.queryMs, (s) =>
      repointAndWait(
        s,
        { endpoint: primary, name: options.name, timeline },
        { applicationName: this.#config.nodeName, slotName: options.slotName },
        timeoutMs,
      ),
    );
  }

  async setSynchronousStandby(name: string | null): Promise<void> {
    if (name !== null && !isValidStandbyName(name)) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', `standby name ${JSON.stringify(name)} must match [A-Za-z0-9_.-]{1,63}`);
    }
    const wanted = synchronousStandbyNamesFor(name);
    let before: string | undefined;
    let inForce: string | undefined;
    try {
      await this.#session(this.#config.timeouts.syncSettingMs, async (s) => {
        const current = await currentSetting(s, 'synchronous_standby_names');
        if (this.#syncInForce === wanted && current === wanted) return;
        before = current;
        // In force only once every walsender and (leaving '') the checkpointer have reloaded: until the
        // checkpointer has, a commit does not wait at all, though the standby already shows 'sync'.
        inForce = this.#syncInForce;
        this.#syncInForce = undefined;
        if (wanted !== '') this.#syncUnconfirmed = wanted;
        await applySyncSetting(s, wanted, inForce);
        this.#syncInForce = wanted;
        this.#syncUnconfirmed = null;
      });
    } catch (err) {
      if (!isPgvipError(err) || wanted === '' || before === undefined || before === wanted) throw err;
      throw await this.#putSyncBack(wanted, before, inForce, err);
    }
  }

  /**
   * After a failed set of `failed`: observe() reports '' for it, so the core sees no synchronous
   * standby and never degrades, while the checkpointer may already enforce it and every commit waits
   * for a standby that does not answer. So `before` goes back, waited in force as any set
   * (for '': every walsender; the checkpointer then wakes the waiting commits on its reload). The
   * core asks again later. Returns the error to report: the set's, saying what was put back.
   */
  async #putSyncBack(
    failed: string,
    before: string,
    inForce: string | undefined,
    err: PgvipError,
  ): Promise<PgvipError> {
    const shown = before === '' ? "''" : before;
    let restored = false;
    try {
      await this.#session(this.#config.timeouts.syncSettingMs, async (s) => {
        // Someone else changed it since (an operator, another call): theirs stands.
        if ((await currentSetting(s, 'synchronous_standby_names')) !== failed) return;
        await applySyncSetting(s, before, inForce);
        this.#syncInForce = before;
        this.#syncUnconfirmed = null;
        restored = true;
      });
    } catch (again) {
      // Still unconfirmed: observe() keeps reporting '' (the safe side for the catch-up).
      const why = isPgvipError(again) ? again.detail : String(again);
      return new PgvipError(err.code, `${err.detail}; putting synchronous_standby_names = ${shown} back failed too: ${why}`, { cause: err });
    }
    if (!restored) return new PgvipError(err.code, `${err.detail}; synchronous_standby_names was changed since, left as it is`, { cause: err });
    return new PgvipError(err.code, `${err.detail}; synchronous_standby_names = ${shown} is back in force`, { cause: err });
  }

  async promote(waitSeconds: number): Promise<PromoteResult> {
    return this.#session(waitSeconds * 1000 + this.#config.timeouts.queryMs, async (s) => {
      if (await isInRecovery(s)) {
        this.#syncInForce = undefined;
        if ((await currentSetting(s, 'synchronous_standby_names')) !== '') await alterSystem(s, { synchronous_standby_names: '' });
        // The new primary must admit its clients: a fence block left from this node's past (one a
        // rejoin could not find, or copied by hand) would refuse them all.
        this.#fenceTargets = await readFenceTargets(s);
        if (await setHbaFence(this.#fenceTargets.hbaFile, null)) await reloadAndWait(s);
        // pg_promote(true) looks every 100 ms whether the promotion ended; this wait looks every 10 ms,
        // since whatever it waits longer than needed goes into the write gap of a switchover or failover.
        const [row] = await s.query<{ signalled: boolean }>('SELECT pg_promote(false) AS signalled');
        if (!row?.signalled) throw new PgvipError('PGVIP_PG_PROMOTE_FAILED', 'pg_promote could not signal the postmaster');
        const deadline = performance.now() + waitSeconds * 1000;
        while (await isInRecovery(s)) {
          if (performance.now() > deadline) throw new PgvipError('PGVIP_PG_PROMOTE_FAILED', `still in recovery ${waitSeconds} s after pg_promote`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
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
        throw new PgvipError('PGVIP_PG_FENCE_FAILED', `cannot stop the server: ${describeError(err)}`, { cause: err });
      }
      // Both only read or write files of the stopped server, and both are in a switchover's write gap.
      const [, end] = await Promise.all([this.#persistFence(), readShutdownEnd(this.#config, ctx.osUser)]);
      return { mode, terminatedBackends: 0, ...('lsn' in end ? { finalLsn: end.lsn } : { finalLsnUnknown: end.unknown }) };
    }
    try {
      const terminatedBackends = await this.#session(this.#config.timeouts.queryMs, (s) => this.#fenceRunning(s));
      return { mode, terminatedBackends };
    } catch (err) {
      if (isPgvipError(err, 'PGVIP_PG_UNREACHABLE') && !(await this.isRunning())) {
        // Nothing accepts writes now; make sure nothing will after a restart either.
        await this.#persistFence();
        return { mode, terminatedBackends: 0 };
      }
      throw isPgvipError(err, 'PGVIP_PG_FENCE_FAILED') ? err : new PgvipError('PGVIP_PG_FENCE_FAILED', describeError(err), { cause: err });
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

  /** The read-only fence on a running server (fence-running.ts); returns how many client sessions it ended. */
  #fenceRunning(s: SqlSession): Promise<number> {
    return fenceRunningServer(s, this.#config.dataDir, (targets) => (this.#fenceTargets = targets));
  }

  async rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult> {
    return this.exclusive(() => this.#rejoinAsStandby(options));
  }

  /**
   * Runs `work` alone among the operations that stop and start this server outside the decision
   * loop's effects: the slot keeper's restart that loads copied logical slots (logical-slot-copy.ts)
   * and a rejoin. A standby stopped for the copy looks down to the decision loop, which may ask for a
   * rejoin meanwhile; that rejoin then waits for the restart instead of racing it (pg_rewind and a
   * base backup must not run while the copy starts the server).
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#exclusive.then(work, work);
    this.#exclusive = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #rejoinAsStandby(options: RejoinOptions): Promise<RejoinResult> {
    const startedAt = performance.now();
    this.#stoppedConninfo = undefined;
    const ctx = await this.#processContext();
    await stopPostmasterEscalating(ctx);
    // pg_rewind reads the source's timeline from its control file, which shows a promotion only after
    // the next checkpoint; without one it would report "no rewind required" for a diverged node. The
    // slot this node will stream through is made ready in the same session, before any copying: a
    // lost one is replaced, so the fresh copy is fed from a fresh reservation.
    const { slotName } = options;
    const bounds = { timeoutMs: this.#config.timeouts.rewindMs, connectTimeoutMs: this.#config.timeouts.connectMs };
    await withSession(options.primary, bounds, async (s) => {
      await s.query('CHECKPOINT');
      if (slotName !== undefined) await renewSlotForRebuild(s, slotName);
    });
    const rewindFailure =
      options.reseed === true
        ? 're-seed asked for: the primary can no longer feed this standby'
        : await rewindFrom(ctx, options.primary);
    const methods = options.allowReseed === false ? [] : this.#config.reseedMethods;
    const reseed = rewindFailure === null ? null : await reseedFrom(ctx, options.primary, methods, rewindFailure);
    await configureAsStandby(ctx, options.primary, slotName ?? null);
    // A standby serves reads: no fence block (pg_rewind and pg_basebackup replace a pg_hba.conf that
    // lives in dataDir with the primary's copy, but hba_file may point elsewhere: where it was last
    // seen here, then where the running server says; promote() checks once more).
    await setHbaFence(this.#hbaFile(), null);
    await startPostmaster(ctx);
    await this.#session(this.#config.timeouts.queryMs, async (s) => {
      this.#fenceTargets = await readFenceTargets(s);
      if (await setHbaFence(this.#fenceTargets.hbaFile, null)) await reloadAndWait(s);
      // The rejoin itself succeeded; a standby that refuses reads is fixed by the next promote().
    }).catch(() => undefined);
    return {
      path: reseed === null ? 'rewind' : reseed.method === 'command' ? 'command' : 'base-backup',
      rewindFailure,
      reseedFailures: reseed?.failures ?? [],
      durationMs: Math.round(performance.now() - startedAt),
    };
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
    return this.#guardSession.run(this.#queryBounds(), readCommitGuardStatus);
  }

  async armCommitGuard(untilMs: number): Promise<boolean> {
    const deadlineUs = toHostMonotonicUs(untilMs);
    // Once armed, each renewal is one statement; any failure checks everything again next time
    // (a restart without the library, a dropped extension).
    if (this.#guardArmed) {
      try {
        await this.#guardSession.run(this.#queryBounds(), (s) => setCommitGuardDeadline(s, deadlineUs));
        return true;
      } catch (err) {
        this.#guardArmed = false;
        throw err;
      }
    }
    this.#guardArmed = await this.#guardSession.run(this.#queryBounds(), (s) => armCommitGuardIn(s, deadlineUs));
    return this.#guardArmed;
  }

  /** The port's SQL bounds, or shorter ones when the caller's `timeoutMs` is (a heartbeat's look). */
  #queryBounds(timeoutMs?: number): { timeoutMs: number; connectTimeoutMs: number } {
    const { queryMs, connectMs } = this.#config.timeouts;
    const bound = Math.min(queryMs, timeoutMs ?? queryMs);
    return { timeoutMs: bound, connectTimeoutMs: Math.min(connectMs, bound) };
  }
}

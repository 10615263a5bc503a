// Copies of the primary's logical (CDC) slots on a PostgreSQL 15/16 standby, so that a consumer
// continues on the new primary after a failover (replication.logicalSlots; PostgreSQL 17+ keeps
// failover slots itself, see postgres/failover-slots.ts). The idea is the one Patroni uses for its
// permanent logical slots:
//
//   missing here          → the primary's slot state file is copied in while this standby is stopped
//                           for a moment (a standby loads slots only at start; 15 cannot create a
//                           logical slot during recovery)
//   behind the primary    → pg_replication_slot_advance to the primary's confirmed_flush_lsn, never
//                           further: the copy is at or before what the consumer confirmed, so after a
//                           failover it may see changes again, and misses none
//   ahead of the primary  → not a copy of that slot (it was dropped and made again there): dropped
//                           and copied afresh (a rejoining old primary brings none: pg_rewind empties
//                           pg_replslot)
//   gone from the primary → dropped (a copy holds WAL here and, through hot_standby_feedback, catalog
//                           rows on the primary)
//
// hot_standby_feedback (a managed setting while copying is on) carries the copies' catalog_xmin to
// the primary through this standby's physical slot, so the primary keeps the catalog rows a copy
// needs to decode after it is promoted. Runs from the slot keeper's standby round; never feeds the core.
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { PgvipError } from '@pgvip/shared';
import { formatLsn, type Lsn } from './postgres/lsn.js';
import type { ResolvedPostgresConfig } from './postgres/config.js';
import {
  advanceSlot,
  copyPreconditions,
  dropLogicalSlotIfIdle,
  installSlotFile,
  listLogicalSlots,
  oldestWalLsn,
  readSlotStateFiles,
  removeSlotDir,
  slotCatalogXmin,
  xidNotAfter,
  type LogicalSlotView,
} from './postgres/logical-slots.js';
import { lookUpOsUser } from './postgres/os-command.js';
import type { PgEndpoint, PostgresPort } from './postgres/port.js';
import { withSession } from './postgres/sql-session.js';
import { failoverSlotsSinceVersionNum } from './postgres/failover-slots.js';
import path from 'node:path';

export interface LogicalCopyPlan {
  /** recopy: the primary has the slot, so the dropped copy is copied afresh (it is in `copy` too). */
  readonly drop: readonly { readonly name: string; readonly why: string; readonly recopy: boolean }[];
  /** Slots to copy from the primary (after their drop, for those in `drop`). */
  readonly copy: readonly string[];
  readonly advance: readonly { readonly name: string; readonly to: Lsn }[];
}

export interface LogicalCopyInput {
  /** replication.logicalSlots.names: the slots to copy; empty: every persistent logical slot. */
  readonly names: readonly string[];
  readonly primary: readonly LogicalSlotView[];
  readonly local: readonly LogicalSlotView[];
  /** Slots whose last copy found this standby without the WAL from their restart_lsn (that restart_lsn). */
  readonly waiting: ReadonlyMap<string, Lsn>;
}

/** What to do on the standby this round (pure). */
export function planLogicalCopy(x: LogicalCopyInput): LogicalCopyPlan {
  const selected = (name: string) => x.names.length === 0 || x.names.includes(name);
  const source = new Map(
    x.primary
      .filter((p) => selected(p.name) && !p.temporary && p.restartLsn !== null && p.confirmedFlushLsn !== null)
      .map((p) => [p.name, p]),
  );
  const drop: { name: string; why: string; recopy: boolean }[] = [];
  const advance: { name: string; to: Lsn }[] = [];
  const present = new Set<string>();
  for (const l of x.local) {
    if (!selected(l.name)) continue;
    const p = source.get(l.name);
    if (l.active) {
      present.add(l.name); // something decodes from it here (PostgreSQL 16): left alone
      continue;
    }
    if (p === undefined) {
      drop.push({ name: l.name, why: 'it is gone from the primary', recopy: false });
      continue;
    }
    if (p.plugin !== l.plugin || p.database !== l.database) {
      drop.push({ name: l.name, why: `it is not the primary's (plugin ${l.plugin}, database ${l.database}; the primary's: ${p.plugin}, ${p.database})`, recopy: true });
      continue;
    }
    const here = l.confirmedFlushLsn ?? 0n;
    if (here > p.confirmedFlushLsn!) {
      drop.push({ name: l.name, why: `it is ahead of the primary's (${formatLsn(here)} > ${formatLsn(p.confirmedFlushLsn!)}): not a copy of it`, recopy: true });
      continue;
    }
    present.add(l.name);
    if (here < p.confirmedFlushLsn!) advance.push({ name: l.name, to: p.confirmedFlushLsn! });
  }
  const copy = [...source.values()]
    .filter((p) => !present.has(p.name) && x.waiting.get(p.name) !== p.restartLsn)
    .map((p) => p.name);
  return { drop, copy, advance };
}

export interface LogicalSlotCopierDeps {
  readonly pg: PostgresPort;
  /** This node's server (its data directory, OS user and connection). */
  readonly config: ResolvedPostgresConfig;
  readonly names: readonly string[];
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: () => number;
  /** Checked again right before the standby is stopped for a copy: still a settled standby. */
  readonly mayRestart: () => boolean;
  /** Runs the stop, install and start alone (LocalPostgres.exclusive: a rejoin waits for it). */
  readonly exclusive?: <T>(work: () => Promise<T>) => Promise<T>;
  /** Wait after a failed copy before stopping the standby again (default 60 s). */
  readonly retryMs?: number;
  /**
   * This standby's physical slot on the primary: a copy counts as kept (pgvip_agent_logical_slot_copied)
   * only once that slot's catalog_xmin holds the catalog rows the copy needs. Absent: once it exists.
   */
  readonly physicalSlot?: string;
}

/** The result of one round, for logs and tests. */
export interface LogicalCopyRound {
  readonly copied: readonly string[];
  readonly advanced: readonly string[];
  readonly dropped: readonly string[];
  /** Why a wanted slot is not copied yet, by name. */
  readonly waiting: Readonly<Record<string, string>>;
}

export function createLogicalSlotMetrics(registry: Registry): { copied: Gauge<'slot'>; behindBytes: Gauge<'slot'> } {
  const opts = { registers: [registry], labelNames: ['slot'] as const };
  return {
    copied: new Gauge({
      name: 'pgvip_agent_logical_slot_copied',
      help: "1 when this standby holds a copy of the primary's logical slot and the primary keeps the catalog rows it needs (replication.logicalSlots, PostgreSQL 15/16): a failover keeps the slot. 0 until then",
      ...opts,
    }),
    behindBytes: new Gauge({
      name: 'pgvip_agent_logical_slot_copy_behind_bytes',
      help: "Bytes the copy's confirmed position is behind the primary's slot: changes its consumer would see again after a failover",
      ...opts,
    }),
  };
}

export class LogicalSlotCopier {
  readonly #d: LogicalSlotCopierDeps;
  readonly #log: Logger;
  readonly #copied: Gauge<'slot'>;
  readonly #behind: Gauge<'slot'>;
  readonly #waiting = new Map<string, Lsn>();
  #versionNum: number | null = null;
  #nextCopyAtMs = -Infinity;

  constructor(deps: LogicalSlotCopierDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: 'logical-slots' });
    const metrics = createLogicalSlotMetrics(deps.registry);
    this.#copied = metrics.copied;
    this.#behind = metrics.behindBytes;
  }

  #local<T>(work: Parameters<typeof withSession<T>>[2]): Promise<T> {
    const t = this.#d.config.timeouts;
    return withSession(this.#d.config, { timeoutMs: t.queryMs, connectTimeoutMs: t.connectMs }, work);
  }

  #remote<T>(primary: PgEndpoint, work: Parameters<typeof withSession<T>>[2]): Promise<T> {
    const t = this.#d.config.timeouts;
    return withSession(primary, { timeoutMs: t.queryMs + 30_000, connectTimeoutMs: t.connectMs }, work);
  }

  /** One round on a settled standby of `primary`. Throws PGVIP_PG_* (the slot keeper logs it). */
  async run(primary: PgEndpoint): Promise<LogicalCopyRound> {
    this.#versionNum ??= await this.#local(async (s) => Number((await s.query<{ v: string }>("SELECT current_setting('server_version_num') AS v"))[0]?.v));
    const none: LogicalCopyRound = { copied: [], advanced: [], dropped: [], waiting: {} };
    if (this.#versionNum >= failoverSlotsSinceVersionNum) return none; // 17+: failover slots
    const source = await this.#remote(primary, listLogicalSlots);
    const local = await this.#local(listLogicalSlots);
    const plan = planLogicalCopy({ names: this.#d.names, primary: source, local, waiting: this.#waiting });
    const dropped: string[] = [];
    for (const d of plan.drop) {
      if (await this.#local((s) => dropLogicalSlotIfIdle(s, d.name))) {
        dropped.push(d.name);
        this.#log.info({ slot: d.name }, `dropped the copy of logical slot ${d.name}: ${d.why}`);
      }
    }
    const advanced = await this.#advance(plan.advance);
    const waiting: Record<string, string> = {};
    // A copy to be replaced is copied afresh only once it is gone (it may have been busy).
    const copy = plan.copy.filter((n) => dropped.includes(n) || !plan.drop.some((d) => d.name === n));
    const copied = copy.length === 0 ? [] : await this.#copy(primary, copy, waiting);
    await this.#publish(primary);
    return { copied, advanced, dropped, waiting };
  }

  async #advance(steps: LogicalCopyPlan['advance']): Promise<string[]> {
    const done: string[] = [];
    for (const step of steps) {
      try {
        await this.#local((s) => advanceSlot(s, step.name, step.to));
        done.push(step.name);
      } catch (e) {
        const message = (e as Error).message;
        if (/minimum is/.test(message)) continue; // this standby has not replayed that far yet
        if (!/has already been removed/.test(message)) throw e;
        // The copy can never decode again: drop it; it is copied afresh once the primary's moves on.
        await this.#local((s) => dropLogicalSlotIfIdle(s, step.name));
        this.#log.warn({ slot: step.name, err: e }, `dropped the copy of logical slot ${step.name}: this standby no longer has the WAL it needs (${message})`);
      }
    }
    return done;
  }

  /** Copies `names` in with one stop and start of this standby; returns the slots now here. */
  async #copy(primary: PgEndpoint, names: readonly string[], waiting: Record<string, string>): Promise<string[]> {
    const now = this.#d.clock();
    if (now < this.#nextCopyAtMs) {
      for (const n of names) waiting[n] = 'waiting after a failed copy';
      return [];
    }
    const pre = await this.#local(copyPreconditions);
    const blocker =
      pre.walLevel !== 'logical' ? `wal_level is ${pre.walLevel} here, and a standby with a logical slot does not start unless it is logical`
      : !pre.hotStandbyFeedback ? 'hot_standby_feedback is off here (the agent sets it; a restart of the agent applies it)'
      : pre.freeSlots < names.length ? `max_replication_slots has room for ${pre.freeSlots} more slot(s) here, ${names.length} needed`
      : null;
    if (blocker !== null) {
      for (const n of names) waiting[n] = blocker;
      throw new PgvipError('PGVIP_PG_SLOT_COPY_FAILED', `logical slots ${names.join(', ')} not copied: ${blocker}`);
    }
    this.#nextCopyAtMs = now + (this.#d.retryMs ?? 60_000);
    const files = await this.#remote(primary, (s) => readSlotStateFiles(s, names));
    const walDir = path.join(this.#d.config.dataDir, 'pg_wal');
    const usable = async (): Promise<string[]> => {
      const oldest = await oldestWalLsn(walDir, pre.walSegmentBytes);
      return [...files].filter(([name, f]) => {
        if (oldest !== null && f.file.restartLsn >= oldest) return true;
        this.#waiting.set(name, f.file.restartLsn);
        waiting[name] = `its restart_lsn ${formatLsn(f.file.restartLsn)} is older than this standby's oldest WAL; copied once its consumer moves on`;
        return false;
      }).map(([name]) => name);
    };
    if ((await usable()).length === 0 || !this.#d.mayRestart()) return [];
    const { pg, config } = this.#d;
    const owner = await lookUpOsUser(config.osUser);
    const exclusive = this.#d.exclusive ?? (<T>(work: () => Promise<T>) => work());
    const installed = await exclusive(async (): Promise<string[]> => {
      // Again, now that no rejoin can start: a rejoin that ran meanwhile may have changed the primary.
      if (!this.#d.mayRestart()) return [];
      this.#log.info({ slots: [...files.keys()] }, `copying logical slots ${[...files.keys()].join(', ')} from the primary: restarting this standby to load them`);
      await pg.stop('fast');
      const done: string[] = [];
      try {
        for (const name of await usable()) { // exact now: the stopped server removes no more WAL
          await installSlotFile(config.dataDir, name, files.get(name)!.bytes, owner);
          done.push(name);
        }
        await pg.start();
      } catch (e) {
        for (const name of done) await removeSlotDir(config.dataDir, name).catch(() => undefined);
        await pg.start().catch(() => undefined); // the standby must come back, with or without copies
        throw new PgvipError('PGVIP_PG_SLOT_COPY_FAILED', `copying logical slots ${done.join(', ')} failed, and the copies were removed: ${(e as Error).message}`);
      }
      return done;
    });
    if (installed.length === 0) return [];
    for (const name of installed) this.#waiting.delete(name);
    this.#nextCopyAtMs = -Infinity;
    this.#log.info({ slots: installed }, `copied logical slots ${installed.join(', ')} from the primary`);
    // Straight to the primary's confirmed position (the file is as of the primary's last checkpoint).
    // The decision loop may be rejoining this standby just now (it saw the server down): then the
    // next round moves the copies on.
    try {
      const fresh = await this.#remote(primary, listLogicalSlots);
      const targets = fresh.filter((p) => installed.includes(p.name) && p.confirmedFlushLsn !== null);
      await this.#advance(targets.map((p) => ({ name: p.name, to: p.confirmedFlushLsn! })));
    } catch (e) {
      this.#log.debug({ err: e }, 'the copies are moved to the primary\'s position next round');
    }
    return installed;
  }

  async #publish(primary: PgEndpoint): Promise<void> {
    const source = await this.#remote(primary, listLogicalSlots);
    const physical = this.#d.physicalSlot;
    // The primary keeps a copy's catalog rows once this standby's feedback (its physical slot's
    // catalog_xmin) is no newer than the copy's catalog_xmin (Patroni checks the same before it counts
    // a copy as safe).
    const held = physical === undefined ? null : await this.#remote(primary, (s) => slotCatalogXmin(s, physical));
    const kept = (l: LogicalSlotView | undefined): boolean => {
      if (l === undefined || physical === undefined) return l !== undefined;
      return held !== null && l.catalogXmin !== null && xidNotAfter(held, l.catalogXmin);
    };
    const local = new Map((await this.#local(listLogicalSlots)).map((l) => [l.name, l]));
    this.#copied.reset();
    this.#behind.reset();
    for (const p of source) {
      if (p.temporary || (this.#d.names.length > 0 && !this.#d.names.includes(p.name))) continue;
      const l = local.get(p.name);
      this.#copied.set({ slot: p.name }, kept(l) ? 1 : 0);
      if (l?.confirmedFlushLsn != null && p.confirmedFlushLsn !== null) {
        const behind = p.confirmedFlushLsn > l.confirmedFlushLsn ? p.confirmedFlushLsn - l.confirmedFlushLsn : 0n;
        this.#behind.set({ slot: p.name }, Number(behind));
      }
    }
  }
}

// Keeps the physical replication slots where the roles need them, beside the decision loop (the core
// decides roles; slots follow them and never feed back into a decision):
//
//   primary  → a slot for every other node exists here (made at promotion already; this repairs a
//              failure and covers the first primary of a cluster, which never promoted); a pgvip_
//              slot of a node no longer in the config is dropped once it has been idle for
//              orphanGraceMs (a config change rolled out node by node must not flap it)
//   standby  → it streams through its own slot on the primary (created there when missing); it keeps
//              no slot for the other nodes (a slot on a standby holds WAL at every restartpoint, and
//              nothing would ever advance it: left over from this node's time as primary, it is dropped)
//   standby whose slot the primary invalidated (wal_status 'lost': it fell further behind than
//              max_slot_wal_keep_size) → re-seeded through the rejoin path (pg_basebackup, a fresh
//              slot), with growing waits between failed attempts; it could never stream again otherwise
//
// Each round is serial and bounded by the port's timeouts; a failure is logged and retried next round.
import type { Logger } from 'pino';
import { agentRole, type AgentState } from '@pgvip/shared/core';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SlotNames } from './effects.js';
import type { LogicalSlotCopier } from './logical-slot-copy.js';
import type { PgEndpoint, PostgresPort, ReplicationSlotView } from './postgres/port.js';

/** Every node's slot: `others` (default: the peer's alone) is kept on this node while it is primary. */
export type KeptSlotNames = SlotNames;

export interface SlotKeeperDeps {
  readonly pg: PostgresPort;
  readonly slots: KeptSlotNames;
  /** How this node reaches the peer's PostgreSQL (its primary while this node is a standby). */
  readonly peerEndpoint: PgEndpoint;
  /** Every other node's PostgreSQL by node id: a standby's primary is the term's (default: the peer). */
  readonly endpoints?: Readonly<Record<string, PgEndpoint>>;
  /** How long a pgvip_ slot of no configured node stays idle before the primary drops it (default 10 min). */
  readonly orphanGraceMs?: number;
  /** The decision loop's state now. */
  readonly state: () => AgentState;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: () => number;
  /** Time between rounds (default 5 s). */
  readonly everyMs?: number;
  /** Keeps copies of the primary's logical slots on this node while it is a standby (PostgreSQL 15/16). */
  readonly logical?: LogicalSlotCopier;
}

export interface SlotMetrics {
  readonly retainedBytes: Gauge<'slot'>;
  readonly active: Gauge<'slot'>;
  readonly invalidated: Gauge<'slot'>;
  readonly reseeds: Counter<'result'>;
}

export function createSlotMetrics(registry: Registry): SlotMetrics {
  const opts = { registers: [registry] };
  const reseeds = new Counter({
    name: 'pgvip_agent_slot_reseeds_total',
    help: 'Re-seeds (pg_basebackup) of this standby after the primary invalidated its slot, by result (ok, failed)',
    labelNames: ['result'],
    ...opts,
  });
  for (const result of ['ok', 'failed']) reseeds.inc({ result }, 0);
  return {
    retainedBytes: new Gauge({
      name: 'pgvip_agent_slot_retained_wal_bytes',
      help: "Bytes of WAL a replication slot on this node holds back (current LSN minus the slot's restart_lsn): the standby's lag as the primary keeps it",
      labelNames: ['slot'],
      ...opts,
    }),
    active: new Gauge({ name: 'pgvip_agent_slot_active', help: '1 while a standby streams through the slot', labelNames: ['slot'], ...opts }),
    invalidated: new Gauge({
      name: 'pgvip_agent_slot_invalidated',
      help: "1 when PostgreSQL invalidated the slot (wal_status 'lost', past max_slot_wal_keep_size): its standby must be re-seeded",
      labelNames: ['slot'],
      ...opts,
    }),
    reseeds,
  };
}

/**
 * Only a settled standby of another node (with two nodes: the peer): a node promoting, rejoining or
 * fenced is left to the core.
 */
export function isSettledStandby(s: AgentState): boolean {
  const primary = s.durable.primaryOfTerm;
  return agentRole(s) === 'standby' && s.inFlight === null && primary !== null && primary !== s.settings.self;
}

/** The slots a primary keeps: one per other node, the peer's when the list is not given. */
export function slotsKeptByPrimary(slots: KeptSlotNames): readonly string[] {
  return slots.others ?? [slots.peer];
}

/** pgvip's own slots are named pgvip_…; any other slot is the operator's and never touched. */
const ownSlot = /^pgvip_/;

/** Wait after the n-th failed re-seed in a row: 30 s doubling, at most 10 min. */
export function reseedBackoffMs(failures: number): number {
  return failures === 0 ? 0 : Math.min(30_000 * 2 ** (failures - 1), 600_000);
}

export class SlotKeeper {
  readonly #d: SlotKeeperDeps;
  readonly #metrics: SlotMetrics;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<void> | null = null;
  #stopped = false;
  #reseedFailures = 0;
  #lastReseedAtMs = -Infinity;
  #lastProblem = '';
  /** pgvip_ slots of no configured node, idle since (this keeper's clock). */
  readonly #orphanIdleSince = new Map<string, number>();

  constructor(deps: SlotKeeperDeps) {
    this.#d = deps;
    this.#metrics = createSlotMetrics(deps.registry);
    this.#log = deps.logger.child({ component: 'slots' });
  }

  start(): void {
    const every = this.#d.everyMs ?? 5_000;
    this.#timer = setInterval(() => void this.runOnce(), every);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#round;
  }

  /** One round (tests call it directly); a round still running is awaited instead of overlapped. */
  runOnce(): Promise<void> {
    this.#round ??= this.#reconcile()
      .catch((e: unknown) => this.#problem(`slot upkeep failed: ${(e as Error).message}`, e))
      .finally(() => {
        this.#round = null;
      });
    return this.#round;
  }

  async #reconcile(): Promise<void> {
    if (this.#stopped) return;
    const s = this.#d.state();
    const role = agentRole(s);
    const { pg, slots } = this.#d;
    const kept = slotsKeptByPrimary(slots);
    if (role === 'primary') {
      for (const name of kept) {
        if (await pg.ensureReplicationSlot(name)) this.#log.info({ slot: name }, `created replication slot ${name} for a standby`);
      }
      const list = await pg.replicationSlots();
      await this.#dropOrphans(list, new Set([...kept, slots.self]));
      this.#publish(await pg.replicationSlots());
      this.#lastProblem = '';
      return;
    }
    this.#orphanIdleSince.clear();
    if (!isSettledStandby(s)) return;
    for (const name of kept) {
      if (await pg.dropReplicationSlot(name)) this.#log.info({ slot: name }, `dropped replication slot ${name}: a standby keeps none for other nodes`);
    }
    this.#publish(await pg.replicationSlots());
    const follow = await pg.followSlot(this.#upstream(s), slots.self);
    if (follow.created) this.#log.info({ slot: slots.self }, `created replication slot ${slots.self} on the primary`);
    if (follow.configured) this.#log.info({ slot: slots.self }, `streaming through replication slot ${slots.self}`);
    if (follow.walStatus !== 'lost') {
      this.#lastProblem = '';
      await this.#copyLogicalSlots(this.#upstream(s));
      return;
    }
    await this.#reseed();
  }

  /** Where this standby streams from: the term's primary. */
  #upstream(s: AgentState): PgEndpoint {
    const primary = s.durable.primaryOfTerm;
    return (primary === null ? undefined : this.#d.endpoints?.[primary]) ?? this.#d.peerEndpoint;
  }

  /**
   * Drops pgvip_ slots that belong to no configured node once idle for orphanGraceMs: a node removed
   * from the config would otherwise hold WAL here up to max_slot_wal_keep_size. An active slot, or
   * one that became active again, starts its wait over; so does a restart of the agent.
   */
  async #dropOrphans(list: readonly ReplicationSlotView[], configured: ReadonlySet<string>): Promise<void> {
    const now = this.#d.clock();
    const grace = this.#d.orphanGraceMs ?? 600_000;
    const seen = new Set<string>();
    for (const slot of list) {
      if (!ownSlot.test(slot.name) || configured.has(slot.name)) continue;
      seen.add(slot.name);
      if (slot.active) {
        this.#orphanIdleSince.delete(slot.name);
        continue;
      }
      const since = this.#orphanIdleSince.get(slot.name) ?? now;
      this.#orphanIdleSince.set(slot.name, since);
      if (now - since < grace) continue;
      if (await this.#d.pg.dropReplicationSlot(slot.name)) {
        this.#log.warn({ slot: slot.name }, `dropped replication slot ${slot.name}: no node of the config streams through it, idle for ${Math.round((now - since) / 1000)} s`);
      }
      this.#orphanIdleSince.delete(slot.name);
    }
    for (const name of [...this.#orphanIdleSince.keys()]) if (!seen.has(name)) this.#orphanIdleSince.delete(name);
  }

  /** The logical slots' copies (replication.logicalSlots); a failure here leaves the physical slot's work done. */
  async #copyLogicalSlots(primary: PgEndpoint): Promise<void> {
    if (this.#d.logical === undefined) return;
    try {
      const round = await this.#d.logical.run(primary);
      const waiting = Object.entries(round.waiting);
      if (waiting.length > 0) this.#problem(`logical slots not copied yet: ${waiting.map(([n, why]) => `${n} (${why})`).join('; ')}`, undefined);
    } catch (e) {
      this.#problem(`logical slot copy failed: ${(e as Error).message}`, e);
    }
  }

  /** The primary can no longer feed this standby: copy it afresh, with a fresh slot. */
  async #reseed(): Promise<void> {
    const { slots } = this.#d;
    const now = this.#d.clock();
    if (now - this.#lastReseedAtMs < reseedBackoffMs(this.#reseedFailures)) return;
    this.#lastReseedAtMs = now;
    this.#log.warn(
      { slot: slots.self, event: 'slot-invalidated' },
      `the primary invalidated replication slot ${slots.self} (this standby fell behind by more than max_slot_wal_keep_size): re-seeding with pg_basebackup`,
    );
    try {
      const primary = this.#upstream(this.#d.state());
      const r = await this.#d.pg.rejoinAsStandby({ primary, slotName: slots.self, reseed: true });
      this.#reseedFailures = 0;
      this.#metrics.reseeds.inc({ result: 'ok' });
      this.#log.warn({ slot: slots.self, durationMs: r.durationMs }, `re-seeded from the primary in ${Math.round(r.durationMs)} ms; streaming through a fresh slot ${slots.self}`);
    } catch (e) {
      this.#reseedFailures += 1;
      this.#metrics.reseeds.inc({ result: 'failed' });
      this.#problem(`re-seed failed (${this.#reseedFailures} in a row; next try in ${reseedBackoffMs(this.#reseedFailures) / 1000} s): ${(e as Error).message}`, e);
    }
  }

  #publish(list: readonly ReplicationSlotView[]): void {
    const m = this.#metrics;
    for (const g of [m.retainedBytes, m.active, m.invalidated]) g.reset();
    for (const slot of list) {
      m.retainedBytes.set({ slot: slot.name }, Number(slot.keptBytes ?? 0n));
      m.active.set({ slot: slot.name }, slot.active ? 1 : 0);
      m.invalidated.set({ slot: slot.name }, slot.walStatus === 'lost' ? 1 : 0);
    }
  }

  /** Warns once per distinct problem (a round repeats every few seconds), then at debug level. */
  #problem(message: string, err: unknown): void {
    this.#log[message === this.#lastProblem ? 'debug' : 'warn']({ err }, message);
    this.#lastProblem = message;
  }
}

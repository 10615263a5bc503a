// Carries out the core's effects on the ports and reports each as an EffectResult. Every effect is
// bounded by the ports' own timeouts; a failure is a result (the core retries), never a crash.
import type { Effect, EffectResult } from '@pgvip/shared/core';
import { isPgvipError } from '@pgvip/shared';
import { formatLsn } from './postgres/lsn.js';
import type { PgEndpoint, PostgresPort } from './postgres/port.js';
import type { VipPort } from './vip/port.js';
import { runFollow, runResumeWalReceiver, runSetSync, runSyncCatchUp } from './effects-nodes.js';

export interface EffectPorts {
  readonly pg: PostgresPort;
  readonly vip: VipPort;
  /** How to reach each node's PostgreSQL (for rejoin). */
  readonly endpoints: Readonly<Record<string, PgEndpoint>>;
  /** application_name of each node. */
  readonly names: Readonly<Record<string, string>>;
  readonly promoteWaitSeconds: number;
  /** Physical replication slots (replication.slots.enabled); absent: pgvip manages none. */
  readonly slots?: SlotNames;
  /** Told when a rejoin fell back from pg_rewind, or from one re-seed method to the next, and why. */
  readonly onReseed?: (detail: string) => void;
  /**
   * The quorum's record of a switchover's handover (effect quorum-handover): on etcd the handover
   * txn, ok only once it committed. Absent: the witness, which has nothing to record.
   */
  readonly quorumHandover?: (term: number, to: string) => Promise<{ readonly ok: boolean; readonly detail: string }>;
}

/** The slot each node streams through, on whichever node is primary (slotNameFor of its application_name). */
export interface SlotNames {
  /** This node's slot: named in primary_slot_name when it streams. */
  readonly self: string;
  /** The peer's slot: kept on this node while it is primary. */
  readonly peer: string;
  /**
   * Every other node's slot, all kept on this node while it is primary (three or more nodes);
   * absent: the peer's alone.
   */
  readonly others?: readonly string[];
}

export async function runEffect(id: number, effect: Effect, p: EffectPorts): Promise<EffectResult> {
  const ok = (detail: string, extra: Partial<EffectResult> = {}): EffectResult => ({ id, ok: true, detail, ...extra });
  try {
    switch (effect.kind) {
      case 'fence': {
        const r = await p.pg.fence(effect.mode);
        // A clean stop knows its last record (the shutdown checkpoint); a running server says where it is.
        const obs = r.finalLsn === undefined ? await p.pg.observe() : null;
        const observed = obs?.reachable === true ? obs.currentLsn ?? obs.receiveLsn ?? undefined : undefined;
        const finalLsn = r.finalLsn ?? observed;
        const end = r.finalLsn !== undefined ? `, WAL ends at ${formatLsn(r.finalLsn)}` : r.finalLsnUnknown !== undefined ? `, WAL end unknown: ${r.finalLsnUnknown}` : '';
        return ok(`fenced (${r.mode}, ${r.terminatedBackends} backends terminated${end})`, finalLsn === undefined ? {} : { finalLsn });
      }
      case 'unfence':
        await p.pg.unfence();
        return ok('unfenced');
      case 'drop-vip-local':
        await p.vip.dropLocal();
        return ok('VIP removed from the interface');
      case 'add-vip-local':
        await p.vip.addLocal();
        return ok('VIP added to the interface');
      case 'stop-wal-receiver': {
        const r = await p.pg.stopWalReceiverAndReadFinalLsn();
        // Replay ends short of the received position only when the stream was cut inside a record.
        const incomplete = r.receiveLsn !== null && r.replayLsn < r.receiveLsn;
        const detail = incomplete
          ? `WAL receiver stopped; replayed to ${formatLsn(r.replayLsn)}, the incomplete record after it (received to ${formatLsn(r.receiveLsn)}) is discarded`
          : `WAL receiver stopped at ${formatLsn(r.replayLsn)}`;
        return ok(detail, { finalLsn: r.replayLsn });
      }
      case 'set-sync-standby': {
        const name = effect.standby === null ? null : p.names[effect.standby] ?? effect.standby;
        await p.pg.setSynchronousStandby(name);
        return ok(`synchronous_standby_names = ${name ?? "''"}`);
      }
      case 'promote': {
        // Every other node's slot before the promotion: the old primary can rejoin only once this node
        // is a primary, and then finds the WAL since the fork kept for it, as do the standbys that
        // follow it (a slot made on a standby survives its promotion). Best effort: a promotion is
        // never held up by a slot.
        let slot = '';
        const kept = p.slots === undefined ? [] : p.slots.others ?? [p.slots.peer];
        for (const name of kept) slot += await ensureSlotBeforePromotion(p.pg, name);
        const r = await p.pg.promote(p.promoteWaitSeconds);
        return ok(`${r.alreadyPrimary ? 'already primary' : `promoted to timeline ${r.timelineId}`}${slot}`);
      }
      case 'move-vip-cloud': {
        const r = await p.vip.moveInCloud({ term: effect.term, budgetMs: effect.budgetMs });
        return ok(`VIP assigned in EC2 (request ids ${r.requestIds.join(', ') || 'none'})`);
      }
      case 'verify-vip': {
        const placement = await p.vip.verify();
        return ok(`VIP ${placement}`, { vipPlacement: placement });
      }
      case 'start-postgres':
        await p.pg.start();
        return ok('postgresql started');
      case 'restart-postgres': {
        // A planned restart (pgvip restart): a fast stop (sessions end, a clean shutdown checkpoint),
        // then a start as configured; a primary's read-only fence is in its files and comes back with it.
        const startedAt = performance.now();
        await p.pg.stop('fast');
        await p.pg.start();
        return ok(`postgresql restarted in ${Math.round(performance.now() - startedAt)} ms`);
      }
      case 'quorum-handover': {
        // The witness learns the handed-over term from the nodes' statuses: nothing to wait for.
        if (p.quorumHandover === undefined) return ok(`the witness records nothing; term ${effect.term + 1} goes to ${effect.to}`);
        const r = await p.quorumHandover(effect.term, effect.to);
        return r.ok ? ok(r.detail) : { id, ok: false, detail: r.detail };
      }
      case 'rejoin': {
        const primary = p.endpoints[effect.primary];
        if (primary === undefined) return { id, ok: false, detail: `no PostgreSQL endpoint configured for ${effect.primary}` };
        const r = await p.pg.rejoinAsStandby({ primary, ...(p.slots === undefined ? {} : { slotName: p.slots.self }) });
        const why = [
          ...(r.rewindFailure ? [`pg_rewind failed: ${r.rewindFailure}`] : []),
          ...r.reseedFailures.map((f) => `re-seed by ${f}`),
        ];
        const summary = `${r.path}${why.length > 0 ? ` (${why.join('; ')})` : ''} in ${Math.round(r.durationMs)} ms`;
        if (r.path !== 'rewind') p.onReseed?.(`rejoined as a standby of ${effect.primary} by ${summary}`);
        return ok(summary);
      }
      // N nodes (docs/design.md, "More than one standby"): the core asks for these with three or more
      // nodes, or on etcd's claim path (effects-nodes.ts).
      case 'set-sync':
        return await runSetSync(id, effect.claim, p);
      case 'sync-catch-up':
        return await runSyncCatchUp(id, effect, p);
      case 'follow':
        return await runFollow(id, effect.primary, p);
      case 'resume-wal-receiver':
        return await runResumeWalReceiver(id, effect, p);
    }
  } catch (e) {
    return { id, ok: false, detail: isPgvipError(e) ? e.message : `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/** Creates another node's slot; returns a note for the effect's detail (a failure is noted, not thrown). */
async function ensureSlotBeforePromotion(pg: PostgresPort, name: string): Promise<string> {
  try {
    return (await pg.ensureReplicationSlot(name)) ? `; slot ${name} created for the peer` : '';
  } catch (e) {
    return `; slot ${name} for the peer not created (${isPgvipError(e) ? e.message : (e as Error).message}): the slot keeper retries`;
  }
}

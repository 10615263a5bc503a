// Row 21's check (docs/design.md, Failure scenarios), from the direct writer's records
// (direct-writer.ts): did a primary that was frozen past its lease acknowledge any write after it,
// judged by the servers' own clocks? The lab's hosts share one machine, so their wall clocks agree:
// the old primary's clock_timestamp() at each of its writes is compared with (1) the commit guard's
// deadline it held in the same statement, and (2) the new primary's first write.
import type { DirectWrite } from './direct-writer.js';
import type { DbNode } from './topology.js';

export interface FreezeCycle {
  readonly primary: DbNode;
  readonly standby: DbNode;
  readonly frozenAt: number;
  readonly thawedAt: number;
  /** When the next cycle started (or the end): writes sent after it belong to the next. */
  readonly endAt: number;
}

export interface FreezeVerdict {
  /** The new primary's first acknowledged write, by its own clock. */
  readonly newPrimaryFirstMs: number | null;
  /** Writes the old primary acknowledged at or after the new primary's first (two writers). */
  readonly afterNewPrimary: readonly DirectWrite[];
  /** Writes the old primary acknowledged at or after the deadline it held (after its lease). */
  readonly afterDeadline: readonly DirectWrite[];
  /** Writes the old primary acknowledged whose answer arrived after the thaw (committed before the freeze, or not). */
  readonly ackedAfterThaw: readonly DirectWrite[];
  /** Writes the old primary refused after the thaw because its lease had ended (the guard's error). */
  readonly refusedByGuard: readonly DirectWrite[];
  /** How long past the lease end the first refusal came, as the guard said ("lease ended N ms ago"). */
  readonly firstRefusalLateMs: number | null;
}

export function judgeFreezeCycle(records: readonly DirectWrite[], c: FreezeCycle): FreezeVerdict {
  const inCycle = records.filter((w) => w.sentAt >= c.frozenAt - 1_000 && w.sentAt < c.endAt);
  const acked = inCycle.filter((w) => w.outcome === 'ok');
  const newFirst = acked
    .filter((w) => w.server === c.standby && w.sentAt >= c.frozenAt)
    .map((w) => w.writtenAtMs!)
    .sort((a, b) => a - b)[0] ?? null;
  const old = acked.filter((w) => w.server === c.primary);
  const refused = inCycle.filter((w) => w.target === c.primary && w.outcome === 'failed' && w.doneAt >= c.thawedAt && /pgvip commit guard/.test(w.error ?? ''));
  const late = refused.map((w) => /lease ended ([\d.]+) ms ago/.exec(w.error ?? '')?.[1]).find((x) => x !== undefined);
  return {
    newPrimaryFirstMs: newFirst,
    afterNewPrimary: newFirst === null ? [] : old.filter((w) => w.writtenAtMs! >= newFirst),
    afterDeadline: old.filter(
      (w) => w.deadlineMs !== null && w.deadlineMs !== undefined && w.writtenAtMs! >= w.deadlineMs,
    ),
    ackedAfterThaw: old.filter((w) => w.doneAt >= c.thawedAt),
    refusedByGuard: refused,
    firstRefusalLateMs: late === undefined ? null : Number(late),
  };
}

// The physical replication slots of a FakePostgres: the oldest WAL each keeps, and whether
// PostgreSQL invalidated it (past max_slot_wal_keep_size).
import { PgvipError } from '@pgvip/shared';
import type { Lsn } from './lsn.js';
import { isValidSlotName, type ReplicationSlotView } from './port.js';

export interface FakeSlot {
  restartLsn: Lsn;
  lost: boolean;
}

export function checkSlotName(name: string): void {
  if (!isValidSlotName(name)) {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `replication slot name ${JSON.stringify(name)} must match [a-z0-9_]{1,63}`);
  }
}

export class FakeSlots {
  readonly #slots = new Map<string, FakeSlot>();

  get(name: string): FakeSlot | undefined {
    return this.#slots.get(name);
  }

  delete(name: string): boolean {
    return this.#slots.delete(name);
  }

  clear(): void {
    this.#slots.clear();
  }

  /** Creates the slot reserving WAL from `restartLsn`; false when it exists already. */
  create(name: string, restartLsn: Lsn): boolean {
    checkSlotName(name);
    if (this.#slots.has(name)) return false;
    this.#slots.set(name, { restartLsn, lost: false });
    return true;
  }

  /** pg_replication_slots on a server at `currentLsn`; `active(name)`: a WAL sender streams through it. */
  views(currentLsn: Lsn, active: (name: string) => boolean): ReplicationSlotView[] {
    return [...this.#slots.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, slot]) => ({
        name,
        active: active(name),
        restartLsn: slot.lost ? null : slot.restartLsn,
        walStatus: slot.lost ? 'lost' : 'reserved',
        keptBytes: slot.lost ? null : currentLsn - slot.restartLsn,
        safeWalBytes: null,
      }));
  }
}

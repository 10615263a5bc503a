// A replication slot's state file (pg_replslot/<name>/state), as PostgreSQL 15 and 16 write it.
//
// Before PostgreSQL 17 the only way to have a logical slot on a standby that continues the primary's
// is to copy this file over and restart the standby, which reads pg_replslot at start (what Patroni
// does for its permanent logical slots). The file is read from the primary over SQL and written into
// the standby's data directory by the agent, so before a byte is written it is checked here the way
// PostgreSQL checks it at start: a file PostgreSQL would reject makes the standby refuse to start
// (a checksum mismatch is a PANIC), which must never be the result of a copy.
//
// Layout (src/include/replication/slot.h, ReplicationSlotOnDisk; little-endian, 64-bit builds):
//   0 magic, 4 CRC-32C of everything from offset 8, 8 version, 12 length of the persistent data,
//   16 ReplicationSlotPersistentData: name[64], database oid, persistency, xmin, catalog_xmin,
//   restart_lsn (96), 15: invalidated_at / 16: invalidated cause (104), confirmed_flush (112),
//   two_phase_at (120), two_phase (128), plugin[64] (129), padded to 184.
import { PgvipError } from '@pgvip/shared';

const magic = 0x1051ca1;
const persistentDataBytes = 184;
/** SLOT_VERSION by PostgreSQL major: 2 in 15, 3 in 16 (the invalidation cause replaced invalidated_at). */
const knownVersions: ReadonlySet<number> = new Set([2, 3]);

export interface SlotStateFile {
  readonly name: string;
  /** Oid of the slot's database; 0 for a physical slot. */
  readonly databaseOid: number;
  /** 0: persistent (only persistent slots are on disk for long). */
  readonly persistency: number;
  readonly catalogXmin: number;
  readonly restartLsn: bigint;
  readonly confirmedFlushLsn: bigint;
  readonly invalidated: boolean;
  readonly plugin: string;
}

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), as PostgreSQL's COMP_CRC32C/FIN_CRC32C compute it. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
}

function bad(name: string, why: string): PgvipError {
  return new PgvipError('PGVIP_PG_SLOT_COPY_FAILED', `the state file of replication slot ${name} ${why}; it was not copied`);
}

/**
 * Parses and checks a logical slot's state file read from the primary. Throws
 * PGVIP_PG_SLOT_COPY_FAILED when PostgreSQL would reject it, or it is not the persistent, valid
 * logical slot `expectedName`.
 */
export function parseSlotStateFile(bytes: Buffer, expectedName: string): SlotStateFile {
  if (bytes.length < 16 || bytes.readUInt32LE(0) !== magic) throw bad(expectedName, 'has no slot file magic number');
  const version = bytes.readUInt32LE(8);
  if (!knownVersions.has(version)) throw bad(expectedName, `has version ${version}, which pgvip copies only from PostgreSQL 15 and 16 (versions 2, 3)`);
  const length = bytes.readUInt32LE(12);
  if (length !== persistentDataBytes || bytes.length !== 16 + length) {
    throw bad(expectedName, `is ${bytes.length} bytes with a stated length of ${length}, not the ${16 + persistentDataBytes} of a 64-bit build`);
  }
  if (crc32c(bytes.subarray(8)) !== bytes.readUInt32LE(4)) throw bad(expectedName, 'fails its checksum (a torn or damaged read)');
  const d = bytes.subarray(16);
  const parsed: SlotStateFile = {
    name: cString(d.subarray(0, 64)),
    databaseOid: d.readUInt32LE(64),
    persistency: d.readUInt32LE(68),
    catalogXmin: d.readUInt32LE(76),
    restartLsn: d.readBigUInt64LE(80),
    // 15: invalidated_at, an LSN; 16: the invalidation cause, an enum (0: not invalidated).
    invalidated: version === 2 ? d.readBigUInt64LE(88) !== 0n : d.readUInt32LE(88) !== 0,
    confirmedFlushLsn: d.readBigUInt64LE(96),
    plugin: cString(d.subarray(113, 177)),
  };
  if (parsed.name !== expectedName) throw bad(expectedName, `names slot ${JSON.stringify(parsed.name)}`);
  if (parsed.databaseOid === 0 || parsed.plugin === '') throw bad(expectedName, 'is not a logical slot\'s');
  if (parsed.persistency !== 0) throw bad(expectedName, 'is not a persistent slot\'s');
  if (parsed.invalidated || parsed.restartLsn === 0n) throw bad(expectedName, 'is an invalidated slot\'s (it no longer reserves WAL)');
  return parsed;
}

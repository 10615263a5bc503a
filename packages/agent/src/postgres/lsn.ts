// WAL positions (LSNs). PostgreSQL prints them as 'X/Y' (two 32-bit hex halves) and they can exceed
// 2^53, so we carry them as bigint: exact, totally ordered, and subtractable into byte counts.
// The wire layer turns them back into 'X/Y' with formatLsn; there is no other representation.

export type Lsn = bigint;

const lsnText = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses PostgreSQL's 'X/Y' text form. Throws a TypeError on anything else (a bug, not an outage). */
export function parseLsn(text: string): Lsn {
  const m = lsnText.exec(text.trim());
  if (!m) throw new TypeError(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** parseLsn for nullable SQL results (pg_last_wal_receive_lsn() is NULL on a standby that never streamed). */
export function parseLsnOrNull(text: string | null | undefined): Lsn | null {
  return text === null || text === undefined ? null : parseLsn(text);
}

/** The 'X/Y' form PostgreSQL prints (upper-case hex, no padding), e.g. 0/3000148. */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > 0xffff_ffff_ffff_ffffn) throw new RangeError(`LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** -1, 0 or 1, for Array.prototype.sort and for readable comparisons. */
export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Bytes of WAL from `behind` up to `ahead`; 0 when `behind` is already at or past `ahead` (lag never goes
 * negative).
 */
export function lsnBytesBetween(ahead: Lsn, behind: Lsn): bigint {
  return ahead > behind ? ahead - behind : 0n;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}

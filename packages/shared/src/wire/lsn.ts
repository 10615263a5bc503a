// PostgreSQL LSNs in their text form. PostgreSQL prints a 64-bit WAL position as two 32-bit halves in
// hex, 'X/Y' (e.g. '16/B374D848'); pgvip carries exactly that text on the wire, so a value read from
// pg_current_wal_lsn()::text can be sent unchanged and a person can paste it into psql.
import type { Lsn } from '../core/messages.js';

/** The largest WAL position PostgreSQL can name: 'FFFFFFFF/FFFFFFFF'. */
export const MAX_LSN: Lsn = (1n << 64n) - 1n;

// Each half is 1–8 hex digits, as PostgreSQL's pg_lsn input accepts. Eight digits per half caps the
// value at 64 bits, so an over-long LSN is rejected by the pattern rather than silently truncated.
const lsnPattern = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Why `text` is not an LSN, or null when it is one. */
export function lsnProblem(text: string): string | null {
  if (lsnPattern.test(text)) return null;
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return `'${shown}' is not a PostgreSQL LSN: expected two groups of 1–8 hex digits separated by '/', e.g. '16/B374D848'`;
}

/** Parses PostgreSQL's 'X/Y' text into a byte offset; throws RangeError on anything else. */
export function parseLsn(text: string): Lsn {
  const match = lsnPattern.exec(text);
  if (match === null) throw new RangeError(lsnProblem(text) ?? 'not an LSN');
  const [, high = '', low = ''] = match;
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/** Formats a byte offset the way PostgreSQL prints it: upper-case hex halves without padding. */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError(`${lsn} is outside the LSN range 0…2^64−1`);
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

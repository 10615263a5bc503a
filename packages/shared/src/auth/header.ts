// The x-pgvip-auth header, on requests and on replies:
//
//   request  v1 cluster=prod sender=db-a to=witness epoch=<32 hex> boot=<32 hex> seq=<n> mac=<64 hex>
//   reply    v1 cluster=prod sender=witness epoch=<32 hex> boot=<request's boot> seq=<request's seq> mac=<64 hex>
//   disabled none cluster=prod sender=db-a to=witness   (reply: none cluster=prod sender=witness)
//
// `epoch` is the receiving node's epoch as the sender knows it (request) or the responder's current
// epoch (reply); `boot` and `seq` identify the request (see replay.ts and verifier.ts).
//
// Parsing is strict — fixed field order, single spaces, lower-case hex, no leading zeros — so every
// header has exactly one spelling: a changed byte is always a changed value or a malformed header.
import { randomBytes } from 'node:crypto';
import type { NodeId } from '../core/messages.js';
import { PgvipError } from '../errors.js';
import { isValidName } from '../wire/fields.js';

export const AUTH_HEADER = 'x-pgvip-auth';

/** Headers as Node and undici hand them over: lower-case names, one value or several. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

export type Direction = 'request' | 'reply';

export interface SignedFields {
  readonly scheme: 'v1';
  readonly cluster: string;
  readonly sender: NodeId;
  readonly epoch: string;
  readonly boot: string;
  readonly seq: number;
  readonly mac: string;
}

export interface UnsignedFields {
  readonly scheme: 'none';
  readonly cluster: string;
  readonly sender: NodeId;
}

/** A request header also names its recipient. */
export type RequestAuthHeader = (SignedFields | UnsignedFields) & { readonly to: NodeId };
export type ReplyAuthHeader = SignedFields | UnsignedFields;

const layouts = {
  request: { v1: ['cluster', 'sender', 'to', 'epoch', 'boot', 'seq', 'mac'], none: ['cluster', 'sender', 'to'] },
  reply: { v1: ['cluster', 'sender', 'epoch', 'boot', 'seq', 'mac'], none: ['cluster', 'sender'] },
} as const;

// Far longer than any valid header; stops a hostile header before any work is done on it.
const MAX_HEADER_LENGTH = 512;

const valueRules: Readonly<Record<string, { test: (v: string) => boolean; rule: string }>> = {
  cluster: { test: isValidName, rule: 'a cluster name' },
  sender: { test: isValidName, rule: 'a node id' },
  to: { test: isValidName, rule: 'a node id' },
  epoch: { test: isRandomId, rule: '32 lower-case hex digits' },
  boot: { test: isRandomId, rule: '32 lower-case hex digits' },
  seq: { test: (v) => /^[1-9][0-9]{0,15}$/.test(v) && Number.isSafeInteger(Number(v)), rule: 'a positive whole number' },
  mac: { test: (v) => /^[0-9a-f]{64}$/.test(v), rule: '64 lower-case hex digits' },
};

/** Boot ids and epochs: 128 random bits as lower-case hex. */
export function isRandomId(text: string): boolean {
  return /^[0-9a-f]{32}$/.test(text);
}

export function newRandomId(): string {
  return randomBytes(16).toString('hex');
}

/** The epoch a client sends before it has heard from a peer: never a peer's epoch, so always refused. */
export const UNKNOWN_EPOCH = '0'.repeat(32);

export function formatRequestHeader(h: RequestAuthHeader): string {
  return format(h, layouts.request[h.scheme]);
}

export function formatReplyHeader(h: ReplyAuthHeader): string {
  return format(h, layouts.reply[h.scheme]);
}

function format(h: object, layout: readonly string[]): string {
  const fields = h as Record<string, string | number>;
  return [fields['scheme'], ...layout.map((name) => `${name}=${fields[name]}`)].join(' ');
}

/** The header's value; PGVIP_AUTH_MISSING when absent. */
export function readAuthHeader(headers: HeaderBag, direction: Direction, status?: number): string {
  const raw = headers[AUTH_HEADER];
  const values = raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw;
  if (values.length === 0) {
    const why =
      direction === 'request'
        ? `the request has no ${AUTH_HEADER} header; every peer request must be signed with the cluster key`
        : `the reply (HTTP ${status ?? '?'}) has no ${AUTH_HEADER} header; the peer may have rejected this node's request before it could sign an answer`;
    throw new PgvipError('PGVIP_AUTH_MISSING', why);
  }
  if (values.length > 1) throw malformed(direction, `it appears ${values.length} times`);
  return values[0] ?? '';
}

export function parseRequestHeader(value: string): RequestAuthHeader {
  return parse(value, 'request') as unknown as RequestAuthHeader;
}

export function parseReplyHeader(value: string): ReplyAuthHeader {
  return parse(value, 'reply') as unknown as ReplyAuthHeader;
}

function parse(value: string, direction: Direction): Record<string, string | number> {
  if (value.length > MAX_HEADER_LENGTH) throw malformed(direction, `it is ${value.length} characters long`);
  const [scheme = '', ...pairs] = value.split(' ');
  if (scheme !== 'v1' && scheme !== 'none') throw malformed(direction, `unknown scheme '${clip(scheme)}' (expected v1)`);
  const layout: readonly string[] = layouts[direction][scheme];
  if (pairs.length !== layout.length) {
    throw malformed(direction, `expected the fields ${layout.join(', ')} in that order, separated by single spaces`);
  }
  const out: Record<string, string | number> = { scheme };
  layout.forEach((name, i) => {
    const pair = pairs[i] ?? '';
    if (!pair.startsWith(`${name}=`)) throw malformed(direction, `field ${i + 1} must be ${name}=…, found '${clip(pair)}'`);
    const text = pair.slice(name.length + 1);
    const rule = valueRules[name];
    if (rule !== undefined && !rule.test(text)) throw malformed(direction, `${name} must be ${rule.rule}, found '${clip(text)}'`);
    out[name] = name === 'seq' ? Number(text) : text;
  });
  return out;
}

function malformed(direction: Direction, why: string): PgvipError {
  return new PgvipError('PGVIP_AUTH_BAD_MAC', `the ${direction}'s ${AUTH_HEADER} header is malformed: ${why}`);
}

// Header text is attacker-controlled; only a short, printable excerpt goes into error details.
function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}

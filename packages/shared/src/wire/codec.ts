// Turning protocol messages into JSON and back. Decoding is where untrusted bytes become typed
// values, so every failure is a coded error whose detail names the offending field.
import { z } from 'zod';
import type { AgentStatus, PeerReply, PeerRequest } from '../core/messages.js';
import { PROTOCOL_VERSION } from '../core/messages.js';
import { MAX_TERM } from '../core/terms.js';
import { PgvipError } from '../errors.js';
import { termRangeRule } from './fields.js';
import { agentStatusSchema, schemasByKind } from './messages.js';

/** Every message that crosses the wire. */
export type ProtocolMessage = PeerRequest | PeerReply | AgentStatus;

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };
/** A message in its wire form: plain JSON data (LSNs as 'X/Y' text). */
export type EncodedMessage = { readonly [field: string]: JsonValue };

// Most messages name their schema by `kind`; AgentStatus is the one without a kind.
function schemaOf(message: ProtocolMessage): z.ZodType<ProtocolMessage, EncodedMessage> {
  const schema = 'kind' in message ? schemasByKind[message.kind] : agentStatusSchema;
  return schema as unknown as z.ZodType<ProtocolMessage, EncodedMessage>;
}

/**
 * The wire form of a message, validated against its schema on the way out: a node that is about to
 * send something its peers would reject learns it here, with the field named, instead of from them.
 */
export function encodeMessage(message: ProtocolMessage): EncodedMessage {
  const result = z.safeEncode(schemaOf(message), message);
  if (!result.success) {
    const kind = 'kind' in message ? message.kind : 'agent status';
    throw new Error(`refusing to send an invalid ${kind} message: ${describeIssues(result.error.issues, message)}`);
  }
  return result.data;
}

/** The HTTP body for a message: its wire form as JSON text. */
export function serializeMessage(message: ProtocolMessage): string {
  return JSON.stringify(encodeMessage(message));
}

/**
 * Parses a peer's message (already JSON-parsed) with `schema`. A different protocol version gets its
 * own error (PGVIP_PROTOCOL_VERSION) so a mixed-version cluster is diagnosed as such, not as garbage;
 * so does a term beyond the bound (PGVIP_TERM_OUT_OF_RANGE: a broken or forged sender, not a
 * protocol mismatch); any other mismatch is PGVIP_BAD_REQUEST naming each failing field.
 */
export function decodeMessage<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  checkProtocolVersion(input);
  const result = z.safeDecode(schema, input as z.input<S>);
  if (result.success) return result.data;
  const beyond = result.error.issues.filter((issue) => isTermBeyondBound(issue, input));
  if (beyond.length === 0) throw new PgvipError('PGVIP_BAD_REQUEST', describeIssues(result.error.issues, input));
  // One line per such field (2^53 also fails the whole-number check), then whatever else failed.
  const fields = [...new Set(beyond.map((issue) => issue.path[0]!))];
  const lines = fields.map((field) => `${String(field)}: ${String((input as Record<PropertyKey, unknown>)[field])} is out of range: ${termRangeRule}`);
  const others = result.error.issues.filter((issue) => !isTermBeyondBound(issue, input));
  if (others.length > 0) lines.push(describeIssues(others, input));
  throw new PgvipError('PGVIP_TERM_OUT_OF_RANGE', lines.join('; '));
}

/** The fields that hold terms, in every message that has them. */
const termFields: ReadonlySet<PropertyKey> = new Set(['term', 'lastTerm']);

// Judged on the value sent, not on which zod check fired: 2^48 + 1, 2^53 and 1e300 are all beyond it.
function isTermBeyondBound(issue: z.core.$ZodIssue, input: unknown): boolean {
  if (issue.path.length !== 1 || !termFields.has(issue.path[0]!)) return false;
  const value: unknown = (input as Record<PropertyKey, unknown>)[issue.path[0]!];
  return typeof value === 'number' && value > MAX_TERM;
}

/** Parses a raw HTTP body (JSON text or its bytes) into a message; bad JSON is PGVIP_BAD_REQUEST too. */
export function decodeMessageBody<S extends z.ZodType>(schema: S, body: string | Uint8Array): z.output<S> {
  const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: false }).decode(body);
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (e) {
    throw new PgvipError('PGVIP_BAD_REQUEST', `the body is not JSON: ${(e as Error).message}`);
  }
  return decodeMessage(schema, input);
}

function checkProtocolVersion(input: unknown): void {
  if (typeof input !== 'object' || input === null || !('v' in input)) return; // the schema reports it
  const version: unknown = input.v;
  if (typeof version === 'number' && version !== PROTOCOL_VERSION) {
    throw new PgvipError(
      'PGVIP_PROTOCOL_VERSION',
      `the peer speaks protocol version ${version}, this node speaks version ${PROTOCOL_VERSION}; upgrade both nodes to the same pgvip release`,
    );
  }
}

// A hostile or broken peer can produce thousands of issues; the first few say what is wrong.
const MAX_ISSUES_SHOWN = 5;

/** One line per failing field, e.g. "pg.lsn: '1/XYZ' is not a PostgreSQL LSN …; seq: missing". */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string {
  const lines = issues.flatMap((issue) => describeIssue(issue, input));
  const shown = lines.slice(0, MAX_ISSUES_SHOWN).join('; ');
  const hidden = lines.length - MAX_ISSUES_SHOWN;
  return hidden > 0 ? `${shown}; and ${hidden} more` : shown;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${fieldPath([...issue.path, key])}: unexpected field`);
  }
  if (!hasField(input, issue.path)) {
    const expected = issue.code === 'invalid_type' ? ` (expected ${issue.expected})` : '';
    return [`${fieldPath(issue.path)}: missing${expected}`];
  }
  return [`${fieldPath(issue.path)}: ${issue.message}`];
}

function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(message)';
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

// Distinguishes "field absent" from "field present with the wrong type" for a clearer message.
function hasField(input: unknown, path: readonly PropertyKey[]): boolean {
  let node = input;
  for (const key of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return false;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return true;
}

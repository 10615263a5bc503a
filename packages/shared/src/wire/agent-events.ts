// Protocol v2, its one message so far: the witness pulls an agent's own events (a VIP moved, a VIP
// step failing, a rejoin that failed and why, a promotion vetoed by the before-promote hook, a
// re-seed method that fell back to the next) with every poll, and hands them to its notification
// channels (docs/protocol.md, "Agent events").
//
// Why a pull, not a push: the witness already polls each agent every heartbeat, so the pull adds
// no connection, no retry loop and no queue of unsent events to the agent, whose loop must never
// wait on a notification. The agent keeps its last events in a bounded ring; the witness asks for
// those after its cursor. An old agent answers the path with an unsigned 404 and an old witness
// never asks, so both mixes of an upgrade keep working, with nothing but these notifications lost.
import { z } from 'zod';
import { PgvipError } from '../errors.js';
import { clusterNameSchema, counterSchema, durationMsSchema, nodeIdSchema, reasonSchema, termSchema } from './fields.js';

export const AGENT_EVENTS_VERSION = 2;
export const agentEventsPath = '/v2/events';

/** Events one reply carries at most; the rest come with the next poll. */
export const agentEventsPerReply = 32;

/**
 * The events an agent reports to the witness: the ones only the agent sees. Events the witness
 * records itself from its own view (failover, fenced, rejoined, ...) are not sent twice.
 */
export const agentEventNames = ['vip-moved', 'vip-error', 'rejoin-failed', 'promotion-vetoed', 'reseed-fallback'] as const;
export type AgentEventName = (typeof agentEventNames)[number];

export interface AgentEvent {
  /** The agent's number for it, counting up from 1 in each event log (process). */
  readonly seq: number;
  readonly event: AgentEventName;
  /** The agent's term when it happened. */
  readonly term: number;
  /** How long ago it happened, on the agent's monotonic clock, when the reply was made. */
  readonly ageMs: number;
  readonly detail: string;
}

export interface AgentEventsReply {
  readonly v: 2;
  readonly kind: 'agent-events';
  readonly cluster: string;
  readonly term: number;
  readonly from: string;
  /** The event log's id: random per agent process, so a restarted agent's seq 1 is not taken for an old one. */
  readonly log: string;
  /** The last seq the agent has given out (a cursor at it is up to date). */
  readonly last: number;
  readonly events: readonly AgentEvent[];
}

const logIdPattern = /^[0-9a-f]{32}$/;

export const agentEventSchema = z.strictObject({
  seq: counterSchema.min(1),
  event: z.enum(agentEventNames),
  term: termSchema,
  ageMs: durationMsSchema,
  detail: reasonSchema,
});

export const agentEventsReplySchema = z.strictObject({
  v: z.literal(AGENT_EVENTS_VERSION),
  kind: z.literal('agent-events'),
  cluster: clusterNameSchema,
  term: termSchema,
  from: nodeIdSchema,
  log: z.string().regex(logIdPattern, { error: 'an event log id is 32 lower-case hex digits' }),
  last: counterSchema,
  events: z.array(agentEventSchema).max(agentEventsPerReply, { error: `at most ${agentEventsPerReply} events per reply` }),
});

/** Where the witness's reading stands: the log it read last, and the last seq it took from it. */
export interface AgentEventsCursor {
  readonly log: string;
  readonly after: number;
}

/** The request path for a cursor; null asks for everything the agent still holds. */
export function agentEventsRequestPath(cursor: AgentEventsCursor | null): string {
  return cursor === null ? agentEventsPath : `${agentEventsPath}?log=${cursor.log}&after=${cursor.after}`;
}

/** The cursor of a request URL (path and query as received). Throws PGVIP_BAD_REQUEST (400). */
export function parseAgentEventsCursor(url: string): AgentEventsCursor | null {
  const q = url.indexOf('?');
  if (q < 0) return null;
  const params = new URLSearchParams(url.slice(q + 1));
  const keys = [...params.keys()];
  const log = params.get('log');
  const after = params.get('after');
  const unknown = keys.filter((k) => k !== 'log' && k !== 'after');
  if (unknown.length > 0 || keys.length !== 2 || log === null || after === null) {
    throw new PgvipError('PGVIP_BAD_REQUEST', `${agentEventsPath} takes either no query or exactly log=<32 hex digits>&after=<seq>, got ?${url.slice(q + 1, q + 201)}`);
  }
  if (!logIdPattern.test(log)) throw new PgvipError('PGVIP_BAD_REQUEST', `log: an event log id is 32 lower-case hex digits, got ${JSON.stringify(log.slice(0, 64))}`);
  if (!/^\d{1,15}$/.test(after)) throw new PgvipError('PGVIP_BAD_REQUEST', `after: a whole number of at most 15 digits, got ${JSON.stringify(after.slice(0, 64))}`);
  return { log, after: Number(after) };
}

/** Parses an events reply body. Throws PGVIP_BAD_REQUEST naming the failing fields. */
export function decodeAgentEventsReply(body: string): AgentEventsReply {
  let input: unknown;
  try {
    input = JSON.parse(body);
  } catch (e) {
    throw new PgvipError('PGVIP_BAD_REQUEST', `the events reply is not JSON: ${(e as Error).message}`);
  }
  const result = agentEventsReplySchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  throw new PgvipError('PGVIP_BAD_REQUEST', `the events reply does not parse: ${problems.join('; ')}`);
}

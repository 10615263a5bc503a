// Where each protocol request goes: HTTP method, path, the schemas of its body and of its reply, and
// which daemons serve it. Servers register their routes from this table and clients address their
// requests with it, so the two cannot disagree about a path.
//
// Paths carry the protocol's major version (/v1/...). A path, like any wire value, never changes
// meaning once released; a new version gets new paths beside the old ones.
import type { z } from 'zod';
import type { Ack, AgentStatus, LeaseReply, PeerRequest, SyncUpdateReply, VoteReply } from '../core/messages.js';
import type { Equals, Expect } from './exact.js';
import type { agentStatusV1Of } from './messages.js';

type AgentStatusV1 = ReturnType<typeof agentStatusV1Of>;
import {
  ackSchema,
  agentStatusSchema,
  agentStatusV1Schema,
  handoverSchema,
  leaseReleaseSchema,
  leaseReplySchema,
  leaseRequestSchema,
  manualPromoteSchema,
  positionClearSchema,
  restartRequestSchema,
  switchoverRequestSchema,
  syncUpdateReplySchema,
  syncUpdateSchema,
  voteReplySchema,
  voteRequestSchema,
} from './messages.js';

export type Daemon = 'agent' | 'witness';

export interface EndpointSpec {
  readonly method: 'GET' | 'POST';
  readonly path: `/v1/${string}` | `/v2/${string}`;
  /** The schema of the JSON body, or null for a GET without one. */
  readonly request: z.ZodType | null;
  readonly reply: z.ZodType;
  readonly servedBy: readonly Daemon[];
}

/**
 * Endpoint names: the `kind` of the request message sent there, or 'status' for GET /v1/status and
 * 'status-v2' for GET /v2/status.
 */
export type EndpointName = PeerRequest['kind'] | 'status' | 'status-v2';

export const endpoints = {
  /** An agent's report on itself; the witness and the peer agent poll it every heartbeat. */
  status: { method: 'GET', path: '/v1/status', request: null, reply: agentStatusV1Schema, servedBy: ['agent'] },
  /**
   * Protocol v2: the status with the optional fields added since v1 (a planned restart, pending
   * restart). Peers ask it first and fall back to /v1/status when an agent predates it.
   */
  'status-v2': { method: 'GET', path: '/v2/status', request: null, reply: agentStatusSchema, servedBy: ['agent'] },
  /** The primary renews its lease with the witness and with the standby. */
  'lease-request': { method: 'POST', path: '/v1/lease', request: leaseRequestSchema, reply: leaseReplySchema, servedBy: ['agent', 'witness'] },
  /** The fenced primary gives its lease back early (fast path). */
  'lease-release': { method: 'POST', path: '/v1/release', request: leaseReleaseSchema, reply: ackSchema, servedBy: ['agent', 'witness'] },
  /** A standby asks the witness for its vote for the next term. */
  'vote-request': { method: 'POST', path: '/v1/vote', request: voteRequestSchema, reply: voteReplySchema, servedBy: ['witness'] },
  /** The primary asks the witness to agree to dropping to async, or to restoring sync. */
  'sync-update': { method: 'POST', path: '/v1/sync', request: syncUpdateSchema, reply: syncUpdateReplySchema, servedBy: ['witness'] },
  /** The witness tells the primary to start a planned switchover. */
  'switchover-request': { method: 'POST', path: '/v1/switchover', request: switchoverRequestSchema, reply: ackSchema, servedBy: ['agent'] },
  /** Protocol v2: the witness asks a node for a planned restart of its PostgreSQL (`pgvip restart`). */
  'restart-request': { method: 'POST', path: '/v2/restart', request: restartRequestSchema, reply: ackSchema, servedBy: ['agent'] },
  /** The fenced, caught-up old primary hands its term over to the standby. */
  handover: { method: 'POST', path: '/v1/handover', request: handoverSchema, reply: ackSchema, servedBy: ['agent'] },
  /** An operator's explicit promotion of a standby, accepting data loss. */
  'manual-promote': { method: 'POST', path: '/v1/manual-promote', request: manualPromoteSchema, reply: ackSchema, servedBy: ['agent'] },
  /**
   * Three or more nodes on etcd: a withdrawn standby takes back its published position. Only etcd's
   * bridge answers it (in the agent's process), so no daemon serves the path.
   */
  'position-clear': { method: 'POST', path: '/v2/position-clear', request: positionClearSchema, reply: ackSchema, servedBy: [] },
} as const satisfies { readonly [name in EndpointName]: EndpointSpec };

/** The endpoint a request message is sent to. */
export function endpointFor<M extends PeerRequest>(message: M): (typeof endpoints)[M['kind']] {
  return endpoints[message.kind as M['kind']];
}

/** The parsed reply type of an endpoint, e.g. `ReplyOf<'vote-request'>` is `VoteReply`. */
export type ReplyOf<N extends EndpointName> = z.output<(typeof endpoints)[N]['reply']>;

/** Which reply each request gets; the check below holds the table to it. */
interface RepliesByEndpoint {
  status: AgentStatusV1;
  'status-v2': AgentStatus;
  'restart-request': Ack;
  'lease-request': LeaseReply;
  'lease-release': Ack;
  'vote-request': VoteReply;
  'sync-update': SyncUpdateReply;
  'switchover-request': Ack;
  handover: Ack;
  'manual-promote': Ack;
  'position-clear': Ack;
}

type RequestKind = PeerRequest['kind'];

// Fails to compile if an endpoint parses the wrong message or answers with the wrong reply.
export type EndpointsMatchMessages = [
  Expect<Equals<{ [N in RequestKind]: z.output<NonNullable<(typeof endpoints)[N]['request']>> }, { [N in RequestKind]: Extract<PeerRequest, { kind: N }> }>>,
  Expect<Equals<{ [N in EndpointName]: ReplyOf<N> }, { [N in EndpointName]: RepliesByEndpoint[N] }>>,
];

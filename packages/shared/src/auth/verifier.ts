// The server side: checks incoming requests and signs the replies to them. One verifier per daemon;
// a witness serving many clusters holds every cluster's key and member list in one verifier.
import type { Envelope, NodeId } from '../core/messages.js';
import { PgvipError } from '../errors.js';
import { AUTH_HEADER, formatReplyHeader, parseRequestHeader, readAuthHeader } from './header.js';
import type { HeaderBag } from './header.js';
import { KEY_BYTES } from './key.js';
import type { ClusterKey } from './key.js';
import { bodyDigest, macsEqual, replyMac, requestMac } from './mac.js';
import type { Body } from './mac.js';
import { ReplayGuard } from './replay.js';
import type { ReplayLimits } from './replay.js';

/** One cluster's credentials: its key (or an explicit opt-out) and every node allowed to send. */
export type ClusterAuthConfig =
  | { readonly members: readonly NodeId[]; readonly key: ClusterKey }
  | { readonly members: readonly NodeId[]; readonly authDisabled: true };

export interface VerifierOptions {
  /** This node's id: requests addressed to anyone else are refused. */
  readonly self: NodeId;
  readonly clusters: Readonly<Record<string, ClusterAuthConfig>>;
  readonly replayLimits?: Partial<ReplayLimits>;
}

export interface IncomingRequest {
  readonly method: string;
  /** Path and query exactly as on the HTTP request line (Node's `req.url`). */
  readonly path: string;
  readonly headers: HeaderBag;
  /** The exact body bytes received ('' for none). */
  readonly body: Body;
}

export type VerifiedRequest =
  | { readonly authenticated: true; readonly cluster: string; readonly sender: NodeId; readonly boot: string; readonly seq: number; readonly mac: string }
  | { readonly authenticated: false; readonly cluster: string; readonly sender: NodeId };

export interface OutgoingReply {
  readonly status: number;
  /** The exact body bytes that will be sent. */
  readonly body: Body;
}

export interface Verifier {
  readonly self: NodeId;
  /** Clusters configured with `authDisabled`: callers must log them loudly at start. */
  readonly unauthenticatedClusters: readonly string[];
  /** Who sent the request, or a PGVIP_AUTH_* error; a request is accepted at most once. */
  verifyRequest(request: IncomingRequest): VerifiedRequest;
  /** The headers that authenticate a reply to a verified request. */
  signReply(request: VerifiedRequest, reply: OutgoingReply): { readonly [AUTH_HEADER]: string };
}

interface ClusterCredentials {
  readonly key: ClusterKey | null;
  readonly members: ReadonlySet<NodeId>;
}

export function createVerifier(options: VerifierOptions): Verifier {
  const { self } = options;
  // A Map, not the options object: cluster names come from the network and must not reach prototypes.
  const clusters = new Map<string, ClusterCredentials>();
  for (const [name, config] of Object.entries(options.clusters)) {
    const key = 'key' in config ? config.key : null;
    if (key !== null && key.length < KEY_BYTES) throw new RangeError(`cluster ${name}: the key is ${key.length} bytes; at least ${KEY_BYTES} are required`);
    clusters.set(name, { key, members: new Set(config.members) });
  }
  const replay = new ReplayGuard(options.replayLimits);

  function verifyRequest(request: IncomingRequest): VerifiedRequest {
    const header = parseRequestHeader(readAuthHeader(request.headers, 'request'));
    const { cluster, sender, to } = header;
    const credentials = clusters.get(cluster);
    if (credentials === undefined) {
      throw new PgvipError('PGVIP_AUTH_WRONG_CLUSTER', `the request is for cluster ${cluster}; ${self} serves ${[...clusters.keys()].join(', ') || 'no cluster'}`);
    }
    if (!credentials.members.has(sender)) {
      throw new PgvipError('PGVIP_AUTH_UNKNOWN_SENDER', `${sender} is not a member of cluster ${cluster} (members: ${[...credentials.members].join(', ')})`);
    }
    if (to !== self) {
      throw new PgvipError('PGVIP_AUTH_WRONG_RECIPIENT', `the request from ${sender} is addressed to ${to}, but this node is ${self}`);
    }
    if (credentials.key === null) return { authenticated: false, cluster, sender };
    if (header.scheme !== 'v1') {
      throw new PgvipError('PGVIP_AUTH_MISSING', `${sender} sent an unsigned request (authentication disabled there), but cluster ${cluster} requires signed requests`);
    }
    const { boot, seq, mac } = header;
    const expected = requestMac(credentials.key, {
      cluster,
      sender,
      to,
      boot,
      seq,
      method: request.method,
      path: request.path,
      bodyDigest: bodyDigest(request.body),
    });
    if (!macsEqual(expected, mac)) {
      throw new PgvipError('PGVIP_AUTH_BAD_MAC', `the request from ${sender} does not verify: wrong cluster key, or method, path, body or header changed in transit`);
    }
    // Only now, with the MAC proven, may the request touch replay memory.
    replay.accept(cluster, sender, boot, seq);
    return { authenticated: true, cluster, sender, boot, seq, mac };
  }

  function signReply(request: VerifiedRequest, reply: OutgoingReply): { readonly [AUTH_HEADER]: string } {
    const { cluster } = request;
    const key = clusters.get(cluster)?.key ?? null;
    if (!request.authenticated || key === null) {
      return { [AUTH_HEADER]: formatReplyHeader({ scheme: 'none', cluster, sender: self }) };
    }
    const { boot, seq } = request;
    const mac = replyMac(key, { cluster, responder: self, boot, seq, requestMac: request.mac, status: reply.status, bodyDigest: bodyDigest(reply.body) });
    return { [AUTH_HEADER]: formatReplyHeader({ scheme: 'v1', cluster, sender: self, boot, seq, mac }) };
  }

  const unauthenticatedClusters = [...clusters].filter(([, c]) => c.key === null).map(([name]) => name);
  return { self, unauthenticatedClusters, verifyRequest, signReply };
}

/**
 * Checks that a parsed message speaks for the node that signed it. Any member could forge any member's
 * messages with the shared key, so this is not a defence against a member; it stops a misconfigured or
 * buggy node from having its words attributed to another.
 */
export function checkEnvelopeIdentity(message: Envelope, request: VerifiedRequest): void {
  if (message.cluster !== request.cluster || message.from !== request.sender) {
    throw new PgvipError(
      'PGVIP_AUTH_SENDER_MISMATCH',
      `the message claims to be from ${message.from} in cluster ${message.cluster}, but was signed by ${request.sender} for cluster ${request.cluster}`,
    );
  }
}

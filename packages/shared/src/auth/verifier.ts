// The server side: checks incoming requests and signs the replies to them. One verifier per daemon;
// a witness serving many clusters holds every cluster's key and member list in one verifier.
//
// Replay protection across restarts, without clocks or disk: the verifier picks a random *epoch* when
// it starts, and accepts only requests signed for its current epoch. Clients learn the epoch from the
// verifier's signed replies — the first request a client sends to a peer, and the first after the
// peer restarts, is refused with PGVIP_AUTH_STALE_EPOCH in a signed reply that names the new epoch,
// and the client resends. So every request captured before a restart is void afterwards, and within
// an epoch the replay memory (replay.ts) accepts each request at most once, in order.
import type { Envelope, NodeId } from '../core/messages.js';
import type { ErrorCode } from '../errors.js';
import { PgvipError } from '../errors.js';
import { AUTH_HEADER, formatReplyHeader, newRandomId, parseRequestHeader, readAuthHeader } from './header.js';
import type { HeaderBag } from './header.js';
import { KEY_BYTES } from './key.js';
import type { ClusterKey } from './key.js';
import { bodyDigest, macsEqual, replyMac, requestMac } from './mac.js';
import type { Body } from './mac.js';
import { ReplayMemory } from './replay.js';
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
  | {
      readonly authenticated: true;
      readonly cluster: string;
      readonly sender: NodeId;
      /** The epoch the reply announces: the one the request was accepted in, or the current one for a refusal. */
      readonly epoch: string;
      readonly boot: string;
      readonly seq: number;
      readonly mac: string;
    }
  | { readonly authenticated: false; readonly cluster: string; readonly sender: NodeId };

/**
 * A request whose MAC verified but which is refused anyway: a replay, or signed for an old epoch.
 * Its sender is known, so the refusal can and should be signed (`signReply(error.request, …)`):
 * that is how a client learns the new epoch.
 */
export class AuthenticatedRejection extends PgvipError {
  readonly request: VerifiedRequest;
  constructor(code: ErrorCode, detail: string, request: VerifiedRequest) {
    super(code, detail);
    this.name = 'AuthenticatedRejection';
    this.request = request;
  }
}

export interface OutgoingReply {
  readonly status: number;
  /** The exact body bytes that will be sent. */
  readonly body: Body;
}

export interface Verifier {
  readonly self: NodeId;
  /** Clusters configured with `authDisabled`: callers must log them loudly at start. */
  readonly unauthenticatedClusters: readonly string[];
  /** The current epoch (changes only when the replay memory fills up). */
  readonly epoch: string;
  /**
   * Who sent the request, or a PGVIP_AUTH_* error (an AuthenticatedRejection when the sender is
   * known). A request is accepted at most once, ever, by this verifier and any later one.
   */
  verifyRequest(request: IncomingRequest): VerifiedRequest;
  /** The headers that authenticate a reply (or a refusal) to a verified request. */
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
  let epoch = newRandomId();
  let replay = new ReplayMemory(options.replayLimits);

  // A new epoch voids every request signed so far, so the memory of them can go.
  function startNewEpoch(): void {
    epoch = newRandomId();
    replay = new ReplayMemory(options.replayLimits);
  }

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
      epoch: header.epoch,
      boot,
      seq,
      method: request.method,
      path: request.path,
      bodyDigest: bodyDigest(request.body),
    });
    if (!macsEqual(expected, mac)) {
      throw new PgvipError('PGVIP_AUTH_BAD_MAC', `the request from ${sender} does not verify: wrong cluster key, or method, path, body or header changed in transit`);
    }
    // Only now, with the MAC proven, may the request touch replay memory or earn a signed refusal.
    const refuse = (code: ErrorCode, detail: string): AuthenticatedRejection =>
      new AuthenticatedRejection(code, detail, { authenticated: true, cluster, sender, epoch, boot, seq, mac });
    if (header.epoch !== epoch) {
      throw refuse('PGVIP_AUTH_STALE_EPOCH', `${sender} signed the request for epoch ${header.epoch}; ${self} is in epoch ${epoch} (it restarted, or this is first contact)`);
    }
    const verdict = replay.accept(cluster, sender, boot, seq);
    if ('full' in verdict) {
      startNewEpoch();
      throw refuse('PGVIP_AUTH_STALE_EPOCH', `${self}'s replay memory is full (${sender} restarted many times); it started epoch ${epoch}`);
    }
    if (!verdict.accepted) throw refuse('PGVIP_AUTH_REPLAY', `request from ${sender} in cluster ${cluster}: ${verdict.why}`);
    return { authenticated: true, cluster, sender, epoch, boot, seq, mac };
  }

  function signReply(request: VerifiedRequest, reply: OutgoingReply): { readonly [AUTH_HEADER]: string } {
    const { cluster } = request;
    const key = clusters.get(cluster)?.key ?? null;
    if (!request.authenticated || key === null) {
      return { [AUTH_HEADER]: formatReplyHeader({ scheme: 'none', cluster, sender: self }) };
    }
    const fields = { cluster, epoch: request.epoch, boot: request.boot, seq: request.seq };
    const mac = replyMac(key, {
      ...fields,
      responder: self,
      requestMac: request.mac,
      status: reply.status,
      bodyDigest: bodyDigest(reply.body),
    });
    return { [AUTH_HEADER]: formatReplyHeader({ scheme: 'v1', sender: self, ...fields, mac }) };
  }

  const unauthenticatedClusters = [...clusters].filter(([, c]) => c.key === null).map(([name]) => name);
  return {
    self,
    unauthenticatedClusters,
    get epoch() {
      return epoch;
    },
    verifyRequest,
    signReply,
  };
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

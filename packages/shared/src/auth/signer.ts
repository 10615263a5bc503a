// The client side: signs outgoing requests and checks the replies to them. One signer per process and
// cluster. Its boot id is fresh on every start, which lets verifiers tell a new process from a
// replayed old one without comparing clocks; and it learns each peer's epoch from that peer's signed
// replies, which makes every request void once the peer restarts (verifier.ts).
import type { NodeId } from '../core/messages.js';
import { PgvipError } from '../errors.js';
import { isValidName } from '../wire/fields.js';
import { AUTH_HEADER, UNKNOWN_EPOCH, formatRequestHeader, newRandomId, parseReplyHeader, readAuthHeader } from './header.js';
import type { HeaderBag } from './header.js';
import { KEY_BYTES } from './key.js';
import type { ClusterKey } from './key.js';
import { bodyDigest, macsEqual, replyMac, requestMac } from './mac.js';
import type { Body } from './mac.js';

/** Authentication is on unless switched off explicitly with `authDisabled: true`. */
export type SignerOptions =
  | { readonly cluster: string; readonly sender: NodeId; readonly key: ClusterKey }
  | { readonly cluster: string; readonly sender: NodeId; readonly authDisabled: true };

export interface OutgoingRequest {
  /** The node the request is addressed to (bound into the MAC). */
  readonly to: NodeId;
  /** The method exactly as sent ('GET', 'POST'); methods are case-sensitive and bound as they are. */
  readonly method: string;
  /** Path and query exactly as they will appear on the HTTP request line. */
  readonly path: string;
  /** The exact body bytes that will be sent ('' for none). */
  readonly body: Body;
}

export interface SignedRequest {
  /** Headers to add to the HTTP request. */
  readonly headers: { readonly [AUTH_HEADER]: string };
  readonly to: NodeId;
  /** The recipient's epoch the request was signed for. */
  readonly epoch: string;
  readonly boot: string;
  readonly seq: number;
  /** The request's MAC (null when authentication is disabled); the reply must be bound to it. */
  readonly mac: string | null;
}

export interface IncomingReply {
  readonly request: SignedRequest;
  readonly status: number;
  readonly headers: HeaderBag;
  /** The exact body bytes received. */
  readonly body: Body;
}

export interface VerifiedReply {
  readonly authenticated: boolean;
  /**
   * The peer refused the request because it was signed for the peer's previous epoch (first contact,
   * or the peer restarted). The signer has learnt the new epoch: sign the request again and send it
   * once more, right away.
   */
  readonly resend: boolean;
}

export interface Signer {
  /** False when authentication is disabled: callers must log that loudly at start. */
  readonly authenticated: boolean;
  readonly cluster: string;
  readonly sender: NodeId;
  /** This process's random boot id (128 bits, hex). */
  readonly boot: string;
  signRequest(request: OutgoingRequest): SignedRequest;
  /** Throws a PGVIP_AUTH_* error unless the reply was signed by the addressed node for this very request. */
  verifyReply(reply: IncomingReply): VerifiedReply;
}

export function createSigner(options: SignerOptions): Signer {
  const { cluster, sender } = options;
  if (!isValidName(cluster) || !isValidName(sender)) throw new RangeError(`invalid cluster name or node id: '${cluster}', '${sender}'`);
  const key = 'key' in options ? options.key : null;
  if (key !== null && key.length < KEY_BYTES) throw new RangeError(`the cluster key is ${key.length} bytes; at least ${KEY_BYTES} are required`);
  const boot = newRandomId();
  let lastSeq = 0;
  /**
   * Each peer's epoch, and the seq of the request whose reply taught it (so an older reply cannot
   * undo a newer one).
   */
  const peerEpochs = new Map<NodeId, { readonly epoch: string; readonly learntAtSeq: number }>();

  function signRequest(request: OutgoingRequest): SignedRequest {
    const seq = ++lastSeq;
    const { to, method, path } = request;
    const epoch = peerEpochs.get(to)?.epoch ?? UNKNOWN_EPOCH;
    if (key === null) {
      return { headers: { [AUTH_HEADER]: formatRequestHeader({ scheme: 'none', cluster, sender, to }) }, to, epoch, boot, seq, mac: null };
    }
    const digest = bodyDigest(request.body);
    const mac = requestMac(key, { cluster, sender, to, epoch, boot, seq, method, path, bodyDigest: digest });
    const header = formatRequestHeader({ scheme: 'v1', cluster, sender, to, epoch, boot, seq, mac });
    return { headers: { [AUTH_HEADER]: header }, to, epoch, boot, seq, mac };
  }

  function verifyReply(reply: IncomingReply): VerifiedReply {
    const { request } = reply;
    if (key === null || request.mac === null) return { authenticated: false, resend: false };
    const header = parseReplyHeader(readAuthHeader(reply.headers, 'reply', reply.status));
    if (header.scheme !== 'v1') {
      throw new PgvipError('PGVIP_AUTH_MISSING', `the reply from ${request.to} is unsigned: that node has authentication disabled, this one requires it`);
    }
    if (header.cluster !== cluster) {
      throw new PgvipError('PGVIP_AUTH_WRONG_CLUSTER', `the reply is signed for cluster ${header.cluster}, but the request was for ${cluster}`);
    }
    if (header.sender !== request.to) {
      throw new PgvipError('PGVIP_AUTH_UNKNOWN_SENDER', `the reply is signed by ${header.sender}, but the request went to ${request.to}`);
    }
    if (header.boot !== request.boot || header.seq !== request.seq) {
      throw new PgvipError('PGVIP_AUTH_REPLAY', `the reply answers request ${header.boot}/${header.seq}, not ${request.boot}/${request.seq}`);
    }
    const expected = replyMac(key, {
      cluster,
      responder: request.to,
      epoch: header.epoch,
      boot: request.boot,
      seq: request.seq,
      requestMac: request.mac,
      status: reply.status,
      bodyDigest: bodyDigest(reply.body),
    });
    if (!macsEqual(expected, header.mac)) {
      throw new PgvipError('PGVIP_AUTH_BAD_MAC', `the reply from ${request.to} does not verify: wrong cluster key, or status, body or header changed in transit`);
    }
    const known = peerEpochs.get(request.to);
    if (known === undefined || known.learntAtSeq < request.seq) {
      peerEpochs.set(request.to, { epoch: header.epoch, learntAtSeq: request.seq });
    }
    return { authenticated: true, resend: header.epoch !== request.epoch };
  }

  return { authenticated: key !== null, cluster, sender, boot, signRequest, verifyReply };
}

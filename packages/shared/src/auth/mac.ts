// The MACs themselves. Each MAC covers a canonical encoding of every field it binds: a JSON array of
// strings and numbers, which is unambiguous (no field can bleed into the next) and easy to reproduce
// in any language. A label first keeps request and reply MACs from ever being interchangeable.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../core/messages.js';
import { PROTOCOL_VERSION } from '../core/messages.js';
import type { ClusterKey } from './key.js';

export type Body = string | Uint8Array;

/** SHA-256 of the exact body bytes, hex. A string body is hashed as its UTF-8 encoding. */
export function bodyDigest(body: Body): string {
  return createHash('sha256').update(body).digest('hex');
}

export interface RequestMacFields {
  readonly cluster: string;
  readonly sender: NodeId;
  /** The node the request is addressed to, so it cannot be redirected to another member. */
  readonly to: NodeId;
  /** The recipient's epoch as the sender last learnt it, so the request is void once the recipient restarts. */
  readonly epoch: string;
  readonly boot: string;
  readonly seq: number;
  readonly method: string;
  /** Path and query exactly as on the HTTP request line. */
  readonly path: string;
  readonly bodyDigest: string;
}

export function requestMac(key: ClusterKey, f: RequestMacFields): string {
  const canonical = ['pgvip-request', PROTOCOL_VERSION, f.cluster, f.sender, f.to, f.epoch, f.boot, f.seq, f.method, f.path, f.bodyDigest];
  return hmacHex(key, canonical);
}

export interface ReplyMacFields {
  readonly cluster: string;
  readonly responder: NodeId;
  /** The responder's current epoch, which the client adopts for its next requests. */
  readonly epoch: string;
  /** The request's boot id, sequence number and MAC: the reply answers that request and no other. */
  readonly boot: string;
  readonly seq: number;
  readonly requestMac: string;
  readonly status: number;
  readonly bodyDigest: string;
}

export function replyMac(key: ClusterKey, f: ReplyMacFields): string {
  const canonical = ['pgvip-reply', PROTOCOL_VERSION, f.cluster, f.responder, f.epoch, f.boot, f.seq, f.requestMac, f.status, f.bodyDigest];
  return hmacHex(key, canonical);
}

/** Constant-time comparison of two hex MACs, so response timing reveals nothing about the right MAC. */
export function macsEqual(expectedHex: string, presentedHex: string): boolean {
  const expected = Buffer.from(expectedHex, 'hex');
  const presented = Buffer.from(presentedHex, 'hex');
  // Lengths are public (every MAC is 32 bytes); only the contents need constant time.
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function hmacHex(key: ClusterKey, canonical: readonly (string | number)[]): string {
  return createHmac('sha256', key).update(JSON.stringify(canonical)).digest('hex');
}

// Who may call the operator API, decided before any route runs (docs/security.md, "The operator
// API"). The API can switch over, fail over and pause failover, and it listens where browsers can
// reach it, so a token alone is not the whole defence:
//
//  1. Host: the request must name this API (its bind address, loopback, localhost, or a configured
//     name). A web page that re-points its own DNS name at the witness (DNS rebinding) is
//     same-origin for the browser, but its requests still carry the page's name as Host.
//  2. Origin: a browser names the page that sent a request; only the witness's own origin (its
//     dashboard) may call. Clients that are not browsers (the CLI, curl) send no Origin.
//  3. Content-Type: every command is JSON, so a browser must ask first (a CORS preflight), and the
//     witness never grants one: an HTML form or a "simple" fetch from another page cannot send it.
//  4. The bearer token (unless operatorApi.auth is "disabled"), except for /health and the
//     dashboard's static page, which hold no cluster data.
import { createHash, timingSafeEqual } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import type { FastifyRequest } from 'fastify';
import { PgvipError } from '@pgvip/shared';

export interface OperatorGuardOptions {
  /** The bearer token operators must present, or null when operatorApi.auth is "disabled". */
  readonly token: string | null;
  /** Host names and addresses (lower case, without port) a request may name in its Host header. */
  readonly allowedHosts: ReadonlySet<string>;
}

/** A refusal: the coded error to answer with, and whether a token was offered (for the log). */
export interface Refusal {
  readonly error: PgvipError;
  readonly tokenPresent: boolean;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::']);

/**
 * The names a request may give as its Host: loopback and localhost always (the API's default bind),
 * the bind address, and the configured `hostNames`. A wildcard bind (0.0.0.0) accepts the host's
 * own interface addresses and host name, the names a client on the network can use without DNS.
 */
export function allowedOperatorHosts(bindHost: string, hostNames: readonly string[]): Set<string> {
  const hosts = new Set(['localhost', '::1', bindHost, ...hostNames].map((h) => h.toLowerCase()));
  if (WILDCARD_HOSTS.has(bindHost)) {
    hosts.add(hostname().toLowerCase());
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) hosts.add(a.address.toLowerCase());
    }
  }
  return hosts;
}

/** The name part of a Host header: lower case, without port, brackets or a trailing dot. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

function isAllowedHost(name: string, allowed: ReadonlySet<string>): boolean {
  // 127.0.0.0/8 is loopback; *.localhost never leaves the machine (RFC 6761: browsers resolve it
  // to loopback themselves, so no DNS answer can point it elsewhere or back).
  return allowed.has(name) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || name.endsWith('.localhost');
}

/**
 * Requests served without a token: the health check, and the dashboard's page and assets, which
 * hold no cluster data.
 */
export function isPublic(method: string, url: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const path = url.split('?', 1)[0] ?? '';
  return path === '/health' || path === '/' || path.startsWith('/dashboard/');
}

/** Methods a browser sends without asking first only with "simple" bodies; all of them need JSON here. */
function changesState(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Builds the check run on every request; it returns null to let the request through. */
export function operatorGuard(options: OperatorGuardOptions): (req: FastifyRequest) => Refusal | null {
  const tokenDigest = options.token === null ? null : digest(options.token);
  return (req) => {
    const hostHeader = req.headers.host ?? '';
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const tokenPresent = bearer !== null;
    const refuse = (error: PgvipError): Refusal => ({ error, tokenPresent });

    const name = hostName(hostHeader);
    if (!isAllowedHost(name, options.allowedHosts)) {
      const names = [...options.allowedHosts].join(', ');
      return refuse(new PgvipError('PGVIP_OPERATOR_HOST', `Host ${JSON.stringify(hostHeader)} (accepted: ${names}, 127.0.0.0/8, *.localhost); reach the API by one of those, or add the name to operatorApi.hostNames`));
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const own = [`http://${hostHeader.trim().toLowerCase()}`, `https://${hostHeader.trim().toLowerCase()}`];
      if (!own.includes(origin.trim().toLowerCase())) {
        return refuse(new PgvipError('PGVIP_OPERATOR_ORIGIN', `Origin ${JSON.stringify(origin)} is not this API's own (${own[0]})`));
      }
    }
    if (tokenDigest !== null && !isPublic(req.method, req.url)) {
      // Compare digests: equal length always, so the comparison time says nothing about the token.
      if (bearer?.[1] === undefined || !timingSafeEqual(digest(bearer[1]), tokenDigest)) {
        return refuse(new PgvipError('PGVIP_OPERATOR_AUTH', bearer === null ? 'no bearer token' : 'the bearer token does not match operatorApi.tokenFile'));
      }
    }
    if (changesState(req.method)) {
      const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
      if (type !== 'application/json') {
        return refuse(new PgvipError('PGVIP_OPERATOR_CONTENT_TYPE', `${req.method} ${req.url.split('?', 1)[0] ?? ''} was sent with ${type ? `Content-Type ${type}` : 'no Content-Type'}; send the command as a JSON object (e.g. {}) with Content-Type: application/json`));
      }
    }
    return null;
  };
}

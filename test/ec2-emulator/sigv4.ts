// SigV4 as EC2 checks it: the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…` header is parsed, the canonical request and the string to sign are rebuilt from what
// arrived on the wire (method, path, query, the signed headers, a hash of the body bytes) and the
// signature is recomputed with the caller's secret. A body changed after signing, a wrong secret or
// a signer that canonicalises differently from AWS therefore fails here as it would against EC2.
// Only header signing is emulated: the SDK and the CLI sign EC2 calls that way (no presigned URLs).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface CredentialScope {
  readonly accessKeyId: string;
  /** YYYYMMDD */
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

export interface SignedAuthorization {
  readonly scope: CredentialScope;
  /** Lower-case header names, in the order given (SigV4 requires them sorted). */
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

/** What the server received, as it arrived: the signature covers exactly these bytes. */
export interface ReceivedRequest {
  readonly method: string;
  /** The request target as sent (path and query), e.g. `/` or `/?Action=…`. */
  readonly target: string;
  /** Node's `req.rawHeaders`: names and values alternating, original case, duplicates kept. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

function parseCredential(credential: string): CredentialScope | undefined {
  const [accessKeyId, date, region, service, terminator, ...rest] = credential.split('/');
  if (!accessKeyId || !date || !region || !service || terminator !== 'aws4_request' || rest.length > 0) return undefined;
  return { accessKeyId, date, region, service };
}

/** The parts of an `AWS4-HMAC-SHA256` Authorization header; undefined when it is not one or a part is missing. */
export function parseAuthorization(authorization: string): SignedAuthorization | undefined {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(authorization.trim());
  if (!m) return undefined;
  const parts = new Map<string, string>();
  for (const part of m[1]!.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) parts.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const scope = parts.has('Credential') ? parseCredential(parts.get('Credential')!) : undefined;
  const signedHeaders = parts.get('SignedHeaders')?.split(';');
  const signature = parts.get('Signature');
  if (!scope || !signedHeaders || signedHeaders.some((h) => h === '') || !signature || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  return { scope, signedHeaders, signature };
}

/**
 * The credential scope alone (key id, date, region, service), for callers that only need to know
 * who claims to call.
 */
export function credentialScopeOf(authorization: string | undefined): CredentialScope | undefined {
  if (authorization === undefined) return undefined;
  const m = /Credential=([^,\s]+)/.exec(authorization);
  return /^AWS4-HMAC-SHA256\s/.test(authorization.trim()) && m ? parseCredential(m[1]!) : undefined;
}

/** RFC 3986 percent-encoding, as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is escaped. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalUri(path: string): string {
  // EC2 (like every service but S3) normalises the path and encodes each segment.
  const segments = path.split('/').map((s) => {
    try {
      return uriEncode(decodeURIComponent(s));
    } catch {
      return uriEncode(s);
    }
  });
  const joined = segments.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}

function canonicalQuery(search: string): string {
  const pairs = [...new URLSearchParams(search)].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * Header values by lower-case name: repeated headers joined with ',', each value trimmed and its
 * inner spaces collapsed.
 */
export function headerValues(rawHeaders: readonly string[]): Map<string, string> {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const list = values.get(name) ?? [];
    list.push(rawHeaders[i + 1]!.trim().replace(/\s+/g, ' '));
    values.set(name, list);
  }
  return new Map([...values].map(([name, list]) => [name, list.join(',')]));
}

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** The canonical request of SigV4 (undefined when a signed header is absent: nothing can match then). */
export function canonicalRequest(request: ReceivedRequest, signedHeaders: readonly string[]): string | undefined {
  const url = new URL(request.target, 'http://signed.invalid');
  const headers = headerValues(request.rawHeaders);
  const lines: string[] = [];
  for (const name of signedHeaders) {
    const value = headers.get(name);
    if (value === undefined) return undefined;
    lines.push(`${name}:${value}\n`);
  }
  return [request.method.toUpperCase(), canonicalUri(url.pathname), canonicalQuery(url.search), lines.join(''), signedHeaders.join(';'), sha256Hex(request.body)].join('\n');
}

/**
 * The signature SigV4 gives `request` for `secretAccessKey`, with the request date `amzDate`
 * (YYYYMMDD'T'HHMMSS'Z').
 */
export function expectedSignature(
  request: ReceivedRequest,
  auth: SignedAuthorization,
  amzDate: string,
  secretAccessKey: string,
): string | undefined {
  const canonical = canonicalRequest(request, auth.signedHeaders);
  if (canonical === undefined) return undefined;
  const { date, region, service } = auth.scope;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`, sha256Hex(canonical)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  return createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
}

/**
 * The request time a signature claims: `X-Amz-Date` (basic ISO 8601), else `Date`; in epoch ms with
 * its SigV4 spelling.
 */
export function requestDate(rawHeaders: readonly string[]): { amzDate: string; epochMs: number } | undefined {
  const headers = headerValues(rawHeaders);
  const amz = headers.get('x-amz-date');
  if (amz !== undefined) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amz);
    if (!m) return undefined;
    const epochMs = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
    return Number.isNaN(epochMs) ? undefined : { amzDate: amz, epochMs };
  }
  const date = headers.get('date');
  const epochMs = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(epochMs)) return undefined;
  return { amzDate: new Date(epochMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''), epochMs };
}

/** Constant-time comparison of two hex signatures. */
export function signaturesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

// A small IMDSv2 client on node:http: one session token (PUT /latest/api/token), cached and
// reused for every GET until shortly before it expires, refreshed at once when IMDS answers 401
// (its own restart, or a clock that disagrees with ours). Every request has a timeout: with the hop
// limit too low (containers) IMDS does not refuse, it just never answers.
//
// @aws-sdk/ec2-metadata-service would fetch a new token before every GET and has no default
// timeout; the failover path reads IMDS in verify(), so a cached token and a hard bound matter.
//
// node:http rather than the global fetch: the first call of fetch loads Node's own copy of undici,
// and with it node:http2, node:zlib and the web streams, which cost the agent ~9 MB of resident
// memory for its few IMDS reads (bench:agent; the agent's peer client has its own undici).
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PgvipError, readReplyBody, type ReplyBody } from '@pgvip/shared';

export const defaultImdsEndpoint = 'http://169.254.169.254';

/** The longest session IMDS grants (6 hours). */
const tokenTtlSecondsMax = 21_600;
const tokenTtlHeader = 'x-aws-ec2-metadata-token-ttl-seconds';
const tokenHeader = 'x-aws-ec2-metadata-token';

export interface ImdsClientOptions {
  /** Base URL (default http://169.254.169.254); tests and the lab point it at the emulator. */
  readonly endpoint?: string;
  /** Bound on each HTTP request, token included (default 1000 ms). */
  readonly requestTimeoutMs?: number;
  /** Session token lifetime, 1..21600 s (default 21600). */
  readonly tokenTtlSeconds?: number;
  /** Monotonic milliseconds (default performance.now); token expiry is judged on it. */
  readonly clock?: () => number;
  /** How one HTTP exchange is made (default httpExchange; tests wrap it to count requests). */
  readonly exchange?: ImdsExchange;
}

/** What one HTTP exchange with IMDS gives: the status, the headers, and the body to read. */
export interface ImdsReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: ReplyBody;
}

export type ImdsExchange = (
  url: string,
  init: { readonly method: 'GET' | 'PUT'; readonly headers: Record<string, string>; readonly signal: AbortSignal },
) => Promise<ImdsReply>;

/** One request with node:http (https for an https:// endpoint); `signal` ends it, body included. */
export const httpExchange: ImdsExchange = (url, init) =>
  new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(url, { method: init.method, headers: init.headers, signal: init.signal }, (res) =>
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.once('error', reject);
    req.end();
  });

interface CachedToken {
  readonly value: string;
  /** When to fetch a new one: a while before it expires, so a token never dies in flight. */
  readonly refreshAtMs: number;
}

export class ImdsClient {
  readonly endpoint: string;
  readonly #timeoutMs: number;
  readonly #ttlSeconds: number;
  readonly #clock: () => number;
  readonly #exchange: ImdsExchange;
  #token: CachedToken | undefined;
  #pendingToken: Promise<CachedToken> | undefined;

  constructor(options: ImdsClientOptions = {}) {
    this.endpoint = (options.endpoint ?? defaultImdsEndpoint).replace(/\/+$/, '');
    this.#timeoutMs = options.requestTimeoutMs ?? 1_000;
    this.#ttlSeconds = options.tokenTtlSeconds ?? tokenTtlSecondsMax;
    if (!(Number.isInteger(this.#ttlSeconds) && this.#ttlSeconds >= 1 && this.#ttlSeconds <= tokenTtlSecondsMax)) {
      throw new RangeError(`IMDS token TTL must be 1..${tokenTtlSecondsMax} s, got ${this.#ttlSeconds}`);
    }
    this.#clock = options.clock ?? (() => performance.now());
    this.#exchange = options.exchange ?? httpExchange;
  }

  /**
   * Reads one metadata item, e.g. `instance-id` or `network/interfaces/macs/<mac>/local-ipv4s`. Throws
   * PGVIP_VIP_IMDS.
   */
  async get(path: string): Promise<string> {
    const token = await this.#currentToken();
    const first = await this.#getWith(path, token.value);
    if (first.status !== 401) return this.#body(path, first);
    // IMDS no longer knows our token (it restarted, or it expired by its clock): fetch a new one, once.
    this.#forget(token);
    const second = await this.#getWith(path, (await this.#currentToken()).value);
    if (second.status === 401) throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} refused a fresh session token for ${path} (401)`);
    return this.#body(path, second);
  }

  /** Reads a list item (one entry per line, e.g. `local-ipv4s`); empty lines dropped. */
  async getLines(path: string): Promise<string[]> {
    return (await this.get(path))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
  }

  #body(path: string, answer: ImdsAnswer): string {
    if (answer.status === 404) throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} has no ${path} (404)`);
    if (answer.status !== 200) throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} answered ${answer.status} for ${path}`);
    return answer.text.trim();
  }

  #getWith(path: string, token: string): Promise<ImdsAnswer> {
    return this.#request(path, `/latest/meta-data/${path.replace(/^\/+/, '')}`, 'GET', { [tokenHeader]: token });
  }

  #currentToken(): Promise<CachedToken> {
    const cached = this.#token;
    if (cached && this.#clock() < cached.refreshAtMs) return Promise.resolve(cached);
    // One PUT serves every caller waiting at the same time.
    this.#pendingToken ??= this.#fetchToken().finally(() => (this.#pendingToken = undefined));
    return this.#pendingToken;
  }

  #forget(token: CachedToken): void {
    if (this.#token === token) this.#token = undefined;
  }

  async #fetchToken(): Promise<CachedToken> {
    const requestedAtMs = this.#clock();
    const answer = await this.#request('api/token', '/latest/api/token', 'PUT', { [tokenTtlHeader]: String(this.#ttlSeconds) });
    if (answer.status !== 200) {
      throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} refused a session token (${answer.status}); is IMDSv2 enabled on the instance?`);
    }
    const value = answer.text.trim();
    if (value === '') throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} answered an empty session token`);
    const ttlMs = this.#ttlSeconds * 1000;
    // Counted from the request, not the answer, and renewed with a margin (a tenth, at most a minute).
    const token = { value, refreshAtMs: requestedAtMs + ttlMs - Math.min(60_000, ttlMs / 10) };
    this.#token = token;
    return token;
  }

  /** One HTTP exchange, body included, under the timeout; network failures become PGVIP_VIP_IMDS. */
  async #request(what: string, path: string, method: 'GET' | 'PUT', headers: Record<string, string>): Promise<ImdsAnswer> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    try {
      const res = await this.#exchange(`${this.endpoint}${path}`, { method, headers, signal });
      return { status: res.status, text: await readReplyBody(res.body, res.headers, `IMDS at ${this.endpoint} ${what}`) };
    } catch (err) {
      if (err instanceof PgvipError) throw err; // PGVIP_REPLY_TOO_LARGE: it answered, with too much
      // The timeout ends the exchange wherever it is: before the answer, or in its body.
      const timedOut = signal.aborted || (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'));
      const why = timedOut
        ? `did not answer within ${this.#timeoutMs} ms (IMDS disabled, or the hop limit too low for a container?)`
        : `could not be reached: ${describeFetchError(err)}`;
      throw new PgvipError('PGVIP_VIP_IMDS', `IMDS at ${this.endpoint} ${why} (${what})`, { cause: err });
    }
  }
}

interface ImdsAnswer {
  readonly status: number;
  readonly text: string;
}

/** The reason (ECONNREFUSED, ...), also when an error keeps it in `cause`. */
function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

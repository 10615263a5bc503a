// The operator API as the CLI sees it: one small undici client with timeouts, the response shapes,
// and the mapping of every way a request can fail to an exit code and a sentence.
import { userInfo } from 'node:os';
import { isPgvipError, readReplyBody } from '@pgvip/shared';
import { Agent, request } from 'undici';
import type { PgvipEvent } from '../events.js';
import type { ClusterView } from '../view.js';
import { CliError, exitCodes, usageError } from './errors.js';

// The views are the witness's own types (view.ts): the CLI and the server cannot drift apart.
export type { ClusterView, NodeView } from '../view.js';

export interface CommandReply {
  readonly ok: boolean;
  readonly message: string;
}

export interface ClientOptions {
  /** Base URL of the operator API, e.g. http://127.0.0.1:8010. */
  readonly baseUrl: string;
  readonly token: string | undefined;
  /** Where the token came from, for the message when it is refused. */
  readonly tokenSource: string | undefined;
  readonly readTimeoutMs?: number;
  /** Commands (switchover, failover) may wait for the witness to finish them. */
  readonly commandTimeoutMs?: number;
  /** PEM CA(s) an https:// witness's certificate must chain to (--ca-file); default: the system's CAs. */
  readonly ca?: string;
  /** Where `ca` came from, for the message when the certificate is refused. */
  readonly caSource?: string;
}

/** Reads, then validates, the witness URL: a typo must be a usage error, not "unreachable". */
export function parseWitnessUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--witness ${text}: not a URL; give the operator API's address, e.g. http://127.0.0.1:8010`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--witness ${text}: must be an http:// or https:// URL`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}

export class OperatorClient {
  readonly baseUrl: string;
  readonly #options: ClientOptions;
  // Our own pool, closed at the end, so a finished command never waits on a keep-alive socket.
  // The certificate of an https:// witness is always verified (against --ca-file when given).
  readonly #dispatcher: Agent;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl;
    this.#options = options;
    const ca = options.ca === undefined ? {} : { ca: options.ca };
    this.#dispatcher = new Agent({ connect: { timeout: 3_000, ...ca } });
  }

  async close(): Promise<void> {
    await this.#dispatcher.destroy();
  }

  async clusters(): Promise<ClusterView[]> {
    const body = await this.#call('GET', '/api/v1/clusters');
    const list = (body as { clusters?: unknown }).clusters;
    if (!Array.isArray(list)) throw this.#notAWitness('the answer to GET /api/v1/clusters has no clusters list');
    return list.map((c) => this.#clusterView(c));
  }

  /** One cluster; undefined when the witness does not serve it. */
  async cluster(name: string): Promise<ClusterView | undefined> {
    const body = await this.#call('GET', `/api/v1/clusters/${encodeURIComponent(name)}`, undefined, { notFoundIsUndefined: true });
    return body === undefined ? undefined : this.#clusterView(body);
  }

  async history(name: string, limit: number, before?: number): Promise<PgvipEvent[]> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) query.set('before', String(before));
    const body = await this.#call('GET', `/api/v1/clusters/${encodeURIComponent(name)}/history?${query}`);
    const events = (body as { events?: unknown }).events;
    if (!Array.isArray(events)) throw this.#notAWitness('the history answer has no events list');
    return events as PgvipEvent[];
  }

  async command(name: string, command: 'switchover' | 'failover' | 'maintenance' | 'restart' | 'quorum-move', payload: object): Promise<CommandReply> {
    const body = await this.#call('POST', `/api/v1/clusters/${encodeURIComponent(name)}/${command}`, payload);
    const reply = body as Partial<CommandReply>;
    if (typeof reply.ok !== 'boolean') throw this.#notAWitness(`the answer to ${command} has no "ok" field`);
    return { ok: reply.ok, message: typeof reply.message === 'string' ? reply.message : '' };
  }

  #clusterView(raw: unknown): ClusterView {
    const c = raw as Partial<ClusterView> | null;
    if (c === null || typeof c !== 'object' || typeof c.cluster !== 'string' || !Array.isArray(c.nodes)) {
      throw this.#notAWitness('a cluster in the answer lacks its name or its nodes');
    }
    return { ...c, events: Array.isArray(c.events) ? c.events : [] } as ClusterView;
  }

  #notAWitness(why: string, code?: string): CliError {
    return new CliError(exitCodes.unreachable, `${this.baseUrl} did not answer like a pgvip witness (${why}); is --witness the operator API's address?`, code);
  }

  /** An error status without pgvip's error shape (`{"error": {"code": "PGVIP_…", "message": …}}`). */
  #notPgvip(status: number, text: string): CliError {
    // eslint-disable-next-line no-control-regex -- control characters are what must not reach the terminal
    const start = text.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim().slice(0, 100);
    const what = start === '' ? 'empty body' : `body: ${JSON.stringify(start)}`;
    return new CliError(exitCodes.unreachable, `the server at ${this.baseUrl} is not a pgvip witness (HTTP ${status}, ${what}); is --witness the operator API's address?`);
  }

  async #call(method: 'GET' | 'POST', path: string, payload?: object, opts: { notFoundIsUndefined?: boolean } = {}): Promise<unknown> {
    const timeoutMs = method === 'GET' ? (this.#options.readTimeoutMs ?? 5_000) : (this.#options.commandTimeoutMs ?? 60_000);
    // x-pgvip-operator: who asked, for the witness's history of operator commands.
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'pgvip-cli', 'x-pgvip-operator': operatorName() };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    // Every POST is JSON, an empty object at least: the witness refuses any other (a browser page
    // could send those without asking first).
    if (method === 'POST') headers['content-type'] = 'application/json';
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(method === 'POST' ? { body: JSON.stringify(payload ?? {}) } : {}),
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.statusCode;
      // Capped at 64 KiB: the witness's answers are a few KiB; whatever else answers decides the size.
      text = await readReplyBody(res.body, res.headers, `${method} ${path}`);
    } catch (err) {
      if (isPgvipError(err, 'PGVIP_REPLY_TOO_LARGE')) throw this.#notAWitness(err.detail, err.code);
      const why = describeNetworkError(err, timeoutMs);
      if (isCertificateError(err)) {
        const trusted = this.#options.caSource === undefined ? 'the system\'s CAs (pass --ca-file with the cluster\'s ca.crt)' : this.#options.caSource;
        throw new CliError(exitCodes.unreachable, `the witness at ${this.baseUrl} presented a certificate that was refused: ${why}; trusted: ${trusted}, and the certificate must name the host in --witness`);
      }
      if (this.baseUrl.startsWith('http:') && /ECONNRESET|socket|other side closed/i.test(why)) {
        throw new CliError(exitCodes.unreachable, `the witness at ${this.baseUrl} closed the connection: ${why}; if its operator API has TLS on (operatorApi.tls), use an https:// --witness`);
      }
      throw new CliError(exitCodes.unreachable, `cannot reach the witness at ${this.baseUrl}: ${why}; is pgvip-witness running, and is --witness (or PGVIP_WITNESS_URL) its operator API address?`);
    }
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      throw status >= 200 && status < 300 ? this.#notAWitness(`HTTP ${status} with a body that is not JSON`) : this.#notPgvip(status, text);
    }
    if (status >= 200 && status < 300) return body;
    const { error: apiError, message: topMessage } = (body ?? {}) as {
      error?: { code?: unknown; message?: unknown };
      message?: unknown;
    };
    const code = typeof apiError?.code === 'string' && apiError.code.startsWith('PGVIP_') ? apiError.code : undefined;
    // Every refusal of the witness is coded; one without a code (a 404 with an empty body, a
    // proxy's error page) comes from something else at that address. 503 is also what fastify
    // answers while the witness shuts down, so it keeps its own message.
    if (code === undefined && status !== 503) throw this.#notPgvip(status, text);
    // A refused command carries its plain sentence at the top level; coded errors start their
    // message with the code, which is printed once, in front.
    const rawMessage = typeof topMessage === 'string' ? topMessage : typeof apiError?.message === 'string' ? apiError.message : text.slice(0, 200);
    const message = code !== undefined && rawMessage.startsWith(`${code}: `) ? rawMessage.slice(code.length + 2) : rawMessage;
    if (status === 401 || status === 403) {
      const hint =
        this.#options.token === undefined
          ? 'the operator API needs a token: pass --token-file PATH (or set PGVIP_TOKEN_FILE); on the witness host, /etc/pgvip/operator.token is read by default when this user can see it (run as root)'
          : `the token from ${this.#options.tokenSource} was not accepted; check it matches the witness's operatorApi.tokenFile`;
      throw new CliError(exitCodes.auth, `the witness refused the request (HTTP ${status}${message ? `: ${message}` : ''}); ${hint}`, code);
    }
    if (status === 404 && opts.notFoundIsUndefined) return undefined;
    if (status === 503) throw new CliError(exitCodes.unreachable, `the witness at ${this.baseUrl} is unavailable (HTTP 503${message ? `: ${message}` : ''}); it may be starting or stopping`, code);
    if (status >= 500) throw new CliError(exitCodes.failed, `the witness failed the request (HTTP ${status}${code ? ` ${code}` : ''}): ${message}`, code);
    throw new CliError(exitCodes.failed, `the witness refused: ${code ? `${code}: ` : ''}${message}`, code);
  }
}

function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for our uid (a container): the environment may still know.
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

/** A TLS verification failure (unknown CA, expired, wrong name), as Node's TLS and undici report it. */
function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code ?? ((err as { cause?: { code?: unknown } }).cause?.code);
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code);
}

function describeNetworkError(err: unknown, timeoutMs: number): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError' || (err as { code?: unknown }).code === 'UND_ERR_CONNECT_TIMEOUT') return `no answer within ${timeoutMs} ms`;
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || err.message.includes(code)) return err.message;
  return `${code} (${err.message})`;
}

// A one-shot IMDSv2 reader for `pgvip doctor`: one session token, a few GETs, every request bounded
// (with the hop limit too low, as in a container, IMDS does not refuse: it never answers).
import { readFetchReplyBody } from '@pgvip/shared';

export const defaultImdsUrl = 'http://169.254.169.254';

export class ImdsReader {
  readonly endpoint: string;
  readonly #timeoutMs: number;
  #token: string | undefined;

  constructor(endpoint: string, timeoutMs: number) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  /** Fetches the session token; throws an Error saying what went wrong. */
  async token(): Promise<void> {
    const res = await this.#fetch('/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
    if (res.status !== 200) throw new Error(`PUT /latest/api/token answered HTTP ${res.status}`);
    const token = (await readFetchReplyBody(res, 'IMDS PUT /latest/api/token')).trim();
    if (token === '') throw new Error('PUT /latest/api/token answered an empty token');
    this.#token = token;
  }

  /** One metadata item, e.g. `instance-id`; undefined when IMDS has no such item (404). */
  async get(path: string): Promise<string | undefined> {
    if (this.#token === undefined) await this.token();
    const res = await this.#fetch(`/latest/meta-data/${path}`, { headers: { 'x-aws-ec2-metadata-token': this.#token! } });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path} answered HTTP ${res.status}`);
    return (await readFetchReplyBody(res, `IMDS GET ${path}`)).trim();
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.endpoint}${path}`, { ...init, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') throw new Error(`no answer within ${this.#timeoutMs} ms`);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
      const code = (cause as { code?: unknown } | undefined)?.code;
      if (cause !== undefined) throw new Error(typeof code === 'string' && !cause.message.includes(code) ? `${code} (${cause.message})` : cause.message);
      throw new Error(err instanceof Error ? err.message : String(err));
    }
  }
}

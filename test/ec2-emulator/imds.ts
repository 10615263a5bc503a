// IMDSv2 for ONE instance (the lab runs one per host namespace, as each EC2 host sees only itself):
// a session token from `PUT /latest/api/token`, then GETs that carry it. Data comes from the
// emulator's IMDS view, which trails the truth by `imdsLagMs`.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { RoleCredentials } from './credentials.js';
import { closeServer, listen } from './http-server.js';
import { instanceMetadata, lookupMetadata } from './instance-metadata.js';
import type { Ec2Snapshot } from './model.js';

export interface ImdsViewSource {
  imdsView(): Ec2Snapshot | Promise<Ec2Snapshot>;
  /** The instance role's current temporary credentials; undefined when the instance has none (or IAM is off). */
  roleCredentials?(instanceId: string): RoleCredentials | undefined | Promise<RoleCredentials | undefined>;
}

export interface ImdsOptions {
  readonly instanceId: string;
  /** The emulator (its handle or store), or `remoteImdsSource(url)` for an emulator in another process. */
  readonly source: ImdsViewSource;
  readonly host?: string;
  readonly port?: number;
  /** IMDSv2-only ("HttpTokens: required"), the default and what pgvip expects. */
  readonly tokensRequired?: boolean;
  /** Monotonic milliseconds, for token expiry. */
  readonly clock?: () => number;
}

export interface ImdsServer {
  readonly url: string;
  readonly port: number;
  readonly instanceId: string;
  close(): Promise<void>;
}

const tokenTtlHeader = 'x-aws-ec2-metadata-token-ttl-seconds';
const tokenHeader = 'x-aws-ec2-metadata-token';
const tokenTtlMaxSeconds = 21_600;

/** Reads the IMDS view from an emulator running in another process (its admin API). */
export function remoteImdsSource(emulatorUrl: string, timeoutMs = 2_000): ImdsViewSource {
  return {
    async imdsView() {
      const res = await fetch(new URL('/__admin/imds-view', emulatorUrl), { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(`the EC2 emulator at ${emulatorUrl} answered ${res.status}`);
      return (await res.json()) as Ec2Snapshot;
    },
    async roleCredentials(instanceId) {
      const res = await fetch(new URL(`/__admin/role-credentials/${encodeURIComponent(instanceId)}`, emulatorUrl), { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(`the EC2 emulator at ${emulatorUrl} answered ${res.status}`);
      return ((await res.json()) as { credentials: RoleCredentials | null }).credentials ?? undefined;
    },
  };
}

/** Paths whose answer depends on the instance role: the meta-data listing and everything under iam/. */
const roleDependentPath = /^\/latest\/meta-data\/?$|^\/latest\/meta-data\/iam(\/|$)/;

/** IMDS answers errors with a small HTML page, as the real one does. */
function sendError(res: ServerResponse, status: number, title: string): void {
  const html = `<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html>\n<html><head><title>${status} - ${title}</title></head>` +
    `<body><h1>${status} - ${title}</h1></body></html>\n`;
  res.writeHead(status, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(html), Server: 'EC2ws' }).end(html);
}

function sendText(res: ServerResponse, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text), Server: 'EC2ws', ...headers }).end(text);
}

export async function startImds(options: ImdsOptions): Promise<ImdsServer> {
  const { instanceId, source } = options;
  const clock = options.clock ?? (() => performance.now());
  const tokensRequired = options.tokensRequired ?? true;
  if (!instanceMetadata(await source.imdsView(), instanceId)) {
    throw new Error(`IMDS: instance ${instanceId} has no network interface in the EC2 emulator's state`);
  }
  const tokens = new Map<string, number>();

  function issueToken(req: IncomingMessage, res: ServerResponse): void {
    // IMDSv2 refuses token requests that went through a proxy (SSRF defence).
    if (req.headers['x-forwarded-for'] !== undefined) return sendError(res, 403, 'Forbidden');
    const ttlText = req.headers[tokenTtlHeader];
    const ttl = typeof ttlText === 'string' && /^\d+$/.test(ttlText.trim()) ? Number(ttlText) : NaN;
    if (!(ttl >= 1 && ttl <= tokenTtlMaxSeconds)) return sendError(res, 400, 'Bad Request');
    const now = clock();
    for (const [token, expiresAt] of tokens) if (expiresAt <= now) tokens.delete(token);
    const token = randomBytes(42).toString('base64');
    tokens.set(token, now + ttl * 1000);
    sendText(res, token, { [tokenTtlHeader]: String(ttl) });
  }

  function tokenAccepted(req: IncomingMessage): boolean {
    const token = req.headers[tokenHeader];
    if (token === undefined) return !tokensRequired;
    const expiresAt = typeof token === 'string' ? tokens.get(token) : undefined;
    return expiresAt !== undefined && expiresAt > clock();
  }

  async function serveMetadata(path: string, res: ServerResponse): Promise<void> {
    // Credentials are issued (and rotated) only when asked for, as the SDKs ask: not on every poll of local-ipv4s.
    const role = roleDependentPath.test(path) ? await source.roleCredentials?.(instanceId) : undefined;
    const tree = instanceMetadata(await source.imdsView(), instanceId, role);
    const text = tree && lookupMetadata(tree, path);
    if (text === undefined) return sendError(res, 404, 'Not Found');
    sendText(res, text);
  }

  const server = createServer((req, res) => {
    // Clients such as @aws-sdk/ec2-metadata-service request `//latest/...`: collapse the slashes.
    const path = new URL((req.url ?? '/').replace(/\/{2,}/g, '/'), 'http://imds').pathname;
    req.resume();
    if (path === '/latest/api/token') {
      if (req.method === 'PUT') return issueToken(req, res);
      return sendError(res, 405, 'Method Not Allowed');
    }
    if (req.method !== 'GET') return sendError(res, 405, 'Method Not Allowed');
    if (!tokenAccepted(req)) return sendError(res, 401, 'Unauthorized');
    serveMetadata(path, res).catch((err: unknown) => {
      console.error(`imds ${instanceId}: cannot read the emulator's view:`, err);
      sendError(res, 500, 'Internal Server Error');
    });
  });
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, host, options.port ?? 0);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    instanceId,
    close: () => closeServer(server),
  };
}

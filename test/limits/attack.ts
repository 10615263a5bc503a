// The two attacks on the daemons' HTTP edges (docs/security.md, HTTP limits), as reusable pieces
// for the limits test and bench (loopback only):
//
//  - slowBodies: many connections that send a request's headers, then one body byte now and then,
//    never finishing the request: without a request timeout each holds a socket (an fd) forever.
//  - bigReplyPeer: something at a peer's address that answers every request 200 with a huge body:
//    a client that buffers the whole reply before checking its MAC holds all of it in memory.
//
// Plus what measures them: a health prober on fresh connections (as a load balancer checks) and the
// peak resident memory of a process (VmHWM).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatKeyFile, generateKey } from '@pgvip/shared';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface SlowBodyStats {
  /** Connections that were established. */
  opened: number;
  /** Connections that failed to establish (refused, reset while connecting). */
  failed: number;
  /** Established connections the server ended (timeout, eviction), with how long each lived. */
  readonly cutAfterMs: number[];
  /** Connections still open. */
  open(): number;
}

export interface SlowBodyAttack {
  readonly stats: SlowBodyStats;
  /** Closes every connection and stops re-opening. */
  stop(): void;
}

/**
 * `connections` sockets that each send the headers of a POST with a 1000-byte body (under every
 * body limit, so only a timeout can end it), then one byte every `byteEveryMs`. With `reopen`, a
 * connection the server ends is replaced after `reopenDelayMs`, so the attack keeps `connections`
 * attempts going for as long as it runs (as a real attacker would).
 */
export function slowBodies(opts: {
  port: number;
  path: string;
  connections: number;
  byteEveryMs: number;
  reopen: boolean;
  reopenDelayMs?: number;
  host?: string;
}): SlowBodyAttack {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  let stopped = false;
  const cutAfterMs: number[] = [];
  const stats: SlowBodyStats = { opened: 0, failed: 0, cutAfterMs, open: () => sockets.size };
  const head = `POST ${opts.path} HTTP/1.1\r\nHost: ${host}:${opts.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;

  const openOne = (): void => {
    if (stopped) return;
    const started = performance.now();
    let established = false;
    const s = connect({ host, port: opts.port });
    sockets.add(s);
    let timer: NodeJS.Timeout | undefined;
    s.on('connect', () => {
      established = true;
      stats.opened++;
      s.write(head);
      timer = setInterval(() => s.write('{'), opts.byteEveryMs);
    });
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(timer);
      sockets.delete(s);
      if (stopped) return;
      if (established) cutAfterMs.push(performance.now() - started);
      else stats.failed++;
      if (opts.reopen) setTimeout(openOne, opts.reopenDelayMs ?? 100);
    });
  };
  for (let i = 0; i < opts.connections; i++) openOne();
  return {
    stats,
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

export interface ProbeResult {
  /** Latency of every answered probe, ms. */
  readonly okMs: number[];
  /** Probes that got no answer within the probe timeout, or an error. */
  failed: number;
  /** Why they failed: 'timeout', an error code (ECONNRESET, ...) or 'HTTP 5xx'. */
  readonly why: Record<string, number>;
}

/** GETs `path` every `everyMs` on a fresh connection each (as a load balancer's health check does) until stopped. */
export function probeHealth(
  opts: { port: number; path: string; everyMs: number; timeoutMs: number },
): { result: ProbeResult; stop(): Promise<void> } {
  const result: ProbeResult = { okMs: [], failed: 0, why: {} };
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      let done = false;
      const finish = (ok: boolean, why = '') => {
        if (done) return;
        done = true;
        if (ok) result.okMs.push(performance.now() - started);
        else {
          result.failed++;
          result.why[why] = (result.why[why] ?? 0) + 1;
        }
        resolve();
      };
      const req = httpRequest({ host: '127.0.0.1', port: opts.port, path: opts.path, agent: false, timeout: opts.timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => finish(res.statusCode !== undefined && res.statusCode < 500, `HTTP ${res.statusCode}`));
        res.on('error', (e: Error & { code?: string }) => finish(false, e.code ?? e.message));
      });
      req.on('timeout', () => {
        finish(false, 'timeout');
        req.destroy();
      });
      req.on('error', (e: Error & { code?: string }) => finish(false, e.code ?? e.message));
      req.end();
    });
  const loop = async () => {
    while (!stopped) {
      const next = performance.now() + opts.everyMs;
      await once();
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  };
  running = loop();
  return {
    result,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * An HTTP server that answers every request 200 with `bodyBytes` bytes (content-length set), or an
 * endless chunked body when bodyBytes is Infinity.
 */
export async function bigReplyPeer(bodyBytes: number): Promise<{
  port: number;
  server: Server;
  requests(): number;
  bytesSent(): number;
  close(): Promise<void>;
}> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  let requests = 0;
  const server = createHttpServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', ...(Number.isFinite(bodyBytes) ? { 'content-length': String(bodyBytes) } : {}) });
    let left = bodyBytes;
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const n = Math.min(chunk.length, left);
        left -= n;
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    server,
    requests: () => requests,
    bytesSent: () => sent,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Peak and current resident memory of a process, in MB (VmHWM, VmRSS). */
export function residentMb(pid: number): { peakMb: number; nowMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakMb: kb('VmHWM') / 1024, nowMb: kb('VmRSS') / 1024 };
}

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs a daemon's main.ts from source (tsx), with its soft and hard open-file limit set to `nofile`
 * by prlimit when given (prlimit execs the command, so the pid is the daemon's). `root` is the
 * checkout whose daemon runs (another one, to compare with an older release).
 */
export function runDaemon(mainTs: string, configFile: string, nofile?: number, root = repoRoot): Daemon {
  const node = [process.execPath, '--conditions=pgvip-source', '--import', 'tsx', path.join(root, mainTs), '--config', configFile];
  const [cmd, ...args] = nofile === undefined ? node : ['prlimit', `--nofile=${nofile}:${nofile}`, ...node];
  const child = spawn(cmd!, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' } });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => void (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => void (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Waits until GET url answers (any status), or throws with the daemon's output. */
export async function waitForHttp(url: string, daemon: Daemon, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (daemon.child.exitCode !== null || performance.now() > deadline) throw new Error(`${url} never answered:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * An agent config for db-a of cluster `orders`: nothing listens on its PostgreSQL port (the agent
 * runs as a node whose server is down, which is enough to serve its HTTP API), its peer and witness
 * at the given ports.
 */
export function agentConfigFile(
  ports: { agent: number; peer: number; witness: number; pg: number },
): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-limits-'));
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
  const file = path.join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `self: db-a
listen: { host: 127.0.0.1 }
stateDir: ${path.join(dir, 'state')}
logLevel: warn
cluster:
  name: orders
  nodes:
    - id: db-a
      agent: { host: 127.0.0.1, port: ${ports.agent} }
      postgres: { host: 127.0.0.1, port: ${ports.pg}, dataDir: ${path.join(dir, 'pgdata')} }
      vip: { eniId: eni-0aaa }
    - id: db-b
      agent: { host: 127.0.0.1, port: ${ports.peer} }
      postgres: { host: 127.0.0.1, port: ${ports.pg}, dataDir: ${path.join(dir, 'pgdata')} }
      vip: { eniId: eni-0bbb }
  witness: { host: 127.0.0.1, port: ${ports.witness} }
  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: config, interface: lo, region: us-east-1, prefixLength: 24 }
  auth: { keyFile: ${keyFile} }
`,
  );
  return { file, dir };
}

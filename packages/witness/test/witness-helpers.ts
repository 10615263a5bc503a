// Shared pieces of the witness daemon tests: real configs parsed by the real loader, an in-memory
// pino sink, a manual monotonic clock, emulated agents (signed protocol servers with a scripted
// status that grant nothing) and a stand-in for a PostgreSQL port. Everything binds to loopback
// and is closed by the test that made it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import {
  PROTOCOL_VERSION,
  createVerifier,
  generateKey,
  parseConfigText,
  registerProtocolRoutes,
  type AgentStatus,
  type ClusterKey,
  type PeerReply,
  type WitnessConfig,
} from '@pgvip/shared';
import type { Clock } from '../src/clock.js';
import { createWitnessDaemon, type WitnessDaemon, type WitnessDaemonDeps } from '../src/daemon.js';
import { nullNotifier } from '../src/events.js';

export function tempDir(t: TestContext, prefix = 'pgvip-witness-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Short timings that satisfy every inequality of the config schema, so tests run in well under a second per phase. */
export const fastTimings = {
  heartbeatMs: 100,
  requestTimeoutMs: 80,
  leaseMs: 600,
  leaseMarginMs: 50,
  failureChecks: 3,
  streamingGraceMs: 2000,
  // The VIP move must fit in what the short lease leaves between renewals (544 − 50 − 100 − 80 ms).
  vipCallBudgetMs: 300,
};
/** L·(1+ρ)+margin for fastTimings (ρ = 0.01): how long a grant or a restart holds back votes. */
export const fastPromiseMs = 600 * 1.01 + 50;

export interface NodePorts {
  readonly agentPort: number;
  readonly pgPort: number;
}

export interface ClusterSpec {
  readonly name: string;
  /** Ports of db-a and db-b (defaults: closed ports, nothing listens). */
  readonly nodes?: readonly [NodePorts, NodePorts];
  readonly key?: ClusterKey | null;
  readonly replication?: 'sync' | 'async';
}

export interface WitnessSpec {
  readonly stateDir: string;
  readonly clusters: readonly ClusterSpec[];
  /** The operator API's token (default: a random one, written to a 0600 file under stateDir). */
  readonly token?: string;
  /** operatorApi.auth: "disabled" instead of a token file (the unsafe mode, for its own tests). */
  readonly operatorAuth?: 'disabled';
  readonly timings?: Record<string, number>;
}

/** A loopback port where nothing listens (connects are refused at once). */
export const closedPort = 9;

/** Writes key and token files under stateDir and returns the config the real loader produced. */
export function witnessConfig(spec: WitnessSpec): WitnessConfig {
  // JSON is YAML: the real loader checks it exactly as it would a file.
  return parseConfigText(JSON.stringify(witnessDocument(spec)), 'witness', 'test-witness.yaml');
}

/** The witness config document (as a config file would hold it), with key and token files written under stateDir. */
export function witnessDocument(
  spec: WitnessSpec & { readonly listenPort?: number; readonly operatorPort?: number },
): Record<string, unknown> {
  const secrets = mkdtempSync(path.join(spec.stateDir, 'secrets-'));
  const clusters = spec.clusters.map((c, i) => {
    let auth: Record<string, unknown> = { disabled: true };
    if (c.key !== null) {
      const keyFile = path.join(secrets, `${c.name}.key`);
      writeFileSync(keyFile, `${(c.key ?? generateKey()).toString('hex')}\n`, { mode: 0o600 });
      auth = { keyFile };
    }
    const nodes = c.nodes ?? [
      { agentPort: closedPort, pgPort: closedPort },
      { agentPort: closedPort, pgPort: closedPort },
    ];
    return {
      name: c.name,
      nodes: ['db-a', 'db-b'].map((id, n) => ({
        id,
        agent: { host: '127.0.0.1', port: nodes[n]?.agentPort },
        postgres: { host: '127.0.0.1', port: nodes[n]?.pgPort, dataDir: '/var/lib/postgresql/15/main' },
      })),
      witness: { host: '127.0.0.1' },
      vip: { mode: 'secondary-ip', address: `198.18.${i}.100` },
      replication: { mode: c.replication ?? 'sync' },
      timings: spec.timings ?? fastTimings,
      auth,
    };
  });
  let operatorApi: Record<string, unknown> = { host: '127.0.0.1', port: spec.operatorPort ?? 8010 };
  if (spec.operatorAuth === 'disabled') {
    operatorApi = { ...operatorApi, auth: 'disabled' };
  } else {
    const tokenFile = path.join(secrets, 'operator.token');
    writeFileSync(tokenFile, `${spec.token ?? randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    operatorApi = { ...operatorApi, tokenFile };
  }
  return { stateDir: spec.stateDir, logLevel: 'debug', listen: { host: '127.0.0.1', port: spec.listenPort ?? 8009 }, operatorApi, clusters };
}

export interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A pino logger writing parsed lines into memory, so tests can assert on what was logged. */
export function memoryLog(): { log: Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogRecord) });
  return { log, lines };
}

/** A monotonic clock the test moves by hand, and a fixed wall clock. */
export function manualClock(startWallMs = Date.UTC(2030, 0, 31, 12, 0, 0)): Clock & { advance(ms: number): void } {
  let mono = 1_000;
  let wall = startWallMs;
  return {
    monotonicMs: () => mono,
    wallMs: () => wall,
    advance(ms: number) {
      mono += ms;
      wall += ms;
    },
  };
}

/** A witness daemon with no notifications, closed when the test ends. */
export async function startDaemon(
  t: TestContext,
  config: WitnessConfig,
  deps: Partial<WitnessDaemonDeps> = {},
): Promise<WitnessDaemon & { lines: LogRecord[] }> {
  const { log, lines } = memoryLog();
  const daemon = await createWitnessDaemon(config, { log, notifierFor: () => nullNotifier, ...deps });
  t.after(() => daemon.close());
  return Object.assign(daemon, { lines });
}

/** A status as an agent reports it; `over` replaces fields (pg fields merge). */
export function agentStatus(cluster: string, from: string, over: Partial<Omit<AgentStatus, 'pg'>> & { pg?: Partial<AgentStatus['pg']> } = {}): AgentStatus {
  const { pg, ...rest } = over;
  return {
    v: PROTOCOL_VERSION,
    cluster,
    term: 1,
    from,
    primaryOfTerm: 'db-a',
    role: from === 'db-a' ? 'primary' : 'standby',
    leaseRemainingMs: from === 'db-a' ? 2500 : 0,
    promotionBlocker: from === 'db-a' ? 'not a standby (postgresql is not in recovery)' : null,
    maintenance: false,
    ...rest,
    pg: {
      running: true,
      inRecovery: from !== 'db-a',
      writable: from === 'db-a',
      timeline: 1,
      lsn: from === 'db-a' ? 0x3000060n : 0x3000000n,
      replayLsn: from === 'db-a' ? 0x3000060n : 0x3000000n,
      streaming: from !== 'db-a',
      syncStandby: from === 'db-a' ? 'db-b' : null,
      standbyInSync: from === 'db-a',
      ...pg,
    },
  };
}

export interface EmulatedAgent {
  readonly app: FastifyInstance;
  readonly port: number;
  /** GET /v1/status requests served so far. */
  readonly statusCalls: () => number;
  setStatus(s: AgentStatus): void;
  close(): Promise<void>;
}

/**
 * An agent that serves a scripted status on GET /v1/status and refuses every request (grants no
 * lease, accepts no switchover), over a real loopback socket with the real signed protocol routes.
 */
export async function emulatedAgent(
  t: TestContext,
  o: { cluster: string; node: string; peer: string; key: ClusterKey | null; status: AgentStatus },
): Promise<EmulatedAgent> {
  const app = Fastify();
  let status = o.status;
  let calls = 0;
  const members = [o.peer, 'witness'];
  registerProtocolRoutes(app, {
    daemon: 'agent',
    verifier: createVerifier({
      self: o.node,
      clusters: { [o.cluster]: o.key === null ? { members, authDisabled: true } : { members, key: o.key } },
    }),
    status: () => {
      calls++;
      return status;
    },
    handle: (msg): PeerReply => {
      const env = { v: PROTOCOL_VERSION, cluster: o.cluster, term: status.term, from: o.node } as const;
      if (msg.kind === 'lease-request') return { ...env, kind: 'lease-reply', seq: msg.seq, granted: false, reason: 'emulated agent grants nothing', primaryOfTerm: status.primaryOfTerm, maintenance: false };
      return { ...env, kind: 'ack', accepted: false, reason: 'emulated agent accepts nothing' };
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
  };
  t.after(close);
  return {
    app,
    port: (app.server.address() as { port: number }).port,
    statusCalls: () => calls,
    setStatus: (s) => void (status = s),
    close,
  };
}

/**
 * Stands in for a PostgreSQL port: reads the witness's 16-byte probe and closes the connection,
 * as a live postmaster does with a CancelRequest for an unknown process.
 */
export async function fakePostgres(
  t: TestContext,
): Promise<{ port: number; probes: () => number; close(): Promise<void> }> {
  let probes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let got = 0;
    socket.on('data', (chunk) => {
      got += chunk.length;
      if (got >= 16) {
        probes++;
        socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { port, probes: () => probes, close };
}

/** Polls `check` every 20 ms until it returns true, or fails after timeoutMs with `what`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

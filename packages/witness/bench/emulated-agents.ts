// The agents side of `npm run bench:witness`: one process hosting both agents of N clusters, each
// on its own loopback HTTP server (real sockets, real signed protocol: the witness cannot tell them
// from real agents), plus a stand-in PostgreSQL port per node. The primaries also renew their
// lease with the witness every heartbeat, as real primaries do, so the witness carries its full
// steady-state load.
//
// It measures what the witness cannot measure about itself: when each status poll arrived. A poll
// that arrives more than 1.5 heartbeats after the previous one of the same node is a missed
// heartbeat. Controlled by the parent over IPC: 'start-leases', 'window-start', 'window-end', 'exit'.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  AuthenticatedRejection,
  PROTOCOL_VERSION,
  createPeerClient,
  createSigner,
  createVerifier,
  errorBody,
  isPgvipError,
  parseKeyFile,
  serializeMessage,
  type AgentStatus,
  type ClusterKey,
  type PeerClient,
  type Verifier,
  type VerifiedRequest,
} from '@pgvip/shared';

export interface AgentNode {
  readonly cluster: string;
  readonly node: 'db-a' | 'db-b';
  readonly agentPort: number;
  readonly pgPort: number;
}

export type ParentMessage =
  | { readonly kind: 'start-leases'; readonly witnessPort: number }
  | { readonly kind: 'window-start' }
  | { readonly kind: 'window-end' }
  | { readonly kind: 'exit' };

export type ChildMessage =
  | { readonly kind: 'ready'; readonly nodes: readonly AgentNode[] }
  | { readonly kind: 'report'; readonly report: AgentsReport };

export interface AgentsReport {
  readonly windowMs: number;
  readonly polls: number;
  /**
   * Polls that arrived more than 1.5 heartbeats after the previous one of the same node (includes
   * the agents' own lag).
   */
  readonly missedHeartbeats: number;
  readonly maxPollGapMs: number;
  /** Nodes that were never polled in the window. */
  readonly unpolledNodes: number;
  readonly leases: number;
  readonly leasesRefused: number;
  readonly leaseErrors: number;
  readonly leaseP99Ms: number;
  /** This process's own CPU over the window, in % of one core (the load generator must not be the bottleneck). */
  readonly cpuPctOfCore: number;
}

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

const clusters = Number(arg('clusters'));
const keyDir = arg('keys');
const heartbeatMs = Number(arg('heartbeat'));
const send = (m: ChildMessage) => process.send?.(m);

const keys = new Map<string, ClusterKey>();
const names = Array.from({ length: clusters }, (_, i) => `c${String(i + 1).padStart(3, '0')}`);
for (const name of names) keys.set(name, parseKeyFile(readFileSync(path.join(keyDir, `${name}.key`), 'utf8'), name));

// One verifier per node id: a verifier holds every cluster's key and checks the request is addressed to it.
const verifiers: Record<'db-a' | 'db-b', Verifier> = {
  'db-a': createVerifier({ self: 'db-a', clusters: Object.fromEntries(names.map((n) => [n, { members: ['db-b', 'witness'], key: keys.get(n) as ClusterKey }])) }),
  'db-b': createVerifier({ self: 'db-b', clusters: Object.fromEntries(names.map((n) => [n, { members: ['db-a', 'witness'], key: keys.get(n) as ClusterKey }])) }),
};

const started = performance.now();
function status(cluster: string, node: 'db-a' | 'db-b'): AgentStatus {
  const primary = node === 'db-a';
  // WAL moves on as on a busy primary; the standby trails a little.
  const lsn = BigInt(0x3000000 + Math.floor((performance.now() - started) * 100));
  return {
    v: PROTOCOL_VERSION,
    cluster,
    term: 1,
    from: node,
    primaryOfTerm: 'db-a',
    role: primary ? 'primary' : 'standby',
    leaseRemainingMs: primary ? 2500 : 0,
    promotionBlocker: primary ? 'not a standby (postgresql is not in recovery)' : null,
    maintenance: false,
    pg: {
      running: true,
      inRecovery: !primary,
      writable: primary,
      timeline: 1,
      lsn: primary ? lsn : lsn - 512n,
      replayLsn: primary ? lsn : lsn - 1024n,
      streaming: !primary,
      syncStandby: primary ? 'db-b' : null,
      standbyInSync: primary,
    },
  };
}

// Poll arrival bookkeeping, per node.
let windowOpen = false;
let windowStartedAt = 0;
let cpuAtStart = process.cpuUsage();
let polls = 0;
let missed = 0;
let maxGap = 0;
const lastPollAt = new Map<string, number>();
const polledInWindow = new Set<string>();

function notePoll(key: string): void {
  const now = performance.now();
  const last = lastPollAt.get(key);
  lastPollAt.set(key, now);
  if (!windowOpen) return;
  polls++;
  polledInWindow.add(key);
  if (last !== undefined && last >= windowStartedAt - 1.5 * heartbeatMs) {
    const gap = now - last;
    maxGap = Math.max(maxGap, gap);
    if (gap > 1.5 * heartbeatMs) missed++;
  }
}

function reply(
  res: ServerResponse,
  verifier: Verifier,
  signFor: VerifiedRequest | null,
  code: number,
  body: string,
): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(signFor === null ? {} : verifier.signReply(signFor, { status: code, body })) };
  res.writeHead(code, headers).end(body);
}

function handler(node: 'db-a' | 'db-b', cluster: string) {
  const verifier = verifiers[node];
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified: VerifiedRequest | null = null;
      try {
        const statusPoll = req.method === 'GET' && (req.url === '/v1/status' || req.url === '/v2/status');
        if (statusPoll) notePoll(`${cluster}/${node}`);
        verified = verifier.verifyRequest({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
        if (statusPoll) return reply(res, verifier, verified, 200, serializeMessage(status(verified.cluster, node)));
        // The witness sends nothing else in steady state; anything else is refused, signed.
        return reply(res, verifier, verified, 200, serializeMessage({ v: PROTOCOL_VERSION, cluster, term: 1, from: node, kind: 'ack', accepted: false, reason: 'bench agent accepts nothing' }));
      } catch (e) {
        const known = e instanceof AuthenticatedRejection ? e.request : verified;
        const code = isPgvipError(e) ? (e.httpStatus ?? 500) : 500;
        return reply(res, verifier, known, code, isPgvipError(e) ? errorBody(e) : '{}');
      }
    });
  };
}

/** A PostgreSQL stand-in: reads the witness's 16-byte probe and closes, as a postmaster does. */
function pgServer(sockets: Set<Socket>): TcpServer {
  return createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let got = 0;
    s.on('data', (c) => {
      got += c.length;
      if (got >= 16) s.end();
    });
  });
}

const listen = (server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }) =>
  new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));

const sockets = new Set<Socket>();
const servers: { close(): unknown }[] = [];
const nodes: AgentNode[] = [];
for (const cluster of names) {
  for (const node of ['db-a', 'db-b'] as const) {
    const http = createHttpServer({ keepAliveTimeout: 60_000 }, handler(node, cluster));
    const pg = pgServer(sockets);
    servers.push(http, pg);
    nodes.push({ cluster, node, agentPort: await listen(http), pgPort: await listen(pg) });
  }
}

// Lease renewals of the 100 primaries.
const leaseTimers: NodeJS.Timeout[] = [];
const leaseClients: PeerClient[] = [];
let leases = 0;
let leasesRefused = 0;
let leaseErrors = 0;
let leaseLatencies: number[] = [];

function startLeases(witnessPort: number): void {
  names.forEach((cluster, i) => {
    const client = createPeerClient({ signer: createSigner({ cluster, sender: 'db-a', key: keys.get(cluster) as ClusterKey }), peers: { witness: { host: '127.0.0.1', port: witnessPort } }, timeoutMs: 400 });
    leaseClients.push(client);
    let seq = 0;
    let inFlight = false;
    const renew = () => {
      if (inFlight) return;
      inFlight = true;
      const t0 = performance.now();
      client
        .send('witness', { v: PROTOCOL_VERSION, cluster, term: 1, from: 'db-a', kind: 'lease-request', seq: ++seq, lsn: 0x3000000n, timeline: 1, syncStandby: 'db-b' })
        .then(
          (r) => {
            if (!windowOpen) return;
            leases++;
            leaseLatencies.push(performance.now() - t0);
            if (r.kind !== 'lease-reply' || !r.granted) leasesRefused++;
          },
          () => {
            if (windowOpen) leaseErrors++;
          },
        )
        .finally(() => (inFlight = false));
    };
    // Spread the renewals over the heartbeat, as independent primaries would be.
    setTimeout(() => leaseTimers.push(setInterval(renew, heartbeatMs)), (i / names.length) * heartbeatMs);
  });
}

process.on('message', (m: ParentMessage) => {
  switch (m.kind) {
    case 'start-leases':
      startLeases(m.witnessPort);
      return;
    case 'window-start':
      windowOpen = true;
      windowStartedAt = performance.now();
      cpuAtStart = process.cpuUsage();
      polls = missed = maxGap = leases = leasesRefused = leaseErrors = 0;
      leaseLatencies = [];
      polledInWindow.clear();
      return;
    case 'window-end': {
      windowOpen = false;
      const sorted = [...leaseLatencies].sort((a, b) => a - b);
      const unpolled = nodes.length - polledInWindow.size;
      const cpu = process.cpuUsage(cpuAtStart);
      const windowMs = performance.now() - windowStartedAt;
      send({
        kind: 'report',
        report: {
          windowMs,
          polls,
          missedHeartbeats: missed,
          maxPollGapMs: Math.round(maxGap),
          unpolledNodes: unpolled,
          leases,
          leasesRefused,
          leaseErrors,
          leaseP99Ms:
            Math.round((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN) * 100) / 100,
          cpuPctOfCore: Math.round(((cpu.user + cpu.system) / 1000 / windowMs) * 1000) / 10,
        },
      });
      return;
    }
    case 'exit':
      for (const t of leaseTimers) clearInterval(t);
      void Promise.all(leaseClients.map((c) => c.close())).finally(() => {
        for (const s of sockets) s.destroy();
        for (const s of servers) s.close();
        process.exit(0);
      });
      return;
  }
});

// Orphaned (the parent died): leave at once.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', nodes });

// `npm run bench:limits`: the daemons under the two HTTP attacks of docs/security.md (HTTP limits),
// on loopback, each daemon a real process run from source with the default open-file limit (1024):
//
//  1. big replies: a fake peer answers every request 200 with 1 GB (content-length set). The agent
//     (polling its peer's status) and the witness (polling both agents) run against it for
//     PGVIP_BENCH_SECONDS; reported: each daemon's peak resident memory (VmHWM), and the same for a
//     peer that answers 2 bytes (the baseline: the daemons run from source, under tsx).
//  2. slow bodies: 1,000 connections send a request's headers, then one byte every 10 s, and are
//     re-opened a second (PGVIP_BENCH_REOPEN_MS) after being cut; /health is checked every 100 ms
//     on a fresh connection (2 s timeout), as a load balancer would, first for 5 s without the
//     attack, then during it. Reported: p50/p99 of the answered checks, how many went unanswered, and
//     how long the server let the slow connections live. The agent's port; then the witness's peer
//     and operator ports together (500 each), with /health on the operator port.
//
// Writes bench/results/limits.json (PGVIP_BENCH_OUT: another name in that directory).
// Usage: npm run bench:limits [-- big-replies|slow-bodies]
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { witnessDocument } from '../../packages/witness/test/witness-helpers.js';
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import { agentConfigFile, bigReplyPeer, freePort, percentile, probeHealth, repoRoot, residentMb, runDaemon, slowBodies, waitForHttp, type Daemon } from './attack.js';

const usage = `usage: npm run bench:limits [-- big-replies|slow-bodies]   (loopback; no lab, no root needed)
  the agent and the witness under the big-reply and slow-body attacks; writes bench/results/limits.json.
  Environment: PGVIP_BENCH_SECONDS (per measurement, default 20), PGVIP_BENCH_REOPEN_MS (default 1000),
  PGVIP_BENCH_DAEMON_ROOT (another checkout whose daemons to measure), PGVIP_BENCH_OUT (file name)`;
const { positionals } = parseCommandLine({ usage, allowPositionals: true });
if (positionals.length > 1 || !['all', 'big-replies', 'slow-bodies'].includes(positionals[0] ?? 'all')) usageError(usage, `unexpected argument: ${positionals.join(' ')}`);
const which = positionals[0] ?? 'all';

const SECONDS = Number(process.env.PGVIP_BENCH_SECONDS ?? 20);
const NOFILE = 1024;
/** How long the attacker waits before re-opening a connection the server cut (ms). */
const REOPEN_MS = Number(process.env.PGVIP_BENCH_REOPEN_MS ?? 1000);
/**
 * Another checkout whose daemons to measure (e.g. an older commit, unpacked with its node_modules),
 * for a before/after.
 */
const DAEMON_ROOT = process.env.PGVIP_BENCH_DAEMON_ROOT ?? repoRoot;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 10) / 10;

async function peakUnder(daemon: Daemon, seconds: number): Promise<{ peakMb: number; endMb: number }> {
  let last = residentMb(daemon.pid);
  for (let s = 0; s < seconds; s++) {
    await sleep(1_000);
    if (daemon.child.exitCode !== null) break;
    last = residentMb(daemon.pid);
  }
  return { peakMb: round(last.peakMb), endMb: round(last.nowMb) };
}

async function startAgent(peerPort: number): Promise<{ daemon: Daemon; port: number }> {
  const [agent, pg] = await Promise.all([freePort(), freePort()]);
  const { file } = agentConfigFile({ agent, peer: peerPort, witness: peerPort, pg });
  const daemon = runDaemon('packages/agent/src/main.ts', file, NOFILE, DAEMON_ROOT);
  await waitForHttp(`http://127.0.0.1:${agent}/health`, daemon);
  return { daemon, port: agent };
}

async function startWitness(agentPort: number): Promise<{ daemon: Daemon; port: number; operatorPort: number }> {
  const [port, operatorPort, pg] = await Promise.all([freePort(), freePort(), freePort()]);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pgvip-limits-witness-'));
  const doc = witnessDocument({
    stateDir,
    listenPort: port,
    operatorPort,
    token: 'bench-token-0123456789abcdef',
    clusters: [{ name: 'orders', nodes: [{ agentPort, pgPort: pg }, { agentPort, pgPort: pg }] }],
    timings: {
      heartbeatMs: 1000,
      requestTimeoutMs: 500,
      leaseMs: 6000,
      leaseMarginMs: 300,
      failureChecks: 3,
      streamingGraceMs: 10000,
    },
  });
  const file = path.join(stateDir, 'witness.yaml');
  writeFileSync(file, JSON.stringify({ ...doc, logLevel: 'warn' }));
  const daemon = runDaemon('packages/witness/src/main.ts', file, NOFILE, DAEMON_ROOT);
  await waitForHttp(`http://127.0.0.1:${operatorPort}/health`, daemon);
  return { daemon, port, operatorPort };
}

async function bigReplies() {
  const out: Record<string, unknown> = {};
  // Each daemon once against a peer answering 2 bytes (what it costs anyway: run from source, tsx's
  // compiler takes its share), then against the 1 GB one: the difference is the attack's.
  for (const [label, bytes] of [
    ['baseline', 2],
    ['attack', 1024 ** 3],
  ] as const) {
    const peer = await bigReplyPeer(bytes);
    try {
      for (const [name, start] of [
        ['agent', () => startAgent(peer.port)],
        ['witness', () => startWitness(peer.port)],
      ] as const) {
        const before = peer.requests();
        const { daemon } = await start();
        let row: Record<string, unknown>;
        try {
          const mem = await peakUnder(daemon, SECONDS);
          row = { ...mem, requests: peer.requests() - before, alive: daemon.child.exitCode === null };
        } finally {
          await daemon.stop();
        }
        out[`${name}-${label}`] = row;
        console.log(`big replies: ${name} ${label}: ${JSON.stringify(row)}`);
      }
      if (label === 'attack') out.peerMbSent = Math.round(peer.bytesSent() / 1024 ** 2);
    } finally {
      await peer.close();
    }
  }
  return out;
}

async function slowBodyRun(
  name: string,
  targets: { port: number; path: string; connections: number }[],
  healthPort: number,
) {
  // The same checks without an attack first: what the latency is anyway on this machine.
  const quiet = probeHealth({ port: healthPort, path: '/health', everyMs: 100, timeoutMs: 2_000 });
  await sleep(5_000);
  await quiet.stop();
  const attacks = targets.map((t) => slowBodies({ ...t, byteEveryMs: 10_000, reopen: true, reopenDelayMs: REOPEN_MS }));
  await sleep(2_000);
  const probe = probeHealth({ port: healthPort, path: '/health', everyMs: 100, timeoutMs: 2_000 });
  await sleep(SECONDS * 1000);
  await probe.stop();
  const cut = attacks.flatMap((a) => a.stats.cutAfterMs);
  const result = {
    quietHealthP50Ms: round(percentile(quiet.result.okMs, 50)),
    quietHealthP99Ms: round(percentile(quiet.result.okMs, 99)),
    healthP50Ms: round(percentile(probe.result.okMs, 50)),
    healthP99Ms: round(percentile(probe.result.okMs, 99)),
    healthAnswered: probe.result.okMs.length,
    healthUnanswered: probe.result.failed,
    healthUnansweredWhy: probe.result.why,
    slowOpened: attacks.reduce((n, a) => n + a.stats.opened, 0),
    slowRefused: attacks.reduce((n, a) => n + a.stats.failed, 0),
    slowCut: cut.length,
    slowCutP50Ms: round(percentile(cut, 50)),
    slowStillOpen: attacks.reduce((n, a) => n + a.stats.open(), 0),
  };
  for (const a of attacks) a.stop();
  console.log(`slow bodies: ${name}: ${JSON.stringify(result)}`);
  return result;
}

async function slowBodyAttacks() {
  const out: Record<string, unknown> = {};
  const peer = await bigReplyPeer(2); // something small to poll
  try {
    const agent = await startAgent(peer.port);
    try {
      out.agent = await slowBodyRun('agent', [{ port: agent.port, path: '/v1/lease', connections: 1000 }], agent.port);
    } finally {
      await agent.daemon.stop();
    }
    const witness = await startWitness(peer.port);
    try {
      out.witness = await slowBodyRun(
        'witness',
        [
          { port: witness.port, path: '/v1/lease', connections: 500 },
          { port: witness.operatorPort, path: '/api/v1/clusters/orders/maintenance', connections: 500 },
        ],
        witness.operatorPort,
      );
    } finally {
      await witness.daemon.stop();
    }
  } finally {
    await peer.close();
  }
  return out;
}

const results: Record<string, unknown> = { daemons: DAEMON_ROOT === repoRoot ? 'this checkout' : DAEMON_ROOT, seconds: SECONDS, nofile: NOFILE, reopenMs: REOPEN_MS, at: new Date().toISOString() };
if (which === 'all' || which === 'big-replies') results.bigReplies = await bigReplies();
if (which === 'all' || which === 'slow-bodies') results.slowBodies = await slowBodyAttacks();
const dir = path.join(repoRoot, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.resolve(dir, process.env.PGVIP_BENCH_OUT ?? 'limits.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(results, null, 2));

// `npm run bench:witness`: can one witness serve 100 clusters at the default heartbeat
// (docs/design.md, Targets)?
//
// Starts the real witness (`pgvip-witness`, its own process) on a config of N clusters whose 2·N
// agents are emulated by a second process (emulated-agents.ts: real loopback sockets, the real
// signed protocol, a PostgreSQL stand-in per node, and lease renewals from every primary). After a
// warm-up it measures for --duration seconds:
//
//   missed_heartbeats  polls that started more than 1.5 heartbeats after the previous poll of the
//                      same node (the witness's pgvip_witness_missed_heartbeats_total), plus nodes
//                      never polled in the window (seen by the agents, so a stuck witness cannot
//                      hide them). The agents also report late *arrivals*, which include their own lag.
//   poll_p99_ms        99th percentile of one poll (status, and the PostgreSQL probe if made), from the witness's
//                      own histogram over the window (interpolated inside a bucket, as Prometheus does)
//   cpu_pct_of_core    the witness process's CPU time (process.cpuUsage, exported as
//                      process_cpu_seconds_total) over wall time, in % of one core
//   rss_mb             the witness's largest resident set size seen in the window
//
// The witness runs as deployed: compiled (`tsc -b packages/witness` first, then dist/main.js), with the
// node flags and environment of deploy/systemd/pgvip-witness.service;
// `--runtime source` runs it from TypeScript through tsx instead (more memory, same logic).
//
// Usage:
//   npm run bench:witness [-- --clusters 100 --duration 60 --warmup 10 --runtime dist --out bench/results/witness.json]
// Environment: PGVIP_BENCH_KEEP=1 keeps the temporary directory (config, state, witness log).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { defaultTimings, formatKeyFile, generateKey } from '@pgvip/shared';
import { parseCommandLine, usageError } from '../../../scripts/cli-args.mjs';
import type { AgentNode, AgentsReport, ChildMessage, ParentMessage } from './emulated-agents.js';
import { daemonUnitEnvironment, daemonUnitNodeFlags } from '../../../test/deploy/systemd-unit.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

const usage = `usage: npm run bench:witness [-- --clusters N --duration S --warmup S --runtime dist|source --out FILE]
  --clusters N       clusters the witness serves, two emulated agents each (default 100)
  --duration S       seconds measured (default 60), after --warmup S seconds (default 10)
  --runtime R        run the witness compiled (dist, the default; builds it first) or from source
  --out FILE         where the results go (default bench/results/witness.json)`;
const { values: args } = parseCommandLine({
  usage,
  options: { clusters: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, runtime: { type: 'string' }, out: { type: 'string' } },
});
const clusters = Number(args.clusters ?? '100');
const durationS = Number(args.duration ?? '60');
const warmupS = Number(args.warmup ?? '10');
const outFile = path.resolve(repoRoot, args.out ?? 'bench/results/witness.json');
const runtime = args.runtime ?? 'dist';
if (runtime !== 'dist' && runtime !== 'source') usageError(usage, `--runtime must be dist or source (got ${runtime})`);
for (const [name, n] of [['clusters', clusters], ['duration', durationS], ['warmup', warmupS]] as const) {
  if (!Number.isInteger(n) || n < 0) usageError(usage, `--${name} must be a whole number (got ${args[name]})`);
}
const heartbeatMs = defaultTimings.heartbeatMs;

/** What "one witness serves 100 clusters at the default heartbeat" has to mean in numbers. */
const targets = {
  missed_heartbeats: { max: 0, why: 'every node polled every heartbeat: failure detection time depends on it' },
  poll_p99_ms: { max: 100, why: 'a quarter of requestTimeoutMs (400 ms): polls never come near timing out on their own' },
  cpu_pct_of_core: { max: 25, why: 'a quarter of one core, so the one event loop has 4x headroom for bursts (failovers, scrapes, a loaded host) and the second core stays free (docs/design.md, Targets: 2 cores)' },
  rss_mb: { max: 160, why: 'Node itself and the daemon\'s code take about 80 MB, the live heap of 100 clusters 30–50 MB; the rest is room for heap growth between major collections. Fits a 1 GB instance next to the OS' },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nodeArgs = ['--conditions=pgvip-source', '--import', 'tsx'];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Parses Prometheus text into name{labels} → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of every series of a metric (all label values). */
function sumOf(m: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [key, value] of m) if (key === name || key.startsWith(`${name}{`)) sum += value;
  return sum;
}

/** % of the observations between two scrapes of a histogram that were slower than `le` (a bucket bound). */
function slowerThanPct(name: string, before: Map<string, number>, after: Map<string, number>, le: number): number {
  const key = `${name}_bucket{le="${le}"}`;
  const total = (after.get(`${name}_count`) ?? 0) - (before.get(`${name}_count`) ?? 0);
  const within = (after.get(key) ?? NaN) - (before.get(key) ?? 0);
  return total === 0 ? NaN : Math.round(((total - within) / total) * 10000) / 100;
}

/** The q-quantile of the difference of two scrapes of a histogram, interpolated linearly in its bucket. */
function histogramQuantile(name: string, before: Map<string, number>, after: Map<string, number>, q: number): number {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of after) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`).exec(key);
    if (m?.[1] === undefined) continue;
    buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: value - (before.get(key) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-witness-bench-'));
  const children: ChildProcess[] = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // PGVIP_BENCH_KEEP=1 keeps the config, state and witness log for a look afterwards.
    if (process.env.PGVIP_BENCH_KEEP === '1') console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    // Keys, one per cluster, shared by the witness config and the emulated agents.
    const keyDir = path.join(dir, 'keys');
    mkdirSync(keyDir, { mode: 0o700 });
    const names = Array.from({ length: clusters }, (_, i) => `c${String(i + 1).padStart(3, '0')}`);
    for (const name of names) writeFileSync(path.join(keyDir, `${name}.key`), formatKeyFile(generateKey()), { mode: 0o600 });
    // The operator API's token (the witness requires one): the bench reads metrics and views with it.
    const operatorToken = generateKey().toString('hex');
    const tokenFile = path.join(keyDir, 'operator.token');
    writeFileSync(tokenFile, `${operatorToken}\n`, { mode: 0o600 });
    const operatorAuth = { headers: { authorization: `Bearer ${operatorToken}` } };

    console.log(`starting ${2 * clusters} emulated agents ...`);
    const agents = spawn(process.execPath, [...nodeArgs, path.join(here, 'emulated-agents.ts'), '--clusters', String(clusters), '--keys', keyDir, '--heartbeat', String(heartbeatMs)], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(agents);
    const fromAgents = (kind: ChildMessage['kind']) =>
      new Promise<ChildMessage>((resolve, reject) => {
        const onMessage = (m: ChildMessage) => {
          if (m.kind !== kind) return;
          agents.off('message', onMessage);
          resolve(m);
        };
        agents.on('message', onMessage);
        agents.once('exit', (code) => reject(new Error(`emulated agents exited with ${code}`)));
      });
    const toAgents = (m: ParentMessage) => agents.send(m);
    const ready = await fromAgents('ready');
    const nodes = (ready as Extract<ChildMessage, { kind: 'ready' }>).nodes;

    const listenPort = await freePort();
    const operatorPort = await freePort();
    const byCluster = new Map<string, AgentNode[]>();
    for (const n of nodes) byCluster.set(n.cluster, [...(byCluster.get(n.cluster) ?? []), n]);
    const config = {
      stateDir: path.join(dir, 'state'),
      logLevel: 'info',
      listen: { host: '127.0.0.1', port: listenPort },
      operatorApi: { host: '127.0.0.1', port: operatorPort, tokenFile },
      clusters: names.map((name, i) => ({
        name,
        nodes: (byCluster.get(name) ?? []).map((n) => ({
          id: n.node,
          agent: { host: '127.0.0.1', port: n.agentPort },
          postgres: { host: '127.0.0.1', port: n.pgPort, dataDir: '/var/lib/postgresql/15/main' },
        })),
        witness: { host: '127.0.0.1', port: listenPort },
        vip: { mode: 'secondary-ip', address: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}` },
        auth: { keyFile: path.join(keyDir, `${name}.key`) },
      })),
    };
    const configFile = path.join(dir, 'witness.yaml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));

    let witnessArgs = [...nodeArgs, path.join(repoRoot, 'packages/witness/src/main.ts')];
    if (runtime === 'dist') {
      console.log('compiling the witness (tsc -b packages/witness) ...');
      const built = spawnSync('npx', ['tsc', '-b', 'packages/witness'], { cwd: repoRoot, stdio: 'inherit' });
      if (built.status !== 0) throw new Error('tsc -b packages/witness failed; fix the build or use --runtime source');
      witnessArgs = [path.join(repoRoot, 'packages/witness/dist/main.js')];
    }
    console.log(`starting the witness (${runtime}) for ${clusters} clusters (heartbeat ${heartbeatMs} ms) ...`);
    const witnessLog = path.join(dir, 'witness.log');
    // PGVIP_BENCH_WITNESS_NODE_OPTIONS: extra node flags for the witness, e.g. --cpu-prof to profile it.
    const extra = (process.env.PGVIP_BENCH_WITNESS_NODE_OPTIONS ?? '').split(' ').filter((a) => a !== '');
    // Compiled, it runs as the systemd unit runs it: the unit's node flags and environment (its
    // NODE_OPTIONS sizes V8's heap, which decides most of the resident memory measured here).
    const deployed = runtime === 'dist';
    const witness = spawn(
      process.execPath,
      [...(deployed ? daemonUnitNodeFlags('witness') : []), ...extra, ...witnessArgs, '--config', configFile],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ...(deployed ? daemonUnitEnvironment('witness') : {}) },
      },
    );
    children.push(witness);
    let logLines = 0;
    const logStream = createWriteStream(witnessLog);
    witness.stdout?.on('data', (b: Buffer) => {
      logLines += b.toString().split('\n').length - 1;
      logStream.write(b);
    });
    const metricsUrl = `http://127.0.0.1:${operatorPort}/metrics`;
    const scrape = async () => parseMetrics(await (await request(metricsUrl, operatorAuth)).body.text());
    for (let i = 0; ; i++) {
      try {
        if ((await request(`http://127.0.0.1:${operatorPort}/health`)).statusCode === 200) break;
      } catch {
        if (i > 300 || witness.exitCode !== null) throw new Error(`the witness did not start; see ${witnessLog}`);
      }
      await sleep(100);
    }
    toAgents({ kind: 'start-leases', witnessPort: listenPort });
    console.log(`warming up for ${warmupS} s ...`);
    await sleep(warmupS * 1000);

    // All clusters healthy before measuring: term 1, db-a primary, every node reachable.
    for (let attempt = 1; ; attempt++) {
      const views = (await (await request(`http://127.0.0.1:${operatorPort}/api/v1/clusters`, operatorAuth)).body.json()) as { clusters: { term: number; primary: string; nodes: { reachable: boolean; pgReachable: boolean }[] }[] };
      const unhealthy = views.clusters.filter((c) => c.term !== 1 || c.primary !== 'db-a' || !c.nodes.every((n) => n.reachable && n.pgReachable));
      if (views.clusters.length === clusters && unhealthy.length === 0) break;
      if (attempt >= 30) throw new Error(`${unhealthy.length} of ${views.clusters.length} clusters still not healthy ${30 + warmupS} s after start`);
      await sleep(1000);
    }

    console.log(`measuring for ${durationS} s ...`);
    toAgents({ kind: 'window-start' });
    const before = await scrape();
    const t0 = performance.now();
    const loadBefore = loadavg()[0] ?? NaN;
    let rssMax = before.get('process_resident_memory_bytes') ?? 0;
    const logLinesBefore = logLines;
    const rssSamples: number[] = [Math.round(rssMax / 1024 / 1024)];
    while (performance.now() - t0 < durationS * 1000) {
      await sleep(Math.min(10_000, durationS * 1000 - (performance.now() - t0)));
      const rss = (await scrape()).get('process_resident_memory_bytes') ?? 0;
      rssSamples.push(Math.round(rss / 1024 / 1024));
      rssMax = Math.max(rssMax, rss);
    }
    const reportPromise = fromAgents('report');
    toAgents({ kind: 'window-end' });
    const after = await scrape();
    const wallS = (performance.now() - t0) / 1000;
    const report = ((await reportPromise) as Extract<ChildMessage, { kind: 'report' }>).report as AgentsReport;
    rssMax = Math.max(rssMax, after.get('process_resident_memory_bytes') ?? 0);

    const cpuS = (after.get('process_cpu_seconds_total') ?? NaN) - (before.get('process_cpu_seconds_total') ?? NaN);
    const failovers = sumOf(after, 'pgvip_witness_failovers_total') - sumOf(before, 'pgvip_witness_failovers_total');
    const checksFailed = sumOf(after, 'pgvip_witness_checks_failed_total') - sumOf(before, 'pgvip_witness_checks_failed_total');
    const result = {
      generated_at: new Date().toISOString(),
      clusters,
      duration_s: Math.round(wallS * 10) / 10,
      heartbeat_ms: heartbeatMs,
      missed_heartbeats: sumOf(after, 'pgvip_witness_missed_heartbeats_total') - sumOf(before, 'pgvip_witness_missed_heartbeats_total') + report.unpolledNodes,
      poll_p99_ms: Math.round(histogramQuantile('pgvip_witness_poll_duration_seconds', before, after, 0.99) * 1000 * 100) / 100,
      cpu_pct_of_core: Math.round((cpuS / wallS) * 1000) / 10,
      rss_mb: Math.round((rssMax / 1024 / 1024) * 10) / 10,
      detail: {
        polls: report.polls,
        polls_expected: Math.round((2 * clusters * wallS * 1000) / heartbeatMs),
        late_poll_arrivals_at_agents: report.missedHeartbeats,
        nodes_never_polled: report.unpolledNodes,
        max_poll_arrival_gap_ms: report.maxPollGapMs,
        polls_over_100ms_pct: slowerThanPct('pgvip_witness_poll_duration_seconds', before, after, 0.1),
        polls_over_200ms_pct: slowerThanPct('pgvip_witness_poll_duration_seconds', before, after, 0.2),
        rss_mb_every_10s: rssSamples,
        heap_used_mb: Math.round(((after.get('nodejs_heap_size_used_bytes') ?? NaN) / 1024 / 1024) * 10) / 10,
        external_mb: Math.round(((after.get('nodejs_external_memory_bytes') ?? NaN) / 1024 / 1024) * 10) / 10,
        event_loop_lag_p99_ms: Math.round((after.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000 * 10) / 10,
        emulated_agents_cpu_pct_of_core: report.cpuPctOfCore,
        lease_renewals: report.leases,
        lease_renewals_refused: report.leasesRefused,
        lease_renewal_errors: report.leaseErrors,
        lease_p99_ms: report.leaseP99Ms,
        failed_checks_total: checksFailed,
        failovers_total: failovers,
        witness_log_lines_in_window: logLines - logLinesBefore,
        runtime: runtime === 'dist'
          ? 'compiled JavaScript (dist/main.js), the systemd unit\'s NODE_OPTIONS'
          : 'TypeScript source through tsx',
        host_cores: availableParallelism(),
        host_load_1m: {
          at_start: Math.round(loadBefore * 100) / 100,
          at_end: Math.round((loadavg()[0] ?? NaN) * 100) / 100,
        },
        note: 'the witness and the emulated agents (and anything else running) share the host',
      },
      targets,
      met: {} as Record<string, boolean>,
    };
    for (const [name, target] of Object.entries(targets)) {
      result.met[name] = (result[name as keyof typeof targets] as number) <= target.max;
    }

    toAgents({ kind: 'exit' });
    witness.kill('SIGTERM');
    const [witnessCode] = await Promise.all([exited(witness), exited(agents)]);
    logStream.end();
    if (witnessCode !== 0) throw new Error(`the witness exited with ${witnessCode} on SIGTERM; see ${witnessLog}`);

    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    console.log(`wrote ${path.relative(repoRoot, outFile)}`);
    if (Object.values(result.met).includes(false)) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

await main();

// `npm run bench:agent`: one agent's footprint and health latency, measured in the lab (as root):
// the primary's agent — with a live synchronous standby, the witness and writes flowing — is sampled
// for PGVIP_BENCH_SECONDS (default 60), after PGVIP_BENCH_WARMUP_SECONDS (default 20), at the
// default heartbeat: resident memory and CPU time from /proc. Then /health is loaded from the client
// namespace with concurrent keep-alive requests, in rounds (the median round is reported), and polled
// at a fixed rate (PGVIP_BENCH_RATE), in as many rounds.
// The agents run compiled (dist/), as in production. Writes bench/results/agent.json; with
// PGVIP_BENCH_BACKEND=etcd the cluster's quorum is the lab's etcd (quorum.backend: etcd) and the
// figures go to bench/results/agent-etcd.json (the targets are the witness backend's).
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseCommandLine } from '../../scripts/cli-args.mjs';
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';
import { nodeArgv, repoRoot } from './ipc.js';
import { isRoot, Lab, labBackends, type LabBackend } from './lab.js';
import { runOnHost } from './exec.js';
import type { DbNode } from './topology.js';

parseCommandLine({
  usage: `usage: npm run bench:agent   (as root; builds the daemons, then runs the lab)
  one agent's memory, CPU and /health latency on real processes; writes bench/results/agent.json.
  Environment: PGVIP_BENCH_SECONDS (sampled, default 60), PGVIP_BENCH_WARMUP_SECONDS (default 20),
  PGVIP_BENCH_LOAD_SECONDS (default 4), PGVIP_BENCH_LOAD_ROUNDS (default 5), PGVIP_BENCH_CONCURRENCY
  (default 16), PGVIP_BENCH_RATE (the fixed-rate rounds' requests/s, default 1000), PGVIP_BENCH_CPU_PROF (a directory for CPU profiles), PGVIP_BENCH_NODE_ARGS (agent Node flags),
  PGVIP_BENCH_BACKEND (witness, the default, or etcd: writes bench/results/agent-etcd.json)`,
});

const SECONDS = Number(process.env.PGVIP_BENCH_SECONDS ?? 60);
/**
 * Seconds between the cluster becoming healthy and the start of sampling. A daemon runs for months;
 * its first seconds (V8 compiling the hot paths, the heartbeat table created, the first VIP
 * verification, the standby's first sync round) are not what it costs for the rest of them.
 */
const WARMUP_SECONDS = Number(process.env.PGVIP_BENCH_WARMUP_SECONDS ?? 20);
const LOAD_SECONDS = Number(process.env.PGVIP_BENCH_LOAD_SECONDS ?? 4);
/**
 * /health is loaded this many times for LOAD_SECONDS each; the report gives the median round (the machine
 * is shared and noisy).
 */
const LOAD_ROUNDS = Number(process.env.PGVIP_BENCH_LOAD_ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.PGVIP_BENCH_CONCURRENCY ?? 16);
/**
 * /health is then polled at this fixed rate (requests a second, over CONCURRENCY connections), in as
 * many rounds (in-netns/health-rate.ts says why): the agent's answer time below its limit.
 */
const RATE = Number(process.env.PGVIP_BENCH_RATE ?? 1000);
/** A directory for V8 CPU profiles of the agents (written when the lab stops them), to see where the CPU goes. */
const CPU_PROFILE_DIR = process.env.PGVIP_BENCH_CPU_PROF;
/** Extra Node.js flags for the agents, to try a setting before it goes into the unit (space-separated). */
const EXTRA_NODE_ARGS = (process.env.PGVIP_BENCH_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
/** A run that changes how the agents run measures something else than the shipped agent. */
const EXPERIMENT = CPU_PROFILE_DIR !== undefined || EXTRA_NODE_ARGS.length > 0;
const BACKEND = (process.env.PGVIP_BENCH_BACKEND ?? 'witness') as LabBackend;
if (!labBackends.includes(BACKEND)) {
  console.error(`PGVIP_BENCH_BACKEND must be one of ${labBackends.join(', ')}, not ${JSON.stringify(BACKEND)}`);
  process.exit(2);
}
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** utime and stime of a process or thread, in clock ticks (fields 14 and 15 of its stat file). */
function cpuTimes(statFile: string): { user: number; system: number } {
  // The command name (field 2) may contain spaces, so count from its closing parenthesis.
  const stat = readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** CPU ticks per thread name (main thread = the process name; V8 and libuv workers have their own). */
function threadTicks(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      // Node names only some of its threads (libuv's pool, the inspector): V8's GC and compiler
      // helpers are all called "node" like the main thread, which runs the JavaScript.
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const name = tid === String(pid) ? 'main' : comm === 'node' ? 'v8-helpers' : comm;
      const t = cpuTimes(`/proc/${pid}/task/${tid}/stat`);
      byName.set(name, (byName.get(name) ?? 0) + t.user + t.system);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

/** Busy and total CPU ticks of the whole machine, all cores (the first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are not busy.
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/** The 1-minute load average. */
function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * The resident set in MB, and its split into anonymous memory (heap, malloc) and file pages (the node
 * binary, libraries).
 */
function residentSet(pid: number): { total: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { total: mb('VmRSS'), anon: mb('RssAnon'), file: mb('RssFile') };
}

async function main(): Promise<void> {
  if (!isRoot()) {
    console.error('bench:agent runs the lab (network namespaces, PostgreSQL as the postgres user): run it as root, e.g. sudo npm run bench:agent');
    process.exit(2);
  }
  ensureSystemDeps(['test/lab']);
  console.log('building dist/ (the agents run compiled, as in production) ...');
  const build = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) process.exit(1);
  if (CPU_PROFILE_DIR !== undefined) {
    // The agents may run as another user: the directory must be theirs to write.
    mkdirSync(CPU_PROFILE_DIR, { recursive: true, mode: 0o1777 });
    chmodSync(CPU_PROFILE_DIR, 0o1777);
  }
  const agentNodeArgs = [...EXTRA_NODE_ARGS, ...(CPU_PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROFILE_DIR)}`])];
  const lab = await Lab.start({ compiled: true, agentNodeArgs, backend: BACKEND, progress: (l) => console.log(`  ${l}`) });
  try {
    const primary = (await lab.waitHealthy()).primary as DbNode;
    const pid = lab.agents[primary].pid;
    if (pid === null) throw new Error(`the agent on ${primary} is not running`);
    console.log(`letting the agent on ${primary} (pid ${pid}) warm up for ${WARMUP_SECONDS} s ...`);
    await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
    console.log(`sampling it for ${SECONDS} s ...`);
    const rss: { total: number; anon: number; file: number }[] = [];
    const t0 = performance.now();
    const times0 = cpuTimes(`/proc/${pid}/stat`);
    const threads0 = threadTicks(pid);
    // How busy the shared machine was (other work than this lab competes for its cores), to read
    // the figures by.
    const machine0 = machineTicks();
    const load0 = loadAverage();
    while (performance.now() - t0 < SECONDS * 1000) {
      rss.push(residentSet(pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const pctOf = (ticks: number): number => Number(((ticks / CLOCK_TICKS_PER_S / elapsedS) * 100).toFixed(2));
    const times1 = cpuTimes(`/proc/${pid}/stat`);
    const machine1 = machineTicks();
    const busyPct = (a: { busy: number; total: number }, b: { busy: number; total: number }): number =>
      Number((((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100).toFixed(1));
    const cpuPct = pctOf(times1.user + times1.system - times0.user - times0.system);
    // Where the CPU goes: user vs kernel, and which threads (main = JavaScript; V8 = GC/compiler;
    // libuv = fs/dns/crypto pool).
    const threads = Object.fromEntries(
      [...threadTicks(pid)]
        .map(([name, ticks]) => [name, pctOf(ticks - (threads0.get(name) ?? 0))] as const)
        .filter(([, pct]) => pct > 0)
        .sort((a, b) => b[1] - a[1]),
    );
    rss.sort((a, b) => a.total - b.total);
    const largest = rss[rss.length - 1]!;
    const url = `http://${lab.topology.hosts[primary].address}:${lab.topology.ports.agent}/health`;
    console.log(`loading ${url} with ${CONCURRENCY} concurrent requests, ${LOAD_ROUNDS} rounds of ${LOAD_SECONDS} s ...`);
    const rounds: { requests: number; errors: number; p50_ms: number; p99_ms: number; max_ms: number }[] = [];
    const loadMachine0 = machineTicks();
    for (let round = 0; round < LOAD_ROUNDS; round++) {
      const load = await runOnHost('client', nodeArgv('test/lab/in-netns/health-load.ts', [url, String(CONCURRENCY), String(LOAD_SECONDS * 1000)]), { timeoutMs: (LOAD_SECONDS + 60) * 1000 });
      if (load.code !== 0) throw new Error(`load generator failed: ${load.stderr}`);
      rounds.push(JSON.parse(load.stdout.trim().split('\n').at(-1)!) as (typeof rounds)[number]);
      console.log(`  round ${round + 1}: p50 ${rounds.at(-1)!.p50_ms.toFixed(2)} ms, p99 ${rounds.at(-1)!.p99_ms.toFixed(2)} ms`);
    }
    const loadMachine1 = machineTicks();
    console.log(`polling ${url} at ${RATE} requests/s over ${CONCURRENCY} connections, ${LOAD_ROUNDS} rounds of ${LOAD_SECONDS} s ...`);
    type RateRound = { requests: number; errors: number; late: number; p50_ms: number; p99_ms: number; max_ms: number };
    const rateRounds: RateRound[] = [];
    const rateMachine0 = machineTicks();
    for (let round = 0; round < LOAD_ROUNDS; round++) {
      const argv = [url, String(CONCURRENCY), String(RATE), String(LOAD_SECONDS * 1000)];
      const poll = await runOnHost('client', nodeArgv('test/lab/in-netns/health-rate.ts', argv), { timeoutMs: (LOAD_SECONDS + 60) * 1000 });
      if (poll.code !== 0) throw new Error(`fixed-rate poller failed: ${poll.stderr}`);
      rateRounds.push(JSON.parse(poll.stdout.trim().split('\n').at(-1)!) as RateRound);
      const r = rateRounds.at(-1)!;
      console.log(`  round ${round + 1}: p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms (${r.late} sent late)`);
    }
    const rateMachine1 = machineTicks();
    const medianOf = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const health = {
      requests: rounds.reduce((n, r) => n + r.requests, 0),
      errors: rounds.reduce((n, r) => n + r.errors, 0),
      p50_ms: medianOf(rounds.map((r) => r.p50_ms)),
      p99_ms: medianOf(rounds.map((r) => r.p99_ms)),
      p99_worst_ms: Math.max(...rounds.map((r) => r.p99_ms)),
    };
    const result = {
      generated_at: new Date().toISOString(),
      node: primary,
      role: `primary with a live synchronous standby, ${BACKEND === 'etcd' ? 'quorum on etcd (witness as observer)' : 'witness'} and writer`,
      quorum_backend: BACKEND,
      heartbeat_ms: 500,
      warmup_seconds: WARMUP_SECONDS,
      sampled_seconds: Math.round(elapsedS),
      rss_mb: Number(largest.total.toFixed(1)),
      rss_median_mb: Number(rss[Math.floor(rss.length / 2)]!.total.toFixed(1)),
      // At the sample with the largest resident set: what is the process's own (anon) and what are shared file pages.
      rss_at_max: { anon_mb: Number(largest.anon.toFixed(1)), file_mb: Number(largest.file.toFixed(1)) },
      cpu_pct_of_core: cpuPct,
      cpu_detail: {
        user_pct: pctOf(times1.user - times0.user),
        system_pct: pctOf(times1.system - times0.system),
        by_thread_pct: threads,
      },
      health_load: {
        concurrency: CONCURRENCY,
        rounds: LOAD_ROUNDS,
        seconds_per_round: LOAD_SECONDS,
        requests: health.requests,
        errors: health.errors,
      },
      // Medians over the rounds; the worst round's p99 beside them.
      health_p50_ms: Number(health.p50_ms.toFixed(2)),
      health_p99_ms: Number(health.p99_ms.toFixed(2)),
      health_p99_worst_round_ms: Number(health.p99_worst_ms.toFixed(2)),
      // /health at a fixed rate (medians over the rounds): what a load balancer's probe sees.
      health_fixed_rate: {
        requests_per_s: RATE,
        connections: CONCURRENCY,
        rounds: LOAD_ROUNDS,
        requests: rateRounds.reduce((n, r) => n + r.requests, 0),
        errors: rateRounds.reduce((n, r) => n + r.errors, 0),
        sent_late: rateRounds.reduce((n, r) => n + r.late, 0),
        p50_ms: Number(medianOf(rateRounds.map((r) => r.p50_ms)).toFixed(2)),
        p99_ms: Number(medianOf(rateRounds.map((r) => r.p99_ms)).toFixed(2)),
        p99_worst_round_ms: Number(Math.max(...rateRounds.map((r) => r.p99_ms)).toFixed(2)),
      },
      // The machine as a whole (all its cores): busy share while sampling the agent and while loading
      // /health (the load generator and the agent take about one core each then), load averages.
      machine: {
        cpus: os.availableParallelism(),
        busy_pct_sampling: busyPct(machine0, machine1),
        busy_pct_health_load: busyPct(loadMachine0, loadMachine1),
        busy_pct_fixed_rate: busyPct(rateMachine0, rateMachine1),
        load_average_1m: { at_sampling_start: load0, at_end: loadAverage() },
      },
      ...(BACKEND === 'witness' ? { targets: { rss_mb: 80, cpu_pct_of_core: 2, health_p99_ms: 5 } } : {}),
    };
    console.log(JSON.stringify(result, null, 2));
    if (!EXPERIMENT) {
      const out = path.join(repoRoot, `bench/results/${BACKEND === 'witness' ? 'agent' : `agent-${BACKEND}`}.json`);
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`wrote ${out}`);
    } else {
      // A profiled agent, or one with other flags, is not the shipped agent: its figures are not the benchmark's.
      console.log(`experiment (${[...EXTRA_NODE_ARGS, ...(CPU_PROFILE_DIR === undefined ? [] : [`profiles in ${CPU_PROFILE_DIR}`])].join(', ')}): bench/results/agent.json left as it was`);
    }
  } finally {
    await lab.down();
  }
}

await main();

// What pgvip_commit_guard costs on the normal path: pgbench's TPC-B-like transactions on two real
// PostgreSQL 15 primaries (each with its streaming standby), one without the library and one with it
// loaded and armed, run AT THE SAME TIME so that whatever else the machine does falls on both alike;
// the two swap roles every round. Per round: the ratio of their throughputs, and the backends' CPU
// time per transaction (the postmaster's reaped children, from /proc), which a busy machine disturbs
// far less than throughput. The guard adds one atomic read and one vDSO clock read per write commit
// and per DML statement. Run as root: npm run bench:commit-guard [-- rounds seconds clients]
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, usageError } from '../../../scripts/cli-args.mjs';
import { commitGuardInstalled, pgBinDir, startPgCluster, type PgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';

const usage = `usage: npm run bench:commit-guard [-- ROUNDS [SECONDS [CLIENTS]]]
  what pgvip_commit_guard costs on the normal path: pgbench on two real PostgreSQL 15 primaries at once,
  one with the guard loaded and armed, roles swapped every round (defaults: 10 rounds of 20 s, 1 client);
  writes bench/results/commit-guard.json. Run as root.`;
const { positionals } = parseCommandLine({ usage, allowPositionals: true });
if (positionals.length > 3) usageError(usage, `at most 3 arguments, got ${positionals.length}`);
function countArg(index: number, fallback: number, what: string): number {
  const text = positionals[index];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) usageError(usage, `${what} must be a whole number of at least 1, got ${JSON.stringify(text)}`);
  return n;
}
const rounds = countArg(0, 10, 'ROUNDS');
const seconds = countArg(1, 20, 'SECONDS');
const clients = countArg(2, 1, 'CLIENTS');
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const ticksPerSecond = 100; // USER_HZ on Linux

function run(argv: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${out.slice(-2000)}`));
    });
  });
}

async function configure(node: PgNode, guard: boolean): Promise<void> {
  await node.psql(guard ? "ALTER SYSTEM SET shared_preload_libraries = 'pgvip_commit_guard'" : 'ALTER SYSTEM RESET shared_preload_libraries');
  await run(['runuser', '-u', 'postgres', '--', path.join(pgBinDir, 'pg_ctl'), 'restart', '-D', node.dataDir, '-w', '-m', 'fast', '-l', node.logFile, '-o', `-p ${node.port}`], 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${readFileSync(node.logFile, 'utf8').slice(-1500)}`);
  });
  const loaded = await node.psql("SELECT count(*) FROM pg_settings WHERE name = 'pgvip_commit_guard.enabled'");
  if (loaded !== (guard ? '1' : '0')) throw new Error(`the guard is ${loaded === '1' ? '' : 'not '}loaded after the restart`);
  // Armed an hour ahead, as the agent keeps it armed a lease ahead: every write commit checks it.
  if (guard) await node.psql('CREATE EXTENSION IF NOT EXISTS pgvip_commit_guard; SELECT pgvip_guard_set_deadline(3600000)');
}

/** CPU ticks of the server's exited backends (the postmaster's cutime + cstime). */
function reapedChildTicks(node: PgNode): number {
  // postmaster.pid's first line (after pg_ctl restart the command line no longer names the data directory).
  const pid = Number(readFileSync(path.join(node.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 3; cutime and cstime are fields 16 and 17.
  return Number(fields[16 - 3]) + Number(fields[17 - 3]);
}

interface Run {
  readonly tps: number;
  readonly cpuUsPerTx: number;
}

async function pgbench(node: PgNode, extra: readonly string[], timeoutMs: number): Promise<string> {
  return run([path.join(pgBinDir, 'pgbench'), '-h', node.host, '-p', String(node.port), '-U', 'postgres', ...extra, 'postgres'], timeoutMs);
}

async function measure(node: PgNode): Promise<Run> {
  const before = reapedChildTicks(node);
  const out = await pgbench(node, ['-n', '-c', String(clients), '-j', String(clients), '-T', String(seconds)], (seconds + 60) * 1000);
  await new Promise((r) => setTimeout(r, 300)); // the backends exit and are reaped
  const ticks = reapedChildTicks(node) - before;
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  const txs = /number of transactions actually processed: (\d+)/.exec(out);
  if (tps === null || txs === null) throw new Error(`unexpected pgbench output: ${out}`);
  return { tps: Number(tps[1]), cpuUsPerTx: ((ticks / ticksPerSecond) * 1e6) / Number(txs[1]) };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;

if (process.getuid?.() !== 0) throw new Error('run as root: the bench runs PostgreSQL as the postgres user');
if (!commitGuardInstalled()) throw new Error('pgvip_commit_guard is not installed: node scripts/commit-guard.mjs (as root)');
const clusters: PgCluster[] = [];
try {
  for (let i = 0; i < 2; i++) clusters.push(await startPgCluster(undefined));
  const [x, y] = clusters.map((c) => c.primary) as [PgNode, PgNode];
  // Autovacuum workers are reaped children too: off, so that the CPU counted is the clients' backends'.
  for (const n of [x, y]) await n.psql('ALTER SYSTEM SET autovacuum = off');
  await Promise.all([x, y].map((n) => pgbench(n, ['-i', '-s', '10', '-q'], 300_000)));
  const without: Run[] = [];
  const withGuard: Run[] = [];
  const tpsRatios: number[] = [];
  const cpuRatios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const [guarded, plain] = i % 2 === 0 ? [x, y] : [y, x];
    await Promise.all([configure(guarded, true), configure(plain, false)]);
    await Promise.all([guarded, plain].map((n) => pgbench(n, ['-n', '-c', String(clients), '-j', String(clients), '-T', '3'], 60_000))); // warm-up
    const [g, p] = await Promise.all([measure(guarded), measure(plain)]);
    if ((await guarded.psql('SELECT active AND NOT expired FROM pgvip_guard_status()')) !== 't') throw new Error('the guard was not armed through the run');
    withGuard.push(g);
    without.push(p);
    tpsRatios.push(g.tps / p.tps);
    cpuRatios.push(g.cpuUsPerTx / p.cpuUsPerTx);
    console.error(`round ${i + 1}/${rounds}: guard ${g.tps.toFixed(0)} tps ${g.cpuUsPerTx.toFixed(0)} µs CPU/tx | none ${p.tps.toFixed(0)} tps ${p.cpuUsPerTx.toFixed(0)} µs CPU/tx`);
  }
  const result = {
    bench: 'commit-guard',
    at: new Date().toISOString(),
    pgbench: `tpcb-like, scale 10, ${clients} clients each, ${seconds} s per run; two clusters at once (fsync off, as the test fixture; autovacuum off; each with an async streaming standby), roles swapped every round`,
    rounds,
    withGuard,
    without,
    medianTpsWithGuard: round1(median(withGuard.map((r) => r.tps))),
    medianTpsWithout: round1(median(without.map((r) => r.tps))),
    medianCpuUsPerTxWithGuard: round1(median(withGuard.map((r) => r.cpuUsPerTx))),
    medianCpuUsPerTxWithout: round1(median(without.map((r) => r.cpuUsPerTx))),
    /** Throughput lost to the guard: 1 − median of the per-round ratios, in percent (negative: faster). */
    tpsOverheadPercent: round1((1 - median(tpsRatios)) * 100),
    /** CPU per transaction added by the guard: median of the per-round ratios − 1, in percent. */
    cpuOverheadPercent: round1((median(cpuRatios) - 1) * 100),
  };
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(path.join(repoRoot, 'bench/results/commit-guard.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const c of clusters) await c.cleanup();
}

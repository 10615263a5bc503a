// Real PostgreSQL 15 on the lab's database hosts: a primary on db-a and a streaming standby on
// db-b (and, in a three-node lab, a second one on db-c, cloned from db-a too), each inside its
// host's namespace and freezer cgroup, run as the postgres OS user (never root), listening on the
// host's own address (and the VIP when the host holds it).
//
// Node-specific settings live OUTSIDE the data directory, in <host dir>/node.conf, included with a
// relative path: pg_basebackup and pg_rewind copy postgresql.conf between the nodes, but the
// include resolves next to each node's own data directory, so cluster_name stays the node id on
// both (the writer probe reads it to tell the servers apart). This is what /etc/postgresql/... is
// to a Debian server: configuration that belongs to the host, not to the data.
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CommandError, mustRun, mustRunOnHost, onHost, osUser, runOnHost, type RunResult } from './exec.js';
import type { Reaper } from './reaper.js';
import { allDbNodes, type DbNode, type HostName, type Topology } from './topology.js';

export const pgBinDir = '/usr/lib/postgresql/15/bin';
const bin = (tool: string): string => path.join(pgBinDir, tool);

export interface PgServer {
  readonly node: DbNode;
  readonly address: string;
  readonly port: number;
  /** <lab>/hosts/<node>: the host's own files (node.conf, logs, agent state). */
  readonly hostDir: string;
  readonly dataDir: string;
  /** Where pg_ctl -l writes (the same file the agent's pg_ctl uses by default). */
  readonly logFile: string;
}

export function pgServerFor(t: Topology, labDir: string, node: DbNode): PgServer {
  const hostDir = path.join(labDir, 'hosts', node);
  const dataDir = path.join(hostDir, 'pgdata');
  // The agent's LocalPostgres logs to <dataDir>/../postgresql-<basename>.log when it starts the
  // server itself; the lab uses the same file, so one log tells the whole story of a node.
  return { node, address: t.hosts[node].address, port: t.ports.postgres, hostDir, dataDir, logFile: path.join(hostDir, 'postgresql-pgdata.log') };
}

const serverSettings = `
# --- pgvip lab ---------------------------------------------------------------
# Every address of the host's namespace (its own, and the VIP while it holds it).
listen_addresses = '*'
port = 5432
# TCP only: no socket directory is shared between the "hosts" on this one machine.
unix_socket_directories = ''
# Host-specific settings (cluster_name): next to the data directory, never copied by a base backup.
include_if_exists = '../node.conf'
wal_level = replica
max_wal_senders = 10
hot_standby = on
wal_keep_size = '256MB'
max_connections = 60
shared_buffers = '32MB'
# The lab kills processes and freezes hosts but never crashes the kernel, so the page cache always
# survives and fsync only costs time on a shared test machine.
fsync = off
log_line_prefix = '%m [%p] %a '
# UTC timestamps: the lab reads promotions ("selected new timeline ID") from these logs.
log_timezone = 'UTC'
log_min_messages = warning
`;

/** The commit guard's library, when the bootstrap has installed it (as root it does: scripts/commit-guard.mjs). */
export const commitGuardLibrary = path.join(pgBinDir, '../lib/pgvip_commit_guard.so');

/**
 * The lab's servers load pgvip_commit_guard as a production server would (docs/deploy.md); the
 * agents find it and arm it with their lease (fencing.commitGuard: auto).
 */
function commitGuardSettings(): string {
  return existsSync(commitGuardLibrary) ? "shared_preload_libraries = 'pgvip_commit_guard'\n" : '';
}

const hba = `
local   all          all                    trust
host    all          all   127.0.0.1/32     trust
host    all          all   198.18.0.0/15    trust
host    replication  all   127.0.0.1/32     trust
host    replication  all   198.18.0.0/15    trust
`;

function chownToPostgres(p: string): void {
  const u = osUser('postgres');
  chownSync(p, u.uid, u.gid);
}

/**
 * The writer probe's table (one row per write, with the id the probe chose and the server that took
 * it) and its role. The application is NOT a superuser, as in production: when its connections pile
 * up (every write that times out waiting for a lost synchronous standby leaves a backend behind),
 * superuser_reserved_connections keeps room for the agent, which connects as a superuser.
 */
export const labSchemaSql =
  'CREATE SCHEMA IF NOT EXISTS lab; ' +
  'CREATE TABLE IF NOT EXISTS lab.writes (id bigint PRIMARY KEY, lane int NOT NULL, ' +
  "server text NOT NULL DEFAULT current_setting('cluster_name'), written_at timestamptz NOT NULL DEFAULT clock_timestamp()); " +
  'CREATE ROLE app LOGIN; GRANT USAGE ON SCHEMA lab TO app; GRANT SELECT, INSERT ON lab.writes TO app;';

/** The role the writer probe (the application) connects as. */
export const appUser = 'app';

export interface PgClusterOptions {
  readonly reaper: Reaper;
  /** Name the standby in synchronous_standby_names on the primary (the baseline; pgvip's agent manages it itself). */
  readonly synchronousStandby?: boolean;
  readonly log?: (line: string) => void;
}

/**
 * Where every database host's server lives (paths only): a record over every node the lab knows, so
 * that it is total; only the topology's own nodes are ever created.
 */
export function pgServersFor(t: Topology, labDir: string): Record<DbNode, PgServer> {
  return Object.fromEntries(allDbNodes.map((n) => [n, pgServerFor(t, labDir, n)])) as Record<DbNode, PgServer>;
}

/** Creates and starts db-a (primary) and db-b (and db-c in a three-node lab), streaming standbys of db-a. */
export async function createPgCluster(
  t: Topology,
  labDir: string,
  options: PgClusterOptions,
): Promise<Record<DbNode, PgServer>> {
  const log = options.log ?? (() => undefined);
  const servers = pgServersFor(t, labDir);
  for (const n of t.dbNodes) {
    const s = servers[n];
    mkdirSync(s.hostDir, { recursive: true });
    chownToPostgres(s.hostDir);
    writeFileSync(path.join(s.hostDir, 'node.conf'), `cluster_name = '${n}'\n`);
    chownToPostgres(path.join(s.hostDir, 'node.conf'));
  }
  const primary = servers['db-a'];
  const standbys = t.dbNodes.filter((n) => n !== 'db-a');
  log('initdb on db-a');
  await mustRunOnHost('db-a', [bin('initdb'), '-D', primary.dataDir, '--data-checksums', '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { user: 'postgres', cgroup: false, timeoutMs: 120_000 });
  appendFileSync(path.join(primary.dataDir, 'postgresql.conf'), serverSettings + commitGuardSettings());
  writeFileSync(path.join(primary.dataDir, 'pg_hba.conf'), hba);
  log('starting PostgreSQL on db-a');
  await startServer(primary, options.reaper);
  await psql('db-a', labSchemaSql);
  // One after the other: a base backup copies the whole data directory (on 2 shared cores).
  for (const n of standbys) {
    log(`base backup of db-a onto ${n}`);
    await mustRunOnHost(n, [bin('pg_basebackup'), '-D', servers[n].dataDir, '-d', `host=${primary.address} port=${primary.port} user=postgres application_name=${n}`, '-X', 'stream', '-c', 'fast', '-R', '--no-sync'], {
      user: 'postgres',
      cgroup: false,
      timeoutMs: 120_000,
    });
  }
  if (options.synchronousStandby) {
    // Set on db-a only, after the copy: the baseline never touches it, and a standby that inherited
    // it would wait for itself after promotion.
    await psql('db-a', `ALTER SYSTEM SET synchronous_standby_names = '"db-b"'`);
    await psql('db-a', 'SELECT pg_reload_conf()');
  }
  for (const n of standbys) {
    log(`starting PostgreSQL on ${n}`);
    await startServer(servers[n], options.reaper);
  }
  for (const n of standbys) await waitForStreaming('db-a', n, 60_000);
  return servers;
}

/**
 * pg_ctl start on the server's host (in its cgroup, as postgres); waits until it accepts connections.
 * Started through the reaper, which becomes the daemonized postmaster's parent (see reaper.py).
 */
export async function startServer(s: PgServer, reaper: Reaper): Promise<void> {
  const argv = onHost(s.node, [bin('pg_ctl'), 'start', '-D', s.dataDir, '-w', '-t', '60', '-l', s.logFile, '-o', `-p ${s.port}`], { user: 'postgres' });
  const r = await reaper.run(argv, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' }, timeoutMs: 70_000 });
  if (r.code !== 0) throw new CommandError(`pg_ctl start on ${s.node}`, r);
}

export async function stopServer(s: PgServer, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  await runOnHost(s.node, [bin('pg_ctl'), 'stop', '-D', s.dataDir, '-m', mode, '-w', '-t', '30'], { user: 'postgres', cgroup: false, timeoutMs: 40_000 });
}

/**
 * Runs SQL with psql on `host` against `address` (default: the host's own loopback, which no
 * network fault touches). Resolves with unaligned, tuples-only output.
 */
export async function psql(
  host: HostName,
  sql: string,
  options: { address?: string; timeoutMs?: number } = {},
): Promise<string> {
  const r = await psqlResult(host, sql, options);
  if (r.code !== 0) throw new Error(`psql on ${host}${options.address ? ` to ${options.address}` : ''} failed: ${r.stderr.trim() || (r.timedOut ? 'timed out' : `exit ${r.code}`)}`);
  return r.stdout.trim();
}

export function psqlResult(
  host: HostName,
  sql: string,
  options: { address?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return runOnHost(host, [bin('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', options.address ?? '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', 'postgres', '-c', sql], {
    user: 'postgres',
    cgroup: false,
    timeoutMs,
    env: { PGCONNECT_TIMEOUT: String(Math.max(2, Math.ceil(timeoutMs / 3000))) },
  });
}

export async function waitForStreaming(primary: DbNode, standby: DbNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await psql(primary, `SELECT state FROM pg_stat_replication WHERE application_name = '${standby}'`).catch((e: unknown) => (e as Error).message);
    if (last === 'streaming') return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${standby} did not stream from ${primary} within ${timeoutMs} ms (last: ${last || 'no walsender'})`);
}

// --- processes ---------------------------------------------------------------------------------------

/** The postmaster's pid from postmaster.pid, checked against /proc (a stale file or a reused pid is not it). */
export function postmasterPid(s: PgServer): number | null {
  try {
    const pid = Number(readFileSync(path.join(s.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(s.dataDir) ? pid : null;
  } catch {
    return null;
  }
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The postmaster and every process it started (backends, walsender/receiver, checkpointer, ...). */
export function serverPids(s: PgServer): number[] {
  const pm = postmasterPid(s);
  return pm === null ? [] : [pm, ...childrenOf(pm)];
}

export function signalServer(s: PgServer, signal: NodeJS.Signals): number[] {
  const pids = serverPids(s);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Copies a file into a host dir owned by postgres (pg_hba, configs the baseline writes). */
export async function chownTree(p: string): Promise<void> {
  await mustRun('chown', ['-R', 'postgres:postgres', p]);
}

// repmgr in the lab, set up the way its documentation does it for a primary, one standby and a witness
// ("Quick-start guide", "Using a witness server"), with Debian's repmgr and postgresql-15-repmgr 5.3:
//
//   db-a     initdb, shared_preload_libraries = 'repmgr', a repmgr superuser and database, then
//            `repmgr -f repmgr.conf primary register`
//   db-b     `repmgr -h 198.18.1.11 -U repmgr -d repmgr -f repmgr.conf standby clone` (pg_basebackup),
//            start PostgreSQL, `repmgr -f repmgr.conf standby register`
//   witness  its own PostgreSQL with the repmgr extension, `repmgr -f repmgr.conf witness register -h 198.18.1.11`
//   all      repmgrd (`repmgrd -f repmgr.conf --daemonize=false`, as Debian's repmgrd unit runs it)
//
// Replication is synchronous (synchronous_standby_names names the standby, set on the primary); the
// VIP moves with the promote_command wrapper (promote.sh), which also turns synchronous replication off
// on the new primary until the old one has rejoined. repmgr does not restart a crashed PostgreSQL, does
// not fence an old primary, and rejoins it only when told: the repair after each run is the documented
// operator step, `repmgr node rejoin --force-rewind` (pg_rewind) of the old primary onto the new one.
// The two measured settings are in config.ts.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { awsEnv } from '../../baseline/baseline.js';
import type { HealthyCluster } from '../../checkers.js';
import { CommandError, mustRun, mustRunOnHost, onHost, runOnHost } from '../../exec.js';
import type { Lab } from '../../lab.js';
import type { Milestone } from '../../logs.js';
import { pgBinDir, postmasterPid, psql, stopServer, waitForStreaming } from '../../postgres.js';
import { Service } from '../../supervisor.js';
import { ec2Endpoint, imdsEndpoint, otherNode, type TwoNodeDb as DbNode } from '../../topology.js';
import { pairProblems, serverState, type AnchorInstance, type AnchorSystem } from '../system.js';
import { labPostgresqlConf, renderRepmgrConf, repmgrDefaults, repmgrFast, type RepmgrSettings } from './config.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const repmgrNodes = ['db-a', 'db-b', 'witness'] as const;
type RepmgrHost = (typeof repmgrNodes)[number];
const repmgrBin = path.join(pgBinDir, 'repmgr');
const nodeIds: Record<RepmgrHost, number> = { 'db-a': 1, 'db-b': 2, witness: 3 };

/** A repmgrd log line `[2026-12-07 02:10:59] [NOTICE] message`, or the wrapper's `<epoch ms> promote.sh: ...`. */
export function parseRepmgrdLog(text: string): Array<{ atMs: number; msg: string }> {
  const out: Array<{ atMs: number; msg: string }> = [];
  for (const line of text.split('\n')) {
    const p = /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\] \[\w+\] (.*)$/.exec(line);
    if (p) {
      out.push({ atMs: Date.parse(`${p[1]}T${p[2]}Z`), msg: p[3]! });
      continue;
    }
    const w = /^(\d{13}) (promote\.sh: .*)$/.exec(line);
    if (w) out.push({ atMs: Number(w[1]), msg: w[2]! });
  }
  return out;
}

class RepmgrInstance implements AnchorInstance {
  readonly #lab: Lab;
  readonly #settings: RepmgrSettings;
  readonly #setting: string;
  readonly #repmgrd = {} as Record<RepmgrHost, Service>;

  constructor(lab: Lab, settings: RepmgrSettings, setting: string) {
    this.#lab = lab;
    this.#settings = settings;
    this.#setting = setting;
  }

  get services(): Service[] {
    return Object.values(this.#repmgrd);
  }

  #hostDir(h: RepmgrHost): string {
    return h === 'witness' ? path.join(this.#lab.dir, 'hosts', 'witness', 'repmgr') : this.#lab.pg[h].hostDir;
  }

  #dataDir(h: RepmgrHost): string {
    return h === 'witness' ? path.join(this.#hostDir('witness'), 'pgdata') : this.#lab.pg[h].dataDir;
  }

  #pgLog(h: RepmgrHost): string {
    return h === 'witness' ? path.join(this.#hostDir('witness'), 'postgresql.log') : this.#lab.pg[h].logFile;
  }

  #conf(h: RepmgrHost): string {
    return path.join(this.#hostDir(h), 'repmgr.conf');
  }

  #log(h: RepmgrHost): string {
    return path.join(this.#lab.dir, 'logs', `repmgrd-${h}.log`);
  }

  logFiles(): Record<string, string> {
    return Object.fromEntries(repmgrNodes.map((h) => [`repmgrd ${h}`, this.#log(h)]));
  }

  /** Runs repmgr (or another PostgreSQL tool) as postgres on a host, from its host directory. */
  #repmgr(h: RepmgrHost, args: readonly string[], timeoutMs = 120_000): Promise<string> {
    return mustRunOnHost(h, [repmgrBin, '-f', this.#conf(h), ...args], {
      user: 'postgres',
      cgroup: false,
      timeoutMs,
      cwd: this.#hostDir(h),
      env: { HOME: this.#hostDir(h), TZ: 'UTC' },
    });
  }

  /**
   * pg_ctl start through the lab's reaper (like postgres.ts's startServer, for any host): the daemonized
   * postmaster's parent is then the reaper, as under systemd, so a killed server is reaped at once.
   */
  async #startPostgres(h: RepmgrHost): Promise<void> {
    const argv = onHost(h, [path.join(pgBinDir, 'pg_ctl'), 'start', '-D', this.#dataDir(h), '-w', '-t', '60', '-l', this.#pgLog(h)], { user: 'postgres' });
    const r = await this.#lab.reaper.run(argv, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' }, timeoutMs: 70_000 });
    if (r.code !== 0) throw new CommandError(`pg_ctl start on ${h}`, r);
  }

  async #initdb(h: RepmgrHost): Promise<void> {
    const dataDir = this.#dataDir(h);
    const argv = [path.join(pgBinDir, 'initdb'), '-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'];
    await mustRunOnHost(h, argv, { user: 'postgres', cgroup: false, timeoutMs: 120_000 });
    const conf = readFileSync(path.join(dataDir, 'postgresql.conf'), 'utf8');
    writeFileSync(path.join(dataDir, 'postgresql.conf'), `${conf}\n# --- the lab (test/lab/anchors/repmgr) ---\n${labPostgresqlConf()}`);
    const hba = ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host all all 198.18.0.0/15 trust'];
    hba.push('host replication all 127.0.0.1/32 trust', 'host replication all 198.18.0.0/15 trust');
    writeFileSync(path.join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);
  }

  /** The repmgr user and database (repmgr: "Create the repmgr user and database"). */
  async #repmgrDatabase(h: RepmgrHost): Promise<void> {
    await psql(h, 'CREATE USER repmgr SUPERUSER');
    await psql(h, 'CREATE DATABASE repmgr OWNER repmgr');
  }

  async start(): Promise<void> {
    const lab = this.#lab;
    const t = lab.topology;
    // The wrapper runs as repmgrd's user, who may not be able to enter the checkout: a copy.
    const promote = path.join(lab.dir, 'repmgr-promote.sh');
    copyFileSync(path.join(here, 'promote.sh'), promote);
    chmodSync(promote, 0o755);
    for (const h of repmgrNodes) {
      const dir = this.#hostDir(h);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'node.conf'), `cluster_name = '${h}'\n`);
      writeFileSync(
        this.#conf(h),
        renderRepmgrConf(
          {
            nodeId: nodeIds[h],
            nodeName: h,
            address: t.hosts[h].address,
            dataDir: this.#dataDir(h),
            pgLog: this.#pgLog(h),
            configFile: this.#conf(h),
            promoteCommand: promote,
            pidFile: path.join(dir, 'repmgrd.pid'),
          },
          this.#settings,
          this.#setting,
        ),
      );
      await mustRun('chown', ['-R', 'postgres:postgres', dir]);
    }

    lab.progress('repmgr: initdb on db-a, primary register');
    await this.#initdb('db-a');
    await this.#startPostgres('db-a');
    await this.#repmgrDatabase('db-a');
    await this.#repmgr('db-a', ['primary', 'register']);

    lab.progress('repmgr: standby clone onto db-b, standby register');
    const primary = ['-h', t.hosts['db-a'].address, '-U', 'repmgr', '-d', 'repmgr'];
    // --fast-checkpoint: pg_basebackup's default spread checkpoint takes minutes on an idle server.
    await this.#repmgr('db-b', [...primary, 'standby', 'clone', '--fast-checkpoint']);
    await this.#startPostgres('db-b');
    await this.#repmgr('db-b', ['standby', 'register']);

    lab.progress('repmgr: the witness server on the witness host, witness register');
    await this.#initdb('witness');
    await this.#startPostgres('witness');
    await this.#repmgrDatabase('witness');
    await this.#repmgr('witness', [...primary, 'witness', 'register']);

    await waitForStreaming('db-a', 'db-b', 60_000);
    await psql('db-a', `ALTER SYSTEM SET synchronous_standby_names = '"db-b"'`);
    await psql('db-a', 'SELECT pg_reload_conf()');

    for (const h of repmgrNodes) {
      this.#repmgrd[h] = new Service({
        reaper: lab.reaper,
        name: `repmgrd ${h}`,
        host: h,
        argv: [path.join(pgBinDir, 'repmgrd'), '-f', this.#conf(h), '--daemonize=false'],
        // The PostgreSQL user, with CAP_NET_ADMIN for the wrapper's `ip addr` (as pgvip's agent has).
        run: { user: 'postgres', caps: ['net_admin'] },
        env: {
          ...(h === 'witness' ? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: this.#hostDir(h) } : awsEnv(lab, h)),
          TZ: 'UTC',
          VIP: t.vip.address,
          VIP_PREFIX: String(t.vip.prefixLength),
          EC2_ENDPOINT: ec2Endpoint(t),
          ...(h === 'witness' ? {} : { IMDS_ENDPOINT: imdsEndpoint(t, h), PROMOTE_LOG: this.#log(h) }),
        },
        cwd: this.#hostDir(h),
        logFile: this.#log(h),
      });
    }
    // The operator's one-time setup: the VIP on the primary (the wrapper moves it from then on).
    await this.#takeVip('db-a');
    lab.progress('repmgr: starting repmgrd on db-a, db-b and the witness host');
    for (const h of repmgrNodes) this.#repmgrd[h].start();
  }

  /** The VIP on `node`'s ENI (real AWS CLI, the host's instance role) and interface, as promote.sh does. */
  async #takeVip(node: DbNode): Promise<void> {
    const t = this.#lab.topology;
    const assign = ['/usr/bin/aws', 'ec2', 'assign-private-ip-addresses', '--network-interface-id', t.ec2[node].eniId];
    assign.push('--private-ip-addresses', t.vip.address, '--allow-reassignment', '--endpoint-url', ec2Endpoint(t));
    await mustRunOnHost(node, assign, { env: awsEnv(this.#lab, node), cgroup: false, timeoutMs: 60_000 });
    await runOnHost(node, ['ip', 'addr', 'replace', `${t.vip.address}/${t.vip.prefixLength}`, 'dev', 'eth0'], { cgroup: false });
  }

  /** repmgr's own record of the roles (repmgr.nodes on the primary): the primary, and the standby active. */
  async #repmgrProblems(primary: DbNode, standby: DbNode): Promise<string[]> {
    const sql = "SELECT node_name || ':' || type || ':' || CASE WHEN active THEN 'active' ELSE 'inactive' END FROM repmgr.nodes";
    const argv = [path.join(pgBinDir, 'psql'), '-X', '-A', '-t', '-q', '-h', '127.0.0.1', '-U', 'repmgr', '-d', 'repmgr', '-c', sql];
    const r = await runOnHost(primary, argv, { user: 'postgres', cgroup: false, timeoutMs: 5_000 });
    if (r.code !== 0) return [`cannot read repmgr.nodes on ${primary}: ${r.stderr.trim() || 'timed out'}`];
    const rows = new Set(r.stdout.trim().split('\n'));
    const problems: string[] = [];
    if (!rows.has(`${primary}:primary:active`)) problems.push(`repmgr does not record ${primary} as the active primary`);
    if (!rows.has(`${standby}:standby:active`)) problems.push(`repmgr does not record ${standby} as an active standby`);
    return problems;
  }

  async health(): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
    const h = await pairProblems(this.#lab, { sync: true });
    if (h.healthy === null) return h;
    const problems = await this.#repmgrProblems(h.healthy.primary as DbNode, h.healthy.standby as DbNode);
    for (const s of this.services) if (!s.running) problems.push(`${s.name} is not running`);
    return { problems, healthy: problems.length === 0 ? h.healthy : null };
  }

  /**
   * The operator's repair after a run: the node EC2 routes the VIP to is the primary; the other one is
   * stopped if it still runs (an old primary repmgr never fenced), rejoined onto it with `repmgr node
   * rejoin --force-rewind` (pg_rewind), and named the synchronous standby again. A PostgreSQL that
   * crashed without a failover is started again where it was.
   */
  async repair(): Promise<HealthyCluster> {
    const lab = this.#lab;
    const t = lab.topology;
    // A two-node lab: the VIP routes to db-a or db-b (otherNode refuses anything else).
    const old = otherNode((await lab.emulator.vipNode()) ?? 'db-a');
    const primary = otherNode(old);
    const p = await serverState(lab, primary);
    if (!p.up && postmasterPid(lab.pg[primary]) === null) await this.#startPostgres(primary);
    else if (p.up && p.inRecovery) throw new Error(`the VIP routes to ${primary}, which is still a standby: repmgr left no primary`);
    const o = await serverState(lab, old);
    if (!o.up || !o.inRecovery) {
      lab.progress(`repmgr: node rejoin of ${old} onto ${primary} (pg_rewind)`);
      await this.#repmgrd[old].stop();
      await runOnHost(old, ['ip', 'addr', 'del', `${t.vip.address}/${t.vip.prefixLength}`, 'dev', 'eth0'], { cgroup: false });
      // pg_rewind wants a cleanly shut down target: a crashed server is started once (crash recovery;
      // the VIP is elsewhere) and stopped again, as an operator would.
      if (postmasterPid(lab.pg[old]) === null) await this.#startPostgres(old);
      if (postmasterPid(lab.pg[old]) !== null) await stopServer(lab.pg[old], 'fast');
      if (postmasterPid(lab.pg[old]) !== null) await stopServer(lab.pg[old], 'immediate');
      await psql(primary, 'CHECKPOINT', { timeoutMs: 30_000 });
      const source = `host=${t.hosts[primary].address} user=repmgr dbname=repmgr connect_timeout=2`;
      // Through the reaper: node rejoin starts PostgreSQL with service_start_command, and the reaper
      // must be its parent (see #startPostgres).
      const argv = onHost(old, [repmgrBin, '-f', this.#conf(old), 'node', 'rejoin', '-d', source, '--force-rewind', '--verbose'], { user: 'postgres' });
      const r = await lab.reaper.run(argv, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: this.#hostDir(old), TZ: 'UTC' }, timeoutMs: 180_000 });
      if (r.code !== 0) throw new CommandError(`repmgr node rejoin of ${old}`, r);
    }
    await psql(primary, `ALTER SYSTEM SET synchronous_standby_names = '"${old}"'`);
    await psql(primary, 'SELECT pg_reload_conf()');
    for (const s of this.services) s.start();
    return lab.waitHealthy(180_000);
  }

  timeline(faultAt: number, oldPrimary: DbNode, newPrimary: DbNode): Milestone[] {
    let lines: Array<{ atMs: number; msg: string }> = [];
    try {
      lines = parseRepmgrdLog(readFileSync(this.#log(newPrimary), 'utf8'));
    } catch {
      // no log yet
    }
    // repmgrd logs whole seconds: a line of the fault's own second counts.
    const from = faultAt - (faultAt % 1_000);
    // ...but not before the fault itself.
    const first = (re: RegExp) => {
      const at = lines.find((l) => l.atMs >= from && re.test(l.msg))?.atMs;
      return at === undefined ? null : Math.max(at, faultAt);
    };
    const promoted = this.#lab.promotionsSince(faultAt).find((p) => p.node === newPrimary);
    return [
      { label: `${oldPrimary} unreachable`, atMs: first(/unable to (ping|connect)|unable to reconnect/), source: `repmgrd ${newPrimary}` },
      { label: 'election: promotion candidate', atMs: first(/this node is the winner|promotion candidate is/), source: `repmgrd ${newPrimary}` },
      { label: `PostgreSQL on ${newPrimary} promoted`, atMs: promoted?.atMs ?? null, source: `PostgreSQL ${newPrimary}` },
      { label: `promote.sh assigned the VIP to ${newPrimary}`, atMs: first(/VIP assigned/), source: `promote.sh ${newPrimary}` },
    ];
  }
}

// What repmgr did in bench:anchors' safety scenarios (bench/results/anchors.md), from repmgrd's logs.
const safetyCommon = [
  'isolation: the standby promotes once its reconnection attempts are used up; the isolated old primary is never ' +
    'told anything and stays a writable primary until the operator rejoins it (two writable for as long as the ' +
    'bench watches). Its commits wait for the synchronous standby it had, so nothing is acknowledged there through ' +
    'this setup, but any client reaching it directly blocks or, with asynchronous replication, writes to a fork.',
  'primary ↔ standby cut: writes stall for the whole cut (the primary waits for its synchronous standby, and repmgr ' +
    'does not manage synchronous_standby_names).',
  'flapping: 6 s blips end before the reconnection attempts do: no failover, a write gap per blip.',
];

function repmgrSystem(
  name: string,
  settings: RepmgrSettings,
  setting: string,
  safetyNotes: readonly string[],
): AnchorSystem {
  return {
    name,
    tool: 'repmgr',
    describe:
      'repmgr 5.3 (Debian) with repmgrd on db-a and db-b and a witness server on the third host, synchronous replication, ' +
      'the VIP moved by a promote_command wrapper (test/lab/anchors/repmgr), the old primary rejoined by the operator ' +
      `(repmgr node rejoin --force-rewind) after each run; ${setting}: monitor_interval_secs ${settings.monitor_interval_secs}, ` +
      `reconnect_attempts ${settings.reconnect_attempts} × reconnect_interval ${settings.reconnect_interval} s, ` +
      `primary_visibility_consensus ${String(settings.primary_visibility_consensus)}. repmgr fences nothing: an old ` +
      'primary that survives (isolation, a frozen host) stays writable until the operator rejoins it, so its "two ' +
      'writable" figure is the part of that the bench watches (until 3 s after the heal), not an end.',
    safetyNotes,
    postgres: 'tool',
    unsupported: {
      switchover:
        'not supported in this lab (needs SSH): `repmgr standby switchover` stops and rejoins the old primary over ' +
        "SSH (passwordless, from the standby), and the lab's hosts run no SSH server (no openssh-server installed)",
    },
    recoveryDeadlineMs: { 'host-loss': 120_000, isolation: 120_000, 'pg-crash': 120_000 },
    create: (lab) => new RepmgrInstance(lab, settings, setting),
  };
}

export const repmgr = repmgrSystem('repmgr', repmgrDefaults, "repmgr's defaults", [
  ...safetyCommon,
  'cut (defaults): the standby\'s repmgrd was at its 6th of 6 reconnection attempts when the 60 s cut healed: a cut a ' +
    'few seconds longer starts an election which, with primary_visibility_consensus off, promotes the standby while ' +
    'the primary is alive and reachable by the witness and clients: two primaries.',
  'frozen host (defaults): 50 s is shorter than the 6 reconnection attempts 10 s apart, so no election started; ' +
    'writes resumed on the same primary at the thaw (50.5 s).',
]);
export const repmgrFastSystem = repmgrSystem(
  'repmgr-fast',
  repmgrFast,
  'short reconnection settings with primary_visibility_consensus on (config.ts)',
  [
    ...safetyCommon,
    'cut (fast): the standby\'s repmgrd gave up on the primary 10 s after the cut (3 attempts), asked the witness, which ' +
      'had seen the primary 0 s before, and cancelled the election ("cancelling failover as some nodes can still ' +
      'see the primary"): primary_visibility_consensus is what keeps the short settings from promoting here.',
  ],
);

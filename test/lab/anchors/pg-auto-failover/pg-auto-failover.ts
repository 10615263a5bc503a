// pg_auto_failover in the lab, set up the way its documentation does for a primary, one standby and a
// monitor ("Quickstart", "Architecture basics"), with Debian's pg-auto-failover-cli and
// postgresql-15-auto-failover 2.0:
//
//   witness  pg_autoctl create monitor --pgdata <monitor> --hostname 198.18.2.20 --auth trust --no-ssl
//            then `pg_autoctl run` (the monitor: a PostgreSQL with the pgautofailover extension)
//   db-a     pg_autoctl create postgres --pgdata <pgdata> --name db-a --hostname 198.18.1.11
//              --monitor postgres://autoctl_node@198.18.2.20:5432/pg_auto_failover --auth trust --no-ssl
//            then `pg_autoctl run` (the keeper; db-a registers first and becomes the primary)
//   db-b     the same with --name db-b: pg_autoctl takes a base backup of db-a and joins as secondary
//
// number_sync_standbys stays 0, what the documentation prescribes for two nodes: the primary
// replicates synchronously to its one standby (synchronous_standby_names = 'ANY 1 (...)'), and when
// the standby is lost the monitor moves the primary to wait_primary, which turns synchronous
// replication off so that writes go on. The VIP follows the monitor's state notifications
// (vip-hook.py, one per database host). The two measured settings are in config.ts.
//
// Each host runs its PostgreSQL under pg_autoctl (its "start/stop postgres" service), as the
// packaged systemd unit (`pg_autoctl show systemd`) does.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { awsEnv } from '../../baseline/baseline.js';
import type { HealthyCluster } from '../../checkers.js';
import { mustRun, mustRunOnHost, runOnHost } from '../../exec.js';
import type { Lab } from '../../lab.js';
import type { Milestone } from '../../logs.js';
import { pgBinDir } from '../../postgres.js';
import { Service } from '../../supervisor.js';
import { dbNodes, ec2Endpoint, imdsEndpoint, otherNode, type DbNode } from '../../topology.js';
import { waitFor } from '../../wait.js';
import { serverState, type AnchorInstance, type AnchorSystem } from '../system.js';
import {
  configSetArgs,
  labPostgresqlConf,
  nodeConf,
  pgafDefaults,
  pgafFast,
  renderKeeperCfg,
  renderMonitorConf,
  type PgAutoFailoverSettings,
} from './config.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const formation = 'default';
type PgafHost = DbNode | 'witness';

/** What `pg_autoctl show state --json` (pgautofailover.current_state) says about a node. */
interface NodeState {
  readonly nodename: string;
  readonly current_group_state: string;
  readonly assigned_group_state: string;
  readonly health: number;
}

/** A pg_autoctl log line `HH:MM:SS pid LEVEL message` (TZ=UTC), or the VIP hook's `<epoch ms> vip-hook: ...`. */
export function parsePgAutoctlLog(text: string, day: number): Array<{ atMs: number; msg: string }> {
  const out: Array<{ atMs: number; msg: string }> = [];
  const midnight = day - (day % 86_400_000);
  for (const line of text.split('\n')) {
    const p = /^(\d\d):(\d\d):(\d\d) +\d+ +[A-Z]+ +(.*)$/.exec(line);
    if (p) {
      const atMs = midnight + ((Number(p[1]) * 60 + Number(p[2])) * 60 + Number(p[3])) * 1_000;
      out.push({ atMs, msg: p[4]! });
      continue;
    }
    const hook = /^(\d{13}) (vip-hook: .*)$/.exec(line);
    if (hook) out.push({ atMs: Number(hook[1]), msg: hook[2]! });
  }
  return out;
}

class PgAutoFailoverInstance implements AnchorInstance {
  readonly #lab: Lab;
  readonly #settings: PgAutoFailoverSettings;
  readonly #setting: string;
  readonly #keepers = {} as Record<DbNode, Service>;
  readonly #hooks = {} as Record<DbNode, Service>;
  #monitor: Service | null = null;

  constructor(lab: Lab, settings: PgAutoFailoverSettings, setting: string) {
    this.#lab = lab;
    this.#settings = settings;
    this.#setting = setting;
  }

  get services(): Service[] {
    return [...(this.#monitor ? [this.#monitor] : []), ...Object.values(this.#keepers), ...Object.values(this.#hooks)];
  }

  /** Where a host keeps pg_auto_failover's files: pg_autoctl's XDG config and state, node.conf, the socket. */
  #home(h: PgafHost): string {
    return h === 'witness' ? path.join(this.#lab.dir, 'hosts', 'witness', 'pgaf') : this.#lab.pg[h].hostDir;
  }

  #pgdata(h: PgafHost): string {
    return h === 'witness' ? path.join(this.#home('witness'), 'pgdata') : this.#lab.pg[h].dataDir;
  }

  #log(name: string): string {
    return path.join(this.#lab.dir, 'logs', `${name}.log`);
  }

  logFiles(): Record<string, string> {
    return {
      'pg_autoctl monitor': this.#log('pgaf-monitor'),
      ...Object.fromEntries(dbNodes.map((n) => [`pg_autoctl ${n}`, this.#log(`pgaf-${n}`)])),
      ...Object.fromEntries(dbNodes.map((n) => [`vip-hook ${n}`, this.#log(`pgaf-vip-hook-${n}`)])),
    };
  }

  get #monitorUri(): string {
    return `postgres://autoctl_node@${this.#lab.topology.hosts.witness.address}:5432/pg_auto_failover`;
  }

  /** pg_autoctl's environment on a host: its XDG directories, the local socket, PostgreSQL 15's tools. */
  #env(h: PgafHost): Record<string, string> {
    const home = this.#home(h);
    return {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_DATA_HOME: path.join(home, 'share'),
      PGHOST: path.join(home, 'run'),
      PGDATA: this.#pgdata(h),
      PG_CONFIG: path.join(pgBinDir, 'pg_config'),
      PATH: `${pgBinDir}:/usr/sbin:/usr/bin:/sbin:/bin`,
      TZ: 'UTC',
    };
  }

  /** A one-off command as postgres on a host (pg_autoctl create, config set, perform). */
  #autoctl(h: PgafHost, args: readonly string[], timeoutMs = 180_000): Promise<string> {
    return mustRunOnHost(h, ['/usr/bin/pg_autoctl', ...args], { user: 'postgres', cgroup: false, timeoutMs, env: this.#env(h) });
  }

  /** The host's directories, node.conf and, for the monitor and db-a, an initdb with the lab's settings. */
  async #prepare(h: PgafHost, initdb: boolean): Promise<void> {
    const home = this.#home(h);
    mkdirSync(path.join(home, 'run'), { recursive: true });
    writeFileSync(path.join(home, 'node.conf'), nodeConf(h, path.join(home, 'run')));
    await mustRun('chown', ['-R', 'postgres:postgres', home]);
    if (!initdb) return;
    const pgdata = this.#pgdata(h);
    const initdbArgv = [path.join(pgBinDir, 'initdb'), '-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'];
    await mustRunOnHost(h, initdbArgv, { user: 'postgres', cgroup: false, timeoutMs: 120_000 });
    appendFileSync(path.join(pgdata, 'postgresql.conf'), `\n# --- the lab (test/lab/anchors/pg-auto-failover) ---\n${labPostgresqlConf(this.#settings)}`);
    // Every lab address may connect (the keepers, the monitor's health checks, the writer, the lab's
    // own checks); pg_autoctl adds its own lines for the nodes it knows about.
    appendFileSync(path.join(pgdata, 'pg_hba.conf'), 'host all all 198.18.0.0/15 trust\nhost replication all 198.18.0.0/15 trust\n');
  }

  #service(h: PgafHost, name: string, logName: string): Service {
    return new Service({
      reaper: this.#lab.reaper,
      name,
      host: h,
      argv: ['/usr/bin/pg_autoctl', 'run', '--pgdata', this.#pgdata(h)],
      run: { user: 'postgres' },
      env: this.#env(h),
      logFile: this.#log(logName),
    });
  }

  async start(): Promise<void> {
    const lab = this.#lab;
    const t = lab.topology;
    writeFileSync(path.join(lab.dir, 'pgaf-monitor.conf'), renderMonitorConf(this.#settings, this.#setting));
    const keeperCfg = renderKeeperCfg(this.#settings, this.#setting);
    writeFileSync(path.join(lab.dir, 'pgaf-keeper.cfg'), keeperCfg);

    lab.progress('pg_auto_failover: creating the monitor on the witness host');
    await this.#prepare('witness', true);
    appendFileSync(path.join(this.#pgdata('witness'), 'postgresql.conf'), `\n${renderMonitorConf(this.#settings, this.#setting)}`);
    await this.#autoctl('witness', ['create', 'monitor', '--pgdata', this.#pgdata('witness'), '--pgport', '5432', '--hostname', t.hosts.witness.address, '--auth', 'trust', '--no-ssl']);
    this.#monitor = this.#service('witness', 'pg_autoctl monitor', 'pgaf-monitor');
    this.#monitor.start();
    await waitFor('the pg_auto_failover monitor', 60_000, async () => ((await this.#states()) !== null ? true : null));

    // The VIP hook: a copy readable by the postgres user (the checkout may be closed to it).
    const hook = path.join(lab.dir, 'pgaf-vip-hook.py');
    copyFileSync(path.join(here, 'vip-hook.py'), hook);
    for (const n of dbNodes) {
      lab.progress(`pg_auto_failover: creating the keeper on ${n}${n === 'db-a' ? ' (primary)' : ' (a base backup of db-a)'}`);
      await this.#prepare(n, n === 'db-a');
      const create = ['create', 'postgres', '--pgdata', this.#pgdata(n), '--pgport', '5432', '--name', n, '--hostname', t.hosts[n].address];
      await this.#autoctl(n, [...create, '--formation', formation, '--monitor', this.#monitorUri, '--auth', 'trust', '--no-ssl']);
      for (const [key, value] of configSetArgs(keeperCfg)) await this.#autoctl(n, ['config', 'set', '--pgdata', this.#pgdata(n), key, value]);
      this.#keepers[n] = this.#service(n, `pg_autoctl ${n}`, `pgaf-${n}`);
      this.#hooks[n] = new Service({
        reaper: lab.reaper,
        name: `vip-hook ${n}`,
        host: n,
        argv: ['/usr/bin/python3', hook],
        // The PostgreSQL user with CAP_NET_ADMIN for `ip addr` (as pgvip's agent and Patroni's callback).
        run: { user: 'postgres', caps: ['net_admin'] },
        env: {
          ...awsEnv(lab, n),
          PGAF_NODE: n,
          PGAF_MONITOR: this.#monitorUri,
          PGAF_FORMATION: formation,
          VIP: t.vip.address,
          VIP_PREFIX: String(t.vip.prefixLength),
          EC2_ENDPOINT: ec2Endpoint(t),
          IMDS_ENDPOINT: imdsEndpoint(t, n),
        },
        logFile: this.#log(`pgaf-vip-hook-${n}`),
      });
      this.#keepers[n].start();
      this.#hooks[n].start();
      const want = n === 'db-a' ? ['single'] : ['secondary'];
      await waitFor(`${n} to reach ${want.join('/')}`, 180_000, async () => {
        const s = (await this.#states())?.find((x) => x.nodename === n);
        return s !== undefined && want.includes(s.current_group_state) ? true : null;
      });
    }
  }

  /** The monitor's view of the formation; null when it does not answer. */
  async #states(): Promise<NodeState[] | null> {
    const r = await runOnHost('witness', ['/usr/bin/pg_autoctl', 'show', 'state', '--pgdata', this.#pgdata('witness'), '--json'], {
      user: 'postgres',
      cgroup: false,
      timeoutMs: 10_000,
      env: this.#env('witness'),
    });
    if (r.code !== 0) return null;
    try {
      return JSON.parse(r.stdout) as NodeState[];
    } catch {
      return null;
    }
  }

  async health(): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
    const lab = this.#lab;
    const states = await Promise.all(dbNodes.map((n) => serverState(lab, n)));
    const writable = states.filter((s) => s.writable);
    const problems: string[] = [];
    if (writable.length !== 1) {
      problems.push(`${writable.length} writable servers (${states.map((s) => `${s.node}: ${s.up ? (s.inRecovery ? 'standby' : 'primary') : 'down'}`).join(', ')})`);
      return { problems, healthy: null };
    }
    const primary = writable[0]!.node;
    const standby = otherNode(primary);
    const vipNode = await lab.emulator.vipNode();
    if (vipNode !== primary) problems.push(`the VIP routes to ${vipNode ?? 'nowhere'}, not to ${primary}`);
    try {
      // pg_auto_failover names its standbys pgautofailover_standby_<id>: any streaming one in the quorum.
      const sql = "SELECT count(*)::int FROM pg_stat_replication WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')";
      const rows = await lab.emulator.sql(lab.topology.hosts[primary].address, sql, [], 2_000);
      if (rows[0]?.[0] !== 1) problems.push(`${standby} is not ${primary}'s synchronous standby`);
    } catch (err) {
      problems.push(`cannot ask ${primary}: ${(err as Error).message}`);
    }
    const monitor = await this.#states();
    if (monitor === null) problems.push('the monitor does not answer');
    else {
      const p = monitor.find((s) => s.nodename === primary);
      const s = monitor.find((x) => x.nodename === standby);
      if (p?.current_group_state !== 'primary' || p.assigned_group_state !== 'primary') {
        problems.push(`the monitor has ${primary} ${p?.current_group_state ?? '?'} → ${p?.assigned_group_state ?? '?'}, not primary`);
      }
      if (s?.current_group_state !== 'secondary' || s.assigned_group_state !== 'secondary') {
        problems.push(`the monitor has ${standby} ${s?.current_group_state ?? '?'} → ${s?.assigned_group_state ?? '?'}, not secondary`);
      }
    }
    return { problems, healthy: problems.length === 0 ? { primary, standby, standbys: [standby], term: 0 } : null };
  }

  /** `pg_autoctl perform switchover` on the monitor: with two nodes, the standby becomes the primary. */
  async switchover(to: DbNode): Promise<void> {
    const before = await this.#states();
    if (before?.find((s) => s.nodename === to)?.current_group_state !== 'secondary') throw new Error(`${to} is not the secondary`);
    await this.#autoctl('witness', ['perform', 'switchover', '--pgdata', this.#pgdata('witness'), '--formation', formation, '--wait', '120']);
  }

  /** pg_auto_failover rejoins the old primary by itself (pg_rewind, or a new base backup): wait for it. */
  async repair(): Promise<HealthyCluster> {
    for (const s of this.services) s.start();
    return this.#lab.waitHealthy(180_000);
  }

  timeline(faultAt: number, oldPrimary: DbNode, newPrimary: DbNode): Milestone[] {
    const read = (name: string) => {
      try {
        return parsePgAutoctlLog(readFileSync(this.#log(name), 'utf8'), faultAt);
      } catch {
        return [];
      }
    };
    // pg_autoctl logs whole seconds: a line of the fault's own second counts.
    const from = faultAt - (faultAt % 1_000);
    const first = (name: string, re: RegExp) => read(name).find((l) => l.atMs >= from && re.test(l.msg))?.atMs ?? null;
    return [
      {
        label: `monitor: ${oldPrimary} unhealthy`,
        atMs: first('pgaf-monitor', new RegExp(`"${oldPrimary}".*(marked as unhealthy|➜ draining|➜ demote_timeout)`)),
        source: 'pg_autoctl monitor',
      },
      { label: `${newPrimary} promoting`, atMs: first(`pgaf-${newPrimary}`, /^Promoting postgres/), source: `keeper ${newPrimary}` },
      {
        label: `${newPrimary} writable (wait_primary)`,
        atMs: first(`pgaf-${newPrimary}`, /^Setting default_transaction_read_only to off|current state is now "wait_primary"/),
        source: `keeper ${newPrimary}`,
      },
      { label: `hook assigned the VIP to ${newPrimary}`, atMs: first(`pgaf-vip-hook-${newPrimary}`, /VIP assigned/), source: `vip-hook ${newPrimary}` },
    ];
  }
}

// What pg_auto_failover did in bench:anchors' safety scenarios (bench/results/anchors.md), from the
// monitor's and keepers' logs.
const safetyCommon = [
  'isolation: the monitor marks the primary unhealthy, waits primary_demote_timeout for it to demote, then opens ' +
    'the standby for writes (wait_primary, synchronous replication off). The isolated keeper counts its partition ' +
    'only from when the standby leaves pg_stat_replication ("We lost the monitor, but still have a standby: we\'re ' +
    'not in a network partition"), which takes wal_sender_timeout, and stops PostgreSQL network_partition_timeout ' +
    'after that: at the defaults 53 s after the fault, 2 s before the monitor opened the standby (at 55 s). Only one ' +
    'server accepted writes, by a margin of seconds that rests on wal_sender_timeout + network_partition_timeout ' +
    'staying below node_considered_unhealthy_timeout + primary_demote_timeout plus the health checks.',
  'primary ↔ standby cut: the monitor still reaches both nodes, sees both healthy and changes nothing; the primary\'s ' +
    'keeper reports "no standby connected in pg_stat_replication" once wal_sender_timeout has passed, but the ' +
    'monitor does not turn synchronous replication off for a standby it sees healthy, so writes stall for the ' +
    'whole cut.',
  'flapping: 6 s blips are shorter than node_considered_unhealthy_timeout: no failover, write gaps of 6–9 s.',
];

function pgafSystem(
  name: string,
  settings: PgAutoFailoverSettings,
  setting: string,
  safetyNotes: readonly string[],
): AnchorSystem {
  const m = settings.monitor;
  return {
    name,
    tool: 'pg-auto-failover',
    describe:
      'pg_auto_failover 2.0 (Debian) with its monitor on the witness host and keepers on db-a and db-b, ' +
      'number_sync_standbys 0 (synchronous to the one standby, off while it is lost), the VIP moved by a hook on the ' +
      `monitor's state notifications (test/lab/anchors/pg-auto-failover); ${setting}: health checks every ` +
      `${m.health_check_period / 1000} s (timeout ${m.health_check_timeout / 1000} s, ${m.health_check_max_retries} retries ` +
      `${m.health_check_retry_delay / 1000} s apart), node_considered_unhealthy_timeout ${m.node_considered_unhealthy_timeout / 1000} s, ` +
      `primary_demote_timeout ${m.primary_demote_timeout / 1000} s, network_partition_timeout ` +
      `${settings.keeper.network_partition_timeout} s, wal_sender_timeout ${settings.walSenderTimeout} s.`,
    safetyNotes,
    postgres: 'tool',
    // The keeper restarts a crashed PostgreSQL where it was (timeout.postgresql_restart_failure_*).
    recoversInPlace: ['pg-crash'],
    recoveryDeadlineMs: { 'host-loss': 120_000, isolation: 120_000, 'pg-crash': 90_000 },
    create: (lab) => new PgAutoFailoverInstance(lab, settings, setting),
  };
}

export const pgAutoFailover = pgafSystem('pg-auto-failover', pgafDefaults, "pg_auto_failover's defaults", [
  ...safetyCommon,
  'frozen host (defaults): the monitor marked the primary unhealthy at 23 s and would have opened the standby at ' +
    'about 53 s; the host thawed at 50 s, its keeper read its goal state demote_timeout and stopped PostgreSQL at ' +
    'once, and the standby took writes at 55 s. A freeze shorter than the failover time is handled by the keeper ' +
    'at the thaw; nothing was writable twice.',
  'promotions (defaults, isolation and cut rows): measured while the column still counted "selected new timeline ' +
    'ID" in a log pg_auto_failover does not write, so the isolation row shows 0 although the monitor promoted db-b ' +
    '(its log: stop_replication, then wait_primary at 55 s).',
]);
export const pgAutoFailoverFast = pgafSystem(
  'pg-auto-failover-fast',
  pgafFast,
  'the fastest settings that keep its safety constraints (config.ts)',
  [
    ...safetyCommon,
    'cut (fast): writes stalled for the whole 60 s too, although wal_sender_timeout is 5 s here: the keeper knew ' +
      'the standby was gone within seconds, the monitor, still seeing it healthy, kept synchronous replication on.',
    'flapping (fast): the blips (6 s) are longer than network_partition_timeout (5 s); no failover happened, but ' +
      'after the fifth heal the VIP stayed on db-a, the standby, while db-b stayed the primary, for the 180 s the ' +
      'bench waited ("the VIP routes to db-a, not to db-b"): writes through the VIP stopped. The run\'s logs were ' +
      'not kept (the bench keeps a failed run\'s logs since), so whether the VIP hook or the states it followed are ' +
      'to blame is not known.',
  ],
);

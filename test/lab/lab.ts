// The lab: three real hosts and a client on one machine (docs/lab.md). `startLab()` builds the
// network, the EC2/IMDS emulator, PostgreSQL 15 (primary + synchronous standby), starts the agents and
// the witness (or the baseline failover loop instead), waits until the cluster has elected a primary
// and the VIP routes to it, and starts the writer probe. `down()` removes everything it made; an exit
// hook does the same if the process ends first, and the next start clears what a crashed run left.
//
//   const lab = await startLab({ progress: console.log });
//   const { primary } = await lab.waitHealthy();
//   const faultAt = await lab.faults.isolate(primary);
//   ...; await lab.faults.healAll(); const report = await lab.checkSince(faultAt);
//   await lab.down();
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { anchorOf } from './anchors/registry.js';
import type { AnchorInstance } from './anchors/system.js';
import { startBaselineLoop, baselineProblems } from './baseline/baseline.js';
import { acknowledged, clusterProblems, lostAckedWrites, overlappingWriters, writeGap, type AgentStatusView, type ClusterSnapshot, type HealthyCluster, type Overlap, type WriteGap } from './checkers.js';
import { agentUser, labCertificates, witnessUser, writeLabConfigs, type LabClusterExtra, type LabConfigs } from './configs.js';
import { LabEmulator } from './emulator.js';
import { LabEtcd } from './etcd.js';
import { EtcdKeyWatch, etcdKeyProblems, readPgvipKeys, type PgvipEtcdKeys } from './etcd-keys.js';
import { Faults } from './faults.js';
import { mustRun } from './exec.js';
import { nodeArgv, repoRoot } from './ipc.js';
import { LogFollower, firstLine, readLog, recentSummary, type LogLine, type Milestone } from './logs.js';
import { acquireLabLock, createNetwork, releaseLabLock, removeLabResourcesSync, removeNetwork } from './netns.js';
import { daemonUnitEnvironment, daemonUnitNodeFlags } from '../deploy/systemd-unit.js';
import { chownTree, createPgCluster, labSchemaSql, pgServersFor, psql, type PgServer } from './postgres.js';
import { Reaper } from './reaper.js';
import { prepareLabRuntime, type LabRuntime } from './runtime.js';
import { Service } from './supervisor.js';
import { clusterName, ec2Endpoint, imdsEndpoint, otherNode, topologyFor, type DbNode, type LabNodeCount, type Topology, type VipMode } from './topology.js';
import { waitFor } from './wait.js';
import { WriterProbe, type WriteRecord, type WriterOptions } from './writer.js';

/** pgvip, the baseline loop, or an anchor by its name in anchors/registry.ts ("patroni", ...). */
export type LabSystem = 'pgvip' | 'baseline' | (string & Record<never, never>);

/** pgvip's quorum (quorum.backend): the witness votes, or the lab's etcd holds the leader key and the term. */
export type LabBackend = 'witness' | 'etcd';
export const labBackends: readonly LabBackend[] = ['witness', 'etcd'];

/** quorum.etcd.prefix of the lab's cluster (the default): its keys are under /pgvip/lab/. */
export const labEtcdPrefix = '/pgvip';

export interface LabOptions {
  /** What keeps the VIP on the primary: pgvip's agents and witness, the baseline shell loop, or an anchor. */
  readonly system?: LabSystem;
  readonly vipMode?: VipMode;
  /** Overrides of the cluster's timings (default: pgvip's defaults, which is what the lab tests). */
  readonly timings?: Readonly<Record<string, number>>;
  /** pgvip's replication.mode (default sync); in async mode the healthy check needs no synchronous standby. */
  readonly replication?: 'sync' | 'async';
  /** Start the writer probe (default true). */
  readonly writer?: boolean | WriterOptions;
  /**
   * Run the agents and the witness from their compiled dist/ (as in production, with their systemd units'
   * Node flags and environment; needs `npm run build` first) instead of from source.
   */
  readonly compiled?: boolean;
  /** Extra Node.js flags for the agents when compiled (e.g. --cpu-prof for a profile of the bench). */
  readonly agentNodeArgs?: readonly string[];
  /** Progress lines ("starting PostgreSQL on db-a", ...). */
  readonly progress?: (line: string) => void;
  /** Keep the lab directory (configs, logs) after down() (default: keep it only when down() follows a failure). */
  readonly keepDir?: boolean;
  /** Load libfaketime into the daemons so wall-clock jumps can be injected (default true). */
  readonly faketime?: boolean;
  /**
   * pgvip's peer protocol (agents and witness) on mutual TLS (default false). The operator API serves
   * HTTPS either way: it is reached from outside the witness host, and pgvip refuses that without TLS.
   */
  readonly tls?: boolean;
  /**
   * Also run the lab's three-member etcd (etcd.ts: a member on db-a, db-b and the witness host) before the
   * system starts, as `lab.etcd`, for pgvip's etcd backend (docs/etcd.md). The Patroni anchor runs its own.
   */
  readonly etcd?: boolean;
  /**
   * pgvip's quorum (default witness). "etcd": the lab's etcd starts first (as with `etcd`), every file
   * gets `quorum.backend: etcd` with its three endpoints, the witness daemon runs as an observer, and the
   * healthy check also asks etcd itself (the leader key, the term and sync records); `lab.etcdWatch`
   * records every change of those keys.
   */
  readonly backend?: LabBackend;
  /** More top-level blocks of each agent's file (e.g. `hooks`, `rejoin`), per node. */
  readonly agentConfig?: (node: DbNode) => Readonly<Record<string, unknown>>;
  /**
   * Database hosts (default 2). 3 adds db-c (its namespace, its PostgreSQL standby cloned from db-a, its
   * agent): pgvip on the etcd backend only, as pgvip runs three nodes only there (docs/design.md, "More
   * than one standby").
   */
  readonly nodes?: LabNodeCount;
  /** `priority` and `noFailover` of the nodes' entries in cluster.nodes, and more replication keys. */
  readonly cluster?: LabClusterExtra;
  /**
   * Wait for a healthy cluster before start() resolves (default true). false: the daemons are started and
   * start() resolves at once, without the writer (a check of the topology itself; `lab.waitHealthy()` and
   * `lab.startWriter()` later).
   */
  readonly awaitHealthy?: boolean;
}

export interface WitnessView {
  readonly term: number;
  readonly primary: string | null;
  readonly syncEligible: string | null;
  readonly nodes: ReadonlyArray<Record<string, unknown>>;
}

export class LabNeedsRootError extends Error {
  constructor() {
    super('the lab creates network namespaces, nftables rules and cgroups, and runs PostgreSQL as the postgres user: it needs root (run it with sudo)');
    this.name = 'LabNeedsRootError';
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

const labRoot = '/tmp';
const labDirPrefix = 'pgvip-lab-';
const faketimeLib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/** Removes lab directories whose owning process is gone (a crashed run); a live owner's are kept. */
function clearStaleLabDirs(): void {
  for (const name of readdirSync(labRoot)) {
    if (!name.startsWith(labDirPrefix)) continue;
    const owner = Number(name.slice(labDirPrefix.length).split('-')[0]);
    if (!Number.isInteger(owner)) continue;
    let alive = false;
    try {
      process.kill(owner, 0);
      alive = true;
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    // Only a dead owner's: this process's own directory is here only when a failed lab kept it (down()
    // removes the others), and a suite that starts a second lab must not lose the first one's logs.
    if (!alive) rmSync(path.join(labRoot, name), { recursive: true, force: true });
  }
}

// One teardown path for every way a process can end: exit, Ctrl-C, kill.
let hooksInstalled = false;
let liveLab: Lab | null = null;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const teardown = () => {
    if (liveLab === null) return;
    const lab = liveLab;
    liveLab = null;
    removeLabResourcesSync();
    lab.reaper?.close();
    releaseLabLock();
  };
  process.once('exit', teardown);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      teardown();
      process.kill(process.pid, signal);
    });
  }
}

export interface CheckReport {
  readonly fromMs: number;
  readonly toMs: number;
  readonly writes: { readonly total: number; readonly ok: number; readonly failed: number; readonly unknown: number };
  readonly lost: readonly WriteRecord[];
  readonly overlap: Overlap;
  readonly gap: WriteGap;
  readonly final: HealthyCluster;
  /** Hosts with the VIP on their own interface at the end (I5: only the primary should have it). */
  readonly vipOnInterfaces: readonly DbNode[];
}

export class Lab {
  readonly dir: string;
  readonly topology: Topology;
  readonly system: LabSystem;
  readonly options: LabOptions;
  readonly faults: Faults;
  emulator!: LabEmulator;
  /** Spawns the long-lived processes and reaps their orphans (reaper.py). */
  reaper!: Reaper;
  pg!: Record<DbNode, PgServer>;
  writer: WriterProbe | null = null;
  /**
   * The lab's copy of the daemons' code, which they run from (runtime.ts: the checkout may be closed to
   * their users).
   */
  runtime!: LabRuntime;
  configs: LabConfigs | null = null;
  readonly agents = {} as Record<DbNode, Service>;
  witness: Service | null = null;
  /** The baseline's failover loop (system "baseline"), on the current standby. */
  baseline: Service | null = null;
  /** The anchor (another HA tool, anchors/system.ts) when `system` names one. */
  anchor: AnchorInstance | null = null;
  /** The lab's etcd when `etcd` or backend etcd was asked for (etcd.ts). */
  etcd: LabEtcd | null = null;
  /** pgvip's quorum backend. */
  readonly backend: LabBackend;
  /** With backend etcd: the changes of pgvip's keys in etcd, as the lab received them (etcd-keys.ts). */
  etcdWatch: EtcdKeyWatch | null = null;
  /** The primary and standby as of the last healthy check. */
  roles: HealthyCluster | null = null;
  #failed = false;
  #down = false;

  private constructor(options: LabOptions) {
    this.options = options;
    this.system = options.system ?? 'pgvip';
    if (this.system !== 'pgvip' && this.system !== 'baseline' && anchorOf(this.system) === undefined) {
      throw new Error(`unknown lab system ${this.system}: pgvip, baseline, or an anchor of test/lab/anchors/registry.ts`);
    }
    this.backend = options.backend ?? 'witness';
    if (this.backend === 'etcd' && this.system !== 'pgvip') throw new Error(`backend etcd is pgvip's quorum: it needs system pgvip, not ${this.system}`);
    const nodes = options.nodes ?? 2;
    if (nodes === 3 && (this.system !== 'pgvip' || this.backend !== 'etcd')) {
      throw new Error(`a three-node lab runs pgvip on the etcd backend (the witness backend and the other systems run two nodes): got system ${this.system}, backend ${this.backend}`);
    }
    this.topology = topologyFor(options.vipMode ?? 'secondary-ip', nodes);
    this.dir = mkdtempSync(path.join(labRoot, `${labDirPrefix}${process.pid}-`));
    this.faults = new Faults(this.topology, this.dir);
  }

  progress(line: string): void {
    this.options.progress?.(line);
  }

  static async start(options: LabOptions = {}): Promise<Lab> {
    if (!isRoot()) throw new LabNeedsRootError();
    acquireLabLock();
    installExitHooks();
    clearStaleLabDirs();
    const lab = new Lab(options);
    liveLab = lab;
    try {
      await lab.#up();
      return lab;
    } catch (err) {
      lab.#failed = true;
      await lab.down().catch(() => undefined);
      throw err;
    }
  }

  async #up(): Promise<void> {
    const t = this.topology;
    // Readable by the postgres and nobody users, who run the daemons; each host dir is owned by its user.
    chmodSync(this.dir, 0o755);
    mkdirSync(path.join(this.dir, 'logs'));
    for (const h of t.hostNames) mkdirSync(path.join(this.dir, 'hosts', h), { recursive: true, mode: 0o755 });
    // The daemons run as postgres and nobody, who may not be able to enter the checkout (a clone in
    // /root or in `mktemp -d`): they run from a copy in the lab directory instead.
    this.runtime = prepareLabRuntime(repoRoot, path.join(this.dir, 'runtime'), { compiled: this.options.compiled === true });
    this.progress(`daemons' code copied to ${this.runtime.root} (${this.runtime.packages.length} npm packages, ${(this.runtime.bytes / 1e6).toFixed(0)} MB), readable by their users`);

    this.progress(`network: namespaces ${t.hostNames.map((h) => t.hosts[h].ns).join(', ')} and ${t.router.ns} (router)`);
    await createNetwork(t);
    await this.faults.init();

    this.progress(`EC2 + IMDS emulator on ${t.router.serviceAddress} (${t.vipMode} mode)`);
    this.emulator = await LabEmulator.start(t, this.dir);
    if (!this.emulator.iamEnforced) this.progress('note: no IAM policy in deploy/iam for this mode; EC2 calls are not checked against one');

    this.reaper = await Reaper.start();
    if (this.options.etcd === true || this.backend === 'etcd') {
      // Before the daemons, which need it from their first heartbeat. Each start begins from empty data
      // directories in this lab's own directory; a crashed run's members died with its namespaces and
      // its directory is cleared above (clearStaleLabDirs).
      this.etcd = new LabEtcd(this);
      await this.etcd.start();
    }
    // The watch asks the member on the witness host only, which no database host's fault touches: a
    // watch on a member that froze with its host would report nothing until its keepalive gave up.
    const watchEndpoint = this.etcd?.endpoints.find((e) => e.includes(`//${t.hosts.witness.address}:`));
    if (this.backend === 'etcd') this.etcdWatch = new EtcdKeyWatch(watchEndpoint!, labEtcdPrefix, clusterName);
    const anchor = anchorOf(this.system);
    if (anchor?.postgres === 'tool') {
      // The tool runs initdb and the base backup itself: only the hosts' directories, owned by postgres.
      this.pg = pgServersFor(t, this.dir);
      for (const n of t.dbNodes) await chownTree(this.pg[n].hostDir);
    } else {
      const pgLog = (l: string) => this.progress(l);
      this.pg = await createPgCluster(t, this.dir, { reaper: this.reaper, synchronousStandby: this.system === 'baseline', log: pgLog });
    }

    if (anchor !== undefined) {
      this.anchor = anchor.create(this);
      this.progress(`starting ${anchor.name}: ${anchor.describe}`);
      await this.anchor.start();
      const { primary } = await this.waitHealthy(240_000);
      if (anchor.postgres === 'tool') {
        // The writer's table and role, as createPgCluster makes them; the server column names the node
        // by lab.node, since the tool owns cluster_name (anchors/system.ts).
        const serverDefault = "coalesce(nullif(current_setting('lab.node', true), ''), current_setting('cluster_name'))";
        await psql(primary as DbNode, `${labSchemaSql} ALTER TABLE lab.writes ALTER COLUMN server SET DEFAULT ${serverDefault};`);
      }
    } else if (this.system === 'pgvip') {
      const certs = await labCertificates(t);
      const tls = { certs, peer: this.options.tls === true };
      const { timings, replication, agentConfig } = this.options;
      const quorum = this.backend === 'etcd' ? { endpoints: this.etcd!.endpoints, prefix: labEtcdPrefix } : undefined;
      const { cluster } = this.options;
      this.configs = writeLabConfigs(t, this.dir, this.pg, timings, replication, tls, agentConfig, quorum, cluster);
      for (const n of t.dbNodes) {
        this.agents[n] = new Service({
          reaper: this.reaper,
          name: `agent ${n}`,
          host: n,
          argv: [...this.#clockWrapper(n), ...this.#daemonArgv('agent', ['--config', this.configs.agents[n]])],
          // As in deploy/systemd/pgvip-agent.service: the PostgreSQL user, CAP_NET_ADMIN only (ip addr).
          run: { user: agentUser, caps: ['net_admin'] },
          env: this.#daemonEnv(n),
          cwd: this.runtime.root,
          logFile: path.join(this.dir, 'logs', `agent-${n}.log`),
        });
      }
      this.witness = new Service({
        reaper: this.reaper,
        name: 'witness',
        host: 'witness',
        argv: [...this.#clockWrapper('witness'), ...this.#daemonArgv('witness', ['--config', this.configs.witness])],
        run: { user: witnessUser },
        env: this.#daemonEnv('witness'),
        cwd: this.runtime.root,
        logFile: path.join(this.dir, 'logs', 'witness.log'),
      });
      const on = t.dbNodes.join(', ').replace(/, ([^,]*)$/, ' and $1');
      this.progress(this.backend === 'etcd' ? `starting the witness (an observer on etcd) and the agents on ${on}, quorum on etcd` : `starting the witness and the agents on ${on}`);
      this.witness.start();
      for (const n of t.dbNodes) this.agents[n].start();
      if (this.options.awaitHealthy === false) return;
      this.progress('waiting for the cluster to elect db-a and route the VIP to it');
      await this.waitHealthy(180_000);
    } else {
      this.progress('assigning the VIP to db-a (the operator\'s one-time setup) and starting the baseline loop on db-b');
      await startBaselineLoop(this, { primary: 'db-a', standby: 'db-b', initialVip: true });
      await this.waitHealthy(60_000);
    }

    if (this.options.writer !== false) await this.startWriter();
  }

  /**
   * Starts the writer probe (start() does, unless `writer: false` or `awaitHealthy: false`): writes
   * through the VIP, resolving once five are acknowledged.
   */
  async startWriter(): Promise<WriterProbe> {
    if (this.writer !== null) return this.writer;
    this.progress(`writer probe in the client namespace, writing through the VIP ${this.topology.vip.address}`);
    this.writer = await WriterProbe.start(this.topology, this.dir, typeof this.options.writer === 'object' ? this.options.writer : {});
    await this.writer.waitForAcks(0, 5, 60_000);
    return this.writer;
  }

  /**
   * How a daemon is started, from the lab's runtime copy: from source through tsx, or compiled as a release
   * runs it.
   */
  #daemonArgv(daemon: 'agent' | 'witness', args: readonly string[]): string[] {
    if (this.options.compiled === true) {
      // As its systemd unit starts it: the unit's Node flags, then any the caller adds.
      const nodeArgs = [...daemonUnitNodeFlags(daemon), ...(daemon === 'agent' ? (this.options.agentNodeArgs ?? []) : [])];
      return [this.runtime.node, ...nodeArgs, path.join(this.runtime.root, `packages/${daemon}/dist/main.js`), ...args];
    }
    return nodeArgv(`packages/${daemon}/src/main.ts`, args, this.runtime.root, this.runtime.node);
  }

  /**
   * `env LD_PRELOAD=libfaketime ...` in front of a daemon, so its wall clock can be shifted at runtime
   * (faults.shiftClock). Set by `env` right before node, not in the spawn environment: the root
   * tools on the way (sh, ip, setpriv) must not load it, or libfaketime shares a semaphore with the
   * daemon that the daemon's user may not open.
   */
  #clockWrapper(host: DbNode | 'witness'): string[] {
    if (this.options.faketime === false || !existsSync(faketimeLib)) return [];
    return [
      '/usr/bin/env',
      `LD_PRELOAD=${faketimeLib}`,
      `FAKETIME_TIMESTAMP_FILE=${this.faults.clockFile(host)}`,
      // Only the wall clock moves: pgvip measures every duration on the monotonic clock.
      'FAKETIME_DONT_FAKE_MONOTONIC=1',
      'FAKETIME_CACHE_DURATION=1',
      'FAKETIME_DISABLE_SHM=1',
    ];
  }

  /**
   * Environment of a daemon on `host`: the emulator's endpoints, and no AWS keys: the agent's SDK
   * finds the host's instance-role credentials through its default chain, from the host's IMDS
   * (AWS_EC2_METADATA_SERVICE_ENDPOINT, which the agent reads for its own IMDS calls too), as on EC2.
   * Compiled, also what its systemd unit sets (Node and malloc tuning), so the lab runs it as deployed.
   */
  #daemonEnv(host: DbNode | 'witness'): Record<string, string> {
    const t = this.topology;
    const unitEnv = this.options.compiled === true ? daemonUnitEnvironment(host === 'witness' ? 'witness' : 'agent') : {};
    const env: Record<string, string> = { ...unitEnv, HOME: path.join(this.dir, 'hosts', host) };
    if (host !== 'witness') {
      Object.assign(env, {
        PGVIP_EC2_ENDPOINT: ec2Endpoint(t),
        AWS_EC2_METADATA_SERVICE_ENDPOINT: `${imdsEndpoint(t, host)}/`,
        AWS_REGION: t.region,
        // No shared config or credentials file of the machine may stand in for the instance role.
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      });
    }
    return env;
  }

  // --- observing ----------------------------------------------------------------------------------

  /** GET /status of a node's agent, asked from inside the VPC; null when it does not answer. */
  async agentStatus(node: DbNode, timeoutMs = 1_500): Promise<AgentStatusView | null> {
    try {
      const tls = this.configs?.tls;
      const scheme = tls?.peer === true ? 'https' : 'http';
      const r = await this.emulator.http(`${scheme}://${this.topology.hosts[node].address}:${this.topology.ports.agent}/status`, {
        timeoutMs,
        ...(tls?.peer === true ? { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } } : {}),
      });
      return r.status === 200 ? (JSON.parse(r.body) as AgentStatusView) : null;
    } catch {
      return null;
    }
  }

  /** A call to the witness's operator API (with the operator token). */
  async operator(method: 'GET' | 'POST', apiPath: string, body?: unknown, timeoutMs = 5_000): Promise<{ status: number; json: unknown }> {
    const t = this.topology;
    const tls = this.configs?.tls;
    const r = await this.emulator.http(`https://${t.hosts.witness.address}:${t.ports.operator}${apiPath}`, {
      ...(tls === undefined ? {} : { tls: { ca: tls.ca } }),
      method,
      headers: { authorization: `Bearer ${this.configs?.operatorToken ?? ''}`, 'x-pgvip-operator': 'lab', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      timeoutMs,
    });
    let json: unknown = null;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = r.body;
    }
    return { status: r.status, json };
  }

  async witnessView(): Promise<WitnessView | null> {
    if (this.witness === null) return null;
    try {
      const r = await this.operator('GET', `/api/v1/clusters/${clusterName}`, undefined, 1_500);
      return r.status === 200 ? (r.json as WitnessView) : null;
    } catch {
      return null;
    }
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const nodes = this.topology.dbNodes;
    const [statuses, vipNode, witness] = await Promise.all([
      Promise.all(nodes.map((n) => this.agentStatus(n))),
      this.emulator.vipNode(),
      this.witnessView(),
    ]);
    return {
      statuses: Object.fromEntries(nodes.map((n, i) => [n, statuses[i]!])),
      vipNode,
      witness: witness === null
        ? null
        : { term: witness.term, primary: witness.primary, syncEligible: witness.syncEligible },
    };
  }

  /**
   * What keeps the cluster from being healthy now (empty when it is), and the roles when it is. Besides
   * what the daemons and EC2 report, the writer must see it end to end: writes through the VIP
   * acknowledged by the primary within the last two seconds.
   */
  async health(): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
    const sync = this.options.replication !== 'async';
    const noFailover = this.topology.dbNodes.filter((n) => this.options.cluster?.nodeTraits?.[n]?.noFailover === true);
    let h = this.anchor !== null ? await this.anchor.health() : this.system === 'baseline' ? await baselineProblems(this) : clusterProblems(await this.snapshot(), { sync, noFailover });
    if (h.healthy !== null && this.backend === 'etcd') {
      // etcd is the quorum: it must name the same primary, term and synchronous standby (or claim) as the agents.
      const problems = etcdKeyProblems(await this.etcdKeys(), { ...h.healthy, sync, noFailover });
      if (problems.length > 0) h = { problems, healthy: null };
    }
    if (h.healthy === null || this.writer === null) return h;
    const now = Date.now();
    const recent = acknowledged(this.writer.since(now - 2_500)).filter(
      (r) => r.server === h.healthy!.primary && r.doneAt >= now - 2_000,
    );
    if (recent.length > 0) return h;
    return { problems: [`no write through the VIP was acknowledged by ${h.healthy.primary} in the last 2 s`], healthy: null };
  }

  /** pgvip's keys in the lab's etcd (backend etcd), read from the first member with quorum; null when none answers. */
  async etcdKeys(timeoutMs = 1_000): Promise<PgvipEtcdKeys | null> {
    if (this.etcd === null) return null;
    const http = (url: string, init: Parameters<LabEmulator['http']>[1]) => this.emulator.http(url, init);
    return readPgvipKeys(http, this.etcd.endpoints, labEtcdPrefix, clusterName, timeoutMs);
  }

  /** The database hosts that have the VIP configured on their own interface (the agents' `ip addr add`). */
  async vipOnInterfaces(): Promise<DbNode[]> {
    const holders: DbNode[] = [];
    for (const n of this.topology.dbNodes) {
      const out = await mustRun('ip', ['-n', this.topology.hosts[n].ns, '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
      const links = JSON.parse(out) as Array<{ addr_info?: Array<{ local?: string }> }>;
      if (links.some((l) => l.addr_info?.some((a) => a.local === this.topology.vip.address))) holders.push(n);
    }
    return holders;
  }

  /** Waits until exactly one primary holds the newest term and the VIP and the other node streams in sync. */
  async waitHealthy(timeoutMs = 120_000): Promise<HealthyCluster> {
    let last: string[] = [];
    const healthy = await waitFor(
      'a healthy cluster',
      timeoutMs,
      async () => {
        const h = await this.health();
        last = h.problems;
        return h.healthy;
      },
      250,
      () => `${last.join('; ')}${this.system === 'pgvip' ? this.#recentLogs() : ''}`,
    );
    this.roles = healthy;
    return healthy;
  }

  /** What the agents and the witness said last: printed with a failure, so that CI's output shows why. */
  #recentLogs(): string {
    const sources = [...this.topology.dbNodes, ...(this.witness === null ? [] : ['witness' as const])];
    return sources.map((s) => `\n  ${s} said last:\n    ${recentSummary(this.logOf(s)).join('\n    ')}`).join('');
  }

  logFile(source: DbNode | 'witness' | 'baseline'): string {
    return path.join(this.dir, 'logs', source === 'witness' ? 'witness.log' : source === 'baseline' ? 'baseline.log' : `agent-${source}.log`);
  }

  /** The log of a daemon: "db-a"/"db-b" (agents), "witness", or "baseline". */
  logOf(source: DbNode | 'witness' | 'baseline'): LogLine[] {
    return readLog(this.logFile(source), source);
  }

  /** Follows a daemon's log from now on (to act the moment it reports a step). */
  follow(source: DbNode | 'witness' | 'baseline'): LogFollower {
    return new LogFollower(this.logFile(source), source);
  }

  /** Events the witness handed to the operator's notification command since `fromMs` (its pager). */
  operatorEvents(fromMs = 0): Array<{ atMs: number; type: string; node: string | null; detail: string }> {
    if (this.configs === null || !existsSync(this.configs.eventsFile)) return [];
    const out: Array<{ atMs: number; type: string; node: string | null; detail: string }> = [];
    for (const line of readFileSync(this.configs.eventsFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line) as { at: string; type: string; node: string | null; detail: string };
        const atMs = Date.parse(e.at);
        if (atMs >= fromMs) out.push({ atMs, type: e.type, node: e.node, detail: e.detail });
      } catch {
        // a line being written
      }
    }
    return out;
  }

  /**
   * Promotions since `fromMs`, from PostgreSQL's own logs (every promotion selects a new timeline):
   * the ground truth, also when the agent that asked for it was killed before it could say so.
   */
  promotionsSince(fromMs: number): Array<{ node: DbNode; timeline: number; atMs: number }> {
    const out: Array<{ node: DbNode; timeline: number; atMs: number }> = [];
    for (const n of this.topology.dbNodes) {
      let text = '';
      try {
        text = readFileSync(this.pg[n].logFile, 'utf8');
      } catch {
        continue;
      }
      for (const m of text.matchAll(/^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3}) UTC .*selected new timeline ID: (\d+)/gm)) {
        const atMs = Date.parse(`${m[1]}T${m[2]}Z`);
        if (atMs >= fromMs) out.push({ node: n, timeline: Number(m[3]), atMs });
      }
    }
    return out.sort((a, b) => a.atMs - b.atMs);
  }

  /** The failover timeline after a fault at `faultAt`, from the daemons' logs, the router and the writer. */
  timeline(faultAt: number, oldPrimary: DbNode, newPrimary: DbNode = otherNode(oldPrimary)): Milestone[] {
    const oldLog = this.logOf(oldPrimary);
    const newLog = this.logOf(newPrimary);
    const witnessLog = this.witness === null ? [] : this.logOf('witness');
    const pick = (
      lines: LogLine[],
      m: (l: LogLine) => boolean,
      source: string,
    ): { atMs: number | null; source: string } => {
      const l = firstLine(lines, faultAt, m);
      return { atMs: l?.atMs ?? null, source };
    };
    const earliest = (...c: Array<{ atMs: number | null; source: string }>) => c.filter((x) => x.atMs !== null).sort((a, b) => a.atMs! - b.atMs!)[0] ?? { atMs: null, source: '' };
    const vip = this.emulator.vipMovesSince(faultAt).find((m) => m.node === newPrimary);
    const ack = this.writer === null
      ? undefined
      : acknowledged(this.writer.records).find((r) => r.sentAt >= faultAt && r.server === newPrimary);
    if (this.anchor !== null) {
      const generic: Milestone[] = [
        { label: 'fault injected', atMs: faultAt, source: 'lab' },
        { label: `VIP routes to ${newPrimary}`, atMs: vip?.atMs ?? null, source: 'EC2 truth → router' },
        { label: `first acknowledged write on ${newPrimary}`, atMs: ack?.doneAt ?? null, source: 'writer probe' },
      ];
      const own = this.anchor.timeline?.(faultAt, oldPrimary, newPrimary) ?? [];
      return [generic[0]!, ...own, generic[1]!, generic[2]!];
    }
    if (this.system === 'baseline') {
      const base = this.logOf('baseline');
      return [
        { label: 'fault injected', atMs: faultAt, source: 'lab' },
        { label: 'first missed ping', ...pick(base, (l) => /missed/.test(l.msg), 'baseline loop') },
        { label: 'promoting (3 pings missed)', ...pick(base, (l) => /promoting/.test(l.msg), 'baseline loop') },
        { label: 'PostgreSQL promoted', ...pick(base, (l) => /^promoted/.test(l.msg), 'baseline loop') },
        { label: `VIP routes to ${newPrimary}`, atMs: vip?.atMs ?? null, source: 'EC2 truth → router' },
        { label: `first acknowledged write on ${newPrimary}`, atMs: ack?.doneAt ?? null, source: 'writer probe' },
      ];
    }
    // On etcd the vote is the campaign txn that creates the leader key (docs/design.md, "Quorum on
    // etcd"): its time comes from etcd itself (the lab's watch), the agent's log as a fallback.
    const wonLog = pick(newLog, (l) => /^won term/.test(l.msg) || /received term/.test(l.msg) || /taking over term/.test(l.msg), `agent ${newPrimary}`);
    const keyEvents = this.etcdWatch?.since(faultAt, 'leader') ?? [];
    const keyGone = keyEvents.find((e) => e.type === 'delete');
    const keyTaken = keyEvents.find((e) => e.type === 'put' && e.value?.node === newPrimary);
    const vote: Milestone[] = this.backend === 'etcd'
      ? [
        { label: `etcd: ${oldPrimary}'s leader key gone`, atMs: keyGone?.atMs ?? null, source: 'etcd watch' },
        { label: `etcd: ${newPrimary} took the leader key (next term)`, ...(keyTaken !== undefined ? { atMs: keyTaken.atMs, source: 'etcd watch' } : wonLog) },
      ]
      : [{ label: `vote: ${newPrimary} won the next term`, ...earliest(wonLog, pick(witnessLog, (l) => new RegExp(`voted for ${newPrimary}`).test(l.msg), 'witness')) }];
    return [
      { label: 'fault injected', atMs: faultAt, source: 'lab' },
      {
        label: 'failure detected',
        ...earliest(
          pick(newLog, (l) => l.event === 'failure-detected', `agent ${newPrimary}`),
          pick(witnessLog, (l) => /failed \d+ checks|failure-detected/.test(l.msg) || l.event === 'failure-detected', 'witness'),
          pick(oldLog, (l) => /^fencing:/.test(l.msg) || l.event === 'lease-released', `agent ${oldPrimary}`),
        ),
      },
      { label: `${oldPrimary} fenced`, ...pick(oldLog, (l) => l.event === 'fenced', `agent ${oldPrimary}`) },
      ...vote,
      { label: `PostgreSQL on ${newPrimary} promoted`, ...pick(newLog, (l) => l.event === 'promoted' || /^promoted for term/.test(l.msg), `agent ${newPrimary}`) },
      { label: `VIP routes to ${newPrimary}`, atMs: vip?.atMs ?? null, source: 'EC2 truth → router' },
      { label: `first acknowledged write on ${newPrimary}`, atMs: ack?.doneAt ?? null, source: 'writer probe' },
      { label: `${oldPrimary} rejoined as a standby`, ...pick(oldLog, (l) => l.event === 'rejoined', `agent ${oldPrimary}`) },
    ];
  }

  /** Ids of lab.writes rows on `node` (from `minId` on), read from inside the VPC. */
  async rowIdsOn(node: DbNode, minId: number): Promise<Set<number>> {
    const rows = await this.emulator.sql(this.topology.hosts[node].address, 'SELECT id FROM lab.writes WHERE id >= $1', [minId], 30_000);
    return new Set(rows.map((r) => Number(r[0])));
  }

  /**
   * The cross-cutting checks of a scenario that started at `fromMs`, once the cluster is healthy
   * again: lost acknowledged writes (against the final primary), overlapping writers, the write gap,
   * and the final state (one primary with the newest term and the VIP).
   */
  async checkSince(fromMs: number, healthyWithinMs = 120_000): Promise<CheckReport> {
    const final = await this.waitHealthy(healthyWithinMs);
    if (this.writer === null) throw new Error('checkSince needs the writer probe');
    // Writes sent until now must be recorded before they can be checked: wait for newer acks.
    const settledAt = Date.now();
    await this.writer.waitForAcks(settledAt, 3, 30_000, final.primary);
    const records = this.writer.since(fromMs, settledAt);
    const acked = acknowledged(records);
    const minId = Math.min(...records.map((r) => r.id));
    const present = acked.length === 0 ? new Set<number>() : await this.rowIdsOn(final.primary as DbNode, minId);
    return {
      fromMs,
      toMs: settledAt,
      writes: { total: records.length, ok: acked.length, failed: records.filter((r) => r.outcome === 'failed').length, unknown: records.filter((r) => r.outcome === 'unknown').length },
      lost: lostAckedWrites(records, present),
      overlap: overlappingWriters(records),
      gap: writeGap(records, fromMs, settledAt),
      final,
      vipOnInterfaces: await this.vipOnInterfaces(),
    };
  }

  /** Asks the witness for a planned switchover to `to`. */
  switchover(to: DbNode): Promise<{ status: number; json: unknown }> {
    return this.operator('POST', `/api/v1/clusters/${clusterName}/switchover`, { to }, 15_000);
  }

  /** Ends every fault and makes sure every daemon runs again (the state between scenario rows). */
  async restoreAll(): Promise<void> {
    await this.faults.healAll();
    await this.emulator.reset();
    const anchorServices = this.anchor?.services ?? [];
    const etcdServices = this.etcd?.services ?? [];
    const daemons = [...Object.values(this.agents), ...(this.witness ? [this.witness] : [])];
    const services = [...daemons, ...anchorServices, ...etcdServices];
    for (const s of services) s.start();
  }

  markFailed(): void {
    this.#failed = true;
  }

  /** Stops everything and removes every namespace, cgroup and process the lab made. */
  async down(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    await attempt(() => this.faults.healAll());
    if (this.writer) await attempt(() => this.writer!.stop());
    this.etcdWatch?.stop();
    const services = [
      ...Object.values(this.agents),
      ...(this.witness ? [this.witness] : []),
      ...(this.baseline ? [this.baseline] : []),
      ...(this.anchor?.services ?? []),
      ...(this.etcd?.services ?? []),
    ];
    await attempt(() => Promise.all(services.map((s) => s.stop(3_000))));
    if (this.emulator) await attempt(() => this.emulator.close());
    await attempt(() => removeNetwork());
    this.reaper?.close();
    releaseLabLock();
    if (liveLab === this) liveLab = null;
    // The configs and logs are what a kept directory is for; the code copy would only fill /tmp.
    if (this.runtime !== undefined) rmSync(this.runtime.root, { recursive: true, force: true });
    if (this.options.keepDir || this.#failed) this.progress(`lab directory kept: ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(`lab teardown: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }
}

export function startLab(options: LabOptions = {}): Promise<Lab> {
  return Lab.start(options);
}

// The lab's etcd: a three-member cluster from Debian's etcd-server (3.4), one member per host of the
// lab (db-a, db-b, witness), as a user runs it beside the databases: the Patroni anchor's DCS, and the
// quorum of pgvip's etcd backend (quorum.backend: etcd). Members serve clients on <address>:2379 and
// 127.0.0.1:2379, peers on <address>:2380, plain HTTP (the lab's network is closed; docs/etcd.md says
// how production runs it with TLS), with the config file etcd.yml next to this file.
//
// The faults issue 16 asks for, on top of the lab's own (faults.ts):
//   member killed       kill9(host) (back after 1 s, as under systemd) or stopMember(host) (until startMember)
//   leader isolated     isolateMember(leader): its client and peer ports cut on eth0 (nftables); the
//                       host's PostgreSQL and agent keep their network, and local clients still reach it
//   quorum lost         loseQuorum(): two of the three members stopped
//   agent cut off       cutClient(host, user): TCP to port 2379 from that user's processes on the host
//                       dropped, on every interface, so the agent loses etcd (also its local member) but
//                       not its peer; the member beside it stays in the cluster
//
// Every start begins from empty data directories (a member that finds an old data directory would
// rejoin with its old identity and cluster id), in the lab's own directory, which a dead lab leaves
// behind only for the next lab start to remove (lab.ts); its processes die with the namespaces.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mustRun, mustRunOnHost, osUser } from './exec.js';
import type { Lab } from './lab.js';
import { Service } from './supervisor.js';
import { fillTemplate } from './template.js';
import type { HostName } from './topology.js';
import { waitFor } from './wait.js';

const here = path.dirname(new URL(import.meta.url).pathname);

export const etcdHosts = ['db-a', 'db-b', 'witness'] as const;
export type EtcdHost = (typeof etcdHosts)[number];

/** The member on `host`; a three-node lab's db-c runs none (the members stay on db-a, db-b and the witness host). */
export function memberOn(host: HostName): EtcdHost {
  if (!(etcdHosts as readonly string[]).includes(host)) throw new Error(`no etcd member runs on ${host} (members: ${etcdHosts.join(', ')})`);
  return host as EtcdHost;
}
export const etcdClientPort = 2379;
export const etcdPeerPort = 2380;
const etcdctl = '/usr/bin/etcdctl';

export interface EtcdMember {
  readonly name: string;
  readonly address: string;
}

/** One member's etcd.yml: its name, addresses and data directory, and the whole initial cluster. */
export function renderEtcdYml(member: EtcdMember, all: readonly EtcdMember[], dataDir: string, clusterToken = 'pgvip-lab'): string {
  return fillTemplate(readFileSync(path.join(here, 'etcd.yml'), 'utf8'), {
    member: member.name,
    address: member.address,
    data_dir: dataDir,
    initial_cluster: all.map((m) => `${m.name}=http://${m.address}:${etcdPeerPort}`).join(','),
    cluster_token: clusterToken,
  });
}

/** What one member says about itself (etcdctl endpoint status): ids as hex, since they exceed 2^53. */
export interface MemberStatus {
  readonly memberId: string;
  /** The member it follows ("0" while it knows no leader). */
  readonly leaderId: string;
  readonly raftTerm: number;
  readonly revision: number;
}

/** JSON whose integers above 2^53 (etcd's 64-bit ids) are kept exact, as decimal strings. */
function parseWithBigIds(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

const hex = (id: unknown) => BigInt(String(id)).toString(16);

/** Parses `etcdctl endpoint status -w json` for one endpoint; null when it holds no status. */
interface EndpointStatusJson {
  readonly Status?: {
    readonly header?: { readonly member_id?: unknown; readonly revision?: unknown };
    readonly leader?: unknown;
    readonly raftTerm?: unknown;
  };
}

export function parseEndpointStatus(text: string): MemberStatus | null {
  const [entry] = parseWithBigIds(text) as EndpointStatusJson[];
  const s = entry?.Status;
  if (s?.header?.member_id === undefined || s.leader === undefined) return null;
  return {
    memberId: hex(s.header.member_id),
    leaderId: hex(s.leader),
    raftTerm: Number(s.raftTerm ?? 0),
    revision: Number(s.header.revision ?? 0),
  };
}

/**
 * The leader a majority of the members follow, by host, or null. An isolated old leader may still
 * name itself for up to an election timeout (or, without check-quorum, until it hears again): the
 * majority's view is the cluster's.
 */
export function majorityLeader(statuses: Readonly<Partial<Record<EtcdHost, MemberStatus | null>>>): EtcdHost | null {
  const hostOf = new Map<string, EtcdHost>();
  const votes = new Map<string, number>();
  for (const h of etcdHosts) {
    const s = statuses[h];
    if (s === null || s === undefined) continue;
    hostOf.set(s.memberId, h);
    if (s.leaderId !== '0') votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
  }
  for (const [id, n] of votes) if (n > etcdHosts.length / 2) return hostOf.get(id) ?? null;
  return null;
}

export interface EtcdctlOptions {
  readonly timeoutMs?: number;
  /** Run as this OS user (default root). */
  readonly user?: string;
}

/** What LabEtcd needs of the lab (a Lab has it all). */
export type EtcdLab = Pick<Lab, 'dir' | 'reaper' | 'topology' | 'faults' | 'progress'>;

export class LabEtcd {
  readonly #lab: EtcdLab;
  readonly #token: string;
  readonly #services = {} as Record<EtcdHost, Service>;
  readonly members: readonly EtcdMember[];

  /** `clusterToken` keeps two clusters that see each other's peers from merging (etcd's initial-cluster-token). */
  constructor(lab: EtcdLab, options: { readonly clusterToken?: string } = {}) {
    this.#lab = lab;
    this.#token = options.clusterToken ?? 'pgvip-lab';
    this.members = etcdHosts.map((h) => ({ name: h, address: lab.topology.hosts[h].address }));
  }

  /** Client URLs of every member, as a client config names them (quorum.etcd.endpoints, Patroni's etcd3.hosts). */
  get endpoints(): string[] {
    return this.members.map((m) => `http://${m.address}:${etcdClientPort}`);
  }

  get services(): Service[] {
    return Object.values(this.#services);
  }

  logFiles(): Record<string, string> {
    return Object.fromEntries(etcdHosts.map((h) => [`etcd ${h}`, this.#logFile(h)]));
  }

  #logFile(h: EtcdHost): string {
    return path.join(this.#lab.dir, 'logs', `etcd-${h}.log`);
  }

  #dataDir(h: EtcdHost): string {
    return path.join(this.#lab.dir, 'hosts', h, 'etcd');
  }

  /** Writes each member's config over an empty data directory, starts all three and waits for a leader all agree on. */
  async start(timeoutMs = 60_000): Promise<EtcdHost> {
    const lab = this.#lab;
    const user = osUser('etcd');
    for (const h of etcdHosts) {
      const dataDir = this.#dataDir(h);
      // A stale member (an earlier start in this directory) would come back with its old identity.
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      await mustRun('chown', [`${user.uid}:${user.gid}`, dataDir]);
      const file = path.join(lab.dir, 'hosts', h, 'etcd.yml');
      writeFileSync(file, renderEtcdYml(this.members.find((m) => m.name === h)!, this.members, dataDir, this.#token));
      this.#services[h] = new Service({
        reaper: lab.reaper,
        name: `etcd ${h}`,
        host: h,
        argv: ['/usr/bin/etcd', '--config-file', file],
        run: { user: 'etcd' },
        env: { HOME: dataDir },
        logFile: this.#logFile(h),
      });
    }
    lab.progress('starting etcd on db-a, db-b and the witness host');
    for (const h of etcdHosts) this.#services[h].start();
    const leader = await this.waitLeader(timeoutMs);
    lab.progress(`etcd: three members, leader ${leader}`);
    return leader;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.services.map((s) => s.stop()));
  }

  /**
   * etcdctl (v3 API) on `host` against its own member (127.0.0.1), outside the host's freezer cgroup,
   * as root or as `user` (an agent's user, to see what it sees).
   */
  etcdctl(host: HostName, args: readonly string[], options: EtcdctlOptions = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const seconds = Math.max(1, Math.floor(timeoutMs / 1000));
    const argv = [etcdctl, '--endpoints', `http://127.0.0.1:${etcdClientPort}`, `--dial-timeout=${seconds}s`, `--command-timeout=${seconds}s`, ...args];
    const user = options.user === undefined ? {} : { user: options.user };
    return mustRunOnHost(host, argv, { ...user, cgroup: false, env: { ETCDCTL_API: '3' }, timeoutMs: timeoutMs + 3_000 });
  }

  /** The member's own status, null when it does not answer. */
  async status(host: EtcdHost): Promise<MemberStatus | null> {
    try {
      return parseEndpointStatus(await this.etcdctl(host, ['endpoint', 'status', '-w', 'json'], { timeoutMs: 2_000 }));
    } catch {
      return null;
    }
  }

  /** The leader by the majority's view (majorityLeader), null while there is none. */
  async leader(): Promise<EtcdHost | null> {
    const all = await Promise.all(etcdHosts.map(async (h) => [h, await this.status(h)] as const));
    return majorityLeader(Object.fromEntries(all));
  }

  /** Waits for a leader a majority follows, other than `not` when given (after isolating the old one). */
  waitLeader(timeoutMs: number, not?: EtcdHost): Promise<EtcdHost> {
    const what = not === undefined ? 'etcd to have a leader' : `etcd to elect a leader other than ${not}`;
    return waitFor(what, timeoutMs, async () => {
      const l = await this.leader();
      return l !== null && l !== not ? l : null;
    });
  }

  // --- faults ------------------------------------------------------------------------------------

  /** kill -9 of the member; its supervisor starts it again a second later (Restart=always). */
  async kill9(host: EtcdHost): Promise<number> {
    const at = Date.now();
    await this.#services[host].kill9();
    return at;
  }

  /** Stops the member until startMember(host). */
  async stopMember(host: EtcdHost): Promise<number> {
    const at = Date.now();
    await this.#services[host].stop();
    return at;
  }

  startMember(host: EtcdHost): void {
    this.#services[host].start();
  }

  /** Cuts the member off from its peers and from clients on other hosts (ports 2379 and 2380 on eth0). */
  isolateMember(host: EtcdHost): Promise<number> {
    return this.#lab.faults.network({ kind: 'isolate-ports', host, ports: [etcdClientPort, etcdPeerPort] });
  }

  /** Isolates the current leader's member; resolves with which host it was and when. */
  async isolateLeader(): Promise<{ host: EtcdHost; atMs: number }> {
    const host = await this.waitLeader(10_000);
    return { host, atMs: await this.isolateMember(host) };
  }

  /**
   * Hands etcd's leadership to `to` (etcdctl move-leader, sent to the current leader), so a row can
   * choose which member its fault hits; resolves once a majority follows `to`.
   */
  async moveLeader(to: EtcdHost, timeoutMs = 15_000): Promise<void> {
    const current = await this.waitLeader(timeoutMs);
    if (current === to) return;
    const target = await this.status(to);
    if (target === null) throw new Error(`etcd on ${to} does not answer: cannot move the leadership to it`);
    await this.etcdctl(current, ['move-leader', target.memberId], { timeoutMs: 5_000 });
    await waitFor(`etcd's leader to be ${to}`, timeoutMs, async () => ((await this.leader()) === to ? true : null));
  }

  /** Two of the three members stopped (`keep` stays up): no write or linearizable read succeeds. */
  async loseQuorum(keep: EtcdHost = 'witness'): Promise<number> {
    const at = Date.now();
    await Promise.all(etcdHosts.filter((h) => h !== keep).map((h) => this.#services[h].stop()));
    return at;
  }

  /** Starts every stopped member again. */
  restoreQuorum(): void {
    for (const s of this.services) if (!s.running) s.start();
  }

  /**
   * Drops TCP from `user`'s processes on `host` to the etcd client port, on every interface (its own
   * member too): the agent loses etcd, its peer and PostgreSQL stay reachable, and the member on that
   * host (the etcd user) stays in the cluster.
   */
  cutClient(host: HostName, user: string): Promise<number> {
    return this.#lab.faults.network({ kind: 'cut-port', host, port: etcdClientPort, uid: osUser(user).uid });
  }
}

// Patroni in the lab, as its documentation sets it up for a primary, one standby and a third node:
// a three-member etcd (one member on db-a, db-b and the witness host) as the DCS, Patroni on db-a and
// db-b with synchronous_mode on, and the VIP moved by a callback (vip-callback.sh) that calls the real
// `aws ec2 assign-private-ip-addresses --allow-reassignment` against the EC2 emulator and `ip addr`.
// Patroni bootstraps PostgreSQL itself (initdb on db-a, a base backup onto db-b), rewinds a returning
// old primary with pg_rewind, and restarts a crashed PostgreSQL in place while it holds the leader key.
//
// Three systems: "patroni" at Patroni's default timings, "patroni-fast" at its documented fastest safe
// ones, and "patroni-strict" at the default timings with synchronous_mode_strict on (config.ts says
// which values and why).
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { awsEnv } from '../../baseline/baseline.js';
import type { HealthyCluster } from '../../checkers.js';
import { LabEtcd, etcdHosts, type EtcdHost } from '../../etcd.js';
import { mustRun, mustRunOnHost } from '../../exec.js';
import type { Lab } from '../../lab.js';
import type { Milestone } from '../../logs.js';
import { Service } from '../../supervisor.js';
import { dbNodes, ec2Endpoint, imdsEndpoint, otherNode, type TwoNodeDb as DbNode } from '../../topology.js';
import { waitFor } from '../../wait.js';
import { pairProblems, type AnchorInstance, type AnchorSystem } from '../system.js';
import {
  patroniDefaults,
  patroniFastest,
  renderPatroniYml,
  type PatroniTimings,
} from './config.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const scope = 'lab';

interface PatroniMember {
  readonly name: string;
  readonly role: string;
  readonly state: string;
}

/** A Patroni log line: `2026-12-07 02:30:01,123 INFO: message` (TZ=UTC), or the callback's own. */
export function parsePatroniLog(text: string): Array<{ atMs: number; msg: string }> {
  const out: Array<{ atMs: number; msg: string }> = [];
  for (const line of text.split('\n')) {
    const p = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3}) \w+: (.*)$/.exec(line);
    if (p) {
      out.push({ atMs: Date.parse(`${p[1]}T${p[2]}.${p[3]}Z`), msg: p[4]! });
      continue;
    }
    const cb = /^(\d{13}) (vip-callback: .*)$/.exec(line);
    if (cb) out.push({ atMs: Number(cb[1]), msg: cb[2]! });
  }
  return out;
}

class PatroniInstance implements AnchorInstance {
  readonly #lab: Lab;
  readonly #timings: PatroniTimings;
  readonly #syncStrict: boolean;
  #etcd: LabEtcd | null = null;
  readonly #patroni = {} as Record<DbNode, Service>;
  readonly #configs = {} as Record<DbNode, string>;
  readonly #env = {} as Record<DbNode, Record<string, string>>;
  #callback = '';
  #notes: string[] = [];

  constructor(lab: Lab, timings: PatroniTimings, syncStrict: boolean) {
    this.#lab = lab;
    this.#timings = timings;
    this.#syncStrict = syncStrict;
  }

  get services(): Service[] {
    return [...Object.values(this.#patroni), ...(this.#etcd?.services ?? [])];
  }

  #hostDir(h: EtcdHost): string {
    return path.join(this.#lab.dir, 'hosts', h);
  }

  logFiles(): Record<string, string> {
    const logs = path.join(this.#lab.dir, 'logs');
    return {
      ...Object.fromEntries(dbNodes.map((n) => [`patroni ${n}`, path.join(logs, `patroni-${n}.log`)])),
      ...Object.fromEntries(etcdHosts.map((h) => [`etcd ${h}`, path.join(logs, `etcd-${h}.log`)])),
    };
  }

  async start(): Promise<void> {
    const lab = this.#lab;
    const t = lab.topology;
    // The lab's three-member etcd (test/lab/etcd.ts), Patroni's DCS.
    const etcd = new LabEtcd(lab, { clusterToken: 'pgvip-lab-patroni' });
    this.#etcd = etcd;
    const members = etcd.members;
    // The callback runs as Patroni's user, who may not be able to enter the checkout: a copy, as the
    // lab does with the daemons' code (docs/lab.md).
    const callback = path.join(lab.dir, 'patroni-vip-callback.sh');
    this.#callback = callback;
    copyFileSync(path.join(here, 'vip-callback.sh'), callback);
    chmodSync(callback, 0o755);
    for (const n of dbNodes) {
      const hostDir = this.#hostDir(n);
      const file = path.join(hostDir, 'patroni.yml');
      const yml = renderPatroniYml({
        scope,
        node: n,
        address: t.hosts[n].address,
        hostDir,
        dataDir: lab.pg[n].dataDir,
        callback,
        etcd: members,
        timings: this.#timings,
        syncStrict: this.#syncStrict,
      });
      // It holds the database passwords: readable by Patroni's user only, like /etc/patroni/*.yml.
      writeFileSync(file, yml, { mode: 0o600 });
      await mustRun('chown', ['postgres:postgres', file]);
      this.#configs[n] = file;
      this.#env[n] = {
        ...awsEnv(lab, n),
        TZ: 'UTC',
        VIP: t.vip.address,
        VIP_PREFIX: String(t.vip.prefixLength),
        EC2_ENDPOINT: ec2Endpoint(t),
        IMDS_ENDPOINT: imdsEndpoint(t, n),
      };
      this.#patroni[n] = new Service({
        reaper: lab.reaper,
        name: `patroni ${n}`,
        host: n,
        argv: ['/usr/bin/patroni', file],
        // The PostgreSQL user, with CAP_NET_ADMIN for the callback's `ip addr` (as pgvip's agent has).
        run: { user: 'postgres', caps: ['net_admin'] },
        env: this.#env[n],
        logFile: path.join(lab.dir, 'logs', `patroni-${n}.log`),
      });
    }
    await etcd.start();
    // db-a first, so that it bootstraps the cluster and is the first primary, as in the other systems.
    lab.progress('starting Patroni on db-a (it bootstraps the cluster), then on db-b');
    this.#patroni['db-a'].start();
    await waitFor('Patroni on db-a to lead', 120_000, async () => {
      const members = await this.#members();
      return members?.some((m) => m.name === 'db-a' && m.role === 'leader') === true ? true : null;
    });
    this.#patroni['db-b'].start();
  }

  /** Patroni's view of the cluster (GET /cluster of either node's REST API), null when none answers. */
  async #members(): Promise<PatroniMember[] | null> {
    for (const n of dbNodes) {
      try {
        const url = `http://${this.#lab.topology.hosts[n].address}:8008/cluster`;
        const r = await this.#lab.emulator.http(url, { timeoutMs: 1_500 });
        if (r.status === 200) return (JSON.parse(r.body) as { members: PatroniMember[] }).members;
      } catch {
        // that node does not answer: ask the other
      }
    }
    return null;
  }

  async health(): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
    const h = await pairProblems(this.#lab, { sync: true });
    const members = await this.#members();
    if (members === null) return { problems: [...h.problems, "neither Patroni's REST API answers"], healthy: null };
    const problems = [...h.problems];
    if (h.healthy !== null) {
      const leader = members.find((m) => m.role === 'leader');
      const sync = members.find((m) => m.role === 'sync_standby');
      const { primary, standby } = h.healthy;
      if (leader?.name !== primary) problems.push(`Patroni's leader is ${leader?.name ?? 'nobody'}, not ${primary}`);
      if (sync?.name !== standby) problems.push(`Patroni's synchronous standby is ${sync?.name ?? 'nobody'}, not ${standby}`);
      else if (!['running', 'streaming'].includes(sync.state)) problems.push(`${sync.name} is ${sync.state}`);
    }
    return { problems, healthy: problems.length === 0 ? h.healthy : null };
  }

  async switchover(to: DbNode): Promise<void> {
    const from = otherNode(to);
    const argv = ['/usr/bin/patronictl', '-c', this.#configs[to], 'switchover'];
    argv.push('--leader', from, '--candidate', to, '--force');
    const env = { TZ: 'UTC', HOME: this.#hostDir(to) };
    await mustRunOnHost(to, argv, { user: 'postgres', cgroup: false, timeoutMs: 120_000, env });
  }

  /**
   * Patroni repairs by itself (pg_rewind of the old primary, the sync standby again), so this waits.
   * When it stays stuck, the lab does what an operator would, and says so (takeRepairNotes): runs the
   * VIP callback on a leader that never had a role change, or removes a /sync key whose updates keep
   * failing.
   */
  async repair(): Promise<HealthyCluster> {
    const lab = this.#lab;
    for (const s of this.services) s.start();
    try {
      return await lab.waitHealthy(60_000);
    } catch {
      // stuck: below
    }
    const leader = (await this.#members())?.find((m) => m.role === 'leader')?.name;
    if (leader === 'db-a' || leader === 'db-b') {
      const vipNode = await lab.emulator.vipNode();
      if (vipNode !== leader) {
        this.#notes.push(
          `the VIP stayed on ${vipNode ?? 'no host'} while Patroni's leader was ${leader}, which had no role change ` +
            `and so ran no callback: the lab ran the callback on ${leader} by hand`,
        );
        const argv = [this.#callback, 'on_role_change', 'master', scope];
        await mustRunOnHost(leader, argv, { user: 'postgres', caps: ['net_admin'], cgroup: false, env: this.#env[leader], timeoutMs: 60_000 });
      }
      const recent = this.#log(leader).slice(-12);
      if (recent.some((l) => /Synchronous replication key updated by someone else/.test(l.msg))) {
        // Seen after a thawed old leader took its leader key back (the new one demoted) and wrote
        // /sync: every later compare-and-set of that key fails, also after a restart of Patroni. Removing
        // the key lets Patroni write it afresh at once.
        this.#notes.push(
          `Patroni on ${leader} kept failing to update its /sync key ("Synchronous replication key updated by ` +
            `someone else"), so it named no synchronous standby and no failover was possible: the lab removed ` +
            `the key (etcdctl del /service/${scope}/sync) and Patroni wrote it afresh`,
        );
        const argv = ['/usr/bin/etcdctl', '--endpoints', `http://${lab.topology.hosts.witness.address}:2379`, 'del', `/service/${scope}/sync`];
        await mustRunOnHost('witness', argv, { cgroup: false, env: { ETCDCTL_API: '3' }, timeoutMs: 30_000 });
      }
    } else {
      this.#notes.push(`Patroni had no leader 60 s after the run; the lab waited longer`);
    }
    return lab.waitHealthy(150_000);
  }

  takeRepairNotes(): string[] {
    const notes = this.#notes;
    this.#notes = [];
    return notes;
  }

  #log(n: DbNode): Array<{ atMs: number; msg: string }> {
    try {
      return parsePatroniLog(readFileSync(path.join(this.#lab.dir, 'logs', `patroni-${n}.log`), 'utf8'));
    } catch {
      return [];
    }
  }

  timeline(faultAt: number, oldPrimary: DbNode, newPrimary: DbNode): Milestone[] {
    const first = (n: DbNode, re: RegExp) =>
      this.#log(n).find((l) => l.atMs >= faultAt && re.test(l.msg))?.atMs ?? null;
    const promoted = this.#lab.promotionsSince(faultAt).find((p) => p.node === newPrimary);
    const oldLog = `patroni ${oldPrimary}`;
    const newLog = `patroni ${newPrimary}`;
    const tookKey = first(newPrimary, /promoted self to leader/);
    const restarted = first(oldPrimary, /starting as readonly because i had the session lock/);
    if (tookKey === null && restarted !== null) {
      // PostgreSQL crashed under a Patroni that kept the leader key: restarted where it was.
      return [
        { label: `${oldPrimary} restarting PostgreSQL (it holds the leader key)`, atMs: restarted, source: oldLog },
        { label: `${oldPrimary} primary again`, atMs: first(oldPrimary, /promoted self to leader because I had/), source: oldLog },
      ];
    }
    return [
      { label: `${oldPrimary} demoted itself`, atMs: first(oldPrimary, /^demot|Demoting self/), source: oldLog },
      { label: `${newPrimary} took the leader key`, atMs: tookKey, source: newLog },
      { label: `PostgreSQL on ${newPrimary} promoted`, atMs: promoted?.atMs ?? null, source: `PostgreSQL ${newPrimary}` },
      { label: `callback assigned the VIP to ${newPrimary}`, atMs: first(newPrimary, /VIP assigned/), source: newLog },
    ];
  }
}

const hostLossTakeover =
  'host loss: when the frozen old primary host thaws, its Patroni takes the leader key back from the new leader, ' +
  'which demotes and is rewound onto it, so the writes it acknowledged meanwhile are lost (it ran without a ' +
  'synchronous standby, as non-strict synchronous_mode allows while the other node is gone). The VIP stays ' +
  'with the demoted node (the old leader never changes role, so its callback never runs) and the /sync key ' +
  'update then fails on every loop; the lab repairs both by hand (run notes). patroni/patroni#2689 ("make ' +
  "sure the leader key isn't unconditionally overwritten\", merged after 3.0.2) describes this takeover.";

const isolationNotes =
  'isolation: the isolated leader keeps reading its own etcd member, which, cut off from the quorum, still answers ' +
  'with the old view (Patroni reads etcd serializable, "we can tolerate stale reads"), so its log says "Lock owner: ' +
  '<itself>" while its lease keepalives fail; it demotes when a DCS request fails ("demoting self because DCS is not ' +
  'accessible and I was a leader"), and stopping PostgreSQL for that can take long (35 s in one patroni-fast run), ' +
  'so its PostgreSQL stayed writable for up to 7 s after the standby promoted (2 of 6 runs; its commits waited for ' +
  'the standby named in synchronous_standby_names, so none was acknowledged). When the network comes back while it ' +
  'is still in that demotion, it acts on the stale view: with a new lease it writes the leader key unconditionally ' +
  '("updated leader lock during demoting self because DCS is not accessible"), promotes itself back ("promoted self ' +
  'to leader because I had the session lock") and the new primary demotes, losing what it ' +
  'acknowledged: 461 writes in the bench:anchors isolation run of patroni-fast (its logs show each step), very ' +
  'likely also the 389 of an earlier bench:failover run with the same signs (writes back after 21 s, no longer gap, ' +
  'then the loss) whose logs were not kept: 2 of 5 patroni-fast isolation runs, 0 of 5 at the defaults. ' +
  'patroni/patroni#2689 ("make ' +
  'sure the leader key isn\'t unconditionally overwritten", merged after 3.0.2) fixes that write. Worse, both ' +
  'promotions made a timeline 2, each its own: Patroni compares the numbers ("Local timeline=2", ' +
  '"primary_timeline=2"), skips pg_rewind, and the demoted node cannot replay the primary\'s WAL ("invalid ' +
  'resource manager ID 32 at 0/304E938"): a standby that connects but never catches up, until an operator ' +
  'reinitialises it (patronictl reinit). The lab does not do that, so the next run fails (patroni-fast\'s cut row).';

interface PatroniSetting {
  readonly name: string;
  readonly timings: PatroniTimings;
  readonly syncStrict: boolean;
  /** What the setting is, for the results ("Patroni's defaults"). */
  readonly setting: string;
  readonly notes: readonly string[];
  readonly safetyNotes?: readonly string[];
}

// What Patroni did in bench:anchors' safety scenarios (bench/results/anchors.md), from its logs.
const safetyNotes = [
  'isolation: the standby takes the leader key once the old leader\'s lease has expired (ttl), and the callback moves ' +
    'the VIP; the isolated leader demotes when a DCS request fails. patroni-fast\'s run lost 461 acknowledged ' +
    'writes: the heal came while the old leader was still demoting, on its stale view it wrote the leader key back ' +
    'and promoted itself again (a timeline 2 of its own), and the new primary was demoted and left unable to ' +
    'follow, with no pg_rewind (patroni/patroni#2689; the isolation note in failover.md has the log lines). ' +
    'patroni-fast\'s cut run that followed could not complete: "db-b does not stream from db-a" for 150 s.',
  'primary ↔ standby cut: both still reach etcd, so the leader keeps its key and logs "no action" throughout; ' +
    'PostgreSQL lists the cut standby in pg_stat_replication until its walsender times out (wal_sender_timeout, ' +
    '60 s by default: "terminating walsender process due to replication timeout" exactly 60.0 s after the cut), so ' +
    'Patroni keeps it as the synchronous standby and every commit waits: writes stall for the whole 60 s cut.',
  'flapping: 6 s blips are shorter than ttl, so nothing changes: no failover, each blip a write gap of about 6 s.',
  'frozen host (network intact): the standby takes the key after ttl; at the thaw the old leader\'s Patroni reads ' +
    'the current view ("Lock owner: <the other>"), demotes at once (0.3 s after the thaw) and is rewound: nothing ' +
    'lost. Host loss differs only in that the network is also down during the freeze: the thawed Patroni then acts ' +
    'on its stale view and takes the key back (failover.md, patroni/patroni#2689).',
];

function patroniSystem(s: PatroniSetting): AnchorSystem {
  const { timings } = s;
  return {
    name: s.name,
    tool: 'patroni',
    describe:
      `Patroni 3.0.2 (Debian) with a three-member etcd 3.4, synchronous_mode on, the VIP moved by its on_role_change ` +
      `callback (test/lab/anchors/patroni); ${s.setting}: ttl ${timings.ttl}, loop_wait ${timings.loopWait}, ` +
      `retry_timeout ${timings.retryTimeout}, synchronous_mode_strict ${s.syncStrict}.`,
    notes: s.notes,
    ...(s.safetyNotes === undefined ? {} : { safetyNotes: s.safetyNotes }),
    postgres: 'tool',
    // While it holds the leader key, Patroni restarts a crashed PostgreSQL where it was.
    recoversInPlace: ['pg-crash'],
    recoveryDeadlineMs: { 'host-loss': 90_000, isolation: 90_000, 'pg-crash': 90_000 },
    create: (lab) => new PatroniInstance(lab, timings, s.syncStrict),
  };
}

export const patroni = patroniSystem({
  name: 'patroni',
  timings: patroniDefaults,
  syncStrict: false,
  setting: "Patroni's defaults",
  notes: [hostLossTakeover, isolationNotes],
  safetyNotes,
});
export const patroniFast = patroniSystem({
  name: 'patroni-fast',
  timings: patroniFastest,
  syncStrict: false,
  setting: 'its documented fastest safe settings (ttl at its minimum, loop_wait + 2 × retry_timeout = ttl)',
  notes: [hostLossTakeover, isolationNotes],
  safetyNotes,
});
export const patroniStrict = patroniSystem({
  name: 'patroni-strict',
  timings: patroniDefaults,
  syncStrict: true,
  setting: "Patroni's default timings with synchronous_mode_strict on (config.ts)",
  notes: [
    'synchronous_mode_strict: with only two database nodes, the new primary has no synchronous standby while ' +
      'the old one is gone, so it acknowledges nothing until that node is back as its standby: no acknowledged ' +
      'write can be lost, and writes stop for as long as either node is lost (Patroni\'s "Replication modes": ' +
      'the primary is not available for writes, blocking all clients, until a synchronous replica is back).',
    'host loss (strict): the standby took the leader key after ttl but acknowledged nothing; when the old host ' +
      'thawed, its Patroni took the key back as without strict mode (patroni/patroni#2689), so nothing was lost, and ' +
      'writes resumed only after the lab repaired the stuck /sync key (run notes): no failover for writes at all.',
  ],
});

// `npm run bench:failover` (as root): failover measured on real processes in the lab, for pgvip, for
// the baseline shell loop it replaces (test/lab/baseline), and for the anchors, other HA tools set up
// in the same lab (test/lab/anchors: "patroni", "patroni-fast", ...). For each system and scenario, N
// runs (default 20), each from a healthy pair with writes flowing through the VIP:
//
//   host-loss   the primary host is frozen and its traffic dropped (docs/design.md,
//               Failure scenarios, row 3)
//   pg-crash    kill -9 of PostgreSQL on the primary, the host and agent alive (row 2)
//   switchover  a planned switchover (row 1; pgvip only: the baseline has no such thing)
//   isolation   the primary fully isolated, its processes alive, healed after the takeover (row 7)
//   standby-loss  the synchronous standby's link dark for 15 s, then healed (row 9's sync degrade):
//               how long writes block, and how long after the heal the standby streams again
//   flap-loss   (pgvip; only when named) --flap-minutes of 30 % loss on every path between the hosts and
//               each path flapping on a seeded schedule, writes flowing: failovers (must be 0), the
//               longest write block against the lease, lost and overlapping writes, the daemons' CPU
//               (bench-flap-loss.ts; its own table)
//
// Each runs under an EC2 profile (--ec2-profile): the emulator's remap delay, describe staleness and
// IMDS lag (docs/lab.md, EC2 profiles). `instant` is the emulator's default (no delay).
//
// Per run: ms from the fault to the first write acknowledged through the VIP by the new primary, the
// longest write gap, acknowledged writes missing from the final primary, overlapping writers (two
// servers acknowledging in the same span), and time during which BOTH servers accepted writes when
// asked directly (split brain; by the servers' own clocks: writable-probe.ts). Writes
// bench/results/failover.json and bench/results/failover.md,
// MERGED per system and scenario: the rows run now replace their own, every other row stays (so
// `--systems patroni` and `--systems pgvip`, or one scenario at a time, can run separately).
//
//   npm run bench:failover -- [--runs 20] [--systems pgvip,baseline] [--ec2-profile instant,typical,slow]
//                             [--scenarios host-loss,pg-crash,switchover,isolation,standby-loss]
//                             [--backend etcd [--nodes 3]]
//   npm run bench:failover -- --runs 1 --systems pgvip --scenarios flap-loss [--flap-minutes 10] [--flap-seed 18]
// `--backend etcd --nodes 3` runs pgvip with db-a, db-b and db-c (rows "pgvip-etcd-3"): the new primary
// is whichever standby wins the election; a switchover names the first standby in config order.
//   npm run bench:failover -- --render      (rewrite failover.md from failover.json, no lab)
// --keep-logs keeps every run's logs in /var/tmp/pgvip-bench-evidence/ (to read where its time went).
import { spawnSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';
import { keepRunEvidence } from './anchors/evidence.js';
import { anchorOf, anchors } from './anchors/registry.js';
import { repairBaseline } from './baseline/baseline.js';
import { cpuLine, flapLossRun, syncLossGoalMs, type FlapLossResult } from './bench-flap-loss.js';
import { ratioSection } from './bench-ratios.js';
import { acknowledged, firstAckAfter, lostAckedWrites, overlappingWriters, percentile, writeGap } from './checkers.js';
import { repoRoot } from './ipc.js';
import { isRoot, labBackends, startLab, type Lab, type LabBackend, type LabSystem } from './lab.js';
import { otherNode, type DbNode, type LabNodeCount } from './topology.js';
import { psql } from './postgres.js';
import { hold, waitFor } from './wait.js';
import { ServerClockWritableProbe } from './writable-probe.js';

const scenarioNames = ['host-loss', 'pg-crash', 'switchover', 'isolation', 'standby-loss', 'flap-loss'] as const;
type ScenarioName = (typeof scenarioNames)[number];
/** Run only when named: flap-loss holds the lab for --flap-minutes per run. */
const defaultScenarios = scenarioNames.filter((n) => n !== 'flap-loss');

/**
 * EC2's timing as the emulator plays it (docs/lab.md, EC2 profiles): how long after an accepted call
 * the VPC routes the VIP (remap), how old Describe's answer is, and how far IMDS's local-ipv4s trails
 * the remap. AWS publishes no figure for these: `typical` and `slow` are 1 s and 3 s each.
 */
const ec2Profiles = {
  instant: { remapDelayMs: 0, describeStaleMs: 0, imdsLagMs: 0 },
  typical: { remapDelayMs: 1_000, describeStaleMs: 1_000, imdsLagMs: 1_000 },
  slow: { remapDelayMs: 3_000, describeStaleMs: 3_000, imdsLagMs: 3_000 },
} as const;
type Ec2Profile = keyof typeof ec2Profiles;
const profileNames = Object.keys(ec2Profiles) as Ec2Profile[];

/** How long standby-loss keeps the synchronous standby isolated. */
const standbyIsolationMs = 15_000;

const scenarioInfo: Record<ScenarioName, { row: number; title: string }> = {
  'host-loss': { row: 3, title: 'primary host lost (frozen + traffic dropped)' },
  'pg-crash': { row: 2, title: 'kill -9 of PostgreSQL on the primary' },
  switchover: { row: 1, title: 'planned switchover' },
  isolation: { row: 7, title: 'primary fully isolated, processes alive' },
  'standby-loss': { row: 9, title: 'synchronous standby\'s link dark 15 s, then healed' },
  'flap-loss': { row: 16, title: 'every path flapping, 30 % loss on every path, writes flowing' },
};

interface RunResult {
  readonly run: number;
  readonly oldPrimary: string;
  /** Fault → first write acknowledged through the VIP by the other node; null when that never happened. */
  readonly recoveryMs: number | null;
  readonly writeGapMs: number;
  readonly lostAckedWrites: number;
  readonly overlappingWrites: number;
  /** The longest window in which both servers acknowledged writes, by their own clocks (split brain). */
  readonly dualWritableMs: number;
  /** Whether such a window existed at all (a single write inside the other's stretch is one of 0 ms). */
  readonly dualWritable?: boolean;
  /** standby-loss: from the heal to the standby's first reply over a working connection. */
  readonly streamingAgainMs?: number | null;
  readonly writes: { readonly ok: number; readonly failed: number; readonly unknown: number };
  /** pgvip: milestones in ms after the fault, from the daemons' logs and the router. */
  readonly milestones?: Readonly<Record<string, number | null>>;
  /** flap-loss: what the run measured (bench-flap-loss.ts). */
  readonly flap?: FlapLossResult;
  readonly note?: string;
}

interface ScenarioSummary {
  readonly scenario: ScenarioName;
  /** The EC2 profile it ran under (absent in results from before profiles: instant). */
  readonly profile?: Ec2Profile;
  readonly designRow: number;
  readonly title: string;
  readonly supported: boolean;
  readonly note?: string;
  readonly runs: number;
  readonly recovered: number;
  readonly recoveryMs: { readonly p50: number | null; readonly p95: number | null; readonly max: number | null };
  readonly maxWriteGapMs: number | null;
  readonly lostAckedWrites: number;
  readonly overlappingWrites: number;
  readonly runsWithTwoWritablePrimaries: number;
  readonly maxDualWritableMs: number;
  /** How pgvip's daemons ran for this row (absent: as the file's `daemons` says). */
  readonly daemons?: 'compiled' | 'source';
  /** How "two writable" was measured; absent: sampled with psql (before the server-clock probe). */
  readonly dualWritableBy?: 'server-clocks';
  readonly milestonesP50?: Readonly<Record<string, number | null>>;
  /** standby-loss: heal → streaming again, over the runs. */
  readonly streamingAgainMs?: { readonly p50: number | null; readonly max: number | null; readonly never: number };
  readonly samples: readonly RunResult[];
}

const profileOf = (s: ScenarioSummary): Ec2Profile => s.profile ?? 'instant';

const usage = `usage: npm run bench:failover -- [--runs N] [--systems pgvip,baseline,${Object.keys(anchors).join(',')}]
         [--scenarios ${scenarioNames.join(',')}] [--ec2-profile ${profileNames.join(',')}] [--backend witness|etcd]
         [--nodes 2|3] [--flap-minutes M] [--flap-seed S] [--flap-replication sync|async] [--keep-logs] [--out DIR]
       npm run bench:failover -- --render   (rewrite failover.md from failover.json, no lab)
  (as root) N runs (default 20) of each scenario for each system in the lab (default systems: pgvip,baseline);
  --backend etcd runs pgvip with its quorum on the lab's three-member etcd, in rows of their own (pgvip-etcd);
  --nodes 3 (with --backend etcd, pgvip only) adds db-c: rows pgvip-etcd-3;
  flap-loss (pgvip; run only when named): M minutes (default 10) of flapping paths and 30 % loss, seed S + run − 1;
  --flap-replication async: the same with replication.mode async (rows pgvip-async), without the sync wait;
  --keep-logs keeps every run's daemon and PostgreSQL logs in /var/tmp/pgvip-bench-evidence/ (by default
  only pgvip runs that did not recover or lost writes, and every anchor run, keep theirs);
  merges the results into failover.json and failover.md in DIR (default bench/results): the systems run
  replace their own rows, the other systems' rows stay`;
const { values: args } = parseCommandLine({
  usage,
  options: {
    runs: { type: 'string', default: '20' },
    systems: { type: 'string', default: 'pgvip,baseline' },
    scenarios: { type: 'string', default: defaultScenarios.join(',') },
    /** EC2 profiles to run each scenario under (comma-separated). */
    'ec2-profile': { type: 'string', default: 'instant' },
    /** pgvip's quorum: its witness, or the lab's etcd (rows "pgvip-etcd", beside pgvip's). */
    backend: { type: 'string', default: 'witness' },
    /** Database nodes: 2, or 3 with --backend etcd (db-c; rows "pgvip-etcd-3"). */
    nodes: { type: 'string', default: '2' },
    /** flap-loss: minutes of faults per run (1 while developing, 10 for the recorded row). */
    'flap-minutes': { type: 'string', default: '10' },
    /** flap-loss: the schedule's seed of run 1 (run N: seed + N − 1). */
    'flap-seed': { type: 'string', default: '18' },
    /** flap-loss: pgvip's replication.mode; async (rows "pgvip-async"): the lease's own cost, without the sync wait. */
    'flap-replication': { type: 'string', default: 'sync' },
    /** Keep every run's logs, to read where a run's time went (the agents' effects, PostgreSQL's log). */
    'keep-logs': { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    /** Only rewrite failover.md (and the notes in failover.json) from an earlier run's failover.json. */
    render: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const keepLogs = args['keep-logs'] === true;
const systems = args.systems!.split(',') as LabSystem[];
const scenarios = args.scenarios!.split(',') as ScenarioName[];
if (!Number.isInteger(runs) || runs < 1) usageError(usage, `--runs must be a positive whole number (got ${args.runs})`);
for (const s of systems) {
  if (s !== 'pgvip' && s !== 'baseline' && anchorOf(s) === undefined) {
    usageError(usage, `--systems: unknown system ${s} (pgvip, baseline, ${Object.keys(anchors).join(', ')})`);
  }
}
for (const s of scenarios) if (!scenarioNames.includes(s)) usageError(usage, `--scenarios: unknown scenario ${s}`);
const flapMinutes = Number(args['flap-minutes']);
const flapSeed = Number(args['flap-seed']);
if (!(flapMinutes > 0)) usageError(usage, `--flap-minutes must be a positive number (got ${args['flap-minutes']})`);
if (!Number.isInteger(flapSeed)) usageError(usage, `--flap-seed must be a whole number (got ${args['flap-seed']})`);
const flapReplication = args['flap-replication'] as 'sync' | 'async';
if (flapReplication !== 'sync' && flapReplication !== 'async') usageError(usage, `--flap-replication must be sync or async (got ${args['flap-replication']})`);
if (flapReplication === 'async' && (scenarios.some((s) => s !== 'flap-loss') || systems.some((s) => s !== 'pgvip'))) {
  usageError(usage, '--flap-replication async runs flap-loss only, pgvip only: add --scenarios flap-loss --systems pgvip');
}
const backend = args.backend as LabBackend;
if (!labBackends.includes(backend)) usageError(usage, `--backend must be ${labBackends.join(' or ')} (got ${args.backend})`);
const nodes = Number(args.nodes) as LabNodeCount;
if (nodes !== 2 && nodes !== 3) usageError(usage, `--nodes must be 2 or 3 (got ${args.nodes})`);
if (nodes === 3 && (backend !== 'etcd' || systems.some((s) => s !== 'pgvip'))) {
  usageError(usage, '--nodes 3 runs pgvip on etcd only: add --backend etcd --systems pgvip (the witness backend and the other systems run two nodes)');
}
/** The rows a system's runs go to: pgvip on etcd has its own, beside the witness's; three nodes have theirs. */
const rowsOf = (system: LabSystem): string => {
  const async = flapReplication === 'async' ? '-async' : '';
  if (system !== 'pgvip' || backend !== 'etcd') return `${system}${async}`;
  return `${nodes === 3 ? 'pgvip-etcd-3' : 'pgvip-etcd'}${async}`;
};
const etcdDescribe = 'pgvip with quorum.backend: etcd, on the lab\'s three-member etcd 3.4 (Debian\'s etcd-server; a member on db-a, db-b and the witness host, etcd\'s default 100 ms heartbeat and 1 s election timeout), the witness daemon only observing; the same default timings (leader key TTL 3 s). When the lost host also held etcd\'s leader, the key outlives it by an etcd election, since a new etcd leader gives every lease its full TTL again (docs/design.md, "Quorum on etcd").';
const etcd3Describe = 'pgvip on etcd (as pgvip-etcd) with three database nodes, db-a, db-b and db-c (docs/design.md, "More than one standby"): synchronous ANY 1 of the two standbys, no priorities; a failover elects the standby whose final position ranks first; a switchover names the first standby in config order. The etcd members stay on db-a, db-b and the witness host.';
const profiles = args['ec2-profile']!.split(',') as Ec2Profile[];
for (const p of profiles) {
  if (!profileNames.includes(p)) usageError(usage, `--ec2-profile: unknown profile ${p} (${profileNames.join(', ')})`);
}

const t0 = Date.now();
let compiled = false;
const log = (line: string): void => console.log(`[${((Date.now() - t0) / 60_000).toFixed(1).padStart(5)} min] ${line}`);

/** How long a run waits for writes to resume before it counts as "no failover". */
function recoveryDeadlineMs(system: LabSystem, scenario: ScenarioName): number {
  const anchorDeadline = scenario === 'flap-loss' ? undefined : anchorOf(system)?.recoveryDeadlineMs?.[scenario];
  if (anchorDeadline !== undefined) return anchorDeadline;
  // The baseline never notices a dead PostgreSQL on a live host: 25 s (5× pgvip's worst) shows that.
  return system === 'baseline' && scenario === 'pg-crash' ? 25_000 : 60_000;
}

async function inject(lab: Lab, scenario: ScenarioName, primary: DbNode, standby: DbNode): Promise<number> {
  switch (scenario) {
    case 'host-loss': {
      const at = await lab.faults.isolate(primary);
      await lab.faults.freeze(primary);
      return at;
    }
    case 'pg-crash':
      return lab.faults.killPostgres(lab.pg[primary]);
    case 'switchover': {
      const at = Date.now();
      if (lab.anchor !== null) {
        // The tool's own switchover command (patronictl switchover, pg_autoctl perform switchover, ...).
        if (lab.anchor.switchover === undefined) throw new Error(`${lab.system} has no switchover`);
        await lab.anchor.switchover(standby);
        return at;
      }
      const res = await lab.switchover(standby);
      if (res.status !== 200) throw new Error(`switchover refused: ${JSON.stringify(res.json)}`);
      return at;
    }
    case 'isolation':
      return lab.faults.isolate(primary);
    case 'standby-loss':
      // Dark in the network, not dropped at its own output: TCP backs off as it would on EC2 (faults.ts).
      return lab.faults.network({ kind: 'dark', host: standby });
    case 'flap-loss':
      throw new Error('flap-loss runs its own loop (flapRun)');
  }
}

/**
 * The steps of a takeover the lab's timeline does not show, from the new primary's and the witness's
 * logs: when the candidate asked for the vote (its own promise to the old primary had run out), when the
 * witness's promise ran out (known when it had to refuse an earlier request: "lease promised to … for
 * N ms more"), when the candidate's promise ran out after it won (it waits it out: "waiting out the
 * promise … (N ms left)"), when the EC2 call went out and was answered, and when the agent confirmed
 * the remap (Describe and IMDS).
 */
function vipSteps(lab: Lab, faultAt: number, oldPrimary: DbNode, newPrimary: DbNode): Record<string, number | null> {
  const log = lab.logOf(newPrimary).filter((l) => l.atMs >= faultAt);
  const witness = lab.logOf('witness').filter((l) => l.atMs >= faultAt);
  const endOf = (l: { atMs: number; msg: string } | undefined, re: RegExp): number | null => {
    const n = l === undefined ? undefined : re.exec(l.msg)?.[1];
    return l === undefined || n === undefined ? null : l.atMs + Number(n);
  };
  const refused = witness.find((l) => l.msg.includes(`refused ${newPrimary}`) && l.msg.includes(`lease promised to ${oldPrimary}`));
  const waiting = log.find((l) => /waiting out the promise/.test(l.msg));
  const at = (l: { atMs: number } | undefined) => (l === undefined ? null : l.atMs);
  const call = log.find((l) => l.fields.effect === 'move-vip-cloud' && l.msg === 'effect started');
  return {
    'vote asked': at(log.find((l) => l.event === 'vote-requested')),
    "witness's promise over": endOf(refused, /for (\d+) ms more/),
    'promise to the old primary over': endOf(waiting, /\((\d+) ms left\)/),
    'VIP call sent': at(call),
    'VIP call answered': at(log.find((l) => l.fields.effect === 'move-vip-cloud' && l.msg === 'effect done')),
    'VIP confirmed by new primary': at(log.find((l) => l.event === 'vip-moved')),
  };
}

/** The lab's timeline with vipSteps in their place, in ms after the fault, old/new primary named as such. */
function milestonesOf(lab: Lab, faultAt: number, primary: DbNode, standby: DbNode): Record<string, number | null> {
  const steps = lab.system === 'pgvip' ? vipSteps(lab, faultAt, primary, standby) : {};
  const before: Record<string, string> = {
    'vote:': 'vote asked',
    'first acknowledged write': 'VIP confirmed by new primary',
    'VIP routes to': 'VIP call sent',
  };
  const out: Record<string, number | null> = {};
  const put = (label: string, atMs: number | null) => {
    out[label] = atMs === null ? null : atMs - faultAt;
  };
  for (const m of lab.timeline(faultAt, primary, standby)) {
    const label = m.label.replace(primary, 'old primary').replace(standby, 'new primary');
    const insert = Object.entries(before).find(([prefix]) => label.startsWith(prefix))?.[1];
    if (insert === 'vote asked') {
      for (const k of ['vote asked', "witness's promise over"]) if (k in steps) put(k, steps[k]!);
    }
    if (insert === 'VIP call sent') {
      for (const k of ['promise to the old primary over', 'VIP call sent', 'VIP call answered']) if (k in steps) put(k, steps[k]!);
    }
    if (insert === 'VIP confirmed by new primary' && insert in steps) put(insert, steps[insert]!);
    put(label, m.atMs);
  }
  return out;
}

/** When the primary first hears the standby after `healAt`: a reply over a connection that works again. */
async function streamingAgain(
  primary: DbNode,
  standby: DbNode,
  healAt: number,
  timeoutMs: number,
): Promise<number | null> {
  const sql = `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${standby}' AND state = 'streaming' ` +
    `AND reply_time > to_timestamp(${healAt / 1000})`;
  try {
    const r = await waitFor('the standby streaming again', timeoutMs, async () => {
      const n = await psql(primary, sql, { timeoutMs: 2_000 }).catch(() => '0');
      return n === '0' ? null : Date.now();
    }, 100);
    return r - healAt;
  } catch {
    return null;
  }
}

/** flap-loss: minutes of faults, then the same checks as every run; no failover is expected. */
async function flapRun(lab: Lab, run: number, probe: ServerClockWritableProbe): Promise<RunResult> {
  const seed = flapSeed + run - 1;
  const flap = await flapLossRun(lab, {
    durationMs: flapMinutes * 60_000,
    seed,
    log,
    label: `failover-${rowsOf('pgvip')}-flap-loss-run${run}`,
    // A minute is plenty for a cluster that recovers (seconds); one that does not is diagnosed, not waited for.
    healthyWithinMs: 60_000,
  });
  const dual = probe.since(flap.faultAt - 2_000, Date.now());
  const found = [
    ...(flap.failovers > 0 ? [`${flap.failovers} failover(s)`] : []),
    ...(flap.longestWriteBlockMs > flap.leaseMs ? [`writes blocked ${flap.longestWriteBlockMs} ms, longer than the lease (${flap.leaseMs} ms)`] : []),
    ...(flap.restarted.length > 0 ? [`restarted: ${flap.restarted.join(', ')}`] : []),
    ...(flap.unhealthy !== null ? [`not healthy again after the heal: ${flap.unhealthy}`] : []),
  ];
  if (found.length > 0) log(`flap-loss ${run}: ${found.join('; ')}: logs kept in ${flap.evidence}`);
  return {
    run,
    oldPrimary: flap.primary,
    recoveryMs: null,
    writeGapMs: flap.longestWriteBlockMs,
    lostAckedWrites: flap.lost,
    overlappingWrites: flap.overlapping,
    dualWritableMs: dual.longestMs,
    dualWritable: dual.windows.length > 0,
    writes: flap.writes,
    flap,
    ...(found.length > 0 ? { note: found.join('; ') } : {}),
  };
}

async function oneRun(
  lab: Lab,
  scenario: ScenarioName,
  run: number,
  probe: ServerClockWritableProbe,
): Promise<RunResult> {
  if (scenario === 'flap-loss') return flapRun(lab, run, probe);
  const before = await lab.waitHealthy(180_000);
  const primary = before.primary as DbNode;
  // Three nodes: the switchover's target and the standby-loss victim are the first standby in config
  // order; a failover's new primary is whoever wins, known from the first write it acknowledges.
  const threeNodes = lab.topology.dbNodes.length > 2;
  let standby = threeNodes ? (before.standbys[0] as DbNode) : otherNode(primary);
  await hold(1_500); // steady writes before the fault, so the gap has a start
  // On etcd, whether the fault also takes etcd's leader decides how long the lost primary's key lives.
  const etcdLeader = lab.backend === 'etcd' ? await lab.etcd!.leader() : null;
  const faultAt = await inject(lab, scenario, primary, standby);
  let recoveryMs: number | null = null;
  let streamingAgainMs: number | null | undefined;
  // A tool that restarts PostgreSQL in place (anchors/system.ts, recoversInPlace) is back with either
  // node: its first write acknowledged after the writer saw the outage (a write that committed in the
  // milliseconds the kill takes to land is no recovery). standby-loss: the same primary writes again.
  const inPlace = anchorOf(lab.system)?.recoversInPlace?.includes(scenario) === true || scenario === 'standby-loss';
  try {
    if (inPlace) {
      const deadline = recoveryDeadlineMs(lab.system, scenario);
      const back = await waitFor('writes back after the outage', deadline, async () => {
        const records = lab.writer!.since(faultAt);
        const outage = records.find((r) => r.outcome !== 'ok');
        return outage === undefined ? null : firstAckAfter(records, outage.sentAt);
      });
      recoveryMs = back.doneAt - faultAt;
    } else if (threeNodes) {
      const first = await waitFor('a standby to take over', recoveryDeadlineMs(lab.system, scenario), async () =>
        firstAckAfter(lab.writer!.records, faultAt, { notServer: primary }) ?? null, 50);
      standby = first.server as DbNode;
      recoveryMs = first.doneAt - faultAt;
    } else {
      await lab.writer!.waitForAcks(faultAt, 1, recoveryDeadlineMs(lab.system, scenario), standby);
      recoveryMs = firstAckAfter(lab.writer!.records, faultAt, { server: standby })!.doneAt - faultAt;
    }
  } catch {
    // no failover within the deadline: recorded as such
  }
  // Keep the fault a moment after the takeover: the old primary's return is part of the run.
  if (scenario === 'host-loss' || scenario === 'isolation') await hold(3_000);
  if (scenario === 'standby-loss') await hold(Math.max(0, faultAt + standbyIsolationMs - Date.now()));
  const healAt = Date.now();
  await lab.faults.healAll();
  if (scenario === 'standby-loss') streamingAgainMs = await streamingAgain(primary, standby, healAt, 60_000);
  // After the heal, whoever still accepts writes shows it now (the baseline never fences).
  await hold(3_000);
  const dual = probe.since(faultAt - 2_000, Date.now());
  const milestones =
    lab.system !== 'baseline' && scenario !== 'switchover' && scenario !== 'standby-loss'
      ? milestonesOf(lab, faultAt, primary, standby)
      : undefined;

  let records;
  let finalPrimary: DbNode;
  if (lab.system === 'pgvip') {
    const report = await lab.checkSince(faultAt, 180_000);
    records = lab.writer!.since(faultAt, report.toMs);
    finalPrimary = report.final.primary as DbNode;
  } else {
    // The operator's repair (baseline: rewind the loser, restart the loop; an anchor: what the tool
    // does by itself or its documentation says to do), then read the survivor's rows.
    const healthy = lab.anchor !== null ? await lab.anchor.repair() : await repairBaseline(lab);
    finalPrimary = healthy.primary as DbNode;
    records = lab.writer!.since(faultAt, Date.now() - 1_000);
  }
  const notes = [
    ...(etcdLeader === null ? [] : [`etcd's leader was on ${etcdLeader === primary ? 'the old primary\'s host' : etcdLeader === standby ? 'the new primary\'s host' : 'the witness host'}`]),
    ...(recoveryMs === null
      ? [scenario === 'standby-loss'
        ? `writes did not stop and resume on ${primary} within ${recoveryDeadlineMs(lab.system, scenario) / 1000} s`
        : `no write acknowledged by ${standby} within ${recoveryDeadlineMs(lab.system, scenario) / 1000} s`]
      : []),
    ...(streamingAgainMs === null ? [`${standby} did not stream again within 60 s of the heal`] : []),
    ...(lab.anchor?.takeRepairNotes?.() ?? []),
  ];
  const acked = acknowledged(records);
  const present = acked.length === 0
    ? new Set<number>()
    : await lab.rowIdsOn(finalPrimary, Math.min(...records.map((r) => r.id)));
  const end = records.at(-1)?.doneAt ?? Date.now();
  const lost = lostAckedWrites(records, present);
  // An anchor's behaviour is read from its logs (the lab directory goes at down()): every run keeps them;
  // pgvip's runs that did not recover or lost writes keep theirs too.
  if (lab.anchor !== null || keepLogs || (lab.system === 'pgvip' && (recoveryMs === null || lost.length > 0))) {
    const kept = keepRunEvidence(lab, `failover-${lab.system}-${scenario}-run${run}`, faultAt, lost, records);
    log(`${lab.system} ${scenario} ${run}: ${lost.length} acknowledged writes lost; logs and writes kept in ${kept}`);
  }
  return {
    run,
    oldPrimary: primary,
    recoveryMs,
    writeGapMs: writeGap(records, faultAt, end).gapMs,
    lostAckedWrites: lost.length,
    overlappingWrites: overlappingWriters(records).writes,
    dualWritableMs: dual.longestMs,
    dualWritable: dual.windows.length > 0,
    ...(streamingAgainMs === undefined ? {} : { streamingAgainMs }),
    writes: { ok: acked.length, failed: records.filter((r) => r.outcome === 'failed').length, unknown: records.filter((r) => r.outcome === 'unknown').length },
    ...(milestones === undefined ? {} : { milestones }),
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

function summarize(scenario: ScenarioName, samples: RunResult[], profile: Ec2Profile): ScenarioSummary {
  const rec = samples.flatMap((s) => (s.recoveryMs === null ? [] : [s.recoveryMs]));
  const milestoneNames = [...new Set(samples.flatMap((s) => Object.keys(s.milestones ?? {})))];
  const milestoneP50 = (m: string) =>
    percentile(samples.flatMap((s) => (s.milestones?.[m] == null ? [] : [s.milestones[m]!])), 50);
  const milestonesP50 = milestoneNames.length === 0
    ? undefined
    : Object.fromEntries(milestoneNames.map((m) => [m, milestoneP50(m)]));
  const streaming = samples.flatMap((s) => (s.streamingAgainMs == null ? [] : [s.streamingAgainMs]));
  const streamingRuns = samples.filter((s) => s.streamingAgainMs !== undefined);
  return {
    scenario,
    profile,
    designRow: scenarioInfo[scenario].row,
    title: scenarioInfo[scenario].title,
    supported: true,
    runs: samples.length,
    recovered: rec.length,
    recoveryMs: { p50: percentile(rec, 50), p95: percentile(rec, 95), max: rec.length === 0 ? null : Math.max(...rec) },
    maxWriteGapMs: samples.length === 0 ? null : Math.max(...samples.map((s) => s.writeGapMs)),
    lostAckedWrites: samples.reduce((a, s) => a + s.lostAckedWrites, 0),
    overlappingWrites: samples.reduce((a, s) => a + s.overlappingWrites, 0),
    runsWithTwoWritablePrimaries: samples.filter((s) => s.dualWritable ?? s.dualWritableMs > 0).length,
    maxDualWritableMs: Math.max(0, ...samples.map((s) => s.dualWritableMs)),
    dualWritableBy: 'server-clocks',
    ...(milestonesP50 === undefined ? {} : { milestonesP50 }),
    ...(streamingRuns.length === 0
      ? {}
      : {
        streamingAgainMs: {
          p50: percentile(streaming, 50),
          max: streaming.length === 0 ? null : Math.max(...streaming),
          never: streamingRuns.length - streaming.length,
        },
      }),
    samples,
  };
}

async function benchSystem(system: LabSystem, done: (summary: ScenarioSummary) => void): Promise<void> {
  log(`${rowsOf(system)}: building the lab`);
  const pgvipOptions = { backend, nodes, ...(flapReplication === 'async' ? { replication: 'async' as const } : {}) };
  const lab = await startLab({ system, compiled, ...(system === 'pgvip' ? pgvipOptions : {}), progress: (l) => log(`${rowsOf(system)}: ${l}`) });
  let probe: ServerClockWritableProbe | null = null;
  try {
    const { primary } = await lab.waitHealthy(180_000);
    probe = await ServerClockWritableProbe.start(lab, primary as DbNode, { guardDeadline: false });
    for (const profile of profiles) {
      log(`${rowsOf(system)}: EC2 profile ${profile} (${JSON.stringify(ec2Profiles[profile])})`);
      await lab.emulator.setTiming(ec2Profiles[profile]);
      for (const scenario of scenarios) await benchScenario(lab, system, scenario, profile, probe, done);
    }
  } catch (err) {
    lab.markFailed();
    throw err;
  } finally {
    await probe?.stop().catch(() => undefined);
    await lab.down();
  }
}

async function benchScenario(
  lab: Lab,
  system: LabSystem,
  scenario: ScenarioName,
  profile: Ec2Profile,
  probe: ServerClockWritableProbe,
  done: (summary: ScenarioSummary) => void,
): Promise<void> {
  const unsupported = scenario === 'flap-loss' ? undefined : anchorOf(system)?.unsupported?.[scenario];
  if (unsupported !== undefined) {
    done({ ...summarize(scenario, [], profile), supported: false, note: unsupported });
    return;
  }
  if (system !== 'pgvip' && scenario === 'flap-loss') {
    done({ ...summarize(scenario, [], profile), supported: false, note: 'flap-loss measures pgvip\'s price for its timings: pgvip only' });
    return;
  }
  if (system === 'baseline' && scenario === 'switchover') {
    done({ ...summarize(scenario, [], profile), supported: false, note: 'the baseline has no switchover: moving the primary by hand means promoting, reassigning the VIP and rebuilding the old primary, with writes lost or refused meanwhile' });
    return;
  }
  const samples: RunResult[] = [];
  const errors: string[] = [];
  let failuresInARow = 0;
  for (let i = 1; i <= runs; i++) {
    try {
      const r = await oneRun(lab, scenario, i, probe);
      samples.push(r);
      const streaming = r.streamingAgainMs === undefined ? '' : `, streaming again ${r.streamingAgainMs ?? 'never'} ms after the heal`;
      const f = r.flap;
      if (f !== undefined) {
        log(`${rowsOf(system)} flap-loss ${i}/${runs}: ${f.minutes} min, ${f.cuts} cuts, ${f.failovers} failovers, longest write block ${f.longestWriteBlockMs} ms (lease ${f.leaseMs} ms), lost ${f.lost}, overlapping ${f.overlapping}; CPU ${cpuLine(f.cpuFlapping)} (quiet: ${cpuLine(f.cpuQuiet)})`);
      } else log(`${rowsOf(system)} ${scenario} ${profile} ${i}/${runs}: ${r.recoveryMs === null ? 'no failover' : `writes back after ${r.recoveryMs} ms`}, gap ${r.writeGapMs} ms, lost ${r.lostAckedWrites}, overlapping ${r.overlappingWrites}, two writable ${r.dualWritable === true ? `${r.dualWritableMs} ms` : 'never'}${streaming}`);
    } catch (err) {
      // A run that could not be completed (the cluster did not become healthy again) is reported,
      // not hidden; after three in a row the scenario is abandoned with what it has.
      errors.push(`run ${i}: ${(err as Error).message}`);
      log(`${rowsOf(system)} ${scenario} ${profile} ${i}/${runs}: FAILED: ${(err as Error).message}`);
      // Its logs (PostgreSQL's too) outlive the lab only if copied out now: the next lab clears them.
      if (lab.system === 'pgvip') log(`logs kept in ${keepRunEvidence(lab, `failover-${lab.system}-${scenario}-run${i}-failed`, Date.now(), [], [])}`);
      await lab.restoreAll().catch(() => undefined);
      // restoreAll resets EC2 to no delays: the profile again.
      await lab.emulator.setTiming(ec2Profiles[profile]).catch(() => undefined);
      if (++failuresInARow >= 3) break;
      continue;
    }
    failuresInARow = 0;
  }
  done({ ...summarize(scenario, samples, profile), ...(errors.length > 0 ? { note: `${errors.length} run(s) could not be completed: ${errors.join(' | ')}` } : {}) });
}

const ms = (v: number | null): string => (v === null ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

/** Per system: when it was measured, how many runs per scenario, and (anchors) its setup. */
interface SystemInfo {
  readonly date: string;
  readonly runsPerScenario: number;
  readonly describe?: string;
}

/** Runs per row, per system (the rows of one system may differ: a profile or scenario rerun alone). */
function runsLine(info: Readonly<Record<string, SystemInfo>>, results: Record<string, ScenarioSummary[]>): string {
  const countsOf = (sys: string) =>
    [...new Set((results[sys] ?? []).filter((s) => s.supported).map((s) => s.runs))].sort((a, b) => a - b);
  const all = [...new Set(Object.keys(info).flatMap(countsOf))];
  if (all.length === 1) return `${all[0]} runs per scenario and system`;
  return `runs per scenario: ${Object.entries(info).map(([sys, i]) => `${sys} ${countsOf(sys).join(' or ')} (${i.date})`).join(', ')}`;
}

function markdown(results: Record<string, ScenarioSummary[]>, meta: Record<string, unknown>): string {
  const info = meta.systemInfo as Readonly<Record<string, SystemInfo>>;
  const systems = Object.keys(results);
  const scenarios = scenarioNames.filter((n) => systems.some((sys) => results[sys]!.some((x) => x.scenario === n)));
  const lines = [
    '# Failover in the lab: pgvip, the baseline shell loop and the anchors',
    '',
    ...(meta.complete === false ? ['**Incomplete: the run was interrupted; the table shows what it measured.**', ''] : []),
    `Generated by \`npm run bench:failover\` on ${String(meta.date)} (${String(meta.cpus)} cores, Linux ${String(meta.kernel)}, Node ${String(meta.node)}), ${runsLine(info, results)}.`,
    'Real PostgreSQL 15 (synchronous replication), real pgvip agents and witness at their default timings (or the baseline loop,',
    'or an anchor: another HA tool set up in the same lab, see the notes), the EC2 emulator, and a VPC of network namespaces',
    '(docs/lab.md). The writer probe writes through the VIP every 20 ms. The anchors ran few runs per scenario (see above).',
    'Rerun one system and scenario at a time (as root; each such run stays under ten minutes and replaces only its rows):',
    '`flock /tmp/pgvip-lab-queue.lock npm run bench:failover -- --runs 3 --systems patroni --scenarios isolation`.',
    'The anchors\' runs keep their logs in /var/tmp/pgvip-bench-evidence/ (the notes below are read from them).',
    '',
    '- **writes back**: from the fault to the first write acknowledged through the VIP by the new primary (p50 / p95 / max over the runs that recovered).',
    '- **write gap**: the longest time without an acknowledged write, over all runs (for runs that never recovered: until the lab repaired them).',
    '- **lost**: acknowledged writes missing from the final primary. **overlapping**: writes acknowledged while another server also acknowledged (I1).',
    '- **two writable**: runs in which both servers acknowledged writes in the same window, and the longest such window, until the repair at the end',
    '  of the run. A writer on each database host writes to its own server every 50 ms over loopback (`synchronous_commit = local`), and each',
    '  write carries the server\'s clock_timestamp(); the hosts share one clock, so the windows are compared on it (test/lab/writable-probe.ts).',
    '  A frozen host acknowledges nothing while frozen; 0 ms: one write on one side inside the other\'s stretch (resolution: the 50 ms interval).',
    '  Through the VIP the VPC lets one server at a time reach clients, so split brain shows up here: a second primary that anything reaching it',
    '  by its own address would write to, holding writes the other never sees. †: measured before this probe, by asking each server with psql',
    '  every ~0.5–1 s whether it would accept a write; a frozen host\'s whole wait counted (an upper bound).',
    '- **EC2**: the EC2 profile the emulator played (remap delay / Describe staleness / IMDS lag): instant 0 / 0 / 0, typical 1 / 1 / 1 s,',
    '  slow 3 / 3 / 3 s (docs/lab.md, EC2 profiles).',
    '',
    '| scenario (row of docs/design.md, Failure scenarios) | system | EC2 | recovered | writes back p50 | p95 | max | max write gap | lost | overlapping | two writable (longest) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const rowsOf = (system: string, scenario: ScenarioName) =>
    (results[system] ?? [])
      .filter((x) => x.scenario === scenario)
      .sort((a, b) => profileNames.indexOf(profileOf(a)) - profileNames.indexOf(profileOf(b)));
  for (const scenario of scenarios.filter((n) => n !== 'flap-loss')) {
    for (const system of systems) {
      for (const s of rowsOf(system, scenario)) {
        const label = `${s.title} (row ${s.designRow})`;
        if (!s.supported) {
          lines.push(`| ${label} | ${system} | ${profileOf(s)} | not supported | — | — | — | — | — | — | — |`);
          continue;
        }
        const sampled = s.dualWritableBy === undefined ? ' †' : '';
        const longest = s.runsWithTwoWritablePrimaries > 0 ? ` (${ms(s.maxDualWritableMs)})` : '';
        const dual = `${s.runsWithTwoWritablePrimaries}/${s.runs}${longest}${sampled}`;
        const fromSource = s.daemons === 'source' ? ' ‡' : '';
        lines.push(
          `| ${label} | ${system} | ${profileOf(s)}${fromSource} | ${s.recovered}/${s.runs} | ${ms(s.recoveryMs.p50)} | ${ms(s.recoveryMs.p95)} | ${ms(s.recoveryMs.max)} | ${ms(s.maxWriteGapMs)} | ${s.lostAckedWrites} | ${s.overlappingWrites} | ${dual} |`,
        );
      }
    }
  }
  const standbyRows = systems.flatMap((sys) => rowsOf(sys, 'standby-loss').filter((s) => s.streamingAgainMs !== undefined).map((s) => ({ sys, s })));
  if (standbyRows.length > 0) {
    lines.push(
      '',
      '## Availability around the synchronous standby',
      '',
      `The synchronous standby's link goes dark for ${standbyIsolationMs / 1000} s (every packet to or from it lost in the network: faults.ts,`,
      '`dark`), then heals. **Writes blocked**: the longest write gap on the primary',
      '(commits wait for the lost standby until the primary degrades to asynchronous). **Streaming again**: from the heal to the primary\'s first',
      'reply from the standby over a working connection (pg_stat_replication.reply_time after the heal).',
      '',
      '| system | EC2 | runs | writes blocked (max) | writes back p50 | streaming again p50 | max | never |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const { sys, s } of standbyRows) {
      const st = s.streamingAgainMs!;
      lines.push(`| ${sys} | ${profileOf(s)} | ${s.runs} | ${ms(s.maxWriteGapMs)} | ${ms(s.recoveryMs.p50)} | ${ms(st.p50)} | ${ms(st.max)} | ${st.never} |`);
    }
  }
  lines.push(...flapSection(systems.flatMap((sys) => rowsOf(sys, 'flap-loss').filter((s) => s.supported).map((s) => ({ sys, s })))));
  lines.push(...ratioSection(results, ms));
  for (const system of systems.filter((sys) => sys !== 'baseline')) {
    const withMilestones = scenarios.flatMap((sc) => rowsOf(system, sc)).filter((s) => s.milestonesP50 !== undefined);
    if (withMilestones.length === 0) continue;
    lines.push('', `## Where ${system} spends the time (median ms after the fault)`, '');
    for (const s of withMilestones) {
      const listed = Object.entries(s.milestonesP50!).filter(([k]) => k !== 'fault injected');
      // In time order (pgvip's EC2 call goes out before its promotion ends); unknown steps keep their place.
      const known = listed.filter(([, v]) => v !== null).sort((a, b) => a[1]! - b[1]!);
      const steps = listed.map((e) => (e[1] === null ? e : known.shift()!));
      lines.push(`**${s.title}**, EC2 ${profileOf(s)}: ${steps.map(([k, v]) => `${k} ${v === null ? '—' : v}`).join(' → ')}`, '');
    }
  }
  lines.push('## Notes', '');
  for (const n of meta.notes as string[]) lines.push(`- ${n}`);
  for (const system of systems) {
    const describe = info[system]?.describe;
    if (describe !== undefined) lines.push(`- ${system}: ${describe}`);
    for (const n of anchorOf(system)?.notes ?? []) lines.push(`- ${system}: ${n}`);
  }
  for (const system of systems) {
    for (const sc of results[system] ?? []) {
      if (sc.note) lines.push(`- ${system}, ${sc.scenario}${sc.profile !== undefined && sc.profile !== 'instant' ? ` (EC2 ${sc.profile})` : ''}: ${sc.note}`);
      // Runs of an anchor the lab had to repair by hand (its notes); pgvip's and the baseline's are in the json.
      if (anchorOf(system) === undefined) continue;
      for (const r of sc.samples) if (r.note) lines.push(`- ${system}, ${sc.scenario}, run ${r.run}: ${r.note}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

/** The flap-loss rows' own table (one line per system), and how the flaps were scheduled. */
function flapSection(rows: ReadonlyArray<{ sys: string; s: ScenarioSummary }>): string[] {
  const runsOf = (s: ScenarioSummary) => s.samples.flatMap((r) => (r.flap === undefined ? [] : [r.flap]));
  const withRuns = rows.filter(({ s }) => runsOf(s).length > 0);
  if (withRuns.length === 0) return [];
  const first = runsOf(withRuns[0]!.s)[0]!;
  const lines = [
    '',
    '## The price: flapping paths and 30 % loss, writes flowing',
    '',
    `Every path between two of the lab's hosts (db-a, db-b, the witness, the client: ${first.lossPercent} % loss each way) drops packets in the`,
    'VPC router\'s forward path (nftables `numgen random mod 100 < 30 drop`: neither end sees a local drop, so TCP backs off as across a',
    'real network), and each path also flaps: it goes down (all its packets dropped) for 0.5–2 s, uniformly drawn, then up for 3–6 s, on',
    'its own schedule from a seeded generator (the seed below; test/lab/faults.ts, `flapSchedule`; the design\'s flapping link, docs/design.md,',
    'Failure scenarios, row 16). Paths start out of step, so cuts of several paths overlap, the primary\'s two grantors\' paths included.',
    'The router\'s own services (EC2 API, IMDS) are not on these paths. Writes go through the VIP every 20 ms all along. **Failovers**:',
    'promotions in PostgreSQL\'s own logs, from the first fault until the cluster was healthy again (must be 0). **Longest write block**: the',
    'longest time without an acknowledged write over the run. **Blocks > bound**: blocks longer than what they are held to: in sync mode',
    `a block while the primary ↔ standby path was cut waits for a lost synchronous standby and is held to the sync-loss goal (${syncLossGoalMs} ms:`,
    'silence, degrade, agreement), every other block to the lease (timings.leaseMs). **Healthy after heal**: from the heal to the first',
    'look at one primary with its lease and the VIP and the standby streaming and synchronous again. **CPU**: utime + stime of',
    'each daemon from /proc/<pid>/stat over the faults, as % of one core (in brackets: 15 s before them, writes flowing, no fault).',
    '',
    '| system | runs | minutes | seeds | cuts | heartbeat / lease | failovers | longest write block | blocks > lease | blocks > bound | healthy after heal | lost | overlapping | CPU under faults (quiet) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { sys, s } of withRuns) {
    const fs = runsOf(s);
    const sum = (f: (x: FlapLossResult) => number) => fs.reduce((a, x) => a + f(x), 0);
    const worst = fs.reduce((a, x) => (x.longestWriteBlockMs > a.longestWriteBlockMs ? x : a));
    const cpu = fs.map((x) => `${cpuLine(x.cpuFlapping)} (${cpuLine(x.cpuQuiet)})`).join('; ');
    lines.push(
      `| ${sys} | ${fs.length} | ${sum((x) => x.minutes).toFixed(1)} | ${fs.map((x) => x.seed).join(', ')} | ${sum((x) => x.cuts)} | ` +
      `${first.heartbeatMs} ms / ${worst.leaseMs} ms | ${sum((x) => x.failovers)} | ${worst.longestWriteBlockMs} ms | ${sum((x) => x.writeBlocksOverLease)} | ` +
      `${fs.every((x) => x.blocksOverBound !== undefined) ? sum((x) => x.blocksOverBound ?? 0) : '—'} | ${fs.map(healthyText).join(', ')} | ` +
      `${sum((x) => x.lost)}${fs.every((x) => x.lostChecked) ? '' : ' (unchecked)'} | ${sum((x) => x.overlapping)} | ${cpu} |`,
    );
  }
  for (const { sys, s } of withRuns) {
    for (const x of runsOf(s)) {
      const events = Object.entries(x.events).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ');
      lines.push(
        '',
        `${sys}, seed ${x.seed}: ${x.cuts} cuts, at most ${x.maxPathsDownAtOnce} paths down at once; the longest write block ` +
        `(${x.longestWriteBlockMs} ms) began ${Math.round((x.longestWriteBlock.fromMs - x.faultAt) / 100) / 10} s after the first fault; ` +
        `term ${x.termBefore ?? '?'} → ${x.termAfter ?? '?'}, primary ${x.primary} → ${x.finalPrimary}; the daemons' events: ${events === '' ? 'none' : events}` +
        `${x.restarted.length > 0 ? `; restarted: ${x.restarted.join(', ')}` : ''}` +
        `${x.unhealthy !== null ? `; **not healthy again after the heal**: ${x.unhealthy}` : ''}.`,
      );
      if (x.finding !== undefined) lines.push('', `**What the logs show** (${sys}, seed ${x.seed}): ${x.finding}`);
      const blocks = x.blocksOverLease ?? [];
      if (blocks.length === 0) continue;
      const count = (what: string) => blocks.filter((b) => b.events.some((e) => e.endsWith(what))).length;
      lines.push(
        '',
        `Writes blocked longer than the lease ${blocks.length} times; ${count('sync-degraded')} of them ended with the primary degrading` +
        ` to async (it waited for the synchronous standby), ${blocks.filter((b) => b.primaryPathsDown.length === 0).length} came with none` +
        ` of the primary's paths cut (loss only)${boundsText(blocks)}. At (s after the first fault): ` +
        blocks.slice(0, 12).map((b) => `${b.atS} s, ${b.ms} ms${b.primaryPathsDown.length > 0 ? ` (cut: ${b.primaryPathsDown.join(', ')})` : ''}` +
          `${b.events.length > 0 ? ` [${[...new Set(b.events)].join(', ')}]` : ''}`).join('; ') +
        `${blocks.length > 12 ? `; and ${blocks.length - 12} more (failover.json)` : ''}.`,
      );
    }
  }
  lines.push('');
  return lines;
}

/** "; 30 waited for the cut synchronous standby (held to 5000 ms: 4 over), 19 held to the lease". */
function boundsText(blocks: FlapLossResult['blocksOverLease']): string {
  if (blocks.some((b) => b.boundMs === undefined)) return '';
  const sync = blocks.filter((b) => b.boundMs === syncLossGoalMs);
  const over = sync.filter((b) => b.ms > syncLossGoalMs).length;
  return `; ${sync.length} waited for the cut synchronous standby (held to ${syncLossGoalMs} ms: ${over} over),` +
    ` ${blocks.length - sync.length} held to the lease`;
}

/** From the heal to healthy again: "2.1 s", "no" (not within the run's bound), "—" (before it was measured). */
function healthyText(x: FlapLossResult): string {
  if (x.healthyAfterHealMs === undefined) return x.unhealthy === null ? '—' : 'no';
  return x.healthyAfterHealMs === null ? 'no' : `${(x.healthyAfterHealMs / 1000).toFixed(1)} s`;
}

type ResultsFile = Record<string, unknown> & {
  systems: Record<string, ScenarioSummary[]>;
  daemons: string;
  systemInfo: Record<string, SystemInfo>;
};

/** failover.json; one written before per-system info existed gets it from its date and run count. */
function readResults(file: string): ResultsFile {
  const data = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile & { date: string; runsPerScenario?: number };
  const legacy = (): SystemInfo => ({ date: data.date, runsPerScenario: Number(data.runsPerScenario) });
  const systemInfo = Object.fromEntries(
    Object.keys(data.systems).map((sys) => [sys, data.systemInfo?.[sys] ?? legacy()]),
  );
  const { runsPerScenario: _dropped, ...rest } = data;
  return { ...rest, systemInfo };
}

/** The notes under the table; kept here (not in the results) so that --render can refresh the wording. */
function benchNotes(daemons: string): string[] {
  return [
    'pgvip targets (docs/design.md, Targets): host lost → first write p50 ≤ 5 s, max ≤ 8 s; PostgreSQL crash p50 ≤ 2 s; switchover gap ≤ 1 s; 0 lost writes.',
    `pgvip runs at its default timings; its daemons ran ${daemons}; rows marked ‡ ran them from source (tsx), as the tree did not build then.`,
    'The baseline is test/lab/baseline/failover-loop.sh: it pings the primary host every second and after 3 misses runs pg_ctl promote, the real `aws ec2 assign-private-ip-addresses --allow-reassignment` and `ip addr add`. It runs with the same synchronous replication (synchronous_standby_names set on the primary only, as an operator would; a standby that inherited it would hang after its promotion).',
    'The baseline never notices a dead PostgreSQL on a live host (it pings the host): after kill -9, writes stop until someone restarts the server.',
    'Two writable: the baseline never fences, so after host loss or isolation the old primary stays writable next to the promoted standby until an operator repairs it (here the lab, at the end of the run). Through the VIP no client reaches it, and with synchronous replication its commits wait for a standby that has gone, so nothing acknowledged diverged in these runs (lost = 0); anything connected to it directly still writes to a diverged database, and with asynchronous replication those writes would be acknowledged and lost. pgvip\'s old primary fences itself when its lease lapses (isolation: before the standby promotes); a frozen host cannot, but when it wakes up the commit guard refuses every commit made after its lease, before its agent fences it (the agents\' logs put the fence about 0.1 s after the thaw): rows measured on the servers\' clocks show whether the thawed primary acknowledged anything meanwhile. Rows marked † were sampled with psql, which counted the frozen host\'s whole wait as writable (it answered "writable" right after the thaw, before the fence).',
    'Each run starts from a healthy pair (the previous old primary rejoined: pgvip by itself, the baseline by the lab playing operator), so the roles alternate between db-a and db-b.',
    'Synchronous standby\'s link dark: with the replication connection\'s timeouts stripped from primary_conninfo (as before the agent set them, docs/design.md, "Terms, leases, votes"), the standby streamed again 11.5, 11.7 and 12.8 s after the heal (3 runs in one lab, 2026-12-07): TCP\'s backed-off retransmissions and the old walsender holding the slot. The write block was about 8.7 s (3 runs, 2026-12-07) while the degrade clock started only once the primary counted the standby lost (3 s of reply silence) and ran syncDegradeAfterMs (then 5 s) before the witness\'s agreement; it now starts at the standby\'s last reply and runs 3.5 s (docs/design.md, "Terms, leases, votes"): the rest is the heartbeat-paced look that notices the last reply and the one that asks, the quorum\'s answer and the reload. With 4 s and 500 ms heartbeats the block was 4.5–5.0 s (6 runs, witness and etcd, 2026-12-07). With three nodes (pgvip-etcd-3: ANY 1 of db-b and db-c, db-b dark) writes never stop, so there is no writes-back figure (0/3) and the longest gap is the row\'s max; db-b streams again only 3.2–3.7 s after the heal, since while dark it counted its primary failed and withdrew (docs/design.md, "More than one standby"), and it resumes through a position-clear in etcd first.',
    `Machine: a shared ${String(cpus().length)}-core VM; other work ran at the same time, so the tails include scheduling delays.`,
  ];
}

async function main(): Promise<void> {
  if (args.render) {
    const file = path.join(args.out!, 'failover.json');
    const data = readResults(file);
    const meta = { ...data, notes: benchNotes(data.daemons) };
    delete (meta as Record<string, unknown>).systems;
    writeFileSync(file, `${JSON.stringify({ ...meta, systems: data.systems }, null, 2)}\n`);
    writeFileSync(path.join(args.out!, 'failover.md'), markdown(data.systems, meta));
    log(`rendered ${path.join(args.out!, 'failover.md')} from ${file}`);
    process.exit(0);
  }
  if (!isRoot()) {
    console.error('the failover benchmark runs the network-namespace lab and needs root: sudo npm run bench:failover');
    process.exit(1);
  }
  // The anchors' packages (patroni, etcd-server, ...) come from their entries in scripts/system-deps.mjs.
  const anchorDirs = systems.flatMap((s) => {
    const a = anchorOf(s);
    return a === undefined ? [] : [`test/lab/anchors/${a.tool}`];
  });
  ensureSystemDeps(['test/lab', ...anchorDirs]);
  if (systems.includes('pgvip')) {
    // pgvip's daemons run compiled, as a release runs them; from source when the tree does not build.
    log('building dist/ (scripts/build.mjs) so the daemons run as in production');
    compiled = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot, stdio: 'inherit' }).status === 0;
    if (!compiled) log('the build failed: running the daemons from source (tsx) instead');
  }
  mkdirSync(args.out!, { recursive: true });
  // Merged: the systems measured now replace their rows; the others' rows stay as they were.
  const previous = existsSync(path.join(args.out!, 'failover.json')) ? readResults(path.join(args.out!, 'failover.json')) : null;
  const results: Record<string, ScenarioSummary[]> = { ...(previous?.systems ?? {}) };
  const systemInfo: Record<string, SystemInfo> = { ...(previous?.systemInfo ?? {}) };
  const date = new Date().toISOString().slice(0, 10);
  const daemons = previous !== null && !systems.includes('pgvip') ? previous.daemons : compiled ? 'compiled (dist/)' : 'source (tsx)';
  const meta = {
    date,
    cpus: cpus().length,
    kernel: release(),
    node: process.version,
    daemons,
    notes: benchNotes(daemons),
    systemInfo,
  };
  // Written after every scenario: an interrupted run (a long one may not survive its terminal)
  // leaves what it measured, marked incomplete, instead of nothing.
  const save = (complete: boolean) => {
    writeFileSync(path.join(args.out!, 'failover.json'), `${JSON.stringify({ ...meta, complete, systems: results }, null, 2)}\n`);
    writeFileSync(path.join(args.out!, 'failover.md'), markdown(results, { ...meta, complete }));
  };
  for (const system of systems) {
    // Per system, scenario and EC2 profile: the rows run now replace theirs, the system's others stay.
    const rows = rowsOf(system);
    const rerun = (x: ScenarioSummary) => scenarios.includes(x.scenario) && profiles.includes(profileOf(x));
    results[rows] = (results[rows] ?? []).filter((x) => !rerun(x));
    const describe = rows.endsWith('-async')
      ? `${rows.slice(0, -'-async'.length)} with replication.mode async (flap-loss only): no commit waits for the standby, so its write blocks are the lease's and the network's own`
      : rows === 'pgvip-etcd' ? etcdDescribe : rows === 'pgvip-etcd-3' ? etcd3Describe : anchorOf(system)?.describe;
    systemInfo[rows] = { date, runsPerScenario: runs, ...(describe === undefined ? {} : { describe }) };
    await benchSystem(system, (summary) => {
      const order = (x: ScenarioSummary) => scenarioNames.indexOf(x.scenario) * 10 + profileNames.indexOf(profileOf(x));
      const ran = system === 'pgvip' ? { daemons: compiled ? ('compiled' as const) : ('source' as const) } : {};
      results[rows] = [...results[rows]!, { ...summary, ...ran }].sort((a, b) => order(a) - order(b));
      save(false);
    });
  }
  save(true);
  log(`wrote ${path.join(args.out!, 'failover.json')} and failover.md`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(`bench:failover failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});

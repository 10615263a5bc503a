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
//
// Per run: ms from the fault to the first write acknowledged through the VIP by the new primary, the
// longest write gap, acknowledged writes missing from the final primary, overlapping writers (two
// servers acknowledging in the same span), and time during which BOTH servers accepted writes when
// asked directly (split brain). Writes bench/results/failover.json and bench/results/failover.md,
// MERGED per system and scenario: the rows run now replace their own, every other row stays (so
// `--systems patroni` and `--systems pgvip`, or one scenario at a time, can run separately).
//
//   npm run bench:failover -- [--runs 20] [--systems pgvip,baseline]
//                             [--scenarios host-loss,pg-crash,switchover,isolation]
//   npm run bench:failover -- --render      (rewrite failover.md from failover.json, no lab)
import { spawnSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';
import { keepRunEvidence } from './anchors/evidence.js';
import { anchorOf, anchors } from './anchors/registry.js';
import { repairBaseline } from './baseline/baseline.js';
import { acknowledged, firstAckAfter, lostAckedWrites, overlappingWriters, percentile, writeGap } from './checkers.js';
import { repoRoot } from './ipc.js';
import { isRoot, startLab, type Lab, type LabSystem } from './lab.js';
import { otherNode, type DbNode } from './topology.js';
import { hold, waitFor } from './wait.js';
import { WritableProbe } from './writable-probe.js';

const scenarioNames = ['host-loss', 'pg-crash', 'switchover', 'isolation'] as const;
type ScenarioName = (typeof scenarioNames)[number];

const scenarioInfo: Record<ScenarioName, { row: number; title: string }> = {
  'host-loss': { row: 3, title: 'primary host lost (frozen + traffic dropped)' },
  'pg-crash': { row: 2, title: 'kill -9 of PostgreSQL on the primary' },
  switchover: { row: 1, title: 'planned switchover' },
  isolation: { row: 7, title: 'primary fully isolated, processes alive' },
};

interface RunResult {
  readonly run: number;
  readonly oldPrimary: string;
  /** Fault → first write acknowledged through the VIP by the other node; null when that never happened. */
  readonly recoveryMs: number | null;
  readonly writeGapMs: number;
  readonly lostAckedWrites: number;
  readonly overlappingWrites: number;
  /** Time both servers accepted writes, asked directly (split brain). */
  readonly dualWritableMs: number;
  readonly writes: { readonly ok: number; readonly failed: number; readonly unknown: number };
  /** pgvip: milestones in ms after the fault, from the daemons' logs and the router. */
  readonly milestones?: Readonly<Record<string, number | null>>;
  readonly note?: string;
}

interface ScenarioSummary {
  readonly scenario: ScenarioName;
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
  readonly milestonesP50?: Readonly<Record<string, number | null>>;
  readonly samples: readonly RunResult[];
}

const usage = `usage: npm run bench:failover -- [--runs N] [--systems pgvip,baseline,${Object.keys(anchors).join(',')}]
         [--scenarios ${scenarioNames.join(',')}] [--out DIR]
       npm run bench:failover -- --render   (rewrite failover.md from failover.json, no lab)
  (as root) N runs (default 20) of each scenario for each system in the lab (default systems: pgvip,baseline);
  merges the results into failover.json and failover.md in DIR (default bench/results): the systems run
  replace their own rows, the other systems' rows stay`;
const { values: args } = parseCommandLine({
  usage,
  options: {
    runs: { type: 'string', default: '20' },
    systems: { type: 'string', default: 'pgvip,baseline' },
    scenarios: { type: 'string', default: scenarioNames.join(',') },
    out: { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    /** Only rewrite failover.md (and the notes in failover.json) from an earlier run's failover.json. */
    render: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const systems = args.systems!.split(',') as LabSystem[];
const scenarios = args.scenarios!.split(',') as ScenarioName[];
if (!Number.isInteger(runs) || runs < 1) usageError(usage, `--runs must be a positive whole number (got ${args.runs})`);
for (const s of systems) {
  if (s !== 'pgvip' && s !== 'baseline' && anchorOf(s) === undefined) {
    usageError(usage, `--systems: unknown system ${s} (pgvip, baseline, ${Object.keys(anchors).join(', ')})`);
  }
}
for (const s of scenarios) if (!scenarioNames.includes(s)) usageError(usage, `--scenarios: unknown scenario ${s}`);

const t0 = Date.now();
let compiled = false;
const log = (line: string): void => console.log(`[${((Date.now() - t0) / 60_000).toFixed(1).padStart(5)} min] ${line}`);

/** How long a run waits for writes to resume before it counts as "no failover". */
function recoveryDeadlineMs(system: LabSystem, scenario: ScenarioName): number {
  const anchorDeadline = anchorOf(system)?.recoveryDeadlineMs?.[scenario];
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
  }
}

async function oneRun(lab: Lab, scenario: ScenarioName, run: number): Promise<RunResult> {
  const before = await lab.waitHealthy(180_000);
  const primary = before.primary as DbNode;
  const standby = otherNode(primary);
  await hold(1_500); // steady writes before the fault, so the gap has a start
  const probe = new WritableProbe();
  probe.start();
  const faultAt = await inject(lab, scenario, primary, standby);
  let recoveryMs: number | null = null;
  // A tool that restarts PostgreSQL in place (anchors/system.ts, recoversInPlace) is back with either
  // node: its first write acknowledged after the writer saw the outage (a write that committed in the
  // milliseconds the kill takes to land is no recovery).
  const inPlace = anchorOf(lab.system)?.recoversInPlace?.includes(scenario) === true;
  try {
    if (inPlace) {
      const deadline = recoveryDeadlineMs(lab.system, scenario);
      const back = await waitFor('writes back after the outage', deadline, async () => {
        const records = lab.writer!.since(faultAt);
        const outage = records.find((r) => r.outcome !== 'ok');
        return outage === undefined ? null : firstAckAfter(records, outage.sentAt);
      });
      recoveryMs = back.doneAt - faultAt;
    } else {
      await lab.writer!.waitForAcks(faultAt, 1, recoveryDeadlineMs(lab.system, scenario), standby);
      recoveryMs = firstAckAfter(lab.writer!.records, faultAt, { server: standby })!.doneAt - faultAt;
    }
  } catch {
    // no failover within the deadline: recorded as such
  }
  // Keep the fault a moment after the takeover: the old primary's return is part of the run.
  if (scenario === 'host-loss' || scenario === 'isolation') await hold(3_000);
  await lab.faults.healAll();
  // After the heal, whoever still accepts writes shows it now (the baseline never fences).
  await hold(3_000);
  const dual = await probe.stop();
  const milestones =
    lab.system !== 'baseline' && scenario !== 'switchover'
      ? Object.fromEntries(lab.timeline(faultAt, primary, standby).map((m) => [m.label.replace(primary, 'old primary').replace(standby, 'new primary'), m.atMs === null ? null : m.atMs - faultAt]))
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
    ...(recoveryMs === null ? [`no write acknowledged by ${standby} within ${recoveryDeadlineMs(lab.system, scenario) / 1000} s`] : []),
    ...(lab.anchor?.takeRepairNotes?.() ?? []),
  ];
  const acked = acknowledged(records);
  const present = acked.length === 0
    ? new Set<number>()
    : await lab.rowIdsOn(finalPrimary, Math.min(...records.map((r) => r.id)));
  const end = records.at(-1)?.doneAt ?? Date.now();
  const lost = lostAckedWrites(records, present);
  // An anchor's behaviour is read from its logs (the lab directory goes at down()): every run keeps them.
  if (lab.anchor !== null) {
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
    writes: { ok: acked.length, failed: records.filter((r) => r.outcome === 'failed').length, unknown: records.filter((r) => r.outcome === 'unknown').length },
    ...(milestones === undefined ? {} : { milestones }),
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

function summarize(scenario: ScenarioName, samples: RunResult[]): ScenarioSummary {
  const rec = samples.flatMap((s) => (s.recoveryMs === null ? [] : [s.recoveryMs]));
  const milestoneNames = [...new Set(samples.flatMap((s) => Object.keys(s.milestones ?? {})))];
  const milestoneP50 = (m: string) =>
    percentile(samples.flatMap((s) => (s.milestones?.[m] == null ? [] : [s.milestones[m]!])), 50);
  const milestonesP50 = milestoneNames.length === 0
    ? undefined
    : Object.fromEntries(milestoneNames.map((m) => [m, milestoneP50(m)]));
  return {
    scenario,
    designRow: scenarioInfo[scenario].row,
    title: scenarioInfo[scenario].title,
    supported: true,
    runs: samples.length,
    recovered: rec.length,
    recoveryMs: { p50: percentile(rec, 50), p95: percentile(rec, 95), max: rec.length === 0 ? null : Math.max(...rec) },
    maxWriteGapMs: samples.length === 0 ? null : Math.max(...samples.map((s) => s.writeGapMs)),
    lostAckedWrites: samples.reduce((a, s) => a + s.lostAckedWrites, 0),
    overlappingWrites: samples.reduce((a, s) => a + s.overlappingWrites, 0),
    runsWithTwoWritablePrimaries: samples.filter((s) => s.dualWritableMs > 0).length,
    maxDualWritableMs: Math.max(0, ...samples.map((s) => s.dualWritableMs)),
    ...(milestonesP50 === undefined ? {} : { milestonesP50 }),
    samples,
  };
}

async function benchSystem(system: LabSystem, done: (summary: ScenarioSummary) => void): Promise<void> {
  log(`${system}: building the lab`);
  const lab = await startLab({ system, compiled, progress: (l) => log(`${system}: ${l}`) });
  try {
    for (const scenario of scenarios) {
      const unsupported = anchorOf(system)?.unsupported?.[scenario];
      if (unsupported !== undefined) {
        done({ ...summarize(scenario, []), supported: false, note: unsupported });
        continue;
      }
      if (system === 'baseline' && scenario === 'switchover') {
        done({ ...summarize(scenario, []), supported: false, note: 'the baseline has no switchover: moving the primary by hand means promoting, reassigning the VIP and rebuilding the old primary, with writes lost or refused meanwhile' });
        continue;
      }
      const samples: RunResult[] = [];
      const errors: string[] = [];
      let failuresInARow = 0;
      for (let i = 1; i <= runs; i++) {
        try {
          const r = await oneRun(lab, scenario, i);
          samples.push(r);
          log(`${system} ${scenario} ${i}/${runs}: ${r.recoveryMs === null ? 'no failover' : `writes back after ${r.recoveryMs} ms`}, gap ${r.writeGapMs} ms, lost ${r.lostAckedWrites}, overlapping ${r.overlappingWrites}, two writable ${r.dualWritableMs} ms`);
        } catch (err) {
          // A run that could not be completed (the cluster did not become healthy again) is reported,
          // not hidden; after three in a row the scenario is abandoned with what it has.
          errors.push(`run ${i}: ${(err as Error).message}`);
          log(`${system} ${scenario} ${i}/${runs}: FAILED: ${(err as Error).message}`);
          await lab.restoreAll().catch(() => undefined);
          if (++failuresInARow >= 3) break;
          continue;
        }
        failuresInARow = 0;
      }
      done({ ...summarize(scenario, samples), ...(errors.length > 0 ? { note: `${errors.length} run(s) could not be completed: ${errors.join(' | ')}` } : {}) });
    }
  } catch (err) {
    lab.markFailed();
    throw err;
  } finally {
    await lab.down();
  }
}

const ms = (v: number | null): string => (v === null ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

/** Per system: when it was measured, how many runs per scenario, and (anchors) its setup. */
interface SystemInfo {
  readonly date: string;
  readonly runsPerScenario: number;
  readonly describe?: string;
}

function runsLine(info: Readonly<Record<string, SystemInfo>>): string {
  const counts = [...new Set(Object.values(info).map((i) => i.runsPerScenario))];
  if (counts.length === 1) return `${counts[0]} runs per scenario and system`;
  return `runs per scenario: ${Object.entries(info).map(([sys, i]) => `${sys} ${i.runsPerScenario} (${i.date})`).join(', ')}`;
}

function markdown(results: Record<string, ScenarioSummary[]>, meta: Record<string, unknown>): string {
  const info = meta.systemInfo as Readonly<Record<string, SystemInfo>>;
  const systems = Object.keys(results);
  const scenarios = scenarioNames.filter((n) => systems.some((sys) => results[sys]!.some((x) => x.scenario === n)));
  const lines = [
    '# Failover in the lab: pgvip, the baseline shell loop and the anchors',
    '',
    ...(meta.complete === false ? ['**Incomplete: the run was interrupted; the table shows what it measured.**', ''] : []),
    `Generated by \`npm run bench:failover\` on ${String(meta.date)} (${String(meta.cpus)} cores, Linux ${String(meta.kernel)}, Node ${String(meta.node)}), ${runsLine(info)}.`,
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
    '- **two writable**: runs in which both servers accepted writes when asked directly, and the longest such stretch seen, until the repair at the end',
    '  of the run. Each server is asked every ~0.5–1 s (psql over its own loopback), so a stretch shorter than that shows as up to one interval. Through',
    '  the VIP the VPC lets one server at a time reach clients, so split brain shows up here: a second primary that anything reaching it by its own',
    '  address would write to, holding writes the other never sees.',
    '',
    '| scenario (row of docs/design.md, Failure scenarios) | system | recovered | writes back p50 | p95 | max | max write gap | lost | overlapping | two writable (longest) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const scenario of scenarios) {
    for (const system of systems) {
      const s = results[system]?.find((x) => x.scenario === scenario);
      if (!s) continue;
      const label = `${s.title} (row ${s.designRow})`;
      if (!s.supported) {
        lines.push(`| ${label} | ${system} | not supported | — | — | — | — | — | — | — |`);
        continue;
      }
      lines.push(
        `| ${label} | ${system} | ${s.recovered}/${s.runs} | ${ms(s.recoveryMs.p50)} | ${ms(s.recoveryMs.p95)} | ${ms(s.recoveryMs.max)} | ${ms(s.maxWriteGapMs)} | ${s.lostAckedWrites} | ${s.overlappingWrites} | ${s.runsWithTwoWritablePrimaries}/${s.runs}${s.runsWithTwoWritablePrimaries > 0 ? ` (${ms(s.maxDualWritableMs)})` : ''} |`,
      );
    }
  }
  for (const system of systems.filter((sys) => sys !== 'baseline')) {
    const withMilestones = (results[system] ?? []).filter((s) => s.milestonesP50 !== undefined);
    if (withMilestones.length === 0) continue;
    lines.push('', `## Where ${system} spends the time (median ms after the fault)`, '');
    for (const s of withMilestones) {
      const steps = Object.entries(s.milestonesP50!).filter(([k]) => k !== 'fault injected');
      lines.push(`**${s.title}**: ${steps.map(([k, v]) => `${k} ${v === null ? '—' : v}`).join(' → ')}`, '');
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
      if (sc.note) lines.push(`- ${system}, ${sc.scenario}: ${sc.note}`);
      // Runs of an anchor the lab had to repair by hand (its notes); pgvip's and the baseline's are in the json.
      if (anchorOf(system) === undefined) continue;
      for (const r of sc.samples) if (r.note) lines.push(`- ${system}, ${sc.scenario}, run ${r.run}: ${r.note}`);
    }
  }
  lines.push('');
  return lines.join('\n');
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
    `pgvip runs at its default timings; its daemons ran ${daemons}.`,
    'The baseline is test/lab/baseline/failover-loop.sh: it pings the primary host every second and after 3 misses runs pg_ctl promote, the real `aws ec2 assign-private-ip-addresses --allow-reassignment` and `ip addr add`. It runs with the same synchronous replication (synchronous_standby_names set on the primary only, as an operator would; a standby that inherited it would hang after its promotion).',
    'The baseline never notices a dead PostgreSQL on a live host (it pings the host): after kill -9, writes stop until someone restarts the server.',
    'Two writable: the baseline never fences, so after host loss or isolation the old primary stays writable next to the promoted standby until an operator repairs it (here the lab, at the end of the run). Through the VIP no client reaches it, and with synchronous replication its commits wait for a standby that has gone, so nothing acknowledged diverged in these runs (lost = 0); anything connected to it directly still writes to a diverged database, and with asynchronous replication those writes would be acknowledged and lost. pgvip\'s old primary fences itself when its lease lapses (isolation: before the standby promotes); a frozen host cannot, so when it wakes up its PostgreSQL is writable for the moment its agent needs to fence it. The figure shown is an upper bound set by the sampling: the probe\'s psql on the frozen host waits through the freeze and answers right after the thaw, and its whole wait counts. The agents\' own logs put the fence under 0.1 s after the thaw (3 extra runs after the agent\'s pause watch landed) and at about 0.2–0.3 s in the 20 runs above (measured just before it).',
    'Each run starts from a healthy pair (the previous old primary rejoined: pgvip by itself, the baseline by the lab playing operator), so the roles alternate between db-a and db-b.',
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
    // Per system and scenario: the scenarios run now replace theirs, the system's others stay.
    results[system] = (results[system] ?? []).filter((x) => !scenarios.includes(x.scenario));
    const describe = anchorOf(system)?.describe;
    systemInfo[system] = { date, runsPerScenario: runs, ...(describe === undefined ? {} : { describe }) };
    await benchSystem(system, (summary) => {
      const order = (x: ScenarioSummary) => scenarioNames.indexOf(x.scenario);
      results[system] = [...results[system]!, summary].sort((a, b) => order(a) - order(b));
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

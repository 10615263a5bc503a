// `npm run bench:anchors` (as root): the safety scenarios that matter most, run against the anchors
// (test/lab/anchors: Patroni, ...) and, for comparison, pgvip, in the same lab as bench:failover:
//
//   isolation      the primary host fully isolated (its processes alive), healed after the takeover
//                  or after 90 s
//   cut            only the link between primary and standby cut (both still reach the third host)
//                  for 60 s
//   flapping       the primary isolated 6 s, healed 6 s, five times: blips shorter than a takeover
//   frozen-host    every process of the primary host frozen for 50 s (longer than every system's
//                  lease or TTL), then thawed with its network intact: does the old primary come back
//                  writable next to the new one?
//
// Per run: when writes came back through the VIP (any node), the longest write gap, acknowledged
// writes missing from the final primary, overlapping writers, the longest time both servers accepted
// writes when asked directly, and the promotions (new timelines of the primary). Results are MERGED per system and
// scenario into bench/results/anchors.json and anchors.md, as bench:failover does.
//
//   npm run bench:anchors -- [--runs 2] [--systems patroni,patroni-fast]
//                            [--scenarios isolation,cut,flapping,frozen-host]
import { cpus, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';
import { evidenceRoot, keepRunEvidence } from './anchors/evidence.js';
import {
  mergeSafety,
  timelineOfWalFile,
  type SafetyRun,
  type SafetySummary as SafetySummaryOf,
} from './anchors/safety-results.js';
import { anchorOf, anchors } from './anchors/registry.js';
import { repairBaseline } from './baseline/baseline.js';
import { acknowledged, firstAckAfter, lostAckedWrites, overlappingWriters, writeGap } from './checkers.js';
import { repoRoot } from './ipc.js';
import { isRoot, startLab, type Lab } from './lab.js';
import { otherNode, type DbNode } from './topology.js';
import { hold } from './wait.js';
import { WritableProbe } from './writable-probe.js';

const scenarioNames = ['isolation', 'cut', 'flapping', 'frozen-host'] as const;
type Scenario = (typeof scenarioNames)[number];

const titles: Record<Scenario, string> = {
  isolation: 'primary fully isolated, processes alive',
  cut: 'primary ↔ standby cut only (both reach the third host), 60 s',
  flapping: 'primary isolated 6 s / healed 6 s, five times',
  'frozen-host': 'primary host frozen 50 s, then thawed',
};

type SafetySummary = SafetySummaryOf<Scenario>;

const usage = `usage: npm run bench:anchors -- [--runs N] [--systems ${Object.keys(anchors).join(',')},pgvip]
         [--scenarios ${scenarioNames.join(',')}] [--add] [--out DIR]
       npm run bench:anchors -- --render   (rewrite anchors.md from anchors.json, no lab)
  (as root) N runs (default 2) of each safety scenario for each system in the lab; merges the results into
  anchors.json and anchors.md in DIR (default bench/results): the rows run replace their own, or with --add
  gain these runs (so a row can collect runs over several lab runs of under ten minutes each)`;
const { values: args } = parseCommandLine({
  usage,
  options: {
    runs: { type: 'string', default: '2' },
    systems: { type: 'string', default: Object.keys(anchors).join(',') },
    scenarios: { type: 'string', default: scenarioNames.join(',') },
    add: { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
  },
});
const runs = Number(args.runs);
const systems = args.systems!.split(',');
const scenarios = args.scenarios!.split(',') as Scenario[];
if (!Number.isInteger(runs) || runs < 1) usageError(usage, `--runs must be a positive whole number (got ${args.runs})`);
for (const s of systems) {
  if (s !== 'pgvip' && s !== 'baseline' && anchorOf(s) === undefined) usageError(usage, `--systems: unknown system ${s}`);
}
for (const s of scenarios) if (!scenarioNames.includes(s)) usageError(usage, `--scenarios: unknown scenario ${s}`);

const t0 = Date.now();
const log = (line: string): void => console.log(`[${((Date.now() - t0) / 60_000).toFixed(1).padStart(5)} min] ${line}`);

/** Injects the scenario and resolves when its fault is over (healed or thawed): the fault's start. */
async function inject(lab: Lab, scenario: Scenario, primary: DbNode): Promise<number> {
  const standby = otherNode(primary);
  switch (scenario) {
    case 'isolation': {
      const at = await lab.faults.isolate(primary);
      // Until the standby takes writes through the VIP, or 90 s: a system that never does stalls.
      await lab.writer!.waitForAcks(at, 1, 90_000, standby).catch(() => undefined);
      await hold(5_000);
      await lab.faults.healAll();
      return at;
    }
    case 'cut': {
      const at = await lab.faults.partition(primary, standby);
      await hold(60_000);
      await lab.faults.healAll();
      return at;
    }
    case 'flapping': {
      let first = 0;
      for (let i = 0; i < 5; i++) {
        const at = await lab.faults.isolate(primary);
        if (i === 0) first = at;
        await hold(6_000);
        await lab.faults.healAll();
        await hold(6_000);
      }
      return first;
    }
    case 'frozen-host': {
      const at = await lab.faults.freeze(primary);
      await hold(50_000);
      await lab.faults.thaw(primary);
      return at;
    }
  }
}

async function repair(lab: Lab): Promise<void> {
  if (lab.anchor !== null) await lab.anchor.repair();
  else if (lab.system === 'baseline') await repairBaseline(lab);
  else await lab.waitHealthy(180_000);
}

/**
 * The primary's timeline, from the name of its current WAL file: every promotion starts a new one, and
 * it needs no server log (pg_auto_failover and repmgr keep PostgreSQL's log where the lab does not read).
 */
async function timelineOf(lab: Lab, node: DbNode): Promise<number> {
  const sql = 'SELECT pg_walfile_name(pg_current_wal_lsn())';
  const [row] = await lab.emulator.sql(lab.topology.hosts[node].address, sql, [], 5_000);
  return timelineOfWalFile(String(row?.[0]));
}

async function oneRun(lab: Lab, scenario: Scenario, run: number): Promise<SafetyRun> {
  const before = await lab.waitHealthy(180_000);
  const primary = before.primary as DbNode;
  const timelineBefore = await timelineOf(lab, primary);
  await hold(1_500);
  const probe = new WritableProbe();
  probe.start();
  const faultAt = await inject(lab, scenario, primary);
  // After the fault, whoever still accepts writes shows it now.
  await hold(5_000);
  const dual = await probe.stop();
  await repair(lab);
  const healthy = await lab.waitHealthy(180_000);
  const records = lab.writer!.since(faultAt, Date.now() - 1_000);
  const acked = acknowledged(records);
  const present = acked.length === 0
    ? new Set<number>()
    : await lab.rowIdsOn(healthy.primary as DbNode, Math.min(...records.map((r) => r.id)));
  const back = firstAckAfter(records, faultAt);
  const lost = lostAckedWrites(records, present);
  // What each tool did is read from its logs, so every run keeps them (the lab directory goes at down()).
  const kept = keepRunEvidence(lab, `anchors-${lab.system}-${scenario}-run${run}`, faultAt, lost, records);
  log(`${lab.system} ${scenario} ${run}: ${lost.length} acknowledged writes lost; logs and writes kept in ${kept}`);
  return {
    run,
    oldPrimary: primary,
    finalPrimary: healthy.primary,
    writesBackMs: back === undefined ? null : back.doneAt - faultAt,
    writeGapMs: writeGap(records, faultAt, records.at(-1)?.doneAt ?? Date.now()).gapMs,
    lost: lost.length,
    overlapping: overlappingWriters(records).writes,
    dualWritableMs: dual.longestMs,
    promotions: (await timelineOf(lab, healthy.primary as DbNode)) - timelineBefore,
  };
}

async function benchSystem(system: string, done: (s: SafetySummary) => void): Promise<void> {
  log(`${system}: building the lab`);
  const lab = await startLab({ system, progress: (l) => log(`${system}: ${l}`) });
  try {
    for (const scenario of scenarios) {
      const samples: SafetyRun[] = [];
      const errors: string[] = [];
      for (let i = 1; i <= runs; i++) {
        try {
          const r = await oneRun(lab, scenario, i);
          samples.push(r);
          log(`${system} ${scenario} ${i}/${runs}: ${JSON.stringify(r)}`);
        } catch (err) {
          errors.push(`run ${i}: ${(err as Error).message}`);
          log(`${system} ${scenario} ${i}/${runs}: FAILED: ${(err as Error).message}`);
          // A run that never got healthy again is the one whose logs say most: keep them too.
          const kept = keepRunEvidence(lab, `anchors-${system}-${scenario}-run${i}-failed`, Date.now(), [], []);
          log(`${system} ${scenario} ${i}: logs kept in ${kept}`);
          await lab.restoreAll().catch(() => undefined);
        }
      }
      done({ scenario, title: titles[scenario], runs: samples, errors });
    }
  } catch (err) {
    lab.markFailed();
    throw err;
  } finally {
    await lab.down();
  }
}

const ms = (v: number | null): string => (v === null ? 'never' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);
const range = (xs: ReadonlyArray<number | null>): string => {
  const shown = xs.map(ms);
  return [...new Set(shown)].length === 1 ? shown[0]! : shown.join(', ');
};

interface RunInfo {
  readonly date: string;
  readonly runs: number;
}

function markdown(
  results: Record<string, SafetySummary[]>,
  info: Record<string, RunInfo>,
  meta: { cpus: number; kernel: string; node: string },
): string {
  const lines = [
    '# Safety scenarios against the anchors',
    '',
    'Generated by `npm run bench:anchors` in the lab (docs/lab.md): real PostgreSQL 15 with synchronous replication, the',
    'EC2 emulator, network namespaces as hosts, the writer probe writing through the VIP every 20 ms, on a shared',
    `${meta.cpus}-core VM (Linux ${meta.kernel}, Node ${meta.node}) with other work running. Measured: ` +
      `${Object.entries(info).map(([s, i]) => `${s} on ${i.date}`).join(', ')}.`,
    'Few runs per row (the **runs** column), so the figures show what each system does, not its distribution. Values per',
    'run, separated by commas. Rerun (as root, one system and a few scenarios at a time keep a lab run under ten minutes):',
    '',
    '```',
    'flock /tmp/pgvip-lab-queue.lock npm run bench:anchors -- --runs 1 --systems patroni --scenarios isolation,cut',
    'flock /tmp/pgvip-lab-queue.lock npm run bench:anchors -- --runs 1 --systems patroni --scenarios flapping,frozen-host',
    '```',
    '',
    'The rows of the systems and scenarios run replace their own; the others stay. Each run copies the tools\' and',
    `PostgreSQL's logs and the writer's records to ${evidenceRoot}/ (the lab directory goes when the lab stops).`,
    '',
    '- **writes back**: from the fault to the first write acknowledged through the VIP after it, by either node.',
    '- **write gap**: the longest time without an acknowledged write. **lost**: acknowledged writes missing from the',
    '  final primary. **overlapping**: writes acknowledged while another server also acknowledged.',
    '- **two writable**: the longest stretch in which both servers accepted writes when asked directly (sampled every',
    '  ~0.5–1 s, and a frozen server answers only after the thaw, so a stretch after a freeze is an upper bound).',
    '- **promotions**: new timelines from the fault until the repair (the final primary\'s timeline minus the old',
    '  primary\'s before the fault; a promotion on a branch that was rewound away afterwards is not counted).',
    '',
    '| scenario | system | runs | writes back | write gap | lost | overlapping | two writable | promotions | old → final primary |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const scenario of scenarioNames) {
    for (const [system, rows] of Object.entries(results)) {
      const s = rows.find((x) => x.scenario === scenario);
      if (s === undefined) continue;
      const r = s.runs;
      if (r.length === 0) {
        lines.push(`| ${s.title} | ${system} | 0 | could not run | — | — | — | — | — | — |`);
        continue;
      }
      lines.push(
        `| ${s.title} | ${system} | ${r.length} | ${range(r.map((x) => x.writesBackMs))} | ` +
          `${range(r.map((x) => x.writeGapMs))} | ${r.map((x) => x.lost).join(', ')} | ` +
          `${r.map((x) => x.overlapping).join(', ')} | ${range(r.map((x) => x.dualWritableMs))} | ` +
          `${r.map((x) => x.promotions).join(', ')} | ${r.map((x) => `${x.oldPrimary} → ${x.finalPrimary}`).join(', ')} |`,
      );
    }
  }
  const errors = Object.entries(results).flatMap(([sys, rows]) => rows.flatMap((s) => s.errors.map((e) => `${sys}, ${s.scenario}: ${e}`)));
  if (errors.length > 0) lines.push('', '## Runs that could not be completed', '', ...errors.map((e) => `- ${e}`));
  lines.push('', '## What each system does', '');
  for (const system of Object.keys(results)) {
    const anchor = anchorOf(system);
    if (anchor === undefined) continue;
    lines.push(`**${system}**: ${anchor.describe}`, '');
    for (const n of anchor.safetyNotes ?? []) lines.push(`- ${n}`);
    if ((anchor.safetyNotes ?? []).length > 0) lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

type Saved = { systems: Record<string, SafetySummary[]>; systemInfo: Record<string, RunInfo> };

async function main(): Promise<void> {
  const file = path.join(args.out!, 'anchors.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Saved) : null;
  const results: Record<string, SafetySummary[]> = { ...(previous?.systems ?? {}) };
  const info: Record<string, RunInfo> = { ...(previous?.systemInfo ?? {}) };
  const meta = { cpus: cpus().length, kernel: release(), node: process.version };
  const save = () => {
    writeFileSync(file, `${JSON.stringify({ ...meta, systemInfo: info, systems: results }, null, 2)}\n`);
    writeFileSync(path.join(args.out!, 'anchors.md'), markdown(results, info, meta));
  };
  if (args.render) {
    if (previous === null) usageError(usage, `--render: no ${file} to render`);
    save();
    log(`rewrote anchors.md from ${file}`);
    return;
  }
  if (!isRoot()) {
    console.error('the anchors bench runs the network-namespace lab and needs root: sudo npm run bench:anchors');
    process.exit(1);
  }
  const anchorDirs = systems.flatMap((s) => {
    const a = anchorOf(s);
    return a === undefined ? [] : [`test/lab/anchors/${a.tool}`];
  });
  ensureSystemDeps(['test/lab', ...anchorDirs]);
  mkdirSync(args.out!, { recursive: true });
  for (const system of systems) {
    // Per system and scenario: the scenarios run now replace theirs (or, with --add, gain these runs);
    // the system's other scenarios stay.
    const earlier = new Map((results[system] ?? []).map((x) => [x.scenario, x]));
    results[system] = (results[system] ?? []).filter((x) => !scenarios.includes(x.scenario));
    info[system] = { date: new Date().toISOString().slice(0, 10), runs };
    await benchSystem(system, (s) => {
      const merged = mergeSafety(earlier.get(s.scenario), s, args.add === true);
      results[system] = [...results[system]!, merged].sort(
        (a, b) => scenarioNames.indexOf(a.scenario) - scenarioNames.indexOf(b.scenario),
      );
      save();
    });
  }
  log(`wrote ${file} and anchors.md`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`bench:anchors failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});

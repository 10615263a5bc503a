// bench:failover's flap-loss scenario (issue 18, "the price must be shown"): minutes of flapping paths
// plus 30 % loss on every path between the lab's hosts, with writes flowing through the VIP, at the
// default timings. What it must show: no failover, no write blocked longer than the lease, nothing lost
// or overlapping; and what the agents and the witness spend on it in CPU.
//
// The faults are nftables drops in the VPC router's forward path (faults.ts, `path-loss`): every pair of
// hosts loses `lossPercent` of its packets each way, and each pair's path also goes down and up on its
// own seeded schedule (`flapSchedule`: cuts of 0.5–2 s, 3–6 s apart, the design's flapping link of
// docs/design.md, Failure scenarios, row 16). The router's services (EC2 API, IMDS) and the lab's own
// vantage point are not on those paths, so the lab keeps observing.
//
// CPU: utime + stime (+ the reaped children's) from /proc/<pid>/stat of each daemon, over a quiet stretch
// with writes flowing and no fault, then over the faults; as % of one core.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultTimings } from '../../packages/shared/src/core/timings.js';
import { keepRunEvidence } from './anchors/evidence.js';
import { lostAckedWrites, overlappingWriters, writeGap } from './checkers.js';
import { mustRun } from './exec.js';
import type { Lab } from './lab.js';
import { flapSchedule, type FlapEvent, type NetworkFault } from './faults.js';
import type { DbNode, HostName } from './topology.js';
import { psql } from './postgres.js';
import { hold } from './wait.js';

export interface FlapLossOptions {
  readonly durationMs: number;
  readonly seed: number;
  /** Loss on every path, each direction (default 30). */
  readonly lossPercent?: number;
  /** The quiet stretch before the faults, for the CPU at rest (default 15 s). */
  readonly quietMs?: number;
  readonly log: (line: string) => void;
  /** A name for the evidence directory (bench, run). */
  readonly label: string;
  /** How long after the heal the cluster may take to be healthy again (default 120 s). */
  readonly healthyWithinMs?: number;
}

export interface WriteBlock {
  /** Seconds after the faults began. */
  readonly atS: number;
  readonly ms: number;
  /** The primary's paths (to the client, the standby, the witness) cut at some point of it. */
  readonly primaryPathsDown: readonly string[];
  /** The primary's and the witness's notifications meanwhile (e.g. "db-a sync-degraded"). */
  readonly events: readonly string[];
  /**
   * The bound it is held to: in sync mode a block while the primary ↔ standby path was cut waits for a
   * lost synchronous standby, held to the sync-loss goal (syncLossGoalMs); every other to the lease.
   */
  readonly boundMs?: number;
}

/**
 * Issue 18's goal for writes when the synchronous standby is lost (silence, degrade, the grantor's
 * agreement): a cut of the primary ↔ standby path is such a loss, so writes waiting for it are held to
 * this, not to the lease (the decision of the session note of 2026-12-07, "Left" 2).
 */
export const syncLossGoalMs = 5_000;

/** CPU of one daemon over a stretch, as % of one core; null when it was not running at both ends. */
export type CpuShares = Readonly<Record<string, number | null>>;

export interface FlapLossResult {
  readonly seed: number;
  readonly minutes: number;
  readonly lossPercent: number;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  readonly primary: DbNode;
  /** When the faults began (wall clock, ms). */
  readonly faultAt: number;
  /** Cuts applied (each path's down stretches), and the most paths down at once. */
  readonly cuts: number;
  readonly maxPathsDownAtOnce: number;
  /** The latest a schedule step was applied after its planned time (nft runs one step at a time). */
  readonly maxApplyLagMs: number;
  /** Promotions (PostgreSQL's own "selected new timeline"), from the first fault until healthy again. */
  readonly failovers: number;
  readonly termBefore: number | null;
  readonly termAfter: number | null;
  readonly finalPrimary: string;
  /** Why the cluster was not healthy again within healthyWithinMs of the heal (null: it was). */
  readonly unhealthy: string | null;
  /** The agents' and the witness's notifications over the run, counted by event. */
  readonly events: Readonly<Record<string, number>>;
  /** The longest time without an acknowledged write, and what was cut or lossy meanwhile. */
  readonly longestWriteBlockMs: number;
  readonly longestWriteBlock: { readonly fromMs: number; readonly toMs: number; readonly pathsDown: readonly string[] };
  readonly writeBlocksOverLease: number;
  /** Blocks longer than their bound (WriteBlock.boundMs); absent in results from before it was counted. */
  readonly blocksOverBound?: number;
  /** From the heal to the first healthy look (null: not within healthyWithinMs); absent in older results. */
  readonly healthyAfterHealMs?: number | null;
  /** Each stretch without an acknowledged write longer than the lease, while the faults were on. */
  readonly blocksOverLease: readonly WriteBlock[];
  readonly lost: number;
  /** Whether the rows could be read back (false: the lost count is unknown, shown as such). */
  readonly lostChecked: boolean;
  readonly overlapping: number;
  readonly writes: { readonly ok: number; readonly failed: number; readonly unknown: number };
  readonly cpuQuiet: CpuShares;
  readonly cpuFlapping: CpuShares;
  /** Daemons whose process changed during the run (a crash and restart). */
  readonly restarted: readonly string[];
  readonly evidence: string;
  /** What the evidence showed, added to failover.json by whoever read it (rendered under the table). */
  readonly finding?: string;
}

const clockTicks = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim();
  return Number(out) > 0 ? Number(out) : 100;
})();

/** utime + stime + cutime + cstime of a process, in seconds; null when it is gone. */
export function cpuSecondsOf(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // After the command's closing parenthesis (the command may contain spaces): field 3 onwards.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  return (utime! + stime! + cutime! + cstime!) / clockTicks;
}

interface CpuMark {
  readonly atMs: number;
  readonly byDaemon: Record<string, { pid: number | null; seconds: number | null }>;
}

function cpuMark(lab: Lab, names: Readonly<Record<string, DbNode | 'witness'>>): CpuMark {
  const byDaemon: CpuMark['byDaemon'] = {};
  for (const [name, source] of Object.entries(names)) {
    const pid = (source === 'witness' ? lab.witness : lab.agents[source])?.pid ?? null;
    byDaemon[name] = { pid, seconds: pid === null ? null : cpuSecondsOf(pid) };
  }
  return { atMs: Date.now(), byDaemon };
}

function cpuShares(from: CpuMark, to: CpuMark): CpuShares {
  const wallS = (to.atMs - from.atMs) / 1000;
  return Object.fromEntries(Object.keys(from.byDaemon).map((name) => {
    const [a, b] = [from.byDaemon[name]!, to.byDaemon[name]!];
    const same = a.pid !== null && a.pid === b.pid && a.seconds !== null && b.seconds !== null;
    return [name, same ? Math.round((1000 * (b.seconds! - a.seconds!)) / wallS) / 10 : null];
  }));
}

/**
 * Each path's cuts and the stretches between them: the design's flapping link (2 s cuts every 5 s, within
 * which the lease must hold: docs/configuration.md, timings) and the simulator's flaky schedules (cuts of
 * 0.5–2.5 s every 3–6 s), kept at or under 2 s so that a cut alone never outlasts the lease's margin.
 */
export const flapTiming = { downMs: [500, 2_000], upMs: [3_000, 6_000] } as const;

/** Every unordered pair of the lab's hosts: the paths through the VPC. */
export function pathsOf(hosts: readonly HostName[]): Array<readonly [HostName, HostName]> {
  return hosts.flatMap((a, i) => hosts.slice(i + 1).map((b) => [a, b] as const));
}

const pathKey = (a: HostName, b: HostName) => `${a} ↔ ${b}`;

/** One flap-loss run from a healthy cluster; leaves every fault healed and the cluster healthy. */
export async function flapLossRun(lab: Lab, o: FlapLossOptions): Promise<FlapLossResult> {
  const lossPercent = o.lossPercent ?? 30;
  const t = { ...defaultTimings, ...(lab.options.timings ?? {}) };
  const before = await lab.waitHealthy(180_000);
  const primary = before.primary as DbNode;
  const daemons: Record<string, DbNode | 'witness'> = {
    [`agent ${primary} (primary)`]: primary,
    ...Object.fromEntries(lab.topology.dbNodes.filter((n) => n !== primary).map((n) => [`agent ${n} (standby)`, n])),
    witness: 'witness',
  };
  const termBefore = (await lab.witnessView())?.term ?? null;

  // CPU at rest, writes flowing, no fault: what the faults cost is the difference.
  const quietFrom = cpuMark(lab, daemons);
  await hold(o.quietMs ?? 15_000);
  const quietTo = cpuMark(lab, daemons);

  const paths = pathsOf(lab.topology.hostNames);
  const schedule = flapSchedule(paths, { seed: o.seed, durationMs: o.durationMs, ...flapTiming });
  const loss: NetworkFault[] = paths.map(([a, b]) => ({ kind: 'path-loss', a, b, percent: lossPercent }));
  const faultAt = await lab.faults.network(...loss);
  const flapFrom = cpuMark(lab, daemons);
  o.log(`flap-loss: ${lossPercent}% loss on ${paths.length} paths, ${schedule.filter((e) => e.down).length} cuts over ${o.durationMs / 60_000} min (seed ${o.seed})`);
  const applied: Array<FlapEvent & { appliedAtMs: number }> = [];
  let nextReport = faultAt + 60_000;
  try {
    for (const e of schedule) {
      const wait = faultAt + e.atMs - Date.now();
      if (wait > 0) await hold(wait);
      const cut: NetworkFault = { kind: 'path-loss', a: e.a, b: e.b, percent: 100 };
      const at = e.down ? await lab.faults.network(cut) : await lab.faults.healNetwork(cut);
      applied.push({ ...e, appliedAtMs: at - faultAt });
      if (Date.now() >= nextReport) {
        nextReport += 60_000;
        const promotions = lab.promotionsSince(faultAt).length;
        o.log(`flap-loss: ${((Date.now() - faultAt) / 60_000).toFixed(1)} min, ${applied.filter((x) => x.down).length} cuts, ${promotions} promotions`);
      }
    }
  } finally {
    await lab.faults.healAll();
  }
  const healedAt = Date.now();
  const flapTo = cpuMark(lab, daemons);
  // Healthy again, or what is not: a run whose cluster does not recover still reports what it measured.
  const healthyWithinMs = o.healthyWithinMs ?? 120_000;
  const healthyAfterHealMs = await lab.waitHealthy(healthyWithinMs).then(() => Date.now() - healedAt, () => null);
  let unhealthy: string | null = null;
  let diagnostics = '';
  // Not healthy within the bound: checkSince fails at once with what is wrong (no second wait).
  const checkWithinMs = healthyAfterHealMs === null ? 1_000 : healthyWithinMs;
  const report = await lab.checkSince(faultAt, checkWithinMs).catch(async (err: unknown) => {
    unhealthy = (err as Error).message.split('\n')[0]!;
    diagnostics = await diagnose(lab);
    o.log(`flap-loss: not healthy again: ${unhealthy}`);
    return null;
  });
  const toMs = report?.toMs ?? Date.now();
  const records = lab.writer!.since(faultAt, toMs);
  const acked = records.filter((r) => r.outcome === 'ok');
  // Without a healthy end, the writes are checked against the primary the run began with.
  const firstId = Math.min(...records.map((r) => r.id));
  const present = report !== null || acked.length === 0 ? null : await lab.rowIdsOn(primary, firstId).catch(() => null);
  const lost = report?.lost ?? (present === null ? [] : lostAckedWrites(records, present));
  const failovers = lab.promotionsSince(faultAt).length;
  const termAfter = (await lab.witnessView())?.term ?? null;

  // What was down while writes were blocked longest: every path with a cut overlapping that stretch.
  const gap = report?.gap ?? writeGap(records, faultAt, toMs);
  const downSince = new Map<string, number>();
  const downDuring = new Set<string>();
  for (const e of applied) {
    const key = pathKey(e.a, e.b);
    const at = faultAt + e.appliedAtMs;
    if (e.down) downSince.set(key, at);
    else if ((downSince.get(key) ?? Infinity) < gap.toMs && at > gap.fromMs) downDuring.add(key);
  }
  const cutsOf = (key: string) => {
    const out: Array<[number, number]> = [];
    let since: number | null = null;
    for (const e of applied.filter((x) => pathKey(x.a, x.b) === key)) {
      if (e.down) since = faultAt + e.appliedAtMs;
      else if (since !== null) out.push([since, faultAt + e.appliedAtMs]);
    }
    return out;
  };
  const primaryPaths = paths.filter(([a, b]) => a === primary || b === primary).map(([a, b]) => pathKey(a, b));
  const sync = lab.options.replication !== 'async';
  const isStandby = (h: HostName) => h !== primary && (lab.topology.dbNodes as readonly HostName[]).includes(h);
  const standbyPaths = paths.filter(([a, b]) => (a === primary && isStandby(b)) || (b === primary && isStandby(a)))
    .map(([a, b]) => pathKey(a, b));
  const noted = [...lab.logOf(primary), ...lab.logOf('witness')].filter((l) => l.event !== undefined && l.atMs >= faultAt);
  const blocksOverLease: WriteBlock[] = gapsOver(acked.map((r) => r.doneAt), faultAt, healedAt, t.leaseMs).map((g) => {
    const primaryPathsDown = primaryPaths.filter((k) => cutsOf(k).some(([x, y]) => x < g.toMs && y > g.fromMs));
    return {
      atS: Math.round((g.fromMs - faultAt) / 100) / 10,
      ms: g.toMs - g.fromMs,
      primaryPathsDown,
      events: noted.filter((l) => l.atMs >= g.fromMs && l.atMs <= g.toMs + 200).map((l) => `${l.source} ${l.event}`),
      boundMs: sync && primaryPathsDown.some((k) => standbyPaths.includes(k)) ? syncLossGoalMs : t.leaseMs,
    };
  });
  const events: Record<string, number> = {};
  for (const source of [...lab.topology.dbNodes, 'witness' as const]) {
    for (const l of lab.logOf(source)) {
      if (l.atMs >= faultAt && l.event !== undefined) events[l.event] = (events[l.event] ?? 0) + 1;
    }
  }
  const restarted = Object.keys(daemons).filter((n) => quietFrom.byDaemon[n]!.pid !== flapTo.byDaemon[n]!.pid);
  let downNow = 0;
  let maxDown = 0;
  for (const e of applied) {
    downNow += e.down ? 1 : -1;
    maxDown = Math.max(maxDown, downNow);
  }
  // Every run keeps its logs, its writes and the schedule as applied (seeded, so also replayable).
  const evidence = keepRunEvidence(lab, o.label, faultAt, lost, records);
  writeFileSync(path.join(evidence, 'flaps.json'), `${JSON.stringify({ seed: o.seed, faultAt, lossPercent, paths, applied }, null, 1)}\n`);
  if (diagnostics !== '') writeFileSync(path.join(evidence, 'not-healthy.txt'), `${unhealthy}\n\n${diagnostics}`);
  return {
    seed: o.seed,
    minutes: Math.round((healedAt - faultAt) / 6_000) / 10,
    lossPercent,
    heartbeatMs: t.heartbeatMs,
    leaseMs: t.leaseMs,
    primary,
    faultAt,
    cuts: applied.filter((e) => e.down).length,
    maxPathsDownAtOnce: maxDown,
    maxApplyLagMs: Math.max(0, ...applied.map((e) => e.appliedAtMs - e.atMs)),
    failovers,
    termBefore,
    termAfter,
    finalPrimary: report?.final.primary ?? '?',
    unhealthy,
    events,
    longestWriteBlockMs: gap.gapMs,
    longestWriteBlock: { fromMs: gap.fromMs, toMs: gap.toMs, pathsDown: [...downDuring].sort() },
    writeBlocksOverLease: blocksOverLease.length,
    blocksOverBound: blocksOverLease.filter((b) => b.ms > (b.boundMs ?? t.leaseMs)).length,
    healthyAfterHealMs,
    blocksOverLease,
    lost: lost.length,
    lostChecked: report !== null || present !== null || acked.length === 0,
    overlapping: (report?.overlap ?? overlappingWriters(records)).writes,
    writes: {
      ok: acked.length,
      failed: records.filter((r) => r.outcome === 'failed').length,
      unknown: records.filter((r) => r.outcome === 'unknown').length,
    },
    cpuQuiet: cpuShares(quietFrom, quietTo),
    cpuFlapping: cpuShares(flapFrom, flapTo),
    restarted,
    evidence,
  };
}

/**
 * What the replication looks like when the cluster does not recover: each server's walsenders and WAL
 * receiver, its processes' waits, and each database host's TCP connections with their timers.
 */
async function diagnose(lab: Lab): Promise<string> {
  const out: string[] = [];
  const sql = [
    'SELECT now(), pg_is_in_recovery()',
    'SELECT pid, status, receive_start_lsn, written_lsn, flushed_lsn, last_msg_receipt_time, sender_host FROM pg_stat_wal_receiver',
    'SELECT pid, application_name, state, sent_lsn, flush_lsn, sync_state, reply_time FROM pg_stat_replication',
    'SELECT pid, backend_type, state, wait_event_type, wait_event, backend_start FROM pg_stat_activity ORDER BY backend_type',
  ];
  for (const n of lab.topology.dbNodes) {
    for (const q of sql) {
      const r = await psql(n, q, { timeoutMs: 5_000 }).catch((e: unknown) => `error: ${(e as Error).message}`);
      out.push(`## ${n}: ${q}\n${r}`);
    }
    const ss = await mustRun('ip', ['netns', 'exec', lab.topology.hosts[n].ns, 'ss', '-tnoi', 'state', 'all'], { timeoutMs: 5_000 })
      .catch((e: unknown) => `error: ${(e as Error).message}`);
    out.push(`## ${n}: ss -tnoi\n${ss}`);
  }
  return out.join('\n\n');
}

/** The stretches between consecutive acknowledgements (from `fromMs` to `toMs`) longer than `limitMs`. */
export function gapsOver(
  ackTimes: readonly number[],
  fromMs: number,
  toMs: number,
  limitMs: number,
): Array<{ fromMs: number; toMs: number }> {
  const points = [fromMs, ...ackTimes.filter((x) => x > fromMs && x < toMs).sort((a, b) => a - b), toMs];
  const out: Array<{ fromMs: number; toMs: number }> = [];
  for (let i = 1; i < points.length; i++) {
    if (points[i]! - points[i - 1]! > limitMs) out.push({ fromMs: points[i - 1]!, toMs: points[i]! });
  }
  return out;
}

/** "db-a 1.2 % · db-b 0.9 % · witness 0.4 %" (null: the daemon restarted meanwhile). */
export function cpuLine(c: CpuShares): string {
  return Object.entries(c).map(([name, v]) => `${name} ${v === null ? '—' : `${v.toFixed(1)} %`}`).join(' · ');
}

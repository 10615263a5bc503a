// Golden transcripts: the simulator's readable transcript of every named scenario and of a few dozen
// random seeds, pinned byte for byte under test/sim/testdata/ (golden.test.ts compares them). They
// hold behaviour still while the core is reshaped: a change that alters them says which lines
// changed and why, and rewrites them with `npm run sim -- --rewrite-golden`.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFaultSchedule } from './generate.js';
import { describeTimings } from './random-timings.js';
import { scenarios } from './scenarios.js';
import { describeFault, type Schedule } from './schedule.js';
import { runSchedule, type RunResult } from './world.js';

export const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testdata');
/** The random seeds pinned (besides every scenario at seed 1). */
export const GOLDEN_SEEDS: readonly number[] = Array.from({ length: 30 }, (_, i) => i + 1);
const DIGEST_EVERY_MS = 5000;

export interface GoldenCase {
  readonly file: string;
  readonly title: string;
  readonly schedule: () => Schedule;
}

export function goldenCases(): GoldenCase[] {
  const named = Object.entries(scenarios).map(([name, sc]) => ({
    file: `scenario-${name}.txt`,
    title: `scenario ${name}: ${sc.goal}`,
    schedule: () => sc.schedule(1),
  }));
  const random = GOLDEN_SEEDS.map((seed) => ({
    file: `seed-${String(seed).padStart(3, '0')}.txt`,
    title: `random schedule`,
    // On the default timings, even for a seed whose bulk run draws random ones: the transcripts
    // pin the core's behaviour where it is known (`npm run sim -- --seed N --default-timings`).
    schedule: () => randomFaultSchedule(seed),
  }));
  return [...named, ...random];
}

/** The run's header, transcript and outcome, as `npm run sim` prints them. */
export function renderRun(title: string, schedule: Schedule, r: RunResult): string {
  const rates = JSON.stringify(schedule.clockRates);
  const lines = [title, `seed ${schedule.seed}, ${schedule.replication} replication, clock rates ${rates}`];
  if (schedule.timings !== undefined) lines.push(describeTimings(schedule.timings));
  for (const f of schedule.faults) lines.push(`  at ${(f.at / 1000).toFixed(3)} s: ${describeFault(f)}`);
  lines.push(...r.transcript, '');
  const promotions = r.promotions.map((p) => `${p.node}@${(p.t / 1000).toFixed(2)}s(term ${p.term})`).join(', ') || 'none';
  const primary = r.finalPrimary ?? 'none';
  lines.push(`${r.writesAttempted} writes attempted, ${r.acks.length} acknowledged; promotions: ${promotions}; final primary: ${primary}`);
  lines.push(r.violations.length > 0 ? `VIOLATIONS:\n  ${r.violations.join('\n  ')}` : 'no violations');
  return `${lines.join('\n')}\n`;
}

export function renderGolden(c: GoldenCase): string {
  const schedule = c.schedule();
  return renderRun(c.title, schedule, runSchedule(schedule, { transcript: true, digestEveryMs: DIGEST_EVERY_MS }));
}

/** Write every golden transcript afresh (and drop files no case names any more). */
export function rewriteGolden(): string[] {
  mkdirSync(GOLDEN_DIR, { recursive: true });
  const cases = goldenCases();
  const keep = new Set(cases.map((c) => c.file));
  for (const f of readdirSync(GOLDEN_DIR)) if (f.endsWith('.txt') && !keep.has(f)) rmSync(path.join(GOLDEN_DIR, f));
  for (const c of cases) writeFileSync(path.join(GOLDEN_DIR, c.file), renderGolden(c));
  return cases.map((c) => c.file);
}

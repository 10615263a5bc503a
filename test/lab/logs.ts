// Reading what the daemons said: their logs are pino JSON lines (one object per line, `time` in
// wall-clock ms, `msg` the one-sentence reason, `event` on notifications). The lab turns them into
// timelines: fault → detected → vote → promoted → VIP moved → writes resume.
import { existsSync, readFileSync } from 'node:fs';

export interface LogLine {
  readonly atMs: number;
  readonly source: string;
  readonly msg: string;
  readonly event?: string;
  readonly level?: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Every JSON line of `file` (other lines, e.g. a stack trace on stderr, are skipped). */
export function readLog(file: string, source: string): LogLine[] {
  if (!existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (typeof o.time !== 'number') continue;
      out.push({
        atMs: o.time,
        source,
        msg: typeof o.msg === 'string' ? o.msg : '',
        ...(typeof o.event === 'string' ? { event: o.event } : {}),
        ...(typeof o.level === 'number' ? { level: o.level } : {}),
        fields: o,
      });
    } catch {
      // a partial last line while the daemon writes
    }
  }
  return out;
}

/** The first line at or after `fromMs` that matches. */
export function firstLine(lines: readonly LogLine[], fromMs: number, match: (l: LogLine) => boolean): LogLine | undefined {
  return lines.find((l) => l.atMs >= fromMs && match(l));
}

export interface Milestone {
  readonly label: string;
  readonly atMs: number | null;
  /** Where the time comes from (which log, the writer, the router). */
  readonly source: string;
}

export function renderMilestones(milestones: readonly Milestone[], zeroMs: number): string {
  return milestones
    .map((m) => `  ${m.atMs === null ? '        —   ' : `+${String(Math.round(m.atMs - zeroMs)).padStart(7)} ms`}  ${m.label.padEnd(40)} ${m.atMs === null ? '' : `(${m.source})`}`)
    .join('\n');
}

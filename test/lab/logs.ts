// Reading what the daemons said: their logs are pino JSON lines (one object per line, `time` in
// wall-clock ms, `msg` the one-sentence reason, `event` on notifications). The lab turns them into
// timelines: fault → detected → vote → promoted → VIP moved → writes resume.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

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
  return parseLines(readFileSync(file, 'utf8').split('\n'), source);
}

function parseLines(lines: readonly string[], source: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of lines) {
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
export function firstLine(
  lines: readonly LogLine[],
  fromMs: number,
  match: (l: LogLine) => boolean,
): LogLine | undefined {
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

/**
 * The last `count` things a daemon said at info level or above, oldest first, repeats folded ("×3"),
 * each with its effect and detail: what a failed lab row prints, so that a CI log alone shows why.
 */
export function recentSummary(lines: readonly LogLine[], count = 15): string[] {
  const folded: Array<{ text: string; atMs: number; times: number }> = [];
  for (const l of lines) {
    if ((l.level ?? 30) < 30) continue;
    const f = l.fields;
    const extra = [f.effect, f.detail, f.reason, f.err && typeof f.err === 'object' ? (f.err as { message?: unknown }).message : undefined]
      .filter((x): x is string => typeof x === 'string' && x !== '')
      .join(' | ');
    const text = `${l.msg}${extra ? ` [${extra}]` : ''}`;
    const last = folded.at(-1);
    if (last?.text === text) {
      last.times++;
      last.atMs = l.atMs;
    } else folded.push({ text, atMs: l.atMs, times: 1 });
  }
  return folded.slice(-count).map((e) => `${new Date(e.atMs).toISOString().slice(11, 23)} ${e.text}${e.times > 1 ? ` (×${e.times})` : ''}`);
}

/**
 * Follows a growing log file (like `tail -f`): each poll() returns the complete lines written since
 * the last one. Used to act at the moment a daemon reports a step (row 19 kills an agent mid-promotion).
 */
export class LogFollower {
  readonly #file: string;
  readonly #source: string;
  #offset: number;
  #partial = '';
  /** Everything read so far, for the error of a waitFor that times out. */
  readonly #seen: LogLine[] = [];

  /** Starts at the current end of the file: only lines written from now on are seen. */
  constructor(file: string, source: string) {
    this.#file = file;
    this.#source = source;
    this.#offset = existsSync(file) ? statSync(file).size : 0;
  }

  poll(): LogLine[] {
    if (!existsSync(this.#file)) return [];
    const size = statSync(this.#file).size;
    if (size <= this.#offset) return [];
    const fd = openSync(this.#file, 'r');
    const buf = Buffer.alloc(size - this.#offset);
    try {
      readSync(fd, buf, 0, buf.length, this.#offset);
    } finally {
      closeSync(fd);
    }
    this.#offset = size;
    const text = this.#partial + buf.toString('utf8');
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    const parsed = parseLines(lines, this.#source);
    this.#seen.push(...parsed);
    return parsed;
  }

  /** Resolves with the first new line that matches, polling every `intervalMs`. */
  async waitFor(match: (l: LogLine) => boolean, timeoutMs: number, intervalMs = 10): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const hit = this.poll().find(match);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`no matching line in ${this.#file} within ${timeoutMs} ms; it said meanwhile:\n    ${recentSummary(this.#seen).join('\n    ')}`);
  }
}

// Plain-text rendering for people: aligned tables, durations, byte counts, times, and loud banners.
// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).

export interface Style {
  readonly color: boolean;
}

const ansi = { reset: '\u001b[0m', bold: '\u001b[1m', red: '\u001b[31m', yellow: '\u001b[33m', green: '\u001b[32m', dim: '\u001b[2m' } as const;

export function paint(style: Style, codes: ReadonlyArray<keyof typeof ansi>, text: string): string {
  if (!style.color) return text;
  return `${codes.map((c) => ansi[c]).join('')}${text}${ansi.reset}`;
}

export function styleFor(stream: NodeJS.WriteStream): Style {
  return { color: stream.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb' };
}

/** A box-drawn table in the manner of `patronictl list`; every cell is plain text. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, title?: string): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  let top = rule;
  if (title !== undefined) {
    // "+ Cluster: orders (term 7) --------+" : the title set into the top rule.
    const label = `+ ${title} `;
    top = label.length < rule.length ? label + rule.slice(label.length) : `${label}+`;
  }
  return [top, line(headers), rule, ...rows.map(line), rule].join('\n');
}

export function formatDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 0) return '0 s';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS` in the local time zone (TZ), or the text as given. */
export function formatTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

/** A banner that nobody scrolling past can miss. */
export function banner(style: Style, lines: readonly string[], tone: 'alarm' | 'warning'): string {
  const width = Math.max(...lines.map((l) => l.length)) + 8;
  const edge = '!'.repeat(width);
  const body = [edge, ...lines.map((l) => `!!! ${l.padEnd(width - 8)} !!!`), edge].join('\n');
  return paint(style, ['bold', tone === 'alarm' ? 'red' : 'yellow'], body);
}

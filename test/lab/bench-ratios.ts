// pgvip against each anchor, as issue 18 asks them compared: how many times faster pgvip's median
// "writes back" is than each anchor's in the same lab, scenario and EC2 profile, against the aim
// (≥ 5× an anchor at its defaults, ≥ 2× at its fastest safe settings), and whether pgvip lost or
// split fewer writes. Read from bench:failover's results, so `--render` refreshes it without the lab.

/** The part of a bench:failover row a ratio needs. */
export interface RatioRow {
  readonly scenario: string;
  readonly title: string;
  readonly profile?: string;
  readonly supported: boolean;
  readonly runs: number;
  readonly recovered: number;
  readonly recoveryMs: { readonly p50: number | null };
  readonly lostAckedWrites: number;
  readonly overlappingWrites: number;
  readonly runsWithTwoWritablePrimaries: number;
}

/** The anchors as the lab names them, at their defaults and at their fastest safe settings. */
export const anchorSettings: ReadonlyArray<{ readonly system: string; readonly at: 'defaults' | 'fastest'; readonly aim: number }> = [
  { system: 'patroni', at: 'defaults', aim: 5 },
  { system: 'pg-auto-failover', at: 'defaults', aim: 5 },
  { system: 'repmgr', at: 'defaults', aim: 5 },
  { system: 'patroni-fast', at: 'fastest', aim: 2 },
  { system: 'pg-auto-failover-fast', at: 'fastest', aim: 2 },
  { system: 'repmgr-fast', at: 'fastest', aim: 2 },
];

/** The scenarios the issue names (host loss and switchover), and the crash the README quotes. */
const comparedScenarios = ['host-loss', 'isolation', 'pg-crash', 'switchover'];

export interface Ratio {
  readonly scenario: string;
  readonly title: string;
  readonly anchor: string;
  readonly at: 'defaults' | 'fastest';
  readonly aim: number;
  readonly pgvipP50: number;
  readonly anchorP50: number | null;
  /** anchor p50 / pgvip p50; null when the anchor never recovered (pgvip did). */
  readonly times: number | null;
  readonly met: boolean;
  /** pgvip's lost + overlapping writes and runs with two writable servers, and the anchor's. */
  readonly pgvipBad: number;
  readonly anchorBad: number;
}

const badOf = (r: RatioRow): number => r.lostAckedWrites + r.overlappingWrites + r.runsWithTwoWritablePrimaries;

/**
 * One ratio per compared scenario and anchor present in `results` (EC2 instant: the anchors move no
 * VIP through EC2). An anchor that recovered in no run counts as met (pgvip did recover).
 */
export function anchorRatios(results: Readonly<Record<string, readonly RatioRow[]>>, pgvip = 'pgvip'): Ratio[] {
  const instant = (rows: readonly RatioRow[] | undefined, scenario: string) =>
    (rows ?? []).find((r) => r.scenario === scenario && (r.profile ?? 'instant') === 'instant' && r.supported);
  const out: Ratio[] = [];
  for (const scenario of comparedScenarios) {
    const own = instant(results[pgvip], scenario);
    if (own === undefined || own.recoveryMs.p50 === null) continue;
    for (const { system, at, aim } of anchorSettings) {
      const theirs = instant(results[system], scenario);
      if (theirs === undefined) continue;
      const anchorP50 = theirs.recoveryMs.p50;
      const times = anchorP50 === null ? null : anchorP50 / own.recoveryMs.p50;
      out.push({
        scenario, title: own.title, anchor: system, at, aim, pgvipP50: own.recoveryMs.p50, anchorP50, times,
        met: times === null || times >= aim, pgvipBad: badOf(own), anchorBad: badOf(theirs),
      });
    }
  }
  return out;
}

/** The section of failover.md; empty when no anchor ran. */
export function ratioSection(
  results: Readonly<Record<string, readonly RatioRow[]>>, fmt: (ms: number | null) => string,
): string[] {
  const ratios = anchorRatios(results);
  if (ratios.length === 0) return [];
  const lines = [
    '',
    '## pgvip against the anchors',
    '',
    'How many times faster pgvip\'s median writes back is than each anchor\'s, same lab, scenario and EC2 profile (instant), from the',
    'rows above. The aim (issue 18): ≥ 5× an anchor at its defaults, ≥ 2× at its fastest settings, with fewer lost or split writes.',
    '**bad writes**: lost + overlapping writes + runs with two writable servers (pgvip / anchor). The anchors\' rows have few runs.',
    '',
    '| scenario | anchor | settings | pgvip p50 | anchor p50 | × faster | aim | met | bad writes (pgvip / anchor) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of ratios) {
    const times = r.times === null ? 'never recovered' : `${r.times.toFixed(1)}×`;
    const met = r.met ? 'yes' : '**no**';
    lines.push(`| ${r.title} | ${r.anchor} | ${r.at} | ${fmt(r.pgvipP50)} | ${fmt(r.anchorP50)} | ${times} | ≥ ${r.aim}× | ${met} | ${r.pgvipBad} / ${r.anchorBad} |`);
  }
  const missed = ratios.filter((r) => !r.met);
  lines.push('', missed.length === 0
    ? `Every aim met (${ratios.length} comparisons).`
    : `Missed: ${missed.map((r) => `${r.anchor} (${r.at}) on ${r.scenario}, ${r.times?.toFixed(1)}×`).join('; ')}.`);
  return lines;
}

// The results of bench:anchors (test/lab/bench-anchors.ts) as kept in bench/results/anchors.json, and the
// two pieces of it that need no lab: how a row gains runs over several short lab runs (--add), and how a
// promotion is counted (the primary's timeline, read from its WAL file's name).

export interface SafetyRun {
  readonly run: number;
  readonly oldPrimary: string;
  readonly finalPrimary: string;
  /** Fault → first write acknowledged through the VIP after it (by either node). */
  readonly writesBackMs: number | null;
  readonly writeGapMs: number;
  readonly lost: number;
  readonly overlapping: number;
  readonly dualWritableMs: number;
  /** New timelines from the fault until the repair. */
  readonly promotions: number;
}

export interface SafetySummary<S extends string = string> {
  readonly scenario: S;
  readonly title: string;
  readonly runs: readonly SafetyRun[];
  readonly errors: readonly string[];
}

/**
 * A row measured now, merged with the same row measured before: with `add`, the earlier runs stay and
 * the new ones are numbered after them; without it (or with no earlier row), the new row replaces it.
 */
export function mergeSafety<S extends string>(
  before: SafetySummary<S> | undefined,
  now: SafetySummary<S>,
  add: boolean,
): SafetySummary<S> {
  if (!add || before === undefined) return now;
  return {
    ...now,
    runs: [...before.runs, ...now.runs.map((r, i) => ({ ...r, run: before.runs.length + i + 1 }))],
    errors: [...before.errors, ...now.errors],
  };
}

/**
 * The timeline in a WAL file's name (`pg_walfile_name`: 8 hex digits of timeline, then log and segment).
 * Every promotion starts a new timeline, so the difference before and after a fault counts promotions
 * without reading a server log (pg_auto_failover and repmgr keep theirs where the lab does not look).
 */
export function timelineOfWalFile(name: string): number {
  if (!/^[0-9A-F]{24}$/.test(name)) throw new Error(`not a WAL file name: ${JSON.stringify(name)}`);
  return parseInt(name.slice(0, 8), 16);
}

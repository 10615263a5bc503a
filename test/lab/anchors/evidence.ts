// What a bench keeps from an anchor's run, or a pgvip run that lost acknowledged writes or did not recover:
// the tool's (or pgvip's and etcd's) logs, both PostgreSQL logs and
// the lost writes themselves (which server acknowledged them, when, on which timeline). The lab directory
// holds the logs only until the next lab starts (it clears a dead run's directory), so the benches copy
// them out to a directory of their own, one per run, and print where.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../lab.js';
import type { WriteRecord } from '../writer.js';

/** Where the benches keep such runs (outside /tmp/pgvip-lab-*, which the next lab clears). */
export const evidenceRoot = '/var/tmp/pgvip-bench-evidence';

/** Copies the run's logs and lost writes into `<evidenceRoot>/<label>-<time>/` and returns that path. */
export function keepRunEvidence(
  lab: Lab,
  label: string,
  faultAt: number,
  lost: readonly WriteRecord[],
  records: readonly WriteRecord[],
): string {
  const dir = path.join(evidenceRoot, `${label}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    ...(lab.anchor?.logFiles() ?? {}),
    // pgvip's own daemons (a pgvip run is kept when it did not recover), and etcd's members when it ran.
    ...(lab.system === 'pgvip' ? Object.fromEntries([...lab.topology.dbNodes, 'witness' as const].map((s) => [`pgvip ${s}`, lab.logFile(s)])) : {}),
    ...(lab.etcd?.logFiles() ?? {}),
    ...Object.fromEntries(lab.topology.dbNodes.map((n) => [`postgresql ${n}`, lab.pg[n].logFile])),
  };
  for (const [name, file] of Object.entries(files)) {
    if (existsSync(file)) copyFileSync(file, path.join(dir, `${name.replace(/\s+/g, '-')}.log`));
  }
  // Every write from the fault on, so the lost ones can be read beside what came before and after.
  const lostIds = new Set(lost.map((r) => r.id));
  const rows = records.map((r) => ({ ...r, lost: lostIds.has(r.id) }));
  writeFileSync(path.join(dir, 'writes.json'), `${JSON.stringify({ faultAt, lost: lost.length, writes: rows }, null, 1)}\n`);
  return dir;
}

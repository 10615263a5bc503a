// The end of a cleanly stopped primary's WAL: the end of its shutdown checkpoint, the last record it
// wrote. A clean stop (fast) writes that record and its walsenders send it to every connected standby
// and wait for them to flush it before the server exits, so after the stop it is the end of
// everything this server will ever write on its timeline (it restarts only as a standby, or as the
// same primary). A switchover's final LSN is this (docs/design.md, "More than one standby"): read
// before the stop, a standby that stayed connected would get the shutdown checkpoint past the
// successor's fork.
//
// pg_controldata names where the record starts; pg_waldump reads its length from the WAL (both run
// as the data directory's OS user, who can read it); the end is computed as PostgreSQL's WAL reader
// does: the record continues after each page header it crosses, and the end is MAXALIGNed.
import path from 'node:path';
import type { ResolvedPostgresConfig } from './config.js';
import { outputTail, runAsOsUser, type OsUser } from './os-command.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';

/** Page header sizes, MAXALIGNed: XLogPageHeaderData (a segment's first page: XLogLongPageHeaderData). */
const shortPageHeader = 24n;
const longPageHeader = 40n;
const maxAlign = 8n;

export interface ControlData {
  readonly state: string;
  readonly checkpointLsn: Lsn;
  readonly timeline: number;
  readonly segmentBytes: bigint;
  readonly blockBytes: bigint;
}

/** The fields of pg_controldata's output this needs; null when one is missing. */
export function parseControlData(text: string): ControlData | null {
  const field = (name: string): string | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
    return line?.slice(name.length + 1).trim();
  };
  const state = field('Database cluster state');
  const location = field('Latest checkpoint location');
  const timeline = field("Latest checkpoint's TimeLineID");
  const segment = field('Bytes per WAL segment');
  const block = field('WAL block size');
  if (state === undefined || location === undefined || timeline === undefined) return null;
  if (segment === undefined || block === undefined) return null;
  return {
    state,
    checkpointLsn: parseLsn(location),
    timeline: Number(timeline),
    segmentBytes: BigInt(segment),
    blockBytes: BigInt(block),
  };
}

/** Where a record of `totalLength` bytes starting at `start` ends, as PostgreSQL's WAL reader says (EndRecPtr). */
export function recordEnd(start: Lsn, totalLength: number, blockBytes: bigint, segmentBytes: bigint): Lsn {
  let pos = start;
  let remaining = BigInt(totalLength);
  for (;;) {
    const pageEnd = pos - (pos % blockBytes) + blockBytes;
    if (remaining <= pageEnd - pos) {
      pos += remaining;
      break;
    }
    remaining -= pageEnd - pos;
    pos = pageEnd + (pageEnd % segmentBytes === 0n ? longPageHeader : shortPageHeader);
  }
  return ((pos + maxAlign - 1n) / maxAlign) * maxAlign;
}

export type ShutdownEnd = { readonly lsn: Lsn } | { readonly unknown: string };

/**
 * The end of the shutdown checkpoint of a server stopped cleanly as a primary, or why it is not known
 * (not shut down cleanly, e.g. a stop that escalated to immediate; a tool failed).
 */
export async function readShutdownEnd(config: ResolvedPostgresConfig, osUser: OsUser): Promise<ShutdownEnd> {
  const run = (tool: string, args: readonly string[]) =>
    runAsOsUser(osUser, path.join(config.binDir, tool), args, {
      timeoutMs: config.timeouts.queryMs,
      cwd: path.dirname(config.dataDir),
    });
  const control = await run('pg_controldata', ['-D', config.dataDir]);
  const data = control.exitCode === 0 ? parseControlData(control.stdout) : null;
  if (data === null) return { unknown: `pg_controldata failed: ${outputTail(control)}` };
  if (data.state !== 'shut down') return { unknown: `the server was not shut down cleanly (${data.state})` };
  const at = formatLsn(data.checkpointLsn);
  const dump = await run('pg_waldump', [
    '--path', path.join(config.dataDir, 'pg_wal'), '--timeline', String(data.timeline), '--start', at, '--limit', '1',
  ]);
  const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+),.*desc: CHECKPOINT_SHUTDOWN/.exec(dump.stdout);
  if (dump.exitCode !== 0 || m === null) return { unknown: `no shutdown checkpoint read at ${at}: ${outputTail(dump)}` };
  return { lsn: recordEnd(data.checkpointLsn, Number(m[1]), data.blockBytes, data.segmentBytes) };
}

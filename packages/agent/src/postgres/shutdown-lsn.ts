// The end of a cleanly stopped primary's WAL: the end of its shutdown checkpoint, the last record it
// wrote. A clean stop (fast) writes that record and its walsenders send it to every connected standby
// and wait for them to flush it before the server exits, so after the stop it is the end of
// everything this server will ever write on its timeline (it restarts only as a standby, or as the
// same primary). A switchover's final LSN is this (docs/design.md, "More than one standby"): read
// before the stop, a standby that stayed connected would get the shutdown checkpoint past the
// successor's fork.
//
// pg_controldata names where the record starts (run as the data directory's OS user); its length is
// read from the record's header in the WAL file (pg_waldump, as that user, when the agent cannot read
// it); the end is computed as PostgreSQL's WAL reader does: the record continues after each page
// header it crosses, and the end is MAXALIGNed.
import { open } from 'node:fs/promises';
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
  // The record's header from the WAL file itself (a read, no process to start: this runs inside a
  // switchover's write gap); pg_waldump when the file cannot be read or the header crosses a page.
  const header = await readRecordHeader(config.dataDir, data);
  if (header !== null && header.rmid === rmXlog && (header.info & 0xf0) === xlogCheckpointShutdown) {
    return { lsn: recordEnd(data.checkpointLsn, header.totalLength, data.blockBytes, data.segmentBytes) };
  }
  const at = formatLsn(data.checkpointLsn);
  const dump = await run('pg_waldump', [
    '--path', path.join(config.dataDir, 'pg_wal'), '--timeline', String(data.timeline), '--start', at, '--limit', '1',
  ]);
  const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+),.*desc: CHECKPOINT_SHUTDOWN/.exec(dump.stdout);
  if (dump.exitCode !== 0 || m === null) return { unknown: `no shutdown checkpoint read at ${at}: ${outputTail(dump)}` };
  return { lsn: recordEnd(data.checkpointLsn, Number(m[1]), data.blockBytes, data.segmentBytes) };
}

interface RecordHeader {
  readonly totalLength: number;
  readonly rmid: number;
  readonly info: number;
}

/** The rmgr id of XLOG records and the info bits of a shutdown checkpoint (PostgreSQL's rmgrlist.h, pg_control.h). */
const rmXlog = 0;
const xlogCheckpointShutdown = 0x00;
/** sizeof(XLogRecord): xl_tot_len 4, xl_xid 4, xl_prev 8, xl_info 1, xl_rmid 1, padding 2, xl_crc 4. */
const recordHeaderBytes = 24n;

/** The WAL segment file holding `lsn` on `timeline` (XLogFileName). */
export function walFileName(timeline: number, lsn: Lsn, segmentBytes: bigint): string {
  const segno = lsn / segmentBytes;
  const perId = 0x100000000n / segmentBytes;
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perId)}${hex(segno % perId)}`;
}

/**
 * The total length, rmgr and info of the record at the checkpoint location, read from its WAL file;
 * null when the file cannot be read or the header crosses a page boundary.
 */
async function readRecordHeader(dataDir: string, data: ControlData): Promise<RecordHeader | null> {
  const inPage = data.checkpointLsn % data.blockBytes;
  if (inPage + recordHeaderBytes > data.blockBytes) return null;
  const file = path.join(dataDir, 'pg_wal', walFileName(data.timeline, data.checkpointLsn, data.segmentBytes));
  try {
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.alloc(Number(recordHeaderBytes));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, Number(data.checkpointLsn % data.segmentBytes));
      if (bytesRead < buffer.length) return null;
      return { totalLength: buffer.readUInt32LE(0), info: buffer.readUInt8(16), rmid: buffer.readUInt8(17) };
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

// The event history: a durable, append-only JSON-lines log of everything the witness saw happen to
// its clusters (failures, votes, maintenance, operator commands). Operators read it after an
// incident, so it must survive crashes and restarts, and it must never grow without bound.
//
// Layout under <stateDir>/history/: `events.jsonl` is written; when appending would push it past
// `maxFileBytes`, it becomes `events.1.jsonl` (older ones shift up to `events.<keepFiles>.jsonl`,
// the oldest is dropped) and a fresh `events.jsonl` starts. Ids grow strictly across all clusters
// and restarts, so `before=<id>` is a stable cursor for paging.
//
// Appends never block the caller (the daemon must not wait on the disk to answer a vote): `append`
// assigns the id at once and queues the line; queued lines are written and fdatasync'ed as one
// batch per event-loop turn. A crash can lose at most the batch being written, and a torn last line
// is skipped on reading.
import { mkdir, open, readdir, rename, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { cleanText } from '@pgvip/shared/text';
import type { Clock } from './clock.js';
import type { PgvipEvent } from './events.js';

export interface HistoryOptions {
  /** Directory of the log files (created when missing). */
  readonly dir: string;
  /** Rotate before the current file would exceed this size. */
  readonly maxFileBytes?: number;
  /** How many rotated files to keep besides the current one. */
  readonly keepFiles?: number;
  /** Clusters whose latest events are loaded into memory at start (for the cluster views). */
  readonly clusters: readonly string[];
  readonly clock: Clock;
  readonly log: Logger;
}

export type NewEvent = Omit<PgvipEvent, 'id' | 'at'>;

export interface HistoryQuery {
  readonly cluster?: string;
  readonly limit: number;
  /** Only events with an id below this (the previous page's last id). */
  readonly before?: number;
}

export interface History {
  /** Records an event: returns it with its id and time at once; the write happens in the background. */
  append(event: NewEvent): PgvipEvent;
  /** The latest `n` events of a cluster, newest first, from memory. */
  recent(cluster: string, n: number): PgvipEvent[];
  /** Events newest first, from disk (after everything appended so far is written). */
  read(query: HistoryQuery): Promise<PgvipEvent[]>;
  /** Resolves once every event appended so far is on disk (or failed to get there and was logged). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export const defaultMaxFileBytes = 4 * 1024 * 1024;
export const defaultKeepFiles = 4;
/** How many events per cluster stay in memory: the cluster view shows the latest 10. */
const RECENT_PER_CLUSTER = 20;
/** Lines waiting for a disk that keeps failing; beyond this the oldest are dropped (and logged). */
const MAX_PENDING_LINES = 10_000;
const CURRENT = 'events.jsonl';

function fileName(index: number): string {
  return index === 0 ? CURRENT : `events.${index}.jsonl`;
}

export async function openHistory(options: HistoryOptions): Promise<History> {
  const maxFileBytes = options.maxFileBytes ?? defaultMaxFileBytes;
  const keepFiles = options.keepFiles ?? defaultKeepFiles;
  const { dir, clock, log } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = (): string[] => Array.from({ length: keepFiles + 1 }, (_, i) => path.join(dir, fileName(i)));

  // Start-up scan, newest first: the highest id, and the latest events of each cluster.
  let lastId = 0;
  const recentByCluster = new Map<string, PgvipEvent[]>(options.clusters.map((c) => [c, []]));
  const wanted = new Set(options.clusters);
  scan: for (const file of files()) {
    for await (const event of eventsNewestFirst(file, log)) {
      lastId = Math.max(lastId, event.id);
      const list = recentByCluster.get(event.cluster);
      if (list !== undefined && list.length < RECENT_PER_CLUSTER) {
        list.unshift(event);
        if (list.length === RECENT_PER_CLUSTER) wanted.delete(event.cluster);
      }
      if (wanted.size === 0 && lastId > 0) break scan;
    }
  }

  const currentPath = path.join(dir, CURRENT);
  let handle: FileHandle = await open(currentPath, 'a', 0o600);
  let size = (await handle.stat()).size;
  // A crash in the middle of a write leaves a torn line without its newline; start on a fresh line
  // so the next record is not glued to the fragment.
  if (size > 0) {
    const last = Buffer.alloc(1);
    const probe = await open(currentPath, 'r');
    try {
      await probe.read(last, 0, 1, size - 1);
    } finally {
      await probe.close();
    }
    if (last[0] !== 0x0a) {
      await handle.write('\n');
      size += 1;
    }
  }

  let pending: string[] = [];
  let flushScheduled = false;
  // Writes, rotations and reads run one at a time, in order, on this chain.
  let chain: Promise<void> = Promise.resolve();
  let closed = false;

  function enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = chain.then(job);
    chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async function rotate(): Promise<void> {
    await handle.close();
    const all = files();
    // Shift every file one step older; renaming onto the oldest replaces (drops) it.
    for (let i = keepFiles; i >= 1; i--) {
      const from = all[i - 1];
      const to = all[i];
      if (from === undefined || to === undefined) continue;
      try {
        await rename(from, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    await syncDir(dir);
    handle = await open(currentPath, 'a', 0o600);
    size = 0;
    log.info({ file: currentPath, keepFiles }, 'history rotated');
  }

  async function writeBatch(): Promise<void> {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const data = Buffer.from(batch.join(''), 'utf8');
    try {
      if (size > 0 && size + data.length > maxFileBytes) await rotate();
      await handle.write(data);
      await handle.datasync();
      size += data.length;
    } catch (e) {
      // History must never stop the witness; keep the lines for the next attempt, within bounds.
      pending = batch.concat(pending);
      const dropped = pending.length - MAX_PENDING_LINES;
      if (dropped > 0) pending = pending.slice(dropped);
      log.error({ err: e, pendingLines: pending.length, droppedLines: Math.max(0, dropped) }, 'cannot write the event history; will retry with the next event');
    }
  }

  function scheduleFlush(): void {
    if (flushScheduled || closed) return;
    flushScheduled = true;
    // One batch per event-loop turn: events of the same step share one fdatasync.
    setImmediate(() => {
      flushScheduled = false;
      void enqueue(writeBatch);
    });
  }

  async function readFromDisk(query: HistoryQuery): Promise<PgvipEvent[]> {
    const out: PgvipEvent[] = [];
    if (query.limit <= 0) return out;
    for (const file of files()) {
      for await (const event of eventsNewestFirst(file, log)) {
        if (query.before !== undefined && event.id >= query.before) continue;
        if (query.cluster !== undefined && event.cluster !== query.cluster) continue;
        out.push(event);
        if (out.length >= query.limit) return out;
      }
    }
    return out;
  }

  return {
    append(e) {
      const event: PgvipEvent = plainText({
        id: ++lastId,
        at: new Date(clock.wallMs()).toISOString(),
        cluster: e.cluster,
        type: e.type,
        node: e.node,
        term: e.term,
        detail: e.detail,
        ...(e.operator === undefined ? {} : { operator: e.operator, operatorClaimed: true as const }),
      });
      let list = recentByCluster.get(event.cluster);
      if (list === undefined) recentByCluster.set(event.cluster, (list = []));
      list.push(event);
      if (list.length > RECENT_PER_CLUSTER) list.shift();
      pending.push(`${JSON.stringify(event)}\n`);
      scheduleFlush();
      return event;
    },
    recent(cluster, n) {
      const list = recentByCluster.get(cluster) ?? [];
      return list.slice(-n).reverse();
    },
    read(query) {
      return enqueue(async () => {
        await writeBatch();
        return readFromDisk(query);
      });
    },
    flush() {
      return enqueue(writeBatch);
    },
    async close() {
      if (closed) return;
      closed = true;
      await enqueue(writeBatch);
      await enqueue(() => handle.close());
    },
  };
}

/** Longest detail kept; a detail quotes at most 500 characters of a hook's stderr or a webhook's answer. */
export const detailMaxChars = 2000;

/**
 * The event with every text field as plain text (cleanText): details quote webhook answers and
 * hooks' stderr, and the operator name is what a client claimed, so any of them may hold terminal
 * escape sequences meant for the screen of whoever reads the history.
 */
function plainText(e: PgvipEvent): PgvipEvent {
  return {
    ...e,
    type: cleanText(e.type, { maxChars: 100 }),
    node: e.node === null ? null : cleanText(e.node, { maxChars: 100 }),
    detail: cleanText(e.detail, { maxChars: detailMaxChars }),
    ...(e.operator === undefined ? {} : { operator: cleanText(e.operator, { maxChars: 200 }) }),
  };
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function isEvent(v: unknown): v is PgvipEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(e.id) &&
    typeof e.at === 'string' &&
    typeof e.cluster === 'string' &&
    typeof e.type === 'string' &&
    (e.node === null || typeof e.node === 'string') &&
    typeof e.term === 'number' &&
    typeof e.detail === 'string'
  );
}

const CHUNK_BYTES = 64 * 1024;

/**
 * The events of one file, last line first, read backwards in chunks so that a query for the latest
 * few events costs a few kilobytes however large the file is. Lines that do not parse (a line torn
 * by a crash) are skipped.
 */
async function* eventsNewestFirst(file: string, log: Logger): AsyncGenerator<PgvipEvent> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    let pos = (await fh.stat()).size;
    let carry = Buffer.alloc(0);
    while (pos > 0) {
      const start = Math.max(0, pos - CHUNK_BYTES);
      const chunk = Buffer.alloc(pos - start);
      await fh.read(chunk, 0, chunk.length, start);
      pos = start;
      let buf = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk;
      // Everything after the last newline in `buf` is a complete line (or the file's torn tail).
      let end = buf.length;
      for (let nl = buf.lastIndexOf(0x0a, end - 1); nl >= 0; nl = end > 0 ? buf.lastIndexOf(0x0a, end - 1) : -1) {
        const line = buf.subarray(nl + 1, end);
        end = nl;
        const event = parseLine(line, file, log);
        if (event !== null) yield event;
        if (end === 0) break;
      }
      buf = buf.subarray(0, end);
      carry = Buffer.from(buf);
    }
    if (carry.length > 0) {
      const event = parseLine(carry, file, log);
      if (event !== null) yield event;
    }
  } finally {
    await fh.close();
  }
}

function parseLine(line: Buffer, file: string, log: Logger): PgvipEvent | null {
  if (line.length === 0) return null;
  try {
    const v: unknown = JSON.parse(line.toString('utf8'));
    if (isEvent(v)) return v;
  } catch {
    // fall through: reported below
  }
  log.warn({ file, bytes: line.length }, 'skipping an unreadable history line (torn by a crash?)');
  return null;
}

/** Sizes of the history files, for tests and diagnostics. */
export async function historyFiles(dir: string): Promise<{ name: string; bytes: number }[]> {
  const names = (await readdir(dir)).filter((n) => /^events(\.\d+)?\.jsonl$/.test(n)).sort();
  return Promise.all(names.map(async (name) => ({ name, bytes: (await stat(path.join(dir, name))).size })));
}

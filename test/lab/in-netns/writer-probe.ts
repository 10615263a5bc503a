// Runs INSIDE the client namespace (started by ../writer.ts): an application writing through the VIP.
//
// Every `intervalMs` it sends one INSERT with a fresh id on a free connection ("lane"). Lanes are
// independent, so while one hangs on a stalled or vanished server the others keep trying: writes
// overlap in time, which is what lets the checkers see two servers acknowledging at once.
//
// Each write ends as exactly one of:
//   ok       the server acknowledged the commit (the row exists wherever that server's WAL went);
//   failed   it certainly did not commit: no connection, or an error raised before commit
//            (read-only transaction, server starting up or shutting down at connect);
//   unknown  the outcome is not known: the connection broke or the deadline passed after the
//            statement was sent (it may have committed, e.g. while waiting for a sync standby).
import pg from 'pg';
import { serveRpc } from '../ipc.js';
import type { WriteRecord, WriterConfig } from '../writer.js';

const config = JSON.parse(process.argv[2]!) as WriterConfig;

interface Lane {
  readonly index: number;
  client: pg.Client | null;
  busy: boolean;
}

const lanes: Lane[] = Array.from({ length: config.lanes }, (_, index) => ({ index, client: null, busy: false }));
let nextId = config.firstId;
let pending: WriteRecord[] = [];
let skipped = 0;

/** SQLSTATEs that mean "refused before any change": the write certainly did not happen. */
const refusedBeforeCommit = new Set(['25006', '57P03', '53300', '28000', '3D000']);

function drop(lane: Lane): void {
  const c = lane.client;
  lane.client = null;
  if (c === null) return;
  // Destroy instead of end(): a server that stopped answering would never complete a polite close.
  (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

async function write(lane: Lane): Promise<void> {
  const id = nextId++;
  const sentAt = Date.now();
  let phase: 'connect' | 'query' = 'connect';
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${config.writeTimeoutMs} ms`)), config.writeTimeoutMs);
  });
  try {
    if (lane.client === null) {
      const c = new pg.Client({ host: config.vip, port: config.port, user: config.user, database: 'postgres', connectionTimeoutMillis: config.connectTimeoutMs, application_name: `lab-writer-${lane.index}` });
      c.on('error', () => undefined); // a broken connection is noticed by the next query
      lane.client = c;
      await Promise.race([c.connect(), deadline]);
    }
    phase = 'query';
    const r = await Promise.race([
      lane.client.query<{ server: string; timeline: number }>(
        // server: the column's default names the node (cluster_name, or lab.node where a tool owns
        // cluster_name: test/lab/anchors/system.ts).
        'INSERT INTO lab.writes (id, lane) VALUES ($1, $2) RETURNING server, ' +
          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline",
        [id, lane.index],
      ),
      deadline,
    ]);
    const row = r.rows[0]!;
    pending.push({ id, lane: lane.index, sentAt, doneAt: Date.now(), outcome: 'ok', server: row.server, timeline: Number(row.timeline) });
  } catch (err) {
    const e = err as Error & { code?: string };
    const certain = phase === 'connect' || (e.code !== undefined && refusedBeforeCommit.has(e.code));
    pending.push({ id, lane: lane.index, sentAt, doneAt: Date.now(), outcome: certain ? 'failed' : 'unknown', error: `${phase}: ${e.code ? `${e.code} ` : ''}${e.message}`.slice(0, 200) });
    drop(lane);
  } finally {
    clearTimeout(timer);
    lane.busy = false;
  }
}

// While writes hang (the VIP leads to a frozen or vanished server), every attempt waits out its
// timeout. Started every intervalMs, the attempts would take every lane within a few ticks, time out
// together and try again together: the probe would look once per timeout, and a failover would seem
// to end at the next whole timeout (writes back "4033 ms" with the new primary writable at 3.5 s).
// So while two or more writes are outstanding a new one starts only every timeout/lanes: a lane frees
// up, and a write is tried, that often. A server that refuses at once (no hang) is tried every tick.
const longestWaitMs = Math.max(config.connectTimeoutMs, config.writeTimeoutMs);
const hangingSpacingMs = Math.max(config.intervalMs, Math.ceil(longestWaitMs / config.lanes));
let lastStartAt = 0;

const ticker = setInterval(() => {
  const outstanding = lanes.filter((l) => l.busy).length;
  if (outstanding >= 2 && Date.now() - lastStartAt < hangingSpacingMs) return;
  const lane = lanes.find((l) => !l.busy);
  if (lane === undefined) {
    skipped += 1;
    return;
  }
  lane.busy = true;
  lastStartAt = Date.now();
  void write(lane);
}, config.intervalMs);

const flusher = setInterval(() => {
  if (pending.length === 0) return;
  const batch = pending;
  pending = [];
  emit({ type: 'records', records: batch, skipped });
}, 100);

const { emit } = serveRpc({}, async () => {
  clearInterval(ticker);
  // Let in-flight writes end (each is bounded by writeTimeoutMs), then hand over the last records.
  const until = Date.now() + config.writeTimeoutMs + 500;
  while (lanes.some((l) => l.busy) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  clearInterval(flusher);
  if (pending.length > 0) emit({ type: 'records', records: pending, skipped });
  pending = [];
  for (const l of lanes) drop(l);
});

emit({ type: 'ready' });

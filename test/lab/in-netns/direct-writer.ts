// Runs INSIDE the client namespace (started by ../direct-writer.ts): a client that bypasses the VIP
// and writes to each database server at its own address every `intervalMs`, committing with
// synchronous_commit = local (acknowledged once on the server's own disk, as in async mode). This
// is what any client that connects to a node directly gets, and the one place where a primary that
// was frozen past its lease could acknowledge writes the failover then discards.
//
// One connection per server, one write at a time on it, and no client-side deadline on the write:
// a write sent to a frozen server waits for the thaw and then reports what the server did with it.
// Each acknowledged write returns the server's own clock at the INSERT (clock_timestamp()) and the
// commit guard's deadline as that server saw it in the same statement.
import pg from 'pg';
import { serveRpc } from '../ipc.js';
import type { DirectWrite, DirectWriterConfig } from '../direct-writer.js';

const config = JSON.parse(process.argv[2]!) as DirectWriterConfig;
let nextId = config.firstId;
let pending: DirectWrite[] = [];
let running = true;

// Without the commit guard installed (an anchor's servers), the deadline is NULL.
const deadline = config.guardDeadline === false
  ? 'NULL::float8'
  : '(SELECT (extract(epoch FROM deadline_at) * 1000)::float8 FROM pgvip_guard_status())';
const sql =
  'INSERT INTO lab.direct_writes (id, target) VALUES ($1, $2) RETURNING current_setting(\'cluster_name\') AS server, ' +
  "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline, " +
  "(extract(epoch FROM written_at) * 1000)::float8 AS written_at_ms, " +
  `${deadline} AS deadline_ms`;

async function loop(target: { readonly node: string; readonly address: string }): Promise<void> {
  let client: pg.Client | null = null;
  while (running) {
    const startedAt = Date.now();
    const id = nextId++;
    try {
      if (client === null) {
        const c = new pg.Client({ host: target.address, port: config.port, user: config.user, database: 'postgres', connectionTimeoutMillis: config.connectTimeoutMs, application_name: 'lab-direct-writer' });
        c.on('error', () => undefined);
        client = c;
        await c.connect();
        await c.query('SET synchronous_commit = local');
      }
      const r = await client.query<{
        server: string;
        timeline: number;
        written_at_ms: number;
        deadline_ms: number | null;
      }>(sql, [id, target.node]);
      const row = r.rows[0]!;
      pending.push({ id, target: target.node, sentAt: startedAt, doneAt: Date.now(), outcome: 'ok', server: row.server, timeline: Number(row.timeline), writtenAtMs: row.written_at_ms, deadlineMs: row.deadline_ms });
    } catch (err) {
      const e = err as Error & { code?: string };
      pending.push({ id, target: target.node, sentAt: startedAt, doneAt: Date.now(), outcome: 'failed', error: `${e.code ? `${e.code} ` : ''}${e.message}`.slice(0, 200) });
      const c = client;
      client = null;
      (c as unknown as { connection?: { stream?: { destroy(): void } } } | null)?.connection?.stream?.destroy();
    }
    await new Promise((r) => setTimeout(r, Math.max(0, startedAt + config.intervalMs - Date.now())));
  }
  client?.end().catch(() => undefined);
}

const loops = config.targets.map((t) => loop(t));

const flusher = setInterval(() => {
  if (pending.length === 0) return;
  const batch = pending;
  pending = [];
  emit({ type: 'records', records: batch });
}, 100);

const { emit } = serveRpc({}, async () => {
  running = false;
  // A write still waiting on a frozen server is not waited for: the controller thaws first.
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 3_000))]);
  clearInterval(flusher);
  if (pending.length > 0) emit({ type: 'records', records: pending });
  pending = [];
});

emit({ type: 'ready' });

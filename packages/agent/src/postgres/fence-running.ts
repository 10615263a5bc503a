// The read-only fence of a running server: the pg_hba.conf block and default_transaction_read_only
// loaded in one reload, then every client session ended (docs/design.md, "Fencing").
import { PgvipError } from '@pgvip/shared';
import { setHbaFence } from './hba-fence.js';
import { reloadAndWait } from './server-config.js';
import { describeError } from './server-queries.js';
import { pollInSession, type SqlSession } from './sql-session.js';
import { processExists, terminateUnlistedBackends } from './unlisted-backends.js';

export interface FenceTargets {
  /** The server's hba_file setting. */
  readonly hbaFile: string;
  /** Roles the fence refuses: every role that can log in, except the agent's own (session_user). */
  readonly roles: readonly string[];
}

export async function readFenceTargets(s: SqlSession): Promise<FenceTargets> {
  const [row] = await s.query<{ hba_file: string; roles: string[] }>(
    "SELECT current_setting('hba_file') AS hba_file, array(SELECT rolname::text FROM pg_roles " +
      'WHERE rolcanlogin AND rolname <> session_user ORDER BY 1) AS roles',
  );
  if (!row) throw new PgvipError('PGVIP_PG_QUERY_FAILED', 'reading hba_file and the login roles returned no row');
  return { hbaFile: row.hba_file, roles: row.roles };
}

/**
 * The read-only fence on a running server; returns what it fenced against and how many client
 * sessions it ended. The order matters: the pg_hba.conf block and read-only are loaded first (one
 * reload), so a client cut off below can neither log in again nor find a writable default; then every
 * client session goes, including those still logging in under the old rules. Walsenders and background
 * processes stay: a standby keeps streaming (it can catch up to the final LSN of a switchover), caches
 * stay warm.
 */
export async function fenceRunningServer(
  s: SqlSession,
  dataDir: string,
  onTargets: (targets: FenceTargets) => void,
): Promise<number> {
  const targets = await readFenceTargets(s);
  onTargets(targets);
  // The file's fsync and ALTER SYSTEM's overlap; one reload then loads both. reloadAndWait returns
  // once the postmaster has reloaded, so no session can log in or start read-write after this.
  const hbaWritten = setHbaFence(targets.hbaFile, targets.roles);
  hbaWritten.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
  await s.query("ALTER SYSTEM SET default_transaction_read_only = 'on'");
  await hbaWritten;
  await reloadAndWait(s, 2);
  const terminated = await terminateClientBackends(s, dataDir);
  // A pg_hba.conf with an error anywhere is not reloaded at all, so the block is not in force: a
  // failed fence (retried, and the lease is not released early) says so rather than a false success.
  const [broken] = await s.query<{ line_number: number; error: string }>(
    'SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL LIMIT 1',
  );
  if (broken) {
    throw new PgvipError(
      'PGVIP_PG_FENCE_FAILED',
      `read-only is set and ${terminated} client sessions ended, but ${targets.hbaFile} line ${broken.line_number} ` +
        `has an error (${broken.error}), so the server keeps its previous rules and clients may log in again: fix that line`,
    );
  }
  return terminated;
}

/**
 * Ends every client session but ours and waits until they have exited; returns how many. Only client
 * backends go (walsenders, autovacuum and background workers stay), plus the server processes not
 * listed yet, which are clients still logging in (see unlisted-backends.ts).
 */
async function terminateClientBackends(s: SqlSession, dataDir: string): Promise<number> {
  // OFFSET 0 keeps the filter inside: pg_terminate_backend must only ever see other client backends.
  const [row] = await s.query<{ pids: number[]; listed: number[]; own: number }>(
    `SELECT (SELECT coalesce(array_agg(pid), '{}')
               FROM (SELECT pid FROM pg_stat_activity
                      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() OFFSET 0) AS others
              WHERE pg_terminate_backend(pid)) AS pids,
            array(SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL) AS listed,
            pg_backend_pid() AS own`,
  );
  const pids = row?.pids ?? [];
  const unlisted = row ? await terminateUnlistedBackends(dataDir, row.own, new Set(row.listed)) : [];
  if (pids.length + unlisted.length > 0) {
    try {
      await pollInSession(s, 'terminated backends to exit', async () => {
        const [left] = await s.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
          [pids],
        );
        return left?.n === 0 && !unlisted.some(processExists) ? true : undefined;
      }, 2);
    } catch (err) {
      throw new PgvipError(
        'PGVIP_PG_FENCE_FAILED',
        `read-only is set but client backends did not exit: ${describeError(err)}`,
        { cause: err },
      );
    }
  }
  return pids.length + unlisted.length;
}

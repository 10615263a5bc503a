// Changing server settings on a running server: ALTER SYSTEM, then a reload we wait for.
//
// pg_reload_conf() only signals the postmaster; each backend re-reads the files at its next idle
// moment. Waiting until our own backend's pg_conf_load_time() moves proves the postmaster has
// reloaded (it signals backends after itself), so every backend started from then on, and every
// backend at its next statement, uses the new values. Fencing depends on that.
import { pollInSession, sqlLiteral, type SqlSession } from './sql-session.js';

/** ALTER SYSTEM SET (string value) or RESET (null) for each entry, then reloadAndWait. */
export async function alterSystem(
  session: SqlSession,
  changes: Readonly<Record<string, string | null>>,
): Promise<void> {
  for (const [name, value] of Object.entries(changes)) {
    await session.query(value === null ? `ALTER SYSTEM RESET ${name}` : `ALTER SYSTEM SET ${name} = ${sqlLiteral(value)}`);
  }
  await reloadAndWait(session);
}

/** pg_reload_conf(), then polls our backend's load time every intervalMs until it moves. */
export async function reloadAndWait(session: SqlSession, intervalMs = 10): Promise<void> {
  const loadTime = async (): Promise<string> => (await session.query<{ t: string }>('SELECT pg_conf_load_time()::text AS t'))[0]?.t ?? '';
  const before = await loadTime();
  await session.query('SELECT pg_reload_conf()');
  await pollInSession(session, 'the configuration reload', async () => ((await loadTime()) !== before ? true : undefined), intervalMs);
}

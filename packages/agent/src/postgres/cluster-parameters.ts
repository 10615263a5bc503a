// postgresql.parameters (the cluster config): brought to their values on this server with ALTER
// SYSTEM and one reload, on a primary and a standby alike (a promoted standby must have them). The
// config has checked names and values already (config/postgres-parameters-schema.ts); PostgreSQL
// checks each value again (ALTER SYSTEM refuses one it cannot use), so one bad value is reported by
// name and the others are applied. What is compared is the value in postgresql.auto.conf, not the
// running one: a restart-only setting already written waits for the restart (pending_restart) and
// is not written again.
import type { ResolvedPostgresConfig } from './config.js';
import { alterSystem } from './server-config.js';
import { describeError } from './server-queries.js';
import { sqlLiteral, withSession, type SqlSession } from './sql-session.js';

export interface ParametersReport {
  /** Names whose value this call wrote. */
  readonly changed: readonly string[];
  /** Names PostgreSQL refused, with its words. */
  readonly failed: readonly { readonly name: string; readonly error: string }[];
}

/** applyClusterParameters in a session of its own on the server `config` names (the agent's start). */
export function applyClusterParametersTo(
  config: ResolvedPostgresConfig,
  parameters: Readonly<Record<string, string>>,
): Promise<ParametersReport> {
  const bounds = { timeoutMs: config.timeouts.queryMs * 2, connectTimeoutMs: config.timeouts.connectMs };
  return withSession(config, bounds, (s) => applyClusterParameters(s, parameters));
}

export async function applyClusterParameters(
  s: SqlSession,
  parameters: Readonly<Record<string, string>>,
): Promise<ParametersReport> {
  const names = Object.keys(parameters);
  if (names.length === 0) return { changed: [], failed: [] };
  const rows = await s.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_file_settings WHERE sourcefile = current_setting('data_directory') || '/postgresql.auto.conf' AND name = ANY($1::text[])",
    [names],
  );
  const written = new Map(rows.map((r) => [r.name, r.setting]));
  const changed: string[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    if (written.get(name) === value) continue;
    try {
      // The name is an identifier the config held to [a-z0-9_.]; the value is a quoted literal.
      await s.query(`ALTER SYSTEM SET ${name} = ${sqlLiteral(value)}`);
      changed.push(name);
    } catch (e) {
      failed.push({ name, error: describeError(e) });
    }
  }
  if (changed.length > 0) await alterSystem(s, {}); // the reload, once for all
  return { changed, failed };
}

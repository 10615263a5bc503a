// The server settings pgvip owns, each with the reason it cannot be left to chance. They are set with
// ALTER SYSTEM on both nodes (a standby keeps them after promotion, and pg_basebackup copies them).
// Deliberately absent: wal_level and max_wal_senders (the defaults already allow streaming and an
// operator may need more, e.g. logical), timeouts like wal_sender_timeout (site policy).
import { alterSystem } from './server-config.js';
import type { SqlSession } from './sql-session.js';

export interface ManagedSetting {
  readonly name: string;
  readonly value: string;
  readonly why: string;
  /** Skip the setting when this returns true for the server's current settings. */
  readonly notNeededWhen?: (current: ReadonlyMap<string, string>) => boolean;
}

export const managedSettings: readonly ManagedSetting[] = [
  {
    name: 'wal_retrieve_retry_interval',
    value: '200ms',
    why: 'after the WAL receiver stops, the startup process retries its WAL sources at this interval; the default 5 s delays promotion and following a new primary',
  },
  {
    name: 'wal_receiver_status_interval',
    value: '1s',
    why: "the primary's view of a standby's flush and replay positions (pg_stat_replication) is at most this old; the default 10 s hides lag",
  },
  {
    name: 'hot_standby',
    value: 'on',
    why: 'the agent observes a standby with SQL; without hot standby a standby accepts no connections',
  },
  {
    name: 'recovery_target_timeline',
    value: 'latest',
    why: 'a rejoined standby must follow the new primary onto its timeline',
  },
  {
    name: 'full_page_writes',
    value: 'on',
    why: 'pg_rewind refuses a source server without full-page writes',
  },
  {
    name: 'wal_log_hints',
    value: 'on',
    why: 'pg_rewind needs hint-bit changes in WAL; data checksums imply it',
    notNeededWhen: (current) => current.get('data_checksums') === 'on',
  },
];

/**
 * Brings the managed settings to their values with ALTER SYSTEM + reload; returns what changed and what
 * waits for a restart.
 */
export async function applyManagedSettings(
  session: SqlSession,
): Promise<{ changed: string[]; pendingRestart: string[] }> {
  const names = [...managedSettings.map((s) => s.name), 'data_checksums'];
  const rows = await session.query<{ name: string; value: string; pending_restart: boolean }>(
    'SELECT s.name, current_setting(s.name) AS value, s.pending_restart FROM pg_settings s WHERE s.name = ANY($1::text[])',
    [names],
  );
  const current = new Map(rows.map((r) => [r.name, r.value]));
  // A restart-only setting already changed in the files still shows its old value until the restart.
  const alreadyPending = new Set(rows.filter((r) => r.pending_restart).map((r) => r.name));
  const changes: Record<string, string> = {};
  for (const setting of managedSettings) {
    if (
      setting.notNeededWhen?.(current) ||
      current.get(setting.name) === setting.value ||
      alreadyPending.has(setting.name)
    ) continue;
    changes[setting.name] = setting.value;
  }
  const changed = Object.keys(changes);
  // After the reload, pg_settings.pending_restart says which changes wait for a restart.
  if (changed.length > 0) await alterSystem(session, changes);
  const pending = await session.query<{ name: string }>(
    'SELECT name FROM pg_settings WHERE pending_restart AND name = ANY($1::text[])',
    [managedSettings.map((s) => s.name)],
  );
  return { changed, pendingRestart: pending.map((r) => r.name).sort() };
}

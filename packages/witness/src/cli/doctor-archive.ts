// `pgvip doctor`'s WAL archiving check. Archiving must go on after a promotion: the new primary
// archives only if archive_mode and archive_command are set in its own configuration, which is not
// copied between the nodes when it lives outside the data directory (Debian's
// /etc/postgresql/15/main/postgresql.conf). So the check runs on every node, standbys included, and
// a standby without the settings fails even though it archives nothing today.
import type { AgentConfig } from '@pgvip/shared';
import type { Check } from './doctor.js';
import { psqlAsk } from './doctor-postgres.js';

const title = 'PostgreSQL WAL archiving';
const runbook = 'docs/runbook.md, "WAL archiving across a failover"';

interface ArchiveRow {
  readonly mode: string;
  readonly command: string;
  readonly library: string;
  readonly pendingRestart: boolean;
  readonly inRecovery: boolean;
  readonly failing: boolean;
  readonly lastFailed: string;
}

/**
 * The row of archiveSql. archive_command comes last and takes the rest of the line: it is a shell
 * command and may hold '|' itself (a pipeline), which would otherwise shift every field after it.
 */
function parseRow(out: string): ArchiveRow {
  const [mode = '', library = '', pending = '', recovery = '', failing = '', lastFailed = '', ...rest] =
    out.split('|');
  const command = rest.join('|');
  const yes = (v: string): boolean => v === 't';
  return {
    mode,
    command,
    library,
    pendingRestart: yes(pending),
    inRecovery: yes(recovery),
    failing: yes(failing),
    lastFailed,
  };
}

const archiveSql =
  "SELECT current_setting('archive_mode'), " +
  "coalesce(current_setting('archive_library', true), ''), " +
  "(SELECT bool_or(pending_restart) FROM pg_settings WHERE name IN ('archive_mode', 'archive_library')), " +
  'pg_is_in_recovery(), ' +
  '(SELECT coalesce(last_failed_time > coalesce(last_archived_time, \'-infinity\'), false) FROM pg_stat_archiver), ' +
  "(SELECT coalesce(last_failed_wal || ' at ' || last_failed_time, '') FROM pg_stat_archiver), " +
  "current_setting('archive_command')";

export async function archiveCheck(config: AgentConfig, timeoutMs: number): Promise<Check> {
  const pg = config.cluster.nodes.find((n) => n.id === config.self)!.postgres;
  const restoresFromArchive = config.rejoin.reseed.methods.includes('command');
  const ask = await psqlAsk(config, timeoutMs);
  if (typeof ask === 'string') return { status: 'note', title, detail: `could not check: ${ask}` };
  const answer = await ask(archiveSql);
  if (!answer.ok) {
    return {
      status: 'note',
      title,
      detail: `could not ask PostgreSQL at ${pg.host}:${pg.port}: ${answer.out.split('\n')[0] ?? ''}`,
      fix: 'run doctor where the agent runs, with PostgreSQL up, to check WAL archiving',
    };
  }
  const row = parseRow(answer.out);
  const fixOff =
    "set archive_mode = on and archive_command (e.g. 'pgbackrest --stanza=main archive-push %p') in postgresql.conf " +
    `on BOTH nodes, then restart PostgreSQL (${runbook})`;
  if (row.pendingRestart) {
    return {
      status: 'fail',
      title,
      detail: 'archive_mode/archive_library were changed but PostgreSQL was not restarted since: the new values are not in force yet',
      fix: 'restart PostgreSQL on this node (pgvip switchover first if it is the primary)',
    };
  }
  if (row.mode === 'off') {
    return restoresFromArchive
      ? {
          status: 'fail',
          title,
          detail: 'archive_mode is off, but rejoin.reseed.methods lists "command": a restore from backups needs the WAL archive to catch up',
          fix: fixOff,
        }
      : { status: 'note', title, detail: 'archive_mode is off: no WAL archive (no point-in-time recovery, no re-seed from backups)', fix: fixOff };
  }
  if (row.command === '' && row.library === '') {
    return {
      status: 'fail',
      title,
      detail: `archive_mode is ${row.mode} but archive_command and archive_library are empty: a primary keeps every WAL segment until one is set, and its disk fills`,
      fix: `set archive_command in postgresql.conf on both nodes and reload (${runbook})`,
    };
  }
  const how = row.library !== '' ? `archive_library ${row.library}` : `archive_command ${row.command}`;
  if (row.inRecovery) {
    const always = row.mode === 'always' ? ' (archive_mode = always: this standby archives too)' : '';
    return { status: 'ok', title, detail: `set on this standby${always}: after a promotion it archives with ${how}` };
  }
  if (row.failing) {
    return {
      status: 'fail',
      title,
      detail: `archiving fails: the last attempt failed (${row.lastFailed}) and none succeeded since; WAL piles up in pg_wal until it works`,
      fix: `run the archive_command by hand as postgres and read the server log (${runbook})`,
    };
  }
  return { status: 'ok', title, detail: `this primary archives with ${how}; the standby must have the same settings (run doctor there too)` };
}

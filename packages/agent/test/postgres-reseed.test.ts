// Goal: on real PostgreSQL 15, re-seeding a standby runs the configured methods in order — a restore
// command (here a script that copies a pg_basebackup directory and reads WAL from a local archive,
// as pgBackRest or WAL-G would) before pg_basebackup — and a method that fails, or exits 0 without
// leaving a data directory, is reported with its reason while the next method runs.
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { LocalPostgres } from '@pgvip/agent';
import { lookUpOsUser, runAsOsUser } from '../src/postgres/os-command.js';
import { expandPlaceholders } from '../src/postgres/reseed.js';
import { pgBinDir, startPgCluster, type PgCluster } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const restoreScript = path.resolve(import.meta.dirname, '../../../test/fixtures/reseed-from-backup.sh');

interface Backups {
  readonly backupDir: string;
  readonly archiveDir: string;
}

/** The primary archives its WAL into a directory, and a base backup of it is taken with pg_basebackup. */
async function archiveAndBackUp(cluster: PgCluster): Promise<Backups> {
  const postgres = await lookUpOsUser('postgres');
  const archiveDir = path.join(cluster.root, 'archive');
  mkdirSync(archiveDir, { mode: 0o700 });
  chownSync(archiveDir, postgres.uid, postgres.gid);
  const primary = new LocalPostgres(cluster.primary.agentConfig);
  await cluster.primary.psql("ALTER SYSTEM SET archive_mode = 'on'");
  await cluster.primary.psql(`ALTER SYSTEM SET archive_command = 'test ! -f ${archiveDir}/%f && cp %p ${archiveDir}/%f'`);
  await primary.stop('fast'); // archive_mode needs a restart
  await primary.start();
  const backupDir = path.join(cluster.root, 'backup');
  const r = await runAsOsUser(postgres, path.join(pgBinDir, 'pg_basebackup'), ['-D', backupDir, '-d', cluster.primary.conninfo, '-X', 'stream', '-c', 'fast', '--no-sync'], {
    timeoutMs: 60_000,
    cwd: cluster.root,
  });
  assert.equal(r.exitCode, 0, r.stderr);
  return { backupDir, archiveDir };
}

/** Rows written after the backup, in a WAL segment the archive has: only the archive or streaming can bring them. */
async function writeAfterBackup(cluster: PgCluster): Promise<void> {
  await cluster.primary.psql("CREATE TABLE after_backup (v text); INSERT INTO after_backup VALUES ('archived')");
  const segment = await cluster.primary.psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
  await cluster.primary.psql('SELECT pg_switch_wal()');
  await waitUntil(`segment ${segment} to be archived`, 15_000, async () =>
    (await cluster.primary.psql('SELECT last_archived_wal FROM pg_stat_archiver')) >= segment,
  );
}

test('Given a base backup and a WAL archive, When a standby is re-seeded with [command, basebackup], Then the command restores it and it streams from the primary', async (t) => {
  const cluster = await startPgCluster(t);
  const { backupDir, archiveDir } = await archiveAndBackUp(cluster);
  await writeAfterBackup(cluster);
  const standby = new LocalPostgres({
    ...cluster.standby.agentConfig,
    reseedMethods: [
      { kind: 'command', path: restoreScript, args: ['{dataDir}', backupDir, archiveDir], timeoutMs: 60_000 },
      { kind: 'basebackup' },
    ],
  });
  const dataDirInode = statSync(cluster.standby.dataDir).ino;

  const rejoined = await standby.rejoinAsStandby({ primary: cluster.primary.endpoint, reseed: true });

  assert.equal(rejoined.path, 'command', JSON.stringify(rejoined));
  assert.deepEqual(rejoined.reseedFailures, []);
  assert.equal(statSync(cluster.standby.dataDir).ino, dataDirInode, 'the data directory itself stays (it may be a mount point)');
  assert.match(readFileSync(cluster.standby.logFile, 'utf8'), /restored log file/, 'recovery read WAL from the archive');
  assert.equal(await cluster.standby.psql('SELECT v FROM after_backup'), 'archived');
  await cluster.primary.psql("INSERT INTO after_backup VALUES ('streamed')");
  await waitUntil('db-b to stream from db-a', 15_000, async () =>
    (await cluster.primary.psql(`SELECT state FROM pg_stat_replication WHERE application_name = 'db-b'`)) === 'streaming' &&
    (await cluster.standby.psql('SELECT count(*) FROM after_backup')) === '2',
  );
});

test('Given a command that fails and one that exits 0 without restoring, When a standby is re-seeded, Then each failure is reported and pg_basebackup does the work', async (t) => {
  const cluster = await startPgCluster(t);
  await cluster.primary.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('from-primary')");
  const failing = new LocalPostgres({
    ...cluster.standby.agentConfig,
    reseedMethods: [
      { kind: 'command', path: restoreScript, args: ['{dataDir}', '/nonexistent/backup', '/nonexistent/archive'], timeoutMs: 60_000 },
      { kind: 'basebackup' },
    ],
  });
  const rejoined = await failing.rejoinAsStandby({ primary: cluster.primary.endpoint, reseed: true });
  assert.equal(rejoined.path, 'base-backup');
  assert.equal(rejoined.reseedFailures.length, 1);
  assert.match(rejoined.reseedFailures[0] ?? '', /^command: .*reseed-from-backup\.sh exit 3: no base backup in \/nonexistent\/backup/);
  await waitUntil('db-b to have the row', 15_000, async () => (await cluster.standby.psql('SELECT v FROM t')) === 'from-primary');

  const silent = new LocalPostgres({
    ...cluster.standby.agentConfig,
    reseedMethods: [{ kind: 'command', path: '/bin/true', args: [], timeoutMs: 10_000 }],
  });
  await assert.rejects(silent.rejoinAsStandby({ primary: cluster.primary.endpoint, reseed: true }), (err) => {
    assert.ok(isPgvipError(err, 'PGVIP_PG_RESEED_COMMAND_FAILED'), String(err));
    assert.match(err.detail, /\/bin\/true exited 0 but left no PG_VERSION/);
    return true;
  });
});

test('Given no re-seed method, When pg_rewind cannot be used, Then the rejoin fails with PGVIP_PG_REWIND_FAILED and leaves the data directory', async (t) => {
  const cluster = await startPgCluster(t);
  const standby = new LocalPostgres({ ...cluster.standby.agentConfig, reseedMethods: [] });
  await assert.rejects(standby.rejoinAsStandby({ primary: cluster.primary.endpoint, reseed: true }), (err) => isPgvipError(err, 'PGVIP_PG_REWIND_FAILED'));
  assert.ok(statSync(path.join(cluster.standby.dataDir, 'PG_VERSION')).isFile());
});

test('Placeholders: each {name} is replaced inside an argument; an unknown one stays as written', () => {
  const values = { dataDir: '/var/lib/pg', primaryHost: '10.0.1.11' };
  assert.equal(expandPlaceholders('--pg1-path={dataDir}', values), '--pg1-path=/var/lib/pg');
  assert.equal(expandPlaceholders('{primaryHost}:{primaryHost}', values), '10.0.1.11:10.0.1.11');
  assert.equal(expandPlaceholders('{nope} {"json": 1}', values), '{nope} {"json": 1}');
});

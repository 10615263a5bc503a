// Goal: `pgvip doctor` says whether WAL archiving goes on after a failover, asked of a real
// PostgreSQL 15 on each node: off (a note, a failure when re-seeding restores from backups), set but
// waiting for a restart, failing, working on the primary, and set on a standby for its promotion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { archiveCheck } from '../src/cli/doctor-archive.js';
import { doctorConfigFor } from './doctor-helpers.js';
import { startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const skip = process.getuid?.() !== 0 ? 'needs root (real PostgreSQL as the postgres user)' : false;

const withReseedCommand = { file: 'rejoin: { reseed: { methods: [command, basebackup], command: { path: /usr/local/bin/restore } } }' };

async function restart(node: PgNode): Promise<void> {
  const { LocalPostgres } = await import('@pgvip/agent');
  const pg = new LocalPostgres(node.agentConfig);
  await pg.stop('fast');
  await pg.start();
}

test('Given archiving off, then set, failing and working, Then doctor says so on the primary and on the standby', { skip }, async (t) => {
  const cluster = await startPgCluster(t);
  const { primary, standby } = cluster;

  const off = await archiveCheck(doctorConfigFor(primary), 3_000);
  assert.equal(off.status, 'note', off.detail);
  assert.match(off.detail, /archive_mode is off/);
  const offWithRestore = await archiveCheck(doctorConfigFor(primary, withReseedCommand), 3_000);
  assert.equal(offWithRestore.status, 'fail');
  assert.match(offWithRestore.fix ?? '', /on BOTH nodes/);

  await primary.psql("ALTER SYSTEM SET archive_mode = 'on'");
  await primary.psql("ALTER SYSTEM SET archive_command = 'false'");
  await primary.psql('SELECT pg_reload_conf()');
  await waitUntil('archive_mode to wait for a restart', 5_000, async () =>
    (await primary.psql("SELECT pending_restart FROM pg_settings WHERE name = 'archive_mode'")) === 't',
  );
  const pending = await archiveCheck(doctorConfigFor(primary), 3_000);
  assert.equal(pending.status, 'fail');
  assert.match(pending.detail, /not restarted/);

  await restart(primary);
  await primary.psql('SELECT pg_switch_wal()');
  await primary.psql('CREATE TABLE wal_filler AS SELECT 1 AS x');
  await primary.psql('SELECT pg_switch_wal()');
  await waitUntil('an archiving attempt to fail', 15_000, async () =>
    (await primary.psql('SELECT failed_count > 0 FROM pg_stat_archiver')) === 't',
  );
  const failing = await archiveCheck(doctorConfigFor(primary), 3_000);
  assert.equal(failing.status, 'fail', failing.detail);
  assert.match(failing.detail, /archiving fails/);

  await primary.psql("ALTER SYSTEM SET archive_command = 'true'");
  await primary.psql('SELECT pg_reload_conf()');
  await waitUntil('a segment to be archived', 15_000, async () =>
    (await primary.psql('SELECT last_archived_time >= last_failed_time FROM pg_stat_archiver')) === 't',
  );
  const working = await archiveCheck(doctorConfigFor(primary), 3_000);
  assert.equal(working.status, 'ok', working.detail);
  assert.match(working.detail, /archives with archive_command true/);

  // The standby was copied before archiving was set up: it would not archive after a promotion.
  const standbyOff = await archiveCheck(doctorConfigFor(standby, withReseedCommand), 3_000);
  assert.equal(standbyOff.status, 'fail', standbyOff.detail);
  await standby.psql("ALTER SYSTEM SET archive_mode = 'on'");
  await standby.psql("ALTER SYSTEM SET archive_command = 'true'");
  await restart(standby);
  const standbyOn = await archiveCheck(doctorConfigFor(standby), 3_000);
  assert.equal(standbyOn.status, 'ok', standbyOn.detail);
  assert.match(standbyOn.detail, /after a promotion it archives/);

  // A '|' in archive_command (a shell pipeline) is text, not a field separator: it once shifted
  // every field after it, and this standby was reported as a primary whose archiving fails.
  const piped = 'gzip -c %p | cat > /dev/null';
  await standby.psql(`ALTER SYSTEM SET archive_command = '${piped}'`);
  await standby.psql('SELECT pg_reload_conf()');
  await waitUntil('the piped archive_command to be in force', 5_000, async () =>
    (await standby.psql('SHOW archive_command')) === piped,
  );
  const standbyPiped = await archiveCheck(doctorConfigFor(standby), 3_000);
  assert.equal(standbyPiped.status, 'ok', standbyPiped.detail);
  assert.ok(standbyPiped.detail.includes(`archive_command ${piped}`), standbyPiped.detail);
});

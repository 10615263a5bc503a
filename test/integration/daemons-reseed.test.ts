// Goal: the re-seed command method works end to end as an operator configures it: the agent file's
// rejoin.reseed block → the agent daemon → the rejoin after a failover, on real PostgreSQL 15. The
// old primary's data directory is damaged (pg_control gone) so pg_rewind cannot run; the command
// (test/fixtures/reseed-from-backup.sh, restoring a base backup as pgBackRest or WAL-G would) rebuilds
// it before pg_basebackup is tried, and the node streams from the new primary again. Real agent and
// witness daemons on loopback; only the VIP is the in-memory fake.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { lookUpOsUser, runAsOsUser } from '../../packages/agent/src/postgres/os-command.js';
import { pgBinDir, startPgCluster } from '../fixtures/pg-cluster.js';
import { startDaemons } from './daemons-on-pg.js';
import { until } from './helpers.js';

const restoreScript = path.resolve(import.meta.dirname, '../fixtures/reseed-from-backup.sh');

async function startCluster(t: TestContext) {
  const pgc = await startPgCluster(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-reseed-daemons-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const postgres = await lookUpOsUser('postgres');
  // The backup the command restores: taken from the standby (the new primary-to-be), so the restored
  // node follows it onto its new timeline by streaming; the WAL archive stays empty.
  const backupDir = path.join(pgc.root, 'backup');
  const archiveDir = path.join(pgc.root, 'archive');
  mkdirSync(archiveDir, { mode: 0o700 });
  chownSync(archiveDir, postgres.uid, postgres.gid);
  const backup = await runAsOsUser(postgres, path.join(pgBinDir, 'pg_basebackup'), [
    '-D', backupDir, '-d', pgc.standby.conninfo, '-X', 'stream', '-c', 'fast', '--no-sync',
  ], { timeoutMs: 60_000, cwd: pgc.root });
  assert.equal(backup.exitCode, 0, backup.stderr);

  // What an operator writes: the command first, pg_basebackup as the fallback.
  const rejoin = `rejoin:\n  reseed:\n    methods: [command, basebackup]\n` +
    `    command: { path: ${restoreScript}, args: ['{dataDir}', '${backupDir}', '${archiveDir}'], timeoutMs: 60000 }\n`;
  const { agents, cloud, lines, primaryCode, syncEligible } = await startDaemons(t, pgc, {
    name: 'pgvip-reseed-daemons', replication: 'replication: { slots: { enabled: false } }', agentExtra: rejoin,
  });
  return { pgc, agents, cloud, lines, primaryCode, syncEligible };
}

test('Given rejoin.reseed [command, basebackup] in the agent file, When the old primary cannot be rewound after a failover, Then the command rebuilds it and it streams from the new primary', { timeout: 240_000 }, async (t) => {
  const { pgc, cloud, lines, primaryCode, syncEligible } = await startCluster(t);
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200, 60_000);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  await pgc.primary.psql("CREATE TABLE before_failover (v text); INSERT INTO before_failover VALUES ('kept')");
  await until('db-b to replay it', async () => (await pgc.standby.psql("SELECT count(*) FROM pg_class WHERE relname = 'before_failover'")) === '1' || undefined);
  await until('db-b to be the eligible standby', async () => (await syncEligible()) === 'db-b', 30_000);

  // When db-a's PostgreSQL crashes and its data directory is damaged: no pg_control, so neither a
  // restart nor pg_rewind can use it.
  const postgres = await lookUpOsUser('postgres');
  const stop = await runAsOsUser(postgres, path.join(pgBinDir, 'pg_ctl'), ['stop', '-D', pgc.primary.dataDir, '-m', 'immediate', '-w'], { timeoutMs: 20_000, cwd: pgc.root });
  assert.equal(stop.exitCode, 0, stop.stderr);
  rmSync(path.join(pgc.primary.dataDir, 'global', 'pg_control'));

  // Then db-b becomes primary, and db-a rejoins through the configured command.
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 60_000);
  await until('the VIP on db-b', () => cloud.assignedTo === 'db-b');
  await pgc.standby.psql("INSERT INTO before_failover VALUES ('after')");
  const rejoined = await until('db-a\'s rejoin effect', () => lines.find((l) => /"daemon":"db-a"/.test(l) && /"effect":"rejoin"/.test(l) && /effect done/.test(l)), 120_000);
  assert.match(rejoined, /"detail":"command \(pg_rewind failed: .*\) in \d+ ms"/, rejoined);
  assert.ok(lines.some((l) => /"daemon":"db-a"/.test(l) && /"event":"reseed-fallback"/.test(l)), 'the fallback is an agent event');
  assert.match(readFileSync(path.join(pgc.primary.dataDir, 'postgresql.auto.conf'), 'utf8'), /restore_command = 'cp .*archive\/%f %p'/, 'the command restored the directory');
  await until('db-a to stream from db-b', async () => (await pgc.standby.psql("SELECT state FROM pg_stat_replication WHERE application_name = 'db-a'")) === 'streaming' || undefined, 60_000);
  await until('the row written after the failover on db-a', async () => (await pgc.primary.psql("SELECT string_agg(v, ',' ORDER BY v) FROM before_failover")) === 'after,kept' || undefined, 30_000);
});

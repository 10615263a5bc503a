// Goal (review-17b G4; docs/design.md, "More than one standby"): on real PostgreSQL 15, ANY k counts
// walsenders, not standbys. A standby that reconnects while its old walsender still streams (its link
// was cut; wal_sender_timeout has not ended the old one) has two walsenders under one application_name,
// and both count: ANY 2 (db-b, db-c) acknowledges a commit with db-c absent. Through its replication
// slot the second connection is refused while the first holds the slot, so the commit waits for a
// second standby. Hence the config refuses synchronousCount ≥ 2 without replication.slots.enabled
// (packages/shared/test/config-nodes.test.ts); this test is the premise on the real server, both ways.
// A second `pg_receivewal --synchronous` under the name db-b stands in for the second connection.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { pgBinDir, startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

/** A second replication connection named db-b that reports its flush (`--synchronous`), through `slot` if given. */
interface Receiver {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly stderr: () => string;
}

function secondWalsender(t: TestContext, primary: PgNode, slot: string | null): Receiver {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-dupwal-'));
  const args = ['-h', primary.host, '-p', String(primary.port), '-U', 'postgres', '-D', dir, '--synchronous', '-n', '--no-password'];
  if (slot !== null) args.push('--slot', slot);
  const child = spawn(path.join(pgBinDir, 'pg_receivewal'), args, { env: { ...process.env, PGAPPNAME: 'db-b' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  return { child, exited, stderr: () => err };
}

/** Whether an insert is acknowledged within `ms` (false: it waited for the synchronous standbys). */
async function acknowledgedWithin(primary: PgNode, ms: number): Promise<boolean> {
  try {
    await primary.psql('INSERT INTO w VALUES (1)', ms);
    return true;
  } catch {
    return false;
  }
}

const db_b_walsenders = "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'db-b' AND state = 'streaming'";

test('Given ANY 2 (db-b, db-c) with db-c absent, When db-b has a second walsender, Then PostgreSQL acknowledges on db-b alone without a slot, and waits when db-b streams through its slot', async (t) => {
  const cluster = await startPgCluster(t);
  const a = cluster.primary;
  await a.psql('CREATE TABLE w (x int)');
  await a.psql('ALTER SYSTEM SET synchronous_standby_names = \'ANY 2 ("db-b", "db-c")\'');
  await a.psql('SELECT pg_reload_conf()');
  // Unblock any commit left waiting before the servers stop.
  t.after(async () => {
    await a.psql('ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()').catch(() => undefined);
  });
  assert.equal(await acknowledgedWithin(a, 2_000), false, 'control: one walsender of db-b does not meet ANY 2');

  // Without a slot (what replication.slots.enabled: false runs): the second connection streams, and counts.
  const bare = secondWalsender(t, a, null);
  await waitUntil('two walsenders named db-b streaming', 15_000, async () => (await a.psql(db_b_walsenders)) === '2');
  assert.equal(await acknowledgedWithin(a, 5_000), true, 'PostgreSQL counted db-b twice toward ANY 2');
  bare.child.kill('SIGTERM');
  await bare.exited;
  await waitUntil('one walsender named db-b again', 15_000, async () => (await a.psql(db_b_walsenders)) === '1');

  // With the slot the agent keeps (slot-keeper: followSlot creates pgvip_db_b on the primary and names it).
  const b = new LocalPostgres(cluster.standby.agentConfig);
  t.after(() => b.close());
  await b.followSlot(a.endpoint, 'pgvip_db_b');
  await waitUntil('db-b streaming through its slot', 15_000, async () =>
    (await a.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgvip_db_b' AND active")) === '1'
    && (await a.psql(db_b_walsenders)) === '1');
  const slotted = secondWalsender(t, a, 'pgvip_db_b');
  const code = await slotted.exited;
  assert.notEqual(code, 0, 'the second connection through the slot is refused');
  assert.match(slotted.stderr(), /replication slot "pgvip_db_b" is active/);
  assert.equal(await a.psql(db_b_walsenders), '1');
  assert.equal(await acknowledgedWithin(a, 3_000), false, 'with the slot, db-b counts once: the commit waits for a second standby');
});

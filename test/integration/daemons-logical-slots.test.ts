// Goal: replication.logicalSlots.copy works end to end as an operator configures it, on real
// PostgreSQL 15 with wal_level = logical: the agent file → the agent daemons → the standby's slot
// keeper copies the primary's logical slot and keeps it at the consumer's confirmed position → the
// primary's PostgreSQL dies, the standby is promoted by the automatic failover → the consumer goes on
// reading from the new primary, missing nothing. Real agent and witness daemons on loopback; only the
// VIP is the in-memory fake.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { lookUpOsUser, runAsOsUser } from '../../packages/agent/src/postgres/os-command.js';
import { pgBinDir, startPgCluster, type PgNode } from '../fixtures/pg-cluster.js';
import { startDaemons } from './daemons-on-pg.js';
import { until } from './helpers.js';

async function startCluster(t: TestContext) {
  const pgc = await startPgCluster(t, { logical: true });
  // What an operator writes: copies of every logical slot (the physical slots are on by default).
  const { agents, lines, primaryCode, syncEligible } = await startDaemons(t, pgc, {
    name: 'pgvip-logical-daemons', replication: 'replication: { logicalSlots: { copy: true } }',
  });
  const metrics = async (n: string) => (await agents[n]!.app.inject({ url: '/metrics' })).body;
  return { pgc, lines, primaryCode, syncEligible, metrics };
}

/** What a test_decoding consumer receives from slot cdc: the inserted values, in order. */
async function consume(node: PgNode): Promise<number[]> {
  const out = await node.psql("SELECT data FROM pg_logical_slot_get_changes('cdc', NULL, NULL)");
  return [...out.matchAll(/table public\.t: INSERT: i\[integer\]:(\d+)/g)].map((m) => Number(m[1]));
}

const confirmed = (node: PgNode) => node.psql("SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = 'cdc'");

test('Given replication.logicalSlots.copy, When the primary fails, Then the consumer of a logical slot goes on on the new primary, missing nothing', { timeout: 240_000 }, async (t) => {
  const { pgc, lines, primaryCode, syncEligible, metrics } = await startCluster(t);
  const { primary, standby } = pgc;
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200, 60_000);
  await until('db-b to be the eligible standby', async () => (await syncEligible()) === 'db-b', 30_000);
  await until('hot_standby_feedback on db-b (a managed setting)', async () => (await standby.psql('SHOW hot_standby_feedback')) === 'on' || undefined);

  await primary.psql('CREATE TABLE t (i int PRIMARY KEY)');
  await primary.psql("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')");
  const received: number[] = [];
  for (const i of [1, 2]) await primary.psql(`INSERT INTO t VALUES (${i})`);
  received.push(...(await consume(primary)));

  // The standby's agent copies the slot (a restart of db-b), then keeps it at the consumer's position.
  await until('db-b\'s agent to copy cdc', () => lines.find((l) => /"daemon":"db-b"/.test(l) && /copied logical slots cdc from the primary/.test(l)), 60_000);
  // The decision loop may have seen db-b down during that restart and rejoined it (a pg_rewind with
  // nothing to rewind): the copy is still there afterwards.
  await until('the copy on db-b', async () => (await standby.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cdc'").catch(() => '0')) === '1' || undefined, 30_000);
  await until('db-b to be the eligible standby again', async () => (await syncEligible()) === 'db-b', 30_000);
  await primary.psql('INSERT INTO t VALUES (3)');
  received.push(...(await consume(primary)));
  assert.deepEqual(received, [1, 2, 3]);
  const consumerAt = await confirmed(primary);
  await until('the copy to reach the consumer\'s position', async () => (await confirmed(standby).catch(() => '')) === consumerAt || undefined, 30_000);
  // Ready for a failover: the primary keeps the copy's catalog rows, as db-b's agent reports.
  await until('db-b to report the copy kept', async () => /pgvip_agent_logical_slot_copied\{[^}]*slot="cdc"[^}]*\} 1/.test(await metrics('db-b')) || undefined, 30_000);
  await primary.psql('INSERT INTO t VALUES (4)'); // committed, not consumed before the failure

  // When db-a's PostgreSQL dies, db-b is promoted by the automatic failover.
  const postgres = await lookUpOsUser('postgres');
  const stop = await runAsOsUser(postgres, path.join(pgBinDir, 'pg_ctl'), ['stop', '-D', primary.dataDir, '-m', 'immediate', '-w'], { timeoutMs: 20_000, cwd: pgc.root });
  assert.equal(stop.exitCode, 0, stop.stderr);
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 60_000);

  // Then the consumer reads on from the new primary.
  const after = await consume(standby);
  await standby.psql('INSERT INTO t VALUES (5)');
  after.push(...(await consume(standby)));
  assert.deepEqual(after, [4, 5], 'it continues with the first change it had not confirmed');
  assert.deepEqual([...received, ...after], [1, 2, 3, 4, 5], 'nothing missed, nothing twice');
});

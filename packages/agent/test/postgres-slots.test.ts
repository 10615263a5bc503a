// Goal: on real PostgreSQL 15, the replication slots pgvip keeps do what they are for — the new
// primary holds WAL for the old one before it rejoins, a standby that was down while the primary
// recycled its WAL catches up through its slot (and cannot without one), and a standby whose slot was
// invalidated is re-seeded once rather than retrying for ever.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { bootAgent, defaultAgentSettings, defaultTimings, type AgentState } from '@pgvip/shared/core';
import { FakeVipCloud, FakeVipPort, LocalPostgres, slotNameFor, type PostgresPort } from '@pgvip/agent';
import { runEffect, type EffectPorts } from '../src/effects.js';
import { SlotKeeper } from '../src/slot-keeper.js';
import { startPgCluster, type PgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const slots = { 'db-a': slotNameFor('db-a'), 'db-b': slotNameFor('db-b') };

/** The primary keeps no WAL for anyone but its slots: no wal_keep_size, the smallest max_wal_size. */
async function keepNoSpareWal(node: PgNode): Promise<void> {
  for (const sql of ['ALTER SYSTEM SET wal_keep_size = 0', "ALTER SYSTEM SET max_wal_size = '32MB'", "ALTER SYSTEM SET min_wal_size = '32MB'"]) await node.psql(sql);
  await node.psql('SELECT pg_reload_conf()');
}

/**
 * Writes about `segments` WAL segments (16 MB each), switching files and checkpointing after each,
 * so old WAL is removed.
 */
async function churnWal(node: PgNode, segments: number): Promise<void> {
  await node.psql('CREATE TABLE IF NOT EXISTS filler (g int, pad text)');
  for (let i = 0; i < segments; i++) {
    await node.psql("INSERT INTO filler SELECT g, repeat('x', 400) FROM generate_series(1, 30000) g", 60_000);
    await node.psql('SELECT pg_switch_wal()');
    await node.psql('CHECKPOINT', 60_000);
  }
}

async function currentLsn(node: PgNode): Promise<string> {
  return node.psql('SELECT pg_current_wal_lsn()');
}

async function replayedTo(node: PgNode, lsn: string): Promise<boolean> {
  return (await node.psql(`SELECT coalesce(pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn, false)`).catch(() => 'f')) === 't';
}

function standbyOf(primary: string, self: string, peer: string): AgentState {
  const settings = defaultAgentSettings({ cluster: 'main', self, peer, witness: 'witness', timings: defaultTimings });
  const boot = bootAgent(settings, { term: 1, primaryOfTerm: primary }, 0);
  return {
    ...boot,
    pg: {
      running: true,
      inRecovery: true,
      writable: false,
      timeline: 1,
      lsn: 0n,
      replayLsn: 0n,
      streaming: true,
      syncStandby: null,
      standbyInSync: false,
    },
  };
}

function effectPorts(pg: PostgresPort, cluster: PgCluster, self: 'db-a' | 'db-b'): EffectPorts {
  const peer = self === 'db-a' ? 'db-b' : 'db-a';
  return {
    pg,
    vip: new FakeVipPort(new FakeVipCloud(), self),
    endpoints: { 'db-a': cluster.primary.endpoint, 'db-b': cluster.standby.endpoint },
    names: { 'db-a': 'db-a', 'db-b': 'db-b' },
    promoteWaitSeconds: 30,
    slots: { self: slots[self], peer: slots[peer] },
  };
}

async function slotRow(node: PgNode, name: string): Promise<string> {
  return node.psql(`SELECT (CASE WHEN active THEN 't' ELSE 'f' END) || '/' || coalesce(wal_status, '-') FROM pg_replication_slots WHERE slot_name = '${name}'`);
}

test('Given db-b promoted by the agent, Then it has a slot for db-a before db-a rejoins, and db-a then streams through it', async (t) => {
  const cluster = await startPgCluster(t);
  const a = new LocalPostgres(cluster.primary.agentConfig);
  const b = new LocalPostgres({ ...cluster.standby.agentConfig, maxSlotWalKeepSizeMb: 2048, peerSlotName: slots['db-a'] });
  t.after(() => {
    a.close();
    b.close();
  });
  // The bound on what a slot may keep is a managed setting, applied once; PostgreSQL 15 gets no
  // failover-slot setting (17+ only) and has no logical slot to lose.
  const first = await b.ensureManagedSettings();
  assert.ok(first.changed.includes('max_slot_wal_keep_size'));
  assert.ok(!first.changed.includes('sync_replication_slots'), first.changed.join());
  assert.deepEqual(first.logicalSlotsLostAtFailover, []);
  assert.equal(await cluster.standby.psql('SHOW max_slot_wal_keep_size'), '2GB');
  assert.ok(!(await b.ensureManagedSettings()).changed.includes('max_slot_wal_keep_size'));
  await a.fence('fast-stop'); // db-a is gone, as in a failover
  assert.ok((await runEffect(1, { kind: 'stop-wal-receiver' }, effectPorts(b, cluster, 'db-b'))).ok);
  const promoted = await runEffect(2, { kind: 'promote' }, effectPorts(b, cluster, 'db-b'));
  assert.ok(promoted.ok && /slot pgvip_db_a created for the peer/.test(promoted.detail), promoted.detail);

  // Before db-a rejoins: the new primary keeps WAL for it.
  assert.equal(await slotRow(cluster.standby, slots['db-a']), 'f/reserved');
  await cluster.standby.psql('CREATE TABLE after_failover AS SELECT 1 AS x');

  const rejoined = await runEffect(3, { kind: 'rejoin', primary: 'db-b' }, effectPorts(a, cluster, 'db-a'));
  assert.ok(rejoined.ok, rejoined.detail);
  await waitUntil('db-a to stream from db-b through pgvip_db_a', 30_000, async () =>
    (await cluster.standby.psql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'db-a' AND state = 'streaming'")) === '1' &&
    (await slotRow(cluster.standby, slots['db-a'])).startsWith('t/'),
  );
  assert.equal(await cluster.primary.psql('SHOW primary_slot_name'), slots['db-a']);
  await waitUntil('db-a to replay db-b\'s table', 30_000, async () => (await cluster.primary.psql("SELECT count(*) FROM pg_class WHERE relname = 'after_failover'")) === '1');
});

for (const withSlot of [true, false]) {
  test(`Given a standby ${withSlot ? 'with' : 'without'} a slot is down while the primary recycles its WAL, Then after its restart it ${withSlot ? 'catches up through the slot' : 'cannot catch up (the WAL it needs is gone)'}`, async (t) => {
    const cluster = await startPgCluster(t);
    const b = new LocalPostgres(cluster.standby.agentConfig);
    t.after(() => b.close());
    await keepNoSpareWal(cluster.primary);
    if (withSlot) {
      assert.deepEqual(await b.followSlot(cluster.primary.endpoint, slots['db-b']), { created: true, configured: true, walStatus: 'reserved' });
      await waitUntil('db-b to stream through its slot', 30_000, async () => (await slotRow(cluster.primary, slots['db-b'])).startsWith('t/'));
    }
    await b.stop('fast');
    await churnWal(cluster.primary, 5);
    const target = await currentLsn(cluster.primary);

    await b.start();
    if (withSlot) {
      await waitUntil('db-b to replay what the primary wrote meanwhile', 60_000, () => replayedTo(cluster.standby, target));
      return;
    }
    await waitUntil('db-b to report the WAL it needs removed', 30_000, async () => /requested WAL segment \S+ has already been removed/.test(readFileSync(cluster.standby.logFile, 'utf8')));
    assert.equal(await replayedTo(cluster.standby, target), false);
  });
}

test('Given the primary invalidated db-b\'s slot (past max_slot_wal_keep_size), Then db-b\'s slot keeper re-seeds it once and it streams through a fresh slot', async (t) => {
  const cluster = await startPgCluster(t);
  const b = new LocalPostgres(cluster.standby.agentConfig);
  t.after(() => b.close());
  await keepNoSpareWal(cluster.primary);
  await cluster.primary.psql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  await cluster.primary.psql('SELECT pg_reload_conf()');
  await b.followSlot(cluster.primary.endpoint, slots['db-b']);
  await waitUntil('db-b to stream through its slot', 30_000, async () => (await slotRow(cluster.primary, slots['db-b'])).startsWith('t/'));
  await b.stop('fast');
  await churnWal(cluster.primary, 4);
  assert.equal(await slotRow(cluster.primary, slots['db-b']), 'f/lost');
  // Back to a bound the fresh slot stays within (1 MB is less than a segment: any lag loses a slot).
  await cluster.primary.psql("ALTER SYSTEM SET max_slot_wal_keep_size = '256MB'");
  await cluster.primary.psql('SELECT pg_reload_conf()');
  await b.start();

  const logged: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
  const registry = new Registry();
  const keeper = new SlotKeeper({ pg: b, slots: { self: slots['db-b'], peer: slots['db-a'] }, peerEndpoint: cluster.primary.endpoint, state: () => standbyOf('db-a', 'db-b', 'db-a'), logger, registry, clock: () => performance.now() });
  await keeper.runOnce();
  const target = await currentLsn(cluster.primary);
  await waitUntil('the re-seeded db-b to stream through a fresh slot and replay', 60_000, async () => (await slotRow(cluster.primary, slots['db-b'])) === 't/reserved' && (await replayedTo(cluster.standby, target))).catch(
    async (e: unknown) => assert.fail(`${String(e)}; slot ${await slotRow(cluster.primary, slots['db-b'])}; keeper log: ${logged.join('')}`),
  );
  await keeper.runOnce(); // a healthy slot: nothing more to do
  await keeper.stop();
  assert.equal(logged.filter((l) => l.includes('re-seeding with pg_basebackup')).length, 1, logged.join(''));
  assert.match(await registry.metrics(), /pgvip_agent_slot_reseeds_total\{result="ok"\} 1/);
});

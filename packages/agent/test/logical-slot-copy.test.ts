// Goal: on real PostgreSQL 15, a logical (CDC) slot survives a failover when the standby's agent keeps
// a copy (replication.logicalSlots.copy): the copy is made from the primary's slot state file, moved
// forward to what the consumer confirmed on the primary, and after the standby is promoted the
// consumer continues on it from no later than its confirmed position, missing nothing. Without the
// copy the slot is simply gone on the new primary. When the old primary rejoins (pg_rewind empties
// its pg_replslot), it gets a fresh copy of the new primary's slot.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { bootAgent, defaultAgentSettings, defaultTimings, type AgentState } from '@pgvip/shared/core';
import { LocalPostgres, slotNameFor } from '@pgvip/agent';
import { LogicalSlotCopier } from '../src/logical-slot-copy.js';
import { SlotKeeper } from '../src/slot-keeper.js';
import { startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

/** db-b as a settled standby of db-a, as the slot keeper reads the decision loop's state. */
function standbyOfA(): AgentState {
  const settings = defaultAgentSettings({ cluster: 'main', self: 'db-b', peer: 'db-a', witness: 'witness', timings: defaultTimings });
  const boot = bootAgent(settings, { term: 1, primaryOfTerm: 'db-a' }, 0);
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

/** What a test_decoding consumer receives from `slot` on `node`: the inserted values, in order. */
async function consume(node: PgNode, slot: string): Promise<number[]> {
  const out = await node.psql(`SELECT data FROM pg_logical_slot_get_changes('${slot}', NULL, NULL)`);
  return [...out.matchAll(/table public\.t: INSERT: i\[integer\]:(\d+)/g)].map((m) => Number(m[1]));
}

async function insert(node: PgNode, value: number): Promise<void> {
  await node.psql(`INSERT INTO t VALUES (${value})`);
}

async function replayedAll(standby: PgNode, primary: PgNode): Promise<void> {
  const target = await primary.psql('SELECT pg_current_wal_lsn()');
  await waitUntil('the standby to replay the primary\'s WAL', 30_000, async () =>
    (await standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`)) === 't');
}

for (const copy of [true, false]) {
  test(`Given a consumer of logical slot cdc on the primary${copy ? ' and its copy on the standby' : ', with no copy'}, When the standby is promoted, Then ${copy ? 'the consumer continues there missing nothing' : 'the slot is gone'}`, async (t) => {
    const cluster = await startPgCluster(t, { logical: true });
    const { primary, standby } = cluster;
    const b = new LocalPostgres({
      ...standby.agentConfig,
      maxSlotWalKeepSizeMb: 2048,
      peerSlotName: slotNameFor('db-a'),
      logicalSlotCopy: { names: [] },
    });
    t.after(() => b.close());
    // hot_standby_feedback is what the copies need on the primary (a managed setting while copying).
    assert.ok((await b.ensureManagedSettings()).changed.includes('hot_standby_feedback'));
    await b.followSlot(primary.endpoint, slotNameFor('db-b'));
    await primary.psql('CREATE TABLE t (i int PRIMARY KEY)');
    await primary.psql("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')");

    const received: number[] = [];
    await insert(primary, 1);
    await insert(primary, 2);
    received.push(...(await consume(primary, 'cdc')));
    assert.deepEqual(received, [1, 2]);
    await insert(primary, 3); // not consumed before the copy is made

    const registry = new Registry();
    let rejoin: Promise<{ path: string }> | undefined;
    const copier = new LogicalSlotCopier({
      pg: b,
      config: b.config,
      names: [],
      logger: pino({ level: 'silent' }),
      registry,
      clock: () => performance.now(),
      mayRestart: () => true,
      exclusive: (work) => {
        const run = b.exclusive(work);
        // As the decision loop may, seeing the standby down during the copy's restart: a rejoin.
        rejoin ??= b.rejoinAsStandby({ primary: primary.endpoint, slotName: slotNameFor('db-b') });
        return run;
      },
      physicalSlot: slotNameFor('db-b'),
    });
    const kept = async () => (await registry.getSingleMetric('pgvip_agent_logical_slot_copied')!.get()).values.find((v) => v.labels.slot === 'cdc')?.value;
    if (copy) {
      await replayedAll(standby, primary);
      // The first copy through the slot keeper's standby round, as the agent runs it.
      const keeper = new SlotKeeper({
        pg: b,
        slots: { self: slotNameFor('db-b'), peer: slotNameFor('db-a') },
        peerEndpoint: primary.endpoint,
        state: standbyOfA,
        logger: pino({ level: 'silent' }),
        registry: new Registry(),
        clock: () => performance.now(),
        logical: copier,
      });
      const startedAt = performance.now();
      await keeper.runOnce();
      t.diagnostic(`the keeper's round that copied cdc (a restart of the standby) took ${Math.round(performance.now() - startedAt)} ms`);
      // The rejoin waited for the restart and found nothing to rewind: the copy is still there.
      assert.equal((await rejoin)?.path, 'rewind');
      await copier.run(primary.endpoint); // moves it on, if the rejoin had the server down at the end of the round
      // The copy starts at the primary's confirmed position (the consumer's), not the file's older one.
      const confirmed = await primary.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'");
      assert.equal(await standby.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'"), confirmed);
      // Its catalog_xmin reaches the primary through db-b's physical slot (hot_standby_feedback).
      await waitUntil('db-b\'s physical slot to carry the copy\'s catalog_xmin', 30_000, async () =>
        (await primary.psql(`SELECT catalog_xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = '${slotNameFor('db-b')}'`)) === 't');
    }

    received.push(...(await consume(primary, 'cdc')));
    await insert(primary, 4);
    received.push(...(await consume(primary, 'cdc')));
    assert.deepEqual(received, [1, 2, 3, 4]);
    const confirmedBefore = await primary.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'");
    await insert(primary, 5); // committed, never consumed on the old primary
    await replayedAll(standby, primary);
    if (copy) {
      const round = await copier.run(primary.endpoint);
      assert.deepEqual(round.advanced, ['cdc'], JSON.stringify(round));
      assert.deepEqual(round.copied, []);
      // The primary keeps the copy's catalog rows (db-b's physical slot holds an old enough catalog_xmin).
      assert.equal(await kept(), 1);
      const here = await standby.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'");
      assert.equal(here, confirmedBefore, 'the copy is exactly at what the consumer confirmed, never past it');
    }

    // The failover: the old primary is gone, the standby is promoted.
    await primary.psql('CHECKPOINT');
    await new LocalPostgres(primary.agentConfig).stop('immediate');
    await b.promote(30);

    if (!copy) {
      await assert.rejects(consume(standby, 'cdc'), /replication slot "cdc" does not exist/);
      return;
    }
    const after = await consume(standby, 'cdc');
    await insert(standby, 6);
    after.push(...(await consume(standby, 'cdc')));
    assert.deepEqual(after, [5, 6], 'the consumer continues with the first change it had not confirmed');
    assert.deepEqual([...new Set([...received, ...after])].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6], 'nothing missed');

    // The old primary rejoins: pg_rewind removes its slots (the old history's), a fresh copy follows.
    const a = new LocalPostgres({
      ...primary.agentConfig,
      maxSlotWalKeepSizeMb: 2048,
      peerSlotName: slotNameFor('db-b'),
      logicalSlotCopy: { names: [] },
    });
    t.after(() => a.close());
    assert.equal((await a.rejoinAsStandby({ primary: standby.endpoint, slotName: slotNameFor('db-a') })).path, 'rewind');
    assert.equal(await primary.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cdc'"), '0', 'the old history\'s slot is gone');
    await replayedAll(primary, standby);
    const copierA = new LogicalSlotCopier({
      pg: a,
      config: a.config,
      names: [],
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      clock: () => performance.now(),
      mayRestart: () => true,
      exclusive: (work) => a.exclusive(work),
    });
    const back = await copierA.run(standby.endpoint);
    assert.deepEqual(back.copied, ['cdc'], JSON.stringify(back));
    const newConfirmed = await standby.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'");
    assert.equal(await primary.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'"), newConfirmed);
  });
}

// Goal: logical slots across a failover follow the server version — PostgreSQL 17+ gets the settings
// that synchronise failover slots to the standby (and hold decoding back until the standby has the
// WAL), earlier versions get none, and the slots a failover would lose are named for the operator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failoverSlotSettings, logicalSlotCopySettings, logicalSlotsLostAtFailover, logicalSlotsSql } from '../src/postgres/failover-slots.js';

test('Given PostgreSQL 17 or later, Then both nodes get sync_replication_slots, hot_standby_feedback and the standby\'s slot as synchronized_standby_slots', () => {
  const expected = { sync_replication_slots: 'on', hot_standby_feedback: 'on', synchronized_standby_slots: 'pgvip_db_b' };
  assert.deepEqual(failoverSlotSettings(170000, 'pgvip_db_b'), expected);
  assert.deepEqual(failoverSlotSettings(180002, 'pgvip_db_b'), expected);
});

test('Given three nodes on PostgreSQL 17, Then synchronized_standby_slots names every promotable standby\'s slot, sorted', () => {
  assert.equal(failoverSlotSettings(170000, ['pgvip_db_c', 'pgvip_db_b']).synchronized_standby_slots, 'pgvip_db_b, pgvip_db_c');
  assert.deepEqual(failoverSlotSettings(150010, ['pgvip_db_c', 'pgvip_db_b']), {});
});

test('Given PostgreSQL 15 or 16, Then no failover-slot setting is made (the server would refuse the unknown names)', () => {
  assert.deepEqual(failoverSlotSettings(150010, 'pgvip_db_b'), {});
  assert.deepEqual(failoverSlotSettings(169999, 'pgvip_db_b'), {});
});

test('the logical slots a failover loses: every one before 17, those without failover = true from 17 on', () => {
  const slots = [
    { name: 'cdc_orders', failover: true },
    { name: 'cdc_audit', failover: false },
    { name: 'cdc_old', failover: null },
  ];
  assert.deepEqual(logicalSlotsLostAtFailover(150010, slots), ['cdc_orders', 'cdc_audit', 'cdc_old']);
  assert.deepEqual(logicalSlotsLostAtFailover(170000, slots), ['cdc_audit', 'cdc_old']);
  assert.match(logicalSlotsSql(170000), /slot_name::text AS name, failover AS failover/);
  assert.match(logicalSlotsSql(150010), /NULL::boolean AS failover/, 'PostgreSQL 15 has no failover column');
});

test('before 17 the slots the agents copy (replication.logicalSlots) are not lost, and the copies get hot_standby_feedback', () => {
  const slots = [{ name: 'cdc_orders', failover: null }, { name: 'cdc_audit', failover: null }];
  assert.deepEqual(logicalSlotsLostAtFailover(150010, slots, { names: [] }), []);
  assert.deepEqual(logicalSlotsLostAtFailover(160004, slots, { names: ['cdc_orders'] }), ['cdc_audit']);
  assert.deepEqual(logicalSlotsLostAtFailover(170000, [{ name: 'cdc_orders', failover: false }], { names: [] }), ['cdc_orders'], '17+: failover slots only');
  assert.deepEqual(logicalSlotCopySettings(150010), { hot_standby_feedback: 'on' });
  assert.deepEqual(logicalSlotCopySettings(170000), {}, '17+ sets it through failoverSlotSettings');
});

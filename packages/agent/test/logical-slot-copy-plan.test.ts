// Goal: the copies of logical slots on a PostgreSQL 15/16 standby follow the primary's slots and
// never get ahead of them — a missing copy is made, one behind is moved to the primary's confirmed
// position and no further, one ahead (the slot was made again on the primary) or not the primary's is replaced,
// one gone from the primary is dropped — and a slot state file PostgreSQL would refuse at start (and
// so keep the standby down) is never written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { planLogicalCopy } from '../src/logical-slot-copy.js';
import { xidNotAfter, type LogicalSlotView } from '../src/postgres/logical-slots.js';
import { crc32c, parseSlotStateFile } from '../src/postgres/slot-state-file.js';

function slot(name: string, confirmed: bigint, extra: Partial<LogicalSlotView> = {}): LogicalSlotView {
  return {
    name,
    plugin: 'pgoutput',
    database: 'app',
    temporary: false,
    active: false,
    restartLsn: confirmed - 0x100n,
    confirmedFlushLsn: confirmed,
    catalogXmin: '731',
    ...extra,
  };
}

const none = new Map<string, bigint>();

test('a slot missing on the standby is copied; temporary and invalidated ones are not', () => {
  const plan = planLogicalCopy({
    names: [],
    primary: [slot('orders', 0x3000n), slot('scratch', 0x3000n, { temporary: true }), slot('dead', 0x3000n, { restartLsn: null })],
    local: [],
    waiting: none,
  });
  assert.deepEqual(plan, { drop: [], copy: ['orders'], advance: [] });
});

test('a copy behind the primary moves to the primary\'s confirmed position, never further; one level with it stays', () => {
  const plan = planLogicalCopy({
    names: [],
    primary: [slot('orders', 0x5000n), slot('audit', 0x4000n)],
    local: [slot('orders', 0x3000n), slot('audit', 0x4000n)],
    waiting: none,
  });
  assert.deepEqual(plan, { drop: [], copy: [], advance: [{ name: 'orders', to: 0x5000n }] });
});

test('a copy ahead of the primary (the slot was made again there) or of another plugin is replaced; one gone is dropped', () => {
  const plan = planLogicalCopy({
    names: [],
    primary: [slot('orders', 0x5000n), slot('audit', 0x5000n)],
    local: [slot('orders', 0x6000n), slot('audit', 0x5000n, { plugin: 'wal2json' }), slot('old', 0x1000n)],
    waiting: none,
  });
  assert.deepEqual(plan.drop.map((d) => [d.name, d.recopy]), [['orders', true], ['audit', true], ['old', false]]);
  assert.match(plan.drop[0]!.why, /ahead of the primary's \(0\/6000 > 0\/5000\): not a copy of it/);
  assert.deepEqual(plan.copy, ['orders', 'audit'], 'copied afresh once dropped');
  assert.deepEqual(plan.advance, []);
});

test('with names, only those are copied and only those are dropped; an active slot on the standby is left alone', () => {
  const plan = planLogicalCopy({
    names: ['orders', 'busy'],
    primary: [slot('orders', 0x5000n), slot('audit', 0x5000n)],
    local: [slot('mine', 0x1000n), slot('busy', 0x1000n, { active: true })],
    waiting: none,
  });
  assert.deepEqual(plan, { drop: [], copy: ['orders'], advance: [] });
});

test('a slot whose copy found no WAL for its restart_lsn waits until that restart_lsn moves', () => {
  const primary = [slot('orders', 0x5000n)];
  assert.deepEqual(planLogicalCopy({ names: [], primary, local: [], waiting: new Map([['orders', 0x4f00n]]) }).copy, []);
  assert.deepEqual(planLogicalCopy({ names: [], primary, local: [], waiting: new Map([['orders', 0x4000n]]) }).copy, ['orders']);
});

/** A PostgreSQL 15 state file (ReplicationSlotOnDisk, version 2) with a correct checksum. */
interface StateFileFields {
  name?: string;
  database?: number;
  restart?: bigint;
  confirmed?: bigint;
  plugin?: string;
  version?: number;
}

function stateFile(o: StateFileFields = {}): Buffer {
  const b = Buffer.alloc(200);
  b.writeUInt32LE(0x1051ca1, 0);
  b.writeUInt32LE(o.version ?? 2, 8);
  b.writeUInt32LE(184, 12);
  b.write(o.name ?? 'cdc', 16);
  b.writeUInt32LE(o.database ?? 5, 80);
  b.writeUInt32LE(731, 92);
  b.writeBigUInt64LE(o.restart ?? 0x30274d0n, 96);
  b.writeBigUInt64LE(o.confirmed ?? 0x3027538n, 112);
  b.write(o.plugin ?? 'test_decoding', 129);
  b.writeUInt32LE(crc32c(b.subarray(8)), 4);
  return b;
}

test('CRC-32C is PostgreSQL\'s (the check value of "123456789")', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('a good state file parses to the slot\'s positions', () => {
  assert.deepEqual(parseSlotStateFile(stateFile(), 'cdc'), {
    name: 'cdc',
    databaseOid: 5,
    persistency: 0,
    catalogXmin: 731,
    restartLsn: 0x30274d0n,
    invalidated: false,
    confirmedFlushLsn: 0x3027538n,
    plugin: 'test_decoding',
  });
});

test('a state file PostgreSQL would refuse, or that is not the named persistent logical slot, is refused', () => {
  const torn = stateFile();
  torn.writeUInt8(torn.readUInt8(120) ^ 1, 120);
  const cases: [Buffer, string, RegExp][] = [
    [torn, 'cdc', /fails its checksum/],
    [stateFile().subarray(0, 150), 'cdc', /stated length of 184/],
    [stateFile({ version: 5 }), 'cdc', /version 5, which pgvip copies only from PostgreSQL 15 and 16/],
    [stateFile({ name: 'other' }), 'cdc', /names slot "other"/],
    [stateFile({ database: 0 }), 'cdc', /not a logical slot's/],
    [stateFile({ restart: 0n }), 'cdc', /invalidated slot's/],
    [Buffer.from('hello'), 'cdc', /no slot file magic/],
  ];
  for (const [bytes, name, why] of cases) {
    assert.throws(() => parseSlotStateFile(bytes, name), (e: unknown) => isPgvipError(e) && e.code === 'PGVIP_PG_SLOT_COPY_FAILED' && why.test(e.message), String(why));
  }
});

test('transaction ids compare in PostgreSQL\'s circular space (a copy counts as kept once the feedback is no newer)', () => {
  assert.ok(xidNotAfter('731', '731'));
  assert.ok(xidNotAfter('730', '731'));
  assert.ok(!xidNotAfter('732', '731'));
  assert.ok(xidNotAfter('4294967290', '5'), 'across the wraparound');
  assert.ok(!xidNotAfter('5', '4294967290'));
});

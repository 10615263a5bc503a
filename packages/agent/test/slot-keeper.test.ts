// Goal: the slot keeper puts slots where the roles need them, leaves a node in any other role alone,
// and answers an invalidated slot with one re-seed, waiting longer after each failed one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { bootAgent, defaultAgentSettings, defaultTimings, type AgentState } from '@pgvip/shared/core';
import { FakePgNetwork, type FakePostgres } from '@pgvip/agent';
import { SlotKeeper, reseedBackoffMs } from '../src/slot-keeper.js';

type Role = 'primary' | 'standby' | 'candidate';

function stateOf(self: string, peer: string, role: Role): AgentState {
  const settings = defaultAgentSettings({ cluster: 'main', self, peer, witness: 'witness', timings: defaultTimings });
  const primary = role === 'primary' ? self : peer;
  const boot = bootAgent(settings, { term: 1, primaryOfTerm: primary }, 0);
  const inRecovery = role !== 'primary';
  return {
    ...boot,
    pg: {
      running: true,
      inRecovery,
      writable: !inRecovery,
      timeline: 1,
      lsn: 0n,
      replayLsn: 0n,
      streaming: inRecovery,
      syncStandby: null,
      standbyInSync: false,
    },
    lease: role === 'primary' ? { ...boot.lease, held: { term: 1, validUntilMs: 1e12 } } : boot.lease,
    campaign: role === 'candidate' ? { term: 2, sentAtMs: 0 } : null,
  } as AgentState;
}

function keeperFor(pg: FakePostgres, peer: FakePostgres, role: () => Role, now: () => number = () => 0) {
  const lines: string[] = [];
  const registry = new Registry();
  const self = pg.nodeName;
  const keeper = new SlotKeeper({
    pg,
    slots: { self: `pgvip_${self.replace('-', '_')}`, peer: `pgvip_${peer.nodeName.replace('-', '_')}` },
    peerEndpoint: peer.endpoint,
    state: () => stateOf(self, peer.nodeName, role()),
    logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
    registry,
    clock: now,
  });
  return { keeper, lines, registry };
}

const names = async (pg: FakePostgres): Promise<string> => (await pg.replicationSlots()).map((s) => `${s.name}${s.active ? '*' : ''}${s.walStatus === 'lost' ? '!' : ''}`).join(',');

test('Given a primary and a standby, Then the primary keeps a slot for the standby and the standby streams through it; a candidate is left alone', async () => {
  const { primary, standby } = FakePgNetwork.pair();
  const onPrimary = keeperFor(primary, standby, () => 'primary');
  let standbyRole: Role = 'candidate';
  const onStandby = keeperFor(standby, primary, () => standbyRole);
  await onPrimary.keeper.runOnce();
  assert.equal(await names(primary), 'pgvip_db_b');
  await onStandby.keeper.runOnce();
  assert.equal(standby.primarySlotName, '', 'a candidate may be promoting: its configuration is not touched');
  standbyRole = 'standby';
  await standby.ensureReplicationSlot('pgvip_db_a'); // left from its time as primary
  await onStandby.keeper.runOnce();
  assert.equal(standby.primarySlotName, 'pgvip_db_b');
  assert.equal(await names(primary), 'pgvip_db_b*');
  assert.equal(await names(standby), '', 'a standby keeps no slot for its primary');
  await onPrimary.keeper.runOnce();
  assert.match(await onPrimary.registry.metrics(), /pgvip_agent_slot_active\{slot="pgvip_db_b",cluster|pgvip_agent_slot_active\{slot="pgvip_db_b"\} 1/);
});

test('Given the primary invalidated the standby\'s slot, Then the standby is re-seeded once and streams through a fresh slot; failed re-seeds wait longer each time', async () => {
  const { primary, standby } = FakePgNetwork.pair();
  let nowMs = 0;
  const onStandby = keeperFor(standby, primary, () => 'standby', () => nowMs);
  await onStandby.keeper.runOnce();
  primary.invalidateSlot('pgvip_db_b');
  assert.equal(await names(primary), 'pgvip_db_b!');
  const stuck = await standby.observe();
  assert.equal(stuck.reachable && stuck.walReceiver?.status, 'waiting', 'a lost slot feeds nobody');

  await onStandby.keeper.runOnce();
  assert.equal(await names(primary), 'pgvip_db_b*', 'a fresh slot, streamed through');
  await onStandby.keeper.runOnce();
  nowMs += 60_000;
  await onStandby.keeper.runOnce();
  assert.equal(onStandby.lines.filter((l) => l.includes('re-seeding with pg_basebackup')).length, 1, 'no loop: one re-seed');
  assert.match(await onStandby.registry.metrics(), /pgvip_agent_slot_reseeds_total\{result="ok"\} 1/);
  assert.deepEqual([0, 1, 2, 6, 10].map(reseedBackoffMs), [0, 30_000, 60_000, 600_000, 600_000]);
});

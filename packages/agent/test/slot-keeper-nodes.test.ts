// Goal: with three database nodes, the primary keeps a physical slot for every other node, and drops
// a pgvip_ slot that belongs to no configured node only once it has been idle for the grace (a config
// change rolled out node by node must not flap it); the operator's own slots are never touched. Real
// PostgreSQL 15 (docs/design.md, "Replication slots").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { bootAgent, defaultAgentSettings, defaultTimings, type AgentState } from '@pgvip/shared/core';
import { LocalPostgres, slotNameFor } from '@pgvip/agent';
import { SlotKeeper } from '../src/slot-keeper.js';
import { addPgStandby, startPgCluster } from '../../../test/fixtures/pg-cluster.js';

function primaryState(): AgentState {
  const settings = defaultAgentSettings({ cluster: 'main', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
  const boot = bootAgent(settings, { term: 1, primaryOfTerm: 'db-a' }, 0);
  return {
    ...boot,
    pg: {
      running: true, inRecovery: false, writable: true, timeline: 1, lsn: 0n, replayLsn: 0n,
      streaming: false, syncStandby: null, standbyInSync: false,
    },
    lease: { ...boot.lease, held: { term: 1, validUntilMs: Number.MAX_SAFE_INTEGER } },
  };
}

test('Given the primary of three nodes, Then its slot keeper keeps a slot for each other node and drops a pgvip_ slot of no node once idle for the grace, never an operator\'s', async (t) => {
  const cluster = await startPgCluster(t);
  const c = await addPgStandby(cluster, 'db-c');
  const n = { a: cluster.primary, pg: { a: new LocalPostgres(cluster.primary.agentConfig) } };
  t.after(() => n.pg.a.close());
  const endpoints = { 'db-a': cluster.primary.endpoint, 'db-b': cluster.standby.endpoint, 'db-c': c.endpoint };
  await n.a.psql("SELECT pg_create_physical_replication_slot('pgvip_db_gone', true), pg_create_physical_replication_slot('reporting', true)");
  let now = 0;
  const keeper = new SlotKeeper({
    pg: n.pg.a,
    slots: { self: slotNameFor('db-a'), peer: slotNameFor('db-b'), others: [slotNameFor('db-b'), slotNameFor('db-c')] },
    peerEndpoint: endpoints['db-b'],
    endpoints,
    state: primaryState,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    clock: () => now,
    orphanGraceMs: 60_000,
  });
  const slots = async (): Promise<string> => n.a.psql('SELECT string_agg(slot_name, \' \' ORDER BY slot_name) FROM pg_replication_slots');
  await keeper.runOnce();
  assert.equal(await slots(), 'pgvip_db_b pgvip_db_c pgvip_db_gone reporting');
  now = 59_000;
  await keeper.runOnce();
  assert.equal(await slots(), 'pgvip_db_b pgvip_db_c pgvip_db_gone reporting');
  now = 60_000;
  await keeper.runOnce();
  assert.equal(await slots(), 'pgvip_db_b pgvip_db_c reporting');
});

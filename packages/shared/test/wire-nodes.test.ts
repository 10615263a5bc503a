// The wire fields of N database nodes (docs/design.md, "More than one standby"): optional, so a
// two-node cluster's traffic is unchanged, and the v1 status never carries them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  agentStatus, bootAgent, defaultAgentSettings, defaultTimings, type AgentState, type PgSnapshot,
} from '../src/core/index.js';
import { decodeMessage, encodeMessage } from '../src/wire/codec.js';
import { agentStatusSchema, agentStatusV1Of, agentStatusV1Schema, schemasByKind } from '../src/wire/messages.js';
import * as fixtures from './wire-fixtures.js';

const nPg: PgSnapshot = {
  ...fixtures.agentStatus.pg,
  syncClaim: { members: ['db-b', 'db-c'], k: 1 },
  replicas: [
    { node: 'db-b', flushLsn: 0x16b374d848n, streaming: true, syncState: 'quorum' },
    { node: 'db-c', flushLsn: 0x16b374d000n, streaming: true, syncState: 'quorum' },
  ],
  upstream: null,
};

function agent(nodes: readonly string[], pg: PgSnapshot): AgentState {
  const settings = {
    ...defaultAgentSettings({ cluster: 'prod', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings }),
    nodes: nodes.map((id) => ({ id, priority: 0, noFailover: false })),
  };
  return { ...bootAgent(settings, { term: 7, primaryOfTerm: 'db-a' }, 0), pg };
}

test('a two-node agent serves the status of the first release: no N-node field, even if its shell read them', () => {
  const status = agentStatus(agent(['db-a', 'db-b'], nPg));
  const wire = encodeMessage(status);
  assert.deepEqual(Object.keys(wire.pg as object).sort(), Object.keys(fixtures.agentStatus.pg).sort());
  assert.equal('syncMember' in wire, false);
  assert.equal('withdrawn' in wire, false);
});

test('a three-node status carries the claim, the replicas and the N-node flags, and parses back', () => {
  const status = agentStatus(agent(['db-a', 'db-b', 'db-c'], nPg));
  assert.equal(status.syncMember, false);
  assert.equal(status.withdrawn, false);
  const back = decodeMessage(agentStatusSchema, JSON.parse(JSON.stringify(encodeMessage(status))));
  assert.deepEqual(back.pg.syncClaim, nPg.syncClaim);
  assert.deepEqual(back.pg.replicas, nPg.replicas);
  assert.equal(back.pg.upstream, null);
  // The v1 route leaves every field added since out, inside pg too (v1 peers parse strictly).
  const v1 = agentStatusV1Of(back);
  assert.doesNotThrow(() => z.encode(agentStatusV1Schema, v1));
  assert.equal('syncClaim' in v1.pg, false);
});

test('the claim form of sync-update, a withdrawn vote request and position-clear parse; a bad claim does not', () => {
  const env = { v: 1, cluster: 'prod', term: 7, from: 'db-a' } as const;
  const record = { ...env, kind: 'sync-update', change: 'record', claim: { members: ['db-b', 'db-c'], k: 2 } } as const;
  assert.deepEqual(decodeMessage(schemasByKind['sync-update'], encodeMessage(record)), record);
  // The two forms do not mix: a claim with a standby's change is refused.
  assert.throws(() => decodeMessage(schemasByKind['sync-update'], { ...env, kind: 'sync-update', change: 'degrade', claim: record.claim }));
  assert.throws(() => decodeMessage(schemasByKind['sync-update'], { ...encodeMessage(record), claim: { members: ['db b'], k: 1 } }));
  const vote = { ...fixtures.voteRequest, withdrawn: { flushLsn: 0x10n, timeline: 3, windowOpen: true } };
  assert.deepEqual(decodeMessage(schemasByKind['vote-request'], JSON.parse(JSON.stringify(encodeMessage(vote)))), vote);
  const clear = { ...env, kind: 'position-clear' } as const;
  assert.deepEqual(decodeMessage(schemasByKind['position-clear'], encodeMessage(clear)), clear);
  const lease = { ...fixtures.leaseRequest, syncClaim: { members: ['db-b'], k: 1 } };
  assert.deepEqual(decodeMessage(schemasByKind['lease-request'], JSON.parse(JSON.stringify(encodeMessage(lease)))), lease);
});

test('the term\'s grantors in a reply are node ids, at most as many as a claim can name', () => {
  const reply = { ...fixtures.leaseReply, grantorsOfTerm: ['db-b', 'db-c'] };
  assert.deepEqual(decodeMessage(schemasByKind['lease-reply'], encodeMessage(reply)), reply);
  const many = Array.from({ length: 17 }, (_, i) => `db-${i}`);
  assert.throws(() => decodeMessage(schemasByKind['lease-reply'], encodeMessage({ ...reply, grantorsOfTerm: many })));
  assert.throws(() => decodeMessage(schemasByKind['vote-reply'], encodeMessage({ ...fixtures.voteReply, grantorsOfTerm: many })));
  assert.throws(() => decodeMessage(schemasByKind['lease-reply'], encodeMessage({ ...reply, grantorsOfTerm: ['db b'] })));
});

// Goal: every protocol message survives encode → JSON → decode unchanged, and every malformed
// message is refused with a coded error that names the failing field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import type { Ack } from '../src/core/messages.js';
import { PROTOCOL_VERSION } from '../src/core/messages.js';
import { decodeMessage, decodeMessageBody, encodeMessage, serializeMessage } from '../src/wire/codec.js';
import type { ProtocolMessage } from '../src/wire/codec.js';
import { endpointFor, endpoints } from '../src/wire/endpoints.js';
import type { Equals, Expect } from '../src/wire/exact.js';
import { ackSchema, agentStatusSchema, leaseRequestSchema, manualPromoteSchema, schemasByKind } from '../src/wire/messages.js';
import * as fixtures from './wire-fixtures.js';

function schemaFor(message: ProtocolMessage): z.ZodType {
  return 'kind' in message ? schemasByKind[message.kind] : agentStatusSchema;
}

/** The wire form of a fixture with some fields replaced or (value undefined) removed. */
function wireWith(message: ProtocolMessage, changes: Record<string, unknown>): Record<string, unknown> {
  const wire: Record<string, unknown> = { ...encodeMessage(message) };
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined) delete wire[field];
    else wire[field] = value;
  }
  return wire;
}

describe('wire: round trip', () => {
  for (const message of fixtures.everyMessage) {
    const name = 'kind' in message ? message.kind : 'agent status';
    it(`${name} decodes to exactly what was encoded`, () => {
      const text = serializeMessage(message);
      const decoded: unknown = decodeMessageBody(schemaFor(message), text);
      assert.deepEqual(decoded, message);
      assert.ok(Object.isFrozen(decoded), 'parsed messages are immutable');
    });
  }

  it('carries LSNs as PostgreSQL text and nothing as a bigint', () => {
    const wire = encodeMessage(fixtures.agentStatus);
    assert.deepEqual(wire['pg'], { ...fixtures.agentStatus.pg, lsn: '16/B374D848', replayLsn: '16/B374D848' });
    assert.equal(encodeMessage(fixtures.leaseRequest)['lsn'], 'FFFFFFFF/FFFFFFFF');
    assert.equal(encodeMessage(fixtures.handover)['finalLsn'], '1/0');
    for (const message of fixtures.everyMessage) assert.doesNotThrow(() => JSON.stringify(encodeMessage(message)));
  });

  it('refuses to encode a message its peers would reject, naming the field', () => {
    assert.throws(() => encodeMessage({ ...fixtures.handover, finalLsn: -1n }), /finalLsn/);
    assert.throws(() => encodeMessage({ ...fixtures.ack, term: 1.5 }), /term/);
  });
});

describe('wire: protocol version', () => {
  it('refuses another version with its own code, naming both versions', () => {
    assert.throws(() => decodeMessage(ackSchema, wireWith(fixtures.ack, { v: 2 })), {
      code: 'PGVIP_PROTOCOL_VERSION',
      detail: new RegExp(`version 2.*version ${PROTOCOL_VERSION}`),
    });
  });

  it('treats a missing or non-numeric version as a malformed message', () => {
    assert.throws(() => decodeMessage(ackSchema, wireWith(fixtures.ack, { v: undefined })), { code: 'PGVIP_BAD_REQUEST', detail: /^v: missing/ });
    assert.throws(() => decodeMessage(ackSchema, wireWith(fixtures.ack, { v: '1' })), { code: 'PGVIP_BAD_REQUEST', detail: /^v: / });
  });
});

describe('wire: malformed messages name the failing field', () => {
  const cases: [string, ProtocolMessage, Record<string, unknown>, RegExp][] = [
    ['a missing field', fixtures.leaseRequest, { seq: undefined }, /seq: missing \(expected number\)/],
    ['an extra field', fixtures.leaseRequest, { leaseMs: 3000 }, /leaseMs: unexpected field/],
    ['an extra nested field', fixtures.agentStatus, { pg: { ...encodeMessage(fixtures.agentStatus)['pg'] as object, extra: 1 } }, /pg\.extra: unexpected field/],
    ['a bad nested LSN', fixtures.agentStatus, { pg: { ...encodeMessage(fixtures.agentStatus)['pg'] as object, lsn: '16/XYZ' } }, /pg\.lsn: '16\/XYZ' is not a PostgreSQL LSN/],
    ['an LSN sent as a number', fixtures.voteRequest, { lsn: 5 }, /lsn: /],
    ['a negative term', fixtures.ack, { term: -1 }, /term: must not be negative/],
    ['a fractional term', fixtures.ack, { term: 2.5 }, /term: must be a whole number/],
    ['an over-long node id', fixtures.ack, { from: 'n'.repeat(64) }, /from: a node id must be 1–63/],
    ['a node id with a space', fixtures.switchoverRequest, { to: 'db b' }, /to: a node id must be/],
    ['a cluster name with =', fixtures.ack, { cluster: 'a=b' }, /cluster: a cluster name must be/],
    ['an unknown role', fixtures.agentStatus, { role: 'leader' }, /role: /],
    ['the wrong kind', fixtures.ack, { kind: 'vote-reply' }, /kind: /],
    ['an over-long reason', fixtures.ack, { reason: 'x'.repeat(1001) }, /reason: reasons are at most 1000 characters/],
    ['a manual promotion without the data-loss flag', fixtures.manualPromote, { acceptDataLoss: false }, /acceptDataLoss: a manual promotion must carry acceptDataLoss: true/],
  ];
  for (const [what, message, changes, detail] of cases) {
    it(`refuses ${what}`, () => {
      assert.throws(() => decodeMessage(schemaFor(message), wireWith(message, changes)), { code: 'PGVIP_BAD_REQUEST', detail });
    });
  }

  it('reports every failing field, but only the first few of a flood', () => {
    assert.throws(() => decodeMessage(ackSchema, wireWith(fixtures.ack, { term: -1, from: '', reason: undefined })), {
      detail: /term: .*; from: .*; reason: missing/,
    });
    const flood = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`junk${i}`, i]));
    assert.throws(() => decodeMessage(ackSchema, wireWith(fixtures.ack, flood)), { detail: /junk4: unexpected field; and 45 more$/ });
  });

  it('refuses a body that is not a JSON object', () => {
    assert.throws(() => decodeMessageBody(ackSchema, '{"v":1,'), { code: 'PGVIP_BAD_REQUEST', detail: /not JSON/ });
    assert.throws(() => decodeMessageBody(ackSchema, '[1]'), { code: 'PGVIP_BAD_REQUEST', detail: /^\(message\): / });
    assert.throws(() => decodeMessage(manualPromoteSchema, null), { code: 'PGVIP_BAD_REQUEST' });
  });

  it('decodes raw body bytes as well as text', () => {
    const bytes = new TextEncoder().encode(serializeMessage(fixtures.leaseRequest));
    assert.deepEqual(decodeMessageBody(leaseRequestSchema, bytes), fixtures.leaseRequest);
  });
});

describe('wire: endpoints', () => {
  it('gives every request kind its own route', () => {
    const routes = Object.values(endpoints).map((e) => `${e.method} ${e.path}`);
    assert.equal(new Set(routes).size, routes.length);
    assert.deepEqual(Object.keys(endpoints).sort(), [
      'handover', 'lease-release', 'lease-request', 'manual-promote', 'position-clear', 'restart-request', 'status',
      'status-v2', 'switchover-request', 'sync-update', 'vote-request',
    ]);
    assert.equal(endpoints.status.method, 'GET');
    assert.equal(endpoints.status.request, null);
    // Added in protocol v2, beside the v1 routes, which keep their meaning.
    assert.equal(endpoints['status-v2'].path, '/v2/status');
    assert.equal(endpoints['restart-request'].path, '/v2/restart');
  });

  it('routes a message by its kind and parses the reply with the endpoint schema', () => {
    const endpoint = endpointFor(fixtures.voteRequest);
    assert.equal(`${endpoint.method} ${endpoint.path}`, 'POST /v1/vote');
    const reply = decodeMessageBody(endpoint.reply, serializeMessage(fixtures.voteReply));
    assert.equal(reply.granted, false);
    assert.equal(endpointFor(fixtures.manualPromote).path, '/v1/manual-promote');
  });
});

describe('wire: schemas cannot drift from the core types', () => {
  it('rejects at compile time a schema whose parsed type differs from the core type', () => {
    const drifted = ackSchema.unwrap().extend({ reason: z.string().nullable() }).readonly();
    const mutable = ackSchema.unwrap();
    // @ts-expect-error — a nullable reason is not the core's `reason: string`
    type _Nullable = Expect<Equals<z.output<typeof drifted>, Ack>>;
    // @ts-expect-error — a mutable object is not the core's readonly Ack
    type _Mutable = Expect<Equals<z.output<typeof mutable>, Ack>>;
    const sameType: Expect<Equals<z.output<typeof ackSchema>, Ack>> = true;
    assert.ok(sameType && drifted && mutable);
  });
});

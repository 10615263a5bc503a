// Goal: a term beyond 2^48 never gets past parsing — not in a message, a status, a reply or a state
// file — and is refused with its own code, PGVIP_TERM_OUT_OF_RANGE (400), so a node never holds a
// term whose successor is not an exact number (docs/design.md, Failure scenarios, row 22: a lease
// request for 2^53 − 1 made a node persist 2^53 at its next switchover, and it never started
// again). Existing state files load as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAX_TERM } from '../src/core/terms.js';
import { checkTerm } from '../src/auth/term.js';
import { decodeMessage, decodeMessageBody, encodeMessage } from '../src/wire/codec.js';
import { ackSchema, agentStatusSchema, leaseRequestSchema, voteRequestSchema } from '../src/wire/messages.js';
import { errorCatalogue } from '../src/errors.js';
import { createDurableFile } from '../src/state/durable-file.js';
import { agentDurableSchema, witnessStateFileSchema } from '../src/state/schemas.js';
import * as fixtures from './wire-fixtures.js';

const beyond = [MAX_TERM + 1, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 53 + 2, 1e300];

test('a message whose term or lastTerm is beyond 2^48 is refused with PGVIP_TERM_OUT_OF_RANGE (400)', () => {
  assert.equal(errorCatalogue.PGVIP_TERM_OUT_OF_RANGE.httpStatus, 400);
  for (const term of beyond) {
    const lease = { ...encodeMessage(fixtures.leaseRequest), term };
    assert.throws(() => decodeMessage(leaseRequestSchema, lease), { code: 'PGVIP_TERM_OUT_OF_RANGE', httpStatus: 400, detail: new RegExp(`^term: ${String(term).replace('+', '\\+')} is out of range: a term is a whole number from 0 to 2\\^48 \\(281474976710656\\); elections count up one at a time, so no real term gets near it$`) }, String(term));
    assert.throws(() => decodeMessageBody(leaseRequestSchema, JSON.stringify(lease)), { code: 'PGVIP_TERM_OUT_OF_RANGE' }, String(term));
    assert.throws(() => decodeMessage(voteRequestSchema, { ...encodeMessage(fixtures.voteRequest), lastTerm: term }), { code: 'PGVIP_TERM_OUT_OF_RANGE', detail: /^lastTerm: / });
    // Replies and statuses are untrusted too: a peer's status must not teach such a term either.
    assert.throws(() => decodeMessage(agentStatusSchema, { ...encodeMessage(fixtures.agentStatus), term }), { code: 'PGVIP_TERM_OUT_OF_RANGE' });
    assert.throws(() => decodeMessage(ackSchema, { ...encodeMessage(fixtures.ack), term }), { code: 'PGVIP_TERM_OUT_OF_RANGE' });
  }
  // 2^53 − 1 in the text reads back as that number exactly: the bound, not rounding, refuses it.
  assert.throws(() => decodeMessageBody(leaseRequestSchema, JSON.stringify(encodeMessage(fixtures.leaseRequest)).replace('"term":7', '"term":9007199254740991')), { code: 'PGVIP_TERM_OUT_OF_RANGE' });
});

test('the bound itself parses; other bad terms stay PGVIP_BAD_REQUEST', () => {
  const atBound = decodeMessage(leaseRequestSchema, { ...encodeMessage(fixtures.leaseRequest), term: MAX_TERM });
  assert.equal(atBound.term, MAX_TERM);
  for (const term of [-1, 2.5, '7', null]) {
    assert.throws(() => decodeMessage(leaseRequestSchema, { ...encodeMessage(fixtures.leaseRequest), term }), { code: 'PGVIP_BAD_REQUEST' }, String(term));
  }
});

test('a node never sends a term beyond the bound either', () => {
  assert.throws(() => encodeMessage({ ...fixtures.ack, term: MAX_TERM + 1 }), /term: a term is a whole number from 0 to 2\^48/);
});

test('checkTerm refuses a term beyond the bound before comparing it', () => {
  assert.throws(() => checkTerm(Number.MAX_SAFE_INTEGER, 3), { code: 'PGVIP_TERM_OUT_OF_RANGE' });
  assert.throws(() => checkTerm(2, 3), { code: 'PGVIP_STALE_TERM' });
  assert.doesNotThrow(() => checkTerm(MAX_TERM, 3));
});

test('state files: existing ones load as before; one holding a term beyond the bound says how to recover', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-term-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, state: unknown) => {
    const p = path.join(dir, name);
    writeFileSync(p, JSON.stringify({ format: 'pgvip-state', version: 1, state }));
    return p;
  };
  // As written by earlier releases.
  const agent = createDurableFile(file('agent-ok.json', { term: 12, primaryOfTerm: 'db-b' }), agentDurableSchema, { term: 0, primaryOfTerm: null });
  assert.deepEqual(agent.load(), { term: 12, primaryOfTerm: 'db-b' });
  const witness = { c1: { term: 12, primaryOfTerm: 'db-b', votedTerm: 11, votedFor: 'db-b', syncEligible: null, maintenance: false } };
  assert.deepEqual(createDurableFile(file('witness-ok.json', witness), witnessStateFileSchema, {}).load(), witness);
  // Poisoned by a release without the bound.
  const poisoned = createDurableFile(file('agent-bad.json', { term: Number.MAX_SAFE_INTEGER, primaryOfTerm: 'db-b' }), agentDurableSchema, { term: 0, primaryOfTerm: null });
  assert.throws(() => poisoned.load(), { code: 'PGVIP_STATE_CORRUPT', detail: /term: a term above 2\^48 .* was never elected: .*set it to the cluster's real term/ });
  const poisonedWitness = { c1: { ...witness.c1, votedTerm: MAX_TERM + 1 } };
  assert.throws(() => createDurableFile(file('witness-bad.json', poisonedWitness), witnessStateFileSchema, {}).load(), { code: 'PGVIP_STATE_CORRUPT', detail: /c1\.votedTerm: a term above 2\^48/ });
});

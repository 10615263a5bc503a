// Goal: a term reaches a grantor's durable state only when a vote, a forced failover or a handover
// created it. A lease request is the sender's own claim — anyone holding the cluster key can write
// one — so the witness and the standby refuse a lease request for a term above the newest they know
// and adopt nothing (docs/design.md, Failure scenarios, row 22: term 2^53 − 1 was adopted, and the
// next switchover persisted a term that was no safe integer: the node never started again). The
// legitimate ways in still work: the handover of a switchover the witness asked for, a primary's
// status, the witness's replies.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, MAX_TERM, PROTOCOL_VERSION, bootAgent, bootWitness, defaultAgentSettings, defaultTimings,
  initialWitnessDurable,
  stepAgent, stepWitness,
  termAfter, isTermInRange,
  type AgentStatus, type PeerReply, type PgSnapshot, type WitnessSettings, type WitnessState,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const leaseRequest = (term: number, from: string) => ({ ...env(term, from), kind: 'lease-request' as const, seq: 7, lsn: 100n, timeline: 1, syncStandby: null });
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: true, syncStandby: null, standbyInSync: false,
};
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: false, syncStandby: null, standbyInSync: false,
};
const statusOf = (from: string, term: number, primaryOfTerm: string, pg: PgSnapshot): AgentStatus => ({
  ...env(term, from), primaryOfTerm, role: primaryOfTerm === from ? 'primary' : 'standby', pg, leaseRemainingMs: 0, promotionBlocker: null, maintenance: false,
});

function replyOf(actions: readonly { kind: string }[]): PeerReply {
  const r = actions.find((a) => a.kind === 'reply') as { msg: PeerReply } | undefined;
  assert.ok(r, 'a reply');
  return r.msg;
}
const persists = (actions: readonly { kind: string }[]) => actions.filter((a) => a.kind === 'persist');

test('the term bound leaves room for the next term, and no term is created beyond it', () => {
  assert.equal(MAX_TERM, 2 ** 48);
  assert.ok(Number.isSafeInteger(MAX_TERM + 1) && MAX_TERM * 32 <= Number.MAX_SAFE_INTEGER + 1);
  assert.equal(termAfter(7), 8);
  assert.equal(termAfter(MAX_TERM), null);
  for (const bad of [-1, 1.5, MAX_TERM + 1, Number.MAX_SAFE_INTEGER, 2 ** 53, Infinity, Number.NaN]) {
    assert.equal(isTermInRange(bad), false, String(bad));
  }
  assert.ok(isTermInRange(0) && isTermInRange(MAX_TERM));
});

describe('the witness', () => {
  const settings: WitnessSettings = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'], timings: defaultTimings, replication: 'sync', lagBytesMax: 1n };
  const durable = { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a', syncEligible: 'db-b' };
  const w = bootWitness(settings, durable, -100_000);

  test('refuses a lease request for 2^53 − 1 or for the next term, persisting nothing', () => {
    for (const [term, from] of [[Number.MAX_SAFE_INTEGER, 'db-a'], [Number.MAX_SAFE_INTEGER, 'db-b'], [4, 'db-b'], [4, 'db-a'], [1000, 'db-b']] as const) {
      const out = stepWitness(w, { kind: 'request', nowMs: 0, msg: leaseRequest(term, from) });
      const r = replyOf(actionsOf(out));
      assert.ok(r.kind === 'lease-reply' && !r.granted, `${term} from ${from}`);
      assert.match(r.reason, new RegExp(`term ${term} is newer than term 3, the newest this node knows a vote or handover created`));
      assert.equal(r.term, 3, 'the reply carries the witness\'s own term');
      assert.deepEqual(persists(actionsOf(out)), [], 'nothing persisted');
      assert.deepEqual(out.state.durable, durable);
      assert.equal(out.state.promise?.seq === 7, false, 'nothing promised');
    }
  });

  test('refuses a lease request for term 0, which has no primary, on a fresh witness', () => {
    const fresh = bootWitness(settings, initialWitnessDurable, 0);
    for (const term of [0, 1]) {
      const out = stepWitness(fresh, { kind: 'request', nowMs: 0, msg: leaseRequest(term, 'db-b') });
      assert.ok(!(replyOf(actionsOf(out)) as { granted: boolean }).granted, String(term));
      assert.deepEqual(persists(actionsOf(out)), [], String(term));
    }
  });

  test('not even during a switchover it asked for: the handed-over term comes from the polls, and then the lease', () => {
    let s: WitnessState = { ...w, switchover: { to: 'db-b', atMs: 0, sentAtMs: 0 } };
    s = stepWitness(s, { kind: 'reply', nowMs: 1, msg: { ...env(3, 'db-a'), kind: 'ack', accepted: true, reason: 'switchover started' }, inReplyTo: 'switchover-request' }).state;
    // A forged request now, for a switchover that might never hand over, must not set the term.
    const early = stepWitness(s, { kind: 'request', nowMs: 2, msg: leaseRequest(4, 'db-b') });
    assert.ok(!(replyOf(actionsOf(early)) as { granted: boolean }).granted);
    assert.deepEqual(persists(actionsOf(early)), []);
    // The old primary's status shows the handover once it happened.
    const polled = stepWitness(early.state, { kind: 'poll', nowMs: 3, node: 'db-a', status: statusOf('db-a', 4, 'db-b', { ...primaryPg, writable: false }), pgReachable: true });
    assert.deepEqual(persists(actionsOf(polled)), [{ kind: 'persist', state: { ...durable, term: 4, primaryOfTerm: 'db-b', syncEligible: null } }]);
    assert.ok((replyOf(actionsOf(stepWitness(polled.state, { kind: 'request', nowMs: 4, msg: leaseRequest(4, 'db-b') }))) as { granted: boolean }).granted);
  });

  test('still learns a new term from a primary\'s status (a handover it missed, e.g. while restarting)', () => {
    const out = stepWitness(w, { kind: 'poll', nowMs: 0, node: 'db-b', status: statusOf('db-b', 4, 'db-b', primaryPg), pgReachable: true });
    assert.equal(out.state.durable.term, 4);
    assert.equal(out.state.durable.primaryOfTerm, 'db-b');
    // ... and then grants the new primary's lease.
    assert.ok((replyOf(actionsOf(stepWitness(out.state, { kind: 'request', nowMs: 1, msg: leaseRequest(4, 'db-b') }))) as { granted: boolean }).granted);
  });

  test('never adopts a term beyond the bound, whatever carries it', () => {
    const out = stepWitness(w, { kind: 'poll', nowMs: 0, node: 'db-b', status: statusOf('db-b', MAX_TERM + 1, 'db-b', primaryPg), pgReachable: true });
    assert.deepEqual(persists(actionsOf(out)), []);
  });

  test('refuses a forced failover past the bound instead of persisting a term no node could load', () => {
    const top = bootWitness(settings, { ...durable, term: MAX_TERM, votedTerm: MAX_TERM }, 0);
    const out = stepWitness(top, { kind: 'operator', nowMs: 0, command: { kind: 'failover', to: 'db-b', acceptDataLoss: true, by: 'test' } });
    assert.equal(out.verdict?.ok, false);
    assert.match(out.verdict?.message ?? '', /2\^48/);
    assert.deepEqual(persists(actionsOf(out)), []);
  });
});

describe('the standby', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness', timings: defaultTimings });
  const s = { ...bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000), pg: standbyPg, promise: null };

  test('refuses a lease request for 2^53 − 1 or for a term it has not learned, persisting nothing', () => {
    for (const term of [Number.MAX_SAFE_INTEGER, 4, 1000]) {
      const out = stepAgent(s, { kind: 'request', nowMs: 0, msg: leaseRequest(term, 'db-a') });
      const r = replyOf(actionsOf(out));
      assert.ok(r.kind === 'lease-reply' && !r.granted, String(term));
      assert.match(r.reason, new RegExp(`term ${term} is newer than term 3`));
      assert.deepEqual(persists(actionsOf(out)), [], 'nothing persisted');
      assert.deepEqual(out.state.durable, s.durable);
      assert.equal(out.state.promise, null, 'nothing promised');
    }
  });

  test('grants the lease once it learned the term from its peer\'s status', () => {
    const learned = stepAgent(s, { kind: 'tick', nowMs: 0, pg: standbyPg, writeProbe: 'not-run', peer: statusOf('db-a', 4, 'db-a', primaryPg) });
    assert.equal(learned.state.durable.term, 4);
    const out = stepAgent(learned.state, { kind: 'request', nowMs: 1, msg: leaseRequest(4, 'db-a') });
    assert.ok((replyOf(actionsOf(out)) as { granted: boolean }).granted);
  });

  test('grants a lease only to its peer: a request in its own name or the witness\'s is refused', () => {
    const unknown = { ...s, durable: { term: 3, primaryOfTerm: null } };
    for (const from of ['db-b', 'witness']) {
      const out = stepAgent(unknown, { kind: 'request', nowMs: 0, msg: leaseRequest(3, from) });
      assert.ok(!(replyOf(actionsOf(out)) as { granted: boolean }).granted, from);
      assert.deepEqual(persists(actionsOf(out)), [], from);
    }
  });

  test('accepts a handover only from the primary of its term and only for the next term', () => {
    const handover = (term: number, from: string) => ({ ...env(term, from), kind: 'handover' as const, to: 'db-b', finalLsn: 100n, timeline: 1 });
    for (const [term, from] of [[Number.MAX_SAFE_INTEGER, 'db-a'], [5, 'db-a'], [4, 'witness'], [4, 'db-b']] as const) {
      const out = stepAgent(s, { kind: 'request', nowMs: 0, msg: handover(term, from) });
      const r = replyOf(actionsOf(out));
      assert.ok(r.kind === 'ack' && !r.accepted, `${term} from ${from}`);
      assert.deepEqual(persists(actionsOf(out)), [], `${term} from ${from}`);
    }
    const out = stepAgent(s, { kind: 'request', nowMs: 0, msg: handover(4, 'db-a') });
    assert.ok((replyOf(actionsOf(out)) as { accepted: boolean }).accepted);
    assert.deepEqual(out.state.durable, { term: 4, primaryOfTerm: 'db-b' });
  });

  test('takes a forced promotion only from the witness, which voted for it', () => {
    const promote = (from: string) => ({ ...env(4, from), kind: 'manual-promote' as const, acceptDataLoss: true as const, requestedBy: 'ops' });
    const forged = stepAgent(s, { kind: 'request', nowMs: 0, msg: promote('db-a') });
    assert.ok(!(replyOf(actionsOf(forged)) as { accepted: boolean }).accepted);
    assert.deepEqual(persists(actionsOf(forged)), []);
    assert.deepEqual(stepAgent(s, { kind: 'request', nowMs: 0, msg: promote('witness') }).state.durable, { term: 4, primaryOfTerm: 'db-b' });
  });

  test('never adopts a term beyond the bound from its peer\'s status or a reply', () => {
    const tick = stepAgent(s, { kind: 'tick', nowMs: 0, pg: standbyPg, writeProbe: 'not-run', peer: statusOf('db-a', MAX_TERM + 1, 'db-a', primaryPg) });
    assert.deepEqual(persists(actionsOf(tick)), []);
    const reply = stepAgent(s, { kind: 'reply', nowMs: 0, msg: { ...env(MAX_TERM + 1, 'witness'), kind: 'ack', accepted: true, reason: 'x' } });
    assert.deepEqual(persists(actionsOf(reply)), []);
  });
});

test('a primary at the bound refuses a switchover instead of handing over a term no node could load', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
  let s = bootAgent(settings, { term: MAX_TERM, primaryOfTerm: 'db-a' }, 0);
  s = { ...s, pg: primaryPg, lease: { ...s.lease, held: { term: MAX_TERM, validUntilMs: 10_000 } } };
  const out = stepAgent(s, { kind: 'request', nowMs: 1, msg: { ...env(MAX_TERM, 'witness'), kind: 'switchover-request', to: 'db-b' } });
  const r = replyOf(actionsOf(out));
  assert.ok(r.kind === 'ack' && !r.accepted);
  assert.match(r.reason, /2\^48/);
  assert.equal(out.state.switchover, null);
});

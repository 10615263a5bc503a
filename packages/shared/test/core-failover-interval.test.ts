// Goal: failover.minIntervalMs holds a second automatic failover (the witness refuses the vote and
// failover-blocked says why and until when) and never a forced manual one; 0, the default, holds
// nothing. Driven through stepWitness with the messages the agents send.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootWitness, defaultTimings, initialWitnessDurable, stepWitness, PROTOCOL_VERSION, type PeerRequest,
  type VoteReply, type WitnessOutput, type WitnessState,
} from '../src/core/index.js';

const t = defaultTimings;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const settings = {
  cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: t, replication: 'sync' as const,
  lagBytesMax: 1n,
};
const MIN_MS = 600_000;

function witness(minIntervalMs?: number): WitnessState {
  const s = minIntervalMs === undefined ? settings : { ...settings, failoverMinIntervalMs: minIntervalMs };
  // Booted long ago: the promise it assumed at boot has run out.
  return bootWitness(s, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
}

function request(w: WitnessState, nowMs: number, msg: PeerRequest): WitnessOutput {
  return stepWitness(w, { kind: 'request', nowMs, msg });
}

function voteReply(out: WitnessOutput): VoteReply {
  const msg = out.replies[0]?.msg;
  assert.ok(msg !== undefined && msg.kind === 'vote-reply', out.reason);
  return msg;
}

function notices(out: WitnessOutput, event: string): string[] {
  return out.notifications.filter((n) => n.event === event).map((n) => n.detail);
}

/** The primary of `term` releases its lease (fast path) and the other node asks for the next term. */
function failOver(w: WitnessState, nowMs: number, term: number, from: string, to: string): WitnessOutput {
  w = request(w, nowMs, { ...env(term, from), kind: 'lease-release', reason: 'postgresql failed', leaseSeq: 0 }).state;
  return request(w, nowMs + 5, { ...env(term + 1, to), kind: 'vote-request', lastTerm: term, lsn: 100n, timeline: 1 });
}

/** The first automatic failover (db-a to db-b, term 4) at 0 ms, then db-b syncs db-a again. */
function afterFirstFailover(minIntervalMs?: number): WitnessState {
  const first = failOver(witness(minIntervalMs), 0, 3, 'db-a', 'db-b');
  assert.equal(voteReply(first).granted, true, first.reason);
  const restore = { ...env(4, 'db-b'), kind: 'sync-update' as const, standby: 'db-a', change: 'restore' as const };
  return request(first.state, 1_000, restore).state;
}

describe('witness: failover.minIntervalMs', () => {
  test('the new primary dies inside the interval: the vote is refused and failover-blocked says until when', () => {
    const second = failOver(afterFirstFailover(MIN_MS), 60_000, 4, 'db-b', 'db-a');
    const reply = voteReply(second);
    assert.equal(reply.granted, false);
    assert.match(reply.reason, /failover\.minIntervalMs \(600000 ms\) holds automatic failovers until 540 s from now /);
    const blocked = notices(second, 'failover-blocked');
    assert.equal(blocked.length, 1, second.reason);
    assert.match(blocked[0]!, /primary db-b failed in term 4.*until 540 s from now \(the last one, to db-b in term 4, was 60 s ago\)/);
    assert.match(blocked[0]!, /unless the standby still counts as streaming \(timings\.streamingGraceMs 10000 ms\): pgvip failover --force is never held$/);
    assert.equal(second.state.durable.term, 4, 'no new term');
    assert.equal(second.persist, null);
  });

  test('once the interval has run out, the same request wins the vote', () => {
    const w = afterFirstFailover(MIN_MS);
    const held = failOver(w, MIN_MS - 1, 4, 'db-b', 'db-a');
    assert.equal(voteReply(held).granted, false);
    const retry = { ...env(5, 'db-a'), kind: 'vote-request' as const, lastTerm: 4, lsn: 100n, timeline: 1 };
    const later = request(held.state, MIN_MS + 5, retry);
    assert.equal(voteReply(later).granted, true, later.reason);
    assert.equal(later.state.durable.term, 5);
    assert.equal(later.state.durable.primaryOfTerm, 'db-a');
  });

  test('a forced manual failover inside the interval is not held', () => {
    const w = request(afterFirstFailover(MIN_MS), 60_000, {
      ...env(4, 'db-b'), kind: 'lease-release', reason: 'postgresql failed', leaseSeq: 0,
    }).state;
    const command = { kind: 'failover' as const, to: 'db-a', acceptDataLoss: true, by: 'alice' };
    const out = stepWitness(w, { kind: 'operator', nowMs: 60_010, command });
    assert.equal(out.verdict?.ok, true, out.verdict?.message);
    assert.equal(out.state.durable.term, 5);
    assert.equal(out.state.durable.primaryOfTerm, 'db-a');
    assert.deepEqual(notices(out, 'failover-blocked'), []);
  });

  test('the default (no minimum, also 0) holds nothing: the second failover follows at once', () => {
    for (const min of [undefined, 0]) {
      const second = failOver(afterFirstFailover(min), 60_000, 4, 'db-b', 'db-a');
      assert.equal(voteReply(second).granted, true, second.reason);
      assert.deepEqual(notices(second, 'failover-blocked'), []);
    }
  });

  test('the first failover since the witness started is never held (nothing to measure from)', () => {
    const first = failOver(witness(MIN_MS), 0, 3, 'db-a', 'db-b');
    assert.equal(voteReply(first).granted, true, first.reason);
  });
});

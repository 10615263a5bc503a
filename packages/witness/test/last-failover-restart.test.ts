// Goal: failover.minIntervalMs outlives a restart of the witness. The last failover it voted for is
// in its state file (as a wall-clock instant), a restarted witness reads it back onto its new
// monotonic clock and still refuses a second automatic failover inside the interval, and a state
// file written before the field existed still loads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  bootWitness, defaultTimings, initialWitnessDurable, PROTOCOL_VERSION, stepWitness, type PeerRequest,
  type WitnessState,
} from '@pgvip/shared';
import { openWitnessStateStore, stateFileName } from '../src/state-store.js';
import { manualClock, tempDir } from './witness-helpers.js';

const settings = {
  cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings,
  replication: 'sync' as const, lagBytesMax: 1n, failoverMinIntervalMs: 600_000,
};
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });

/** The primary of `term` releases its lease and the other node asks for the next term: the vote's answer. */
function failOver(w: WitnessState, nowMs: number, term: number, from: string, to: string) {
  const release: PeerRequest = { ...env(term, from), kind: 'lease-release', reason: 'postgresql failed', leaseSeq: 0 };
  const released = stepWitness(w, { kind: 'request', nowMs, msg: release }).state;
  const vote: PeerRequest = { ...env(term + 1, to), kind: 'vote-request', lastTerm: term, lsn: 100n, timeline: 1 };
  const out = stepWitness(released, { kind: 'request', nowMs: nowMs + 5, msg: vote });
  const reply = out.replies[0]?.msg;
  assert.ok(reply?.kind === 'vote-reply', out.reason);
  return { out, reply };
}

test('a restarted witness still holds failover.minIntervalMs from the failover it voted for before', (t) => {
  const stateDir = tempDir(t);
  // Given a witness that voted db-b into term 4 after db-a failed
  const clock1 = manualClock();
  const store1 = openWitnessStateStore(stateDir, clock1);
  const booted = bootWitness(settings, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, clock1.monotonicMs() - 100_000);
  const first = failOver(booted, clock1.monotonicMs(), 3, 'db-a', 'db-b');
  assert.equal(first.reply.granted, true, first.reply.reason);
  assert.ok(first.out.persist !== null);
  store1.save('c1', first.out.persist);
  const onDisk = JSON.parse(readFileSync(path.join(stateDir, stateFileName), 'utf8')) as { state: Record<string, { lastFailover?: unknown }> };
  assert.deepEqual(onDisk.state.c1?.lastFailover, { term: 4, to: 'db-b', at: new Date(clock1.wallMs() + 5).toISOString() });

  // When the witness restarts two minutes later (a new process: its monotonic clock starts afresh)
  const clock2 = manualClock(clock1.wallMs() + 120_000);
  const durable = openWitnessStateStore(stateDir, clock2).durable('c1');
  assert.equal(durable.lastFailover?.term, 4);
  // Booted long enough ago that the promises it may have made before have run out.
  let w = bootWitness(settings, { ...durable, syncEligible: 'db-a' }, clock2.monotonicMs() - 100_000);
  // Then a failover of db-b back to db-a is held: 480 s of the 600 s interval are left
  const second = failOver(w, clock2.monotonicMs(), 4, 'db-b', 'db-a');
  assert.equal(second.reply.granted, false);
  assert.match(second.reply.reason, /failover\.minIntervalMs \(600000 ms\) holds automatic failovers until 480 s from now \(the last one, to db-b in term 4, was 120 s ago\)/);
  // And once the interval has run out, it is granted.
  w = bootWitness(settings, { ...durable, syncEligible: 'db-a' }, clock2.monotonicMs() - 100_000);
  const later = failOver(w, clock2.monotonicMs() + 480_000, 4, 'db-b', 'db-a');
  assert.equal(later.reply.granted, true, later.reply.reason);
});

test('a state file without the last failover (written before it was kept) still loads, and holds nothing', (t) => {
  const stateDir = tempDir(t);
  const clock = manualClock();
  openWitnessStateStore(stateDir, clock).save('c1', { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a' });
  const raw = readFileSync(path.join(stateDir, stateFileName), 'utf8');
  assert.doesNotMatch(raw, /lastFailover/, 'the file is what a release before the field wrote');
  const durable = openWitnessStateStore(stateDir, clock).durable('c1');
  assert.deepEqual(durable, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a' });
  const w = bootWitness(settings, { ...durable, syncEligible: 'db-b' }, clock.monotonicMs() - 100_000);
  assert.equal(failOver(w, clock.monotonicMs(), 3, 'db-a', 'db-b').reply.granted, true);
});

// Goal: the order rules written on the core's output type hold — persist first, fence before release,
// stop the WAL receiver before promoting, and every step says one sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable,
  stepAgent, stepWitness,
  PROTOCOL_VERSION, type AgentState, type PgSnapshot,
} from '../src/core/index.js';

const settings = (self: 'db-a' | 'db-b') => defaultAgentSettings({ cluster: 'c1', self, peer: self === 'db-a' ? 'db-b' : 'db-a', witness: 'witness', timings: defaultTimings });
const primaryPg: PgSnapshot = { running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false, syncStandby: 'db-b', standbyInSync: true };
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });

function primaryWithLease(): AgentState {
  let s = bootAgent(settings('db-a'), { term: 3, primaryOfTerm: 'db-a' }, 0);
  s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: null }).state;
  const seq = s.lease.sends.at(-1)!.seq;
  s = stepAgent(s, { kind: 'reply', nowMs: 5, msg: { ...env(3, 'witness'), kind: 'lease-reply', seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' } }).state;
  return s;
}

test('a lease counts from the send time and lapses into a fence before anything else', () => {
  const s = primaryWithLease();
  const { leaseMs, maxDriftRatio, leaseMarginMs } = defaultTimings;
  assert.equal(s.lease.held?.validUntilMs, 0 + leaseMs * (1 - maxDriftRatio) - leaseMarginMs);
  const out = stepAgent(s, { kind: 'tick', nowMs: 5000, pg: primaryPg, writeProbe: 'ok', peer: null });
  // Nothing of the step runs before the fence (not the lease renewals it sends too), and no persist.
  assert.deepEqual(actionsOf(out).map((a) => a.kind)[0], 'effect');
  assert.deepEqual(out.fence?.effect, { kind: 'fence', mode: 'read-only' });
  assert.match(out.reason, /fencing: lease for term 3 lapsed/);
});

test('the fast path fences first and releases the lease only after the fence is done', () => {
  const s = primaryWithLease();
  const deadPg: PgSnapshot = { ...primaryPg, running: false, writable: false };
  const out = stepAgent(s, { kind: 'tick', nowMs: 500, pg: deadPg, writeProbe: 'failed', peer: null });
  const fence = actionsOf(out).find((a) => a.kind === 'effect');
  assert.ok(fence?.kind === 'effect' && fence.effect.kind === 'fence');
  assert.ok(!actionsOf(out).some((a) => a.kind === 'send' && a.msg.kind === 'lease-release'), 'no release before the fence finished');
  const done = stepAgent(out.state, { kind: 'effect-done', nowMs: 520, result: { id: fence.id, ok: true, detail: 'fenced', finalLsn: 100n } });
  const releases = actionsOf(done).filter((a) => a.kind === 'send' && a.msg.kind === 'lease-release');
  assert.equal(releases.length, 2, 'released to the witness and the standby');
});

test('a won vote is persisted first, then the WAL receiver stops before promotion (the VIP moves beside it)', () => {
  let s = bootAgent(settings('db-b'), { term: 3, primaryOfTerm: 'db-a' }, -10_000);
  s = { ...s, campaign: { term: 4, sentAtMs: 0 }, promise: null };
  const out = stepAgent(s, { kind: 'reply', nowMs: 10, msg: { ...env(4, 'witness'), kind: 'vote-reply', granted: true, reason: 'ok', primaryOfTerm: 'db-b' } });
  assert.deepEqual(actionsOf(out)[0], { kind: 'persist', state: { term: 4, primaryOfTerm: 'db-b' } });
  const standbyPg: PgSnapshot = {
    ...primaryPg, inRecovery: true, writable: false, streaming: false, syncStandby: null, standbyInSync: false,
  };
  const next = stepAgent({ ...out.state, pg: standbyPg }, { kind: 'tick', nowMs: 20, pg: standbyPg, writeProbe: 'not-run', peer: null });
  const effects = actionsOf(next).filter((a) => a.kind === 'effect').map((a) => a.kind === 'effect' && a.effect.kind);
  // The EC2 call goes out beside the promotion, in the VIP's own slot (agent/vip.ts).
  assert.deepEqual(effects, ['move-vip-cloud', 'stop-wal-receiver']);
  assert.equal(next.state.inFlight?.kind, 'stop-wal-receiver');
});

test('the witness persists its vote before it answers, and refuses a second candidate in the same term', () => {
  const ws = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as const, timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  let w = bootWitness({ ...ws, nodes: ['db-a', 'db-b'] }, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
  w = { ...w, promise: null, releasedTerm: 3 };
  const out = stepWitness(w, { kind: 'request', nowMs: 0, msg: { ...env(4, 'db-b'), kind: 'vote-request', lastTerm: 3, lsn: 100n, timeline: 1 } });
  assert.equal(actionsOf(out)[0]?.kind, 'persist');
  const reply = actionsOf(out).find((a) => a.kind === 'reply');
  assert.ok(reply?.kind === 'reply' && reply.msg.kind === 'vote-reply' && reply.msg.granted);
  assert.match(out.reason, /voted for db-b in term 4/);
  const again = stepWitness(out.state, { kind: 'request', nowMs: 1, msg: { ...env(4, 'db-a'), kind: 'vote-request', lastTerm: 3, lsn: 100n, timeline: 1 } });
  const r2 = actionsOf(again).find((a) => a.kind === 'reply');
  assert.ok(r2?.kind === 'reply' && r2.msg.kind === 'vote-reply' && !r2.msg.granted);
});

test('a release older than the lease granted since is ignored; a newer one is honoured', () => {
  const ws = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  let w = bootWitness(ws, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
  const req = (seq: number) => ({ ...env(3, 'db-a'), kind: 'lease-request' as const, seq, lsn: 1n, timeline: 1, syncStandby: 'db-b' });
  w = stepWitness(w, { kind: 'request', nowMs: 0, msg: req(2 ** 33 + 1) }).state; // granted to a newer process
  const old = stepWitness(w, { kind: 'request', nowMs: 10, msg: { ...env(3, 'db-a'), kind: 'lease-release', reason: 'old', leaseSeq: 2 ** 32 + 7 } });
  assert.equal(old.state.releasedTerm, null);
  assert.ok(old.state.promise !== null);
  assert.match(old.reason, /ignored a release/);
  const fresh = stepWitness(w, { kind: 'request', nowMs: 10, msg: { ...env(3, 'db-a'), kind: 'lease-release', reason: 'pg died', leaseSeq: 2 ** 33 + 1 } });
  assert.equal(fresh.state.releasedTerm, 3);
  assert.equal(fresh.state.promise, null);
});

test('only the answer to the switchover request settles a pending switchover', () => {
  const ws = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  let w = bootWitness(ws, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, 0);
  w = { ...w, switchover: { to: 'db-b', atMs: 0, sentAtMs: 1 } };
  const ack = { ...env(3, 'db-a'), kind: 'ack' as const, accepted: true, reason: 'ok' };
  assert.notEqual(stepWitness(w, { kind: 'reply', nowMs: 2, msg: ack, inReplyTo: 'manual-promote' }).state.switchover, null);
  assert.equal(stepWitness(w, { kind: 'reply', nowMs: 2, msg: ack, inReplyTo: 'switchover-request' }).state.switchover, null);
});

test('a primary woken after a pause with its lease lapsed fences before anything else, without waiting for a new observation', () => {
  const s = primaryWithLease();
  const out = stepAgent(s, { kind: 'wake', nowMs: 9_000, pausedMs: 8_500 });
  assert.deepEqual(actionsOf(out).map((a) => a.kind)[0], 'effect');
  assert.deepEqual(out.fence?.effect, { kind: 'fence', mode: 'read-only' });
  assert.match(out.reason, /fencing: lease for term 3 lapsed/);
  // Within its lease, a wake changes nothing.
  const early = stepAgent(s, { kind: 'wake', nowMs: 1_000, pausedMs: 1_001 });
  assert.ok(!actionsOf(early).some((a) => a.kind === 'effect' && a.effect.kind === 'fence'));
});

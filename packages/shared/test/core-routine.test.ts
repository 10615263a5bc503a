// Goal: the cores say which steps are routine (nothing decided, persisted or notified), so the
// daemons choose log levels from the output instead of matching the wording of reason sentences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable,
  stepAgent, stepWitness,
  PROTOCOL_VERSION, type AgentStatus, type PgSnapshot,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: 'db-b', standbyInSync: true,
};
const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });

test('an agent step is routine only when it decided, persisted and notified nothing', () => {
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  const first = stepAgent(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: null });
  assert.equal(first.routine, true, `a renewal within the boot grace is routine: ${first.reason}`);
  s = first.state;
  const seq = s.lease.sends.at(-1)!.seq;
  const grant = { ...env(3, 'witness'), kind: 'lease-reply' as const, seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
  const granted = stepAgent(s, { kind: 'reply', nowMs: 5, msg: grant });
  assert.equal(granted.routine, true, `a granted renewal is routine: ${granted.reason}`);
  const lapsed = stepAgent(granted.state, { kind: 'tick', nowMs: 9_000, pg: primaryPg, writeProbe: 'ok', peer: null });
  assert.match(lapsed.reason, /fencing/);
  assert.equal(lapsed.routine, false, 'a fence is news');
  const learned = stepAgent(s, { kind: 'reply', nowMs: 5, msg: { ...grant, ...env(4, 'witness'), granted: false, primaryOfTerm: 'db-b' } });
  assert.equal(learned.routine, false, 'a new term (persisted) is news');
  const woke = stepAgent(granted.state, { kind: 'wake', nowMs: 100, pausedMs: 50 });
  assert.equal(actionsOf(woke).length, 0);
  assert.equal(woke.routine, false, 'a wake after a pause is news even when it changes nothing');
});

test('a witness step is routine only when it decided, persisted and notified nothing', () => {
  const ws = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  const w = bootWitness(ws, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
  const st: AgentStatus = { ...env(3, 'db-a'), primaryOfTerm: 'db-a', role: 'primary', pg: primaryPg, leaseRemainingMs: 1000, promotionBlocker: null, maintenance: false };
  const polled = stepWitness(w, { kind: 'poll', nowMs: 0, node: 'db-a', status: st, pgReachable: true });
  assert.equal(polled.routine, true, polled.reason);
  const maintenance = stepWitness(w, { kind: 'operator', nowMs: 0, command: { kind: 'maintenance', on: true, by: 'ops' } });
  assert.equal(maintenance.routine, false, maintenance.reason);
  const newer = stepWitness(w, { kind: 'poll', nowMs: 0, node: 'db-b', status: { ...st, ...env(4, 'db-b'), primaryOfTerm: 'db-b' }, pgReachable: true });
  assert.equal(newer.routine, false, newer.reason);
});

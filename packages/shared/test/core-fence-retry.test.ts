// Goal: a fence that failed is tried again at the next heartbeat, never in the step that brings its
// failure. In the agent a fence that fails at once (a refused session, a missing binary) was retried
// in an unbroken chain of steps that starved the agent's own event loop: no renewals, no answers, one
// CPU at 100 % (seen with a stalled fake server in packages/agent/test/runner-stalled-look.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootAgent, defaultAgentSettings, defaultTimings, stepAgent,
  PROTOCOL_VERSION, type AgentOutput, type AgentState, type PgSnapshot,
} from '../src/core/index.js';

const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: false, syncStandby: 'db-b', standbyInSync: true,
};

function primaryWithLease(): AgentState {
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: null }).state;
  const seq = s.lease.sends.at(-1)!.seq;
  const env = { v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: 'witness' };
  const granted = { ...env, kind: 'lease-reply' as const, seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
  return stepAgent(s, { kind: 'reply', nowMs: 5, msg: granted }).state;
}

const fenceOf = (out: AgentOutput) => out.fence?.effect;

test('a failed fence is tried again a heartbeat later, not in the step its failure arrives in', () => {
  const lapsedAt = 5_000;
  const first = stepAgent(primaryWithLease(), { kind: 'tick', nowMs: lapsedAt, pg: primaryPg, writeProbe: 'ok', peer: null });
  assert.deepEqual(fenceOf(first), { kind: 'fence', mode: 'read-only' }, 'the lapsed lease fences');
  const id = first.fence!.id;
  const failedAt = lapsedAt + 3;
  const failed = stepAgent(first.state, { kind: 'effect-done', nowMs: failedAt, result: { id, ok: false, detail: 'refused at once' } });
  assert.equal(fenceOf(failed), undefined, 'no new fence in the step that brings the failure');
  assert.match(failed.reason, /fence failed \(refused at once\); trying again at the next heartbeat/);
  const early = stepAgent(failed.state, { kind: 'tick', nowMs: failedAt + defaultTimings.heartbeatMs - 1, pg: primaryPg, writeProbe: 'ok', peer: null });
  assert.equal(fenceOf(early), undefined, 'nor before a heartbeat has passed');
  const again = stepAgent(early.state, { kind: 'tick', nowMs: failedAt + defaultTimings.heartbeatMs, pg: primaryPg, writeProbe: 'ok', peer: null });
  assert.deepEqual(fenceOf(again), { kind: 'fence', mode: 'read-only' }, 'a heartbeat after the failure it is tried again');
  const done = stepAgent(again.state, { kind: 'effect-done', nowMs: again.state.nowMs + 3, result: { id: again.fence!.id, ok: true, detail: 'ok' } });
  assert.equal(done.state.fence.fenced, true);
  assert.equal(done.state.fence.failedAtMs, undefined, 'a fence that took forgets the earlier failure');
});

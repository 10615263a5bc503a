// Goal: a node that may have won a vote whose reply was lost, and then learned its term without a
// primary, asks the witness again (found by the simulator, seeds 101518 and 105246: the cluster
// otherwise stayed without a primary for good, each node waiting for one nobody named).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionsOf, bootAgent, defaultAgentSettings, defaultTimings, stepAgent, PROTOCOL_VERSION, type PgSnapshot } from '../src/core/index.js';

const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness', timings: defaultTimings });
// Not streaming for long: no longer eligible to ask for a NEW term.
const staleStandby: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: false, syncStandby: null, standbyInSync: false,
};

test('Given term 2 with no known primary, When the node ticks, Then it asks the witness for term 2 (not 3), though the peer is not seen failing and it is not eligible', () => {
  const s = bootAgent(settings, { term: 2, primaryOfTerm: null }, -60_000);
  const out = stepAgent({ ...s, promise: null, lastStreamingAtMs: -50_000 }, { kind: 'tick', nowMs: 0, pg: staleStandby, writeProbe: 'not-run', peer: null });
  const asks = actionsOf(out).flatMap((a) => (a.kind === 'send' && a.msg.kind === 'vote-request' ? [a.msg] : []));
  assert.equal(asks.length, 1, out.reason);
  assert.equal(asks[0]!.term, 2);
});

test('Given term 2 whose primary is the peer, When the peer looks healthy, Then the node asks for nothing', () => {
  const s = bootAgent(settings, { term: 2, primaryOfTerm: 'db-a' }, -60_000);
  const out = stepAgent({ ...s, promise: null }, { kind: 'tick', nowMs: 0, pg: { ...staleStandby, streaming: true }, writeProbe: 'not-run', peer: null });
  assert.ok(!actionsOf(out).some((a) => a.kind === 'send' && a.msg.kind === 'vote-request'), out.reason);
});

test('Given the witness refuses the repeated ask and names the primary, Then the node learns it', () => {
  const s = bootAgent(settings, { term: 2, primaryOfTerm: null }, -60_000);
  const asked = stepAgent({ ...s, promise: null }, { kind: 'tick', nowMs: 0, pg: staleStandby, writeProbe: 'not-run', peer: null }).state;
  const out = stepAgent(asked, { kind: 'reply', nowMs: 5, msg: { v: PROTOCOL_VERSION, cluster: 'c1', term: 2, from: 'witness', kind: 'vote-reply', granted: false, reason: 'term 2 is not above 2', primaryOfTerm: 'db-a' } });
  assert.equal(out.state.durable.primaryOfTerm, 'db-a');
});

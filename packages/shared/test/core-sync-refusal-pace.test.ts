// Goal: a primary whose request to degrade (or restore) sync was refused asks again a heartbeat
// after its request, never in the step the refusal arrives in. Asking at once made a ping-pong as
// fast as the round trip with the witness: 2010 requests in the flap row's last minute (~33 a
// second), while the witness's view, and so its answer, stayed the same.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, stepAgent, PROTOCOL_VERSION, type AgentOutput, type PgSnapshot,
} from '../src/core/index.js';

const hb = defaultTimings.heartbeatMs;
const env = { v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: 'witness' };
const lost: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: 'db-b', standbyInSync: false,
};
const asks = (out: AgentOutput) => out.sends.filter((x) => x.msg.kind === 'sync-update').length;

test('a refused degrade is asked again a heartbeat after the request, not when the refusal arrives', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000);
  s = { ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 1_000_000 } } };
  let out = stepAgent(s, { kind: 'tick', nowMs: 0, pg: lost, writeProbe: 'ok', peer: null });
  // The VIP's own steps come first, one effect at a time; then the degrade, once the loss is old enough.
  for (let t = 1; t < 40 && asks(out) === 0; t++) {
    const f = out.state.inFlight;
    out = f !== null
      ? stepAgent(out.state, { kind: 'effect-done', nowMs: out.state.nowMs, result: { id: f.id, ok: true, detail: 'ok', vipPlacement: 'here' } })
      : stepAgent(out.state, { kind: 'tick', nowMs: t * defaultTimings.syncDegradeAfterMs / 4, pg: lost, writeProbe: 'ok', peer: null });
  }
  assert.equal(asks(out), 1, out.reason);
  assert.match(out.reason, /asking the witness to degrade to async/);
  const askedAt = out.state.nowMs;
  const refusal = { ...env, kind: 'sync-update-reply' as const, granted: false, reason: 'the standby still looks healthy to the witness' };
  const refused = stepAgent(out.state, { kind: 'reply', nowMs: askedAt + 2, msg: refusal });
  assert.equal(asks(refused), 0, 'not asked again in the step the refusal arrives in');
  const early = stepAgent(refused.state, { kind: 'tick', nowMs: askedAt + hb - 1, pg: lost, writeProbe: 'ok', peer: null });
  assert.equal(asks(early), 0, 'nor within a heartbeat of the request');
  const again = stepAgent(early.state, { kind: 'tick', nowMs: askedAt + hb, pg: lost, writeProbe: 'ok', peer: null });
  assert.equal(asks(again), 1, 'a heartbeat after the request it is asked again');
});

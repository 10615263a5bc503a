// Goal: a switchover hands the next term over only after its quorum recorded it (docs/design.md,
// Quorum on etcd): the primary emits quorum-handover {term, to} once the standby replayed its final
// LSN, and persists the next term and sends the handover only when that effect reports ok. When it
// fails (etcd refused the txn), the switchover aborts like one that timed out: the primary stays
// primary of its term, fenced, until a renewed lease lets it unfence. The witness backend runs the
// same steps; its shell reports the effect done at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  actionsOf, agentInvariantViolations, agentStepViolations, bootAgent, defaultAgentSettings, defaultTimings, quorumOf,
  stepAgent, PROTOCOL_VERSION, type AgentOutput, type AgentState, type AgentStatus, type PgSnapshot,
  type Quorum,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 500n, replayLsn: 500n, streaming: false,
  syncStandby: 'db-b', standbyInSync: true,
};
const standby = (replayLsn: bigint): AgentStatus => ({
  ...env(3, 'db-b'), primaryOfTerm: 'db-a', role: 'standby', leaseRemainingMs: 0, promotionBlocker: null, maintenance: false,
  pg: {
    ...primaryPg, inRecovery: true, writable: false, streaming: true, lsn: replayLsn, replayLsn, syncStandby: null,
    standbyInSync: false,
  },
});

/** Checks the core's own invariants over a step, as the simulator does. */
function step(s: AgentState, input: Parameters<typeof stepAgent>[1]): AgentOutput {
  const out = stepAgent(s, input);
  assert.deepEqual(agentStepViolations(s, out), [], `after ${input.kind}: ${out.reason}`);
  return out;
}

/** db-a, primary of term 3 with a lease, fenced for a switchover to db-b whose standby caught up. */
function caughtUp(quorum: Quorum): { s: AgentState; out: AgentOutput } {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', quorum, timings: defaultTimings });
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  s = step(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: standby(500n) }).state;
  const seq = s.lease.sends.at(-1)!.seq;
  const grant = { ...env(3, quorum.id), kind: 'lease-reply' as const, seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
  s = step(s, { kind: 'reply', nowMs: 5, msg: grant }).state;
  if (s.inFlight !== null) s = step(s, { kind: 'effect-done', nowMs: 6, result: { id: s.inFlight.id, ok: true, detail: 'ok' } }).state;
  const req = step(s, { kind: 'request', nowMs: 10, msg: { ...env(3, 'witness'), kind: 'switchover-request', to: 'db-b' } });
  const fence = req.fence;
  assert.ok(fence !== null, req.reason);
  s = step(req.state, { kind: 'effect-done', nowMs: 20, result: { id: fence.id, ok: true, detail: 'fenced', finalLsn: 600n } }).state;
  assert.equal(s.switchover?.step, 'catching-up');
  const fencedPg = { ...primaryPg, writable: false, lsn: 600n, replayLsn: 600n };
  const out = step(s, { kind: 'tick', nowMs: 60, pg: fencedPg, writeProbe: 'read-only', peer: standby(600n) });
  return { s: out.state, out };
}

for (const quorum of [quorumOf('witness', 'witness'), quorumOf('etcd', 'witness')]) {
  test(`Given a caught-up standby (${quorum.backend}), Then quorum-handover comes first and the handover only after it is done`, () => {
    const { s, out } = caughtUp(quorum);
    const effect = out.effects.find((e) => e.effect.kind === 'quorum-handover');
    assert.deepEqual(effect?.effect, { kind: 'quorum-handover', term: 3, to: 'db-b' });
    assert.equal(out.persist, null, 'term 4 is not persisted before the quorum recorded it');
    assert.ok(!out.sends.some((x) => x.msg.kind === 'handover'), 'no handover before the quorum recorded it');
    assert.equal(s.switchover?.step, 'handing-over');
    assert.match(out.reason, quorum.backend === 'etcd' ? /etcd records term 4 for it first/ : /the witness records term 4/);
    // Ticks meanwhile wait for it, even past the switchover's timeout.
    const late = step(s, { kind: 'tick', nowMs: 60 + s.settings.switchoverTimeoutMs + 1, pg: { ...primaryPg, writable: false }, writeProbe: 'read-only', peer: standby(600n) });
    assert.equal(late.state.switchover?.step, 'handing-over');
    const done = step(late.state, { kind: 'effect-done', nowMs: late.state.nowMs + 5, result: { id: effect!.id, ok: true, detail: 'recorded' } });
    assert.deepEqual(done.persist, { term: 4, primaryOfTerm: 'db-b' });
    const handover = actionsOf(done).find((a) => a.kind === 'send' && a.msg.kind === 'handover');
    assert.ok(handover?.kind === 'send' && handover.to === 'db-b' && handover.msg.term === 4, done.reason);
    assert.equal(done.state.switchover, null);
  });
}

test('Given etcd refuses the handover txn, Then the switchover aborts and the primary keeps its term, unfenced while its lease lasts', () => {
  const { s, out } = caughtUp(quorumOf('etcd', 'witness'));
  const effect = out.effects.find((e) => e.effect.kind === 'quorum-handover')!;
  const failed = step(s, { kind: 'effect-done', nowMs: 70, result: { id: effect.id, ok: false, detail: 'handover txn refused: the leader key is gone' } });
  assert.equal(failed.persist, null);
  assert.ok(!failed.sends.some((x) => x.msg.kind === 'handover'));
  assert.equal(failed.state.switchover, null);
  assert.deepEqual(failed.state.durable, { term: 3, primaryOfTerm: 'db-a' });
  assert.match(failed.reason, /switchover to db-b aborted: etcd did not record term 4: handover txn refused/);
  assert.ok(failed.notifications.some((n) => n.event === 'switchover' && n.detail.includes('aborted')));
  // The lease granted at 0 still runs: writes resume at once, as after a switchover that timed out.
  assert.ok(failed.effects.some((e) => e.effect.kind === 'unfence'), failed.reason);
});

test('Given the handover txn fails after the lease ran out, Then the primary stays fenced until etcd or the standby renews it', () => {
  const { s, out } = caughtUp(quorumOf('etcd', 'witness'));
  const effect = out.effects.find((e) => e.effect.kind === 'quorum-handover')!;
  const failed = step(s, { kind: 'effect-done', nowMs: 4000, result: { id: effect.id, ok: false, detail: 'handover txn not run: etcd unreachable' } });
  assert.equal(failed.state.switchover, null);
  assert.ok(!failed.effects.some((e) => e.effect.kind === 'unfence'), 'no unfence without a lease');
  const fencedPg = { ...primaryPg, writable: false };
  const tick = step(failed.state, { kind: 'tick', nowMs: 4100, pg: fencedPg, writeProbe: 'read-only', peer: standby(600n) });
  assert.deepEqual(tick.sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort(), ['db-b', 'etcd']);
  assert.ok(!tick.effects.some((e) => e.effect.kind === 'unfence'), 'no unfence before a lease is renewed');
  const seq = tick.state.lease.sends.at(-1)!.seq;
  const msg = { ...env(3, 'db-b'), kind: 'lease-reply' as const, seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' };
  const grant = step(tick.state, { kind: 'reply', nowMs: 4110, msg });
  assert.equal(grant.state.lease.held?.term, 3);
  // The VIP check the lapsed lease started finishes first (one pipeline effect at a time).
  const f = grant.state.inFlight;
  const next = f === null ? grant : step(grant.state, { kind: 'effect-done', nowMs: 4120, result: { id: f.id, ok: true, detail: 'here', vipPlacement: 'here' } });
  assert.ok([...grant.effects, ...next.effects].some((e) => e.effect.kind === 'unfence'), next.reason);
});

test('Given a newer term learned while the quorum records the handover, Then its late ok hands nothing over', () => {
  const { s, out } = caughtUp(quorumOf('etcd', 'witness'));
  const effect = out.effects.find((e) => e.effect.kind === 'quorum-handover')!;
  const newer = { ...env(5, 'etcd'), kind: 'lease-reply' as const, seq: 1, granted: false, reason: 'term 5', maintenance: false, primaryOfTerm: 'db-b' };
  const learned = step(s, { kind: 'reply', nowMs: 65, msg: newer });
  assert.equal(learned.state.switchover, null);
  const done = step(learned.state, { kind: 'effect-done', nowMs: 70, result: { id: effect.id, ok: true, detail: 'recorded' } });
  assert.ok(!done.sends.some((x) => x.msg.kind === 'handover'));
});

test('The invariants catch a handover sent without the quorum\'s record, and a handing-over step without its effect', () => {
  const { s } = caughtUp(quorumOf('witness', 'witness'));
  assert.deepEqual(agentInvariantViolations(s), []);
  assert.match(agentInvariantViolations({ ...s, inFlight: null }).join(), /without a quorum-handover in flight/);
  const before = { ...s, switchover: { step: 'catching-up' as const, to: 'db-b', startedAtMs: 0, finalLsn: 600n } };
  const forged: AgentOutput = {
    ...stepAgent(s, { kind: 'wake', nowMs: 61, pausedMs: 0 }),
    sends: [{ to: 'db-b', msg: { ...env(4, 'db-a'), kind: 'handover', to: 'db-b', finalLsn: 600n, timeline: 1 } }],
  };
  assert.match(agentStepViolations(before, forged).join(), /that its quorum had not recorded/);
});

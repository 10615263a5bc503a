// Goal: the core's planned restart (docs/design.md, Planned restarts) step by step. The primary
// fences before it restarts, keeps renewing its lease while its server is down, takes no fast path
// and keeps the VIP, and unfences once the server is back; at the deadline the hold ends and the
// fast path follows. Refusals: a request not from the witness, for another term, to a primary that is
// not healthy; the witness refuses a second restart while one runs and hears a node's refusal.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable, stepAgent,
  stepWitness, PROTOCOL_VERSION, type AgentOutput, type AgentState, type AgentStatus, type PeerReply, type PgSnapshot,
} from '../src/core/index.js';

const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: 'db-b', standbyInSync: true,
};
const downPg: PgSnapshot = { ...primaryPg, running: false, writable: false, lsn: 0n, timeline: 0 };
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const restartRequest = (from = 'witness', term = 3) => ({ ...env(term, from), kind: 'restart-request' as const, to: 'db-a', timeoutMs: 10_000 });

const effects = (out: AgentOutput) => actionsOf(out).flatMap((a) => (a.kind === 'effect' ? [{ id: a.id, kind: a.effect.kind }] : []));
const sends = (out: AgentOutput) => actionsOf(out).flatMap((a) => (a.kind === 'send' ? [a.msg] : []));
const ack = (out: { replies: readonly { msg: PeerReply }[] }) => {
  const msg = out.replies[0]?.msg;
  assert.ok(msg?.kind === 'ack');
  return msg;
};

/** db-a, the healthy primary of term 3 with a lease and the VIP. */
function healthyPrimary(): AgentState {
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: null }).state;
  const seq = s.lease.sends.at(-1)!.seq;
  s = stepAgent(s, { kind: 'reply', nowMs: 5, msg: { ...env(3, 'witness'), kind: 'lease-reply', seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' } }).state;
  if (s.vipInFlight !== null) s = stepAgent(s, { kind: 'effect-done', nowMs: 8, result: { id: s.vipInFlight.id, ok: true, detail: 'here', vipPlacement: 'here' } }).state;
  assert.equal(s.vip.phase, 'held');
  return s;
}

/** Renews the lease with the grant of both grantors, as they answer. */
function granted(out: AgentOutput, nowMs: number): AgentState {
  let s = out.state;
  for (const m of sends(out)) {
    if (m.kind !== 'lease-request') continue;
    s = stepAgent(s, { kind: 'reply', nowMs, msg: { ...env(3, 'witness'), kind: 'lease-reply', seq: m.seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' } }).state;
  }
  return s;
}

describe('agent: a planned restart of the primary', () => {
  test('fence, restart, renew the lease while down, no fast path, keep the VIP, unfence when back', () => {
    let s = healthyPrimary();
    const accepted = stepAgent(s, { kind: 'request', nowMs: 100, msg: restartRequest() });
    assert.equal(ack(accepted).accepted, true);
    assert.deepEqual(effects(accepted).map((e) => e.kind), ['fence'], 'it fences first');
    const fence = effects(accepted)[0]!;
    let out = stepAgent(accepted.state, { kind: 'effect-done', nowMs: 120, result: { id: fence.id, ok: true, detail: 'fenced', finalLsn: 140n } });
    assert.deepEqual(effects(out).map((e) => e.kind), ['restart-postgres'], 'then restarts');
    const restart = effects(out)[0]!;
    s = out.state;
    // The server is down for 4 s: every tick renews the lease (with the final LSN) and nothing else.
    for (let now = 500; now <= 4_500; now += 500) {
      out = stepAgent(s, { kind: 'tick', nowMs: now, pg: downPg, writeProbe: 'failed', peer: null });
      assert.deepEqual(effects(out), [], `no fast path at ${now} ms: ${out.reason}`);
      const renewals = sends(out).filter((m) => m.kind === 'lease-request');
      assert.equal(renewals.length, 2, 'renewed with both grantors');
      assert.ok(renewals.every((m) => m.kind === 'lease-request' && m.lsn === 140n && m.timeline === 1), 'with the report from before the restart');
      s = granted(out, now + 2);
      assert.equal(s.writeProbeFailures, 0);
      assert.equal(s.vip.phase, 'held', 'the VIP stays');
    }
    s = stepAgent(s, { kind: 'effect-done', nowMs: 4_600, result: { id: restart.id, ok: true, detail: 'restarted' } }).state;
    // Back, still fenced (read-only): it unfences under its lease, and the hold ends once it writes.
    out = stepAgent(s, { kind: 'tick', nowMs: 5_000, pg: { ...primaryPg, writable: false }, writeProbe: 'read-only', peer: null });
    assert.deepEqual(effects(out).map((e) => e.kind), ['unfence']);
    assert.equal(out.state.vip.phase, 'held', 'the VIP never starts to leave');
    const unfence = effects(out)[0]!;
    s = stepAgent(granted(out, 5_002), { kind: 'effect-done', nowMs: 5_010, result: { id: unfence.id, ok: true, detail: 'unfenced' } }).state;
    out = stepAgent(s, { kind: 'tick', nowMs: 5_500, pg: primaryPg, writeProbe: 'ok', peer: null });
    assert.equal(out.state.restart, null, 'the hold ends once it writes');
    assert.equal(out.state.durable.term, 3);
  });

  test('a restart not back by its deadline becomes an ordinary failure: the fast path releases the lease', () => {
    const accepted = stepAgent(healthyPrimary(), { kind: 'request', nowMs: 100, msg: restartRequest() });
    const fence = effects(accepted)[0]!;
    let s = stepAgent(accepted.state, { kind: 'effect-done', nowMs: 120, result: { id: fence.id, ok: true, detail: 'fenced', finalLsn: 140n } }).state;
    let released = false;
    for (let now = 500; now <= 12_000 && !released; now += 500) {
      const out = stepAgent(s, { kind: 'tick', nowMs: now, pg: downPg, writeProbe: 'failed', peer: null });
      released = sends(out).some((m) => m.kind === 'lease-release');
      assert.ok(!released || now > 10_100, `released at ${now} ms, inside the hold`);
      s = granted(out, now + 2);
    }
    assert.ok(released, 'released after the deadline');
  });

  test('refused: not from the witness, another term, a primary that is not healthy', () => {
    const s = healthyPrimary();
    assert.match(ack(stepAgent(s, { kind: 'request', nowMs: 100, msg: restartRequest('db-b') })).reason, /asked for by the witness/);
    assert.match(ack(stepAgent(s, { kind: 'request', nowMs: 100, msg: restartRequest('witness', 2) })).reason, /term 2 is not this node's term 3/);
    const down = stepAgent(s, { kind: 'tick', nowMs: 200, pg: downPg, writeProbe: 'failed', peer: null }).state;
    assert.match(ack(stepAgent(down, { kind: 'request', nowMs: 300, msg: restartRequest() })).reason, /not a healthy primary/);
  });
});

describe('witness: a planned restart', () => {
  const wsettings = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  const status = (restarting: boolean): AgentStatus => ({
    ...env(3, 'db-a'), primaryOfTerm: 'db-a', role: restarting ? 'fenced' : 'primary', pg: restarting ? downPg : primaryPg,
    leaseRemainingMs: 2_000, promotionBlocker: null, maintenance: false, ...(restarting ? { restarting: true } : {}),
  });
  const witness = () => {
    let w = bootWitness(wsettings, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a' }, -100_000);
    w = stepWitness(w, { kind: 'poll', nowMs: 0, node: 'db-a', status: status(false), pgReachable: true }).state;
    return w;
  };

  test('the failed checks of a node that says it restarts are held, a second restart is refused, and the end is announced', () => {
    const asked = stepWitness(witness(), { kind: 'operator', nowMs: 10, command: { kind: 'restart', node: 'db-a', timeoutMs: 30_000, by: 'op' } });
    assert.equal(asked.verdict?.ok, true, asked.verdict?.message);
    assert.equal(asked.sends[0]?.msg.kind, 'restart-request');
    const again = stepWitness(asked.state, { kind: 'operator', nowMs: 20, command: { kind: 'restart', node: 'db-b', timeoutMs: 30_000, by: 'op' } });
    assert.equal(again.verdict?.ok, false);
    assert.match(again.verdict!.message, /a planned restart of db-a is still running/);
    let w = stepWitness(asked.state, { kind: 'reply', nowMs: 30, inReplyTo: 'restart-request', msg: { ...env(3, 'db-a'), kind: 'ack', accepted: true, reason: 'restarting' } }).state;
    for (let now = 500; now <= 5_000; now += 500) {
      const out = stepWitness(w, { kind: 'poll', nowMs: now, node: 'db-a', status: status(true), pgReachable: false });
      assert.ok(!out.notifications.some((n) => n.event === 'failure-detected'), out.reason);
      w = out.state;
    }
    assert.equal(w.views['db-a']?.failedChecks, 0);
    const back = stepWitness(w, { kind: 'poll', nowMs: 5_500, node: 'db-a', status: status(false), pgReachable: true });
    assert.ok(back.notifications.some((n) => n.event === 'planned-restart' && /db-a is back as primary/.test(n.detail)));
    assert.equal(back.state.restart, null);
  });

  test('a node\'s refusal ends the restart and is announced', () => {
    const asked = stepWitness(witness(), { kind: 'operator', nowMs: 10, command: { kind: 'restart', node: 'db-a', timeoutMs: 30_000, by: 'op' } });
    const refused = stepWitness(asked.state, { kind: 'reply', nowMs: 30, inReplyTo: 'restart-request', msg: { ...env(3, 'db-a'), kind: 'ack', accepted: false, reason: 'a switchover is running' } });
    assert.equal(refused.state.restart, null);
    assert.ok(refused.notifications.some((n) => n.event === 'planned-restart' && /refused .*a switchover is running/.test(n.detail)));
  });
});

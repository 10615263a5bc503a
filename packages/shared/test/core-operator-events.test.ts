// Goal: the events operators subscribe to are raised by the cores when — and only when — they mean
// what the docs say: failover-blocked (the primary failed and no automatic failover will follow),
// node-unreachable for a standby, node-recovered, rejoined, rejoin-failed (with a growing wait
// between attempts), vip-error after repeated VIP failures.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable, promiseMs,
  rejoinBackoffMs,
  stepAgent, stepWitness,
  vipErrorAfterFailures, PROTOCOL_VERSION, type AgentState, type AgentStatus, type PgSnapshot, type WitnessState,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: true, syncStandby: null, standbyInSync: false,
};
const primaryPg: PgSnapshot = { running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false, syncStandby: 'db-b', standbyInSync: true };
const t = defaultTimings;

function status(from: string, role: AgentStatus['role'], pg: PgSnapshot, promotionBlocker: string | null = null): AgentStatus {
  return { ...env(3, from), primaryOfTerm: 'db-a', role, pg, leaseRemainingMs: 0, promotionBlocker, maintenance: false };
}

type Notified = { event: string; detail: string };
function notices(actions: readonly { kind: string }[]): Notified[] {
  return actions.flatMap((a) => (a.kind === 'notify' ? [a as unknown as Notified] : []));
}

/** Polls both nodes every heartbeat from `fromMs` to `toMs`; returns the witness and every notification. */
function pollFor(
  w: WitnessState,
  fromMs: number,
  toMs: number,
  a: AgentStatus | null,
  b: AgentStatus | null,
  pgReachable = false,
): { w: WitnessState; events: Notified[] } {
  const events: Notified[] = [];
  for (let now = fromMs; now <= toMs; now += t.heartbeatMs) {
    for (const [node, st] of [['db-a', a], ['db-b', b]] as const) {
      const out = stepWitness(w, { kind: 'poll', nowMs: now, node, status: st, pgReachable: st === null ? pgReachable : true });
      w = out.state;
      events.push(...notices(actionsOf(out)));
    }
  }
  return { w, events };
}

const witnessSettings = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: t, replication: 'sync' as const, lagBytesMax: 1n };
function healthyWitness(): WitnessState {
  const w = bootWitness(witnessSettings, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
  return pollFor(w, 0, 1_000, status('db-a', 'primary', primaryPg), status('db-b', 'standby', standbyPg)).w;
}
const blockedAfterMs = promiseMs(t) + (t.failureChecks + 2) * t.heartbeatMs;

describe('witness: failover-blocked', () => {
  test('the primary is gone and the standby says it cannot be promoted: one failover-blocked, with its reason', () => {
    const stale = { ...standbyPg, streaming: false };
    const { events } = pollFor(healthyWitness(), 1_500, 1_500 + blockedAfterMs + 10 * t.heartbeatMs, null, status('db-b', 'standby', stale, 'lags 20 MB behind, more than lagBytesMax'));
    const blocked = events.filter((e) => e.event === 'failover-blocked');
    assert.equal(blocked.length, 1, JSON.stringify(events));
    assert.match(blocked[0]!.detail, /primary db-a failed in term 3.*db-b cannot be promoted: lags 20 MB/);
    assert.ok(events.some((e) => e.event === 'failure-detected'));
  });

  test('the primary is gone and the standby could take over: no failover-blocked (a failover is under way)', () => {
    const { events } = pollFor(healthyWitness(), 1_500, 1_500 + blockedAfterMs + 10 * t.heartbeatMs, null, status('db-b', 'candidate', { ...standbyPg, streaming: false }));
    assert.deepEqual(events.filter((e) => e.event === 'failover-blocked'), []);
  });

  test('only the witness lost the primary, the standby still streams from it (row 8): no failover-blocked', () => {
    const { events } = pollFor(healthyWitness(), 1_500, 1_500 + 3 * blockedAfterMs, null, status('db-b', 'standby', standbyPg, 'the primary is alive'));
    assert.deepEqual(events.filter((e) => e.event === 'failover-blocked'), []);
  });

  test('neither node answers the witness: failover-blocked names that', () => {
    const { events } = pollFor(healthyWitness(), 1_500, 1_500 + blockedAfterMs + 10 * t.heartbeatMs, null, null);
    const blocked = events.filter((e) => e.event === 'failover-blocked');
    assert.equal(blocked.length, 1);
    assert.match(blocked[0]!.detail, /db-b does not answer the witness either/);
  });

  test('a vote refused for want of eligibility reports failover-blocked at once', () => {
    let w = healthyWitness();
    w = pollFor(w, 1_500, 1_500 + 4 * t.heartbeatMs, null, status('db-b', 'candidate', { ...standbyPg, streaming: false })).w;
    w = { ...w, durable: { ...w.durable, syncEligible: null }, promise: null };
    const out = stepWitness(w, { kind: 'request', nowMs: 4_000, msg: { ...env(4, 'db-b'), kind: 'vote-request', lastTerm: 3, lsn: 100n, timeline: 1 } });
    const blocked = notices(actionsOf(out)).filter((e) => e.event === 'failover-blocked');
    assert.equal(blocked.length, 1);
    assert.match(blocked[0]!.detail, /refused db-b's vote request: db-b is not the sync-eligible standby/);
  });
});

describe('witness: node-unreachable and node-recovered', () => {
  test('a standby that stops answering is reported once, and its return as a streaming standby once', () => {
    let w = healthyWitness();
    const gone = pollFor(w, 1_500, 6_000, status('db-a', 'primary', primaryPg), null);
    assert.deepEqual(gone.events.map((e) => e.event), ['node-unreachable']);
    assert.match(gone.events[0]!.detail, /db-b did not answer 3 consecutive polls/);
    w = gone.w;
    const back = pollFor(w, 6_500, 9_000, status('db-a', 'primary', primaryPg), status('db-b', 'standby', standbyPg));
    assert.deepEqual(back.events.map((e) => e.event), ['node-recovered']);
    assert.match(back.events[0]!.detail, /db-b answers again as standby/);
  });

  test('a failed primary is recovered only once it is a healthy primary or standby again', () => {
    let w = healthyWitness();
    w = pollFor(w, 1_500, 3_500, status('db-a', 'fenced', { ...primaryPg, writable: false }), status('db-b', 'standby', standbyPg)).w;
    const fenced = pollFor(w, 4_000, 6_000, status('db-a', 'fenced', { ...primaryPg, writable: false }), status('db-b', 'standby', standbyPg));
    assert.ok(!fenced.events.some((e) => e.event === 'node-recovered'));
    const back = pollFor(fenced.w, 6_500, 7_000, status('db-a', 'primary', primaryPg), status('db-b', 'standby', standbyPg));
    assert.deepEqual(back.events.map((e) => e.event), ['node-recovered']);
  });
});

describe('witness: rejoin-failed and rejoined', () => {
  test('a rejoin attempt that ends in anything but a standby is rejoin-failed, once per term; a successful one is rejoined, once', () => {
    const w0 = bootWitness(witnessSettings, { ...initialWitnessDurable, term: 4, primaryOfTerm: 'db-b', syncEligible: null }, -100_000);
    const newPrimary = { ...status('db-b', 'primary', primaryPg), term: 4, primaryOfTerm: 'db-b' };
    const old = (role: AgentStatus['role'], pg: PgSnapshot) => ({ ...status('db-a', role, pg), term: 4, primaryOfTerm: 'db-b' });
    const demoted = { ...primaryPg, writable: false };
    let w = w0;
    const events: Notified[] = [];
    for (const [role, pg] of [['rejoining', demoted], ['demoted', demoted], ['rejoining', demoted], ['demoted', demoted]] as const) {
      const r = pollFor(w, 0, 0, old(role, pg), newPrimary);
      w = r.w;
      events.push(...r.events);
    }
    assert.deepEqual(events.map((e) => e.event), ['rejoin-failed']);
    assert.match(events[0]!.detail, /db-a tried to rejoin as a standby of db-b and is demoted again/);
    const ok = pollFor(pollFor(w0, 0, 0, old('rejoining', demoted), newPrimary).w, 500, 500, old('standby', standbyPg), newPrimary);
    assert.deepEqual(ok.events.map((e) => [e.event, e.detail]), [['rejoined', 'db-a is a standby of db-b again']]);
    assert.deepEqual(pollFor(ok.w, 1_000, 3_000, old('standby', standbyPg), newPrimary).events, [], 'once');
  });
});

describe('agent: rejoin-failed and vip-error', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: t });
  const demotedPg: PgSnapshot = { ...primaryPg, writable: false };
  const newPrimary: AgentStatus = { ...env(4, 'db-b'), primaryOfTerm: 'db-b', role: 'primary', pg: { ...primaryPg, syncStandby: null, standbyInSync: false }, leaseRemainingMs: 2000, promotionBlocker: null, maintenance: false };

  type Effected = { kind: 'effect'; id: number; effect: { kind: string } };
  const effectsOf = (actions: readonly { kind: string }[]): Effected[] => actions.filter((a): a is Effected => a.kind === 'effect');
  /**
   * Ticks once and completes every other effect it starts (the VIP check says: elsewhere); returns
   * the rejoin it started, if any.
   */
  function tick(s: AgentState, nowMs: number): { state: AgentState; rejoin: Effected | undefined } {
    let out = stepAgent(s, { kind: 'tick', nowMs, pg: demotedPg, writeProbe: 'not-run', peer: newPrimary });
    // The rejoin may start beside a VIP check (its own slot), in any of these outputs.
    let rejoin = effectsOf(actionsOf(out)).find((e) => e.effect.kind === 'rejoin');
    for (let i = 0; i < 5; i++) {
      const other = effectsOf(actionsOf(out)).find((e) => e.effect.kind !== 'rejoin');
      if (other === undefined) break;
      out = stepAgent(out.state, { kind: 'effect-done', nowMs, result: { id: other.id, ok: true, detail: 'done', vipPlacement: 'elsewhere' } });
      rejoin ??= effectsOf(actionsOf(out)).find((e) => e.effect.kind === 'rejoin');
    }
    return { state: out.state, rejoin };
  }

  test('a failed rejoin is reported, and the next attempt waits 1 s, then 2 s, …', () => {
    const booted = bootAgent(settings, { term: 4, primaryOfTerm: 'db-b' }, -100_000);
    let s = { ...booted, fence: { ...booted.fence, fenced: true } };
    let now = 0;
    for (let failure = 1; failure <= 3; failure++) {
      let step = tick(s, now);
      if (step.rejoin === undefined) step = tick(step.state, now + 1);
      const effect = step.rejoin;
      assert.ok(effect, `attempt ${failure} starts`);
      const out = stepAgent(step.state, { kind: 'effect-done', nowMs: now + 10, result: { id: effect.id, ok: false, detail: 'pg_rewind: could not connect; base backup: password authentication failed' } });
      const reported = notices(actionsOf(out));
      assert.equal(reported.length, 1);
      assert.equal(reported[0]!.event, 'rejoin-failed');
      assert.match(reported[0]!.detail, new RegExp(`${failure} in a row; next try in ${rejoinBackoffMs(failure) / 1000} s`));
      s = out.state;
      assert.equal(tick(s, now + 10 + rejoinBackoffMs(failure) - 1).rejoin, undefined, 'no attempt before the wait is over');
      now += 10 + rejoinBackoffMs(failure);
    }
    assert.equal(rejoinBackoffMs(20), 60_000, 'the wait stops growing at a minute');
  });

  test('vip-error is reported once when VIP steps keep failing, and again only after one succeeded', () => {
    let s: AgentState = { ...bootAgent(settings, { term: 4, primaryOfTerm: 'db-a' }, -100_000), pg: primaryPg };
    const fail = (id: number, nowMs: number) => stepAgent({ ...s, vipInFlight: { id, kind: 'verify-vip', effect: { kind: 'verify-vip' }, startedAtMs: nowMs - 100 } }, { kind: 'effect-done', nowMs, result: { id, ok: false, detail: 'DescribeNetworkInterfaces: RequestLimitExceeded' } });
    const events: Notified[] = [];
    for (let i = 1; i <= vipErrorAfterFailures + 2; i++) {
      const out = fail(i, i * 500);
      events.push(...notices(actionsOf(out)));
      s = out.state;
    }
    assert.deepEqual(events.map((e) => e.event), ['vip-error']);
    assert.match(events[0]!.detail, /3 VIP steps in a row failed, the last \(verify-vip\): DescribeNetworkInterfaces: RequestLimitExceeded/);
    s = stepAgent({ ...s, vipInFlight: { id: 99, kind: 'verify-vip', effect: { kind: 'verify-vip' }, startedAtMs: 9_900 } }, { kind: 'effect-done', nowMs: 10_000, result: { id: 99, ok: true, detail: 'here', vipPlacement: 'here' } }).state;
    assert.equal(s.vip.failures, 0);
  });
});

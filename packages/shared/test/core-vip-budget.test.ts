// Goal: the core moves the VIP only while its lease outlives the EC2 call's budget, and takes that
// budget from the validated timings (timings.vipCallBudgetMs), so check-config and the core agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, defaultAgentSettings, defaultTimings, stepAgent, type AgentState, type PgSnapshot, type Timings,
} from '../src/core/index.js';

const promotingPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: null, standbyInSync: false,
};

/** db-a, just promoted for term 3 with `leaseLeftMs` of lease: what it does with the VIP. */
function afterPromotion(timings: Timings, leaseLeftMs: number): string[] {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings });
  const booted = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  const s: AgentState = {
    ...booted,
    nowMs: 1000,
    pg: promotingPg,
    promise: null,
    lease: { ...booted.lease, held: { term: 3, validUntilMs: 1000 + leaseLeftMs } },
    inFlight: { id: 7, kind: 'promote', effect: { kind: 'promote' }, startedAtMs: 990 },
  };
  const out = stepAgent(s, { kind: 'effect-done', nowMs: 1000, result: { id: 7, ok: true, detail: 'promoted' } });
  return actionsOf(out).flatMap((a) => (a.kind === 'effect' ? [`${a.effect.kind}${'budgetMs' in a.effect ? ` ${a.effect.budgetMs}` : ''}`] : []));
}

test('a promoted node moves the VIP with the budget of its timings, only while its lease outlives it', () => {
  const t: Timings = { ...defaultTimings, vipCallBudgetMs: 400 };
  const room = 400 + t.leaseMarginMs;
  assert.deepEqual(afterPromotion(t, room), ['move-vip-cloud 400']);
  const moves = (effects: string[]) => effects.filter((e) => e.startsWith('move-vip-cloud'));
  assert.deepEqual(moves(afterPromotion(t, room - 1)), [], 'not with less lease than the budget and the margin');
  assert.deepEqual(moves(afterPromotion({ ...t, vipCallBudgetMs: 1500 }, room)), [], 'a longer budget needs more lease');
});

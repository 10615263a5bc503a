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

/**
 * db-a, primary of term 3 with `leaseLeftMs` of lease, its promotion under way: what it does with the
 * VIP (it moves it beside the promotion, agent/vip.ts vipWhilePromoting).
 */
function whilePromoting(timings: Timings, leaseLeftMs: number): string[] {
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
  const out = stepAgent(s, { kind: 'wake', nowMs: 1000, pausedMs: 0 });
  return actionsOf(out).flatMap((a) => (a.kind === 'effect' ? [`${a.effect.kind}${'budgetMs' in a.effect ? ` ${a.effect.budgetMs}` : ''}`] : []));
}

test('a promoting node moves the VIP with the budget of its timings, only while its lease outlives it', () => {
  const t: Timings = { ...defaultTimings, vipCallBudgetMs: 400 };
  const room = 400 + t.leaseMarginMs;
  assert.deepEqual(whilePromoting(t, room), ['move-vip-cloud 400']);
  const moves = (effects: string[]) => effects.filter((e) => e.startsWith('move-vip-cloud'));
  assert.deepEqual(moves(whilePromoting(t, room - 1)), [], 'not with less lease than the budget and the margin');
  assert.deepEqual(moves(whilePromoting({ ...t, vipCallBudgetMs: 1500 }, room)), [], 'a longer budget needs more lease');
});

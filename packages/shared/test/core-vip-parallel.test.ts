// Goal: with a slow EC2 remap nothing that can run in parallel waits for it (issue 18). The new
// primary's EC2 call goes out in the step that wins the term, beside the promotion's first effect,
// never before the term is won nor while its promise to the old primary lasts; a VIP check in flight
// holds up no rejoin; and while EC2 has not remapped yet the agent asks again without re-sending the
// call more than once per vipCallBudgetMs (EC2 throttles both per account).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, defaultAgentSettings, defaultTimings, stepAgent, PROTOCOL_VERSION,
  type AgentOutput, type AgentState, type AgentStatus, type PgSnapshot,
} from '../src/core/index.js';

const t = defaultTimings;
const settings = (self: 'db-a' | 'db-b') =>
  defaultAgentSettings({ cluster: 'c1', self, peer: self === 'db-a' ? 'db-b' : 'db-a', witness: 'witness', timings: t });
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: null, standbyInSync: false,
};

function effects(out: AgentOutput): Array<{ id: number; kind: string }> {
  return actionsOf(out).flatMap((a) => (a.kind === 'effect' ? [{ id: a.id, kind: a.effect.kind }] : []));
}

/** db-b, standby of term 3, that asked the witness for term 4 at `askedAtMs` and hears its answer. */
function voteAnswered(granted: boolean, promiseUntilMs: number | null): AgentOutput {
  const booted = bootAgent(settings('db-b'), { term: 3, primaryOfTerm: 'db-a' }, -100_000);
  const s: AgentState = {
    ...booted,
    nowMs: 1000,
    pg: standbyPg,
    promise: promiseUntilMs === null ? null : { holder: 'db-a', term: 3, untilMs: promiseUntilMs, seq: 1 },
    campaign: { term: 4, sentAtMs: 990 },
  };
  return stepAgent(s, {
    kind: 'reply', nowMs: 1000,
    msg: { ...env(4, 'witness'), kind: 'vote-reply', granted, reason: granted ? 'voted' : 'refused', primaryOfTerm: granted ? 'db-b' : 'db-a' },
  });
}

test('the EC2 call goes out in the step that wins the term, beside the promotion', () => {
  const out = voteAnswered(true, null);
  const kinds = effects(out).map((e) => e.kind);
  assert.ok(kinds.includes('stop-wal-receiver'), `the promotion starts (effects: ${kinds.join(', ')})`);
  assert.ok(kinds.includes('move-vip-cloud'), `and the EC2 call with it, not after the promotion (effects: ${kinds.join(', ')})`);
  assert.equal(out.state.vipInFlight?.kind, 'move-vip-cloud', 'in the VIP slot');
  assert.equal(out.state.inFlight?.kind, 'stop-wal-receiver', 'the promotion keeps the pipeline slot');
  const move = actionsOf(out).find((a) => a.kind === 'effect' && a.effect.kind === 'move-vip-cloud');
  assert.deepEqual(move?.kind === 'effect' ? move.effect : null, { kind: 'move-vip-cloud', term: 4, budgetMs: t.vipCallBudgetMs });
});

test('no EC2 call before the term is won, nor while the promise to the old primary lasts', () => {
  // (A standby that never held the VIP checks where EC2 routes it before it lets it leave: verify-vip.)
  const moves = (out: AgentOutput) => effects(out).map((e) => e.kind).filter((k) => k !== 'verify-vip');
  assert.deepEqual(moves(voteAnswered(false, null)), [], 'a refused vote moves nothing');
  // A promise still running (only a forced or restarted path can meet one after a vote): neither the
  // promotion nor the VIP starts until it is over.
  const waiting = voteAnswered(true, 1500);
  assert.deepEqual(moves(waiting), []);
  const check = waiting.state.vipInFlight;
  const checked = check === null ? waiting : stepAgent(waiting.state, {
    kind: 'effect-done', nowMs: 1100, result: { id: check.id, ok: true, detail: 'elsewhere', vipPlacement: 'elsewhere' },
  });
  assert.deepEqual(moves(checked), [], 'nor once EC2 said where the VIP is');
  const later = stepAgent(checked.state, { kind: 'wake', nowMs: 1501, pausedMs: 0 });
  assert.deepEqual(moves(later).sort(), ['move-vip-cloud', 'stop-wal-receiver']);
});

test('the promoted node goes on with the VIP from where the parallel move is, without a second call', () => {
  let out = voteAnswered(true, null);
  const pending = new Map(effects(out).map((e) => [e.kind, e.id]));
  // The EC2 call is answered and the address added while PostgreSQL still promotes.
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1010, result: { id: pending.get('move-vip-cloud')!, ok: true, detail: 'assigned' } });
  const add = effects(out).find((e) => e.kind === 'add-vip-local')!;
  assert.ok(add !== undefined, 'the OS address follows the EC2 call at once');
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1015, result: { id: add.id, ok: true, detail: 'added' } });
  const verify = effects(out).find((e) => e.kind === 'verify-vip')!;
  assert.ok(verify !== undefined, 'then the check');
  // The promotion's steps finish meanwhile.
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1020, result: { id: pending.get('stop-wal-receiver')!, ok: true, detail: 'stopped' } });
  const clear = effects(out).find((e) => e.kind === 'set-sync-standby')!;
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1030, result: { id: clear.id, ok: true, detail: 'cleared' } });
  const promote = effects(out).find((e) => e.kind === 'promote')!;
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1100, result: { id: promote.id, ok: true, detail: 'promoted' } });
  assert.ok(!effects(out).some((e) => e.kind === 'move-vip-cloud'), 'the promotion does not send the call again');
  out = stepAgent(out.state, { kind: 'effect-done', nowMs: 1110, result: { id: verify.id, ok: true, detail: 'here', vipPlacement: 'here' } });
  assert.equal(out.state.vip.phase, 'held');
  assert.ok(out.notifications.some((n) => n.event === 'vip-moved'));
});

test('while EC2 has not remapped yet, the agent asks again but sends the call at most once per its budget', () => {
  const won = voteAnswered(true, null);
  // The lease stays renewed meanwhile (its renewals are not what this test is about).
  const lease = { ...won.state.lease, held: { term: 4, validUntilMs: 1e9 } };
  let out: AgentOutput = { ...won, state: { ...won.state, lease } };
  let now = 1000;
  let moves = 0;
  let verifies = 0;
  // Every VIP step answers at once; EC2 routes the VIP here only after 3 s (the slow profile).
  const routedAtMs = now + 3000;
  const until = routedAtMs + t.heartbeatMs;
  let pending = effects(out);
  while (now < until) {
    const e = pending.find((p) => p.kind.includes('vip'));
    if (e === undefined) {
      now += t.heartbeatMs / 10;
      out = stepAgent(out.state, { kind: 'wake', nowMs: now, pausedMs: 0 });
      pending = effects(out);
      continue;
    }
    pending = pending.filter((p) => p !== e);
    now += 5;
    if (e.kind === 'move-vip-cloud') moves++;
    if (e.kind === 'verify-vip') verifies++;
    const placement = now >= routedAtMs ? 'here' : 'elsewhere';
    const result = e.kind === 'verify-vip'
      ? { id: e.id, ok: true, detail: placement, vipPlacement: placement } as const
      : { id: e.id, ok: true, detail: 'done' };
    out = stepAgent(out.state, { kind: 'effect-done', nowMs: now, result });
    pending = [...pending, ...effects(out)];
    if (out.state.vip.phase === 'held') break;
  }
  assert.equal(out.state.vip.phase, 'held', 'confirmed once EC2 routes it here');
  const budgets = Math.ceil(3000 / t.vipCallBudgetMs);
  assert.ok(moves <= budgets + 1, `${moves} EC2 calls in 3 s: at most one per vipCallBudgetMs (${budgets + 1})`);
  const asks = Math.ceil(3000 / (t.vipCallBudgetMs / 10));
  assert.ok(verifies <= asks + budgets + 1, `${verifies} checks in 3 s: at most one per tenth of vipCallBudgetMs`);
  const late = now - routedAtMs;
  assert.ok(late <= t.vipCallBudgetMs / 10 + t.heartbeatMs / 10 + 10, `confirmed ${late} ms after EC2 routed it here`);
});

test('a VIP check in flight on the old primary holds up no rejoin', () => {
  const primaryStatus: AgentStatus = {
    ...env(4, 'db-b'), role: 'primary', primaryOfTerm: 'db-b', leaseRemainingMs: 3000, maintenance: false,
    promotionBlocker: null, pg: { ...standbyPg, inRecovery: false, writable: true, timeline: 2, lsn: 200n },
  };
  const demotedPg: PgSnapshot = { ...standbyPg, inRecovery: false, writable: false };
  const booted = bootAgent(settings('db-a'), { term: 4, primaryOfTerm: 'db-b' }, -100_000);
  const s: AgentState = {
    ...booted,
    nowMs: 1000,
    pg: demotedPg,
    peer: primaryStatus,
    peers: { 'db-b': primaryStatus },
    fence: { ...booted.fence, fenced: true },
    // Its heartbeat's check of where EC2 routes the VIP is due (it keeps the address until then).
    vip: { ...booted.vip, phase: 'leaving', sinceMs: 0, routedElsewhere: false, checkedAtMs: 0 },
  };
  const out = stepAgent(s, { kind: 'wake', nowMs: 1000, pausedMs: 0 });
  assert.deepEqual(effects(out).map((e) => e.kind).sort(), ['rejoin', 'verify-vip'], 'the rejoin starts beside the check');
  // And the check's answer does not disturb the rejoin.
  const answered = stepAgent(out.state, {
    kind: 'effect-done', nowMs: 1010, result: { id: out.state.vipInFlight!.id, ok: true, detail: 'elsewhere', vipPlacement: 'elsewhere' },
  });
  assert.equal(answered.state.inFlight?.kind, 'rejoin');
});

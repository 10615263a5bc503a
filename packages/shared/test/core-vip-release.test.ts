// Goal: a node that may no longer hold the VIP takes it off its interface only once EC2 routes it
// elsewhere (or after vipKeepWhileRoutedMs), never moves it meanwhile; and a node handed a term by a
// switchover asks for its lease at once instead of a heartbeat later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, defaultAgentSettings, defaultTimings, stepAgent, PROTOCOL_VERSION,
  type AgentOutput, type PgSnapshot,
} from '../src/core/index.js';

const settings = (self: 'db-a' | 'db-b') => defaultAgentSettings({ cluster: 'c1', self, peer: self === 'db-a' ? 'db-b' : 'db-a', witness: 'witness', timings: defaultTimings });
const primaryPg: PgSnapshot = { running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false, syncStandby: 'db-b', standbyInSync: true };
const deadPg: PgSnapshot = { ...primaryPg, running: false, writable: false };
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });

function effects(out: AgentOutput): Array<{ id: number; kind: string }> {
  return actionsOf(out).flatMap((a) => (a.kind === 'effect' ? [{ id: a.id, kind: a.effect.kind }] : []));
}

/** db-a, primary of term 3 with a lease, whose PostgreSQL has just died: fenced and released (fast path). */
function fencedAfterCrash(): { s: AgentOutput; nowMs: number } {
  let s = bootAgent(settings('db-a'), { term: 3, primaryOfTerm: 'db-a' }, 0);
  s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: primaryPg, writeProbe: 'ok', peer: null }).state;
  const seq = s.lease.sends.at(-1)!.seq;
  s = stepAgent(s, { kind: 'reply', nowMs: 5, msg: { ...env(3, 'witness'), kind: 'lease-reply', seq, granted: true, reason: 'granted', maintenance: false, primaryOfTerm: 'db-a' } }).state;
  // The primary's first VIP check: EC2 routes the VIP here and it is on the interface.
  if (s.vipInFlight !== null) s = stepAgent(s, { kind: 'effect-done', nowMs: 8, result: { id: s.vipInFlight.id, ok: true, detail: 'here', vipPlacement: 'here' } }).state;
  assert.equal(s.vip.phase, 'held');
  const out = stepAgent(s, { kind: 'tick', nowMs: 500, pg: deadPg, writeProbe: 'failed', peer: null });
  const fence = effects(out).find((e) => e.kind === 'fence')!;
  return { s: stepAgent(out.state, { kind: 'effect-done', nowMs: 510, result: { id: fence.id, ok: true, detail: 'fenced', finalLsn: 100n } }), nowMs: 510 };
}

/**
 * Ticks every heartbeat from `fromMs`, completing every effect the core asks for (VIP checks answer
 * `placement`), until it drops the VIP from the interface or `untilMs` passes.
 */
function runUntilDrop(start: AgentOutput, fromMs: number, placement: 'here' | 'elsewhere', untilMs: number): { seen: string[]; droppedAtMs: number | null } {
  const seen: string[] = [];
  let out = start;
  for (let now = fromMs; now <= untilMs; now += defaultTimings.heartbeatMs) {
    if (now > fromMs) out = stepAgent(out.state, { kind: 'tick', nowMs: now, pg: deadPg, writeProbe: 'not-run', peer: null });
    let pending = effects(out);
    while (pending.length > 0) {
      const e = pending.shift()!;
      seen.push(e.kind);
      if (e.kind === 'drop-vip-local') return { seen, droppedAtMs: now };
      const result = e.kind === 'verify-vip' ? { id: e.id, ok: true, detail: placement, vipPlacement: placement } : { id: e.id, ok: true, detail: 'done' };
      out = stepAgent(out.state, { kind: 'effect-done', nowMs: now + 5, result });
      pending = [...pending, ...effects(out)];
    }
  }
  return { seen, droppedAtMs: null };
}

test('a fenced primary keeps the VIP on its interface while EC2 still routes it here, and drops it once EC2 routes it elsewhere', () => {
  const { s, nowMs } = fencedAfterCrash();
  const still = runUntilDrop(s, nowMs, 'here', nowMs + 3_000);
  assert.equal(still.droppedAtMs, null, 'not dropped while EC2 routes the VIP here');
  assert.ok(still.seen.includes('verify-vip'), `it checks where EC2 routes the VIP (effects: ${still.seen.join(', ')})`);
  assert.ok(!still.seen.some((k) => k === 'move-vip-cloud' || k === 'add-vip-local'), `it never moves or adds the VIP: ${still.seen.join(', ')}`);
  const moved = runUntilDrop(s, nowMs, 'elsewhere', nowMs + 3_000);
  assert.notEqual(moved.droppedAtMs, null, `dropped once EC2 routes it elsewhere (effects: ${moved.seen.join(', ')})`);
  assert.ok(!moved.seen.includes('move-vip-cloud'), 'a VIP routed elsewhere is not pulled back by a fenced node');
});

test('a fenced primary that cannot learn where EC2 routes the VIP drops it after vipKeepWhileRoutedMs', () => {
  const { s, nowMs } = fencedAfterCrash();
  const r = runUntilDrop(s, nowMs, 'here', nowMs + 60_000);
  assert.ok(r.droppedAtMs !== null, 'dropped in the end');
  const keep = s.state.settings.vipKeepWhileRoutedMs;
  assert.ok(r.droppedAtMs - nowMs >= keep - defaultTimings.heartbeatMs && r.droppedAtMs - nowMs <= keep + 2 * defaultTimings.heartbeatMs, `dropped ${r.droppedAtMs - nowMs} ms after the fence (bound ${keep} ms)`);
});

test('a standby handed a term by a switchover asks the witness and its peer for a lease in the same step', () => {
  const standbyPg: PgSnapshot = {
    ...primaryPg, inRecovery: true, writable: false, streaming: true, syncStandby: null, standbyInSync: false,
  };
  let s = bootAgent(settings('db-b'), { term: 3, primaryOfTerm: 'db-a' }, -10_000);
  s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: standbyPg, writeProbe: 'not-run', peer: null }).state;
  const out = stepAgent(s, { kind: 'request', nowMs: 10, msg: { ...env(4, 'db-a'), kind: 'handover', to: 'db-b', finalLsn: 100n, timeline: 1 } });
  assert.deepEqual(actionsOf(out)[0], { kind: 'persist', state: { term: 4, primaryOfTerm: 'db-b' } });
  const leaseTo = actionsOf(out).flatMap((a) => (a.kind === 'send' && a.msg.kind === 'lease-request' ? [a.to] : [])).sort();
  assert.deepEqual(leaseTo, ['db-a', 'witness']);
});

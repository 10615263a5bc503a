// Goal (issues 17, 18: the write gap after a switchover): with three or more nodes the new primary
// puts the VIP on its interface before the EC2 call, so no packet EC2 sends it after the remap meets
// a missing address (AWS drops it; the lab's router gets no ARP answer), each lost SYN costing its
// client a 1 s retransmission. Two nodes keep the call first (docs/vip.md, "When the VIP moves").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, defaultAgentSettings, defaultTimings, quorumOf, stepAgent,
  type AgentOutput, type AgentState, type NodeTraits, type PgSnapshot,
} from '../src/core/index.js';

const t = defaultTimings;
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const promotingPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: null, standbyInSync: false,
};

/** db-b, primary of term 4 with a lease, its promotion under way, among `ids`. */
function promoting(ids: readonly string[]): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness',
      quorum: ids.length > 2 ? quorumOf('etcd', 'witness') : undefined, timings: t,
    }),
    nodes: ids.map(trait),
  };
  const booted = bootAgent(settings, { term: 4, primaryOfTerm: 'db-b' }, 0);
  return {
    ...booted,
    nowMs: 1000,
    pg: promotingPg,
    promise: null,
    lease: { ...booted.lease, held: { term: 4, validUntilMs: 1000 + 2 * t.vipCallBudgetMs } },
    inFlight: { id: 7, kind: 'promote', effect: { kind: 'promote' }, startedAtMs: 990 },
  };
}

const vipSteps = (out: AgentOutput): string[] =>
  actionsOf(out).flatMap((a) => (a.kind === 'effect' && a.effect.kind.includes('vip') ? [a.effect.kind] : []));

/** Runs the VIP slot's steps, each answered at once (EC2 routes the VIP here after the call). */
function moveSteps(s: AgentState): string[] {
  let out = stepAgent(s, { kind: 'wake', nowMs: 1000, pausedMs: 0 });
  const seen: string[] = [];
  let called = false;
  for (let now = 1001; out.state.vipInFlight !== null && seen.length < 10; now++) {
    const e = out.state.vipInFlight;
    seen.push(e.kind);
    if (e.kind === 'move-vip-cloud') called = true;
    const result = e.kind === 'verify-vip'
      ? { id: e.id, ok: true, detail: 'v', vipPlacement: called ? 'here' as const : 'elsewhere' as const }
      : { id: e.id, ok: true, detail: 'done' };
    out = stepAgent(out.state, { kind: 'effect-done', nowMs: now, result });
  }
  assert.equal(out.state.vip.phase, 'held');
  assert.deepEqual(vipSteps(out), [], 'nothing more once held');
  return seen;
}

test('three nodes: the new primary adds the address before the EC2 call', () => {
  assert.deepEqual(moveSteps(promoting(['db-a', 'db-b', 'db-c'])), ['add-vip-local', 'move-vip-cloud', 'verify-vip']);
});

test('two nodes: the EC2 call, then the address, as before', () => {
  assert.deepEqual(moveSteps(promoting(['db-a', 'db-b'])), ['move-vip-cloud', 'add-vip-local', 'verify-vip']);
});

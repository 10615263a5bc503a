// Goal: with N database nodes the standbys agree on one winner from the same published final
// positions (core/nodes/candidates.ts): the most advanced eligible standby, priority among the
// equally advanced, never a noFailover node, and in sync mode only one that holds every
// acknowledged commit (docs/design.md, "More than one standby", Candidate choice).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  electionDecision, promotionSafety, rankCandidates,
  type CandidatePosition, type NodeTraits, type RankingRules,
} from '../src/core/nodes/index.js';

const IDS = ['db-a', 'db-b', 'db-c', 'db-d', 'db-e'] as const;

const nodesArb: fc.Arbitrary<NodeTraits[]> = fc
  .subarray([...IDS], { minLength: 2 })
  .chain((ids) => fc.tuple(...ids.map((id) => fc.record({
    id: fc.constant(id),
    priority: fc.integer({ min: 0, max: 3 }),
    noFailover: fc.boolean(),
  }))));

const positionArb = (node: string): fc.Arbitrary<CandidatePosition> =>
  fc.record({
    node: fc.constant(node),
    timeline: fc.integer({ min: 2, max: 3 }),
    flushLsn: fc.bigInt({ min: 0n, max: 6n }),
    streamedRecently: fc.boolean(),
    primaryLsn: fc.option(fc.bigInt({ min: 6n, max: 20n }), { nil: null }),
  });

const scenarioArb = nodesArb.chain((nodes) =>
  fc.record({
    nodes: fc.constant(nodes),
    positions: fc.subarray(nodes.map((n) => n.id)).chain((ids) => fc.tuple(...ids.map(positionArb))),
    mode: fc.constantFrom('sync' as const, 'async' as const),
    members: fc.subarray(nodes.map((n) => n.id), { minLength: 1 }),
    k: fc.integer({ min: 1, max: 3 }),
    lagBytesMax: fc.bigInt({ min: 0n, max: 20n }),
  }),
);

function rulesOf(s: { mode: 'sync' | 'async'; members: string[]; k: number; lagBytesMax: bigint }): RankingRules {
  const record = { members: s.members, k: Math.min(s.k, s.members.length) };
  return { mode: s.mode, lagBytesMax: s.lagBytesMax, timeline: 3, record, primaryOfTerm: 'db-a' };
}

test('The ranking does not depend on the order of nodes and positions, and never puts noFailover among the eligible', () => {
  fc.assert(
    fc.property(scenarioArb, fc.integer(), (s, seed) => {
      const rules = rulesOf(s);
      const ranked = rankCandidates(s.nodes, s.positions, rules);
      const shuffle = <T>(xs: readonly T[]) => {
        const out = [...xs];
        let x = seed >>> 0 || 1;
        for (let i = out.length - 1; i > 0; i--) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          const j = x % (i + 1);
          [out[i], out[j]] = [out[j]!, out[i]!];
        }
        return out;
      };
      assert.deepEqual(rankCandidates([...s.nodes].reverse(), shuffle(s.positions), rules), ranked);
      for (const r of ranked) if (r.eligible) assert.equal(s.nodes.find((n) => n.id === r.node)!.noFailover, false);
      const eligible = ranked.filter((r) => r.eligible);
      // Most advanced first; among the equally advanced, the higher priority.
      for (let i = 1; i < eligible.length; i++) {
        const [a, b] = [eligible[i - 1]!, eligible[i]!];
        assert.ok(a.position.flushLsn >= b.position.flushLsn);
        if (a.position.flushLsn === b.position.flushLsn) assert.ok(a.priority >= b.priority);
      }
    }),
    { numRuns: 1500 },
  );
});

test('Standbys that see the same positions agree: at most one campaigns, and in sync mode only a safe one', () => {
  fc.assert(
    fc.property(scenarioArb, (s) => {
      const rules = rulesOf(s);
      const campaigning = s.nodes.filter((n) => electionDecision(n.id, s.nodes, s.positions, rules, false).campaign);
      assert.ok(campaigning.length <= 1, campaigning.map((n) => n.id).join(', '));
      const winner = campaigning[0];
      if (winner !== undefined) {
        assert.equal(winner.noFailover, false);
        if (s.mode === 'sync') assert.equal(promotionSafety(rules.record, winner.id, s.positions).safe, true);
        const mine = s.positions.find((p) => p.node === winner.id)!;
        for (const r of rankCandidates(s.nodes, s.positions, rules)) {
          if (r.eligible) assert.ok(mine.flushLsn >= r.position.flushLsn);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

const at = (node: string, flushLsn: bigint, extra: Partial<CandidatePosition> = {}): CandidatePosition => ({
  node, timeline: 3, flushLsn, streamedRecently: true, primaryLsn: null, ...extra,
});
const three: NodeTraits[] = [
  { id: 'db-a', priority: 1, noFailover: false },
  { id: 'db-b', priority: 1, noFailover: false },
  { id: 'db-c', priority: 5, noFailover: false },
];
const syncRules: RankingRules = {
  mode: 'sync', lagBytesMax: 0n, timeline: 3, record: { members: ['db-b', 'db-c'], k: 1 }, primaryOfTerm: 'db-a',
};

test('Given db-a lost and db-b ahead of db-c, Then db-b campaigns and db-c yields; equal, the higher priority (db-c) wins', () => {
  assert.equal(electionDecision('db-b', three, [at('db-b', 9n), at('db-c', 7n)], syncRules, false).campaign, true);
  assert.match(electionDecision('db-c', three, [at('db-b', 9n), at('db-c', 7n)], syncRules, false).reason, /db-b ranks first/);
  assert.equal(electionDecision('db-c', three, [at('db-b', 9n), at('db-c', 9n)], syncRules, false).campaign, true);
  assert.equal(electionDecision('db-b', three, [at('db-b', 9n), at('db-c', 9n)], syncRules, false).campaign, false);
});

test('Given the election window open and db-c silent, Then db-b waits; closed, it campaigns only if the sync rule holds', () => {
  const waiting = electionDecision('db-b', three, [at('db-b', 9n)], syncRules, true);
  assert.deepEqual([waiting.campaign, 'wait' in waiting && waiting.wait], [false, true]);
  assert.match(waiting.reason, /waiting for the final positions of db-c/);
  // ANY 1 of (b, c): b alone is n − k + 1 = 2 short of c's position, and c may hold what b lacks.
  const closed = electionDecision('db-b', three, [at('db-b', 9n)], syncRules, false);
  assert.equal(closed.campaign, false);
  assert.match(closed.reason, /2 members' final positions are needed, 1 known/);
  // With ANY 2 of (b, c) every commit is on both: b alone suffices.
  const both = { ...syncRules, record: { members: ['db-b', 'db-c'], k: 2 } };
  assert.equal(electionDecision('db-b', three, [at('db-b', 9n)], both, false).campaign, true);
});

test('A noFailover node never campaigns, however advanced; async mode bounds the lag', () => {
  const reporting: NodeTraits[] = [...three.slice(0, 2), { id: 'db-c', priority: 9, noFailover: true }];
  const asyncRules: RankingRules = { mode: 'async', lagBytesMax: 4n, timeline: 3, record: { members: [], k: 0 }, primaryOfTerm: 'db-a' };
  assert.match(electionDecision('db-c', reporting, [at('db-b', 1n), at('db-c', 9n)], asyncRules, false).reason, /noFailover/);
  assert.equal(electionDecision('db-b', reporting, [at('db-b', 1n), at('db-c', 9n)], asyncRules, false).campaign, true);
  const lagging = electionDecision('db-b', reporting, [at('db-b', 1n, { primaryLsn: 9n })], asyncRules, false);
  assert.match(lagging.reason, /8 bytes behind \(lagBytesMax 4\)/);
});

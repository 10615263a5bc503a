// Goal: the quorum-commit arithmetic for N database nodes (core/nodes/quorum-commit.ts) keeps every
// acknowledged commit findable by a failover: the claim order is exact, every step of a sync plan
// keeps the etcd record true whatever members acknowledge, and a candidate the promotion rule calls
// safe holds every acknowledged commit (docs/design.md, "More than one standby").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  claimImplies, membersToHear, normalClaim, NO_CLAIM, promotionSafety, syncPlan, synchronousStandbyNames, wantedClaim,
  type FinalPosition, type SyncClaim, type SyncState, type SyncStep,
} from '../src/core/nodes/index.js';

const NAMES = ['db-b', 'db-c', 'db-d', 'db-e', 'db-f'] as const;

/** A claim PostgreSQL can keep: a non-empty set of members and 1 ≤ k ≤ n, or no claim. */
const claimArb: fc.Arbitrary<SyncClaim> = fc
  .subarray([...NAMES], { minLength: 0 })
  .chain((members) => fc.integer({ min: 0, max: members.length }).map((k) => normalClaim({ members, k })));

function subsetsOfSize<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [head, ...rest] = items as [T, ...T[]];
  return [...subsetsOfSize(rest, size - 1).map((s) => [head, ...s]), ...subsetsOfSize(rest, size)];
}

test('claimImplies is exact: true iff every set of acknowledgements that keeps the stronger claim keeps the weaker', () => {
  fc.assert(
    fc.property(claimArb, claimArb, (stronger, weaker) => {
      const brute = stronger.k === 0
        ? weaker.k === 0
        : subsetsOfSize(stronger.members, stronger.k)
          .every((ackers) => ackers.filter((m) => weaker.members.includes(m)).length >= weaker.k);
      assert.equal(claimImplies(stronger, weaker), brute, `${JSON.stringify(stronger)} ⇒ ${JSON.stringify(weaker)}`);
    }),
    { numRuns: 2000 },
  );
});

test('Given ANY 1 (b) in the record, When c is added to PostgreSQL first, Then a commit only c acknowledged breaks the record', () => {
  // The order "setting first" is wrong for a membership change with k unchanged: the setting no
  // longer implies the record (R1), so a failover to b may lose what c alone acknowledged.
  const record = { members: ['db-b'], k: 1 };
  assert.equal(claimImplies({ members: ['db-b', 'db-c'], k: 1 }, record), false);
  assert.deepEqual(syncPlan({ record, postgres: record }, { members: ['db-b', 'db-c'], k: 1 }).map((s) => s.kind), ['record', 'postgres']);
  // Removing c, the other way round: the setting first, then catch-up, then the record.
  const both = { members: ['db-b', 'db-c'], k: 1 };
  assert.deepEqual(syncPlan({ record: both, postgres: both }, record).map((s) => s.kind), ['postgres', 'catch-up', 'record']);
  // The two-node orders are the special cases: restore is the setting first, degrade the record first.
  assert.deepEqual(syncPlan({ record: NO_CLAIM, postgres: NO_CLAIM }, record).map((s) => s.kind), ['postgres', 'catch-up', 'record']);
  assert.deepEqual(syncPlan({ record, postgres: record }, NO_CLAIM).map((s) => s.kind), ['record', 'postgres']);
});

/** A tiny PRNG so that one fast-check seed drives every choice of the model below. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
}
function pick<T>(rand: (n: number) => number, items: readonly T[], count: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(rand(pool.length), 1)[0]!);
  return out;
}

/** The primary's WAL, the members' flushed positions, and the commits PostgreSQL acknowledged. */
class Model {
  lsn = 0n;
  readonly flush = new Map<string, bigint>(NAMES.map((n) => [n, 0n]));
  readonly acked: bigint[] = [];
  state: SyncState = { record: NO_CLAIM, postgres: NO_CLAIM };
  constructor(private readonly rand: (n: number) => number) {}

  /** Commits acknowledged under the setting in force, each by a random k of its members (the worst case). */
  commit(count: number): void {
    for (let i = 0; i < count; i++) {
      this.lsn += 1n;
      for (const m of pick(this.rand, this.state.postgres.members, this.state.postgres.k)) this.flush.set(m, this.lsn);
      this.acked.push(this.lsn);
    }
    // Some standby streams a little further, acknowledging nothing by itself.
    const m = NAMES[this.rand(NAMES.length)]!;
    const to = this.flush.get(m)! + BigInt(this.rand(3));
    this.flush.set(m, to > this.lsn ? this.lsn : to);
  }

  /**
   * One step of a plan, after some commits under the setting in force. `catchUp: false` plants the
   * bug of a plan that writes the claims but never waits for the members to catch up.
   */
  step(step: SyncStep, catchUp = true): void {
    this.commit(this.rand(4));
    if (step.kind === 'record') this.state = { ...this.state, record: step.claim };
    else if (step.kind === 'postgres') this.state = { ...this.state, postgres: step.claim };
    // Caught up with L: the members' flush reaches the primary's WAL.
    else if (catchUp) for (const m of pick(this.rand, step.members, step.count)) this.flush.set(m, this.lsn);
  }

  recordHolds(): boolean {
    const { members, k } = this.state.record;
    return this.acked.every((x) => members.filter((m) => this.flush.get(m)! >= x).length >= k);
  }
}

test('Every step of a sync plan keeps the record true, whatever members acknowledge between the steps (R1, R2)', () => {
  fc.assert(
    fc.property(fc.integer(), fc.array(claimArb, { minLength: 1, maxLength: 8 }), (seed, wanted) => {
      const rand = prng(seed);
      const model = new Model(rand);
      for (const want of wanted) {
        for (const step of syncPlan(model.state, want)) {
          model.step(step);
          assert.ok(claimImplies(model.state.postgres, model.state.record), `R1 after ${JSON.stringify(step)}`);
          assert.ok(model.recordHolds(), `the record ${JSON.stringify(model.state.record)} is false after ${JSON.stringify(step)}`);
          model.commit(rand(4));
          assert.ok(model.recordHolds(), `the record ${JSON.stringify(model.state.record)} is false under ${JSON.stringify(model.state.postgres)}`);
        }
        assert.deepEqual(model.state, { record: normalClaim(want), postgres: normalClaim(want) });
      }
    }),
    { numRuns: 1500 },
  );
});

test('A planted plan that skips the catch-up is caught by the same model', () => {
  // The test above can fail: without the catch-up a restore names a member that lacks commits.
  const found = fc.check(
    fc.property(fc.integer(), fc.array(claimArb, { minLength: 1, maxLength: 8 }), (seed, wanted) => {
      const rand = prng(seed);
      const model = new Model(rand);
      for (const want of wanted) {
        for (const step of syncPlan(model.state, want)) {
          model.step(step, false);
          if (!model.recordHolds()) return false;
        }
      }
      return true;
    }),
    { numRuns: 1500 },
  );
  assert.equal(found.failed, true);
});

const finalsArb = fc.record({
  record: claimArb.filter((c) => c.k > 0),
  seed: fc.integer(),
  commits: fc.integer({ min: 1, max: 12 }),
});

test('A candidate that promotionSafety calls safe holds every acknowledged commit; one outside the record never is', () => {
  fc.assert(
    fc.property(finalsArb, fc.constantFrom(...NAMES, 'db-z'), fc.subarray([...NAMES, 'db-z']), ({ record, seed, commits }, candidate, heardNames) => {
      const rand = prng(seed);
      const model = new Model(rand);
      model.state = { record, postgres: record };
      model.commit(commits);
      // The final positions the candidate knows: its own and some others', as each stopped.
      const finals: FinalPosition[] = [...new Set([candidate, ...heardNames])]
        .map((node) => ({ node, timeline: 2, flushLsn: model.flush.get(node) ?? 0n }));
      const verdict = promotionSafety(record, candidate, finals);
      if (verdict.safe) {
        const own = model.flush.get(candidate)!;
        for (const x of model.acked) assert.ok(own >= x, `${candidate} at ${own} lacks acknowledged ${x}; heard ${verdict.heard.join(',')}`);
        assert.ok(verdict.heard.length >= membersToHear(record));
      }
      if (!record.members.includes(candidate)) assert.equal(verdict.safe, false);
    }),
    { numRuns: 3000 },
  );
});

test('The most advanced member that hears every member of the record is safe (the rule does not block a failover it could allow)', () => {
  fc.assert(
    fc.property(finalsArb, ({ record, seed, commits }) => {
      const model = new Model(prng(seed));
      model.state = { record, postgres: record };
      model.commit(commits);
      const finals = record.members.map((node) => ({ node, timeline: 1, flushLsn: model.flush.get(node)! }));
      const best = [...finals].sort((a, b) => (a.flushLsn > b.flushLsn ? -1 : a.flushLsn < b.flushLsn ? 1 : 0))[0]!;
      assert.equal(promotionSafety(record, best.node, finals).safe, true);
    }),
    { numRuns: 1000 },
  );
});

test('Given ANY 2 of (b, c, d), Then a candidate needs two final positions, and the older timeline does not count', () => {
  const record = { members: ['db-b', 'db-c', 'db-d'], k: 2 };
  const at = (node: string, flushLsn: bigint, timeline = 3) => ({ node, timeline, flushLsn });
  assert.equal(membersToHear(record), 2);
  assert.match((promotionSafety(record, 'db-b', [at('db-b', 10n)]) as { why: string }).why, /2 members' final positions are needed, 1 known/);
  assert.equal(promotionSafety(record, 'db-b', [at('db-b', 10n), at('db-c', 10n)]).safe, true);
  assert.match((promotionSafety(record, 'db-b', [at('db-b', 10n), at('db-c', 11n)]) as { why: string }).why, /db-c flushed more/);
  assert.equal(promotionSafety(record, 'db-b', [at('db-b', 10n), at('db-c', 10n, 2)]).safe, false);
  assert.equal(promotionSafety(NO_CLAIM, 'db-b', [at('db-b', 10n)]).safe, false);
});

test('wantedClaim and the setting it becomes', () => {
  assert.deepEqual(wantedClaim(['db-c', 'db-b', 'db-c'], 2), { members: ['db-b', 'db-c'], k: 2 });
  assert.deepEqual(wantedClaim(['db-b'], 2), { members: ['db-b'], k: 1 });
  assert.deepEqual(wantedClaim([], 1), NO_CLAIM);
  assert.equal(synchronousStandbyNames({ members: ['db-c', 'db-b'], k: 1 }), 'ANY 1 ("db-b", "db-c")');
  assert.equal(synchronousStandbyNames(NO_CLAIM), '');
});

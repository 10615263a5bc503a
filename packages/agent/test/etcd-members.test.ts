// Goal: a lost etcd member (it drops packets, it does not refuse) costs a call a share of its deadline
// once, not every third call a whole deadline (docs/design.md, Quorum on etcd, "Which member a call
// goes to"): calls go first to the member that answered last, a member that left a try unanswered goes
// to the back of the order for a while, and the next member is tried beside it within the same
// deadline. The rule is members.ts, run here on a virtual clock; the simulator runs the same code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MEMBER_AVOID_MS, MemberChoice, onMembers, type TryEnd } from '../src/quorum/etcd/members.js';

/** A virtual clock with timers: `run(ms)` fires every timer due within ms, in time order. */
function virtualTime() {
  let now = 0;
  let seq = 0;
  const timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    after: (ms: number, fn: () => void) => {
      const t = { at: now + ms, seq: seq++, fn, live: true };
      timers.push(t);
      return () => {
        t.live = false;
      };
    },
    async run(ms: number): Promise<void> {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
        if (due === undefined) break;
        due.live = false;
        now = due.at;
        due.fn();
        await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
    pending: () => timers.filter((t) => t.live).length,
  };
}

/** Members that answer after `delay[m]` ms, never (null), or refuse ('refused'); the tries, in order. */
function members(v: ReturnType<typeof virtualTime>, behaviour: (number | null | 'refused')[]) {
  const tries: number[] = [];
  const attempt = (m: number, end: (e: TryEnd<string>) => void): void => {
    tries.push(m);
    const b = behaviour[m];
    if (b === 'refused') v.after(1, () => end({ kind: 'unavailable', why: `member ${m} refused` }));
    else if (typeof b === 'number') v.after(b, () => end({ kind: 'answer', value: `member ${m}` }));
  };
  return { tries, attempt };
}

/** Draws that leave the order as it is (Fisher-Yates swapping each place with itself). */
const firstDraw = (n: number): number => n - 1;

describe('etcd member choice (members.ts)', () => {
  it('a member that hangs costs one share of the deadline, then calls keep to the member that answered', async () => {
    const v = virtualTime();
    const choice = new MemberChoice(3);
    // Member 0 is the lost host's: it never answers. The others answer in 5 ms.
    const m = members(v, [null, 5, 5]);
    const call = (what: string) => {
      let done: { at: number; r: Awaited<ReturnType<typeof onMembers<string>>> } | null = null;
      void onMembers({
        what, choice, now: v.now, deadlineAt: v.now() + 400, timeoutMs: 400, draw: firstDraw, after: v.after,
        attempt: m.attempt,
      }).then((r) => (done = { at: v.now(), r }));
      return () => done;
    };
    // The first call tries member 0 first (a fresh choice, in the order 0, 1, 2).
    const start = v.now();
    const first = call('read');
    await v.run(1000);
    const r1 = first();
    assert.ok(r1 !== null);
    assert.deepEqual(r1.r, { ok: true, value: 'member 1', member: 1 });
    // Member 1 was brought in after a third of the deadline, and answered 5 ms later.
    assert.ok(r1.at - start < 400 / 3 + 10, `answered at ${r1.at - start} ms`);
    assert.equal(choice.preferred, 1);
    // The next calls go to member 1 at once; member 0 is last in the order while it is avoided.
    for (let i = 0; i < 5; i++) {
      const t0 = v.now();
      const c = call(`call ${i}`);
      await v.run(1000);
      assert.equal(c()?.r.ok, true);
      assert.ok(c()!.at - t0 <= 5, 'answered by the preferred member in one round trip');
    }
    assert.deepEqual(m.tries, [0, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(choice.order(v.now(), firstDraw), [1, 2, 0]);
    // Avoidance only reorders, and ends: later the lost member is among the others again.
    await v.run(MEMBER_AVOID_MS);
    assert.deepEqual(choice.order(v.now(), firstDraw), [1, 0, 2]);
    assert.equal(v.pending(), 0, 'no timer is left behind a settled call');
  });

  it('a refusal brings the next member in at once; no answer at all fails at the deadline, once', async () => {
    const v = virtualTime();
    const choice = new MemberChoice(3);
    const m = members(v, ['refused', null, 7]);
    let r: unknown = null;
    let at = -1;
    void onMembers({
      what: 'campaign', choice, now: v.now, deadlineAt: 400, timeoutMs: 400, draw: firstDraw, after: v.after, attempt: m.attempt,
    }).then((x) => {
      r = x;
      at = v.now();
    });
    await v.run(1000);
    // Refused at 1 ms, member 1 tried at once, unanswered; member 2 brought in at 1 + 133 ms.
    assert.deepEqual(r, { ok: true, value: 'member 2', member: 2 });
    assert.ok(Math.abs(at - (1 + 400 / 3 + 7)) < 1, `answered at ${at}`);
    assert.deepEqual(m.tries, [0, 1, 2]);

    const v2 = virtualTime();
    const dead = members(v2, [null, null, null]);
    const results: unknown[] = [];
    void onMembers({
      what: 'read', choice: new MemberChoice(3), now: v2.now, deadlineAt: 400, timeoutMs: 400, draw: firstDraw,
      after: v2.after, attempt: dead.attempt,
    }).then((x) => results.push({ x, at: v2.now() }));
    await v2.run(2000);
    assert.deepEqual(results, [{ x: { ok: false, why: 'read: etcd did not answer within 400 ms' }, at: 400 }]);
    assert.deepEqual(dead.tries, [0, 1, 2], 'every member tried, each within the one deadline');

    // A call that may not be repeated while its first try may still commit (taking the switchover
    // key): no try beside an unanswered one; the next member only after a refusal.
    const v3 = virtualTime();
    const once = members(v3, [null, 5, 5]);
    const single: unknown[] = [];
    void onMembers({
      what: 'switchover key', choice: new MemberChoice(3), now: v3.now, deadlineAt: 400, timeoutMs: 400, draw: firstDraw,
      after: v3.after, attempt: once.attempt, beside: false,
    }).then((x) => single.push(x));
    await v3.run(2000);
    assert.deepEqual(single, [{ ok: false, why: 'switchover key: etcd did not answer within 400 ms' }]);
    assert.deepEqual(once.tries, [0]);
  });

  it('a late answer of a member already suspected still wins, and makes it preferred again', async () => {
    const v = virtualTime();
    const choice = new MemberChoice(2);
    // Member 0 is slow (an etcd election, say): 250 ms; member 1 never answers.
    const m = members(v, [250, null]);
    let r: unknown = null;
    void onMembers({
      what: 'read', choice, now: v.now, deadlineAt: 400, timeoutMs: 400, draw: firstDraw, after: v.after, attempt: m.attempt,
    }).then((x) => (r = x));
    await v.run(1000);
    assert.deepEqual(r, { ok: true, value: 'member 0', member: 0 });
    assert.equal(choice.preferred, 0);
    assert.deepEqual(choice.order(v.now(), firstDraw), [0, 1]);
  });
});

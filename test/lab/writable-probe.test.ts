// Goal: the writable probe's "two writable" window is the real overlap by the servers' own clocks
// (hand-made probe writes, no root needed): a frozen host's wait does not count as writable, a write
// the old primary acknowledged after the thaw does, a clean handover has no window, and a primary that
// is never fenced overlaps the new one for as long as both acknowledge.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DirectWrite } from './direct-writer.js';
import { dualWritable, serverTimeOf, writableStretches } from './writable-probe.js';

let nextId = 1;
/** A write to `target` acknowledged by the server at `atMs` (its clock), answered `waitMs` after sending. */
function ok(target: string, atMs: number, waitMs = 3): DirectWrite {
  return { id: nextId++, target, sentAt: atMs - 1, doneAt: atMs - 1 + waitMs, outcome: 'ok', server: target, timeline: 1, writtenAtMs: atMs, deadlineMs: null };
}
function refused(target: string, atMs: number): DirectWrite {
  return { id: nextId++, target, sentAt: atMs - 1, doneAt: atMs, outcome: 'failed', error: '25006 cannot execute INSERT in a read-only transaction' };
}
/** Writes every 50 ms in [fromMs, toMs). */
function every50(target: string, fromMs: number, toMs: number): DirectWrite[] {
  const out: DirectWrite[] = [];
  for (let t = fromMs; t < toMs; t += 50) out.push(ok(target, t));
  return out;
}

describe('writable probe on the servers\' clocks', () => {
  it('a write held up by a freeze is dated when its answer came, not at its INSERT', () => {
    const held = { ...ok('db-a', 1_000), doneAt: 6_000 };
    assert.equal(serverTimeOf(held, 1_000), 6_000);
    assert.equal(serverTimeOf(ok('db-a', 1_000), 1_000), 1_000);
  });

  it('a freeze splits the frozen server\'s stretch; a refusal ends it', () => {
    const writes = [...every50('db-a', 0, 1_000), { ...ok('db-a', 990), sentAt: 1_000, doneAt: 5_020 }, refused('db-a', 5_100)];
    assert.deepEqual(writableStretches(writes, 'db-a', 1_000), [{ fromMs: 0, toMs: 950 }, { fromMs: 5_020, toMs: 5_020 }]);
  });

  it('three servers: every pair is compared, a standby that wrongly wrote beside the new primary counts', () => {
    const writes = [...every50('db-a', 0, 1_000), ...every50('db-b', 2_000, 4_000), ...every50('db-c', 3_000, 3_500)];
    assert.equal(dualWritable(writes, 1_000).windows.length, 0, 'the two-node pair alone misses db-c');
    const dual = dualWritable(writes, 1_000, ['db-a', 'db-b', 'db-c']);
    assert.deepEqual(dual.windows, [{ fromMs: 3_000, toMs: 3_450 }]);
  });

  it('host loss with the commit guard: the thawed primary acknowledges nothing, so no window', () => {
    // db-a frozen at 1000, thawed at 5000; db-b promoted at 4000. db-a's write held over the freeze is
    // refused by the guard at the thaw, and db-a is read-only from then on.
    const writes = [
      ...every50('db-a', 0, 1_000),
      { ...refused('db-a', 5_010), sentAt: 1_000 },
      refused('db-a', 5_060),
      ...every50('db-b', 4_000, 8_000),
    ];
    const dual = dualWritable(writes, 1_000);
    assert.equal(dual.windows.length, 0);
    assert.equal(dual.longestMs, 0);
  });

  it('a thawed primary that commits for 120 ms before its fence overlaps the new primary for that long', () => {
    const writes = [
      ...every50('db-a', 0, 1_000),
      { ...ok('db-a', 990), sentAt: 1_000, doneAt: 5_005 },
      ok('db-a', 5_055),
      ok('db-a', 5_125),
      refused('db-a', 5_175),
      ...every50('db-b', 4_000, 8_000),
    ];
    const dual = dualWritable(writes, 1_000);
    assert.deepEqual(dual.windows, [{ fromMs: 5_005, toMs: 5_125 }]);
    assert.equal(dual.longestMs, 120);
    // The sampled probe would have counted the whole freeze: 1000..5005.
  });

  it('a clean handover (old primary refuses before the new one writes) has no window', () => {
    const writes = [...every50('db-a', 0, 2_000), refused('db-a', 2_010), ...every50('db-b', 2_300, 4_000)];
    assert.equal(dualWritable(writes, 1_000).windows.length, 0);
  });

  it('an old primary never fenced overlaps the new one while both acknowledge', () => {
    const writes = [...every50('db-a', 0, 9_000), ...every50('db-b', 4_000, 9_000)];
    const dual = dualWritable(writes, 1_000);
    assert.equal(dual.longestMs, 8_950 - 4_000);
    assert.equal(dual.totalMs, dual.longestMs);
  });
});

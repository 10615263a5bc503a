// Goal: the clusters' polls are spread over at most POLL_SLOTS groups within a heartbeat, evenly,
// every cluster starting inside the first heartbeat, and a few clusters each get a slot of their own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { POLL_SLOTS, pollOffsetMs } from '../src/daemon.js';

test('100 clusters are polled in POLL_SLOTS evenly spaced groups of equal size', () => {
  const offsets = Array.from({ length: 100 }, (_, i) => pollOffsetMs(i, 100, 500));
  const groups = new Map<number, number>();
  for (const o of offsets) groups.set(o, (groups.get(o) ?? 0) + 1);
  assert.equal(groups.size, POLL_SLOTS);
  assert.deepEqual([...groups.keys()], Array.from({ length: POLL_SLOTS }, (_, i) => (i * 500) / POLL_SLOTS));
  assert.ok([...groups.values()].every((n) => n === 100 / POLL_SLOTS));
});

test('fewer clusters than slots each get their own slot, all within the first heartbeat', () => {
  assert.deepEqual([0, 1, 2].map((i) => pollOffsetMs(i, 3, 500)), [0, 500 / 3, 1000 / 3]);
  assert.deepEqual([pollOffsetMs(0, 1, 500)], [0]);
  for (let i = 0; i < 37; i++) assert.ok(pollOffsetMs(i, 37, 500) < 500);
});

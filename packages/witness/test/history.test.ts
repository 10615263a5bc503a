// Goal: the event history is a durable, append-only log: events read back newest first with limit,
// before and per-cluster filters; files rotate by size keeping a bounded number; ids keep growing
// and events survive a restart, even one that tore the last line.
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { historyFiles, openHistory, type History, type HistoryOptions } from '../src/history.js';
import { manualClock, memoryLog, tempDir } from './witness-helpers.js';

async function open(t: TestContext, dir: string, over: Partial<HistoryOptions> = {}): Promise<History> {
  const h = await openHistory({ dir, clusters: ['c1', 'c2'], clock: manualClock(), log: memoryLog().log, ...over });
  t.after(() => h.close());
  return h;
}

const ev = (cluster: string, n: number) => ({ cluster, type: 'maintenance', node: null, term: n, detail: `event number ${n} of ${cluster}` });

test('events read back newest first, by cluster, with limit and before', async (t) => {
  const dir = tempDir(t);
  const h = await open(t, dir);
  // Given events of two clusters, interleaved
  const appended = [ev('c1', 1), ev('c2', 2), ev('c1', 3), ev('c1', 4), ev('c2', 5)].map((e) => h.append(e));
  // Then ids are assigned at once, strictly increasing, with the wall time of the clock
  assert.deepEqual(appended.map((e) => e.id), [1, 2, 3, 4, 5]);
  assert.equal(appended[0]?.at, '2030-01-31T12:00:00.000Z');
  // When read back from disk
  assert.deepEqual((await h.read({ limit: 10 })).map((e) => e.id), [5, 4, 3, 2, 1]);
  assert.deepEqual((await h.read({ cluster: 'c1', limit: 10 })).map((e) => e.id), [4, 3, 1]);
  assert.deepEqual((await h.read({ cluster: 'c1', limit: 2 })).map((e) => e.id), [4, 3]);
  assert.deepEqual((await h.read({ cluster: 'c1', limit: 2, before: 3 })).map((e) => e.id), [1]);
  assert.deepEqual(await h.read({ limit: 0 }), []);
  // And the in-memory latest events agree with the disk
  assert.deepEqual(h.recent('c1', 2).map((e) => e.id), [4, 3]);
  assert.deepEqual(await h.read({ limit: 1 }), [appended[4]]);
  // And the file is JSON lines, one event per line
  const lines = readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { id: number }).id), [1, 2, 3, 4, 5]);
});

test('files rotate by size and only keepFiles old ones stay', async (t) => {
  const dir = tempDir(t);
  const h = await open(t, dir, { maxFileBytes: 1000, keepFiles: 2 });
  // When far more than three files' worth of events are written, batch by batch
  for (let n = 1; n <= 60; n++) {
    h.append(ev('c1', n));
    await h.flush();
  }
  // Then there are exactly the current file and two rotated ones, none over the limit
  const files = await historyFiles(dir);
  assert.deepEqual(files.map((f) => f.name), ['events.1.jsonl', 'events.2.jsonl', 'events.jsonl']);
  assert.ok(files.every((f) => f.bytes <= 1000), JSON.stringify(files));
  // And reading returns a contiguous run of the newest events, across the files
  const events = await h.read({ limit: 1000 });
  assert.equal(events[0]?.id, 60);
  assert.ok(events.length > 10 && events.length < 60, `kept ${events.length}`);
  assert.ok(events.every((e, i) => i === 0 || e.id === (events[i - 1]?.id ?? 0) - 1));
  // And paging with before crosses file boundaries
  const oldest = events[events.length - 1]?.id ?? 0;
  assert.deepEqual((await h.read({ limit: 3, before: oldest + 3 })).map((e) => e.id), [oldest + 2, oldest + 1, oldest]);
});

test('events and ids survive a restart, and a torn last line is skipped', async (t) => {
  const dir = tempDir(t);
  const { log, lines } = memoryLog();
  const first = await openHistory({ dir, clusters: ['c1', 'c2'], clock: manualClock(), log });
  for (let n = 1; n <= 4; n++) first.append(ev(n % 2 === 0 ? 'c2' : 'c1', n));
  await first.close();
  // Given a crash in the middle of the next write, leaving half a line
  appendFileSync(path.join(dir, 'events.jsonl'), '{"id":5,"at":"2030-01-31T12:00:00.000Z","clus');
  // When the witness starts again
  const second = await open(t, dir, { log });
  // Then the old events are there, in memory and on disk, and the torn line is skipped with a warning
  assert.deepEqual(second.recent('c1', 10).map((e) => e.id), [3, 1]);
  assert.deepEqual((await second.read({ limit: 10 })).map((e) => e.id), [4, 3, 2, 1]);
  assert.ok(lines.some((l) => l.msg.startsWith('skipping an unreadable history line')));
  // And new events continue the ids and are readable after the fragment
  const next = second.append(ev('c1', 5));
  assert.equal(next.id, 5);
  assert.deepEqual((await second.read({ cluster: 'c1', limit: 10 })).map((e) => e.id), [5, 3, 1]);
});

test('ids continue after a restart even when the newest file was just rotated', async (t) => {
  const dir = tempDir(t);
  const first = await openHistory({ dir, clusters: ['c1'], clock: manualClock(), log: memoryLog().log, maxFileBytes: 300, keepFiles: 3 });
  for (let n = 1; n <= 12; n++) {
    first.append(ev('c1', n));
    await first.flush();
  }
  await first.close();
  const second = await open(t, dir, { maxFileBytes: 300, keepFiles: 3, clusters: ['c1'] });
  assert.equal(second.append(ev('c1', 13)).id, 13);
  assert.equal(second.recent('c1', 1)[0]?.id, 13);
});

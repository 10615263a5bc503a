// Goal: what a failed lab row prints about the daemons is readable and complete enough to debug from
// a CI log alone: the latest info-level lines, with effect and detail, repeats folded.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { recentSummary, type LogLine } from './logs.js';

function line(atMs: number, msg: string, fields: Record<string, unknown> = {}, level = 30): LogLine {
  return { atMs, source: 'db-b', msg, level, fields: { msg, level, time: atMs, ...fields } };
}

it('recentSummary keeps the latest lines at info and above, folds repeats and shows effect and detail', () => {
  const lines = [
    line(1_000, 'heartbeat', {}, 20),
    line(2_000, 'promoting for term 5: stopping the WAL receiver'),
    line(3_000, 'effect failed', { effect: 'stop-wal-receiver', detail: 'gave up waiting for replay' }, 40),
    line(4_000, 'effect failed', { effect: 'stop-wal-receiver', detail: 'gave up waiting for replay' }, 40),
    line(5_000, 'request failed', { err: { message: 'connect ETIMEDOUT' } }, 50),
  ];
  const summary = recentSummary(lines);
  assert.equal(summary.length, 3, summary.join('\n'));
  assert.match(summary[0]!, /promoting for term 5/);
  assert.match(summary[1]!, /effect failed \[stop-wal-receiver \| gave up waiting for replay\] \(×2\)$/);
  assert.match(summary[2]!, /request failed \[connect ETIMEDOUT\]/);
  assert.deepEqual(recentSummary(lines, 1), [summary[2]]);
});

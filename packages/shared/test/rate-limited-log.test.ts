// Goal: refusals are logged rate-limited: the first few of each kind per interval, then one summary
// line that says how many were left out — also when no further refusal comes to trigger it — and a
// flood of 20,000 refusals prints a handful of lines, not 20,000.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimitedLog, type LogTimers } from '../src/transport/rate-limited-log.js';

function fakeTimers(): LogTimers & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let timers: { at: number; fn: () => void }[] = [];
  return {
    nowMs: () => now,
    after(ms, fn) {
      const t = { at: now + ms, fn };
      timers.push(t);
      return () => void (timers = timers.filter((x) => x !== t));
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        now = due.at;
        timers = timers.filter((t) => t !== due);
        due.fn();
      }
      now = until;
    },
    pending: () => timers.length,
  };
}

function sink() {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    log: { warn: (fields: object, msg: string) => void lines.push({ fields: fields as Record<string, unknown>, msg }) },
  };
}

test('the first lines of a kind are logged, the rest counted and summarised when the interval ends', () => {
  const timers = fakeTimers();
  const { lines, log } = sink();
  const rl = createRateLimitedLog({ log, timers, linesPerInterval: 3, intervalMs: 60_000 });
  for (let i = 0; i < 10; i++) rl.warn('PGVIP_OPERATOR_AUTH', { ip: `10.0.0.${i}` }, 'operator API request refused: no bearer token');
  assert.equal(lines.length, 3);
  assert.deepEqual(
    lines.map((l) => l.fields.ip),
    ['10.0.0.0', '10.0.0.1', '10.0.0.2'],
  );
  assert.equal(lines[0]!.fields.kind, 'PGVIP_OPERATOR_AUTH');
  // Nothing more arrives: the summary still comes when the interval ends.
  timers.advance(59_999);
  assert.equal(lines.length, 3);
  timers.advance(1);
  assert.equal(lines.length, 4);
  assert.equal(lines[3]!.msg, 'suppressed 7 similar lines (PGVIP_OPERATOR_AUTH) in the last 60 s');
  assert.equal(lines[3]!.fields.suppressed, 7);
  // A new interval: logged again.
  timers.advance(5_000);
  rl.warn('PGVIP_OPERATOR_AUTH', { ip: '10.0.0.99' }, 'refused');
  assert.equal(lines.length, 5);
  assert.equal(timers.pending(), 0, 'no timer while nothing is suppressed');
});

test('kinds are limited separately', () => {
  const timers = fakeTimers();
  const { lines, log } = sink();
  const rl = createRateLimitedLog({ log, timers, linesPerInterval: 1, intervalMs: 1_000 });
  rl.warn('a', {}, 'a1');
  rl.warn('a', {}, 'a2');
  rl.warn('b', {}, 'b1');
  rl.warn('b', {}, 'b2');
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['a1', 'b1'],
  );
  timers.advance(1_000);
  assert.deepEqual(
    lines.slice(2).map((l) => l.msg),
    ['suppressed 1 similar line (a) in the last 1 s', 'suppressed 1 similar line (b) in the last 1 s'],
  );
});

test('a flood of 20,000 refusals over 3 s prints the first 5 and one summary; flush writes a pending summary at shutdown', () => {
  const timers = fakeTimers();
  const { lines, log } = sink();
  const rl = createRateLimitedLog({ log, timers });
  for (let i = 0; i < 20_000; i++) {
    rl.warn('PGVIP_OPERATOR_AUTH', {}, 'refused');
    timers.advance(3_000 / 20_000);
  }
  assert.equal(lines.length, 5);
  rl.flush();
  assert.equal(lines.length, 6);
  assert.match(lines[5]!.msg, /^suppressed 19995 similar lines \(PGVIP_OPERATOR_AUTH\) in the last 3 s$/);
  assert.equal(timers.pending(), 0);
  rl.flush();
  assert.equal(lines.length, 6, 'flushed once');
});

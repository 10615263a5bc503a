// Goal: the agent passes every new lease end to PostgreSQL's commit guard in order, one call at a
// time and never the same value twice; ends an armed guard at once when its lease ends early; says
// once (not every heartbeat) that a server has no guard, and asks again later; and does nothing when
// fencing.commitGuard is off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { CommitGuardArmer, commitGuardRecheckMs, type CommitGuardMode } from '../src/commit-guard-armer.js';

function setup(mode: CommitGuardMode = 'auto', loaded = true) {
  let now = 1_000;
  const calls: number[] = [];
  const pending: Array<() => void> = [];
  const lines: Array<{ level: number; msg: string }> = [];
  const pg = {
    armCommitGuard: (untilMs: number) =>
      new Promise<boolean>((resolve) => {
        calls.push(untilMs);
        pending.push(() => resolve(loaded));
      }),
  };
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const armer = new CommitGuardArmer({ pg, logger, clock: () => now, mode });
  const settle = async (): Promise<void> => {
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { armer, calls, settle, lines, advance: (ms: number) => (now += ms), now: () => now };
}

test('Given a primary renewing its lease, Then each new lease end reaches PostgreSQL once, in order, the newest after the call in flight', async () => {
  const { armer, calls, settle } = setup();
  armer.update(2_000);
  armer.update(2_000); // in flight: not again
  armer.update(2_250);
  armer.update(2_500); // replaces 2_250, which never needs sending
  assert.deepEqual(calls, [2_000]);
  await settle();
  assert.deepEqual(calls, [2_000, 2_500]);
  armer.update(2_500);
  await settle();
  assert.deepEqual(calls, [2_000, 2_500], 'an unchanged lease sends nothing');
});

test('Given an armed guard, When the lease ends early (a switchover release, a newer term), Then the guard ends now; and nothing is sent for a node that never armed it', async () => {
  const { armer, calls, settle, now } = setup();
  armer.update(null);
  assert.deepEqual(calls, [], 'a standby that never held a lease leaves the guard alone');
  armer.update(5_000);
  await settle();
  armer.update(null);
  await settle();
  assert.deepEqual(calls, [5_000, now()]);
  armer.update(null);
  await settle();
  assert.equal(calls.length, 2, 'already ended');
});

test('Given a server without the extension, Then the agent says so once, and asks again only after a while', async () => {
  const { armer, calls, settle, lines, advance } = setup('auto', false);
  armer.update(2_000);
  await settle();
  armer.update(2_250);
  await settle();
  assert.deepEqual(calls, [2_000]);
  assert.equal(lines.filter((l) => /commit guard absent/.test(l.msg) && l.level === 40).length, 1);
  advance(commitGuardRecheckMs);
  armer.update(2_000 + commitGuardRecheckMs);
  await settle();
  assert.equal(calls.length, 2);
  assert.equal(lines.filter((l) => /commit guard absent/.test(l.msg) && l.level === 40).length, 1, 'still once at warn level');
});

test('Given fencing.commitGuard off, Then the guard is never armed', async () => {
  const { armer, calls, settle } = setup('off');
  armer.update(2_000);
  await settle();
  assert.deepEqual(calls, []);
});

// Goal: the primary's view of its synchronous standby notices a standby that stopped replying, by its
// own monotonic clock, whatever the standby's wall clock says (reply_time is the standby's clock).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyWatch, standbyReplySilenceMs, SyncCatchUp, toSnapshot } from '../src/pg-snapshot.js';
import type { PgObservation } from '../src/postgres/port.js';
import { synchronousStandbyNamesFor } from '../src/postgres/port.js';

function primaryWithSyncStandby(replyTime: string | null, lsn = { primary: 100n, standbyFlush: 100n }): PgObservation {
  return {
    reachable: true,
    role: 'primary',
    inRecovery: false,
    timelineId: 1,
    currentLsn: lsn.primary,
    receiveLsn: null,
    replayLsn: null,
    walReceiver: null,
    replicas: [{ applicationName: 'db-b', clientAddress: '198.18.1.12', state: 'streaming', syncState: 'sync',
      flushLsn: lsn.standbyFlush, replayLsn: lsn.standbyFlush, replyTime }],
    synchronousStandbyNames: synchronousStandbyNamesFor('db-b'),
    defaultTransactionReadOnly: false,
  };
}

function inSync(replies: ReplyWatch, replyTime: string | null, nowMs: number, catchUp = new SyncCatchUp()): boolean {
  const ctx = { peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null, replies, catchUp, nowMs };
  return toSnapshot(primaryWithSyncStandby(replyTime), ctx).standbyInSync;
}

function inSyncAt(catchUp: SyncCatchUp, primary: bigint, standbyFlush: bigint, replyTime = `t${primary}`): boolean {
  const ctx = { peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null, replies: new ReplyWatch(), catchUp, nowMs: 0 };
  return toSnapshot(primaryWithSyncStandby(replyTime, { primary, standbyFlush }), ctx).standbyInSync;
}

test('Given a sync standby whose replies keep coming, Then it is in sync', () => {
  const replies = new ReplyWatch();
  for (let i = 0; i < 20; i++) assert.equal(inSync(replies, `2026-12-03 14:00:${String(i).padStart(2, '0')}+00`, i * 1_000), true);
});

test('Given a sync standby that stops replying, Then it is out of sync once silent for longer than the limit, and back in sync at its next reply', () => {
  const replies = new ReplyWatch();
  const catchUp = new SyncCatchUp();
  const same = '2026-12-03 14:00:00+00';
  assert.equal(inSync(replies, same, 0, catchUp), true);
  assert.equal(inSync(replies, same, standbyReplySilenceMs), true, 'silent exactly the limit: still in sync');
  assert.equal(inSync(replies, same, standbyReplySilenceMs + 1), false, 'silent past the limit: out of sync, though pg_stat_replication still says streaming/sync');
  assert.equal(inSync(replies, same, 60_000), false);
  assert.equal(inSync(replies, '2026-12-03 14:01:00+00', 60_500), true, 'a new reply');
});

test('Given the standby\'s wall clock far behind or ahead of ours, Then only whether its replies change matters', () => {
  const replies = new ReplyWatch();
  assert.equal(inSync(replies, '1999-01-01 00:00:00+00', 0), true);
  assert.equal(inSync(replies, '1999-01-01 00:00:01+00', 1_000), true);
  assert.equal(inSync(replies, '2099-01-01 00:00:00+00', 2_000), true, 'a jump of the standby\'s clock is just a new reply');
});

test('Given no reply row for the standby, Then it is not in sync', () => {
  assert.equal(inSync(new ReplyWatch(), null, 0), false);
});

test('Given a standby just shown as synchronous but behind what the primary acknowledged, Then it is not in sync until it flushed that', () => {
  // Commits up to 500 were acknowledged while replication was async: the standby may lack them.
  const catchUp = new SyncCatchUp();
  assert.equal(inSyncAt(catchUp, 500n, 300n), false, 'streaming/sync as PostgreSQL says, but 200 bytes of acknowledged WAL short');
  assert.equal(inSyncAt(catchUp, 700n, 450n), false, 'the target stays the position first seen: 450 < 500');
  assert.equal(inSyncAt(catchUp, 900n, 500n), true, 'flushed everything acknowledged before it became synchronous');
  // From now on PostgreSQL makes each commit wait for it: the primary running ahead is no gap.
  assert.equal(inSyncAt(catchUp, 2_000n, 1_200n), true);
});

test('Given a synchronous standby that stops looking synchronous, Then it must catch up again from the new position', () => {
  const catchUp = new SyncCatchUp();
  assert.equal(inSyncAt(catchUp, 100n, 100n), true);
  const ctx = { peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null, replies: new ReplyWatch(), catchUp, nowMs: 0 };
  const asyncAgain = { ...primaryWithSyncStandby('x'), synchronousStandbyNames: '' };
  assert.equal(toSnapshot(asyncAgain, ctx).standbyInSync, false, 'degraded: not in sync');
  assert.equal(inSyncAt(catchUp, 800n, 600n), false, 'named again, but commits up to 800 were acknowledged without it');
  assert.equal(inSyncAt(catchUp, 900n, 800n), true);
});

test('Given the peer named as ANY 1 ("db-b") (etcd\'s claim path), Then it is the sync standby and in sync with sync_state quorum', () => {
  const base = primaryWithSyncStandby('t1');
  assert.ok(base.reachable);
  for (const [names, syncState, expected] of [
    ['ANY 1 ("db-b")', 'quorum', true],
    ['FIRST 1 ("db-b")', 'sync', true],
    ['ANY 1 ("db-b", "db-c")', 'quorum', false],
    ['"db-c"', 'async', false],
  ] as const) {
    const replicas = base.replicas.map((r) => ({ ...r, syncState }));
    const obs: PgObservation = { ...base, synchronousStandbyNames: names, replicas };
    const ctx = {
      peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null,
      replies: new ReplyWatch(), catchUp: new SyncCatchUp(), nowMs: 0,
    };
    const snap = toSnapshot(obs, ctx);
    assert.equal(snap.syncStandby, expected ? 'db-b' : null, names);
    assert.equal(snap.standbyInSync, expected, names);
  }
});

test('Given stale walsenders of the standby in startup listed before its streaming one, Then the streaming one counts and the standby is in sync', () => {
  // The 10-minute flap-loss lab run: after the heal db-a's pg_stat_replication held three walsenders of
  // db-b in `startup` (no reply, no position; their standby ends gone) beside the streaming one.
  const stale = { applicationName: 'db-b', clientAddress: '198.18.1.12', state: 'startup', syncState: 'async',
    flushLsn: null, replayLsn: null, replyTime: null };
  const replies = new ReplyWatch();
  const catchUp = new SyncCatchUp();
  for (let i = 0; i < 5; i++) {
    const obs = primaryWithSyncStandby(`2026-12-07 19:10:0${i}+00`);
    const streamingRow = obs.reachable ? obs.replicas : [];
    const withStale = { ...obs, replicas: [stale, stale, ...streamingRow, stale] } as PgObservation;
    const ctx = { peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null, replies, catchUp };
    assert.equal(toSnapshot(withStale, { ...ctx, nowMs: i * 1_000 }).standbyInSync, true, `look ${i}`);
  }
});

// Goal: the primary's look says how long ago each standby last replied (replyAges, the tick's
// `replyAgeMs`), on the agent's monotonic clock, so that the core starts a lost standby's degrade clock at its last
// reply and not 3 s later, when the silence rule counts it lost (docs/design.md, "Terms, leases, votes").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  replyAges, ReplicaReplies, ReplyWatch, standbyReplySilenceMs, SyncCatchUp, toSnapshot,
} from '../src/pg-snapshot.js';
import type { PgObservation, ReplicaView } from '../src/postgres/port.js';
import { synchronousStandbyNamesFor } from '../src/postgres/port.js';

const row = (name: string, replyTime: string | null): ReplicaView => ({
  applicationName: name, clientAddress: '198.18.1.12', state: 'streaming', syncState: 'quorum',
  flushLsn: 100n, replayLsn: 100n, replyTime,
});

function primary(replicas: readonly ReplicaView[], names = synchronousStandbyNamesFor('db-b')): PgObservation {
  return {
    reachable: true, role: 'primary', inRecovery: false, timelineId: 1, currentLsn: 100n, receiveLsn: null,
    replayLsn: null, walReceiver: null, replicas: [...replicas], synchronousStandbyNames: names,
    defaultTransactionReadOnly: false,
  };
}

interface Watches { readonly replies: ReplyWatch; readonly catchUp: SyncCatchUp; readonly nodeReplies: ReplicaReplies }
const watches = (): Watches =>
  ({ replies: new ReplyWatch(), catchUp: new SyncCatchUp(), nodeReplies: new ReplicaReplies() });

/** One look as the runner takes it: the snapshot, then the reply ages from the watches it updated. */
function snapshotAt(w: Watches, obs: PgObservation, nowMs: number) {
  const ctx = {
    peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2_000, previous: null, replies: w.replies, catchUp: w.catchUp, nowMs,
    nodes: { names: { 'db-a': 'db-a', 'db-b': 'db-b', 'db-c': 'db-c' }, endpoints: {}, replies: w.nodeReplies },
  };
  return { ...toSnapshot(obs, ctx), replyAgeMs: replyAges(obs, ctx) };
}

test('Given a sync standby that stops replying, Then its reply age counts from its last reply, also once it is counted lost', () => {
  const w = watches();
  assert.deepEqual(snapshotAt(w, primary([row('db-b', 'r1')]), 1_000).replyAgeMs, { 'db-b': 0 });
  assert.deepEqual(snapshotAt(w, primary([row('db-b', 'r2')]), 2_000).replyAgeMs, { 'db-b': 0 });
  // Silent from 2 000 on: in sync up to the limit, then lost, and the age still says since when.
  const quiet = snapshotAt(w, primary([row('db-b', 'r2')]), 2_000 + standbyReplySilenceMs);
  assert.equal(quiet.standbyInSync, true);
  const lost = snapshotAt(w, primary([row('db-b', 'r2')]), 2_000 + standbyReplySilenceMs + 400);
  assert.equal(lost.standbyInSync, false);
  assert.deepEqual(lost.replyAgeMs, { 'db-b': standbyReplySilenceMs + 400 });
  assert.deepEqual(snapshotAt(w, primary([row('db-b', 'r3')]), 9_000).replyAgeMs, { 'db-b': 0 });
});

test('Given several standbys (ANY k), Then each has its own age', () => {
  const w = watches();
  const both = synchronousStandbyNamesFor('db-b');
  snapshotAt(w, primary([row('db-b', 'b1'), row('db-c', 'c1')], both), 0);
  const later = snapshotAt(w, primary([row('db-b', 'b2'), row('db-c', 'c1')], both), 2_500);
  assert.deepEqual(later.replyAgeMs, { 'db-b': 0, 'db-c': 2_500 });
});

test('Given a lost standby\'s walsender that ends before the silence rule counted it lost, Then its age still counts from its last reply', () => {
  // The link's tcp_user_timeout (3 s) ends the walsender about when the silence rule (3 s) would
  // count the standby lost: whichever comes first, the loss began at the last reply.
  const w = watches();
  snapshotAt(w, primary([row('db-b', 'r1'), row('db-c', 'c1')]), 1_000);
  const gone = snapshotAt(w, primary([]), 3_900);
  assert.equal(gone.standbyInSync, false);
  assert.deepEqual(gone.replyAgeMs, { 'db-b': 2_900, 'db-c': 2_900 });
  assert.deepEqual(snapshotAt(w, primary([]), 4_500).replyAgeMs, { 'db-b': 3_500, 'db-c': 3_500 });
});

test('Given a new walsender that has not replied yet (a reconnect), Then it is a sign of life: the age starts again', () => {
  // Otherwise a standby taken back as synchronous right after a long outage would carry the
  // outage's silence into its catch-up and be dropped again at once.
  const w = watches();
  snapshotAt(w, primary([row('db-b', 'r1')]), 0);
  assert.deepEqual(snapshotAt(w, primary([]), 20_000).replyAgeMs, { 'db-b': 20_000 });
  assert.deepEqual(snapshotAt(w, primary([row('db-b', null)]), 20_500).replyAgeMs, { 'db-b': 0 });
  assert.deepEqual(snapshotAt(w, primary([row('db-b', null)]), 21_000).replyAgeMs, { 'db-b': 0 });
  assert.deepEqual(snapshotAt(w, primary([row('db-b', 'r2')]), 21_500).replyAgeMs, { 'db-b': 0 });
});

test('Given a standby\'s snapshot, Then it carries no reply ages (only a primary has walsenders)', () => {
  const w = watches();
  const standby: PgObservation = {
    reachable: true, role: 'standby', inRecovery: true, timelineId: 1, currentLsn: null, receiveLsn: 100n, replayLsn: 100n,
    walReceiver: null, replicas: [], synchronousStandbyNames: '', defaultTransactionReadOnly: true,
  };
  assert.equal(snapshotAt(w, standby, 0).replyAgeMs, undefined);
});

// Goal: with more than two database nodes the operator side picks and says the same things the
// design does (docs/design.md, "More than one standby"): a switchover without --to goes to the best
// live standby by the failover's ranking (timeline, WAL received, priority, id), never to a
// noFailover, withdrawn, unreachable or blocked node; a sync record read as ANY k (members) in either
// of its forms; and the record's changes become sync-degraded or sync-restored events, with the
// two-node words unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView as EtcdKeys } from '@pgvip/agent/quorum/etcd';
import { describeClaim, etcdEvents, syncRecordOf } from '../src/etcd-events.js';
import { bestStandby } from '../src/switchover-target.js';
// The core's ranking, which @pgvip/shared does not export: read from its source, for the check below.
import type { NodeView } from '../src/view.js';
import { node } from './fake-operator-api.js';

const standby = (id: string, lsn: string, over: Partial<NodeView> = {}) =>
  node({ node: id, lsn, priority: 0, noFailover: false, withdrawn: false, ...over });

test('the best live standby: the most advanced first, priority only among the equally advanced, then the id', () => {
  const primary = node({ node: 'db-a', role: 'primary', lsn: '0/5000000' });
  const pick = (...nodes: NodeView[]) => {
    const r = bestStandby([primary, ...nodes], 'db-a');
    return r.ok ? r.node : r.why;
  };
  // More WAL wins over a higher priority: priority never makes a less advanced standby win.
  assert.equal(pick(standby('db-b', '0/3000060', { priority: 9 }), standby('db-c', '0/3000100')), 'db-c');
  // Equally advanced: the higher priority; equal priority: the smaller id.
  assert.equal(pick(standby('db-b', '0/3000100'), standby('db-c', '0/3000100', { priority: 2 })), 'db-c');
  assert.equal(pick(standby('db-c', '0/3000100'), standby('db-b', '0/3000100')), 'db-b');
  // A newer timeline ranks before more WAL on an older one.
  assert.equal(pick(standby('db-b', '0/9000000', { timeline: 2 }), standby('db-c', '0/3000000', { timeline: 3 })), 'db-c');
});

test('a switchover never goes to a noFailover, withdrawn, unreachable, blocked or non-standby node', () => {
  const primary = node({ node: 'db-a', role: 'primary', lsn: '0/5000000' });
  const most = '0/9000000';
  const cases = [
    [standby('db-r', most, { noFailover: true }), /db-r has noFailover/],
    [standby('db-r', most, { withdrawn: true }), /db-r stopped its WAL receiver for an election/],
    [standby('db-r', most, { reachable: false }), /db-r is unreachable/],
    [standby('db-r', most, { promotionBlocker: 'lagging 20 MiB (lagBytesMax 16 MiB)' }), /db-r: lagging 20 MiB/],
    [standby('db-r', most, { role: 'primary' }), /db-r is primary/],
    [standby('db-r', 'not an lsn'), /db-r said a WAL position pgvip cannot read/],
  ] as const;
  for (const [bad, why] of cases) {
    const r = bestStandby([primary, bad, standby('db-b', '0/3000000')], 'db-a');
    assert.ok(r.ok && r.node === 'db-b', `${JSON.stringify(bad)} passed over`);
    const none = bestStandby([primary, bad], 'db-a');
    assert.ok(!none.ok);
    assert.match(none.why, /^no standby can take a switchover now \(/);
    assert.match(none.why, why);
  }
});

// Asserted: the shell's read gains fields (positions) that these events do not look at.
const keys = (sync: object | null, term = 4): EtcdKeys => ({
  raftTerm: '1',
  revision: '10',
  leader: { value: { node: 'db-a', term }, modRevision: '5', lease: '7' },
  term: { value: { term, primary: 'db-a' }, modRevision: '5', lease: '0' },
  sync: sync === null ? null : { value: sync as never, modRevision: '9', lease: '0' },
  maintenance: null,
  switchover: null,
  positions: [],
  bad: [],
} as EtcdKeys);
const ctx = { replication: 'sync' as const, switchoverSeen: null, forcedHere: null };
const events = (a: object | null, b: object | null) =>
  etcdEvents(keys(a), keys(b), ctx).map((e) => [e.type, e.node, e.detail]);

test('the sync record in either form reads as ANY k (members)', () => {
  assert.deepEqual(syncRecordOf({ standby: 'db-b', term: 3 }), { members: ['db-b'], k: 1, term: 3 });
  assert.deepEqual(syncRecordOf({ standby: null, term: 3 }), { members: [], k: 0, term: 3 });
  assert.deepEqual(syncRecordOf({ members: ['db-b', 'db-c'], k: 1, term: 3, standby: null }), { members: ['db-b', 'db-c'], k: 1, term: 3 });
  assert.equal(syncRecordOf(null), null);
  assert.equal(describeClaim({ members: ['db-b', 'db-c'], k: 2 }), 'ANY 2 (db-b, db-c)');
  assert.equal(describeClaim({ members: [], k: 0 }), 'none (async)');
});

test('sync record changes with more members: a member left or k lowered is degraded, joined or raised is restored', () => {
  const claim = (members: string[], k: number) => ({ members, k, term: 4 });
  assert.deepEqual(events(claim(['db-b', 'db-c'], 1), claim(['db-b'], 1)), [
    ['sync-degraded', 'db-c', 'the sync record of term 4 is ANY 1 (db-b), was ANY 1 (db-b, db-c): db-c may no longer hold every acknowledged write and cannot win a failover'],
  ]);
  assert.deepEqual(events(claim(['db-b', 'db-c'], 2), claim(['db-b', 'db-c'], 1)), [
    ['sync-degraded', null, 'the sync record of term 4 is ANY 1 (db-b, db-c), was ANY 2 (db-b, db-c)'],
  ]);
  assert.deepEqual(events(claim(['db-b', 'db-c'], 1), claim([], 0)), [
    ['sync-degraded', null, 'the sync record of term 4 is none (async), was ANY 1 (db-b, db-c): no standby is known to hold every acknowledged write, and no automatic failover is possible'],
  ]);
  assert.deepEqual(events(claim(['db-b'], 1), claim(['db-b', 'db-c'], 1)), [
    ['sync-restored', 'db-c', 'the sync record of term 4 is ANY 1 (db-b, db-c), was ANY 1 (db-b): db-c may win a failover again'],
  ]);
  assert.deepEqual(events(claim(['db-b', 'db-c'], 1), claim(['db-c', 'db-b'], 1)), [], 'the same claim in another order is no change');
});

test('two nodes: the sync record events keep the words of the witness backend, in both forms', () => {
  const degraded = ['sync-degraded', 'db-b', 'the sync record of term 4 names no standby: db-b may no longer hold every acknowledged write, and no automatic failover is possible'];
  const restored = ['sync-restored', 'db-b', 'the sync record of term 4 names db-b: it holds every acknowledged write'];
  assert.deepEqual(events({ standby: 'db-b', term: 4 }, { standby: null, term: 4 }), [degraded]);
  assert.deepEqual(events({ members: ['db-b'], k: 1, term: 4 }, { members: [], k: 0, term: 4 }), [degraded]);
  assert.deepEqual(events({ members: [], k: 0, term: 4 }, { members: ['db-b'], k: 1, term: 4 }), [restored]);
  assert.deepEqual(events(null, { standby: 'db-b', term: 4 }), [restored]);
  assert.deepEqual(events({ standby: 'db-b', term: 4 }, null), []);
});

test('an automatic failover with more nodes names the final positions the election saw', () => {
  const position = (node: string, term: number, flushLsn: bigint) =>
    ({ node, value: { term, timeline: 1, flushLsn, eligible: true }, modRevision: '8', lease: '0' });
  const during = { ...keys(null), leader: null, positions: [position('db-b', 4, 0x3000100n), position('db-c', 4, 0x3000180n)] } as EtcdKeys;
  const won = {
    ...keys(null, 5),
    leader: { value: { node: 'db-c', term: 5 }, modRevision: '11', lease: '9' },
    term: { value: { term: 5, primary: 'db-c' }, modRevision: '11', lease: '0' },
    // The winner's own position went with its campaign; an older term's is not this election's.
    positions: [position('db-b', 4, 0x3000100n), position('db-r', 3, 0x2000000n)],
  } as EtcdKeys;
  const [e] = etcdEvents(during, won, ctx);
  assert.equal(e?.type, 'vote-granted');
  assert.equal(e?.detail, 'db-c won term 5 on etcd (its campaign txn created the leader key) (term 4 was db-a\'s); final positions published: db-b 0/3000100, db-c 0/3000180');
  // Two nodes publish none: the words stay as they were.
  const [two] = etcdEvents({ ...during, positions: [] } as EtcdKeys, { ...won, positions: [] } as EtcdKeys, ctx);
  assert.equal(two?.detail, 'db-c won term 5 on etcd (its campaign txn created the leader key) (term 4 was db-a\'s)');
});

test('the leader key gone: with more nodes the primary writes on only through every eligible standby\'s grant', () => {
  const gone = { ...keys(null), leader: null } as EtcdKeys;
  const detail = (nodes?: number) =>
    etcdEvents(keys(null), gone, { ...ctx, ...(nodes === undefined ? {} : { nodes }) })[0]?.detail;
  assert.equal(detail(3), 'the leader key of db-a (term 4) is gone from etcd: its lease ran out or was released; db-a keeps its writes only through the grants of every eligible standby');
  assert.equal(detail(), 'the leader key of db-a (term 4) is gone from etcd: its lease ran out or was released; db-a keeps its writes only through its standby\'s grant');
});

// Goal: the lab reads pgvip's keys in etcd as etcd 3.4 writes them (replies captured from a real
// etcd 3.4.23: the JSON gateway's range reply and `etcdctl watch -w json` lines), the healthy check
// names every disagreement between etcd and the agents, and the etcd suite's row keys match the
// scenario titles. No root needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etcdKeyProblems, parseRangeReply, parseWatchLine, type PgvipEtcdKeys } from './etcd-keys.js';
import { etcdLeftOut, rowKey } from './etcd-rows.js';

const base = '/pgvip/lab/';
const b64 = (s: string) => Buffer.from(s).toString('base64');

// A range reply of the gateway (int64 as strings, bytes in base64), with the lab's keys.
function rangeReply(kvs: Array<{ key: string; value: string; lease?: string }>): string {
  return JSON.stringify({
    header: { cluster_id: '324952591200643719', member_id: '3319814642761637952', revision: '4', raft_term: '2' },
    kvs: kvs.map((kv) => ({ key: b64(kv.key), create_revision: '2', mod_revision: '2', version: '1', value: b64(kv.value), ...(kv.lease === undefined ? {} : { lease: kv.lease }) })),
    count: String(kvs.length),
  });
}

describe('pgvip\'s keys in the lab\'s etcd', () => {
  it('a range reply becomes the leader key with its lease, the term and sync records, and the members', () => {
    const keys = parseRangeReply(rangeReply([
      { key: '/pgvip/lab/leader', value: '{"node":"db-a","term":3}', lease: '2324035870762485765' },
      { key: '/pgvip/lab/term', value: '{"term":3,"primary":"db-a"}' },
      { key: '/pgvip/lab/sync', value: '{"standby":"db-b","term":3}' },
      { key: '/pgvip/lab/members/db-b', value: '{}', lease: '7' },
      { key: '/pgvip/lab/members/db-a', value: '{}', lease: '8' },
      { key: '/pgvip/other/leader', value: '{"node":"x","term":9}' },
    ]), base);
    assert.deepEqual(keys, {
      leader: { node: 'db-a', term: 3, lease: '2324035870762485765' },
      term: { term: 3, primary: 'db-a' },
      sync: { standby: 'db-b', term: 3, members: ['db-b'], k: 1 },
      maintenance: false,
      switchover: false,
      members: ['db-a', 'db-b'],
      positions: {},
    });
    // No keys at all (a fresh etcd): nothing is invented.
    assert.deepEqual(parseRangeReply('{"header":{"revision":"1"}}', base), { leader: null, term: null, sync: null, maintenance: false, switchover: false, members: [], positions: {} });
    // Three nodes: the term record's grantors, the claim form of the sync record, the published positions.
    const three = parseRangeReply(rangeReply([
      { key: '/pgvip/lab/term', value: '{"term":4,"primary":"db-b","grantors":["db-a","db-c"]}' },
      { key: '/pgvip/lab/sync', value: '{"members":["db-a","db-c"],"k":1,"term":4}' },
      { key: '/pgvip/lab/position/db-c', value: '{"term":3,"timeline":1,"flushLsn":"0/3000148"}' },
    ]), base);
    assert.deepEqual(three.term, { term: 4, primary: 'db-b', grantors: ['db-a', 'db-c'] });
    assert.deepEqual(three.sync, { standby: null, term: 4, members: ['db-a', 'db-c'], k: 1 });
    assert.deepEqual(three.positions, { 'db-c': { term: 3, timeline: 1, flushLsn: '0/3000148' } });
    // A degraded sync record names nobody.
    assert.equal(parseRangeReply(rangeReply([{ key: '/pgvip/lab/sync', value: '{"standby":null,"term":3}' }]), base).sync?.standby, null);
  });

  it('watch lines become puts and deletes of the watched keys, members left out', () => {
    // As etcdctl 3.4 prints them: a put of the leader key on a lease, then its expiry (type 1).
    const put = '{"Header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":2,"raft_term":2},"Events":[{"kv":{"key":"L3BndmlwL2xhYi9sZWFkZXI=","create_revision":2,"mod_revision":2,"version":1,"value":"eyJub2RlIjoiZGItYSIsInRlcm0iOjF9","lease":2324035870762485765}}],"CompactRevision":0,"Canceled":false,"Created":false}';
    const expired = '{"Header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":5,"raft_term":2},"Events":[{"type":1,"kv":{"key":"L3BndmlwL2xhYi9sZWFkZXI=","mod_revision":5}}],"CompactRevision":0,"Canceled":false,"Created":false}';
    assert.deepEqual(parseWatchLine(put, base, 100), [{ atMs: 100, type: 'put', key: 'leader', value: { node: 'db-a', term: 1 } }]);
    assert.deepEqual(parseWatchLine(expired, base, 200), [{ atMs: 200, type: 'delete', key: 'leader', value: null }]);
    const member = JSON.stringify({ Events: [{ kv: { key: b64('/pgvip/lab/members/db-a'), value: b64('{}') } }] });
    assert.deepEqual(parseWatchLine(member, base, 300), []);
    assert.deepEqual(parseWatchLine('not json', base, 400), []);
    // A withdrawn standby's final position (three nodes), and its clearing.
    const position = JSON.stringify({ Events: [
      { kv: { key: b64('/pgvip/lab/position/db-c'), value: b64('{"term":2,"timeline":2,"flushLsn":"0/5000060","eligible":true}') } },
      { type: 1, kv: { key: b64('/pgvip/lab/position/db-c') } },
    ] });
    assert.deepEqual(parseWatchLine(position, base, 500), [
      { atMs: 500, type: 'put', key: 'position', node: 'db-c', value: { term: 2, timeline: 2, flushLsn: '0/5000060', eligible: true } },
      { atMs: 500, type: 'delete', key: 'position', node: 'db-c', value: null },
    ]);
  });

  it('the healthy check names each way etcd disagrees with the agents', () => {
    const good: PgvipEtcdKeys = {
      leader: { node: 'db-a', term: 3, lease: '1' },
      term: { term: 3, primary: 'db-a' },
      sync: { standby: 'db-b', term: 3 },
      maintenance: false,
      switchover: false,
      members: ['db-a', 'db-b'],
    };
    const expected = { primary: 'db-a', standby: 'db-b', term: 3, sync: true };
    assert.deepEqual(etcdKeyProblems(good, expected), []);
    assert.match(etcdKeyProblems(null, expected).join(), /does not answer/);
    assert.match(etcdKeyProblems({ ...good, leader: null }, expected).join(), /no leader key/);
    assert.match(etcdKeyProblems({ ...good, leader: { node: 'db-b', term: 4, lease: '2' } }, expected).join(), /names db-b in term 4/);
    assert.match(etcdKeyProblems({ ...good, term: { term: 2, primary: 'db-a' } }, expected).join(), /term record is term 2/);
    assert.match(etcdKeyProblems({ ...good, sync: { standby: null, term: 3 } }, expected).join(), /sync record names nobody/);
    // The claim form (n-core may move two nodes to it) reads the same for one member and k = 1.
    assert.deepEqual(etcdKeyProblems({ ...good, sync: { standby: 'db-b', term: 3, members: ['db-b'], k: 1 } }, expected), []);
    // Three nodes: ANY k ≥ 1 of exactly the eligible standbys.
    const three = { ...expected, standbys: ['db-b', 'db-c'] };
    const claim = (members: string[], k: number) => ({ ...good, sync: { standby: null, term: 3, members, k } });
    assert.deepEqual(etcdKeyProblems(claim(['db-c', 'db-b'], 1), three), []);
    assert.match(etcdKeyProblems(claim(['db-b'], 1), three).join(), /claims ANY 1 \(db-b\), not ANY k ≥ 1 of the eligible standbys \(db-b, db-c\)/);
    assert.match(etcdKeyProblems(claim(['db-b', 'db-c'], 0), three).join(), /claims ANY 0/);
    assert.deepEqual(etcdKeyProblems(claim(['db-b'], 1), { ...three, noFailover: ['db-c'] }), []);
    // In async mode the sync record is not asked for.
    assert.deepEqual(etcdKeyProblems({ ...good, sync: null }, { ...expected, sync: false }), []);
  });

  it('the rows left out on etcd are keyed as the scenario titles begin', () => {
    assert.equal(rowKey('row 3 (+18): primary host gone'), 'row 3');
    assert.equal(rowKey('row 16a: the primary loses every link'), 'row 16a');
    assert.equal(rowKey('row 9 (cont.): writes block'), 'row 9');
    assert.equal(rowKey('row 19: the standby agent is killed at "promote"'), 'row 19');
    for (const key of Object.keys(etcdLeftOut)) assert.match(key, /^(iam|row \d+[ab]?)$/);
    // The rows that matter on etcd run there.
    for (const runs of ['row 1', 'row 2', 'row 3', 'row 4', 'row 7', 'row 9']) assert.equal(etcdLeftOut[runs], undefined, runs);
  });
});

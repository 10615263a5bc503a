// Goal: the lab's etcd pieces that need no root are right on their own — each member's config names the
// whole cluster and its own token, the status etcdctl prints keeps 64-bit member ids exact, the leader
// is the one a majority follows (an isolated old leader that still names itself is outvoted), and the
// two etcd faults become the nftables rules they promise: a member's ports cut on eth0 only, and one
// user's connections to the client port dropped on every interface.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { majorityLeader, parseEndpointStatus, renderEtcdYml, type MemberStatus } from './etcd.js';
import { describeNetworkFault, nftScript } from './faults.js';
import { topologyFor } from './topology.js';

const members = [
  { name: 'db-a', address: '198.18.1.11' },
  { name: 'db-b', address: '198.18.1.12' },
  { name: 'witness', address: '198.18.2.20' },
];

describe('lab etcd', () => {
  it('renders a member with the whole initial cluster, its own token and the v3 gateway', () => {
    const y = parse(renderEtcdYml(members[0]!, members, '/tmp/lab/hosts/db-a/etcd', 'pgvip-lab-x')) as Record<string, unknown>;
    assert.equal(y.name, 'db-a');
    assert.equal(y['data-dir'], '/tmp/lab/hosts/db-a/etcd');
    assert.equal(y['listen-client-urls'], 'http://198.18.1.11:2379,http://127.0.0.1:2379');
    assert.equal(y['initial-cluster'], 'db-a=http://198.18.1.11:2380,db-b=http://198.18.1.12:2380,witness=http://198.18.2.20:2380');
    assert.equal(y['initial-cluster-token'], 'pgvip-lab-x');
    assert.equal(y['initial-cluster-state'], 'new');
    assert.equal(y['enable-grpc-gateway'], true);
  });

  it('reads etcdctl endpoint status with 64-bit ids exact', () => {
    // As etcdctl 3.4 prints it: ids are uint64, beyond what a JavaScript number holds exactly.
    const text =
      '[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637953,' +
      '"revision":7,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":18446744073709551615,"raftIndex":4,"raftTerm":3}}]';
    assert.deepEqual(parseEndpointStatus(text), { memberId: '2e1259d415f2a041', leaderId: 'ffffffffffffffff', raftTerm: 3, revision: 7 });
    assert.equal(parseEndpointStatus('[]'), null);
  });

  it('takes the leader a majority follows', () => {
    const s = (memberId: string, leaderId: string): MemberStatus => ({ memberId, leaderId, raftTerm: 2, revision: 1 });
    assert.equal(majorityLeader({ 'db-a': s('a', 'b'), 'db-b': s('b', 'b'), witness: s('c', 'b') }), 'db-b');
    // db-b isolated still names itself; the other two elected the witness.
    assert.equal(majorityLeader({ 'db-a': s('a', 'c'), 'db-b': s('b', 'b'), witness: s('c', 'c') }), 'witness');
    // Only one member answers: no majority, no leader.
    assert.equal(majorityLeader({ 'db-a': s('a', 'a'), 'db-b': null, witness: null }), null);
    assert.equal(majorityLeader({ 'db-a': s('a', '0'), 'db-b': s('b', '0'), witness: null }), null);
  });

  it('cuts one member\'s ports on eth0 only, and one user\'s connections to the client port everywhere', () => {
    const t = topologyFor();
    const ports = nftScript(t, 'db-b', [{ kind: 'isolate-ports', host: 'db-b', ports: [2379, 2380] }]);
    for (const rule of ['iifname "eth0" tcp dport { 2379, 2380 } drop', 'iifname "eth0" tcp sport { 2379, 2380 } drop', 'oifname "eth0" tcp dport { 2379, 2380 } drop', 'oifname "eth0" tcp sport { 2379, 2380 } drop']) {
      assert.ok(ports.includes(rule), `${rule} in\n${ports}`);
    }
    assert.doesNotMatch(nftScript(t, 'db-a', [{ kind: 'isolate-ports', host: 'db-b', ports: [2379] }]), /drop/);
    const cut = nftScript(t, 'db-a', [{ kind: 'cut-port', host: 'db-a', port: 2379, uid: 117 }]);
    const output = cut.slice(cut.indexOf('chain output'));
    assert.match(output, /^\s+meta skuid 117 tcp dport 2379 drop$/m);
    assert.doesNotMatch(output, /meta skuid.*eth0|eth0.*meta skuid/, 'loopback too: the agent loses its own host\'s member');
    assert.doesNotMatch(cut.slice(0, cut.indexOf('chain output')), /drop/, 'nothing dropped on the way in');
    assert.equal(describeNetworkFault({ kind: 'cut-port', host: 'db-a', port: 2379, uid: 117 }), 'db-a: uid 117 → tcp port 2379 dropped');
  });
});

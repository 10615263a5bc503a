// Goal: the CLI with a cluster of more than two database nodes on etcd: `pgvip status` shows every
// node with its WAL position, sync membership and priority, the sync record as ANY k (members) and
// the final positions of an election; `pgvip switchover` without --to shows the best live standby
// before it asks and sends that node; a noFailover node is refused before anything is sent, with
// its code; a forced failover must name its node. Two-node clusters keep their layout
// (cli-status.test.ts).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ClusterView } from '../src/view.js';
import { runPgvip, runPgvipOnTerminal } from './cli-helpers.js';
import { fourNodes, startFakeOperatorApi } from './fake-operator-api.js';

async function fakeApi(t: TestContext, cluster: ClusterView = fourNodes()) {
  const api = await startFakeOperatorApi({ clusters: [cluster] });
  t.after(() => api.close());
  return api;
}

const posts = (api: Awaited<ReturnType<typeof fakeApi>>) => api.requests.filter((r) => r.method === 'POST').map((r) => ({ url: r.url, body: r.body }));

describe('the CLI with more than two nodes', { concurrency: true, timeout: 120_000 }, () => {
  it('pgvip status shows every node\'s LSN, sync membership and priority, and the record as ANY k', async (t) => {
    const api = await fakeApi(t);
    const r = await runPgvip(['--witness', api.url, 'status']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[1]!, /^\| VIP \| Node \| Role +\| Term \| Lease \| LSN +\| Lag +\| TL \| Sync +\| Prio \| State +\| Promotion +\| Last seen \|$/);
    const row = (id: string) => lines.find((l) => l.includes(`| ${id} `))!.split('|').map((c) => c.trim());
    assert.deepEqual(row('db-b').slice(1, 13), ['', 'db-b', 'standby', '7', '-', '0/3000100', '256 B', '3', 'member', '0', 'streaming', 'eligible']);
    assert.deepEqual(row('db-c').slice(9, 11), ['member', '5']);
    assert.deepEqual(row('db-r').slice(9, 13), ['async', '0', 'streaming', 'never (noFailover)']);
    assert.deepEqual(row('db-a').slice(1, 10), ['*', 'db-a', 'primary', '7', '2.4 s', '0/3000200', '-', '3', '-']);
    assert.match(r.stdout, /^sync record: ANY 1 \(db-b, db-c\) \(term 7\): every acknowledged write is on at least 1 of them$/m);
    assert.doesNotMatch(r.stdout, /election under way/);
  });

  it('pgvip status shows an election\'s final positions and the withdrawn standbys, and a degraded record', async (t) => {
    const base = fourNodes();
    const api = await fakeApi(t, fourNodes({
      nodes: base.nodes.map((n) => (n.node === 'db-b' || n.node === 'db-c' ? { ...n, withdrawn: true } : n)),
      quorum: {
        ...base.quorum!,
        sync: { members: [], k: 0, term: 7 },
        positions: [
          { node: 'db-b', term: 7, timeline: 3, flushLsn: '0/3000100', eligible: true },
          { node: 'db-c', term: 7, timeline: 3, flushLsn: '0/3000180', eligible: true },
        ],
      },
    }));
    const r = await runPgvip(['--witness', api.url, 'status']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^election under way: final positions db-b 0\/3000100 \(timeline 3\), db-c 0\/3000180 \(timeline 3\)$/m);
    assert.match(r.stdout, /\| db-b +\|.*\| withdrawn \(election\) +\|/);
    assert.match(r.stdout, /^sync record: none \(async\) \(term 7\): no standby is known to hold every acknowledged write, so no automatic failover$/m);
  });

  it('pgvip switchover without --to shows the best live standby before it asks, and sends that node', async (t) => {
    const api = await fakeApi(t);
    const no = await runPgvipOnTerminal(['--witness', api.url, 'switchover'], 'n\n');
    assert.equal(no.code, 1, no.stdout);
    assert.match(no.stdout, /Switch over cluster main from db-a to db-c \(the best live standby: timeline 3, WAL received 0\/3000100, priority 5\) now\? /);
    assert.deepEqual(posts(api), []);
    const yes = await runPgvip(['--witness', api.url, 'switchover', '--yes']);
    assert.equal(yes.code, 0, yes.stderr);
    assert.deepEqual(posts(api), [{ url: '/api/v1/clusters/main/switchover', body: { to: 'db-c' } }]);
  });

  it('pgvip switchover with no standby ready says why for each node, and sends nothing', async (t) => {
    const base = fourNodes();
    const api = await fakeApi(t, fourNodes({
      nodes: base.nodes.map((n) => (n.node === 'db-b' ? { ...n, reachable: false } : n.node === 'db-c' ? { ...n, promotionBlocker: 'not streaming' } : n)),
    }));
    const r = await runPgvip(['--witness', api.url, 'switchover', '--yes']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'pgvip: switchover main: no standby can take a switchover now (db-b is unreachable; db-c: not streaming; db-r has noFailover)\n');
    assert.deepEqual(posts(api), []);
  });

  it('what agents said is printed as plain text: a hostile blocker clears no screen', async (t) => {
    const base = fourNodes();
    const hostile = '\u001b]0;pwned\u0007\u001b[2Jlagging';
    const api = await fakeApi(t, fourNodes({
      nodes: base.nodes.map((n) => (n.node === 'db-b' || n.node === 'db-c' ? { ...n, promotionBlocker: hostile } : n)),
    }));
    const r = await runPgvip(['--witness', api.url, 'switchover', '--yes']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'pgvip: switchover main: no standby can take a switchover now (db-b: lagging; db-c: lagging; db-r has noFailover)\n');
  });

  it('a noFailover node is refused before anything is sent, with PGVIP_OPERATOR_NO_FAILOVER', async (t) => {
    const api = await fakeApi(t);
    const r = await runPgvip(['--witness', api.url, '--json', 'switchover', '--to', 'db-r', '--yes']);
    assert.equal(r.code, 2);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string; exitCode: number } };
    assert.equal(error.code, 'PGVIP_OPERATOR_NO_FAILOVER');
    assert.match(error.message, /db-r has noFailover: true in cluster\.nodes and is never promoted/);
    const f = await runPgvip(['--witness', api.url, 'failover', '--to', 'db-r', '--force', '--accept-data-loss']);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /^pgvip: PGVIP_OPERATOR_NO_FAILOVER: db-r has noFailover/);
    assert.deepEqual(posts(api), []);
  });

  it('pgvip restart --pending-restart --switchover hands over to the best live standby, then restarts the old primary', async (t) => {
    const base = fourNodes();
    const api = await fakeApi(t, fourNodes({ nodes: base.nodes.map((n) => ({ ...n, pendingRestart: n.node === 'db-a' })) }));
    const r = await runPgvip(['--witness', api.url, 'restart', '--pending-restart', '--switchover', '--yes']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^… switching over to db-c, the best live standby \(timeline 3, WAL received 0\/3000100, priority 5\)$/m);
    assert.deepEqual(posts(api), [
      { url: '/api/v1/clusters/main/switchover', body: { to: 'db-c' } },
      { url: '/api/v1/clusters/main/restart', body: { node: 'db-a', timeoutMs: 60_000 } },
    ]);
  });

  it('a forced failover must name its node with more than two, with the best live standby as the hint', async (t) => {
    const api = await fakeApi(t);
    const r = await runPgvip(['--witness', api.url, 'failover', '--force', '--accept-data-loss']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'pgvip: cluster main has 4 nodes: name the node to promote with --to (the best live standby now: --to db-c, timeline 3, WAL received 0/3000100, priority 5)\n');
    assert.deepEqual(posts(api), []);
  });
});

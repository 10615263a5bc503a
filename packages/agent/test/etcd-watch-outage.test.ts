// Goal: a watch asked of an etcd that does not answer leaves nothing behind. The agent's shell asks
// for its watch again every status round (every 2 s at the defaults) until one is open, and the
// witness every 10 s: a watch that failed its deadline must not stay queued in etcd3's watch manager,
// or an outage of an hour would leave ~1,800 watches held by nobody, all opened on etcd's return.
// Real etcd 3.4 (one member): its watcher count comes from its own metrics.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdQuorum } from '../src/quorum/etcd/index.js';
import { etcdMissing, startEtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

/** etcd's own count of the watchers it serves (etcd_debugging_mvcc_watcher_total). */
async function watchersOn(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  if (m === null) throw new Error('etcd_debugging_mvcc_watcher_total not in etcd\'s metrics');
  return Number(m[1]);
}

describe('an etcd watch through an outage (real etcd)', { skip: etcdMissing(), timeout: 60_000 }, () => {
  it('watches that failed while etcd was away are not opened on its return; one that succeeds is', async (t) => {
    const etcd = await startEtcdCluster(t, { members: 1 });
    const endpoint = etcd.endpoints[0]!;
    const q = new EtcdQuorum({ endpoints: [endpoint], prefix: '/pgvip', cluster: 'main', timeoutMs: 300 });
    t.after(() => q.close());
    assert.ok((await q.read()).ok, 'etcd answers at first');
    await etcd.stop(0);
    for (let i = 0; i < 4; i++) {
      const w = await q.watch(() => undefined);
      assert.equal(w.ok, false, 'no watch while etcd is away');
    }
    await etcd.start(0);
    // The client reconnects with a backoff of up to 2 s; a read through it shows it is back.
    await waitUntil('the client reaching etcd again', 15_000, async () => (await q.read()).ok);
    await new Promise((r) => setTimeout(r, 2500)); // any watch still queued in the manager is opened by now
    assert.equal(await watchersOn(endpoint), 0, 'the watches that failed were left behind in the watch manager');
    const changed: string[] = [];
    const w = await q.watch((key) => changed.push(key));
    assert.ok(w.ok, w.ok ? '' : w.why);
    assert.equal(await watchersOn(endpoint), 1);
    const g = await q.grantLease(2000);
    assert.ok(g.ok, g.ok ? '' : g.why);
    await q.campaign({ node: 'db-a', after: null, lease: g.lease, sync: 'async' });
    await waitUntil('the watch telling of the leader key', 5000, () => Promise.resolve(changed.includes('leader')));
    await w.handle.close();
  });
});

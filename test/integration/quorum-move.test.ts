// Goal: a cluster's quorum moves from the witness to etcd and back without a failover
// (docs/etcd.md, "Moving a cluster between the witness and etcd"), on real parts: a real three-member
// etcd on loopback (test/fixtures/etcd-cluster.ts), real PostgreSQL 15 primary and standby, the agent
// and witness daemons (in this process, on loopback; only the VIP is the in-memory fake) and the real
// `pgvip` CLI. Writes flow on the primary all along. The procedure: maintenance on; `pgvip etcd seed`;
// the standby's agent, then the primary's, then the witness restarted with backend etcd; maintenance
// off. Back: maintenance on; `pgvip etcd hand-back`; the witness, then the standby's agent, then the
// primary's restarted with backend witness; maintenance off. What must hold during each move: the term
// does not change, the standby is never primary, no failover is recorded, and no write is refused or
// waits as long as a lease. Between the moves, on etcd: `pgvip restart` of the standby and of the
// primary through the observing witness (same term, same leader key, no failover), then a switchover
// that makes a term the witness never gave; moved back, the witness carries on in it (hand-back).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { createWitnessDaemon, type WitnessDaemon } from '../../packages/witness/src/daemon.js';
import { runPgvip } from '../../packages/witness/test/cli-helpers.js';
import { etcdKeyReader, etcdMissing, startEtcdCluster, type EtcdCluster } from '../fixtures/etcd-cluster.js';
import { startPgCluster, type PgCluster } from '../fixtures/pg-cluster.js';
import { clusterFiles, daemonsLog } from './daemons-on-pg.js';
import { until } from './helpers.js';

type Backend = 'witness' | 'etcd';

interface View {
  term: number;
  primary: string | null;
  syncEligible: string | null;
  maintenance: boolean;
  quorum?: { backend: string; leaderKey: { node: string; term: number } | null };
  events: { id: number; type: string; node: string | null; detail: string }[];
}

async function startCluster(t: TestContext, etcd: EtcdCluster, pgc: PgCluster) {
  const files = await clusterFiles(t, 'pgvip-quorum-move', pgc);
  const { pw, po } = files;
  // The same cluster block in the three files; the etcd block stays while the backend is the witness.
  const tail = (backend: Backend) =>
    `replication: { slots: { enabled: false } }\n  quorum:\n    backend: ${backend}\n    etcd: { endpoints: [${etcd.endpoints.join(', ')}] }\n`;
  const agentCfg = (self: string, backend: Backend) => files.agent(self, tail(backend));
  const witnessCfg = (backend: Backend) => files.witness(tail(backend));
  const { lines, log } = daemonsLog(t);
  const cloud = new FakeVipCloud();
  const agents: Record<string, AgentDaemon | null> = {};
  let witness: WitnessDaemon | null = null;
  const startAgent = async (self: string, backend: Backend) => {
    const old = agents[self];
    agents[self] = null;
    await old?.close();
    agents[self] = await startAgentDaemon(agentCfg(self, backend), {
      logger: log.child({ daemon: self, backend }),
      vip: new FakeVipPort(cloud, self),
      onFatal: (e) => assert.fail(e),
    });
  };
  const startWitness = async (backend: Backend) => {
    await witness?.close();
    witness = await createWitnessDaemon(witnessCfg(backend), { log: log.child({ daemon: 'witness', backend }) });
    await witness.protocol.listen({ host: '127.0.0.1', port: pw });
    await witness.operator.listen({ host: '127.0.0.1', port: po });
    witness.startPolling();
  };
  t.after(async () => {
    await agents['db-a']?.close();
    await agents['db-b']?.close();
    await witness?.close();
  });
  await startWitness('witness');
  await startAgent('db-a', 'witness');
  await startAgent('db-b', 'witness');
  const url = `http://127.0.0.1:${po}`;
  const code = async (n: string, route: string) => {
    const a = agents[n];
    // A daemon closed meanwhile (a restart) answers nothing: 0.
    return a === null || a === undefined ? 0 : (await a.app.inject({ url: route }).catch(() => null))?.statusCode ?? 0;
  };
  const view = async () => (await (await fetch(`${url}/api/v1/clusters/orders`)).json()) as View;
  const history = async () =>
    ((await (await fetch(`${url}/api/v1/clusters/orders/history?limit=500`)).json()) as { events: View['events'] }).events;
  const pgvip = async (...args: string[]) => {
    const r = await runPgvip(['--witness', url, ...args], { timeoutMs: 60_000 });
    return { ...r, out: `${r.stdout}${r.stderr}` };
  };
  const reader = etcdKeyReader(t, etcd, 'orders');
  const key = async (name: string) => (await reader.key(name))?.value ?? null;
  /** The lease renewals the quorum (the witness, or etcd) granted `n` since its agent started. */
  const witnessGrants = async (n: string) => {
    const body = (await agents[n]!.app.inject({ url: '/metrics' })).body;
    const re = /pgvip_agent_lease_renewals_total\{[^}]*grantor="witness"[^}]*result="granted"[^}]*\} (\d+)/;
    return Number(re.exec(body)?.[1] ?? '0');
  };
  return { startAgent, startWitness, cloud, lines, code, view, history, pgvip, key, witnessGrants };
}

/** Writes one row every `everyMs` until stopped; the longest stretch without a successful write. */
function writer(pg: PgCluster['primary'], everyMs = 100) {
  const ok: number[] = [];
  let failed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const atMs = performance.now();
      if (await pg.psql('INSERT INTO writes DEFAULT VALUES', 5_000).then(() => true, () => false)) ok.push(atMs);
      else failed++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      let gap = 0;
      for (let i = 1; i < ok.length; i++) gap = Math.max(gap, ok[i]! - ok[i - 1]!);
      return { written: ok.length, failed, longestGapMs: Math.round(gap) };
    },
  };
}

test('the quorum moves from the witness to etcd and back with writes flowing: no term made, no promotion', { skip: etcdMissing(), timeout: 420_000 }, async (t) => {
  const etcd = await startEtcdCluster(t);
  const pgc = await startPgCluster(t);
  const c = await startCluster(t, etcd, pgc);
  await until('db-a to be primary with a lease', async () => (await c.code('db-a', '/primary')) === 200, 60_000);
  await until('db-b to be the eligible standby', async () => (await c.view()).syncEligible === 'db-b', 30_000);
  await pgc.primary.psql('CREATE TABLE writes (n serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
  const term = (await c.view()).term;
  /** Failovers recorded, and promotions of `standby` seen, since now; and the writes on `pg`. */
  const watch = async (standby: string, pg: PgCluster['primary']) => {
    const sinceId = Math.max(0, ...(await c.history()).map((e) => e.id));
    const seen: number[] = [];
    const timer = setInterval(() => void c.code(standby, '/primary').then((s) => seen.push(s)), 200);
    t.after(() => clearInterval(timer));
    const writes = writer(pg);
    // A failed assertion must not leave the loop running (the process would never end).
    t.after(() => writes.stop());
    return async (what: string) => {
      clearInterval(timer);
      const w = await writes.stop();
      t.diagnostic(`${what}: ${w.written} writes, ${w.failed} failed, longest gap ${w.longestGapMs} ms`);
      const failovers = (await c.history()).filter((e) => e.id > sinceId && ['vote-granted', 'manual-failover', 'switchover', 'lease-released'].includes(e.type));
      assert.deepEqual(failovers, [], `${what}: no failover recorded`);
      assert.equal(seen.filter((s) => s === 200).length, 0, `${what}: ${standby} never primary`);
      assert.equal(w.failed, 0, `${what}: no write refused`);
      assert.ok(w.longestGapMs < 3000, `${what}: no write waited a lease (3000 ms): ${w.longestGapMs} ms`);
    };
  };

  // --- witness → etcd, db-a primary ---------------------------------------------------------------
  let done = await watch('db-b', pgc.primary);
  // Refused while the cluster is not in maintenance: nothing is written to etcd.
  const early = await c.pgvip('etcd', 'seed');
  assert.equal(early.code, 1, early.out);
  assert.match(early.out, /maintenance first/);
  assert.equal(await c.key('term'), null);
  assert.equal((await c.pgvip('maintenance', 'on')).code, 0);
  const seeded = await c.pgvip('etcd', 'seed');
  assert.equal(seeded.code, 0, seeded.out);
  assert.deepEqual(await c.key('term'), { term, primary: 'db-a' });
  assert.notEqual(await c.key('maintenance'), null);
  // The standby's agent first: on etcd it cannot campaign (maintenance key), and it still grants the
  // primary's leases as its peer.
  await c.startAgent('db-b', 'etcd');
  await until('db-b to stream again as a standby', async () => (await c.code('db-b', '/replica')) === 200, 30_000);
  // Then the primary's: its first lease request takes the leader key in the same term.
  await c.startAgent('db-a', 'etcd');
  await until('db-a primary again, on etcd', async () => (await c.code('db-a', '/primary')) === 200, 30_000);
  await until('db-a\'s leader key in the same term', async () => (await c.key('leader'))?.term === term, 20_000);
  assert.deepEqual(await c.key('leader'), { node: 'db-a', term });
  // Then the witness, as an observer; maintenance off deletes the key on etcd.
  await c.startWitness('etcd');
  await until('the witness to observe the cluster on etcd', async () => (await c.view()).quorum?.leaderKey?.node === 'db-a', 20_000);
  assert.equal((await c.pgvip('maintenance', 'off')).code, 0);
  assert.equal(await c.key('maintenance'), null);
  await until('the sync record to name db-b', async () => (await c.key('sync'))?.standby === 'db-b', 30_000);
  const onEtcd = await c.view();
  assert.deepEqual([onEtcd.term, onEtcd.primary, onEtcd.maintenance], [term, 'db-a', false]);
  await done('witness → etcd');

  // On etcd, `pgvip restart` through the observer: the standby, then the primary in place. The agent
  // holds its own failure handling; the primary keeps renewing its leader key, so nobody campaigns.
  const restartsFrom = Math.max(0, ...(await c.history()).map((e) => e.id));
  const leaderBefore = await c.key('leader');
  const startedAt = (pg: PgCluster['primary']) => pg.psql('SELECT pg_postmaster_start_time()');
  const before = [await startedAt(pgc.primary), await startedAt(pgc.standby)];
  for (const n of ['db-b', 'db-a']) {
    const askedAt = performance.now();
    const r = await c.pgvip('restart', n, '--yes', '--timeout', '30');
    assert.equal(r.code, 0, r.out);
    t.diagnostic(`pgvip restart ${n} on etcd: back in ${Math.round(performance.now() - askedAt)} ms (the CLI's run included)`);
    assert.match(r.out, new RegExp(`${n} is back as ${n === 'db-a' ? 'primary' : 'standby'} \\(term ${term}\\)`));
  }
  const after = [await startedAt(pgc.primary), await startedAt(pgc.standby)];
  assert.ok(after[0] !== before[0] && after[1] !== before[1], 'both servers restarted');
  assert.deepEqual(await c.key('leader'), leaderBefore, 'the same leader key, same term');
  assert.deepEqual(await c.key('term'), { term, primary: 'db-a' });
  await pgc.primary.psql('INSERT INTO writes DEFAULT VALUES');
  const restartFailovers = (await c.history()).filter((e) => e.id > restartsFrom && ['vote-granted', 'manual-failover', 'switchover', 'failure-detected'].includes(e.type));
  assert.deepEqual(restartFailovers, [], 'no failover around the restarts');

  // On etcd, a switchover moves the term to term + 1 (db-b primary): a term the witness never gave.
  await until('db-b ready for a switchover', async () => (await c.key('members/db-b'))?.promotionBlocker === null, 30_000);
  const sw = await c.pgvip('switchover', '--to', 'db-b', '--yes');
  assert.equal(sw.code, 0, sw.out);
  await until('db-b primary in term + 1', async () => (await c.code('db-b', '/primary')) === 200 && (await c.key('leader'))?.term === term + 1, 30_000);
  await until('db-a to rejoin as a standby of db-b', async () => (await c.code('db-a', '/replica')) === 200, 90_000);
  await until('the sync record to name db-a', async () => (await c.key('sync'))?.standby === 'db-a', 30_000);

  // --- etcd → witness, db-b primary ---------------------------------------------------------------
  done = await watch('db-a', pgc.standby);
  assert.equal((await c.pgvip('maintenance', 'on')).code, 0);
  const handed = await c.pgvip('etcd', 'hand-back');
  assert.equal(handed.code, 0, handed.out);
  // The witness first, with its vote and etcd's term; then the standby's agent, then the primary's.
  await c.startWitness('witness');
  const back = await c.view();
  assert.deepEqual([back.term, back.primary, back.maintenance], [term + 1, 'db-b', true], 'the witness carries on in etcd\'s term');
  await c.startAgent('db-a', 'witness');
  await until('db-a to stream again as a standby', async () => (await c.code('db-a', '/replica')) === 200, 30_000);
  await c.startAgent('db-b', 'witness');
  await until('db-b primary again, on the witness', async () => (await c.code('db-b', '/primary')) === 200, 30_000);
  const granted = await c.witnessGrants('db-b');
  await until('the witness to grant db-b\'s leases in etcd\'s term', async () => (await c.witnessGrants('db-b')) > granted + 2, 10_000);
  assert.equal((await c.pgvip('maintenance', 'off')).code, 0);
  await until('the witness to mark db-a eligible again', async () => (await c.view()).syncEligible === 'db-a', 30_000);
  await done('etcd → witness');
  const end = await c.view();
  assert.deepEqual([end.term, end.primary, end.maintenance], [term + 1, 'db-b', false]);
});

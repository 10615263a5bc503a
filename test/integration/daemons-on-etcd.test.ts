// Goal: the agent daemons run a cluster on etcd end to end (docs/design.md, Quorum on etcd), with real
// parts: a real three-member etcd on loopback (test/fixtures/etcd-cluster.ts), real PostgreSQL 15
// primary and standby (test/fixtures/pg-cluster.ts) and both agent daemons; only the VIP is the
// in-memory fake, and no witness daemon runs (on etcd it only observes). db-a reaches etcd through TCP
// relays the test can cut, to cut the primary from etcd but not from its standby.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfigText, type AgentConfig } from '@pgvip/shared';
import { FakeVipCloud, FakeVipPort } from '../../packages/agent/src/vip/fake.js';
import { startAgentDaemon, type AgentDaemon } from '../../packages/agent/src/daemon.js';
import { etcdKeyReader, etcdMissing, startEtcdCluster, type EtcdCluster } from '../fixtures/etcd-cluster.js';
import { startPgCluster, type PgCluster } from '../fixtures/pg-cluster.js';
import { freePort, until } from './helpers.js';

const skip = etcdMissing();

/** A TCP relay to one etcd member that the test can cut (every connection dropped, new ones refused). */
async function relay(t: TestContext, target: string): Promise<{ url: string; cut(on: boolean): void }> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = connect(Number(to.port), to.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut(on: boolean) {
      cut = on;
      if (on) for (const s of sockets) s.destroy();
    },
  };
}

async function startCluster(t: TestContext, etcd: EtcdCluster, pgc: PgCluster) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-etcd-daemons-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const relays = await Promise.all(etcd.endpoints.map((e) => relay(t, e)));
  const [pa, pb, pw] = [await freePort(), await freePort(), await freePort()];
  const node = (id: string, agentPort: number, pg: PgCluster['primary']) =>
    `    - id: ${id}\n      agent: { host: 127.0.0.1, port: ${agentPort} }\n` +
    `      postgres: { host: 127.0.0.1, port: ${pg.port}, user: postgres, dataDir: ${pg.dataDir} }\n`;
  const cluster = (endpoints: readonly string[]) =>
    `\n  name: orders\n  nodes:\n${node('db-a', pa, pgc.primary)}${node('db-b', pb, pgc.standby)}` +
    // The witness is named (it would observe); no witness daemon runs here.
    `  witness: { host: 127.0.0.1, port: ${pw} }\n  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: imds }\n` +
    `  auth: { disabled: true }\n  quorum:\n    backend: etcd\n    etcd: { endpoints: [${endpoints.join(', ')}] }\n`;
  const config = (self: string): AgentConfig => parseConfigText(
    `self: ${self}\nlisten: { host: 127.0.0.1 }\nstateDir: ${dir}/${self}\n` +
      `cluster:${cluster(self === 'db-a' ? relays.map((r) => r.url) : etcd.endpoints)}`,
    'agent',
    `${self}.yaml`,
  );
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  // PGVIP_TEST_DUMP=file keeps the daemons' log lines of a failed run.
  const dump = process.env.PGVIP_TEST_DUMP;
  if (dump !== undefined) t.after(() => writeFileSync(dump, lines.join('')));
  const cloud = new FakeVipCloud();
  const agents: Record<string, AgentDaemon | null> = {};
  const start = async (self: string) => {
    agents[self] = await startAgentDaemon(config(self), {
      logger: log.child({ daemon: self }),
      vip: new FakeVipPort(cloud, self),
      onFatal: (e) => assert.fail(e),
    });
  };
  const stop = async (self: string) => {
    const a = agents[self];
    agents[self] = null;
    await a?.close();
  };
  t.after(async () => {
    await stop('db-a');
    await stop('db-b');
  });
  await start('db-a');
  await start('db-b');
  const code = async (n: string, url: string) => {
    const a = agents[n];
    return a === null || a === undefined ? 0 : (await a.app.inject({ url })).statusCode;
  };
  const { client, key } = etcdKeyReader(t, etcd, 'orders');
  /** db-a's lease renewals so far at one grantor with one result (its /metrics). */
  const renewals = async (grantor: 'witness' | 'peer', result: 'granted' | 'refused' | 'failed') => {
    const body = (await agents['db-a']!.app.inject({ url: '/metrics' })).body;
    const re = new RegExp(`pgvip_agent_lease_renewals_total\\{[^}]*grantor="${grantor}"[^}]*result="${result}"[^}]*\\} (\\d+)`);
    return Number(re.exec(body)?.[1] ?? 'NaN');
  };
  const primary = (n: string) => code(n, '/primary');
  const replica = (n: string) => code(n, '/replica');
  return { agents, start, stop, cloud, lines, relays, client, key, primary, replica, renewals };
}

/** Writes one row on `node` and reads it back: the primary takes writes. */
async function write(node: PgCluster['primary'], i: number): Promise<void> {
  await node.psql(`INSERT INTO t VALUES (${i})`, 5000);
  assert.equal(await node.psql(`SELECT count(*) FROM t WHERE i = ${i}`), '1');
}

test('a cluster on etcd: bootstrap, restart, etcd lost, etcd leader killed, primary cut from etcd, failover, switchover', { skip, timeout: 420_000 }, async (t) => {
  const etcd = await startEtcdCluster(t);
  const pgc = await startPgCluster(t);
  const c = await startCluster(t, etcd, pgc);
  const { primary: pgA, standby: pgB } = pgc;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const neverPrimary = (n: string) => {
    // Polled while a fault lasts: a promotion anywhere would show here.
    const seen: number[] = [];
    const timer = setInterval(() => void c.primary(n).then((s) => seen.push(s)), 200);
    return () => {
      clearInterval(timer);
      return seen.filter((s) => s === 200).length;
    };
  };

  // Bootstrap: db-a (a running primary) wins term 1 in etcd, takes the VIP; db-b becomes the sync standby.
  await until('db-a to be primary with a lease', async () => (await c.primary('db-a')) === 200, 60_000);
  assert.deepEqual((await c.key('term'))?.value, { term: 1, primary: 'db-a' });
  assert.deepEqual((await c.key('leader'))?.value, { node: 'db-a', term: 1 });
  await until('the VIP on db-a', () => c.cloud.assignedTo === 'db-a');
  await until('the sync record to name db-b', async () => (await c.key('sync'))?.value.standby === 'db-b', 30_000);
  await until('both members\' status in etcd', async () => (await c.key('members/db-a'))?.value.role === 'primary' && (await c.key('members/db-b'))?.value.role === 'standby', 20_000);
  await pgA.psql('CREATE TABLE t (i int PRIMARY KEY)');
  await write(pgA, 1);

  // I6: a restarted primary agent finds its leader key and renews that very lease: no failover, same term.
  const leaseBefore = (await c.key('leader'))?.lease;
  await c.stop('db-a');
  await c.start('db-a');
  await until('db-a to be primary again after its restart', async () => (await c.primary('db-a')) === 200, 20_000);
  const after = await c.key('leader');
  assert.deepEqual({ value: after?.value, lease: after?.lease }, { value: { node: 'db-a', term: 1 }, lease: leaseBefore });
  await write(pgA, 2);

  // etcd's quorum lost (two of three members down) for longer than a lease: nobody promotes, and the
  // primary keeps writing on its standby's grants. Back, the same key is renewed again.
  let watchB = neverPrimary('db-b');
  await etcd.stop(1);
  await etcd.stop(2);
  await sleep(1_000);
  const [etcdGranted, peerGranted] = [await c.renewals('witness', 'granted'), await c.renewals('peer', 'granted')];
  await sleep(7_000);
  assert.equal(await c.primary('db-a'), 200, 'db-a still primary without etcd');
  await write(pgA, 3);
  // etcd granted nothing meanwhile, the standby every heartbeat (500 ms).
  assert.equal(await c.renewals('witness', 'granted'), etcdGranted, 'no renewal from etcd without its quorum');
  assert.ok(await c.renewals('peer', 'granted') >= peerGranted + 10, 'the standby kept granting');
  assert.equal(watchB(), 0, 'db-b never primary while etcd had no quorum');
  await etcd.start(1);
  await etcd.start(2);
  await until('the leader key, term 1, to be renewed again', async () => (await c.key('leader').catch(() => null))?.value.term === 1, 30_000);
  assert.equal((await c.key('term'))?.value.term, 1);

  // etcd's leader killed: the other two elect a new one, which keeps the leases; renewals through
  // etcd resume on the same key, and nobody promotes.
  watchB = neverPrimary('db-b');
  const leader = await etcd.leaderIndex();
  await etcd.stop(leader);
  const killedAt = performance.now();
  const grantedAtKill = await c.renewals('witness', 'granted');
  await until('a renewal through etcd after its leader was killed', async () => (await c.renewals('witness', 'granted')) > grantedAtKill + 1, 20_000);
  t.diagnostic(`etcd leader killed: renewals through etcd again after ${Math.round(performance.now() - killedAt)} ms`);
  assert.deepEqual((await c.key('leader'))?.value, { node: 'db-a', term: 1 });
  await etcd.start(leader);
  assert.equal(watchB(), 0, 'db-b never primary while etcd changed leader');

  // The primary cut from etcd but not from its standby: its key expires, the standby's checks see a
  // healthy primary and it does not campaign; reconnected, db-a takes the key again in term 1.
  watchB = neverPrimary('db-b');
  for (const r of c.relays) r.cut(true);
  await until('db-a\'s leader key to expire', async () => (await c.key('leader')) === null, 20_000);
  await sleep(4_000);
  assert.equal(await c.primary('db-a'), 200, 'db-a still primary, cut from etcd');
  await write(pgA, 4);
  for (const r of c.relays) r.cut(false);
  await until('db-a to take its key again in term 1', async () => {
    const k = await c.key('leader');
    return k?.value.node === 'db-a' && k.value.term === 1;
  }, 20_000);
  assert.equal(watchB(), 0, 'db-b never primary while db-a was cut from etcd');
  assert.deepEqual((await c.key('term'))?.value, { term: 1, primary: 'db-a' });

  // Failover: db-a's host freezes (its agent gone, its PostgreSQL stalled). Its key expires, db-b
  // wins term 2 in etcd, promotes and takes the VIP.
  await until('the sync record to name db-b', async () => (await c.key('sync'))?.value.standby === 'db-b', 30_000);
  await c.stop('db-a');
  pgA.freeze();
  t.after(() => pgA.thaw());
  const failedAt = performance.now();
  await until('db-b to be primary', async () => (await c.primary('db-b')) === 200, 30_000);
  const failoverMs = Math.round(performance.now() - failedAt);
  assert.deepEqual((await c.key('term'))?.value, { term: 2, primary: 'db-b' });
  assert.deepEqual((await c.key('leader'))?.value, { node: 'db-b', term: 2 });
  await until('the VIP on db-b', () => c.cloud.assignedTo === 'db-b');
  await write(pgB, 5);
  t.diagnostic(`failover on etcd, agent and PostgreSQL of the primary frozen: ${failoverMs} ms to a writable db-b`);

  // The old primary comes back: its agent learns term 2 from etcd, fences, and rejoins as a standby.
  pgA.thaw();
  await c.start('db-a');
  await until('db-a to rejoin as a standby of db-b', async () => (await c.replica('db-a')) === 200, 90_000);
  assert.equal(await pgA.psql('SELECT pg_is_in_recovery()'), 't');
  assert.equal(await c.primary('db-a'), 503);

  // Switchover through the switchover key: db-b takes it, hands term 3 over in etcd, db-a takes it.
  await until('the sync record to name db-a', async () => (await c.key('sync'))?.value.standby === 'db-a', 60_000);
  await until('db-a to be ready', async () => (await c.key('members/db-a'))?.value.promotionBlocker === null, 30_000);
  const askedAt = performance.now();
  await c.client.put('/pgvip/orders/switchover').value(JSON.stringify({ to: 'db-a', term: 2, requestedBy: 'test' }));
  await until('db-a to be primary after the switchover', async () => (await c.primary('db-a')) === 200, 30_000);
  t.diagnostic(`switchover through the etcd key: ${Math.round(performance.now() - askedAt)} ms from the key's write to a writable db-a`);
  assert.equal(await c.key('switchover'), null, 'the primary took the key');
  assert.deepEqual((await c.key('term'))?.value, { term: 3, primary: 'db-a' });
  await until('db-a\'s leader key in term 3', async () => (await c.key('leader'))?.value.term === 3);
  await until('the VIP back on db-a', () => c.cloud.assignedTo === 'db-a');
  await write(pgA, 6);
  await until('db-b to stream from db-a', async () => (await c.replica('db-b')) === 200, 60_000);
  assert.equal(await pgA.psql('SELECT count(*) FROM t'), '6', 'nothing acknowledged was lost');
});

// Goal: the load-balancer health endpoints (docs/api.md) give each state of a real cluster the status
// code docs/api.md promises, so HAProxy and NLB target groups send writes only to the node that takes
// them and reads only to standbys within the lag asked for. Real agent and witness daemons on
// loopback over a real PostgreSQL 15 primary and streaming standby; only the VIP is the in-memory
// fake. Given sync replication: the primary, the synchronous standby, the standby lagging past
// ?lag= (replay paused), the standby's PostgreSQL stopped, and the primary fenced when neither the
// witness nor the standby answers its renewals. Given async replication: the asynchronous standby, and
// a failover after the primary's PostgreSQL stopped, during which /primary is never 200 on both nodes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { lookUpOsUser, runAsOsUser } from '../../packages/agent/src/postgres/os-command.js';
import { pgBinDir, startPgCluster, type PgNode } from '../fixtures/pg-cluster.js';
import { startDaemons } from './daemons-on-pg.js';
import { until } from './helpers.js';

interface Answer {
  status: number;
  body: { node: string; role: string; term: number; lagBytes: number | null; sync: boolean | null; why: string | null };
}

async function startCluster(t: TestContext, mode: 'sync' | 'async') {
  const pgc = await startPgCluster(t);
  const d = await startDaemons(t, pgc, {
    name: `pgvip-lb-${mode}`, replication: `replication: { mode: ${mode}, slots: { enabled: false } }`,
  });
  const ask = async (node: string, url: string, method: 'GET' | 'HEAD' | 'OPTIONS' = 'GET'): Promise<Answer> => {
    const r = await d.agents[node]!.app.inject({ method, url });
    return { status: r.statusCode, body: method === 'GET' ? JSON.parse(r.body) as Answer['body'] : ({} as Answer['body']) };
  };
  /** The status of each path on `node`, as a map path → code. */
  const codes = async (node: string, paths: readonly string[]) =>
    Object.fromEntries(await Promise.all(paths.map(async (p) => [p, (await ask(node, p)).status] as const)));
  await until('db-a to be primary with a lease', async () => (await d.primaryCode('db-a')) === 200, 60_000);
  await pgc.primary.psql('CREATE TABLE filler (n int, pad text)');
  return { pgc, ...d, ask, codes };
}

const all = [
  '/', '/primary', '/read-write', '/replica', '/read-only', '/sync', '/async', '/read-only-sync', '/liveness', '/readiness',
] as const;
const expect = (ok: readonly string[]) =>
  Object.fromEntries(all.map((p) => [p, ok.includes(p) ? 200 : 503] as const));

async function pgCtl(node: PgNode, root: string, args: string[]) {
  const postgres = await lookUpOsUser('postgres');
  return runAsOsUser(postgres, path.join(pgBinDir, 'pg_ctl'), [...args, '-D', node.dataDir, '-w'], { timeoutMs: 60_000, cwd: root });
}

test('Given sync replication, the primary, the synchronous standby, a lagging standby, a stopped standby and a fenced primary each answer as docs/api.md says', { timeout: 240_000 }, async (t) => {
  const { pgc, agents, witness, ask, codes, syncEligible } = await startCluster(t, 'sync');
  await until('db-b to be the synchronous standby, as the witness and db-a see it', async () => (await syncEligible()) === 'db-b' && (await ask('db-b', '/sync')).status === 200, 30_000);

  // Then the primary takes writes and reads; the synchronous standby takes reads, and is /sync.
  assert.deepEqual(await codes('db-a', all), expect(['/', '/primary', '/read-write', '/read-only', '/read-only-sync', '/liveness', '/readiness']));
  assert.deepEqual(await codes('db-b', all), expect(['/replica', '/read-only', '/sync', '/read-only-sync', '/liveness', '/readiness']));
  assert.equal((await ask('db-b', '/replica?lag=16MB&replication_state=streaming')).status, 200);
  for (const m of ['HEAD', 'OPTIONS'] as const) {
    assert.equal((await ask('db-a', '/primary', m)).status, 200, m);
    assert.equal((await ask('db-b', '/primary', m)).status, 503, m);
  }
  const a = (await ask('db-a', '/primary')).body;
  assert.deepEqual([a.node, a.role, a.why], ['db-a', 'primary', null]);
  const b = (await ask('db-b', '/primary')).body;
  assert.match(b.why!, /db-b is standby; the primary of term \d+ is db-a/);

  // When db-b stops replaying (it still receives and flushes, so sync commits go on) and 2 MB are written,
  // Then it is no /replica?lag=64kB nor ready by replay, but still by receipt, and still a replica.
  await pgc.standby.psql('SELECT pg_wal_replay_pause()');
  await pgc.primary.psql("INSERT INTO filler SELECT n, repeat('x', 1000) FROM generate_series(1, 2000) n");
  const lagging = await until('db-b to lag past 64 kB', async () => {
    const r = await ask('db-b', '/replica?lag=64kB');
    return r.status === 503 ? r : undefined;
  });
  assert.match(lagging.body.why!, /^replay lag \d+ bytes is more than 65536$/);
  assert.ok(lagging.body.lagBytes! > 65536, `lag ${lagging.body.lagBytes}`);
  assert.equal((await ask('db-b', '/replica')).status, 200, 'no ?lag=: any running standby');
  assert.equal((await ask('db-b', '/replica?lag=1GB')).status, 200);
  assert.equal((await ask('db-b', '/sync?lag=64kB')).status, 503);
  assert.equal((await ask('db-b', '/async?lag=1GB')).status, 503, 'still the synchronous standby');
  assert.equal((await ask('db-b', '/readiness?lag=64kB')).status, 503);
  await until('db-b to have received it all', async () => (await ask('db-b', '/readiness?lag=64kB&mode=write')).status === 200);
  assert.equal((await ask('db-b', '/readiness')).status, 200, 'within replication.lagBytesMax (16 MB)');
  await pgc.standby.psql('SELECT pg_wal_replay_resume()');
  await until('db-b to catch up', async () => (await ask('db-b', '/replica?lag=64kB')).status === 200);

  // When db-b's PostgreSQL stops, Then it takes no traffic at all, while its agent is alive.
  assert.equal((await pgCtl(pgc.standby, pgc.root, ['stop', '-m', 'fast'])).exitCode, 0);
  const down = await until('db-b to see its PostgreSQL down', async () => {
    const r = await ask('db-b', '/replica');
    return r.status === 503 ? r : undefined;
  }, 10_000);
  assert.equal(down.body.why, 'postgresql is not running');
  const whileDown = await codes('db-b', all);
  assert.equal((await agents['db-b']!.app.inject({ url: '/health' })).statusCode, 200, 'the agent answers');
  assert.deepEqual(whileDown, expect(['/liveness']), 'the agent loop runs; PostgreSQL serves nothing');
  assert.equal((await ask('db-a', '/primary')).status, 200, 'the primary still holds its lease');
  await pgCtl(pgc.standby, pgc.root, ['start']);
  await until('db-b to be a replica again', async () => (await ask('db-b', '/replica?replication_state=streaming')).status === 200, 30_000);

  // When neither the witness nor db-b answers db-a's renewals, Then db-a stops being /primary as soon
  // as two renewals in a row are overdue, before its lease lapses and it fences; once fenced its
  // PostgreSQL refuses writes, and /primary says why.
  await witness.protocol.close();
  await agents['db-b']!.app.close();
  const seen: string[] = [];
  const fenced = await until('db-a to fence', async () => {
    const r = await ask('db-a', '/primary');
    if (r.status !== 200 && seen.at(-1) !== r.body.why) seen.push(`${r.body.role}: ${r.body.why}`);
    return r.body.role === 'fenced' ? r : undefined;
  }, 15_000);
  assert.equal(fenced.status, 503);
  // The lease ran out (role fenced at once), then the fence itself ran (its reason).
  assert.match(fenced.body.why!, /^(no valid lease for term \d+|fenced: lease for term \d+ lapsed)$/);
  assert.match(seen[0]!, /^primary: lease renewals overdue: \d+ ms of lease left/, seen.join('\n'));
  await until('db-a to refuse writes', async () =>
    pgc.primary.psql('INSERT INTO filler VALUES (1)').then(() => false, (e: Error) => /read-only/.test(e.message)));
  // The fence's effect reports done a moment after PostgreSQL turned read-only (or the commit guard
  // refused first, at the lease's end): /primary then gives the fence's reason.
  const fencedWhy = await until('db-a to report its fence', async () => {
    const why = (await ask('db-a', '/primary')).body.why!;
    return why.startsWith('fenced: ') ? why : undefined;
  }, 10_000);
  assert.match(fencedWhy, /^fenced: lease for term \d+ lapsed$/);
  for (const m of ['GET', 'HEAD', 'OPTIONS'] as const) {
    assert.equal((await ask('db-a', '/primary', m)).status, 503, m);
    assert.equal((await ask('db-a', '/read-write', m)).status, 503, m);
  }
  assert.deepEqual(await codes('db-a', all), expect(['/liveness']), 'a fenced primary takes no traffic');
  assert.equal((await agents['db-a']!.app.inject({ url: '/health' })).statusCode, 200);
});

test('Given async replication, the standby is /async, and in a failover /primary moves from db-a to db-b, never 200 on both', { timeout: 240_000 }, async (t) => {
  const { pgc, ask, codes, primaryCode, cloud, operatorUrl } = await startCluster(t, 'async');
  await until('db-b to stream', async () => (await ask('db-b', '/replica?replication_state=streaming')).status === 200, 30_000);
  await until('db-b to know its lag', async () => (await ask('db-b', '/async?lag=16MB')).status === 200);
  assert.deepEqual(await codes('db-b', all), expect(['/replica', '/read-only', '/async', '/liveness', '/readiness']));
  assert.deepEqual(await codes('db-a', all), expect(['/', '/primary', '/read-write', '/read-only', '/read-only-sync', '/liveness', '/readiness']));
  assert.equal((await ask('db-b', '/sync')).body.why, 'not the synchronous standby');
  await until('the witness to see db-b eligible', async () => {
    const view = (await (await fetch(`${operatorUrl}/api/v1/clusters/orders`)).json()) as { nodes: { node: string; promotionBlocker: string | null }[] };
    return view.nodes.find((n) => n.node === 'db-b')?.promotionBlocker === null;
  }, 30_000);

  // When db-a's PostgreSQL stops, Then db-b is promoted; a load balancer polling both sees one primary at most.
  let both = 0;
  let polls = 0;
  let stop = false;
  const poller = (async () => {
    while (!stop) {
      const [ca, cb] = await Promise.all([primaryCode('db-a'), primaryCode('db-b')]);
      polls++;
      if (ca === 200 && cb === 200) both++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  assert.equal((await pgCtl(pgc.primary, pgc.root, ['stop', '-m', 'immediate'])).exitCode, 0);
  await until('db-b to be /primary', async () => (await primaryCode('db-b')) === 200, 60_000);
  stop = true;
  await poller;
  assert.equal(both, 0, `${both} of ${polls} polls saw /primary 200 on both nodes`);
  await until('the VIP on db-b', () => cloud.assignedTo === 'db-b');
  const a = await ask('db-a', '/primary');
  assert.equal(a.status, 503);
  assert.ok(a.body.role !== 'primary', a.body.role);
});

// Goal: with two nodes, the synchronous standby named by setSynchronousStandby counts only once the
// setting is in force, on real PostgreSQL 15 (docs/design.md, "When a sync setting is in force").
// A commit waits for a standby only once the checkpointer has reloaded (it sets the shared flag
// sync_standbys_defined), while pg_stat_replication shows the standby 'sync' as soon as its own
// walsender has. The snapshot's catch-up (pg-snapshot.ts SyncCatchUp) reads its target the first
// time the standby looks synchronous: read before the checkpointer reloaded, commits acknowledged
// after it never waited for the standby, which would count as holding every acknowledged write.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

test('Given a stalled checkpointer, When the primary names its standby, Then the setting is not reported (nor the set done) until it is in force', async (t) => {
  const cluster = await startPgCluster(t);
  const a = cluster.primary;
  const pg = new LocalPostgres(a.agentConfig);
  t.after(() => pg.close());
  await a.psql('CREATE TABLE w (x int)');
  const checkpointer = Number(await a.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"));
  process.kill(checkpointer, 'SIGSTOP');
  const resume = (): void => {
    try {
      process.kill(checkpointer, 'SIGCONT');
    } catch {
      // gone
    }
  };
  t.after(resume);
  let done = false;
  const set = pg.setSynchronousStandby('db-b').finally(() => (done = true));
  set.catch(() => undefined);
  // The walsender has reloaded: PostgreSQL shows the standby synchronous.
  await waitUntil('db-b shown sync', 10_000, async () =>
    (await a.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'db-b'")) === 'sync');
  // Yet a commit does not wait for it: the standby, stopped, never gets this row, and it is acknowledged.
  cluster.standby.freeze();
  t.after(() => cluster.standby.thaw());
  await a.psql('INSERT INTO w VALUES (1)', 5_000);
  cluster.standby.thaw();
  const obs = await pg.observe();
  assert.ok(obs.reachable);
  assert.equal(obs.synchronousStandbyNames, '', 'not in force: the snapshot must not see db-b named yet');
  assert.equal(done, false, 'the set waits for the checkpointer');
  resume();
  await set;
  const after = await pg.observe();
  assert.ok(after.reachable);
  assert.equal(after.synchronousStandbyNames, '"db-b"');
  // Back to asynchronous needs no checkpointer: reported at once, as set.
  await pg.setSynchronousStandby(null);
  const async = await pg.observe();
  assert.ok(async.reachable);
  assert.equal(async.synchronousStandbyNames, '');
});

test('Given a standby whose walsender never applies the name, When the set fails, Then the old value is back in force and commits do not wait', async (t) => {
  // The lab's case (flap-loss): the walsender of db-b never takes its sync priority within the bound,
  // while the checkpointer has the name and makes every commit wait. observe() reports '' for an
  // unconfirmed name, so the core would never degrade it: the failed set must not leave it set.
  const cluster = await startPgCluster(t);
  const a = cluster.primary;
  const pg = new LocalPostgres({ ...a.agentConfig, timeouts: { syncSettingMs: 2_000 } });
  t.after(() => pg.close());
  await a.psql('CREATE TABLE w (x int)');
  const walsender = Number(await a.psql("SELECT pid FROM pg_stat_replication WHERE application_name = 'db-b'"));
  process.kill(walsender, 'SIGSTOP');
  const resume = (): void => {
    try {
      process.kill(walsender, 'SIGCONT');
    } catch {
      // gone
    }
  };
  t.after(resume);
  await assert.rejects(pg.setSynchronousStandby('db-b'), (err: Error) => {
    assert.match(err.message, /synchronous_standby_names = '' is back in force/);
    return true;
  });
  assert.equal(await a.psql('SHOW synchronous_standby_names'), '', 'the value before the set is back');
  // Nothing releases commits while the walsender is stopped: this one completes only if no commit waits.
  await a.psql('INSERT INTO w VALUES (1)', 5_000);
  const obs = await pg.observe();
  assert.ok(obs.reachable);
  assert.equal(obs.synchronousStandbyNames, '');
  // The core asks again once the standby answers: then the set is done and reported.
  resume();
  await pg.setSynchronousStandby('db-b');
  const named = await pg.observe();
  assert.ok(named.reachable);
  assert.equal(named.synchronousStandbyNames, '"db-b"');
});

/**
 * A replication connection that sends only its startup packet and then idles: on the server a
 * walsender in state 'startup' (ClientRead) named `applicationName`, as a standby end that vanished
 * after authenticating leaves behind (trust authentication in the fixture's pg_hba.conf).
 */
async function idleReplicationConnection(host: string, port: number, applicationName: string): Promise<Socket> {
  const params = ['user', 'postgres', 'database', 'replication', 'replication', 'true', 'application_name', applicationName];
  const body = Buffer.concat([...params.map((p) => Buffer.from(`${p}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.on('data', () => undefined); // AuthenticationOk, ParameterStatus…, ReadyForQuery: read and ignored
  socket.write(Buffer.concat([head, body]));
  return socket;
}

test('Given a stale walsender of the standby still in startup, When the primary names the standby, Then the set is in force without it and commits wait for the standby', async (t) => {
  // The lab's flap-loss run: three walsenders named db-b sat in 'startup' beside the streaming one
  // (their standby ends gone, the primary's TCP keepalive 2 h away); the set waited for each to show
  // sync_priority 1, which one in startup never does, failed after its bound and was rolled back.
  const cluster = await startPgCluster(t);
  const a = cluster.primary;
  const pg = new LocalPostgres({ ...a.agentConfig, timeouts: { syncSettingMs: 5_000 } });
  t.after(() => pg.close());
  await a.psql('CREATE TABLE w (x int)');
  const stale = await idleReplicationConnection(a.host, a.port, 'db-b');
  t.after(() => stale.destroy());
  const stalePid = async (): Promise<string> =>
    a.psql("SELECT pid FROM pg_stat_replication WHERE application_name = 'db-b' AND state = 'startup'");
  await waitUntil('a walsender of db-b in startup', 10_000, async () => (await stalePid()) !== '');
  const pid = await stalePid();
  await pg.setSynchronousStandby('db-b');
  const obs = await pg.observe();
  assert.ok(obs.reachable);
  assert.equal(obs.synchronousStandbyNames, '"db-b"');
  assert.equal(await stalePid(), pid, 'the stale walsender idled through the set');
  assert.equal(
    await a.psql(`SELECT sync_priority || '/' || sync_state FROM pg_stat_replication WHERE pid = ${pid}`),
    '0/async',
    'PostgreSQL does not count it: its priority is still 0',
  );
  // In force: a commit waits for db-b's flush. With db-b stopped it is not acknowledged…
  cluster.standby.freeze();
  t.after(() => cluster.standby.thaw());
  let acknowledged = false;
  const insert = a.psql('INSERT INTO w VALUES (1)', 20_000).then(() => (acknowledged = true));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal(acknowledged, false, 'a commit must wait for the synchronous standby');
  // …and is once db-b flushes it.
  cluster.standby.thaw();
  await insert;
  // Back to asynchronous with the stale walsender still there: not held up either.
  await pg.setSynchronousStandby(null);
  const after = await pg.observe();
  assert.ok(after.reachable);
  assert.equal(after.synchronousStandbyNames, '');
  // The N-node set shares the check (ANY k).
  const quorum = await pg.applySynchronousStandbyNames('ANY 1 ("db-b")');
  assert.equal(quorum.unchanged, false);
  assert.equal(await stalePid(), pid);
});

test('Given a standby with no synchronous standby named, When a promotion clears the setting, Then nothing is reloaded or waited for', async (t) => {
  const cluster = await startPgCluster(t);
  const b = cluster.standby;
  const pg = new LocalPostgres(b.agentConfig);
  t.after(() => pg.close());
  const loaded = await b.psql('SELECT pg_conf_load_time()');
  const report = await pg.applySynchronousStandbyNames('');
  assert.equal(report.unchanged, true, JSON.stringify(report));
  assert.equal(await b.psql('SELECT pg_conf_load_time()'), loaded, 'no reload');
  // A value to clear on a standby is cleared, as before.
  await b.psql("ALTER SYSTEM SET synchronous_standby_names = '\"db-a\"'");
  await b.psql('SELECT pg_reload_conf()');
  await waitUntil('db-a named on the standby', 5_000, async () => (await b.psql('SHOW synchronous_standby_names')) === '"db-a"');
  const cleared = await pg.applySynchronousStandbyNames('');
  assert.equal(cleared.unchanged, false);
  assert.equal(await b.psql('SHOW synchronous_standby_names'), '');
});

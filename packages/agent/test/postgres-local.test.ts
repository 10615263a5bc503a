// Goal: what only a real server can show — fencing cuts a writer mid-transaction, every probe and
// command stays within its bound when the server stalls, and a rejoin discards the old primary's
// diverged writes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { isPgvipError } from '@pgvip/shared';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster, type PgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

/** A client application's session, as clients of the VIP would hold one. */
async function appSession(node: PgNode): Promise<pg.Client> {
  const client = new pg.Client({ host: node.host, port: node.port, user: 'postgres', database: 'postgres' });
  client.on('error', () => undefined); // a terminated idle session reports here; the test looks at query results
  await client.connect();
  return client;
}

const slackMs = 400;

describe('Given a real primary with a streaming standby', () => {
  let cluster: PgCluster;
  let primary: LocalPostgres;
  before(async () => {
    cluster = await startPgCluster(undefined);
    primary = new LocalPostgres(cluster.primary.agentConfig);
    await primary.ensureSchema();
    await cluster.primary.psql('CREATE TABLE app_writes (id int)');
  });
  after(async () => {
    // Optional: before() may have failed before the cluster existed.
    cluster?.primary.thaw();
    await cluster?.cleanup();
  });

  test('When the primary is fenced read-only, Then an open writer is cut before it commits and new writes are refused until unfence', async () => {
    const writer = await appSession(cluster.primary);
    await writer.query('BEGIN');
    await writer.query('INSERT INTO app_writes VALUES (1)');

    const fenced = await primary.fence('read-only');
    assert.ok(fenced.terminatedBackends >= 1, JSON.stringify(fenced));
    await assert.rejects(writer.query('COMMIT'), 'the open transaction must not commit');

    const newcomer = await appSession(cluster.primary);
    await assert.rejects(newcomer.query('INSERT INTO app_writes VALUES (2)'), (err: unknown) => (err as { code?: string }).code === '25006');
    assert.equal(await cluster.primary.psql('SELECT count(*) FROM app_writes'), '0');

    await primary.unfence();
    await newcomer.query('INSERT INTO app_writes VALUES (3)'); // the same session writes again after the reload
    await newcomer.end();
    await writer.end().catch(() => undefined);
    assert.equal(await cluster.primary.psql('SELECT count(*) FROM app_writes'), '1');
  });

  test('When a write waits on a lock, Then the write probe reports a timeout within its bound (server-side statement_timeout)', async () => {
    const holder = await appSession(cluster.primary);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE pgvip.heartbeat IN EXCLUSIVE MODE');
    try {
      const probe = await primary.writeProbe(600);
      assert.equal(probe.outcome, 'timeout', JSON.stringify(probe));
      assert.ok(probe.durationMs <= 600 + slackMs, `took ${probe.durationMs} ms`);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    assert.equal((await primary.writeProbe(2_000)).outcome, 'ok');
  });

  test('When the whole server is frozen (SIGSTOP), Then probes report a timeout within their bound and fencing fails fast with its code', async () => {
    cluster.primary.freeze();
    try {
      const probe = await primary.writeProbe(500);
      assert.equal(probe.outcome, 'timeout', JSON.stringify(probe));
      assert.ok(probe.durationMs <= 500 + slackMs, `write probe took ${probe.durationMs} ms`);

      let startedAt = performance.now();
      const observed = await primary.observe();
      assert.ok(!observed.reachable && observed.errorCode === 'PGVIP_PG_TIMEOUT', JSON.stringify(observed));
      const connectMs = primary.config.timeouts.connectMs;
      assert.ok(performance.now() - startedAt <= connectMs + slackMs, 'observe must give up after the connect timeout');

      startedAt = performance.now();
      await assert.rejects(primary.fence('read-only'), (err: unknown) => isPgvipError(err, 'PGVIP_PG_FENCE_FAILED'));
      assert.ok(performance.now() - startedAt <= connectMs + slackMs, 'fence must give up after the connect timeout');
      assert.equal(await primary.isRunning(), true, 'a frozen server still runs');
    } finally {
      cluster.primary.thaw();
    }
    assert.equal((await primary.writeProbe(2_000)).outcome, 'ok', 'the probe recovers once the server runs again');
  });

  test('When the server freezes while a probe waits inside a transaction, Then the client-side deadline ends the probe on time', async () => {
    const holder = await appSession(cluster.primary);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE pgvip.heartbeat IN EXCLUSIVE MODE');
    const probe = primary.writeProbe(800);
    // The probe is connected and blocked on the lock; frozen, its backend can no longer cancel itself.
    await new Promise((resolve) => setTimeout(resolve, 200));
    cluster.primary.freeze();
    try {
      const result = await probe;
      assert.equal(result.outcome, 'timeout', JSON.stringify(result));
      assert.ok(result.durationMs <= 800 + slackMs, `took ${result.durationMs} ms`);
    } finally {
      cluster.primary.thaw();
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });
});

test('Given a synchronous standby that is gone, When write probes time out, Then no backend is left waiting for it', async (t) => {
  const cluster = await startPgCluster(t, { synchronous: true });
  const primary = new LocalPostgres(cluster.primary.agentConfig);
  await primary.ensureSchema();
  await new LocalPostgres(cluster.standby.agentConfig).stop('immediate');
  for (let i = 0; i < 3; i++) {
    const probe = await primary.writeProbe(500);
    assert.ok(probe.outcome === 'timeout' && /synchronous standby/.test(probe.detail), JSON.stringify(probe));
  }
  // PostgreSQL does not apply statement_timeout to the commit itself: only the probe's cancel request
  // ends the wait, and without it each probe would leave a backend behind until the standby returns.
  // (The effects' spare session waits idle beside them: connected ahead, it never waited for a commit.)
  await waitUntil('the probes\' backends to exit', 2_000, async () =>
    (await cluster.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgvip-agent' AND state <> 'idle'")) === '0',
  );
});

test('Given db-b promoted while db-a kept writing, When db-a rejoins, Then its diverged rows are gone and it replicates db-b\'s rows', async (t) => {
  const cluster = await startPgCluster(t);
  const a = new LocalPostgres(cluster.primary.agentConfig);
  const b = new LocalPostgres(cluster.standby.agentConfig);
  await cluster.primary.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('before')");
  await waitUntil('db-b to have the row', 15_000, async () => (await cluster.standby.psql('SELECT count(*) FROM t')) === '1');

  await b.stopWalReceiverAndReadFinalLsn();
  await b.promote(30);
  await cluster.primary.psql("INSERT INTO t VALUES ('only-on-a')");
  await cluster.standby.psql("INSERT INTO t VALUES ('only-on-b')");

  const rejoined = await a.rejoinAsStandby({ primary: cluster.standby.endpoint });
  assert.equal(rejoined.path, 'rewind', rejoined.rewindFailure ?? '');
  await waitUntil("db-a to show db-b's rows only", 15_000, async () => (await cluster.primary.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t")) === 'before,only-on-b');
  await cluster.standby.psql("INSERT INTO t VALUES ('after')");
  await waitUntil('db-a to replicate a new row', 15_000, async () => (await cluster.primary.psql('SELECT count(*) FROM t')) === '3');
});

// Goal: pgvip_commit_guard, loaded into a real PostgreSQL 15, refuses every commit that writes once
// the lease deadline the agent set has passed — including a transaction that began before it and a
// server that was stopped (SIGSTOP, as a frozen host) across it — while reads and replication go on,
// and re-arming allows writes again; and the agent can still fence, unfence and re-arm past it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { LocalPostgres } from '@pgvip/agent';
import { commitGuardInstalled, startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const skip = process.getuid?.() !== 0 ? 'needs root (real PostgreSQL as the postgres user)' : !commitGuardInstalled() ? 'pgvip_commit_guard is not installed (npm test builds it as root)' : false;

async function client(node: PgNode): Promise<pg.Client> {
  const c = new pg.Client({ ...node.endpoint, options: '-c lc_messages=C' });
  // The cluster may be torn down before the client ends.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const refusal = /pgvip commit guard: cannot (commit a transaction that wrote|start a write)/;

async function refused(work: Promise<unknown>): Promise<pg.DatabaseError> {
  const err = await work.then(
    () => assert.fail('the write was accepted after the lease deadline'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof pg.DatabaseError, `a server error, got ${String(err)}`);
  assert.match(err.message, refusal);
  assert.equal(err.code, '25006', 'SQLSTATE read_only_sql_transaction, as a fenced server answers');
  return err;
}

test('Given a primary with the commit guard armed 200 ms ahead, When the deadline passes, Then no write commits, reads and replication go on, and re-arming allows writes again', { skip }, async (t) => {
  const cluster = await startPgCluster(t, { commitGuard: true });
  const { primary, standby } = cluster;
  await primary.psql('CREATE TABLE t (id serial PRIMARY KEY, v int NOT NULL); INSERT INTO t (v) VALUES (0)');

  // Never armed: no guard (a server pgvip has not taken over yet).
  assert.equal(await primary.psql('SELECT loaded, armed, active FROM pgvip_guard_status()'), 't|f|f');
  await primary.psql('INSERT INTO t (v) VALUES (1)');

  await primary.psql('SELECT pgvip_guard_set_deadline(200)');
  assert.equal(await primary.psql('SELECT armed, active, expired FROM pgvip_guard_status()'), 't|t|f');
  const c = await client(primary);
  t.after(() => c.end());
  await c.query('INSERT INTO t (v) VALUES (2)');
  // A transaction that wrote before the deadline and commits after it.
  await c.query('BEGIN');
  await c.query('UPDATE t SET v = v + 100 WHERE v = 2');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await primary.psql('SELECT expired FROM pgvip_guard_status()'), 't');
  const late = await refused(c.query('COMMIT'));
  assert.match(late.message, /lease ended [\d.]+ ms ago/);
  // New writes of every kind.
  await refused(c.query('INSERT INTO t (v) VALUES (3)'));
  await refused(c.query('UPDATE t SET v = 4'));
  await refused(c.query('DELETE FROM t'));
  await refused(c.query('WITH x AS (INSERT INTO t (v) VALUES (5) RETURNING 1) SELECT * FROM x'));
  await refused(c.query('CREATE TABLE u (x int)'));
  // Explicit read-write mode does not help (the read-only fence's bypass, closed here too).
  await c.query('BEGIN READ WRITE');
  await refused(c.query('INSERT INTO t (v) VALUES (6)'));
  await c.query('ROLLBACK');
  // Reads work, on the primary and on the standby; a read-only transaction commits; a plain EXPLAIN
  // of a write runs nothing and is answered.
  assert.ok((await c.query('EXPLAIN INSERT INTO t (v) VALUES (3)')).rows.length > 0);
  assert.equal((await c.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows[0]?.n, '3');
  await c.query('BEGIN; SELECT 1; COMMIT');
  assert.equal(await standby.psql('SELECT count(*) FROM t'), '3');
  assert.equal(await standby.psql('SELECT in_recovery, active FROM pgvip_guard_status()'), 't|f', 'a standby ignores the guard');
  assert.ok(Number(await primary.psql('SELECT refused_commits FROM pgvip_guard_status()')) >= 7);

  // Replication goes on: the walsender streams, and WAL the server writes itself (a checkpoint) reaches the standby.
  await primary.psql('CHECKPOINT');
  const lsn = await primary.psql('SELECT pg_current_wal_lsn()');
  await waitUntil('the standby to replay the primary\'s latest WAL', 10_000, async () => (await standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
  assert.equal(await primary.psql("SELECT state FROM pg_stat_replication WHERE application_name = 'db-b'"), 'streaming');

  // Re-armed: writes commit again, and they replicate.
  await primary.psql('SELECT pgvip_guard_set_deadline(5000)');
  await c.query('INSERT INTO t (v) VALUES (7)');
  await waitUntil('the standby to see the new row', 10_000, async () => (await standby.psql('SELECT count(*) FROM t WHERE v = 7')) === '1');
  // Disarmed: back to no guard at all.
  await primary.psql('SELECT pgvip_guard_set_deadline(0)');
  await refused(c.query('INSERT INTO t (v) VALUES (8)'));
  await primary.psql('SELECT pgvip_guard_disarm()');
  await c.query('INSERT INTO t (v) VALUES (8)');

  // Past the deadline the agent still does its work (none of it has a transaction id): it fences,
  // unfences and re-arms, and the server writes again.
  await primary.psql('SELECT pgvip_guard_set_deadline(0)');
  const agent = new LocalPostgres(primary.agentConfig);
  t.after(() => agent.close());
  assert.equal((await agent.fence('read-only')).mode, 'read-only');
  await agent.unfence();
  assert.equal(await agent.armCommitGuard(performance.now() + 5_000), true);
  await primary.psql('INSERT INTO t (v) VALUES (9)');
});

test('Given an armed primary that is stopped (SIGSTOP, as a frozen host) across its deadline, When it runs again, Then the write a client sent meanwhile is refused before the agent could act', { skip }, async (t) => {
  const cluster = await startPgCluster(t, { commitGuard: true });
  const { primary } = cluster;
  await primary.psql('CREATE TABLE t (v int)');
  const c = await client(primary);
  t.after(() => c.end());
  await c.query('SET synchronous_commit = local');
  await primary.psql('SELECT pgvip_guard_set_deadline(300)');
  primary.freeze();
  let write: Promise<unknown>;
  try {
    // Sent while the server is stopped: it waits in the socket, as a client's write waits on a frozen host.
    write = c.query('INSERT INTO t VALUES (1)');
    await new Promise((r) => setTimeout(r, 600));
  } finally {
    primary.thaw();
  }
  await refused(write);
  assert.equal(await primary.psql('SELECT count(*) FROM t'), '0');
});

test('Given the guard functions, When a role that is not a superuser calls them, Then it may read the status but not move the deadline', { skip }, async (t) => {
  const cluster = await startPgCluster(t, { commitGuard: true });
  const { primary } = cluster;
  await primary.psql('CREATE ROLE app LOGIN');
  const c = new pg.Client({ ...primary.endpoint, user: 'app' });
  c.on('error', () => undefined);
  await c.connect();
  t.after(() => c.end());
  assert.equal((await c.query<{ loaded: boolean }>('SELECT loaded FROM pgvip_guard_status()')).rows[0]?.loaded, true);
  for (const sql of ['SELECT pgvip_guard_set_deadline(60000)', 'SELECT pgvip_guard_set_deadline_at(1)', 'SELECT pgvip_guard_disarm()']) {
    await assert.rejects(c.query(sql), /permission denied for function/);
  }
  // A deadline on another clock (wall-clock microseconds) is refused, naming the clock to use.
  await assert.rejects(primary.psql(`SELECT pgvip_guard_set_deadline_at(${Date.now() * 1000})`), /ahead of this host's CLOCK_MONOTONIC/);
});

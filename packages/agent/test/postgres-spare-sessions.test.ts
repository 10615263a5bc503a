// Goal: the effects' sessions (SpareSessions) are connected ahead of the call that uses them, and
// nothing else changes: every call gets a backend no call used before, with the call's own
// statement_timeout; a spare the server dropped while it waited costs no failed call; a call whose
// work failed is not run again; closing ends the spare — against a real server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { SpareSessions } from '../src/postgres/sql-session.js';
import { startPgCluster, type PgCluster } from '../../../test/fixtures/pg-cluster.js';

const bounds = { timeoutMs: 2_000, connectTimeoutMs: 1_000 };

interface Seen {
  readonly pid: number;
  /** How long before the call the backend was started (> 0: connected ahead). */
  readonly startedAheadMs: number;
  readonly statementTimeout: string;
}

describe('Given a real PostgreSQL server and the effects\' spare sessions to it', () => {
  let cluster: PgCluster;
  let sessions: SpareSessions;
  const call = async (s: SpareSessions = sessions, timeoutMs = bounds.timeoutMs): Promise<Seen> => {
    const calledAt = Date.now();
    return s.run({ ...bounds, timeoutMs }, async (q) => {
      const [row] = await q.query<{ pid: number; started: string; timeout: string }>(
        `SELECT pg_backend_pid() AS pid, (extract(epoch FROM backend_start) * 1000)::float8 AS started,
                current_setting('statement_timeout') AS timeout
           FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
      );
      return { pid: Number(row!.pid), startedAheadMs: calledAt - Number(row!.started), statementTimeout: row!.timeout };
    });
  };
  const spareReady = () => new Promise((resolve) => setTimeout(resolve, 300));
  const agentSessions = async (): Promise<number> =>
    Number(await cluster.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgvip-agent'"));

  before(async () => {
    cluster = await startPgCluster(undefined);
    sessions = new SpareSessions(cluster.primary.endpoint, 1_000);
  });
  after(async () => {
    sessions?.close();
    await cluster?.cleanup();
  });

  test('Then after the first call each call runs on a backend connected before it, used by no call before', async () => {
    const first = await call();
    assert.ok(first.startedAheadMs <= 0, 'the first call connects its own');
    const seen = new Set([first.pid]);
    for (let i = 0; i < 3; i++) {
      await spareReady();
      const next = await call();
      assert.ok(next.startedAheadMs > 100, `connected ${next.startedAheadMs} ms ahead of the call`);
      assert.ok(!seen.has(next.pid), 'a backend no call used before');
      seen.add(next.pid);
    }
    const deadline = performance.now() + 5_000;
    while ((await agentSessions()) !== 1) {
      assert.ok(performance.now() < deadline, `${await agentSessions()} agent sessions: one spare should wait, the used ones be gone`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  test('Then the call\'s own statement_timeout is in force, not the spare\'s', async () => {
    await call();
    await spareReady();
    const seen = await call(sessions, 1_234);
    assert.ok(seen.startedAheadMs > 0);
    assert.equal(seen.statementTimeout, '1234ms');
  });

  test('When the spare\'s backend is terminated while it waits, Then the call succeeds on a fresh one', async () => {
    await call();
    await spareReady();
    const spare = Number(await cluster.primary.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgvip-agent'"));
    assert.equal(await cluster.primary.psql(`SELECT pg_terminate_backend(${spare})`), 't');
    const seen = await call();
    assert.notEqual(seen.pid, spare);
  });

  test('When a call\'s work fails, Then it is not run again and the next call still works', async () => {
    await call();
    await spareReady();
    let runs = 0;
    await assert.rejects(
      sessions.run(bounds, async (q) => {
        runs++;
        await q.query('SELECT pg_terminate_backend(pg_backend_pid())');
      }),
      (err) => isPgvipError(err),
    );
    assert.equal(runs, 1);
    assert.ok((await call()).pid > 0);
  });

  test('When closed, Then the spare goes and later calls each get a fresh session', async () => {
    const own = new SpareSessions(cluster.primary.endpoint, 1_000);
    await call(own);
    await spareReady();
    const before = await agentSessions();
    own.close();
    const deadline = performance.now() + 5_000;
    while ((await agentSessions()) >= before) {
      assert.ok(performance.now() < deadline, 'the spare is still there');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const later = await call(own);
    assert.ok(later.startedAheadMs <= 0);
  });
});

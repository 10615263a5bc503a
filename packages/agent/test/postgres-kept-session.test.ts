// Goal: the heartbeat's kept connection (KeptSession) is reused only while it is sound — a backend
// killed or a server restarted while it sat idle costs no failed call, a failed or timed-out call
// never hands its connection to the next, a concurrent call does not queue — against a real server.
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { LocalPostgres } from '@pgvip/agent';
import { KeptSession } from '../src/postgres/sql-session.js';
import { startPgCluster, type PgCluster } from '../../../test/fixtures/pg-cluster.js';

const bounds = { timeoutMs: 2_000, connectTimeoutMs: 1_000 };

describe('Given a real PostgreSQL server and a kept session to it', () => {
  let cluster: PgCluster;
  let kept: KeptSession;
  const backendPid = async (session: KeptSession = kept): Promise<number> =>
    session.run(bounds, async (s) => Number((await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid));
  const agentSessions = async (): Promise<number> =>
    Number(await cluster.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgvip-agent'"));

  before(async () => {
    cluster = await startPgCluster(undefined);
    kept = new KeptSession(cluster.primary.endpoint, 3_000);
  });
  after(async () => {
    kept?.close();
    cluster?.primary.thaw();
    await cluster?.cleanup();
  });

  test('Then calls share one backend', async () => {
    const first = await backendPid();
    assert.equal(await backendPid(), first);
    assert.equal(await backendPid(), first);
    assert.equal(await agentSessions(), 1);
  });

  test('When its backend is terminated while idle, Then the next call succeeds on a new backend', async () => {
    const before = await backendPid();
    assert.equal(await cluster.primary.psql(`SELECT pg_terminate_backend(${before})`), 't');
    const afterwards = await backendPid();
    assert.notEqual(afterwards, before);
    assert.equal(await backendPid(), afterwards, 'and keeps the new one');
  });

  test('When its connection died unnoticed, Then the call runs again on a fresh connection and succeeds', async () => {
    // A proxy that can drop a connection silently: the client learns of it only when it next writes.
    const proxy = await startSilentDropProxy(cluster.primary.port);
    const session = new KeptSession({ ...cluster.primary.endpoint, host: '127.0.0.1', port: proxy.port }, 3_000);
    try {
      const first = await backendPid(session);
      proxy.dropSilently();
      const second = await backendPid(session);
      assert.notEqual(second, first);
      assert.equal(proxy.connections, 2, 'one retry, on a new connection');
      assert.equal(await backendPid(session), second);
    } finally {
      session.close();
      await proxy.close();
    }
  });

  test('When a call fails inside a transaction, Then the next call does not inherit the aborted transaction', async () => {
    const before = await backendPid();
    await assert.rejects(
      kept.run(bounds, (s) => s.query('BEGIN; SELECT 1/0; COMMIT;')),
      (e: unknown) => isPgvipError(e) && e.code === 'PGVIP_PG_QUERY_FAILED',
    );
    const afterwards = await backendPid();
    assert.notEqual(afterwards, before, 'the failed connection was not reused');
    assert.equal(await kept.run(bounds, async (s) => (await s.query<{ ok: number }>('SELECT 1 AS ok'))[0]!.ok), 1);
  });

  test('When a call outlives its deadline, Then it times out and the next call runs on a new backend', async () => {
    const before = await backendPid();
    await assert.rejects(
      kept.run({ timeoutMs: 300, connectTimeoutMs: 300 }, (s) => s.query('SELECT pg_sleep(5)')),
      (e: unknown) => isPgvipError(e) && e.code === 'PGVIP_PG_TIMEOUT',
    );
    assert.notEqual(await backendPid(), before);
  });

  test('When two calls overlap, Then the second gets a session of its own instead of waiting', async () => {
    const keptPid = await backendPid();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = kept.run(bounds, async (s) => {
      const pid = Number((await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid);
      await gate;
      return pid;
    });
    const concurrent = await backendPid();
    release();
    assert.equal(await slow, keptPid);
    assert.notEqual(concurrent, keptPid);
    assert.equal(await backendPid(), keptPid, 'the kept connection is still the one reused');
  });

  test('When the server restarts between calls, Then the next call succeeds; while it is down, calls fail as unreachable', async () => {
    const server = new LocalPostgres(cluster.primary.agentConfig);
    const before = await backendPid();
    await server.stop('fast');
    await assert.rejects(backendPid(), (e: unknown) => isPgvipError(e) && e.code === 'PGVIP_PG_UNREACHABLE');
    await server.start();
    assert.notEqual(await backendPid(), before);
  });

  test('When the server is frozen, Then a call on the kept connection is cut at its deadline', async () => {
    await backendPid();
    cluster.primary.freeze();
    try {
      const started = performance.now();
      await assert.rejects(kept.run({ timeoutMs: 500, connectTimeoutMs: 500 }, (s) => s.query('SELECT 1')), (e: unknown) => isPgvipError(e) && e.code === 'PGVIP_PG_TIMEOUT');
      assert.ok(performance.now() - started < 5_000);
    } finally {
      cluster.primary.thaw();
    }
    assert.equal(typeof (await backendPid()), 'number');
  });

  test('When closed, Then its backend goes away and later calls still work, each on a session of its own', async () => {
    const session = new KeptSession(cluster.primary.endpoint, 3_000);
    const pid = await backendPid(session);
    session.close();
    await waitForBackendGone(cluster, pid);
    const later = await backendPid(session);
    assert.notEqual(later, pid);
    await waitForBackendGone(cluster, later);
  });
});

async function waitForBackendGone(cluster: PgCluster, pid: number): Promise<void> {
  const deadline = performance.now() + 5_000;
  while ((await cluster.primary.psql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) !== '0') {
    assert.ok(performance.now() < deadline, `backend ${pid} still there`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A TCP proxy to PostgreSQL whose dropSilently() makes the open connections fail on their next write. */
async function startSilentDropProxy(targetPort: number): Promise<{
  port: number;
  connections: number;
  dropSilently(): void;
  close(): Promise<void>;
}> {
  const live = new Set<Socket>();
  const doomed = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    live.add(client);
    client.on('data', (chunk) => {
      if (doomed.has(client)) {
        client.destroy();
        upstream.destroy();
      } else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!doomed.has(client)) client.write(chunk);
    });
    const end = (): void => {
      live.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    dropSilently: () => live.forEach((s) => doomed.add(s)),
    close: () =>
      new Promise<void>((resolve) => {
        live.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}

// Goal: while fenced, a real PostgreSQL 15 primary takes no client write by any path — not from a
// session open before the fence, not from a new one, not from one still logging in — whatever the
// client does to leave read-only mode; replication and the agent's own session go on, and unfence
// (or a restart by anyone, or a restarted agent) leaves the node in the state it should be in.
import assert from 'node:assert/strict';
import { chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

/**
 * The ways a client leaves read-only mode, each followed by an INSERT; the last is a plain INSERT.
 * One statement per round trip, as drivers send them (in one query string the implicit transaction
 * would already have started read-only).
 */
const bypasses: ReadonlyArray<{ name: string; sql: (id: number) => string[] }> = [
  { name: 'SET default_transaction_read_only = off', sql: (id) => ['SET default_transaction_read_only = off', `INSERT INTO app_writes VALUES (${id})`] },
  { name: 'BEGIN READ WRITE', sql: (id) => ['BEGIN READ WRITE', `INSERT INTO app_writes VALUES (${id})`, 'COMMIT'] },
  { name: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', sql: (id) => ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', `INSERT INTO app_writes VALUES (${id})`] },
  { name: 'plain INSERT', sql: (id) => [`INSERT INTO app_writes VALUES (${id})`] },
];

async function runAll(client: pg.Client, statements: readonly string[]): Promise<void> {
  for (const sql of statements) await client.query(sql);
}

/** An application's session; `admin` is a superuser that is not the agent's role. */
async function clientSession(node: PgNode, user: 'app' | 'admin'): Promise<pg.Client> {
  const client = new pg.Client({ host: node.host, port: node.port, user, database: 'postgres' });
  client.on('error', () => undefined); // a terminated idle session reports here; the test looks at query results
  await client.connect();
  return client;
}

/** What became of a client's attempt: its SQLSTATE or message when it failed. */
async function attempt(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'written';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

/**
 * A client whose TCP connection reached the server before the fence but that logs in after it: the
 * server process checks pg_hba.conf with the rules of the moment it was forked. Speaks just enough
 * of the protocol (trust authentication, one simple query).
 */
class LateLogin {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static open(node: PgNode): Promise<LateLogin> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: node.host, port: node.port });
      socket.once('connect', () => resolve(new LateLogin(socket)));
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Messages until one of type `until` (or an error, or the end): returns the type that ended it. */
  async #readUntil(until: string): Promise<string> {
    for (;;) {
      while (this.#buffer.length >= 5) {
        const type = String.fromCharCode(this.#buffer[0] ?? 0);
        const length = this.#buffer.readInt32BE(1);
        if (this.#buffer.length < 1 + length) break;
        const body = this.#buffer.subarray(5, 1 + length);
        this.#buffer = this.#buffer.subarray(1 + length);
        if (type === 'E') return `E:${fieldOf(body, 'C')}`;
        if (type === until) return type;
      }
      if (this.#closed) return 'closed';
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Logs in as `user` and runs each statement: 'written' when the server answered all without an error. */
  async loginAndRun(user: string, statements: readonly string[]): Promise<string> {
    const params = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + params.length, 0);
    startup.writeInt32BE(196608, 4); // protocol 3.0
    this.#socket.write(Buffer.concat([startup, params]));
    const login = await this.#readUntil('Z');
    if (login !== 'Z') return login;
    for (const sql of statements) {
      const text = Buffer.from(`${sql}\0`);
      const header = Buffer.alloc(5);
      header.write('Q', 0);
      header.writeInt32BE(4 + text.length, 1);
      this.#socket.write(Buffer.concat([header, text]));
      const ran = await this.#readUntil('Z');
      if (ran !== 'Z') return ran;
    }
    return 'written';
  }

  close(): void {
    this.#socket.destroy();
  }
}

function fieldOf(errorBody: Buffer, code: string): string {
  for (const field of errorBody.toString('utf8').split('\0')) if (field.startsWith(code)) return field.slice(1);
  return '?';
}

async function setUpApp(node: PgNode): Promise<void> {
  await node.psql(
    'CREATE ROLE app LOGIN; CREATE ROLE admin LOGIN SUPERUSER; CREATE TABLE app_writes (id int); GRANT SELECT, INSERT ON app_writes TO app',
  );
}

test('Given a fenced primary, When clients try every way out of read-only, Then no row is written, replication goes on, and unfence lets writes in again', async (t) => {
  const cluster = await startPgCluster(t);
  const { primary: node, standby } = cluster;
  await setUpApp(node);
  const agent = new LocalPostgres(node.agentConfig);
  t.after(() => agent.close());

  // Sessions opened before the fence: one idle per path and user, one inside a write transaction.
  const before = await Promise.all(bypasses.flatMap(() => [clientSession(node, 'app'), clientSession(node, 'admin')]));
  const midTransaction = await clientSession(node, 'app');
  await midTransaction.query('BEGIN');
  await midTransaction.query('INSERT INTO app_writes VALUES (0)');
  const late = await LateLogin.open(node);

  const startedAt = performance.now();
  const fenced = await agent.fence('read-only');
  t.diagnostic(`fence(read-only) took ${(performance.now() - startedAt).toFixed(1)} ms, ended ${fenced.terminatedBackends} sessions`);

  const outcomes: string[] = [];
  outcomes.push(`open transaction COMMIT: ${await attempt(() => midTransaction.query('COMMIT'))}`);
  outcomes.push(`login begun before the fence: ${await late.loginAndRun('app', bypasses[2]?.sql(100) ?? [])}`);
  let id = 1;
  for (const [i, bypass] of bypasses.entries()) {
    for (const [j, user] of (['app', 'admin'] as const).entries()) {
      const open = before[2 * i + j];
      assert.ok(open);
      outcomes.push(`${user}, open session, ${bypass.name}: ${await attempt(() => runAll(open, bypass.sql(id++)))}`);
      outcomes.push(
        `${user}, new session, ${bypass.name}: ${await attempt(async () => {
          const fresh = await clientSession(node, user);
          try {
            await runAll(fresh, bypass.sql(id++));
          } finally {
            await fresh.end().catch(() => undefined);
          }
        })}`,
      );
    }
  }
  late.close();
  t.diagnostic(outcomes.join('\n'));
  assert.deepEqual(outcomes.filter((o) => o.endsWith(': written')), [], 'no client write may get through');
  // New sessions are refused by pg_hba.conf (28000), open ones were terminated.
  assert.ok(outcomes.filter((o) => o.includes('new session')).every((o) => o.endsWith(': 28000')), outcomes.join('\n'));
  assert.equal(await node.psql('SELECT count(*) FROM app_writes'), '0');
  assert.ok(fenced.terminatedBackends >= before.length + 2, `ended ${fenced.terminatedBackends} sessions`);

  // The agent's own session works, and the standby still streams from the fenced primary.
  const observed = await agent.observe();
  assert.ok(observed.reachable && observed.defaultTransactionReadOnly, observed.reachable ? 'not read-only' : observed.detail);
  assert.equal(observed.replicas.find((r) => r.applicationName === standby.name)?.state, 'streaming');
  assert.equal(await standby.psql('SELECT status FROM pg_stat_wal_receiver'), 'streaming');

  await agent.unfence();
  const writer = await clientSession(node, 'app');
  await writer.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE');
  await writer.query('INSERT INTO app_writes VALUES (1000)');
  await writer.end();
  await waitUntil('the standby to replicate the write made after unfence', 15_000, async () => (await standby.psql('SELECT count(*) FROM app_writes')) === '1');
  await Promise.all(before.map((c) => c.end().catch(() => undefined)));
  await midTransaction.end().catch(() => undefined);
});

test('Given hba_file outside the data directory, When the fenced server is restarted by someone else and the agent restarts, Then clients stay refused until unfence', async (t) => {
  const cluster = await startPgCluster(t);
  const node = cluster.primary;
  await setUpApp(node);
  // As Debian lays it out: the configuration in a directory of its own, outside dataDir.
  const confDir = path.join(path.dirname(node.dataDir), 'conf');
  const hbaFile = path.join(confDir, 'pg_hba.conf');
  await mkdir(confDir);
  await writeFile(hbaFile, await readFile(path.join(node.dataDir, 'pg_hba.conf')), { mode: 0o640 });
  const postgresOwner = await stat(node.dataDir);
  await chown(confDir, postgresOwner.uid, postgresOwner.gid);
  await chown(hbaFile, postgresOwner.uid, postgresOwner.gid);
  const config = { ...node.agentConfig, serverOptions: ['-c', `hba_file=${hbaFile}`] };
  const agent = new LocalPostgres(config);
  t.after(() => agent.close());
  await agent.stop('fast');
  await agent.start();
  assert.equal(await attempt(async () => (await clientSession(node, 'app')).end()), 'written', 'app may log in before the fence');

  await agent.fence('read-only');
  assert.match(await readFile(hbaFile, 'utf8'), /^# BEGIN pgvip fence/);
  assert.doesNotMatch(await readFile(path.join(node.dataDir, 'pg_hba.conf'), 'utf8'), /pgvip fence/);
  assert.equal(await attempt(async () => (await clientSession(node, 'app')).end()), '28000');

  // The agent dies and someone restarts PostgreSQL with pg_ctl: it comes back fenced.
  agent.close();
  await node.psql('SELECT 1'); // the agent's role still gets in
  await new LocalPostgres(config).stop('immediate');
  const restarted = new LocalPostgres(config);
  t.after(() => restarted.close());
  await restarted.start();
  assert.equal(await attempt(async () => (await clientSession(node, 'app')).end()), '28000', 'a restarted fenced server refuses clients');
  assert.equal(await node.psql('SHOW default_transaction_read_only'), 'on');

  // A restarted agent (nothing remembered) that regains its lease unfences: the outside file is cleaned.
  await restarted.unfence();
  assert.doesNotMatch(await readFile(hbaFile, 'utf8'), /pgvip fence/);
  const writer = await clientSession(node, 'app');
  await writer.query('INSERT INTO app_writes VALUES (1)');
  await writer.end();
});

test('Given a standby whose hba_file (outside dataDir) still has a fence block, When it is promoted, Then the new primary admits its clients', async (t) => {
  const cluster = await startPgCluster(t);
  const { primary: oldPrimary, standby: node } = cluster;
  await setUpApp(oldPrimary);
  await waitUntil('the standby to have the app role', 15_000, async () => (await node.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'")) === '1');
  const hbaFile = path.join(path.dirname(node.dataDir), 'pg_hba.conf');
  // A block left behind where a restarted agent that never saw the server running would not look.
  await writeFile(hbaFile, `# BEGIN pgvip fence: left over\nhost all "app" all reject\n# END pgvip fence\n${await readFile(path.join(node.dataDir, 'pg_hba.conf'), 'utf8')}`);
  const owner = await stat(node.dataDir);
  await chown(hbaFile, owner.uid, owner.gid);
  const config = { ...node.agentConfig, serverOptions: ['-c', `hba_file=${hbaFile}`] };
  await new LocalPostgres(config).stop('fast');
  const agent = new LocalPostgres(config); // nothing remembered: it looks for pg_hba.conf in dataDir
  t.after(() => agent.close());
  await agent.start();
  assert.equal(await attempt(async () => (await clientSession(node, 'app')).end()), '28000', 'the leftover block refuses clients');

  await new LocalPostgres(oldPrimary.agentConfig).stop('fast');
  await agent.stopWalReceiverAndReadFinalLsn();
  await agent.promote(30);
  assert.doesNotMatch(await readFile(hbaFile, 'utf8'), /pgvip fence/);
  const writer = await clientSession(node, 'app');
  await writer.query('INSERT INTO app_writes VALUES (1)');
  await writer.end();
});

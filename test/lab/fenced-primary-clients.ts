// Goal: in async mode, a primary that fenced itself takes no client write, whatever the client does to
// leave read-only mode: an application on the client host, connecting to the old primary's own
// address (not the VIP), with a session opened before the fence or a new one, tries
// SET default_transaction_read_only = off, BEGIN READ WRITE, SET SESSION CHARACTERISTICS AS
// TRANSACTION READ WRITE and a plain INSERT — and not one row lands on that server.
//
// The fence comes from the real agent: the primary is cut off from the witness and the standby (the
// client still reaches it), loses its lease and fences itself; the standby takes over. The commit
// guard (pgvip_commit_guard), when the servers have it, is switched off here: it refuses writes past
// the lease on its own, and this test is about the fence, which must hold without it (the guard is
// optional, and in a switchover the fenced primary still holds its lease).
//
// A suite of scenarios.test.ts (one lab at a time per machine, and one file holds every lab suite, so
// parallel test files never compete for it): run alone with
//   node --conditions=pgvip-source --import tsx --test --test-name-pattern='fenced primary' test/lab/scenarios.test.ts
// About a minute.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { onHost, run, runOnHost } from './exec.js';
import { startLab, type Lab } from './lab.js';
import { appUser, pgBinDir, psql } from './postgres.js';
import type { DbNode } from './topology.js';
import { waitFor } from './wait.js';

/** Ids far above the writer probe's, so they can be counted on their own. */
const firstId = 9_000_000_000;

/** Each path out of read-only mode, as separate statements (as drivers send them), ending in an INSERT. */
const bypasses: ReadonlyArray<{ name: string; sql: (id: number) => string[] }> = [
  { name: 'SET default_transaction_read_only = off', sql: (id) => ['SET default_transaction_read_only = off', insert(id)] },
  { name: 'BEGIN READ WRITE', sql: (id) => ['BEGIN READ WRITE', insert(id), 'COMMIT'] },
  { name: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', sql: (id) => ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', insert(id)] },
  { name: 'plain INSERT', sql: (id) => [insert(id)] },
];

function insert(id: number): string {
  return `INSERT INTO lab.writes (id, lane) VALUES (${id}, 99)`;
}

function psqlArgv(address: string): string[] {
  return [`${pgBinDir}/psql`, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', address, '-p', '5432', '-U', appUser, '-d', 'postgres'];
}

/** An application session on the client host, open until its statements are sent. */
class OpenSession {
  readonly #child;
  #out = '';
  readonly #closed: Promise<number | null>;

  constructor(address: string) {
    const [file, ...args] = onHost('client', psqlArgv(address), { cgroup: false });
    this.#child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGCONNECT_TIMEOUT: '5' } });
    this.#child.stdout.on('data', (c: Buffer) => (this.#out += c.toString()));
    this.#child.stderr.on('data', (c: Buffer) => (this.#out += c.toString()));
    this.#closed = new Promise((resolve) => this.#child.once('close', resolve));
  }

  async ready(): Promise<void> {
    this.#child.stdin.write("SELECT 'session-' || 'ready';\n");
    await waitFor('the session to be open', 15_000, async () => this.#out.includes('session-ready'), 50, () => this.#out);
  }

  /** Sends the statements and ends the session: 'written' when psql ran them all. */
  async runAndClose(statements: readonly string[]): Promise<string> {
    this.#child.stdin.end(statements.map((s) => `${s};\n`).join(''));
    const code = await this.#closed;
    return code === 0 ? 'written' : `exit ${code}: ${this.#out.split('\n').filter(Boolean).at(-1) ?? ''}`;
  }
}

async function newSession(address: string, statements: readonly string[]): Promise<string> {
  const r = await runOnHost('client', [...psqlArgv(address), ...statements.flatMap((s) => ['-c', s])], { cgroup: false, timeoutMs: 15_000, env: { PGCONNECT_TIMEOUT: '5' } });
  return r.code === 0 ? 'written' : `exit ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
}

/** The suite; `skip` as scenarios.test.ts decides it (not root, or the lab busy). */
export function fencedPrimaryClientsSuite(
  options: { readonly skip: string | false; readonly compiled: boolean },
): void {
  describe('lab: a fenced primary in async mode takes no client write', { skip: options.skip, timeout: 8 * 60_000 }, () => {
    // The lab starts inside the test, not in a before() hook: a run of scenarios.test.ts filtered to
    // other rows (--test-name-pattern) still runs every suite's hooks.
    let lab: Lab | undefined;

    after(async () => {
      if (lab === undefined) return;
      await lab.down();
      const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('pgvip-lab-'));
      assert.deepEqual(left, [], 'the lab left namespaces behind');
    });

    it('Given the primary cut off from the witness and the standby, When it has fenced itself, Then no client path writes a row on it', async (t) => {
      const started = await startLab({ replication: 'async', writer: false, compiled: options.compiled });
      lab = started;
      const roles = await started.waitHealthy();
      const primary = roles.primary as DbNode;
      const standby = roles.standby as DbNode;
      const address = started.topology.hosts[primary].address;
      for (const n of [primary, standby]) {
        if ((await psql(n, "SELECT count(*) FROM pg_settings WHERE name = 'pgvip_commit_guard.enabled'")) === '1') {
          await psql(n, 'ALTER SYSTEM SET pgvip_commit_guard.enabled = off');
          await psql(n, 'SELECT pg_reload_conf()');
        }
      }
      // Sessions opened before the fence, one per path; they prove the address takes writes now.
      const open = bypasses.map(() => new OpenSession(address));
      await Promise.all(open.map((s) => s.ready()));
      assert.equal(await newSession(address, [insert(firstId)]), 'written', 'before the fence the client writes on the primary\'s own address');

      const faultAt = await started.faults.partition(primary, 'witness');
      await started.faults.partition(primary, standby);
      const fenced = await waitFor('the old primary to fence itself', 60_000, async () =>
        started.logOf(primary).find((l) => l.atMs >= faultAt && l.msg === 'effect done' && /^fenced/.test(String(l.fields.detail))),
      );
      t.diagnostic(`${primary}: ${String(fenced.fields.detail)} ${fenced.atMs - faultAt} ms after the cut`);

      const outcomes: string[] = [];
      let id = firstId + 1;
      for (const [i, bypass] of bypasses.entries()) {
        outcomes.push(`open session, ${bypass.name}: ${await open[i]!.runAndClose(bypass.sql(id++))}`);
        outcomes.push(`new session, ${bypass.name}: ${await newSession(address, bypass.sql(id++))}`);
      }
      t.diagnostic(outcomes.join('\n'));
      assert.deepEqual(outcomes.filter((o) => o.endsWith(': written')), [], 'no client write may get through');
      assert.ok(outcomes.filter((o) => o.startsWith('new session')).every((o) => /pg_hba\.conf rejects connection/.test(o)), outcomes.join('\n'));
      // Counted on the old primary itself, over its loopback with the agent's role (which the fence admits).
      assert.equal(await psql(primary, `SELECT count(*) FROM lab.writes WHERE id > ${firstId}`), '0');
      await started.faults.healAll();
    });
  });
}

// Goal: `pgvip restart` restarts PostgreSQL without a failover, end to end: the real CLI asks the
// witness daemon, which asks the agent daemon, which restarts a real PostgreSQL 15. Restarting the
// primary keeps its term and its place (no vote, no lease release, the VIP stays) and writes resume;
// restarting the standby changes nothing either. postgresql.parameters reach both nodes, a
// restart-only one shows as pending restart, and `pgvip restart --pending-restart` restarts the
// standby first and then the primary, in place or (--switchover, the minor-version update of
// docs/runbook.md, here with the same binaries) after a switchover. For contrast, the same restart done behind
// pgvip's back (pg_ctl restart on the primary) is a failure and fails over. Real agent and witness
// daemons on loopback; only the VIP is the in-memory fake.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { lookUpOsUser, runAsOsUser } from '../../packages/agent/src/postgres/os-command.js';
import { runPgvip } from '../../packages/witness/test/cli-helpers.js';
import { pgBinDir, startPgCluster } from '../fixtures/pg-cluster.js';
import { startDaemons } from './daemons-on-pg.js';
import { until } from './helpers.js';

interface View {
  term: number;
  primary: string | null;
  syncEligible: string | null;
  restart: unknown;
  nodes: {
    node: string; role: string | null; restarting: boolean; pendingRestart: boolean | null; streaming: boolean | null;
  }[];
  events: { id: number; type: string; node: string | null; detail: string }[];
}

async function startCluster(t: TestContext, clusterExtra = '') {
  const pgc = await startPgCluster(t);
  const { agents, cloud, lines, operatorUrl } = await startDaemons(t, pgc, {
    name: 'pgvip-restart-daemons', replication: 'replication: { slots: { enabled: false } }', clusterExtra,
  });
  const po = operatorUrl;
  const primaryCode = async (n: string) => (await agents[n]!.app.inject({ url: '/primary' })).statusCode;
  const view = async () => (await (await fetch(`${po}/api/v1/clusters/orders`)).json()) as View;
  const history = async () =>
    ((await (await fetch(`${po}/api/v1/clusters/orders/history?limit=200`)).json()) as { events: View['events'] }).events;
  const pgvip = (args: string[]) => runPgvip(['--witness', po, ...args], { timeoutMs: 120_000 });
  await until('db-a to be primary with a lease', async () => (await primaryCode('db-a')) === 200, 60_000);
  await until('the VIP on db-a', () => cloud.assignedTo === 'db-a');
  await until('db-b to be the eligible standby', async () => (await view()).syncEligible === 'db-b', 30_000);
  await pgc.primary.psql('CREATE TABLE writes (n serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
  return { pgc, cloud, lines, view, history, pgvip, primaryCode };
}

const startTime = (pg: { psql(sql: string): Promise<string> }) => pg.psql('SELECT pg_postmaster_start_time()');
/** Events that belong to a failover, recorded after the event `sinceId`. */
const failoverEvents = (events: View['events'], sinceId: number) =>
  events.filter((e) => e.id > sinceId && ['vote-granted', 'lease-released', 'failure-detected', 'manual-failover'].includes(e.type));
const lastId = (events: View['events']) => Math.max(0, ...events.map((e) => e.id));

/** Writes one row every `everyMs` until stopped; records when each write failed and succeeded. */
function writer(pg: { psql(sql: string, timeoutMs?: number): Promise<string> }, everyMs = 100) {
  const outcomes: { atMs: number; ok: boolean }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const atMs = performance.now();
      const ok = await pg.psql('INSERT INTO writes DEFAULT VALUES', 5_000).then(() => true, () => false);
      outcomes.push({ atMs, ok });
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    outcomes,
    async stop() {
      stopped = true;
      await loop;
    },
    /** The longest stretch without a successful write, in ms. */
    longestGapMs(): number {
      let gap = 0;
      let lastOk: number | null = null;
      for (const o of outcomes) {
        if (!o.ok) continue;
        if (lastOk !== null) gap = Math.max(gap, o.atMs - lastOk);
        lastOk = o.atMs;
      }
      return Math.round(gap);
    },
  };
}

test('Given db-a is primary, When pgvip restart db-a, Then PostgreSQL restarts, db-a stays primary in the same term, and writes resume', { timeout: 240_000 }, async (t) => {
  const { pgc, cloud, view, history, pgvip } = await startCluster(t);
  const before = await view();
  const sinceId = lastId(await history());
  const startedBefore = await startTime(pgc.primary);
  const w = writer(pgc.primary);
  await new Promise((r) => setTimeout(r, 1_000));
  const r = await pgvip(['restart', 'db-a', '--yes', '--timeout', '30']);
  await new Promise((r2) => setTimeout(r2, 1_000));
  await w.stop();
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /✔ restart orders: db-a is back as primary \(term \d+\)/);
  const after = await view();
  assert.equal(after.term, before.term, 'no new term: no failover');
  assert.equal(after.primary, 'db-a');
  assert.equal(cloud.assignedTo, 'db-a', 'the VIP stayed');
  assert.notEqual(await startTime(pgc.primary), startedBefore, 'PostgreSQL was really restarted');
  const events = await history();
  assert.deepEqual(failoverEvents(events, sinceId), [], JSON.stringify(events));
  assert.ok(events.some((e) => e.type === 'planned-restart' && /db-a is back as primary/.test(e.detail)), JSON.stringify(events));
  assert.ok(w.outcomes.at(-1)?.ok, 'writes resumed');
  const gapMs = w.longestGapMs();
  t.diagnostic(`longest write gap during the restart of the primary: ${gapMs} ms`);
  assert.ok(gapMs < 15_000, `writes paused ${gapMs} ms`);
  await until('db-b to stream from db-a again', async () => (await pgc.primary.psql("SELECT state FROM pg_stat_replication WHERE application_name = 'db-b'")) === 'streaming' || undefined, 30_000);
});

test('Given db-b is the standby, When pgvip restart db-b, Then it restarts and streams again, with no failover', { timeout: 240_000 }, async (t) => {
  const { pgc, view, history, pgvip } = await startCluster(t);
  const before = await view();
  const sinceId = lastId(await history());
  const startedBefore = await startTime(pgc.standby);
  const r = await pgvip(['restart', 'db-b', '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /✔ restart orders: db-b is back as standby/);
  assert.notEqual(await startTime(pgc.standby), startedBefore);
  const after = await view();
  assert.equal(after.term, before.term);
  assert.equal(after.primary, 'db-a');
  assert.deepEqual(failoverEvents(await history(), sinceId), []);
  await pgc.primary.psql('INSERT INTO writes DEFAULT VALUES', 30_000);
});

test('For contrast: a restart of the primary behind pgvip\'s back (pg_ctl stop, start) is a failure, and db-b takes over', { timeout: 240_000 }, async (t) => {
  const { pgc, view, primaryCode } = await startCluster(t);
  const before = await view();
  const postgres = await lookUpOsUser('postgres');
  const pgCtl = (args: string[]) => runAsOsUser(postgres, path.join(pgBinDir, 'pg_ctl'), [...args, '-D', pgc.primary.dataDir, '-w'], { timeoutMs: 60_000, cwd: pgc.root });
  // A restart that takes a couple of seconds (a shutdown checkpoint, a large shared_buffers): the
  // agent sees its primary's server gone, and that is a failure.
  assert.equal((await pgCtl(['stop', '-m', 'fast'])).exitCode, 0);
  await new Promise((r) => setTimeout(r, 2_000));
  // (The start may find the server running already: its agent rejoins it as db-b's standby.)
  await pgCtl(['start']);
  await until('db-b to be primary', async () => (await primaryCode('db-b')) === 200, 60_000);
  assert.ok((await view()).term > before.term);
});

test('Given a restart-only postgresql.parameters entry, Then both nodes show pending restart, and pgvip restart --pending-restart clears it without a failover', { timeout: 240_000 }, async (t) => {
  const { pgc, view, history, pgvip } = await startCluster(t, '\n  postgresql: { parameters: { shared_buffers: 48MB, work_mem: 7MB } }');
  // The agents applied them at start: the reloadable one is in effect, the other waits.
  assert.equal(await pgc.standby.psql('SHOW work_mem'), '7MB');
  await until('both nodes to report pending restart', async () => (await view()).nodes.every((n) => n.pendingRestart === true), 20_000);
  const status = await pgvip(['status']);
  assert.match(status.stdout, /db-a .*pending restart/);
  const before = await view();
  const sinceId = lastId(await history());
  const r = await pgvip(['restart', '--pending-restart', '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // Standby first, then the primary.
  assert.match(r.stdout, /db-b is back as standby[\s\S]*db-a is back as primary/);
  for (const node of [pgc.primary, pgc.standby]) assert.equal(await node.psql('SHOW shared_buffers'), '48MB');
  await until('no pending restart left', async () => (await view()).nodes.every((n) => n.pendingRestart === false), 20_000);
  const after = await view();
  assert.equal(after.term, before.term);
  assert.equal(after.primary, 'db-a');
  assert.deepEqual(failoverEvents(await history(), sinceId), []);
  const again = await pgvip(['restart', '--pending-restart', '--yes']);
  assert.match(again.stdout, /no node has a pending restart; nothing to do/);
});

test('The minor-version update (docs/runbook.md): pgvip restart --pending-restart --switchover restarts the standby, switches over, and restarts the old primary as a standby', { timeout: 240_000 }, async (t) => {
  const { pgc, view, pgvip } = await startCluster(t, '\n  postgresql: { parameters: { shared_buffers: 48MB } }');
  await until('both nodes to report pending restart', async () => (await view()).nodes.every((n) => n.pendingRestart === true), 20_000);
  const before = await view();
  const startedA = await startTime(pgc.primary);
  const r = await pgvip(['restart', '--pending-restart', '--switchover', '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /db-b is back as standby[\s\S]*switchover[\s\S]*db-a is back as standby/);
  const after = await view();
  assert.equal(after.primary, 'db-b');
  assert.equal(after.term, before.term + 1, 'one switchover, no failover');
  assert.notEqual(await startTime(pgc.primary), startedA);
  await until('no pending restart left', async () => (await view()).nodes.every((n) => n.pendingRestart === false), 20_000);
  await pgc.standby.psql('INSERT INTO writes DEFAULT VALUES', 30_000);
});

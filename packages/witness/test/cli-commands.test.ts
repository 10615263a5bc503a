// Goal: the commands that change a cluster (switchover, failover, maintenance) send exactly what
// the operator asked for, only after the confirmation or the flags that make the intent explicit,
// and report the witness's refusals with exit code 1 and its reason.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { billingCluster, mainCluster, node, startFakeOperatorApi, type FakeApiOptions } from './fake-operator-api.js';
import { runPgvip, runPgvipOnTerminal } from './cli-helpers.js';

async function fakeApi(t: TestContext, options: FakeApiOptions = {}) {
  const api = await startFakeOperatorApi(options);
  t.after(() => api.close());
  return api;
}

const posts = (api: Awaited<ReturnType<typeof fakeApi>>) => api.requests.filter((r) => r.method === 'POST').map((r) => ({ url: r.url, body: r.body }));

describe('pgvip switchover', { concurrency: true, timeout: 120_000 }, () => {
  it('with --yes hands over to the standby and reports the witness\'s answer', async (t) => {
    const api = await fakeApi(t);
    const r = await runPgvip(['--witness', api.url, 'switchover', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '✔ switchover main: switchover to db-b completed: term 8\n');
    assert.deepEqual(posts(api), [{ url: '/api/v1/clusters/main/switchover', body: { to: 'db-b' } }]);
    assert.equal(api.clusters[0]!.primary, 'db-b');
  });

  it('refuses to run without --yes when stdin is not a terminal (exit 2), and sends nothing', async (t) => {
    const api = await fakeApi(t);
    const r = await runPgvip(['--witness', api.url, 'switchover'], { input: 'y\n' });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'pgvip: switchover needs a confirmation, and stdin is not a terminal: pass --yes to confirm non-interactively\n');
    assert.deepEqual(posts(api), []);
  });

  it('asks on a terminal, and acts only on "y"', async (t) => {
    const api = await fakeApi(t);
    const no = await runPgvipOnTerminal(['--witness', api.url, 'switchover'], 'n\n');
    assert.equal(no.code, 1, no.stdout);
    assert.match(no.stdout, /Switch over cluster main from db-a to db-b now\? Writes pause briefly; no acknowledged write is lost\. \[y\/N\]/);
    assert.match(no.stdout, /pgvip: switchover cancelled; nothing was changed/);
    assert.deepEqual(posts(api), []);
    const yes = await runPgvipOnTerminal(['--witness', api.url, 'switchover', '--to', 'db-b'], 'y\n');
    assert.equal(yes.code, 0, yes.stdout);
    assert.match(yes.stdout, /✔ switchover main: switchover to db-b completed: term 8/);
    assert.deepEqual(posts(api), [{ url: '/api/v1/clusters/main/switchover', body: { to: 'db-b' } }]);
  });

  it('schedules with --at HH:MM or an ISO time, sending the instant in UTC', async (t) => {
    const api = await fakeApi(t);
    const clock = await runPgvip(['--witness', api.url, 'switchover', '--at', '03:30', '--yes']);
    assert.equal(clock.code, 0, clock.stderr);
    const iso = await runPgvip(['--witness', api.url, 'switchover', '--at', '2999-06-01T03:30:00+02:00', '--yes', '--json']);
    assert.equal(iso.code, 0, iso.stderr);
    const [first, second] = posts(api).map((p) => (p.body as { at: string }).at);
    assert.match(first!, /^\d{4}-\d{2}-\d{2}T03:30:00\.000Z$/); // TZ=UTC in the child
    const untilFirst = Date.parse(first!) - Date.now();
    assert.ok(untilFirst > 0 && untilFirst <= 86_400_000, 'the next 03:30, within a day');
    assert.equal(second, '2999-06-01T01:30:00.000Z');
    assert.deepEqual(JSON.parse(iso.stdout), { cluster: 'main', command: 'switchover', ok: true, message: 'switchover to db-b scheduled at 2999-06-01T01:30:00.000Z' });
  });

  it('exits 2 for a bad or past --at and for an unknown --to, without contacting the witness for a change', async (t) => {
    const api = await fakeApi(t);
    const cases: Array<[string[], RegExp]> = [
      [['--at', 'tomorrow'], /^pgvip: --at tomorrow: not a time; use HH:MM \(next occurrence, local time\) or an ISO 8601 date-time/],
      [['--at', '25:00'], /^pgvip: --at 25:00: not a time of day; use HH:MM/],
      [['--at', '2001-01-01T00:00:00Z'], /^pgvip: --at 2001-01-01T00:00:00Z: is in the past/],
      [['--to', 'db-c'], /^pgvip: --to db-c: no such node in cluster main; its nodes are db-a, db-b\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await runPgvip(['--witness', api.url, 'switchover', '--yes', ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    assert.deepEqual(posts(api), []);
  });

  it('exits 1 when the target already is the primary, or the witness refuses (with its code and sentence)', async (t) => {
    const api = await fakeApi(t, { clusters: [{ ...mainCluster(), nodes: [node({ node: 'db-a', role: 'primary' }), node({ node: 'db-b', promotionBlocker: 'lag 20 MiB > lagBytesMax 16 MiB' })] }] });
    const self = await runPgvip(['--witness', api.url, 'switchover', '--to', 'db-a', '--yes']);
    assert.equal(self.code, 1);
    assert.equal(self.stderr, 'pgvip: db-a is already the primary of main; nothing to switch over\n');
    const refused = await runPgvip(['--witness', api.url, 'switchover', '--yes']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, 'pgvip: the witness refused: PGVIP_OPERATOR_REFUSED: db-b is not ready: lag 20 MiB > lagBytesMax 16 MiB\n');
    const json = await runPgvip(['--witness', api.url, '--json', 'switchover', '--yes']);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), { error: { code: 'PGVIP_OPERATOR_REFUSED', message: 'the witness refused: PGVIP_OPERATOR_REFUSED: db-b is not ready: lag 20 MiB > lagBytesMax 16 MiB', exitCode: 1 } });
    const headless = await fakeApi(t, { clusters: [{ ...mainCluster(), primary: null }] });
    const nothing = await runPgvip(['--witness', headless.url, 'switchover', '--to', 'db-b', '--yes']);
    assert.equal(nothing.code, 1);
    assert.equal(nothing.stderr, 'pgvip: the witness refused: PGVIP_OPERATOR_REFUSED: no primary known; nothing to switch over from\n');
  });
});

describe('pgvip failover', { concurrency: true, timeout: 120_000 }, () => {
  it('refuses without both --force and --accept-data-loss, naming what is missing and why (exit 2)', async (t) => {
    const api = await fakeApi(t);
    const none = await runPgvip(['--witness', api.url, 'failover']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^pgvip: refusing a manual failover without --force and --accept-data-loss\. It promotes a node without the checks of an automatic failover, and writes that node has not received are LOST\./);
    assert.match(none.stderr, /for a planned change of primary without loss, use: pgvip switchover\n$/);
    const forceOnly = await runPgvip(['--witness', api.url, 'failover', '--force']);
    assert.equal(forceOnly.code, 2);
    assert.match(forceOnly.stderr, /^pgvip: refusing a manual failover without --accept-data-loss\./);
    const lossOnly = await runPgvip(['--witness', api.url, 'failover', '--accept-data-loss', '--to', 'db-b']);
    assert.equal(lossOnly.code, 2);
    assert.match(lossOnly.stderr, /^pgvip: refusing a manual failover without --force\./);
    assert.deepEqual(posts(api), []);
  });

  it('with both flags asks the witness to promote, accepting data loss, and reports the answer', async (t) => {
    const api = await fakeApi(t, { clusters: [billingCluster()] });
    const r = await runPgvip(['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--to', 'billing-a']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '✔ failover billing: billing-a promoted at term 4; writes it had not received are lost\n');
    assert.deepEqual(posts(api), [{ url: '/api/v1/clusters/billing/failover', body: { to: 'billing-a', acceptDataLoss: true } }]);
    const unknown = await runPgvip(['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--to', 'db-z']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--to db-z: no such node in cluster billing/);
  });
});

describe('pgvip maintenance', { concurrency: true, timeout: 120_000 }, () => {
  it('switches maintenance on and off, and status shows it loudly while on', async (t) => {
    const api = await fakeApi(t);
    const on = await runPgvip(['--witness', api.url, 'maintenance', 'on']);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, '✔ maintenance main: maintenance on: automatic failover paused\n');
    const status = await runPgvip(['--witness', api.url, 'status']);
    assert.match(status.stdout, /MAINTENANCE MODE: automatic failover is PAUSED for cluster main/);
    const off = await runPgvip(['--witness', api.url, '--json', 'maintenance', 'off']);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(JSON.parse(off.stdout), { cluster: 'main', command: 'maintenance', ok: true, message: 'maintenance off: automatic failover resumed' });
    assert.deepEqual(posts(api).filter((p) => p.url.endsWith('/maintenance')).map((p) => p.body), [{ on: true }, { on: false }]);
  });

  it('exits 2 for anything but on or off, and for a missing state', async (t) => {
    const api = await fakeApi(t);
    const bad = await runPgvip(['--witness', api.url, 'maintenance', 'maybe']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^pgvip: command-argument value 'maybe' is invalid for argument 'state'\. Allowed choices are on, off\. \(see pgvip --help\)\n$/);
    const missing = await runPgvip(['--witness', api.url, 'maintenance']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'state'/);
    assert.deepEqual(posts(api), []);
  });

  it('exits 1 with the witness\'s message when it fails the request (500)', async (t) => {
    const api = await fakeApi(t);
    api.override = { status: 500, body: { error: { code: 'PGVIP_INTERNAL', message: 'PGVIP_INTERNAL: an internal error occurred: ENOSPC' } } };
    const r = await runPgvip(['--witness', api.url, '--cluster', 'main', 'maintenance', 'on']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'pgvip: the witness failed the request (HTTP 500 PGVIP_INTERNAL): an internal error occurred: ENOSPC\n');
  });
});

// Goal: `pgvip status` and `pgvip history` show an operator the state of the cluster at a glance
// (one row per node, the VIP holder, maintenance impossible to miss) and scripts the same as JSON;
// and every way of failing to talk to the witness ends with the documented exit code and a
// sentence saying what to do, never a stack trace.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { billingCluster, mainCluster, startFakeOperatorApi } from './fake-operator-api.js';
import { runPgvip, writeFile600 } from './cli-helpers.js';
import { tempDir } from './notify-helpers.js';

type Api = Awaited<ReturnType<typeof startFakeOperatorApi>>;

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+/, `a stack trace leaked:\n${text}`);
}

describe('pgvip status', { concurrency: true, timeout: 120_000 }, () => {
  let one: Api;
  let two: Api;
  before(async () => {
    one = await startFakeOperatorApi();
    two = await startFakeOperatorApi({ clusters: [mainCluster(), { ...billingCluster(), maintenance: true }] });
  });
  after(async () => {
    await one.close();
    await two.close();
  });

  it('prints one row per node with role, term, lease, lag, timeline, state, eligibility and the VIP holder', async () => {
    const r = await runPgvip(['--witness', one.url, 'status']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^\+ Cluster: main \(term 7\) -+\+/);
    assert.match(lines[1]!, /^\| VIP \| Node \| Role +\| Term \| Lease \| Lag +\| TL \| State +\| Promotion \| Last seen \|$/);
    const row = (name: string) => lines.find((l) => l.includes(`| ${name} `))!.split('|').map((c) => c.trim()).slice(1, -1);
    assert.deepEqual(row('db-a'), ['*', 'db-a', 'primary', '7', '2.4 s', '-', '3', 'running', '-', '0.2 s ago']);
    assert.deepEqual(row('db-b'), ['', 'db-b', 'standby', '7', '-', '1.5 MiB', '3', 'streaming', 'eligible', '0.2 s ago']);
    assert.match(r.stdout, /\* holds the VIP 198\.18\.1\.100 \(secondary-ip\): db-a/);
    assert.match(r.stdout, /latest events \(newest first\):\n {2}2025-06-01 11:58:00 {2}vip-moved db-a {2}term 7: VIP 198\.18\.1\.100 moved to db-a and verified/);
    assert.doesNotMatch(r.stdout, /MAINTENANCE/);
  });

  it('shows every cluster without --cluster, with a loud maintenance banner and the reason a node cannot be promoted', async () => {
    const r = await runPgvip(['--witness', two.url, 'status']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Cluster: main \(term 7\)/);
    assert.match(r.stdout, /!!! MAINTENANCE MODE: automatic failover is PAUSED for cluster billing +!!!/);
    assert.match(r.stdout, /!!! {3}pgvip maintenance off --cluster billing +!!!/);
    assert.match(r.stdout, /\+ Cluster: billing \(term 3, MAINTENANCE\)/);
    assert.match(r.stdout, /\| +\| billing-a \| unknown \| 2 +\| - +\| - +\| - +\| agent down, pg up \| blocked: agent unreachable from the witness \| 42 s ago +\|/);
    assert.match(r.stdout, /sync standby: none \(async replication, or sync degraded: no standby is known to hold every acknowledged write\)/);
    assert.match(r.stdout, /sync standby: db-b \(holds every acknowledged write\)/);
    // The banner comes before the table it is about.
    assert.ok(r.stdout.indexOf('MAINTENANCE MODE') < r.stdout.indexOf('Cluster: billing'));
  });

  it('shows one cluster with --cluster, and prints the API documents with --json', async () => {
    const human = await runPgvip(['--witness', two.url, '--cluster', 'billing', 'status']);
    assert.equal(human.code, 0, human.stderr);
    assert.doesNotMatch(human.stdout, /Cluster: main/);
    const json = await runPgvip(['--witness', two.url, 'status', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { clusters: two.clusters });
  });

  it('shows a loud banner when the cluster has no primary', async () => {
    const api = await startFakeOperatorApi({ clusters: [{ ...mainCluster(), primary: null }] });
    try {
      const r = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /!!! NO PRIMARY: cluster main has no node holding write authority \(term 7\) !!!/);
      assert.match(r.stdout, /\* holds the VIP 198\.18\.1\.100 \(secondary-ip\): nobody, while there is no primary/);
    } finally {
      await api.close();
    }
  });

  it('shows a pending switchover and when it is due', async () => {
    const api = await startFakeOperatorApi({ clusters: [{ ...mainCluster(), switchover: { to: 'db-b', dueInMs: 300_000 } }] });
    try {
      const r = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\nswitchover to db-b pending, due in 5 min\n/);
    } finally {
      await api.close();
    }
  });

  it('exits 2 naming the clusters when --cluster names none of them', async () => {
    const r = await runPgvip(['--witness', two.url, '--cluster', 'nope', 'status']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `pgvip: no cluster "nope" on the witness at ${two.url}; it serves: main, billing\n`);
  });

  it('exits 3 when the witness is unreachable, also as a JSON error with --json', async () => {
    const dead = await startFakeOperatorApi();
    const url = dead.url;
    await dead.close();
    const r = await runPgvip(['--witness', url, 'status']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`^pgvip: cannot reach the witness at ${url}: connect ECONNREFUSED .*; is pgvip-witness running, and is --witness \\(or PGVIP_WITNESS_URL\\) its operator API address\\?\\n$`));
    const json = await runPgvip(['--witness', url, '--json', 'status']);
    assert.equal(json.code, 3);
    const doc = JSON.parse(json.stdout) as { error: { code: string; exitCode: number; message: string } };
    assert.equal(doc.error.code, 'unreachable');
    assert.equal(doc.error.exitCode, 3);
    assertNoStack(r.stderr + json.stdout);
  });

  it('takes the witness URL from PGVIP_WITNESS_URL, and refuses a malformed one with exit 2', async () => {
    const fromEnv = await runPgvip(['status'], { env: { PGVIP_WITNESS_URL: one.url } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /Cluster: main/);
    const bad = await runPgvip(['--witness', 'not a url', 'status']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^pgvip: --witness not a url: not a URL; give the operator API's address, e.g\. http:\/\/127\.0\.0\.1:8010\n$/);
    const ftp = await runPgvip(['--witness', 'ftp://127.0.0.1:8010', 'status']);
    assert.equal(ftp.code, 2);
  });

  it('exits 3 when the witness is unavailable (503) or the URL is not a pgvip witness', async () => {
    const api = await startFakeOperatorApi();
    try {
      api.override = { status: 503, body: { error: { code: 'PGVIP_CLOSING', message: 'shutting down' } } };
      const closing = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(closing.code, 3);
      assert.match(closing.stderr, /is unavailable \(HTTP 503: shutting down\); it may be starting or stopping/);
      api.override = { status: 200, body: '<html>hello</html>' };
      const html = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(html.code, 3);
      assert.match(html.stderr, /did not answer like a pgvip witness \(HTTP 200 with a body that is not JSON\)/);
      api.override = { status: 200, body: { something: 'else' } };
      const other = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(other.code, 3);
      assert.match(other.stderr, /has no clusters list/);
    } finally {
      await api.close();
    }
  });

  it('exits 3 when the witness does not answer in time', async () => {
    const api = await startFakeOperatorApi();
    try {
      api.override = 'hang';
      const r = await runPgvip(['--witness', api.url, 'status']);
      assert.equal(r.code, 3);
      assert.match(r.stderr, /cannot reach the witness at .*: no answer within 5000 ms/);
    } finally {
      await api.close();
    }
  });
});

describe('pgvip authentication to the operator API', { concurrency: true, timeout: 120_000 }, () => {
  const token = 'op-token-0123456789';
  let api: Api;
  let dir: string;
  before(async () => {
    api = await startFakeOperatorApi({ token });
  });
  after(() => api.close());

  it('sends the token from --token-file or PGVIP_TOKEN_FILE as a bearer token', async (t) => {
    dir = tempDir(t, 'pgvip-token-');
    const file = writeFile600(path.join(dir, 'operator.token'), `${token}\n`);
    const flag = await runPgvip(['--witness', api.url, '--token-file', file, 'status'], { env: { USER: 'alice' } });
    assert.equal(flag.code, 0, flag.stderr);
    // Who asked goes along, for the witness's history of operator commands.
    assert.ok(api.requests.every((r) => typeof r.operator === 'string' && r.operator.length > 0));
    const env = await runPgvip(['--witness', api.url, 'status'], { env: { PGVIP_TOKEN_FILE: file } });
    assert.equal(env.code, 0, env.stderr);
    assert.ok(api.requests.some((r) => r.authorization === `Bearer ${token}`));
  });

  it('exits 4 without a token or with a wrong one, saying which', async (t) => {
    const none = await runPgvip(['--witness', api.url, 'status']);
    assert.equal(none.code, 4);
    assert.match(none.stderr, /^pgvip: the witness refused the request \(HTTP 401: the operator API needs a valid bearer token: .*: no bearer token\); the operator API needs a token: pass --token-file PATH \(or set PGVIP_TOKEN_FILE\); on the witness host, \/etc\/pgvip\/operator\.token is read by default when this user can see it \(run as root\)\n$/);
    const wrongFile = writeFile600(path.join(tempDir(t, 'pgvip-token-'), 'wrong.token'), 'nope');
    const wrong = await runPgvip(['--witness', api.url, 'status'], { env: { PGVIP_TOKEN_FILE: wrongFile } });
    assert.equal(wrong.code, 4);
    assert.match(wrong.stderr, new RegExp(`the token from PGVIP_TOKEN_FILE \\(${wrongFile}\\) was not accepted`));
    const json = await runPgvip(['--witness', api.url, '--json', 'history']);
    assert.equal(json.code, 4);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'PGVIP_OPERATOR_AUTH');
  });

  it('exits 2 for a missing, empty or group-readable token file, with the fix', async (t) => {
    const d = tempDir(t, 'pgvip-token-');
    const missing = await runPgvip(['--witness', api.url, '--token-file', path.join(d, 'missing'), 'status']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pgvip: --token-file: .*missing does not exist; create it with mode 0600/);
    const open = writeFile600(path.join(d, 'open.token'), token, 0o644);
    const exposed = await runPgvip(['--witness', api.url, '--token-file', open, 'status']);
    assert.equal(exposed.code, 2);
    assert.match(exposed.stderr, /readable or writable by group or others \(got mode 0644\); run: chmod 600/);
    const empty = writeFile600(path.join(d, 'empty.token'), '\n');
    const blank = await runPgvip(['--witness', api.url, '--token-file', empty, 'status']);
    assert.equal(blank.code, 2);
    assert.match(blank.stderr, /holds no secret/);
  });
});

describe('pgvip history', { concurrency: true, timeout: 120_000 }, () => {
  let one: Api;
  let two: Api;
  before(async () => {
    one = await startFakeOperatorApi();
    two = await startFakeOperatorApi({ clusters: [mainCluster(), billingCluster()] });
  });
  after(async () => {
    await one.close();
    await two.close();
  });

  it('lists the latest 20 events newest first', async () => {
    const r = await runPgvip(['--witness', one.url, 'history']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(one.requests.some((q) => q.url === '/api/v1/clusters/main/history?limit=20'));
    const rows = r.stdout.split('\n').filter((l) => /^\| \d{4}-/.test(l));
    assert.equal(rows.length, 10);
    assert.match(rows[0]!, /^\| 2025-06-01 11:09:00 \| 12 \| vip-moved +\| db-a \| 7 +\| vip-moved #12 +\|$/);
    assert.match(rows.at(-1)!, /\| 3 +\| witness-started +\| - +\| 5 +\|/);
  });

  it('pages with --limit and --before, and prints {cluster, events} with --json', async () => {
    const r = await runPgvip(['--witness', two.url, '--cluster', 'main', 'history', '--limit', '2', '--before', '9', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { cluster: string; events: Array<{ id: number }> };
    assert.equal(doc.cluster, 'main');
    assert.deepEqual(doc.events.map((e) => e.id), [8, 7]);
    assert.ok(two.requests.some((q) => q.url === '/api/v1/clusters/main/history?limit=2&before=9'));
  });

  it('says so when a cluster has no events', async () => {
    const r = await runPgvip(['--witness', two.url, '--cluster', 'billing', 'history', '--before', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'no events recorded for cluster billing\n');
  });

  it('exits 2 for a bad --limit or --before, and when several clusters leave it ambiguous', async () => {
    for (const args of [['--limit', '0'], ['--limit', 'ten'], ['--limit', '1001'], ['--before', '-3']]) {
      const r = await runPgvip(['--witness', one.url, 'history', ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /^pgvip: option '--(limit|before) <(n|id)>' argument '.*' is invalid\. --(limit|before) must be a whole number from 1 to \d+\. \(see pgvip --help\)\n$/);
    }
    const ambiguous = await runPgvip(['--witness', two.url, 'history']);
    assert.equal(ambiguous.code, 2);
    assert.equal(ambiguous.stderr, 'pgvip: the witness serves 2 clusters (main, billing): choose one with --cluster NAME\n');
  });
});

describe('pgvip usage errors', { concurrency: true, timeout: 60_000 }, () => {
  it('exits 0 for --help and 2 for an unknown command, an unknown option or no command', async () => {
    const help = await runPgvip(['--help']);
    assert.equal(help.code, 0);
    for (const name of ['status', 'history', 'switchover', 'failover', 'maintenance', 'check-config', 'doctor']) assert.match(help.stdout, new RegExp(`\\n  ${name}\\b`));
    const unknown = await runPgvip(['stauts']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^pgvip: unknown command 'stauts'\n\(Did you mean status\?\) \(see pgvip --help\)\n$/);
    const option = await runPgvip(['status', '--verbose']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /unknown option '--verbose'/);
    const none = await runPgvip([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: pgvip/);
  });
});

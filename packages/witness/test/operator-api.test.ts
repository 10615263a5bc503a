// Goal: every operator API endpoint answers with the documented shape and coded errors, refuses bad
// input (unknown cluster, bad JSON, missing acceptDataLoss, missing or wrong token) without touching
// any state, and turns accepted commands into the core's decisions, persisted and recorded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { PROTOCOL_VERSION, type LeaseRequest, type SyncUpdate } from '@pgvip/shared';
import type { ClusterView } from '../src/view.js';
import { agentStatus, manualClock, startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const TOKEN = 'operator-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const lease = (seq: number): LeaseRequest => ({ v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'lease-request', seq, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' });

/** Given a witness serving c1 and c2, where c1 has db-a as primary of term 1 and a healthy, eligible db-b. */
async function setup(t: TestContext) {
  const stateDir = tempDir(t);
  const clock = manualClock();
  const daemon = await startDaemon(t, witnessConfig({ stateDir, token: TOKEN, clusters: [{ name: 'c1' }, { name: 'c2' }] }), { clock });
  const c1 = daemon.runners.get('c1');
  assert.ok(c1);
  // The witness learns term 1 from the agents' reports before db-a asks for its lease (a lease
  // request never creates a term).
  c1.poll('db-a', agentStatus('c1', 'db-a'), true);
  c1.poll('db-b', agentStatus('c1', 'db-b'), true);
  const granted = c1.request(lease(1));
  assert.ok(granted.kind === 'lease-reply' && granted.granted, JSON.stringify(granted));
  const restore: SyncUpdate = { v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'sync-update', standby: 'db-b', change: 'restore' };
  c1.request(restore);
  await daemon.history.flush();
  const api = (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = auth) =>
    daemon.operator.inject({ method, url, headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }, ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }) });
  const stateFile = () => readFileSync(daemon.stateFile, 'utf8');
  return { daemon, c1, clock, api, stateFile };
}

/** What must not change when a request is refused as bad input. */
async function snapshot(s: Awaited<ReturnType<typeof setup>>) {
  const events = await s.daemon.history.read({ limit: 1000 });
  return { durable: s.c1.durable, file: s.stateFile(), events: events.length, switchover: s.c1.state.switchover };
}

test('the health check answers without a token; everything else needs the right one', async (t) => {
  const s = await setup(t);
  // Given a token file / When a request has no token, a wrong one, or the right one
  const health = await s.api('GET', '/health', undefined, {});
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json(), { ok: true, clusters: 2 });
  const before = await snapshot(s);
  const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token' }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }];
  for (const headers of wrong) {
    for (const [method, url, body] of [
      ['GET', '/api/v1/clusters'],
      ['GET', '/metrics'],
      ['POST', '/api/v1/clusters/c1/maintenance', { on: true }],
      ['POST', '/api/v1/clusters/c1/failover', { acceptDataLoss: true }],
    ] as const) {
      const res = await s.api(method, url, body, headers);
      // Then every one without the right bearer token is a coded 401 and changes nothing
      assert.equal(res.statusCode, 401, `${method} ${url} with ${JSON.stringify(headers)}`);
      assert.equal(res.json().error.code, 'PGVIP_OPERATOR_AUTH');
    }
  }
  assert.deepEqual(await snapshot(s), before);
  assert.equal((await s.api('GET', '/api/v1/clusters')).statusCode, 200);
  assert.equal((await s.api('GET', '/api/v1/clusters', undefined, { authorization: `bearer   ${TOKEN}` })).statusCode, 200);
});

test('the cluster list and one cluster show the documented view', async (t) => {
  const s = await setup(t);
  // When the operator lists the clusters
  const res = await s.api('GET', '/api/v1/clusters');
  assert.equal(res.statusCode, 200);
  const { clusters } = res.json() as { clusters: ClusterView[] };
  // Then both are there, and c1 shows its primary, its sync standby, both nodes and the events so far
  assert.deepEqual(clusters.map((c) => c.cluster), ['c1', 'c2']);
  const c1 = clusters[0];
  assert.ok(c1);
  assert.equal(c1.term, 1);
  assert.equal(c1.primary, 'db-a');
  assert.equal(c1.syncEligible, 'db-b');
  assert.equal(c1.maintenance, false);
  assert.ok(c1.promiseRemainingMs > 0);
  assert.deepEqual(c1.vip, { address: '198.18.0.100', mode: 'secondary-ip' });
  assert.equal(c1.switchover, null);
  const [a, b] = c1.nodes;
  assert.deepEqual(a, { node: 'db-a', reachable: true, pgReachable: true, role: 'primary', term: 1, leaseRemainingMs: 2500, lagBytes: null, timeline: 1, streaming: false, promotionBlocker: 'not a standby (postgresql is not in recovery)', lastSeenMsAgo: 0, hosts: ['127.0.0.1'], instanceId: null, restarting: false, pendingRestart: null });
  assert.deepEqual(b, { node: 'db-b', reachable: true, pgReachable: true, role: 'standby', term: 1, leaseRemainingMs: 0, lagBytes: 0x60, timeline: 1, streaming: true, promotionBlocker: null, lastSeenMsAgo: 0, hosts: ['127.0.0.1'], instanceId: null, restarting: false, pendingRestart: null });
  assert.deepEqual(c1.events.map((e) => e.type), ['sync-restored', 'witness-started']);
  // And one cluster by name is the same view; an unknown name is a coded 404
  const one = await s.api('GET', '/api/v1/clusters/c2');
  assert.equal(one.statusCode, 200);
  assert.equal((one.json() as ClusterView).primary, null);
  const unknown = await s.api('GET', '/api/v1/clusters/nope');
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().error.code, 'PGVIP_UNKNOWN_CLUSTER');
  const noRoute = await s.api('GET', '/api/v2/clusters');
  assert.equal(noRoute.statusCode, 404);
  assert.equal(noRoute.json().error.code, 'PGVIP_NOT_FOUND');
});

test('maintenance on and off is persisted, recorded and shown; bad bodies change nothing', async (t) => {
  const s = await setup(t);
  const before = await snapshot(s);
  // When the body is not JSON, not an object, has a wrong type or an unknown field, or the cluster is unknown
  const bad: [string, unknown, number, string][] = [
    ['/api/v1/clusters/c1/maintenance', '{"on": tru', 400, 'PGVIP_OPERATOR_BAD_REQUEST'],
    ['/api/v1/clusters/c1/maintenance', '[true]', 400, 'PGVIP_OPERATOR_BAD_REQUEST'],
    ['/api/v1/clusters/c1/maintenance', { on: 'yes' }, 400, 'PGVIP_OPERATOR_BAD_REQUEST'],
    ['/api/v1/clusters/c1/maintenance', {}, 400, 'PGVIP_OPERATOR_BAD_REQUEST'],
    ['/api/v1/clusters/c1/maintenance', { on: true, forever: true }, 400, 'PGVIP_OPERATOR_BAD_REQUEST'],
    ['/api/v1/clusters/nope/maintenance', { on: true }, 404, 'PGVIP_UNKNOWN_CLUSTER'],
  ];
  for (const [url, body, status, code] of bad) {
    const res = await s.api('POST', url, body);
    // Then each is a coded error and nothing changed: no state, no file write, no event
    assert.equal(res.statusCode, status, `${url} ${JSON.stringify(body)}: ${res.body}`);
    assert.equal(res.json().error.code, code);
  }
  // A POST without a JSON body is refused before it reaches a route (operator-api-guard.test.ts)
  const noBody = await s.daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/maintenance', headers: auth });
  assert.equal(noBody.statusCode, 415);
  const emptyJson = await s.daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/maintenance', headers: { ...auth, 'content-type': 'application/json' } });
  assert.equal(emptyJson.statusCode, 400);
  assert.deepEqual(await snapshot(s), before);

  // When maintenance is switched on
  const on = await s.api('POST', '/api/v1/clusters/c1/maintenance', { on: true }, { ...auth, 'x-pgvip-operator': 'alice' });
  assert.equal(on.statusCode, 200);
  assert.deepEqual(on.json(), { ok: true, message: 'maintenance on: automatic failover paused' });
  // Then it is durable, visible, and recorded with who asked, marked as the client's unproven claim
  assert.equal(s.c1.durable.maintenance, true);
  assert.match(s.stateFile(), /"maintenance": true/);
  assert.equal(((await s.api('GET', '/api/v1/clusters/c1')).json() as ClusterView).maintenance, true);
  const events = (await s.api('GET', '/api/v1/clusters/c1/history?limit=2')).json().events as { type: string; detail: string; operator?: string; operatorClaimed?: boolean }[];
  assert.deepEqual(events.map((e) => e.type), ['operator-command', 'maintenance']);
  assert.match(events[0]?.detail ?? '', /^alice@127\.0\.0\.1 \(claimed\): maintenance on: accepted/);
  assert.equal(events[0]?.operator, 'alice@127.0.0.1');
  assert.equal(events[0]?.operatorClaimed, true);
  assert.equal(events[1]?.detail, 'maintenance on for c1 by alice@127.0.0.1 (claimed)');
  assert.equal(events[1]?.operator, undefined);
  // And off again
  const off = await s.api('POST', '/api/v1/clusters/c1/maintenance', { on: false });
  assert.equal(off.statusCode, 200);
  assert.equal(s.c1.durable.maintenance, false);
});

test('a bad request quotes what it was sent bounded and as plain text', async (t) => {
  const s = await setup(t);
  const before = await snapshot(s);
  const res = await s.api('POST', '/api/v1/clusters/c1/maintenance', { on: `\u001b]0;owned\u0007${'x'.repeat(10_000)}` });
  assert.equal(res.statusCode, 400);
  const message = res.json().error.message as string;
  // The code and its catalogue sentence, then at most 500 characters of detail.
  assert.ok(message.length < 700, `${message.length} characters`);
  assert.ok(![...message].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f), 'a control character came back');
  assert.deepEqual(await snapshot(s), before);
});

test('a forced failover needs acceptDataLoss: true and an existing node; then it persists the new term', async (t) => {
  const s = await setup(t);
  const before = await snapshot(s);
  // When acceptDataLoss is missing, false or not a boolean, or `to` names no node
  for (const body of [{}, { to: 'db-b' }, { to: 'db-b', acceptDataLoss: false }, { acceptDataLoss: 'true' }, { to: 'db-z', acceptDataLoss: true }, { to: 7, acceptDataLoss: true }]) {
    const res = await s.api('POST', '/api/v1/clusters/c1/failover', body);
    // Then it is refused as bad input and nothing changes
    assert.equal(res.statusCode, 400, JSON.stringify(body));
    assert.equal(res.json().error.code, 'PGVIP_OPERATOR_BAD_REQUEST');
  }
  assert.deepEqual(await snapshot(s), before);
  // When the operator accepts data loss
  const res = await s.api('POST', '/api/v1/clusters/c1/failover', { to: 'db-b', acceptDataLoss: true });
  // Then the witness persists term 2 for db-b before telling db-b (which is down here: the message says so)
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { ok: boolean; message: string };
  assert.equal(body.ok, true);
  assert.match(body.message, /^forcing db-b to primary in term 2 \(data loss accepted\); db-b did not answer: PGVIP_PEER_UNREACHABLE/);
  assert.deepEqual({ term: s.c1.durable.term, primary: s.c1.durable.primaryOfTerm, votedFor: s.c1.durable.votedFor }, { term: 2, primary: 'db-b', votedFor: 'db-b' });
  assert.match(s.stateFile(), /"term": 2/);
  const events = (await s.api('GET', '/api/v1/clusters/c1/history')).json().events as { type: string; node: string | null; term: number }[];
  assert.deepEqual(events.slice(0, 2).map((e) => [e.type, e.node, e.term]), [['operator-command', 'db-b', 2], ['manual-failover', 'db-b', 2]]);
});

test('a switchover is refused with the core reason when impossible, and scheduled from a wall time when possible', async (t) => {
  const s = await setup(t);
  const c2Before = s.daemon.runners.get('c2')?.durable;
  // When c2 (no primary yet) is asked to switch over
  const refused = await s.api('POST', '/api/v1/clusters/c2/switchover', {});
  // Then the core's verdict comes back as a coded 409, and c2 is unchanged
  assert.equal(refused.statusCode, 409);
  assert.deepEqual(refused.json(), {
    ok: false,
    message: 'no primary known; nothing to switch over from',
    error: { code: 'PGVIP_OPERATOR_REFUSED', message: 'PGVIP_OPERATOR_REFUSED: the witness refused the operator command in the current cluster state: no primary known; nothing to switch over from' },
  });
  assert.deepEqual(s.daemon.runners.get('c2')?.durable, c2Before);
  // When the time is malformed, lacks an offset, or lies in the past
  const before = await snapshot(s);
  const inAMinute = new Date(s.clock.wallMs() + 60_000).toISOString();
  for (const body of [{ at: 'tomorrow' }, { at: '2030-01-31T14:00:00' }, { at: new Date(s.clock.wallMs() - 3_600_000).toISOString() }, { to: 'db-a', at: 5 }, { when: inAMinute }]) {
    const res = await s.api('POST', '/api/v1/clusters/c1/switchover', body);
    assert.equal(res.statusCode, 400, JSON.stringify(body));
    assert.equal(res.json().error.code, 'PGVIP_OPERATOR_BAD_REQUEST');
  }
  assert.deepEqual(await snapshot(s), before);
  // When a switchover to db-b is asked for one minute from now
  const ok = await s.api('POST', '/api/v1/clusters/c1/switchover', { to: 'db-b', at: inAMinute });
  // Then it is scheduled 60 s ahead on the monotonic clock, and shown as pending
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { ok: true, message: 'switchover to db-b scheduled in 60 s' });
  assert.deepEqual(((await s.api('GET', '/api/v1/clusters/c1')).json() as ClusterView).switchover, { to: 'db-b', dueInMs: 60_000 });
  // And switching over to the primary itself is the core's refusal
  const self = await s.api('POST', '/api/v1/clusters/c1/switchover', { to: 'db-a' });
  assert.equal(self.statusCode, 409);
  assert.equal(self.json().message, 'db-a is already the primary');
});

test('history pages newest first with limit and before; bad query values are refused', async (t) => {
  const s = await setup(t);
  for (const on of [true, false, true]) await s.api('POST', '/api/v1/clusters/c1/maintenance', { on });
  const all = (await s.api('GET', '/api/v1/clusters/c1/history?limit=100')).json().events as { id: number; cluster: string }[];
  // Then ids strictly decrease, and only c1's events are listed
  assert.ok(all.length >= 8);
  assert.ok(all.every((e, i) => e.cluster === 'c1' && (i === 0 || e.id < (all[i - 1]?.id ?? 0))));
  const page1 = (await s.api('GET', '/api/v1/clusters/c1/history?limit=3')).json().events as { id: number }[];
  const page2 = (await s.api('GET', `/api/v1/clusters/c1/history?limit=3&before=${page1[2]?.id}`)).json().events as { id: number }[];
  assert.deepEqual([...page1, ...page2].map((e) => e.id), all.slice(0, 6).map((e) => e.id));
  for (const q of ['limit=0', 'limit=1001', 'limit=ten', 'before=-1', 'limit=1&limit=2', 'cluster=c2']) {
    const res = await s.api('GET', `/api/v1/clusters/c1/history?${q}`);
    assert.equal(res.statusCode, 400, q);
    assert.equal(res.json().error.code, 'PGVIP_OPERATOR_BAD_REQUEST');
  }
  assert.equal((await s.api('GET', '/api/v1/clusters/nope/history')).statusCode, 404);
});

test('metrics expose the state of every cluster in Prometheus text', async (t) => {
  const s = await setup(t);
  await s.api('POST', '/api/v1/clusters/c2/maintenance', { on: true });
  const res = await s.api('GET', '/metrics');
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  const text = res.body;
  for (const line of [
    'pgvip_witness_term{cluster="c1"} 1',
    'pgvip_witness_term{cluster="c2"} 0',
    'pgvip_witness_primary{cluster="c1",node="db-a"} 1',
    'pgvip_witness_primary{cluster="c1",node="db-b"} 0',
    'pgvip_witness_maintenance{cluster="c2"} 1',
    'pgvip_witness_node_reachable{cluster="c1",node="db-b"} 1',
    'pgvip_witness_node_reachable{cluster="c2",node="db-b"} 0',
    'pgvip_witness_votes_total{cluster="c1",result="granted"} 0',
    'pgvip_witness_failovers_total{cluster="c1",kind="automatic"} 0',
    'pgvip_witness_checks_failed_total{cluster="c1",node="db-a"} 0',
  ]) {
    assert.ok(text.includes(`${line}\n`), `missing ${line}`);
  }
  assert.match(text, /^pgvip_witness_promise_remaining_seconds\{cluster="c1"\} 0\.\d+$/m);
  assert.match(text, /^pgvip_witness_poll_duration_seconds_count 0$/m);
  assert.match(text, /^process_cpu_user_seconds_total /m);
});

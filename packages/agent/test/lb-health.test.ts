// Goal: the load-balancer health endpoints (lb-health.ts, docs/api.md) answer each state with the
// status Patroni's would, and 503 wherever pgvip knows a node would refuse the traffic (fenced,
// fencing, switching over, restarting, promoting, lease renewals overdue); their query strings are
// bounded and validated (a coded 400, never a guess); HEAD and OPTIONS answer the status alone; and
// an attacker's odd query strings and piles of connections get nothing but refusals while the checks
// keep being answered. The states are built with the core's own boot state; the HTTP half runs on a
// real loopback listener of the agent daemon (test/integration/lb-health-on-pg.test.ts does the same
// on real PostgreSQL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import {
  bootAgent, defaultAgentSettings, defaultTimings, leaseValidMs,
  type AgentState, type AgentStatus, type PgSnapshot,
} from '@pgvip/shared/core';
import { PgvipError, agentDurableSchema, createDurableFile } from '@pgvip/shared';
import {
  lbFailure, lbPaths, lbQueryMaxChars, lbView, leaseLapsingBelowMs, parseLagBytes, parseLbQuery, type LbCheck,
} from '../src/lb-health.js';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';
import { startAgentDaemon } from '../src/daemon.js';
import { daemonTestConfig } from './daemon-config.js';

const nowMs = 100_000;
const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
const primaryPg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 2, lsn: 0x5000n, replayLsn: 0x5000n,
  streaming: false, syncStandby: 'db-b', standbyInSync: true,
};
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 2, lsn: 0x4000n, replayLsn: 0x3000n,
  streaming: true, syncStandby: null, standbyInSync: false,
};
const mb = 1024n * 1024n;

/** db-a, primary of term 3 with `leaseLeftMs` of lease. */
function primary(leaseLeftMs = leaseValidMs(defaultTimings) - 100, over: Partial<AgentState> = {}): AgentState {
  const s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, nowMs - 10_000);
  const lease = { ...s.lease, held: { term: 3, validUntilMs: nowMs + leaseLeftMs } };
  return { ...s, nowMs, pg: primaryPg, lease, ...over };
}

/** The status db-b's primary (here: db-a seen from db-b) serves. */
function primaryStatus(over: Partial<PgSnapshot> = {}): AgentStatus {
  return {
    v: 1, cluster: 'c1', term: 3, from: 'db-b', primaryOfTerm: 'db-b', role: 'primary',
    pg: { ...primaryPg, syncStandby: 'db-a', ...over }, leaseRemainingMs: 2000, promotionBlocker: null, maintenance: false,
  };
}

/** db-a as the standby of db-b in term 3. */
function standby(over: Partial<AgentState> = {}): AgentState {
  const s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-b' }, nowMs - 10_000);
  return {
    ...s, nowMs, pg: standbyPg, lastStreamingAtMs: nowMs - 100,
    primaryReport: { term: 3, lsn: 0x4800n, timeline: 2, syncStandby: 'db-a', atMs: nowMs - 200 },
    peer: primaryStatus(),
    ...over,
  };
}

const none = parseLbQuery('replica', '/replica');
const code = (check: LbCheck, s: AgentState, url = '/x', lastTickAtMs = nowMs - 100) =>
  lbFailure(check, lbView(s, lastTickAtMs), parseLbQuery(check, url), settings.lagBytesMax) === null ? 200 : 503;
const why = (check: LbCheck, s: AgentState, url = '/x') => lbFailure(check, lbView(s, nowMs), parseLbQuery(check, url), settings.lagBytesMax);

test('a primary with a lease is /primary, /read-only and ready, and nothing a standby is', () => {
  const s = primary();
  assert.equal(lbView(s, nowMs).role, 'primary');
  for (const c of ['primary', 'read-only', 'read-only-sync', 'readiness', 'liveness'] as const) assert.equal(code(c, s), 200, c);
  for (const c of ['replica', 'sync', 'async'] as const) assert.equal(code(c, s), 503, c);
  assert.match(why('replica', s)!, /db-a is primary, not a standby/);
});

test('a primary that would refuse writes, or soon will, is not /primary: fenced, fencing, switching over, restarting, overdue', () => {
  const lapsing = leaseLapsingBelowMs(defaultTimings);
  assert.equal(lapsing, leaseValidMs(defaultTimings) - 2 * defaultTimings.heartbeatMs - defaultTimings.requestTimeoutMs,
    'two renewals in a row unanswered, at the default timings');
  // Still role primary (the lease has not run out), but two renewals went unanswered.
  const overdue = primary(lapsing - 1);
  assert.equal(lbView(overdue, nowMs).role, 'primary');
  assert.match(why('primary', overdue)!, new RegExp(`lease renewals overdue: ${lapsing - 1} ms of lease left`));
  assert.equal(code('primary', primary(lapsing + 1)), 200, 'one late renewal is no reason');
  // Fenced (no lease / fenced read-only): role fenced.
  const fenced = primary(0, { fence: { fenced: true, reason: 'lease for term 3 lapsed', restartedAtMs: -Infinity } });
  assert.match(why('primary', fenced)!, /^fenced: lease for term 3 lapsed/);
  // The lease gone but the fence not started yet, or a restarted agent before its first grant.
  assert.equal(why('primary', primary(0)), 'no valid lease for term 3');
  assert.equal(lbView(primary(0), nowMs).role, 'fenced');
  assert.equal(code('read-only', fenced), 503, 'a fenced primary serves no reads either');
  assert.equal(code('readiness', fenced), 503);
  // Fencing: the effect is under way, the server still writable.
  const base = primary();
  const fenceInFlight = { id: 1, kind: 'fence' as const, effect: { kind: 'fence' as const, mode: 'read-only' as const }, startedAtMs: nowMs };
  const fencing = { ...base, fence: { ...base.fence, reason: 'switchover to db-b' }, fenceInFlight };
  assert.match(why('primary', fencing)!, /^fencing: switchover to db-b/);
  const switching = primary(2000, { switchover: { step: 'fencing', to: 'db-b', startedAtMs: nowMs } });
  assert.match(why('primary', switching)!, /switching over to db-b/);
  const restarting = primary(2000, { restart: { term: 3, untilMs: nowMs + 30_000, step: 'fencing', report: null } });
  assert.match(why('primary', restarting)!, /planned restart/);
  // Promoting: primary of the term, PostgreSQL still in recovery.
  const promoting = primary(2000, { pg: { ...standbyPg, streaming: false } });
  assert.match(why('primary', promoting)!, /promoting/);
  assert.equal(code('replica', promoting), 503);
  // PostgreSQL down.
  const down = primary(2000, { pg: { ...primaryPg, running: false, writable: false } });
  assert.match(why('primary', down)!, /postgresql is not running/);
  assert.equal(code('primary', primary(2000, { pg: null })), 503, 'before the first look');
});

test('a standby is /replica; ?lag= counts replay lag behind the newest position of this term\'s primary', () => {
  const s = standby();
  // The primary's status (0x5000) is newer than its last lease request (0x4800): lag = 0x5000 - replay 0x3000.
  const v = lbView(s, nowMs);
  assert.deepEqual(v.lag, { apply: 0x2000n, write: 0x1000n });
  assert.equal(code('replica', s), 200);
  assert.equal(code('read-only', s), 200);
  assert.equal(code('primary', s), 503);
  assert.equal(code('replica', s, '/replica?lag=8192'), 200, 'at the limit');
  assert.equal(code('replica', s, '/replica?lag=8191'), 503);
  assert.match(why('replica', s, '/replica?lag=4kB')!, /replay lag 8192 bytes is more than 4096/);
  // readiness: mode=write counts what was received; the default limit is replication.lagBytesMax.
  assert.equal(code('readiness', s, '/readiness?lag=4096'), 503);
  assert.equal(code('readiness', s, '/readiness?lag=4096&mode=write'), 200);
  assert.equal(code('readiness', standby({ pg: { ...standbyPg, replayLsn: 0n } }), '/readiness'), 200, '20 kB < 16 MB');
  const far = standby({ peer: primaryStatus({ lsn: 17n * mb }), primaryReport: null });
  assert.equal(code('readiness', far), 503);
  assert.equal(code('replica', far, '/replica?lag=16MB'), 503);
  assert.equal(code('replica', far, '/replica?lag=17MB'), 200);
  // Nothing known of this term's primary: lag is unknown, and a ?lag= check fails rather than guess.
  const oldReport = { term: 2, lsn: 0x9000n, timeline: 1, syncStandby: null, atMs: 0 };
  const blind = standby({ peer: null, primaryReport: oldReport });
  assert.equal(lbView(blind, nowMs).lag, null, 'a report of an older term does not count');
  assert.equal(code('replica', blind), 200, 'without ?lag= a running standby is a replica, as in Patroni');
  assert.match(why('replica', blind, '/replica?lag=1GB')!, /lag unknown/);
  // replication_state=streaming, as Patroni's.
  const notStreaming = standby({ pg: { ...standbyPg, streaming: false } });
  assert.equal(code('replica', notStreaming), 200);
  assert.equal(code('replica', notStreaming, '/replica?replication_state=streaming'), 503);
  assert.equal(code('readiness', notStreaming), 503, 'readiness needs streaming, as Patroni\'s');
  // A candidate (campaigning, its primary failed) still serves reads; rejoining, demoted or down does not.
  const down = standby({ pg: { ...standbyPg, running: false } });
  assert.match(why('replica', down)!, /postgresql is not running/);
  const restarting = standby({ restart: { term: 3, untilMs: nowMs + 30_000, step: 'pending', report: null } });
  assert.match(why('replica', restarting)!, /planned restart/);
  const candidate = standby({ campaign: { term: 4, sentAtMs: nowMs }, peer: null });
  assert.equal(lbView(candidate, nowMs).role, 'candidate');
  assert.equal(code('replica', candidate, '/replica?lag=16MB'), 200, 'its last report of the primary still bounds its lag');
  const rejoin = { kind: 'rejoin' as const, primary: 'db-b' };
  const rejoining = standby({ inFlight: { id: 2, kind: 'rejoin', effect: rejoin, startedAtMs: nowMs } });
  assert.match(why('replica', rejoining)!, /db-a is rejoining, not a standby/);
  const demoted = standby({ pg: primaryPg });
  assert.match(why('read-only', demoted)!, /db-a is demoted, not a standby/);
  assert.match(why('primary', demoted)!, /db-a is demoted; the primary of term 3 is db-b/);
});

test('/sync and /async follow the primary\'s own view of its synchronous standby; unknown is neither', () => {
  const s = standby();
  assert.equal(code('sync', s), 200);
  assert.equal(code('read-only-sync', s), 200);
  assert.equal(code('async', s), 503);
  // Named in synchronous_standby_names but not caught up (pg-snapshot's SyncCatchUp): not sync yet.
  const catchingUp = standby({ peer: primaryStatus({ standbyInSync: false }) });
  assert.equal(code('sync', catchingUp), 503);
  assert.equal(code('async', catchingUp), 200);
  const degraded = standby({ peer: primaryStatus({ syncStandby: null, standbyInSync: false }) });
  assert.equal(code('async', degraded), 200);
  assert.equal(code('sync', degraded), 503);
  const unknown = standby({ peer: null });
  assert.match(why('sync', unknown)!, /unknown whether this standby is synchronous/);
  assert.equal(code('async', unknown), 503);
  const asyncMode = standby({ settings: { ...settings, replication: 'async' }, peer: null });
  assert.equal(code('async', asyncMode), 200, 'replication.mode async: every standby is asynchronous');
  assert.equal(code('sync', asyncMode), 503);
  assert.equal(code('async', asyncMode, '/async?lag=1kB'), 503, 'lag unknown with no word from the primary');
  // A status from the old primary of an older term says nothing about this term.
  assert.equal(lbView(standby({ peer: { ...primaryStatus(), term: 2 } }), nowMs).sync, null);
});

// Three nodes: db-a a standby of db-c in term 3, db-b the other standby. `settings.peer` is db-b (the
// first other node), so the term's primary must be found among the peers, not as "the peer".
const three = { ...settings, nodes: ['db-a', 'db-b', 'db-c'].map((id) => ({ id, priority: 0, noFailover: false })) };

type Claim = { members: string[]; k: number };

function standbyOfThree(claim: Claim | undefined, over: Partial<AgentState> = {}): AgentState {
  const s = bootAgent(three, { term: 3, primaryOfTerm: 'db-c' }, nowMs - 10_000);
  // The primary's status still carries the two-node fields, naming db-a in sync: the N-node check must not read them.
  const primaryOfThree = { ...primaryStatus(), from: 'db-c', primaryOfTerm: 'db-c' };
  const otherStandby = { ...primaryStatus(), from: 'db-b', primaryOfTerm: 'db-c', role: 'standby' as const, pg: standbyPg };
  return {
    ...s, nowMs, pg: standbyPg, lastStreamingAtMs: nowMs - 100,
    primaryReport: {
      term: 3, lsn: 0x4800n, timeline: 2, syncStandby: null, atMs: nowMs - 200, ...(claim ? { syncClaim: claim } : {}),
    },
    peer: otherStandby,
    peers: { 'db-b': otherStandby, 'db-c': primaryOfThree },
    ...over,
  };
}

test('three nodes: /sync is 200 on a member of the primary\'s claim in force (ANY k), /async on the others', () => {
  const member = standbyOfThree({ members: ['db-a', 'db-b'], k: 1 });
  assert.equal(lbView(member, nowMs).sync, true);
  assert.deepEqual(['sync', 'read-only-sync', 'async'].map((c) => code(c as LbCheck, member)), [200, 200, 503]);
  assert.equal(code('sync', member, '/sync?lag=16MB'), 200);

  const outside = standbyOfThree({ members: ['db-b'], k: 1 });
  assert.deepEqual(['sync', 'read-only-sync', 'async'].map((c) => code(c as LbCheck, outside)), [503, 503, 200]);
  assert.match(why('sync', outside)!, /not a member of the primary's synchronous quorum/);
  // Degraded to async with etcd's agreement: nothing waits for any standby.
  const degraded = standbyOfThree({ members: [], k: 0 });
  assert.deepEqual([code('sync', degraded), code('async', degraded)], [503, 200]);
  // A claim naming db-a with k = 0 claims nothing either.
  assert.equal(code('sync', standbyOfThree({ members: ['db-a'], k: 0 })), 503);
});

test('three nodes: without a lease request of this term\'s primary within a lease, /sync and /async are both 503', () => {
  const report = { term: 3, lsn: 0x4800n, timeline: 2, syncStandby: null, syncClaim: { members: ['db-a'], k: 1 } };
  const stale = standbyOfThree(undefined, { primaryReport: { ...report, atMs: nowMs - defaultTimings.leaseMs - 1 } });
  assert.equal(lbView(stale, nowMs).sync, null);
  assert.match(why('sync', stale)!, /unknown whether this standby is synchronous: no lease request of the primary of term 3 within a lease/);
  assert.equal(code('async', stale), 503);
  const justFresh = standbyOfThree(undefined, { primaryReport: { ...report, atMs: nowMs - defaultTimings.leaseMs } });
  assert.equal(lbView(justFresh, nowMs).sync, true);
  const olderTerm = standbyOfThree(undefined, { primaryReport: { ...report, term: 2, atMs: nowMs - 100 } });
  assert.deepEqual([code('sync', olderTerm), code('async', olderTerm)], [503, 503]);
  assert.deepEqual([code('sync', standbyOfThree(undefined, { primaryReport: null })), code('replica', standbyOfThree(undefined))], [503, 200]);
});

test('three nodes: a standby withdrawn for an election is /replica but not /sync, even while the claim names it', () => {
  const withdrawal = { phase: 'withdrawn' as const, term: 3, sinceMs: nowMs - 100, flushLsn: 0x4000n, timeline: 2, askedAtMs: null };
  const s = standbyOfThree({ members: ['db-a', 'db-b'], k: 1 }, { withdrawal });
  assert.equal(lbView(s, nowMs).role, 'candidate');
  assert.deepEqual(['replica', 'sync', 'read-only-sync', 'async'].map((c) => code(c as LbCheck, s)), [200, 503, 503, 503]);
  assert.equal(why('sync', s), 'withdrawn for an election: its WAL receiver is stopped');
  const leftOut = standbyOfThree({ members: ['db-b'], k: 1 }, { withdrawal });
  assert.equal(code('async', leftOut), 200, 'left out of the claim, it is asynchronous whatever it does');
});

test('three nodes: a noFailover standby is always /async; async replication makes every standby /async', () => {
  const reporting = { ...three, nodes: three.nodes.map((n) => (n.id === 'db-a' ? { ...n, noFailover: true } : n)) };
  const s = standbyOfThree(undefined, { settings: reporting, primaryReport: null });
  assert.deepEqual([code('sync', s), code('async', s)], [503, 200]);
  const asyncMode = standbyOfThree({ members: ['db-a'], k: 1 }, { settings: { ...three, replication: 'async' } });
  assert.deepEqual([code('sync', asyncMode), code('async', asyncMode)], [503, 200]);
});

test('three nodes: ?lag= counts behind the term\'s primary among the peers, not behind "the peer"', () => {
  const s = standbyOfThree({ members: ['db-a'], k: 1 });
  // The primary db-c's status (0x5000) is newer than its lease request (0x4800); db-b is a standby at 0x4000.
  assert.deepEqual(lbView(s, nowMs).lag, { apply: 0x2000n, write: 0x1000n });
  const primaryGone = standbyOfThree({ members: ['db-a'], k: 1 }, { peers: { 'db-b': s.peers['db-b']!, 'db-c': null } });
  assert.deepEqual(lbView(primaryGone, nowMs).lag, { apply: 0x1800n, write: 0x800n }, 'then the lease request alone');
});

test('/liveness fails once the decision loop has not run for a lease (primary) or two (others)', () => {
  const L = defaultTimings.leaseMs;
  assert.equal(code('liveness', primary(), '/liveness', nowMs - L), 200);
  assert.equal(code('liveness', primary(), '/liveness', nowMs - L - 1), 503);
  assert.equal(code('liveness', standby(), '/liveness', nowMs - 2 * L), 200);
  assert.equal(code('liveness', standby(), '/liveness', nowMs - 2 * L - 1), 503);
});

test('query strings: Patroni\'s sizes are read; anything else is a coded 400 with the reason, never ignored', () => {
  assert.equal(parseLagBytes('1048576'), mb);
  assert.equal(parseLagBytes('1024kB'), mb);
  assert.equal(parseLagBytes('16MB'), 16n * mb);
  assert.equal(parseLagBytes('16mb'), 16n * mb);
  assert.equal(parseLagBytes('1GB'), 1024n * mb);
  assert.equal(parseLagBytes('0'), 0n);
  assert.equal(none.lagBytesMax, null);
  const bad = (check: LbCheck, url: string, re: RegExp) =>
    assert.throws(() => parseLbQuery(check, url), (e: unknown) => {
      assert.ok(e instanceof PgvipError && e.code === 'PGVIP_HEALTH_QUERY' && e.httpStatus === 400, String(e));
      assert.match(e.message, re);
      return true;
    });
  bad('replica', '/replica?lag=lots', /lag must be bytes or a size like/);
  bad('replica', '/replica?lag=1.5MB', /lag must be/);
  bad('replica', '/replica?lag=16MiB', /lag must be/);
  bad('replica', '/replica?lag=-1', /lag must be/);
  bad('replica', '/replica?lag=', /lag must be/);
  bad('replica', '/replica?lag=9999999999TB', /more than 2\^63-1 bytes/);
  bad('replica', '/replica?lag=99999999999999999999', /lag must be/);
  bad('replica', '/replica?lag=1MB&lag=2MB', /given more than once/);
  bad('replica', '/replica?tag_nofailover=false', /unknown parameter "tag_nofailover": "\/replica" takes only lag, replication_st/);
  bad('primary', '/primary?lag=1', /"\/primary" takes no parameters/);
  bad('replica', '/replica?replication_state=in%20archive%20recovery', /replication_state can only be streaming/);
  bad('readiness', '/readiness?mode=fast', /mode must be apply or write/);
  bad('replica', '/replica?lag=%E0%A4%A', /not valid percent-encoding/);
  bad('replica', `/replica?lag=${'9'.repeat(lbQueryMaxChars)}`, /at most 200/);
  // An echoed value is cut short: a body never carries back much of what was sent.
  assert.throws(() => parseLbQuery('replica', `/replica?${'x'.repeat(150)}=1`), (e: PgvipError) => e.message.length < 400);
  assert.equal(parseLbQuery('replica', '/replica?lag=16MB&replication_state=streaming').streamingOnly, true);
});

// --- the same over HTTP, on the agent daemon's real listener ------------------------------------

async function startAgent(t: { after: (fn: () => unknown) => void }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-lb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = daemonTestConfig(dir, null);
  const network = new FakePgNetwork();
  const pg = new FakePostgres({ network, nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: 5432, user: 'pgvip', database: 'postgres' } });
  createDurableFile(path.join(cfg.stateDir, 'agent-c1.json'), agentDurableSchema, { term: 0, primaryOfTerm: null }).save({ term: 1, primaryOfTerm: 'db-a' });
  const d = await startAgentDaemon(cfg, { logger: pino({ level: 'silent' }), vip: new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a'), pg, listen: false, onFatal: (e) => assert.fail(e) });
  t.after(() => d.close());
  await d.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (d.app.server.address() as { port: number }).port;
  return { d, port };
}

/** One request on a fresh connection; the status and the body as received. */
function raw(port: number, method: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: target, agent: false, timeout: 3_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target.slice(0, 40)}: no answer in 3 s`)));
    req.on('error', reject);
    req.end();
  });
}

test('over HTTP: every path answers GET with a small JSON, HEAD and OPTIONS with the status alone', async (t) => {
  const { port } = await startAgent(t);
  await new Promise((r) => setTimeout(r, 300));
  for (const p of Object.keys(lbPaths)) {
    const get = await raw(port, 'GET', p);
    assert.ok(get.status === 200 || get.status === 503, `${p}: ${get.status}`);
    const body = JSON.parse(get.body) as { node: string; role: string; term: number; why: string | null };
    assert.equal(body.node, 'db-a');
    assert.equal(body.term, 1);
    assert.ok(get.body.length < 600, `${p}: ${get.body.length} bytes`);
    for (const m of ['HEAD', 'OPTIONS']) {
      const r = await raw(port, m, p);
      assert.equal(r.status, get.status, `${m} ${p}`);
      assert.equal(r.body, '', `${m} ${p} has no body`);
    }
  }
  // This agent has no lease (nobody answers its renewals): not a primary, and says why.
  const p = JSON.parse((await raw(port, 'GET', '/primary')).body) as { why: string };
  assert.match(p.why, /^fenced|lease|not running/);
  assert.equal((await raw(port, 'GET', '/liveness')).status, 200, 'its loop runs');
  const bad = await raw(port, 'GET', '/replica?lag=lots');
  assert.equal(bad.status, 400);
  assert.equal((JSON.parse(bad.body) as { error: { code: string } }).error.code, 'PGVIP_HEALTH_QUERY');
  assert.deepEqual(await raw(port, 'OPTIONS', '/replica?lag=lots'), { status: 400, body: '' });
  assert.equal((await raw(port, 'POST', '/primary')).status, 404, 'health checks change nothing and take no POST');
  // HAProxy's `option httpchk OPTIONS /primary` sends HTTP/1.0 with no Host header.
  const sock = connect(port, '127.0.0.1');
  sock.end('OPTIONS /primary HTTP/1.0\r\n\r\n');
  let reply = '';
  for await (const chunk of sock) reply += String(chunk);
  assert.match(reply, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(reply, /\r\n\r\n$/, 'no body');
});

test('as an attacker: huge and odd query strings and hundreds of idle connections get refusals, the checks keep their answers', async (t) => {
  const { d, port } = await startAgent(t);
  const before = d.runner.state.durable;
  // Past Node's 16 KiB header limit: refused by the parser (431) before any route runs.
  const huge = await raw(port, 'GET', `/primary?lag=${'9'.repeat(64 * 1024)}`).catch((e: Error) => ({ status: 0, body: e.message }));
  assert.ok(huge.status === 431 || huge.status === 0, `64 KiB query: ${huge.status}`);
  t.diagnostic(`a 64 KiB query string: ${huge.status === 0 ? `connection closed (${huge.body})` : `HTTP ${huge.status}`}`);
  // Just under it: 2,000 parameters, refused by length at once.
  const many = Array.from({ length: 2_000 }, (_, i) => `p${i}=1`).join('&');
  const t0 = performance.now();
  assert.equal((await raw(port, 'GET', `/replica?${many}`)).status, 400);
  const manyMs = performance.now() - t0;
  assert.ok(manyMs < 1_000, 'answered at once');
  t.diagnostic(`2,000 parameters (${many.length} characters): 400 in ${manyMs.toFixed(1)} ms`);
  for (const odd of ['/replica?lag=%00', '/replica?%ZZ', '/replica?&&&', '/replica?lag=1&&lag=1', '/replica?=1', '/readiness?mode=write%0d%0aX-Evil:%201']) {
    assert.equal((await raw(port, 'GET', odd)).status, 400, odd);
  }
  // Many connections that never send a request: the cap closes the oldest, and checks on fresh
  // connections are answered meanwhile (server-limits.ts).
  const sockets: Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < 700; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
  const tookMs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t1 = performance.now();
    const r = await raw(port, i % 2 === 0 ? 'OPTIONS' : 'GET', '/replica?lag=16MB');
    tookMs.push(performance.now() - t1);
    assert.equal(r.status, 503, 'answered: this primary is no replica');
  }
  tookMs.sort((x, y) => x - y);
  t.diagnostic(`checks under 700 idle connections: median ${tookMs[10]!.toFixed(1)} ms, slowest ${tookMs[19]!.toFixed(1)} ms`);
  assert.deepEqual(d.runner.state.durable, before, 'nothing changed');
  sockets.forEach((s) => s.destroy());
});

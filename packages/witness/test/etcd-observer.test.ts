// Goal: a witness whose cluster keeps its quorum on etcd (quorum.backend: etcd) observes it, with no
// vote, on a real three-member etcd: what the agents write there (the agent's own EtcdQuorum: the
// campaign txn, a lease that ends) shows in the witness's status, history, notifications and metrics
// as today's events; two witnesses observe at once; the operator's switchover, maintenance and forced
// failover write their keys with the txn conditions; with etcd gone the witness says so and serves on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Etcd3 } from 'etcd3';
import { PROTOCOL_VERSION, parseConfigText, type VoteRequest } from '@pgvip/shared';
import { EtcdQuorum, type LeaseId } from '@pgvip/agent/quorum/etcd';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { freePort } from '../../../test/fixtures/owned-dirs.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';
import type { PgvipEvent } from '../src/events.js';
import type { ClusterView } from '../src/view.js';
import { repoRoot, runPgvip, writeFile600 } from './cli-helpers.js';
import { agentStatus, emulatedAgent, startDaemon, tempDir, witnessDocument } from './witness-helpers.js';

const TOKEN = 'etcd-observer-token-0123456789';
const timeoutMs = 400;

/** An agent's side of etcd, with the agent's own client: what the daemons on etcd do to the keys. */
function agentQuorum(t: TestContext, etcd: EtcdCluster, prefix: string): EtcdQuorum {
  const q = new EtcdQuorum({ endpoints: etcd.endpoints, prefix, cluster: 'c1', timeoutMs });
  t.after(() => q.close());
  return q;
}

/** A campaign as the agent makes it: a fresh lease, then the txn on the term record as read. */
async function campaign(q: EtcdQuorum, node: string, leaseMs = 3000): Promise<{ term: number; lease: LeaseId }> {
  const read = await q.read();
  assert.ok(read.ok, read.ok ? '' : read.why);
  const g = await q.grantLease(leaseMs);
  assert.ok(g.ok, g.ok ? '' : g.why);
  const won = await q.campaign({ node, after: read.view.term, lease: g.lease, sync: 'async' });
  assert.ok(won.ok, won.ok ? '' : won.why);
  return { term: won.term, lease: g.lease };
}

/** A witness daemon (in this process) observing c1 on etcd, its notifications kept in `notified`. */
async function etcdWitness(t: TestContext, etcd: EtcdCluster, prefix: string, agentPorts?: readonly [number, number]) {
  const stateDir = tempDir(t, 'pgvip-etcd-witness-');
  const nodes = agentPorts === undefined
    ? undefined
    : [{ agentPort: agentPorts[0], pgPort: 9 }, { agentPort: agentPorts[1], pgPort: 9 }] as const;
  const doc = witnessDocument({ stateDir, token: TOKEN, timings: {}, clusters: [{ name: 'c1', key: null, replication: 'async', ...(nodes === undefined ? {} : { nodes }) }] });
  const cluster = (doc.clusters as Record<string, unknown>[])[0]!;
  cluster.quorum = { backend: 'etcd', etcd: { endpoints: etcd.endpoints, prefix } };
  const config = parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml');
  const notified: PgvipEvent[] = [];
  const notifier = { notify: (e: PgvipEvent) => void notified.push(e), close: () => Promise.resolve() };
  const daemon = await startDaemon(t, config, { notifierFor: () => notifier });
  daemon.startPolling();
  const api = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await daemon.operator.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TOKEN}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return res;
  };
  const view = async (): Promise<ClusterView> => (await api('GET', '/api/v1/clusters/c1')).json();
  await until(async () => (await view()).quorum?.reachable === true, 15_000, 'the witness read the keys from etcd');
  /** `pgvip status` (the real CLI, a process of its own) against this witness's operator API. */
  const status = async (): Promise<string> => {
    if (!daemon.operator.server.listening) await daemon.operator.listen({ host: '127.0.0.1', port: 0 });
    const { port } = daemon.operator.server.address() as { port: number };
    const tokenFile = writeFile600(`${stateDir}/cli.token`, `${TOKEN}\n`);
    const r = await runPgvip(['--witness', `http://127.0.0.1:${port}`, '--token-file', tokenFile, 'status']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  return { daemon, api, view, notified, status };
}

/** Polls `check` until it holds (waitUntil with the condition first). */
const until = (check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> =>
  waitUntil(what, ms, async () => check());

const types = (events: readonly PgvipEvent[]): string[] => events.map((e) => e.type);

describe('the witness observes a cluster on etcd (real etcd)', { skip: etcdMissing(), timeout: 180_000 }, () => {
  test('Given agents on etcd, When the primary\'s lease ends and the standby wins the campaign, Then status, history, notifications and metrics show one failover', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wt-${randomBytes(3).toString('hex')}`;
    const dbA = agentQuorum(t, etcd, prefix);
    const dbB = agentQuorum(t, etcd, prefix);
    const w = await etcdWitness(t, etcd, prefix);

    // Given db-a won term 1 (the cluster's first leader key)
    const a = await campaign(dbA, 'db-a');
    assert.equal(a.term, 1);
    await until(async () => (await w.view()).term === 1, 10_000, 'the witness saw term 1');
    let v = await w.view();
    assert.equal(v.primary, 'db-a');
    assert.equal(v.quorum?.leaderKey?.node, 'db-a');
    await until(async () => ((await w.view()).quorum?.leaderKey?.leaseTtlS ?? 0) > 0, 10_000, 'the leader key\'s lease TTL');
    assert.equal(v.quorum?.members.length, 3);
    assert.ok(v.quorum?.members.every((m) => m.ok), JSON.stringify(v.quorum?.members));
    assert.equal(v.quorum?.members.filter((m) => m.leader).length, 1);

    // When db-a's lease ends (its key goes with it) and db-b wins term 2 in its campaign txn
    assert.ok((await dbA.revokeLease(a.lease)).ok);
    await until(() => types(w.notified).includes('failure-detected'), 10_000, 'the witness noticed the leader key gone');
    // (a long lease: nobody renews it here, and it must outlive the CLI's start below)
    const b = await campaign(dbB, 'db-b', 60_000);
    assert.equal(b.term, 2);
    await until(async () => (await w.view()).term === 2, 10_000, 'the witness saw term 2');

    // Then the status names db-b, its key and term
    v = await w.view();
    assert.equal(v.primary, 'db-b');
    assert.deepEqual([v.quorum?.leaderKey?.node, v.quorum?.leaderKey?.term], ['db-b', 2]);
    // and the history and the notifier got the failover once, as the witness's own vote would be recorded
    const history = (await (await w.api('GET', '/api/v1/clusters/c1/history')).json()) as { events: PgvipEvent[] };
    const failovers = history.events.filter((e) => e.type === 'vote-granted');
    assert.deepEqual(failovers.map((e) => [e.node, e.term]), [['db-b', 2], ['db-a', 1]]);
    assert.match(failovers[0]!.detail, /db-b won term 2 on etcd.*term 1 was db-a's/);
    const lost = history.events.find((e) => e.type === 'failure-detected');
    assert.equal(lost?.node, 'db-a');
    assert.deepEqual(w.notified.filter((e) => e.type === 'vote-granted').map((e) => e.node), ['db-a', 'db-b']);
    // and the metrics count one automatic failover (the bootstrap is not one), term 2, the key held
    const metrics = (await w.api('GET', '/metrics')).body;
    assert.match(metrics, /pgvip_witness_failovers_total\{cluster="c1",kind="automatic"\} 1\b/);
    assert.match(metrics, /pgvip_witness_term\{cluster="c1"\} 2\b/);
    assert.match(metrics, /pgvip_witness_primary\{cluster="c1",node="db-b"\} 1\b/);
    assert.match(metrics, /pgvip_witness_etcd_reachable\{cluster="c1"\} 1\b/);
    assert.match(metrics, /pgvip_witness_etcd_leader_key\{cluster="c1"\} 1\b/);
    // and pgvip status shows the backend, the leader key with its TTL, and etcd's members
    const shown = await w.status();
    assert.match(shown, /Cluster: c1 \(term 2\)/);
    assert.match(shown, /^quorum: etcd \(the witness observes; last read [\d.]+ m?s ago\)$/m);
    assert.match(shown, /^leader key: db-b, term 2, lease TTL [1-9]\d* s$/m);
    assert.match(shown, /^etcd members: (http:\/\/127\.0\.0\.1:\d+ ok( \(leader\))? [\d.]+ ms(; )?){3}$/m);
    assert.match(shown, /vote-granted db-b {2}term 2: db-b won term 2 on etcd/);

    // An agent that still asks the witness for a vote is refused: etcd holds the quorum.
    const vote: VoteRequest = { v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: 'db-a', kind: 'vote-request', lastTerm: 2, lsn: 0x3000000n, timeline: 1 };
    const reply = w.daemon.observers.get('c1')!.request(vote);
    assert.ok(reply.kind === 'vote-reply' && !reply.granted, JSON.stringify(reply));
    assert.match(reply.reason, /keeps its quorum on etcd/);
  });

  test('pgvip-witness as a process observes the cluster on etcd, and stops cleanly on SIGTERM', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wt-${randomBytes(3).toString('hex')}`;
    const stateDir = tempDir(t, 'pgvip-etcd-witness-');
    const [listenPort, operatorPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
    const doc = witnessDocument({ stateDir, token: TOKEN, timings: {}, listenPort, operatorPort, clusters: [{ name: 'c1', key: null, replication: 'async' }] });
    (doc.clusters as Record<string, unknown>[])[0]!.quorum = { backend: 'etcd', etcd: { endpoints: etcd.endpoints, prefix } };
    const file = path.join(stateDir, 'witness.yaml');
    writeFileSync(file, JSON.stringify(doc));
    const entry = path.join(repoRoot, 'packages/witness/src/main.ts');
    const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', entry, '--config', file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => void (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const get = async (): Promise<ClusterView | null> => {
      const res = await fetch(`http://127.0.0.1:${operatorPort}/api/v1/clusters/c1`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return res.ok ? (await res.json()) as ClusterView : null;
    };
    await until(async () => (await get())?.quorum?.reachable === true, 30_000, `the witness process serving c1 on etcd:\n${out}`);

    await campaign(agentQuorum(t, etcd, prefix), 'db-a');
    await until(async () => (await get())?.primary === 'db-a', 10_000, 'the process saw db-a take term 1');
    assert.match(out, /started as an observer of c1 on etcd/);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /witness stopped/);
  });

  test('Given two witnesses on one cluster, Then both observe it, and a command through one shows in the other', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wt-${randomBytes(3).toString('hex')}`;
    const dbA = agentQuorum(t, etcd, prefix);
    const [w1, w2] = await Promise.all([etcdWitness(t, etcd, prefix), etcdWitness(t, etcd, prefix)]);
    await campaign(dbA, 'db-a');
    for (const w of [w1, w2]) await until(async () => (await w.view()).primary === 'db-a', 10_000, 'both see db-a');

    const on = await w1.api('POST', '/api/v1/clusters/c1/maintenance', { on: true });
    assert.equal(on.statusCode, 200, on.body);
    await until(async () => (await w2.view()).maintenance, 10_000, 'the second witness sees maintenance');
    for (const w of [w1, w2]) await until(() => types(w.notified).includes('maintenance'), 10_000, 'both record maintenance');
    assert.equal((await w2.view()).quorum?.reachable, true);
  });

  test('operator commands write their keys with the txn conditions; a stale read is refused', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wt-${randomBytes(3).toString('hex')}`;
    const dbA = agentQuorum(t, etcd, prefix);
    const agentB = await emulatedAgent(t, { cluster: 'c1', node: 'db-b', peer: 'db-a', key: null, status: agentStatus('c1', 'db-b') });
    const agentA = await emulatedAgent(t, { cluster: 'c1', node: 'db-a', peer: 'db-b', key: null, status: agentStatus('c1', 'db-a') });
    const w = await etcdWitness(t, etcd, prefix, [agentA.port, agentB.port]);
    const raw = new Etcd3({ hosts: [...etcd.endpoints] });
    t.after(() => raw.close());
    const key = (name: string) => raw.get(`${prefix}/c1/${name}`).string();

    await campaign(dbA, 'db-a');
    await until(async () => (await w.view()).primary === 'db-a', 10_000, 'db-a is primary');
    await until(async () => (await w.view()).nodes.every((n) => n.reachable), 10_000, 'the agents answer the witness');

    // Maintenance: the key while on, none after off.
    assert.equal((await w.api('POST', '/api/v1/clusters/c1/maintenance', { on: true })).statusCode, 200);
    const m = JSON.parse((await key('maintenance')) ?? 'null') as { requestedBy: string } | null;
    assert.match(m?.requestedBy ?? '', /@127\.0\.0\.1 \(claimed\)$/);
    assert.equal((await w.api('POST', '/api/v1/clusters/c1/maintenance', { on: false })).statusCode, 200);
    assert.equal(await key('maintenance'), null);

    // A scheduled switchover is held by the witness, then written when due.
    const at = new Date(Date.now() + 1_500).toISOString();
    const scheduled = await w.api('POST', '/api/v1/clusters/c1/switchover', { to: 'db-b', at });
    assert.equal(scheduled.statusCode, 200, scheduled.body);
    assert.match(scheduled.json<{ message: string }>().message, /switchover to db-b scheduled in [12] s/);
    const pending = (await w.view()).switchover;
    assert.ok(pending !== null && pending.to === 'db-b' && pending.dueInMs > 0, JSON.stringify(pending));
    assert.equal(await key('switchover'), null);
    await until(async () => (await key('switchover')) !== null, 10_000, 'the scheduled switchover written when due');
    // Recorded once the witness has read etcd again after its write: the key may show first.
    await until(() => w.notified.some((e) => e.type === 'operator-command' && /^scheduled switchover to db-b by .*: switchover to db-b requested/.test(e.detail)), 10_000, 'the scheduled switchover recorded');
    await raw.delete().key(`${prefix}/c1/switchover`);
    await until(async () => (await w.view()).switchover === null, 10_000, 'the witness sees the key gone');

    // Switchover: the key {to, term, requestedBy}, written only once.
    const sw = await w.api('POST', '/api/v1/clusters/c1/switchover', { to: 'db-b' });
    assert.equal(sw.statusCode, 200, sw.body);
    const written = JSON.parse((await key('switchover')) ?? 'null') as { to: string; term: number } | null;
    assert.deepEqual([written?.to, written?.term], ['db-b', 1]);
    assert.equal((await w.view()).switchover?.to, 'db-b');
    const again = await w.api('POST', '/api/v1/clusters/c1/switchover', { to: 'db-b' });
    assert.equal(again.statusCode, 409, again.body);
    assert.match(again.json<{ message: string }>().message, /a switchover to db-b in term 1 is already pending/);

    // The txn conditions themselves: a switchover or forced failover on a term record read before
    // it moved is refused by etcd, and writes nothing.
    const observer = w.daemon.observers.get('c1')!;
    assert.ok(observer);
    const { EtcdObserver } = await import('@pgvip/agent/quorum/etcd');
    const port = new EtcdObserver({ endpoints: etcd.endpoints, prefix, cluster: 'c1', timeoutMs });
    t.after(() => port.close());
    const stale = await port.read();
    assert.ok(stale.ok && stale.view.term !== null);
    await raw.delete().key(`${prefix}/c1/switchover`);

    // Forced failover through the API: term record {2, db-b}, the leader key deleted, and the
    // manual-promote message sent to db-b (the emulated agent refuses it, and the reply says so).
    const forced = await w.api('POST', '/api/v1/clusters/c1/failover', { to: 'db-b', acceptDataLoss: true });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.match(forced.json<{ message: string }>().message, /forcing db-b to primary in term 2.*db-b refused: emulated agent accepts nothing/);
    assert.deepEqual(JSON.parse((await key('term')) ?? 'null'), { term: 2, primary: 'db-b' });
    assert.equal(await key('leader'), null);
    await until(() => w.notified.some((e) => e.type === 'manual-failover' && e.term === 2), 10_000, 'the manual failover recorded');

    const staleSwitchover = await port.requestSwitchover({ to: 'db-b', requestedBy: 'test', after: stale.view.term! });
    assert.ok(!staleSwitchover.ok);
    assert.match(staleSwitchover.why, /the term record moved since it was read \(was term 1 for db-a, now term 2 for db-b\)/);
    assert.equal(await key('switchover'), null);
    const staleForce = await port.forceFailover({ to: 'db-a', after: stale.view.term });
    assert.ok(!staleForce.ok);
    assert.match(staleForce.why, /the term record moved since it was read/);
    assert.deepEqual(JSON.parse((await key('term')) ?? 'null'), { term: 2, primary: 'db-b' });

    // The agents are still polled: one that stops answering is reported once, and again when back.
    await agentA.close();
    await until(() => w.notified.some((e) => e.type === 'node-unreachable' && e.node === 'db-a'), 10_000, 'db-a reported unreachable');
    const down = w.notified.find((e) => e.type === 'node-unreachable')!;
    assert.match(down.detail, /^db-a did not answer 3 consecutive polls \(postgresql unreachable\); it cannot take over meanwhile$/);
    assert.equal((await w.view()).nodes.find((n) => n.node === 'db-a')?.reachable, false);
  });

  test('Given etcd gone, Then the witness says so in its status and keeps serving; it notices etcd back', async (t) => {
    const etcd = await startEtcdCluster(t);
    const prefix = `/pgvip-wt-${randomBytes(3).toString('hex')}`;
    const dbA = agentQuorum(t, etcd, prefix);
    await campaign(dbA, 'db-a');
    const w = await etcdWitness(t, etcd, prefix);
    await until(async () => (await w.view()).primary === 'db-a', 10_000, 'db-a is primary');

    for (let i = 0; i < 3; i++) etcd.freeze(i, true);
    t.after(() => {
      for (let i = 0; i < 3; i++) if (etcd.running(i)) etcd.freeze(i, false);
    });
    await until(async () => (await w.view()).quorum?.reachable === false, 15_000, 'the witness sees etcd gone');
    const started = performance.now();
    const v = await w.view();
    assert.ok(performance.now() - started < 1_000, 'the API answers at once while etcd does not');
    // In the client's words, or gRPC's when the call's own deadline (its share of the witness's bound,
    // observerCallBoundMs: 1 s here) fired first.
    assert.match(v.quorum?.why ?? '', /did not answer within 1000 ms|no time left|DEADLINE_EXCEEDED/);
    assert.match(await w.status(), /^quorum: etcd UNREACHABLE from this witness \(.*\): the status above is etcd's last answer$/m);
    // The last keys etcd answered with stay shown, said to be old.
    assert.equal(v.primary, 'db-a');
    await until(async () => ((await w.view()).quorum?.members ?? []).every((m) => !m.ok), 15_000, 'every member shown down');
    assert.ok(types(w.notified).includes('etcd-unreachable'));
    assert.equal((await w.api('GET', '/health')).statusCode, 200);
    assert.match((await w.api('GET', '/metrics')).body, /pgvip_witness_etcd_reachable\{cluster="c1"\} 0\b/);
    // A command needs etcd: refused, saying why, within the deadline.
    const refused = await w.api('POST', '/api/v1/clusters/c1/maintenance', { on: true });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(refused.json<{ message: string }>().message, /etcd did not take the maintenance key/);

    for (let i = 0; i < 3; i++) etcd.freeze(i, false);
    await until(async () => (await w.view()).quorum?.reachable === true, 20_000, 'the witness sees etcd back');
    assert.ok(types(w.notified).includes('etcd-reachable'));
  });
});

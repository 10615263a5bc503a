// Goal: over real loopback sockets, the witness polls two emulated agents and their PostgreSQL
// ports, grants the primary's lease, and only after db-a's agent and PostgreSQL have both failed
// failureChecks polls (and not while in maintenance) votes for db-b; its metrics say so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { PROTOCOL_VERSION, createPeerClient, createSigner, generateKey, type PeerClient, type VoteReply } from '@pgvip/shared';
import type { ClusterView } from '../src/view.js';
import { agentStatus, emulatedAgent, eventually, fakePostgres, startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const TOKEN = 'e2e-operator-token';

test('the witness grants the lease of a healthy primary and votes for the standby once the primary is down', async (t) => {
  const key = generateKey();
  // Given two emulated agents, db-a primary and db-b its streaming standby in term 1, each with a PostgreSQL port
  const pgA = await fakePostgres(t);
  const pgB = await fakePostgres(t);
  const agentA = await emulatedAgent(t, { cluster: 'c1', node: 'db-a', peer: 'db-b', key, status: agentStatus('c1', 'db-a') });
  const agentB = await emulatedAgent(t, { cluster: 'c1', node: 'db-b', peer: 'db-a', key, status: agentStatus('c1', 'db-b') });
  // And a witness for them, listening on loopback
  const stateDir = tempDir(t);
  const config = witnessConfig({
    stateDir,
    token: TOKEN,
    clusters: [{ name: 'c1', key, nodes: [{ agentPort: agentA.port, pgPort: pgA.port }, { agentPort: agentB.port, pgPort: pgB.port }] }],
  });
  const witness = await startDaemon(t, config);
  await witness.protocol.listen({ host: '127.0.0.1', port: 0 });
  await witness.operator.listen({ host: '127.0.0.1', port: 0 });
  const protocolPort = (witness.protocol.server.address() as { port: number }).port;
  const operatorUrl = `http://127.0.0.1:${(witness.operator.server.address() as { port: number }).port}`;
  witness.startPolling();
  const operator = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await request(`${operatorUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const view = async () => JSON.parse((await operator('GET', '/api/v1/clusters/c1')).text) as ClusterView;
  const client = (as: 'db-a' | 'db-b'): PeerClient => {
    const c = createPeerClient({ signer: createSigner({ cluster: 'c1', sender: as, key }), peers: { witness: { host: '127.0.0.1', port: protocolPort } }, timeoutMs: 1000 });
    t.after(() => c.close());
    return c;
  };
  const dbA = client('db-a');
  const dbB = client('db-b');
  const env = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from }) as const;
  const askVote = async () => (await dbB.send('witness', { ...env('db-b', 2), kind: 'vote-request', lastTerm: 1, lsn: 0x3000060n, timeline: 1 })) as VoteReply;

  // Then it polls both agents and both PostgreSQL ports, and learns term 1 with db-a as primary
  await eventually('both nodes reachable in term 1', async () => {
    const v = await view();
    return v.term === 1 && v.primary === 'db-a' && v.nodes.every((n) => n.reachable && n.pgReachable);
  });
  assert.ok(agentA.statusCalls() > 0 && agentB.statusCalls() > 0 && pgA.probes() > 0 && pgB.probes() > 0);

  // When db-a renews its lease and reports db-b as its synchronous standby
  const lease = await dbA.send('witness', { ...env('db-a', 1), kind: 'lease-request', seq: 1, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' });
  assert.ok(lease.kind === 'lease-reply' && lease.granted, JSON.stringify(lease));
  const sync = await dbA.send('witness', { ...env('db-a', 1), kind: 'sync-update', standby: 'db-b', change: 'restore' });
  assert.ok(sync.kind === 'sync-update-reply' && sync.granted);
  // Then a vote for db-b is refused while db-a is healthy (or, this early, while the witness waits
  // out the promises it may have made before it started)
  const early = await askVote();
  assert.equal(early.granted, false);
  assert.match(early.reason, /witness restarted recently|healthy by the witness's checks|lease promised to db-a/);

  // When db-a's agent becomes unreachable and its PostgreSQL port closes
  await agentA.close();
  await pgA.close();
  // Then after failureChecks polls the witness records the failure
  await eventually('failure of db-a detected', async () => (await view()).events.some((e) => e.type === 'failure-detected' && e.node === 'db-a'));
  const failed = (await view()).nodes[0];
  assert.deepEqual([failed?.reachable, failed?.pgReachable, failed?.promotionBlocker], [false, false, 'agent unreachable from the witness']);

  // When maintenance is on, the vote is refused
  assert.equal((await operator('POST', '/api/v1/clusters/c1/maintenance', { on: true })).status, 200);
  const paused = await askVote();
  assert.deepEqual([paused.granted, paused.reason], [false, 'cluster is in maintenance']);
  assert.equal((await operator('POST', '/api/v1/clusters/c1/maintenance', { on: false })).status, 200);

  // When db-b asks again (the promise made with db-a's last lease, or the start-up wait, may still have to run out)
  let vote = await askVote();
  const deadline = Date.now() + 3000;
  while (!vote.granted && Date.now() < deadline) {
    assert.match(vote.reason, /lease promised to db-a|witness restarted recently/);
    await new Promise((r) => setTimeout(r, 50));
    vote = await askVote();
  }
  // Then the witness votes for db-b in term 2, and logs why
  assert.equal(vote.granted, true, vote.reason);
  assert.equal(vote.primaryOfTerm, 'db-b');
  const after = await view();
  assert.deepEqual([after.term, after.primary], [2, 'db-b']);
  assert.ok(witness.lines.some((l) => l.msg === 'voted for db-b in term 2: primary db-a failed' && l.cluster === 'c1' && l.term === 2));

  // And the metrics reflect it
  const metrics = await operator('GET', '/metrics');
  assert.equal(metrics.status, 200);
  for (const line of [
    'pgvip_witness_term{cluster="c1"} 2',
    'pgvip_witness_primary{cluster="c1",node="db-b"} 1',
    'pgvip_witness_primary{cluster="c1",node="db-a"} 0',
    'pgvip_witness_votes_total{cluster="c1",result="granted"} 1',
    'pgvip_witness_failovers_total{cluster="c1",kind="automatic"} 1',
    'pgvip_witness_node_reachable{cluster="c1",node="db-a"} 0',
    'pgvip_witness_node_reachable{cluster="c1",node="db-b"} 1',
    'pgvip_witness_maintenance{cluster="c1"} 0',
    // db-b runs without a sync-eligible standby until db-a rejoins and catches up
    'pgvip_witness_sync_degraded{cluster="c1"} 1',
    'pgvip_witness_events_total{cluster="c1",event="failure-detected"} 1',
    'pgvip_witness_state_write_errors_total{cluster="c1"} 0',
  ]) {
    assert.ok(metrics.text.includes(`${line}\n`), `missing ${line}`);
  }
  const refused = Number(/^pgvip_witness_votes_total\{cluster="c1",result="refused"\} (\d+)$/m.exec(metrics.text)?.[1]);
  const checksFailed = Number(/^pgvip_witness_checks_failed_total\{cluster="c1",node="db-a"\} (\d+)$/m.exec(metrics.text)?.[1]);
  assert.ok(refused >= 2, `refused ${refused}`);
  assert.ok(checksFailed >= 3, `checks failed ${checksFailed}`);
});

// Goal: the witness never answers a decision that is not on disk, and keeps its word across a
// restart: a vote survives it, the restarted witness refuses every vote while the promises it may
// have made run out, and a corrupt state file stops it instead of starting over at term 0.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PROTOCOL_VERSION, PgvipError, isPgvipError, type PeerClient, type PeerRequest, type VoteReply, type WitnessConfig } from '@pgvip/shared';
import { ClusterRunner } from '../src/cluster-runner.js';
import { createWitnessDaemon } from '../src/daemon.js';
import { nullNotifier } from '../src/events.js';
import { openHistory } from '../src/history.js';
import { createWitnessMetrics } from '../src/metrics.js';
import { stateFileName } from '../src/state-store.js';
import { agentStatus, fastPromiseMs, manualClock, memoryLog, startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const env = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from }) as const;
const lease = (seq: number): PeerRequest => ({ ...env('db-a', 1), kind: 'lease-request', seq, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' });
const vote = (from: string, term: number): PeerRequest => ({ ...env(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: 0x3000060n, timeline: 1 });

function asVote(r: unknown): VoteReply {
  const reply = r as VoteReply;
  assert.equal(reply.kind, 'vote-reply');
  return reply;
}

test('a vote survives a restart, and the restarted witness votes for nobody while its promises run out', async (t) => {
  const stateDir = tempDir(t);
  const config = witnessConfig({ stateDir, clusters: [{ name: 'c1' }] });

  // Given db-a is primary of term 1, db-b its sync standby, and db-a has failed the witness's checks
  const clock1 = manualClock();
  const first = await createWitnessDaemon(config, {
    log: memoryLog().log,
    clock: clock1,
    notifierFor: () => nullNotifier,
  });
  const r1 = first.runners.get('c1');
  assert.ok(r1);
  // (a witness without state learns the term from the primary's status: a lease request teaches none)
  r1.poll('db-a', agentStatus('c1', 'db-a'), true);
  r1.request(lease(1));
  r1.request({ ...env('db-a', 1), kind: 'sync-update', standby: 'db-b', change: 'restore' });
  r1.poll('db-b', agentStatus('c1', 'db-b'), true);
  for (let i = 0; i < 3; i++) r1.poll('db-a', null, false);
  clock1.advance(fastPromiseMs + 10);
  // When db-b asks for term 2
  const granted = asVote(r1.request(vote('db-b', 2)));
  // Then the witness votes, and the vote is in the state file before the reply exists
  assert.equal(granted.granted, true, granted.reason);
  const onDisk = JSON.parse(readFileSync(path.join(stateDir, stateFileName), 'utf8')) as { state: Record<string, unknown> };
  assert.deepEqual(onDisk.state.c1, {
    term: 2, primaryOfTerm: 'db-b', votedTerm: 2, votedFor: 'db-b', syncEligible: null, maintenance: false,
    lastFailover: { term: 2, to: 'db-b', at: new Date(clock1.wallMs()).toISOString() },
  });
  await first.close();

  // When the witness restarts from the same state directory
  const clock2 = manualClock();
  const second = await startDaemon(t, config, { clock: clock2 });
  const r2 = second.runners.get('c1');
  assert.ok(r2);
  // Then it still knows its vote: the same candidate gets the same answer, the other node none
  const { lastFailover, ...known } = r2.durable;
  assert.deepEqual(known, { term: 2, primaryOfTerm: 'db-b', votedTerm: 2, votedFor: 'db-b', syncEligible: null, maintenance: false });
  assert.deepEqual([lastFailover?.term, lastFailover?.to], [2, 'db-b'], 'and the failover it voted for');
  assert.equal(asVote(r2.request(vote('db-b', 2))).granted, true);
  const again = asVote(r2.request(vote('db-a', 2)));
  assert.deepEqual([again.granted, again.reason], [false, 'term 2 is not above 2']);
  // And even with db-b failed by its checks, it refuses term 3 until a full promise has passed since its start
  r2.poll('db-a', agentStatus('c1', 'db-a', { term: 2, primaryOfTerm: 'db-b', role: 'standby', pg: { inRecovery: true, writable: false, streaming: true } }), true);
  for (let i = 0; i < 3; i++) r2.poll('db-b', null, false);
  clock2.advance(fastPromiseMs - 20);
  const early = asVote(r2.request(vote('db-a', 3)));
  assert.deepEqual([early.granted, early.reason], [false, 'witness restarted recently and waits out the promises it may have made']);
  // And the refusal is logged with its reason, cluster and term
  assert.ok(second.lines.some((l) => l.msg === 'refused db-a in term 3: witness restarted recently and waits out the promises it may have made' && l.cluster === 'c1' && l.term === 2));
  // And once the wait is over the restart no longer holds the vote back (here: db-a is not the sync standby)
  clock2.advance(40);
  const later = asVote(r2.request(vote('db-a', 3)));
  assert.equal(later.granted, false);
  assert.match(later.reason, /not the sync-eligible standby/);
  assert.equal(r2.durable.term, 2);
});

test('a corrupt state file stops the witness with PGVIP_STATE_CORRUPT and is left as it was', async (t) => {
  const stateDir = tempDir(t);
  const config = witnessConfig({ stateDir, clusters: [{ name: 'c1' }] });
  const file = path.join(stateDir, stateFileName);
  writeFileSync(file, '{"format":"pgvip-state","version":1,"state":{"c1":{"term":"seven"}}}\n');
  await assert.rejects(createWitnessDaemon(config, { log: memoryLog().log, notifierFor: () => nullNotifier }), (e) => isPgvipError(e, 'PGVIP_STATE_CORRUPT') && e.message.includes(file));
  assert.equal(readFileSync(file, 'utf8'), '{"format":"pgvip-state","version":1,"state":{"c1":{"term":"seven"}}}\n');
});

test('clusters absent from the config keep their state in the file', async (t) => {
  const stateDir = tempDir(t);
  const file = path.join(stateDir, stateFileName);
  const old = { term: 9, primaryOfTerm: 'db-a', votedTerm: 9, votedFor: 'db-a', syncEligible: null, maintenance: false };
  writeFileSync(file, JSON.stringify({ format: 'pgvip-state', version: 1, state: { retired: old } }));
  const daemon = await startDaemon(t, witnessConfig({ stateDir, clusters: [{ name: 'c1' }] }), { clock: manualClock() });
  daemon.runners.get('c1')?.poll('db-a', agentStatus('c1', 'db-a'), true);
  daemon.runners.get('c1')?.request(lease(1));
  const state = (JSON.parse(readFileSync(file, 'utf8')) as { state: Record<string, { term: number }> }).state;
  assert.deepEqual(state.retired, old);
  assert.equal(state.c1?.term, 1);
});

test('when the state cannot be persisted, the vote is not given and nothing changes', async (t) => {
  const stateDir = tempDir(t);
  const config: WitnessConfig = witnessConfig({ stateDir, clusters: [{ name: 'c1' }] });
  const cluster = config.clusters[0];
  assert.ok(cluster);
  const clock = manualClock();
  const { log } = memoryLog();
  const history = await openHistory({ dir: path.join(stateDir, 'history'), clusters: ['c1'], clock, log });
  t.after(() => history.close());
  let durable = { term: 1, primaryOfTerm: 'db-a', votedTerm: 0, votedFor: null, syncEligible: 'db-b', maintenance: false };
  let failWrites = false;
  const sent: PeerRequest[] = [];
  const peers: PeerClient = {
    send: (_to, msg) => {
      sent.push(msg);
      return Promise.reject(new PgvipError('PGVIP_PEER_UNREACHABLE', 'test peer'));
    },
    status: () => Promise.reject(new PgvipError('PGVIP_PEER_UNREACHABLE', 'test peer')),
    close: () => Promise.resolve(),
  };
  const metrics = createWitnessMetrics({ defaultMetrics: false });
  const runner = new ClusterRunner({
    cluster,
    self: 'witness',
    store: {
      path: '/nonexistent',
      durable: () => durable,
      save: (_c, d) => {
        if (failWrites) throw new PgvipError('PGVIP_STATE_WRITE', 'disk full (test)');
        durable = d as typeof durable;
      },
    },
    peers,
    history,
    notifier: nullNotifier,
    metrics,
    clock,
    log,
  });
  // Given db-a failed and every promise ran out
  runner.poll('db-b', agentStatus('c1', 'db-b'), true);
  for (let i = 0; i < 3; i++) runner.poll('db-a', null, false);
  clock.advance(fastPromiseMs + 10);
  const before = runner.state;
  // When the disk refuses the write of the vote
  failWrites = true;
  assert.throws(() => runner.request(vote('db-b', 2)), (e) => isPgvipError(e, 'PGVIP_STATE_WRITE'));
  // Then the step never happened: same state, no reply, no event; nor does a forced failover send anything
  assert.equal(runner.state, before);
  assert.throws(() => runner.operator({ kind: 'failover', to: 'db-b', acceptDataLoss: true, by: 'test' }), (e) => isPgvipError(e, 'PGVIP_STATE_WRITE'));
  assert.equal(runner.state, before);
  assert.deepEqual(sent, []);
  assert.deepEqual(history.recent('c1', 10).map((e) => e.type), ['failure-detected']);
  // And each discarded step is counted, for deploy/prometheus's PgvipStateWriteErrors
  assert.match(await metrics.registry.getSingleMetricAsString('pgvip_witness_state_write_errors_total'), /^pgvip_witness_state_write_errors_total\{cluster="c1"\} 2$/m);
  // And once the disk works again, the same request gets its vote
  failWrites = false;
  assert.equal(asVote(runner.request(vote('db-b', 2))).granted, true);
  assert.equal(durable.votedFor, 'db-b');
});

// Goal: each node is polled every heartbeat with the agent's status and a PostgreSQL probe in
// parallel, polls of one node never overlap, a status speaking for someone else counts as
// unreachable, and the probe tells a live PostgreSQL port from a refused or a frozen one.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { PgvipError, type AgentStatus, type PeerClient } from '@pgvip/shared';
import { systemClock } from '../src/clock.js';
import { createWitnessMetrics } from '../src/metrics.js';
import { probePostgres } from '../src/pg-probe.js';
import { createPoller } from '../src/poller.js';
import { agentStatus, closedPort, fakePostgres, memoryLog } from './witness-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the probe sees a live server, a refused port, and a frozen server that only the kernel answers', async (t) => {
  // Given a port that behaves like PostgreSQL
  const live = await fakePostgres(t);
  // And one whose process never reads (the kernel still completes the TCP handshake, as for a frozen postmaster)
  const sockets: Socket[] = [];
  const frozen = createServer({ pauseOnConnect: true }, (s) => void sockets.push(s));
  await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    frozen.close();
  });
  const frozenPort = (frozen.address() as { port: number }).port;
  // Then only the live one counts as reachable, and the frozen one within the timeout
  assert.equal(await probePostgres('127.0.0.1', live.port, 300), true);
  assert.equal(live.probes(), 1);
  assert.equal(await probePostgres('127.0.0.1', closedPort, 300), false);
  const started = Date.now();
  assert.equal(await probePostgres('127.0.0.1', frozenPort, 150), false);
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= 140 && tookMs < 1000, `took ${tookMs} ms`);
});

test('polls of one node never overlap, even when the agent answers slower than a heartbeat', async (t) => {
  const heartbeatMs = 40;
  let concurrent = 0;
  let maxConcurrent = 0;
  let started = 0;
  // Given an agent whose status takes 2.5 heartbeats
  const peers: PeerClient = {
    async status(to) {
      started++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(heartbeatMs * 2.5);
      concurrent--;
      return agentStatus('c1', to);
    },
    send: () => Promise.reject(new PgvipError('PGVIP_PEER_UNREACHABLE', 'not used')),
    close: () => Promise.resolve(),
  };
  const polls: { node: string; status: AgentStatus | null; pg: boolean }[] = [];
  const metrics = createWitnessMetrics({ defaultMetrics: false });
  const poller = createPoller({
    cluster: 'c1',
    nodes: [{ id: 'db-a', postgres: { host: '127.0.0.1', port: 1 } }],
    heartbeatMs,
    timeoutMs: 30,
    peers,
    onPoll: (node, status, pg) => void polls.push({ node, status, pg }),
    clock: systemClock,
    metrics,
    log: memoryLog().log,
    probe: async () => true,
  });
  t.after(() => poller.stop());
  // When it runs for about 12 heartbeats
  poller.start();
  await sleep(heartbeatMs * 12);
  await poller.stop();
  const afterStop = polls.length;
  // Then there was never more than one poll of the node in flight, the skipped heartbeats were
  // not made up for, and every poll that ended before stop() reached the runner
  assert.equal(maxConcurrent, 1);
  assert.ok(started >= 2 && started <= 6, `started ${started} polls`);
  assert.ok(polls.length >= started - 1 && polls.every((p) => p.node === 'db-a' && p.status?.from === 'db-a' && p.pg));
  // And nothing is polled after stop()
  await sleep(heartbeatMs * 3);
  assert.equal(polls.length, afterStop);
  assert.equal(concurrent, 0);
  const text = await metrics.registry.metrics();
  assert.match(text, /^pgvip_witness_poll_duration_seconds_count [2-6]$/m);
});

test('a status that speaks for another node or cluster counts as unreachable; failures become null', async (t) => {
  const answers: (AgentStatus | Error)[] = [agentStatus('c1', 'db-b'), agentStatus('other', 'db-a'), new PgvipError('PGVIP_PEER_TIMEOUT', 'slow'), agentStatus('c1', 'db-a')];
  const peers: PeerClient = {
    status: async () => {
      const next = answers.shift();
      if (next === undefined || next instanceof Error) throw next ?? new Error('no more answers');
      return next;
    },
    send: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
  };
  const seen: (string | null)[] = [];
  const { log, lines } = memoryLog();
  const poller = createPoller({
    cluster: 'c1',
    nodes: [{ id: 'db-a', postgres: { host: '127.0.0.1', port: closedPort } }],
    heartbeatMs: 30,
    timeoutMs: 20,
    peers,
    onPoll: (_node, status) => void seen.push(status === null ? null : `${status.cluster}/${status.from}`),
    clock: systemClock,
    metrics: createWitnessMetrics({ defaultMetrics: false }),
    log,
  });
  t.after(() => poller.stop());
  poller.start();
  while (seen.length < 4) await sleep(10);
  await poller.stop();
  assert.deepEqual(seen.slice(0, 4), [null, null, null, 'c1/db-a']);
  // And reachability changes are logged once each, not every heartbeat
  const transitions = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('db-a:'));
  assert.deepEqual(transitions.map((l) => l.msg), ['db-a: agent unreachable, postgresql unreachable', 'db-a: postgresql unreachable']);
});

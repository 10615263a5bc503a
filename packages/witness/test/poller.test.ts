// Goal: each node is polled every heartbeat with the agent's status, and its PostgreSQL port is
// probed whenever the core needs that signal (every poll whose status fails carries a probe of its
// own) and otherwise only now and then; polls of one node never overlap, a status speaking for
// someone else counts as unreachable, and the probe tells a live PostgreSQL port from a refused or
// a frozen one.
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

/** A poller of one node whose agent answers (or fails) as `agent` says, with a counting probe. */
function probePoller(
  t: { after(fn: () => unknown): void },
  o: {
    heartbeatMs: number;
    timeoutMs: number;
    probeRefreshMs?: number;
    agent: () => Promise<AgentStatus>;
    pgUp: () => boolean;
  },
) {
  const polls: { status: AgentStatus | null; pg: boolean; probesSoFar: number }[] = [];
  let probes = 0;
  const peers: PeerClient = { status: () => o.agent(), send: () => Promise.reject(new Error('not used')), close: () => Promise.resolve() };
  const poller = createPoller({
    cluster: 'c1',
    nodes: [{ id: 'db-a', postgres: { host: '127.0.0.1', port: 1 } }],
    heartbeatMs: o.heartbeatMs,
    timeoutMs: o.timeoutMs,
    peers,
    onPoll: (_node, status, pg) => void polls.push({ status, pg, probesSoFar: probes }),
    clock: systemClock,
    metrics: createWitnessMetrics({ defaultMetrics: false }),
    log: memoryLog().log,
    probe: async () => {
      probes++;
      return o.pgUp();
    },
    ...(o.probeRefreshMs === undefined ? {} : { probeRefreshMs: o.probeRefreshMs }),
  });
  t.after(() => poller.stop());
  return { poller, polls, probes: () => probes };
}

test('a node whose agent answers is probed at the first poll and then only every probeRefreshMs', async (t) => {
  // Given a healthy agent and PostgreSQL, a 30 ms heartbeat and a probe refresh every 300 ms
  const { poller, polls, probes } = probePoller(t, { heartbeatMs: 30, timeoutMs: 20, probeRefreshMs: 300, agent: async () => agentStatus('c1', 'db-a'), pgUp: () => true });
  // When it runs for about 20 heartbeats (600 ms)
  poller.start();
  await sleep(620);
  await poller.stop();
  // Then PostgreSQL was probed at the first poll and at each refresh, not every heartbeat
  assert.ok(polls.length >= 12, `${polls.length} polls`);
  assert.ok(probes() >= 2 && probes() <= 3, `${probes()} probes in ${polls.length} polls`);
  // And every poll reported the latest probe's result
  assert.ok(polls.every((p) => p.status !== null && p.pg));
});

test('a poll whose agent does not answer is judged with a probe made during that poll', async (t) => {
  // Given a node that is healthy at first
  let agentUp = true;
  let pgUp = true;
  const { poller, polls } = probePoller(t, {
    heartbeatMs: 30,
    timeoutMs: 20,
    agent: async () => {
      if (!agentUp) throw new PgvipError('PGVIP_PEER_UNREACHABLE', 'connection refused');
      return agentStatus('c1', 'db-a');
    },
    pgUp: () => pgUp,
  });
  poller.start();
  while (polls.length < 3) await sleep(5);
  // When its agent stops answering while PostgreSQL is still up, and later PostgreSQL goes too
  agentUp = false;
  const firstDown = polls.length;
  while (polls.length < firstDown + 3) await sleep(5);
  pgUp = false;
  const pgDown = polls.length;
  while (polls.length < pgDown + 3) await sleep(5);
  await poller.stop();
  // Then each poll without an answer from the agent carried a probe of its own: the first one
  // already saw PostgreSQL up, and the first one after PostgreSQL went saw it down
  const withoutAgent = polls.slice(firstDown);
  for (const [i, p] of withoutAgent.entries()) {
    const before = i === 0 ? (polls[firstDown - 1]?.probesSoFar ?? 0) : (withoutAgent[i - 1]?.probesSoFar ?? 0);
    if (p.status === null) assert.ok(p.probesSoFar > before, `poll ${firstDown + i} without the agent reused an older probe`);
  }
  assert.equal(withoutAgent[0]?.status, null);
  assert.equal(withoutAgent[0]?.pg, true);
  const afterPg = polls.slice(pgDown + 1);
  assert.ok(afterPg.length > 0 && afterPg.every((p) => p.status === null && !p.pg));
});

test('a status slower than its head start gets a probe in parallel, and the poll still ends within the timeout', async (t) => {
  // Given an agent that answers healthy polls quickly, then takes 60 ms (the head start is 100/8 = 12.5 ms)
  let slow = false;
  const { poller, polls } = probePoller(t, {
    heartbeatMs: 150,
    timeoutMs: 100,
    agent: async () => {
      if (slow) await sleep(60);
      return agentStatus('c1', 'db-a');
    },
    pgUp: () => true,
  });
  poller.start();
  while (polls.length < 2) await sleep(5);
  const quick = polls.at(-1)?.probesSoFar ?? 0;
  slow = true;
  const from = polls.length;
  while (polls.length < from + 2) await sleep(5);
  await poller.stop();
  // Then the quick polls after the first made no probe, and each slow poll made one
  assert.equal(quick, 1);
  const slowPolls = polls.slice(from);
  assert.ok(
    slowPolls.every((p, i) => p.probesSoFar === quick + i + 1),
    JSON.stringify(slowPolls.map((p) => p.probesSoFar)),
  );
});

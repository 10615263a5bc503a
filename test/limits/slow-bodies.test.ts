// Goal: an agent whose port is flooded with slow-body connections (headers, then a byte every few
// seconds, never finishing) keeps answering /health, /primary and /replica, and cuts the slow
// connections by its request timeout. Given the real agent daemon (main.ts, from source) with its
// open-file limit lowered to 256 by prlimit, when 400 such connections are opened — more than it
// has file descriptors — then every health check made meanwhile on a fresh connection is answered,
// no slow connection outlives the request timeout by more than the check interval, and the refusals
// take a handful of log lines. (Before the limits, the same attack left /health unreachable for as
// long as the connections stayed open.) Loopback only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverLimits } from '@pgvip/shared';
import { agentConfigFile, freePort, probeHealth, runDaemon, slowBodies, waitForHttp } from './attack.js';

test('an agent with 256 file descriptors keeps answering /health through 400 slow-body connections, and cuts them by its request timeout', async (t) => {
  const [agentPort, peer, witness, pg] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const { file } = agentConfigFile({ agent: agentPort, peer, witness, pg });
  const agent = runDaemon('packages/agent/src/main.ts', file, 256);
  t.after(() => agent.stop());
  await waitForHttp(`http://127.0.0.1:${agentPort}/health`, agent);

  const attack = slowBodies({ port: agentPort, path: '/v1/lease', connections: 400, byteEveryMs: 2_000, reopen: false });
  t.after(() => attack.stop());
  await new Promise((r) => setTimeout(r, 500));
  const probe = probeHealth({ port: agentPort, path: '/health', everyMs: 200, timeoutMs: 2_000 });
  const attackMs = serverLimits.requestTimeoutMs + 2 * serverLimits.timeoutCheckIntervalMs + 1_000;
  await new Promise((r) => setTimeout(r, attackMs));
  await probe.stop();

  const { okMs, failed } = probe.result;
  assert.equal(failed, 0, `${failed} of ${okMs.length + failed} health checks went unanswered during the attack`);
  assert.ok(okMs.length >= 20, `only ${okMs.length} health checks were made`);
  for (const path of ['/primary', '/replica']) {
    const res = await fetch(`http://127.0.0.1:${agentPort}${path}`, { signal: AbortSignal.timeout(2_000) });
    assert.equal(res.status, 503, `${path}: a node without PostgreSQL is neither primary nor replica`);
  }

  // Every slow connection was ended by the server: the ones over the cap at once, the rest when the
  // request timeout ran out — and none before the timeout came near, for a connection that fits.
  const cut = attack.stats.cutAfterMs;
  assert.equal(attack.stats.open(), 0, `${attack.stats.open()} slow connections are still open after ${attackMs} ms`);
  assert.equal(cut.length, 400, `${attack.stats.opened} opened, ${attack.stats.failed} failed to connect, ${cut.length} cut`);
  const longest = Math.max(...cut);
  assert.ok(longest >= serverLimits.requestTimeoutMs - 500, `the longest slow connection lived ${Math.round(longest)} ms`);
  assert.ok(longest <= serverLimits.requestTimeoutMs + 2 * serverLimits.timeoutCheckIntervalMs, `the longest slow connection lived ${Math.round(longest)} ms`);

  // 400 refusals, a few lines: each kind logs its first 5 per minute.
  const lines = agent
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { kind?: string; msg: string });
  const evicted = lines.filter((l) => l.kind === 'connection-evicted');
  const timedOut = lines.filter((l) => l.kind === 'request-timeout');
  assert.ok(evicted.length >= 1 && evicted.length <= 5, `${evicted.length} eviction lines`);
  assert.ok(timedOut.length >= 1 && timedOut.length <= 5, `${timedOut.length} timeout lines`);
  assert.equal(agent.child.exitCode, null, `the agent exited:\n${agent.output()}`);
});

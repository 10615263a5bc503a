// Goal: both witness servers carry the HTTP limits of every pgvip server, and refused requests are
// logged rate-limited: 2,000 requests with a wrong bearer token on the operator port, or unsigned on
// the peer port, print the first 5 refusals of each kind, not 2,000 lines (20,000 bad-token requests
// once printed 20,000 warn lines in 3 s).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxConnections, serverLimits } from '@pgvip/shared';
import { startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const TOKEN = 'operator-token-0123456789';

test('the peer and operator servers have the request, header, idle and keep-alive timeouts and the body limits', async (t) => {
  const daemon = await startDaemon(t, witnessConfig({ stateDir: tempDir(t), token: TOKEN, clusters: [{ name: 'c1' }] }));
  for (const app of [daemon.protocol, daemon.operator]) {
    assert.equal(app.server.requestTimeout, serverLimits.requestTimeoutMs);
    assert.equal(app.server.headersTimeout, serverLimits.headersTimeoutMs);
    assert.equal(app.server.timeout, serverLimits.idleTimeoutMs);
    assert.equal(app.server.keepAliveTimeout, serverLimits.keepAliveTimeoutMs);
  }
  assert.equal(daemon.protocol.initialConfig.bodyLimit, 64 * 1024);
  assert.equal(daemon.operator.initialConfig.bodyLimit, 16 * 1024);
  // The cap follows the open-file limit: a quarter (at most 256) kept free, the rest for two servers.
  assert.equal(maxConnections(1024), 384);
  assert.equal(maxConnections(256), 96);
  assert.equal(maxConnections(1_048_576), serverLimits.maxConnections);
  assert.equal(maxConnections(null), serverLimits.maxConnections);
});

test('2,000 bad-token and 2,000 unsigned requests log 5 refusals of each kind', async (t) => {
  const daemon = await startDaemon(t, witnessConfig({ stateDir: tempDir(t), token: TOKEN, clusters: [{ name: 'c1' }] }));
  for (let i = 0; i < 2_000; i++) {
    const bad = await daemon.operator.inject({ method: 'GET', url: '/api/v1/clusters', headers: { authorization: `Bearer wrong-${i}` } });
    assert.equal(bad.statusCode, 401);
    const unsigned = await daemon.protocol.inject({ method: 'POST', url: '/v1/lease', headers: { 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(unsigned.statusCode, 401);
  }
  const refusals = (code: string) => daemon.lines.filter((l) => l.kind === code && l.level === 40);
  assert.equal(refusals('PGVIP_OPERATOR_AUTH').length, 5, 'operator port');
  assert.equal(refusals('PGVIP_AUTH_MISSING').length, 5, 'peer port');
  assert.match(refusals('PGVIP_OPERATOR_AUTH')[0]!.msg, /operator API request refused/);
  assert.match(refusals('PGVIP_AUTH_MISSING')[0]!.msg, /protocol request refused: PGVIP_AUTH_MISSING/);
  // At shutdown, the rest are counted in one line each.
  await daemon.close();
  const summaries = daemon.lines.filter((l) => typeof l.suppressed === 'number');
  assert.deepEqual(summaries.map((l) => [l.kind, l.suppressed]).sort(), [
    ['PGVIP_AUTH_MISSING', 1995],
    ['PGVIP_OPERATOR_AUTH', 1995],
  ]);
});

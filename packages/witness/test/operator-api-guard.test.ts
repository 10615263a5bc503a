// Goal: the operator API answers only its own clients. A request must name the API in its Host
// (no DNS rebinding), a browser's Origin must be the API's own (no page of another origin), every
// POST must be JSON (so a browser has to ask first, and is never allowed), and a token is needed
// unless operatorApi.auth: disabled says otherwise, which the witness then warns about. Each
// refusal is a coded 4xx and changes nothing; the CLI still works against the real server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { InjectOptions } from 'fastify';
import { PROTOCOL_VERSION, isPgvipError, parseConfigText, type LeaseRequest, type WitnessConfig } from '@pgvip/shared';
import { exitCodes } from '../src/cli/errors.js';
import { createWitnessDaemon } from '../src/daemon.js';
import { nullNotifier } from '../src/events.js';
import { allowedOperatorHosts, hostName } from '../src/operator-guard.js';
import { runPgvip, writeFile600 } from './cli-helpers.js';
import { agentStatus, manualClock, memoryLog, startDaemon, tempDir, witnessConfig, witnessDocument } from './witness-helpers.js';

const TOKEN = 'guard-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

const lease = (seq: number): LeaseRequest => ({ v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'lease-request', seq, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' });

/** A witness serving c1, whose db-a is primary of term 1 with an eligible standby db-b: a switchover would succeed. */
async function setup(t: TestContext, config?: (stateDir: string) => WitnessConfig) {
  const stateDir = tempDir(t);
  const daemon = await startDaemon(t, config?.(stateDir) ?? witnessConfig({ stateDir, token: TOKEN, clusters: [{ name: 'c1' }] }), { clock: manualClock() });
  const c1 = daemon.runners.get('c1');
  assert.ok(c1);
  // The witness learns term 1 from the agents' reports before db-a asks for its lease.
  c1.poll('db-a', agentStatus('c1', 'db-a'), true);
  c1.poll('db-b', agentStatus('c1', 'db-b'), true);
  const granted = c1.request(lease(1));
  assert.ok(granted.kind === 'lease-reply' && granted.granted, JSON.stringify(granted));
  await daemon.history.flush();
  const snapshot = async () => ({ durable: c1.durable, file: readFileSync(daemon.stateFile, 'utf8'), events: (await daemon.history.read({ limit: 1000 })).length, switchover: c1.state.switchover });
  return { daemon, c1, snapshot };
}

async function expectRefused(
  s: Awaited<ReturnType<typeof setup>>,
  request: InjectOptions,
  status: number,
  code: string,
) {
  const res = await s.daemon.operator.inject(request);
  const what = `${request.method ?? 'GET'} ${request.url ?? ''} ${JSON.stringify(request.headers)}`;
  assert.equal(res.statusCode, status, `${what}: ${res.body}`);
  assert.equal((res.json() as { error: { code: string } }).error.code, code, what);
  // Never a CORS grant, whatever was asked.
  assert.deepEqual(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), [], what);
  return res;
}

test('a request must name this API in its Host: loopback, localhost, the bind address or a configured name', async (t) => {
  const s = await setup(t, (stateDir) => {
    const doc = witnessDocument({ stateDir, token: TOKEN, clusters: [{ name: 'c1' }] }) as { operatorApi: Record<string, unknown> };
    doc.operatorApi.hostNames = ['witness.internal'];
    return parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml');
  });
  const before = await s.snapshot();
  // When a request names another host (what a DNS-rebinding page's requests carry), even with the token
  for (const host of ['evil.example', 'evil.example:8010', '10.9.9.9:8010', 'localhost.evil.example:8010', '127.0.0.1.nip.io:8010', '[::2]:8010']) {
    for (const [method, url] of [['GET', '/api/v1/clusters'], ['POST', '/api/v1/clusters/c1/switchover'], ['GET', '/health'], ['GET', '/']] as const) {
      // Then it is a coded 421 and nothing changes
      await expectRefused(s, { method, url, headers: { ...auth, ...json, host }, ...(method === 'POST' ? { payload: '{}' } : {}) }, 421, 'PGVIP_OPERATOR_HOST');
    }
  }
  assert.deepEqual(await s.snapshot(), before);
  // And every name of the API itself is accepted
  for (const host of ['127.0.0.1:8010', '127.0.0.1', '127.1.2.3:8010', 'localhost:8010', 'LOCALHOST', 'localhost.:8010', 'dash.localhost:8010', '[::1]:8010', 'witness.internal:8010']) {
    const res = await s.daemon.operator.inject({ method: 'GET', url: '/api/v1/clusters', headers: { ...auth, host } });
    assert.equal(res.statusCode, 200, `${host}: ${res.body}`);
  }
  // The log says why, for the operator wondering what knocked
  const line = s.daemon.lines.find((l) => l.code === 'PGVIP_OPERATOR_HOST');
  assert.match(line?.msg ?? '', /operator API request refused: Host "evil\.example" .*add the name to operatorApi\.hostNames/);
});

test('the names of the Host check: the port and brackets do not matter, a wildcard bind accepts its own addresses', () => {
  assert.equal(hostName('LocalHost:8010'), 'localhost');
  assert.equal(hostName('[::1]:8010'), '::1');
  assert.equal(hostName('witness.internal.'), 'witness.internal');
  const wildcard = allowedOperatorHosts('0.0.0.0', []);
  assert.ok(wildcard.has('127.0.0.1') && wildcard.has('localhost') && wildcard.has('::1'));
  assert.deepEqual([...allowedOperatorHosts('10.0.2.20', ['Witness.Internal'])], ['localhost', '::1', '10.0.2.20', 'witness.internal']);
});

test('a browser page of another origin is refused, preflights get no CORS grant; the API\'s own origin may call', async (t) => {
  const s = await setup(t);
  const before = await s.snapshot();
  const host = '127.0.0.1:8010';
  // When a page on another origin (another port, another name, a sandboxed frame) sends a command,
  // with or without the token
  for (const origin of ['http://127.0.0.1:9999', 'http://evil.example', 'http://localhost:8010', 'null', 'file://', 'http://127.0.0.1:8010.evil.example']) {
    for (const headers of [{ ...json, host, origin }, { ...auth, ...json, host, origin }]) {
      await expectRefused(s, { method: 'POST', url: '/api/v1/clusters/c1/switchover', headers, payload: '{}' }, 403, 'PGVIP_OPERATOR_ORIGIN');
      await expectRefused(s, { method: 'GET', url: '/api/v1/clusters', headers }, 403, 'PGVIP_OPERATOR_ORIGIN');
    }
    // And a browser's preflight for a JSON POST gets no Access-Control-Allow-Origin: the browser then sends nothing
    await expectRefused(s, { method: 'OPTIONS', url: '/api/v1/clusters/c1/switchover', headers: { host, origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } }, 403, 'PGVIP_OPERATOR_ORIGIN');
  }
  // Then nothing changed
  assert.deepEqual(await s.snapshot(), before);
  // The dashboard's own origin (a browser sends Origin on every POST) and clients without Origin are served
  const own = await s.daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/maintenance', headers: { ...auth, ...json, host, origin: 'http://127.0.0.1:8010' }, payload: '{"on":true}' });
  assert.equal(own.statusCode, 200, own.body);
  const cli = await s.daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/maintenance', headers: { ...auth, ...json, host }, payload: '{"on":false}' });
  assert.equal(cli.statusCode, 200, cli.body);
});

test('every POST must say Content-Type: application/json, so a form or a simple fetch cannot send a command', async (t) => {
  const s = await setup(t);
  const before = await s.snapshot();
  // When a command comes without a content type (a no-body POST), or as form, text or a lookalike
  // type, even with the token
  const cases: [Record<string, string>, string | undefined][] = [
    [{}, undefined],
    [{}, '{"to":"db-b"}'],
    [{ 'content-type': 'text/plain' }, '{"to":"db-b"}'],
    [{ 'content-type': 'text/plain;charset=UTF-8' }, '{}'],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, ''],
    [{ 'content-type': 'multipart/form-data; boundary=x' }, '--x--'],
    [{ 'content-type': 'application/jsonp' }, '{}'],
    [{ 'content-type': 'application/x-json' }, '{}'],
  ];
  for (const [headers, payload] of cases) {
    for (const command of ['switchover', 'failover', 'maintenance']) {
      // Then each is a coded 415 and changes nothing
      await expectRefused(s, { method: 'POST', url: `/api/v1/clusters/c1/${command}`, headers: { ...auth, ...headers }, ...(payload === undefined ? {} : { payload }) }, 415, 'PGVIP_OPERATOR_CONTENT_TYPE');
    }
  }
  assert.deepEqual(await s.snapshot(), before);
  // JSON with a charset parameter is JSON
  const ok = await s.daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/maintenance', headers: { ...auth, 'content-type': 'Application/JSON; charset=utf-8' }, payload: '{"on":true}' });
  assert.equal(ok.statusCode, 200, ok.body);
});

test('without the token nothing but /health and the dashboard page is served, for every method', async (t) => {
  const s = await setup(t);
  const before = await s.snapshot();
  for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Token ${TOKEN}` }]) {
    for (const url of ['/api/v1/clusters/c1/switchover', '/api/v1/clusters/c1/maintenance', '/api/v1/clusters/c1/failover']) {
      await expectRefused(s, { method: 'POST', url, headers: { ...headers, ...json }, payload: '{"on":true,"acceptDataLoss":true}' }, 401, 'PGVIP_OPERATOR_AUTH');
    }
    for (const url of ['/api/v1/clusters', '/api/v1/clusters/c1', '/api/v1/clusters/c1/history', '/metrics']) {
      await expectRefused(s, { method: 'GET', url, headers }, 401, 'PGVIP_OPERATOR_AUTH');
    }
  }
  assert.deepEqual(await s.snapshot(), before);
  assert.equal((await s.daemon.operator.inject({ method: 'GET', url: '/health' })).statusCode, 200);
});

test('operatorApi.auth: disabled serves without a token, warns at start, and still refuses foreign hosts, origins and non-JSON posts', async (t) => {
  const s = await setup(t, (stateDir) => witnessConfig({ stateDir, operatorAuth: 'disabled', clusters: [{ name: 'c1' }] }));
  // The start-up warning names the setting and the fix
  const warning = s.daemon.lines.find((l) => l.level === 40 && /OPERATOR API WITHOUT A TOKEN/.test(l.msg));
  assert.ok(warning, 'a warning at start');
  assert.match(warning.msg, /any local user can switch over.*set operatorApi\.tokenFile and remove auth: disabled/);
  assert.equal((await s.daemon.operator.inject({ method: 'GET', url: '/api/v1/clusters' })).statusCode, 200);
  const before = await s.snapshot();
  await expectRefused(s, { method: 'POST', url: '/api/v1/clusters/c1/switchover', headers: { host: 'evil.example:8010', ...json }, payload: '{}' }, 421, 'PGVIP_OPERATOR_HOST');
  await expectRefused(s, { method: 'POST', url: '/api/v1/clusters/c1/switchover', headers: { origin: 'http://127.0.0.1:9999', ...json }, payload: '{}' }, 403, 'PGVIP_OPERATOR_ORIGIN');
  await expectRefused(s, { method: 'POST', url: '/api/v1/clusters/c1/switchover' }, 415, 'PGVIP_OPERATOR_CONTENT_TYPE');
  assert.deepEqual(await s.snapshot(), before);
});

test('the witness refuses to start without its token file, naming operatorApi.tokenFile and the fix', async (t) => {
  const stateDir = tempDir(t);
  const doc = witnessDocument({ stateDir, token: TOKEN, clusters: [{ name: 'c1' }] }) as { operatorApi: Record<string, unknown> };
  // Given a config without a token file: the loader refuses it
  const { tokenFile, ...withoutToken } = doc.operatorApi;
  assert.throws(
    () => parseConfigText(JSON.stringify({ ...doc, operatorApi: withoutToken }), 'witness', 'witness.yaml'),
    (e) => isPgvipError(e, 'PGVIP_CONFIG_INVALID') && /operatorApi\.tokenFile: is required: .*openssl rand -hex 32 > \/etc\/pgvip\/operator\.token.*operatorApi\.auth: disabled/.test(e.detail),
  );
  // And a config built in code without one is refused by the daemon itself
  const config = parseConfigText(JSON.stringify(doc), 'witness', 'witness.yaml');
  const { log } = memoryLog();
  const noFile: WitnessConfig = { ...config, operatorApi: { ...config.operatorApi, tokenFile: undefined } };
  await assert.rejects(createWitnessDaemon(noFile, { log, notifierFor: () => nullNotifier }), (e) => isPgvipError(e, 'PGVIP_CONFIG_INVALID') && /^operatorApi\.tokenFile: is required/.test(e.detail));
  // And a token file that is missing or readable by others stops it too
  const missing: WitnessConfig = { ...config, operatorApi: { ...config.operatorApi, tokenFile: path.join(stateDir, 'missing.token') } };
  await assert.rejects(createWitnessDaemon(missing, { log, notifierFor: () => nullNotifier }), (e) => isPgvipError(e, 'PGVIP_CONFIG_UNREADABLE') && /^operatorApi\.tokenFile: .*missing\.token does not exist/.test(e.detail));
  const exposed = writeFile600(path.join(stateDir, 'exposed.token'), `${TOKEN}\n`, 0o644);
  await assert.rejects(createWitnessDaemon({ ...config, operatorApi: { ...config.operatorApi, tokenFile: exposed } }, { log, notifierFor: () => nullNotifier }), (e) => isPgvipError(e, 'PGVIP_CONFIG_INVALID') && /chmod 600/.test(e.detail));
  assert.equal(typeof tokenFile, 'string');
});

test('the CLI talks to the real witness: token, JSON on every POST, and its user name recorded as claimed', async (t) => {
  const s = await setup(t);
  await s.daemon.operator.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(s.daemon.operator.server.address() as { port: number }).port}`;
  const tokenFile = writeFile600(path.join(tempDir(t), 'operator.token'), `${TOKEN}\n`);
  const me = userInfo().username;
  // When an operator pauses failover with the CLI
  const on = await runPgvip(['--witness', url, '--token-file', tokenFile, 'maintenance', 'on']);
  assert.equal(on.code, 0, on.stderr);
  assert.equal(s.c1.durable.maintenance, true);
  // Then the history names the CLI's user as the claimed operator, in the sentence and in the fields
  const history = await runPgvip(['--witness', url, '--token-file', tokenFile, '--json', 'history', '--limit', '2']);
  assert.equal(history.code, 0, history.stderr);
  const [command] = (JSON.parse(history.stdout) as {
    events: { type: string; detail: string; operator?: string; operatorClaimed?: boolean }[];
  }).events;
  assert.equal(command?.type, 'operator-command');
  assert.ok(command.detail.startsWith(`${me}@127.0.0.1 (claimed): maintenance on: accepted`), command.detail);
  assert.deepEqual([command.operator, command.operatorClaimed], [`${me}@127.0.0.1`, true]);
  // And without the token the CLI is refused with a hint, and nothing changes
  const none = await runPgvip(['--witness', url, 'maintenance', 'off']);
  assert.equal(none.code, exitCodes.auth, none.stderr);
  assert.match(none.stderr, /PGVIP_OPERATOR_AUTH|needs a token/);
  assert.equal(s.c1.durable.maintenance, true);
});

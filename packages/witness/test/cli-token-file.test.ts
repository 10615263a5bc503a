// Goal: the CLI and the witness read a token file the same way: one ending in two newlines, in
// CRLF or with spaces around the token works for both (it used to work for the witness only).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { defaultTokenFile, pickTokenFile } from '../src/cli/program.js';
import { runPgvip } from './cli-helpers.js';
import { startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

test('a token file with \\n\\n, \\r\\n or spaces around the token works for the witness and the CLI alike', async (t) => {
  const dir = tempDir(t);
  const config = witnessConfig({ stateDir: dir, clusters: [{ name: 'c1', key: null }] });
  const tokenFile = config.operatorApi.tokenFile;
  assert.ok(tokenFile !== undefined);
  for (const [name, content] of [
    ['two newlines', 's3cret-operator-token\n\n'],
    ['CRLF', 's3cret-operator-token\r\n'],
    ['spaces', '  s3cret-operator-token \t\n'],
  ] as const) {
    writeFileSync(tokenFile, content, { mode: 0o600 });
    // The witness reads the file at start, the CLI at each run.
    const daemon = await startDaemon(t, config);
    await daemon.operator.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(daemon.operator.server.address() as AddressInfo).port}`;
    const r = await runPgvip(['--witness', url, '--token-file', tokenFile, 'status']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /Cluster: c1/);
    const wrong = path.join(dir, 'wrong.token');
    writeFileSync(wrong, 'another-token\n', { mode: 0o600 });
    assert.notEqual((await runPgvip(['--witness', url, '--token-file', wrong, 'status'])).code, 0, 'a wrong token is still refused');
    await daemon.close();
  }
});

test('the CLI reads the installed token file by default, and a given file or PGVIP_TOKEN_FILE wins', () => {
  assert.equal(pickTokenFile(undefined, false, false), undefined);
  assert.deepEqual(pickTokenFile(undefined, false, true)?.file, defaultTokenFile);
  assert.equal(defaultTokenFile, '/etc/pgvip/operator.token');
  assert.match(pickTokenFile(undefined, false, true)?.source ?? '', /the default; --token-file to use another/);
  assert.deepEqual(pickTokenFile('/tmp/mine.token', false, true), { file: '/tmp/mine.token', source: '/tmp/mine.token', option: '--token-file' });
  assert.deepEqual(pickTokenFile('/tmp/env.token', true, true), { file: '/tmp/env.token', source: 'PGVIP_TOKEN_FILE (/tmp/env.token)', option: 'PGVIP_TOKEN_FILE' });
});

test('the CLI never sends the token over plain HTTP beyond loopback: an http:// witness elsewhere is refused first', async (t) => {
  // The witness refuses to serve its operator API beyond loopback without TLS, but whatever answered
  // at such an address (or anyone on the path) got the token from the CLI in clear.
  const dir = tempDir(t);
  const tokenFile = path.join(dir, 'operator.token');
  writeFileSync(tokenFile, 's3cret-operator-token\n', { mode: 0o600 });
  const r = await runPgvip(['--witness', 'http://198.18.0.1:8010', '--token-file', tokenFile, 'status'], { timeoutMs: 20_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--witness http:\/\/198\.18\.0\.1:8010: the operator token would cross the network in clear; use https:\/\//);
  // A name that merely starts like a loopback address resolves anywhere.
  const named = await runPgvip(['--witness', 'http://127.0.0.1.example.com:8010', '--token-file', tokenFile, 'status']);
  assert.equal(named.code, 2, named.stderr);
  // Loopback in any spelling is fine: the request is made (and refused, nobody listens there).
  for (const url of ['http://127.0.0.1:1', 'http://localhost:1', 'http://[::1]:1']) {
    const local = await runPgvip(['--witness', url, '--token-file', tokenFile, 'status']);
    assert.match(local.stderr, /cannot reach the witness/, url);
  }
});

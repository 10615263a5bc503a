// Goal: `pgvip-witness --config FILE` as a real process: a bad config exits 2 with the problem and
// no stack trace, a corrupt state file exits 1 with one clear fatal log line, and a good one serves
// until SIGTERM, then shuts down cleanly with exit code 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stateFileName } from '../src/state-store.js';
import { eventually, tempDir, witnessDocument } from './witness-helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const mainTs = path.join(repoRoot, 'packages/witness/src/main.ts');

interface Run {
  readonly code: Promise<number | null>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  kill(signal: NodeJS.Signals): void;
}

function runWitness(t: TestContext, configFile: string): Run {
  const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', mainTs, '--config', configFile], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => void (err += b.toString()));
  const code = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await code;
    }
  });
  return { code, stdout: () => out, stderr: () => err, kill: (s) => void child.kill(s) };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function writeConfig(dir: string, doc: unknown): string {
  const file = path.join(dir, 'witness.yaml');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

// Each case starts its own process (a few seconds of TypeScript loading): run them side by side.
describe('pgvip-witness as a process', { concurrency: true }, () => {
  test('an invalid config exits 2 with every problem and no stack trace', async (t) => {
    const dir = tempDir(t);
    const doc = witnessDocument({ stateDir: dir, clusters: [{ name: 'c1', key: null }] });
    const file = writeConfig(dir, { ...doc, logLevel: 'chatty', listen: { port: 70000 } });
    const run = runWitness(t, file);
    assert.equal(await run.code, 2);
    const err = run.stderr();
    assert.match(err, /^PGVIP_CONFIG_INVALID: the config file has invalid fields \(2 problems\)\n/);
    assert.match(err, /witness\.yaml: logLevel: /);
    assert.match(err, /witness\.yaml: listen\.port: /);
    assert.ok(!err.includes('    at '), err);
    assert.equal(run.stdout(), '');
  });

  test('a key file that cannot be read exits 2 and names the field', async (t) => {
    const dir = tempDir(t);
    const doc = witnessDocument({ stateDir: dir, clusters: [{ name: 'c1' }] }) as { clusters: { auth: { keyFile: string } }[] };
    const cluster = doc.clusters[0];
    assert.ok(cluster);
    cluster.auth.keyFile = path.join(dir, 'missing.key');
    const run = runWitness(t, writeConfig(dir, doc));
    assert.equal(await run.code, 2);
    assert.match(run.stderr(), /^PGVIP_CONFIG_UNREADABLE: .*\n {2}clusters\[0\]\.auth\.keyFile: .*missing\.key does not exist/);
    assert.ok(!run.stderr().includes('    at '));
  });

  test('without an operator token file the witness does not start: exit 2, naming operatorApi.tokenFile and the fix', async (t) => {
    const dir = tempDir(t);
    const doc = witnessDocument({ stateDir: dir, clusters: [{ name: 'c1', key: null }] }) as { operatorApi: Record<string, unknown> };
    // Given no tokenFile, or one that does not exist
    const { tokenFile: _dropped, ...noToken } = doc.operatorApi;
    const none = runWitness(t, writeConfig(dir, { ...doc, operatorApi: noToken }));
    const missingDir = tempDir(t);
    const missing = runWitness(t, writeConfig(missingDir, { ...doc, operatorApi: { ...noToken, tokenFile: path.join(missingDir, 'operator.token') } }));
    // Then each run stops before serving, and says which field and what to do
    assert.equal(await none.code, 2);
    assert.match(none.stderr(), /^PGVIP_CONFIG_INVALID: .*\n.*witness\.yaml: operatorApi\.tokenFile: is required: the operator API can switch over, fail over and pause failover.*openssl rand -hex 32.*operatorApi\.auth: disabled runs without one \(unsafe\)/s);
    assert.equal(await missing.code, 2);
    assert.match(missing.stderr(), /^PGVIP_CONFIG_UNREADABLE: .*\n {2}operatorApi\.tokenFile: .*operator\.token does not exist; create it with mode 0600/);
    for (const run of [none, missing]) assert.ok(!run.stderr().includes('    at '), run.stderr());
  });

  test('a corrupt state file stops the witness with exit 1 and one fatal line naming the file', async (t) => {
    const dir = tempDir(t);
    writeFileSync(path.join(dir, stateFileName), 'not json at all');
    const run = runWitness(t, writeConfig(dir, witnessDocument({ stateDir: dir, clusters: [{ name: 'c1', key: null }] })));
    assert.equal(await run.code, 1);
    const fatal = run
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; code?: string })
      .filter((l) => l.level === 60);
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]?.code, 'PGVIP_STATE_CORRUPT');
    assert.match(fatal[0]?.msg ?? '', /^refusing to start: PGVIP_STATE_CORRUPT: .*witness-state\.json is not valid JSON/);
  });

  test('a good config serves the protocol and operator API until SIGTERM, then exits 0', async (t) => {
    const dir = tempDir(t);
    const [listenPort, operatorPort] = [await freePort(), await freePort()];
    const run = runWitness(t, writeConfig(dir, witnessDocument({ stateDir: dir, listenPort, operatorPort, clusters: [{ name: 'c1' }, { name: 'c2', key: null }] })));
    // When it has started
    await eventually(
      'operator API answering',
      async () => {
        try {
          return (await request(`http://127.0.0.1:${operatorPort}/health`)).statusCode === 200;
        } catch {
          return false;
        }
      },
      20_000,
    );
    // Then both servers answer (the peer port refuses an unsigned request with a coded 401)
    const peer = await request(`http://127.0.0.1:${listenPort}/v1/lease`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(peer.statusCode, 401);
    assert.equal(((await peer.body.json()) as { error: { code: string } }).error.code, 'PGVIP_AUTH_MISSING');
    // When it gets SIGTERM
    run.kill('SIGTERM');
    // Then it stops cleanly, after saying so, and loudly noted that c2 runs without authentication
    assert.equal(await run.code, 0);
    const lines = run.stdout().trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
    assert.ok(lines.some((l) => l.msg.startsWith('AUTHENTICATION DISABLED for cluster c2') && l.level === 40));
    assert.ok(lines.some((l) => l.msg === 'witness witness serving 2 cluster(s)'));
    assert.equal(lines.at(-1)?.msg, 'witness stopped');
  });
});

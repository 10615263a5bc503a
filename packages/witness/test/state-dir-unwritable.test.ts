// Goal: a daemon whose state directory it cannot write refuses to start with PGVIP_STATE_WRITE,
// naming the directory, the user and the fix, and without a stack trace: the witness (it used to
// die with a raw EACCES and a stack) and the agent alike. Tests run as root, for whom every
// directory is writable, so the daemons run here as `nobody`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { generateKey } from '@pgvip/shared';
import { repoRoot } from './cli-helpers.js';
import { tempDir, witnessDocument } from './witness-helpers.js';

const nobody = { uid: 65534, gid: 65534 };

function runAsNobody(
  t: TestContext,
  entry: string,
  configFile: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, '--conditions=pgvip-source', '--import', 'tsx', entry, '--config', configFile], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => void (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => void (stderr += b.toString()));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Gives nobody its files: it may read them, and nothing else under `dir`. */
function giveToNobody(...files: string[]): void {
  for (const file of files) chownSync(file, nobody.uid, nobody.gid);
}

describe('a state directory the daemon cannot write', { concurrency: true, timeout: 120_000 }, () => {
  test('the witness exits 1 with one fatal PGVIP_STATE_WRITE line and no stack', { skip: process.getuid?.() !== 0 && 'needs root to run the witness as nobody' }, async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o755 }); // root's: nobody may read it, not write it
    const doc = witnessDocument({ stateDir, clusters: [{ name: 'c1' }] });
    const configFile = path.join(dir, 'witness.yaml');
    writeFileSync(configFile, JSON.stringify(doc), { mode: 0o644 });
    // The key and token files witnessDocument wrote belong to the daemon's user, as install.sh makes them.
    for (const secrets of readdirSync(stateDir).filter((n) => n.startsWith('secrets-'))) {
      const secretsDir = path.join(stateDir, secrets);
      giveToNobody(secretsDir, ...readdirSync(secretsDir).map((n) => path.join(secretsDir, n)));
    }

    const run = await runAsNobody(t, 'packages/witness/src/main.ts', configFile);
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; err?: unknown });
    const fatal = lines.filter((l) => l.level === 60);
    assert.equal(fatal.length, 1, run.stdout);
    assert.equal(fatal[0]?.code, 'PGVIP_STATE_WRITE');
    assert.equal(fatal[0]?.err, undefined, 'no error object (with its stack) in the line');
    assert.equal(fatal[0]?.msg, `refusing to start: PGVIP_STATE_WRITE: cannot persist durable state: state directory ${stateDir} is not writable by nobody (EACCES); make it writable by nobody, e.g. chown -R nobody ${stateDir} && chmod 700 ${stateDir}`);
    assert.doesNotMatch(run.stdout + run.stderr, /\n\s+at .+:\d+:\d+/);
  });

  test('the agent exits 1 with the same code and words', { skip: process.getuid?.() !== 0 && 'needs root to run the agent as nobody' }, async (t) => {
    const dir = tempDir(t, 'pgvip-agent-');
    chmodSync(dir, 0o755);
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o755 });
    const keyFile = path.join(dir, 'cluster.key');
    writeFileSync(keyFile, `${generateKey().toString('hex')}\n`, { mode: 0o600 });
    giveToNobody(keyFile);
    const configFile = path.join(dir, 'agent.yaml');
    const config = {
      self: 'db-a',
      stateDir,
      cluster: {
        name: 'c1',
        nodes: [
          { id: 'db-a', agent: { host: '127.0.0.1', port: 9 }, postgres: { host: '127.0.0.1', port: 9, dataDir: path.join(dir, 'pg-a') } },
          { id: 'db-b', agent: { host: '127.0.0.2', port: 9 }, postgres: { host: '127.0.0.2', port: 9, dataDir: path.join(dir, 'pg-b') } },
        ],
        witness: { host: '127.0.0.3' },
        vip: { mode: 'secondary-ip', address: '198.18.0.100', discovery: 'config', region: 'eu-west-1', prefixLength: 24 },
        auth: { keyFile },
      },
    };
    config.cluster.nodes.forEach((n, i) => Object.assign(n, { vip: { eniId: `eni-0${i}` } }));
    writeFileSync(configFile, JSON.stringify(config), { mode: 0o644 });

    const run = await runAsNobody(t, 'packages/agent/src/main.ts', configFile);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.equal(run.stderr, `PGVIP_STATE_WRITE: cannot persist durable state: state directory ${stateDir} is not writable by nobody (EACCES); make it writable by nobody, e.g. chown -R nobody ${stateDir} && chmod 700 ${stateDir}\n`);
  });
});

// Goal: a config that chooses `quorum.backend: etcd` starts both daemons, as real processes: the
// agent keeps the cluster's leases on etcd (daemons-on-etcd.test.ts runs a cluster on it) and the
// witness observes. No etcd answers here: their calls fail by their deadlines and they keep running,
// as they would through an etcd outage. `pgvip check-config` calls both files valid and ready.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Exit {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a TypeScript entry point from source until it exits, or kills it after `ms` (then code null). */
function run(t: TestContext, entry: string, args: readonly string[], ms = 30_000): Promise<Exit> {
  const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', entry, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => void (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => void (output += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  t.after(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

async function files(t: TestContext, backend: 'witness' | 'etcd') {
  const [agentPort, listenPort, operatorPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-quorum-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = {
    name: 'main',
    nodes: [
      { id: 'db-a', agent: { host: '127.0.0.1', port: 1 }, postgres: { host: '127.0.0.1', port: 1, dataDir: path.join(dir, 'pg') } },
      { id: 'db-b', agent: { host: '127.0.0.1', port: 2 }, postgres: { host: '127.0.0.1', port: 2, dataDir: path.join(dir, 'pg') } },
    ],
    witness: { host: '127.0.0.1', port: 1 },
    vip: { mode: 'secondary-ip', address: '198.18.9.100', prefixLength: 24, region: 'eu-west-1', discovery: 'config' },
    auth: { disabled: true },
    quorum: { backend, etcd: { endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.2:2379', 'http://127.0.0.3:2379'] } },
  };
  (cluster.nodes[0] as Record<string, unknown>).vip = { eniId: 'eni-0a' };
  (cluster.nodes[1] as Record<string, unknown>).vip = { eniId: 'eni-0b' };
  const agent = path.join(dir, 'agent.yaml');
  writeFileSync(agent, stringify({ self: 'db-a', stateDir: path.join(dir, 'agent-state'), listen: { host: '127.0.0.1', port: agentPort }, cluster }));
  const witness = path.join(dir, 'witness.yaml');
  const operatorApi = { host: '127.0.0.1', port: operatorPort, auth: 'disabled' };
  writeFileSync(witness, stringify({ stateDir: path.join(dir, 'witness-state'), listen: { host: '127.0.0.1', port: listenPort }, operatorApi, clusters: [cluster] }));
  return { agent, witness };
}

describe('quorum.backend: etcd', { concurrency: true }, () => {
  test('pgvip-agent starts on etcd: it listens, and does not refuse the backend', async (t) => {
    // It runs until killed: alive after a few seconds, listening, is what this needs.
    const r = await run(t, 'packages/agent/src/main.ts', ['--config', (await files(t, 'etcd')).agent], 8_000);
    assert.equal(r.code, null, r.output);
    assert.match(r.output, /the cluster's quorum is etcd/);
    assert.match(r.output, /agent listening/);
  });

  test('pgvip-witness starts on etcd and serves', async (t) => {
    const r = await run(t, 'packages/witness/src/main.ts', ['--config', (await files(t, 'etcd')).witness], 8_000);
    assert.equal(r.code, null, r.output);
    assert.match(r.output, /listening|serving|started/i);
  });

  test('pgvip check-config calls both files valid and this host ready for them', async (t) => {
    const f = await files(t, 'etcd');
    for (const file of [f.agent, f.witness]) {
      const r = await run(t, 'packages/witness/src/cli/main.ts', ['check-config', file, '--user', userInfo().username]);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /is a valid (agent|witness) config/);
    }
  });

  test('the same witness file with backend witness starts and serves (the etcd block kept for a move)', async (t) => {
    const r = await run(t, 'packages/witness/src/main.ts', ['--config', (await files(t, 'witness')).witness], 8_000);
    assert.equal(r.code, null, r.output);
    assert.match(r.output, /listening|serving|started/i);
  });
});

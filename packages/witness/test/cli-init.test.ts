// Goal: `pgvip init` writes a config set (two agent files, witness.yaml) that the daemons' schema
// accepts (`pgvip check-config`), with the same cluster in every file, and fresh 0600 secrets the
// daemons can load; it asks on a terminal for what the flags leave out and nowhere else; it never
// replaces a file without --force, and an answer the schema refuses writes nothing.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadKey, parseConfigText, readSecretFile, type AgentConfig, type WitnessConfig } from '@pgvip/shared';
import { runPgvip, runPgvipOnTerminal } from './cli-helpers.js';
import { tempDir } from './notify-helpers.js';

const secondaryIp = ['--cluster', 'orders', '--node', 'db-a=10.0.1.11', '--node', 'db-b=10.0.1.12', '--witness-host', '10.0.2.20', '--vip', '10.0.1.100'];
const expectedFiles = ['agent-db-a.yaml', 'agent-db-b.yaml', 'cluster.key', 'operator.token', 'witness.yaml'];
const mode = (file: string) => (statSync(file).mode & 0o777).toString(8).padStart(4, '0');

/** Every config in `dir` passes check-config; returns them parsed by the daemons' schema. */
async function checkSet(
  dir: string,
  agents: readonly string[],
): Promise<{ agents: AgentConfig[]; witness: WitnessConfig }> {
  for (const name of [...agents.map((a) => `agent-${a}.yaml`), 'witness.yaml']) {
    const r = await runPgvip(['check-config', '--no-host-checks', path.join(dir, name)]);
    assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^✔ .* is a valid (agent|witness) config: /);
  }
  const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
  return {
    agents: agents.map((a) => parseConfigText(read(`agent-${a}.yaml`), 'agent', a) as AgentConfig),
    witness: parseConfigText(read('witness.yaml'), 'witness', 'witness.yaml') as WitnessConfig,
  };
}

describe('pgvip init', { concurrency: true, timeout: 120_000 }, () => {
  it('writes two agent files and witness.yaml that check-config accepts, with one cluster in all three, and fresh 0600 secrets', async (t) => {
    const dir = path.join(tempDir(t, 'pgvip-init-'), 'orders');
    const r = await runPgvip(['init', ...secondaryIp, '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote the config set of cluster orders/);
    assert.deepEqual(readdirSync(dir).sort(), expectedFiles);
    assert.equal(mode(dir), '0700');
    for (const secret of ['cluster.key', 'operator.token']) assert.equal(mode(path.join(dir, secret)), '0600', secret);
    const { agents, witness } = await checkSet(dir, ['db-a', 'db-b']);
    assert.deepEqual(agents.map((a) => a.self), ['db-a', 'db-b']);
    // The witness must describe the very cluster the agents do (timings, ids, VIP, key file).
    for (const agent of agents) assert.deepEqual(witness.clusters[0], agent.cluster);
    assert.equal(agents[0]!.cluster.auth.keyFile, '/etc/pgvip/cluster.key');
    assert.equal(witness.operatorApi.tokenFile, '/etc/pgvip/operator.token');
    assert.deepEqual([agents[0]!.cluster.vip.mode, agents[0]!.cluster.vip.address, agents[0]!.cluster.witness.host], ['secondary-ip', '10.0.1.100', '10.0.2.20']);

    // The secrets load as the daemons load them, and a second set gets different ones.
    const key = await loadKey(path.join(dir, 'cluster.key'));
    assert.equal(key.length, 32);
    assert.match(await readSecretFile(path.join(dir, 'operator.token'), 'operatorApi.tokenFile'), /^[0-9a-f]{64}$/);
    const other = path.join(path.dirname(dir), 'other');
    assert.equal((await runPgvip(['init', ...secondaryIp, '--out', other])).code, 0);
    assert.notDeepEqual(await loadKey(path.join(other, 'cluster.key')), key);
    assert.notEqual(readFileSync(path.join(other, 'operator.token'), 'utf8'), readFileSync(path.join(dir, 'operator.token'), 'utf8'));
  });

  it('route-table mode: route tables, ENIs, region and another config directory', async (t) => {
    const dir = tempDir(t, 'pgvip-init-');
    const r = await runPgvip(['init', '--cluster', 'billing', '--node', 'billing-a=10.0.1.31', '--node', 'billing-b=10.0.3.31', '--witness-host', 'arbiter=10.0.2.20',
      '--vip-mode', 'route-table', '--vip', '192.168.100.10', '--route-table', 'rtb-0a1b2c3d4e5f60718,rtb-0b1c2d3e4f5a60729', '--route-table', 'rtb-0c1d2e3f4a5b6073a',
      '--eni', 'billing-a=eni-0a1b2c3d4e5f60718', '--eni', 'billing-b=eni-0c1d2e3f4a5b6073a', '--region', 'eu-west-1', '--interface', 'ens5', '--config-dir', '/etc/pgvip/billing', '--out', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const reply = JSON.parse(r.stdout) as { cluster: string; files: { path: string; mode: string }[] };
    assert.equal(reply.cluster, 'billing');
    assert.deepEqual(reply.files.map((f) => `${path.basename(f.path)} ${f.mode}`).sort(), ['agent-billing-a.yaml 0644', 'agent-billing-b.yaml 0644', 'cluster.key 0600', 'operator.token 0600', 'witness.yaml 0644']);
    const { agents, witness } = await checkSet(dir, ['billing-a', 'billing-b']);
    const cluster = agents[1]!.cluster;
    assert.equal(witness.id, 'arbiter');
    assert.deepEqual(witness.clusters[0], cluster);
    assert.ok(cluster.vip.mode === 'route-table');
    assert.deepEqual(cluster.vip.routeTableIds, ['rtb-0a1b2c3d4e5f60718', 'rtb-0b1c2d3e4f5a60729', 'rtb-0c1d2e3f4a5b6073a']);
    assert.deepEqual([cluster.vip.region, cluster.vip.interface, cluster.witness.id], ['eu-west-1', 'ens5', 'arbiter']);
    assert.deepEqual(cluster.nodes.map((n) => n.vip?.eniId), ['eni-0a1b2c3d4e5f60718', 'eni-0c1d2e3f4a5b6073a']);
    assert.equal(cluster.auth.keyFile, '/etc/pgvip/billing/cluster.key');
  });

  it('never replaces a file without --force; --force writes new secrets with mode 0600', async (t) => {
    const dir = tempDir(t, 'pgvip-init-');
    assert.equal((await runPgvip(['init', ...secondaryIp, '--out', dir])).code, 0);
    const keyFile = path.join(dir, 'cluster.key');
    const key = readFileSync(keyFile, 'utf8');
    writeFileSync(path.join(dir, 'witness.yaml'), '# edited by the operator\n');
    const again = await runPgvip(['init', ...secondaryIp, '--out', dir]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exist; nothing was written\. .*--force/);
    assert.equal(readFileSync(keyFile, 'utf8'), key);
    assert.equal(readFileSync(path.join(dir, 'witness.yaml'), 'utf8'), '# edited by the operator\n');
    // Even one existing file stops it, before anything is written.
    const lone = tempDir(t, 'pgvip-init-');
    writeFileSync(path.join(lone, 'operator.token'), 'keep\n', { mode: 0o600 });
    assert.equal((await runPgvip(['init', ...secondaryIp, '--out', lone])).code, 2);
    assert.deepEqual(readdirSync(lone), ['operator.token']);

    chmodSync(keyFile, 0o644);
    const forced = await runPgvip(['init', ...secondaryIp, '--out', dir, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(keyFile, 'utf8'), key);
    assert.equal(mode(keyFile), '0600');
    assert.deepEqual(readdirSync(dir).sort(), expectedFiles, 'no temporary file left behind');
    await checkSet(dir, ['db-a', 'db-b']);
  });

  it('without a terminal it asks nothing: missing flags and answers the schema refuses are exit 2, and nothing is written', async (t) => {
    const base = tempDir(t, 'pgvip-init-');
    const missing = await runPgvip(['init', '--cluster', 'orders', '--node', 'db-a=10.0.1.11', '--out', path.join(base, 'a')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /stdin is not a terminal.*--node NAME=ADDRESS \(1 more\), --witness-host ADDRESS, --vip ADDRESS/);
    const invalid = await runPgvip(['init', ...secondaryIp.slice(0, -1), '10.0.1.300', '--out', path.join(base, 'b')]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /cluster\.vip\.address: must be an IPv4 address.*10\.0\.1\.300/);
    const clash = await runPgvip(['init', '--cluster', 'orders', '--node', 'db-a=10.0.1.11', '--node', 'db-a=10.0.1.12', '--witness-host', '10.0.2.20', '--vip', '10.0.1.100', '--out', path.join(base, 'c')]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /duplicates nodes\[0\]\.id/);
    const badPair = await runPgvip(['init', ...secondaryIp, '--node', 'db-c', '--out', path.join(base, 'd')]);
    assert.equal(badPair.code, 2);
    assert.deepEqual(readdirSync(base), []);
  });

  it('on a terminal it asks for what the flags leave out, defaults included', async (t) => {
    const dir = path.join(tempDir(t, 'pgvip-init-'), 'set');
    // cluster, node 1 name (default db-a) and address, node 2 name and address, witness, VIP mode (default), VIP.
    const answers = ['orders', '', '10.0.1.11', 'db-b', '10.0.1.12', '10.0.2.20', '', '10.0.1.100', ''].join('\n');
    const r = await runPgvipOnTerminal(['init', '--out', dir], answers);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /Cluster name/);
    assert.ok(existsSync(path.join(dir, 'cluster.key')), r.stdout);
    const { agents } = await checkSet(dir, ['db-a', 'db-b']);
    assert.deepEqual(agents[0]!.cluster.nodes.map((n) => `${n.id}=${n.agent.host}`), ['db-a=10.0.1.11', 'db-b=10.0.1.12']);
    assert.equal(agents[0]!.cluster.vip.mode, 'secondary-ip');
  });
});

// Goal: `pgvip check-config` reports everything the daemon would refuse to start with on this host
// — a key file others can read, a secret file the daemon's user does not own, a missing token file,
// a state directory it cannot write, a corrupt state file — all at once, exit 2; and a host that is
// ready gets a valid verdict. The daemon refuses the same config with the same words (one
// preflight). Tests run as root, so the checks are judged for the daemon's user (--user).
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { generateKey, isPgvipError, parseConfigText, witnessPreflight } from '@pgvip/shared';
import { createWitnessDaemon } from '../src/daemon.js';
import { runPgvip } from './cli-helpers.js';
import { memoryLog, tempDir, witnessDocument } from './witness-helpers.js';

const asRoot = process.getuid?.() === 0;
const nobody = 65534;

interface Host {
  readonly dir: string;
  readonly stateDir: string;
  readonly keyFile: string;
  readonly configFile: string;
}

/**
 * An agent config whose key file and state directory belong to nobody, as install.sh would make
 * them for the daemon's user.
 */
function agentHost(t: TestContext): Host {
  const dir = tempDir(t, 'pgvip-host-');
  chmodSync(dir, 0o755);
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  chownSync(stateDir, nobody, nobody);
  const keyFile = path.join(dir, 'cluster.key');
  writeFileSync(keyFile, `${generateKey().toString('hex')}\n`, { mode: 0o600 });
  chownSync(keyFile, nobody, nobody);
  const configFile = path.join(dir, 'agent.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      self: 'db-a',
      stateDir,
      cluster: {
        name: 'main',
        nodes: [
          { id: 'db-a', agent: { host: '10.0.1.11' }, postgres: { host: '10.0.1.11', dataDir: '/var/lib/postgresql/15/main' } },
          { id: 'db-b', agent: { host: '10.0.1.12' }, postgres: { host: '10.0.1.12', dataDir: '/var/lib/postgresql/15/main' } },
        ],
        witness: { host: '10.0.2.20' },
        vip: { mode: 'secondary-ip', address: '10.0.1.100' },
        auth: { keyFile },
      },
    }),
  );
  return { dir, stateDir, keyFile, configFile };
}

describe('pgvip check-config on the host', { concurrency: true, timeout: 120_000, skip: !asRoot && 'needs root to own files as another user' }, () => {
  it('a ready host: valid, and says whom it checked for', async (t) => {
    const host = agentHost(t);
    const r = await runPgvip(['check-config', host.configFile, '--kind', 'agent', '--user', 'nobody']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /is a valid agent config: cluster main, node db-a, .*\n {2}and this host is ready for it: key, token, password and secret files, state directory \(checked as nobody\)\n$/);
  });

  it('a key file readable by others is reported with the chmod that fixes it (it used to say "valid")', async (t) => {
    const host = agentHost(t);
    chmodSync(host.keyFile, 0o644);
    const r = await runPgvip(['check-config', host.configFile, '--kind', 'agent', '--user', 'nobody']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(
      r.stdout,
      `✘ ${host.configFile} is a valid agent config, but pgvip-agent would refuse to start on this host (1 problem; checked as nobody):\n` +
        'PGVIP_CONFIG_INVALID: the config file has invalid fields\n' +
        `  cluster.auth.keyFile: ${host.keyFile} is readable or writable by group or others (got mode 0644); run: chmod 600 ${host.keyFile}\n`,
    );
  });

  it('every problem at once: a secret the daemon\'s user does not own, an unwritable state directory, a corrupt state file', async (t) => {
    const host = agentHost(t);
    chownSync(host.keyFile, 0, 0); // root's 0600 file: the daemon's user cannot read it
    chownSync(host.stateDir, 0, 0);
    const r = await runPgvip(['--json', 'check-config', host.configFile, '--kind', 'agent', '--user', 'nobody']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { valid: boolean; codes: string[]; problems: string[]; checkedAs: string };
    assert.equal(doc.valid, false);
    assert.equal(doc.checkedAs, 'nobody');
    assert.deepEqual(doc.codes, ['PGVIP_CONFIG_INVALID', 'PGVIP_STATE_WRITE']);
    assert.equal(doc.problems[0], `cluster.auth.keyFile: ${host.keyFile} is owned by uid 0, but the daemon runs as nobody and mode 0600 lets only the owner read it; run: chown nobody ${host.keyFile}`);
    assert.match(doc.problems[1] ?? '', new RegExp(`^state directory ${host.stateDir} is not writable by nobody \\(mode 0700, owner uid 0\\); make it writable by nobody, e\\.g\\. chown -R nobody `));

    // A corrupt state file in a usable directory is what the daemon refuses next.
    chownSync(host.stateDir, nobody, nobody);
    writeFileSync(path.join(host.stateDir, 'agent-main.json'), 'not json');
    const corrupt = await runPgvip(['check-config', host.configFile, '--kind', 'agent', '--user', 'nobody']);
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.stdout, /PGVIP_STATE_CORRUPT: .*\n {2}.*agent-main\.json is not valid JSON/);
  });

  it('the witness daemon refuses the config check-config refuses, with the same first problem', async (t) => {
    const stateDir = tempDir(t);
    const doc = witnessDocument({ stateDir, clusters: [{ name: 'c1' }] }) as { clusters: { auth: { keyFile: string } }[]; operatorApi: { tokenFile?: string } };
    const keyFile = doc.clusters[0]!.auth.keyFile;
    chmodSync(keyFile, 0o640);
    const configFile = path.join(stateDir, 'witness.yaml');
    writeFileSync(configFile, JSON.stringify(doc));
    const r = await runPgvip(['check-config', configFile, '--kind', 'witness', '--user', 'root']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /would refuse to start on this host \(1 problem; checked as root\)/);

    const config = parseConfigText(JSON.stringify(doc), 'witness', configFile);
    const [problem] = await witnessPreflight(config);
    await assert.rejects(
      createWitnessDaemon(config, { log: memoryLog().log }),
      (err: unknown) => isPgvipError(err) && err.detail === problem?.detail,
    );
    assert.ok(r.stdout.includes(problem?.detail ?? '(none)'), r.stdout);
  });
});

// Goal: `pgvip check-config` tells an operator, before a restart, whether a config file is valid —
// printing every problem at once with exit 2 — and tells agent files from witness files itself.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runPgvip } from './cli-helpers.js';
import { tempDir } from './notify-helpers.js';

const brokenAgent = `self: db-a
cluster:
  name: Main
  nodes:
    - id: db-a
      agent: { host: 10.0.1.11 }
      postgres: { host: 10.0.1.11, dataDir: relative/path }
    - id: db-b
      agent: { host: 10.0.1.12 }
      postgres: { host: 10.0.1.12, dataDir: /var/lib/pg }
  witness: { host: 10.0.2.20 }
  vip: { mode: secondary-ip, address: 10.0.1.300 }
  auth: { keyFile: /etc/pgvip/cluster.key }
  timings: { heartbeatMs: 500, requestTimeoutMs: 600 }
`;

describe('pgvip check-config', { concurrency: true, timeout: 120_000 }, () => {
  it('accepts the shipped examples, telling agent and witness files apart by themselves', async () => {
    // --no-host-checks: the files they name (/etc/pgvip/cluster.key, ...) are not on this test host.
    const agent = await runPgvip(['check-config', 'deploy/examples/agent-db-a.yaml', '--no-host-checks']);
    assert.equal(agent.code, 0, agent.stderr);
    assert.equal(agent.stdout, '✔ deploy/examples/agent-db-a.yaml is a valid agent config: cluster orders, node db-a, VIP 10.0.1.100 (secondary-ip), witness 10.0.2.20:8009\n');
    const witness = await runPgvip(['check-config', 'deploy/examples/witness.yaml', '--json', '--no-host-checks']);
    assert.equal(witness.code, 0, witness.stderr);
    assert.deepEqual(JSON.parse(witness.stdout), {
      file: 'deploy/examples/witness.yaml',
      kind: 'witness',
      valid: true,
      summary: 'witness witness, 2 clusters (orders, billing), operator API 127.0.0.1:8010',
    });
  });

  it('prints every problem of an invalid file and exits 2', async (t) => {
    const file = path.join(tempDir(t, 'pgvip-check-'), 'agent.yaml');
    writeFileSync(file, brokenAgent);
    const r = await runPgvip(['check-config', file]);
    assert.equal(r.code, 2);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `✘ ${file} is not a valid agent config`);
    assert.equal(lines[1], 'PGVIP_CONFIG_INVALID: the config file has invalid fields (4 problems)');
    for (const expected of [
      `  ${file}: cluster.name: must be 1–63 lowercase letters`,
      `  ${file}: cluster.nodes[0].postgres.dataDir: must be an absolute path`,
      `  ${file}: cluster.vip.address: must be an IPv4 address, e.g. 10.0.1.100 (got "10.0.1.300")`,
      `  ${file}: cluster.timings.requestTimeoutMs: requestTimeoutMs 600 must be < heartbeatMs 500`,
    ]) {
      assert.ok(lines.some((l) => l.startsWith(expected)), `missing: ${expected}\n${r.stdout}`);
    }
    const json = await runPgvip(['--json', 'check-config', file, '--kind', 'agent']);
    assert.equal(json.code, 2);
    const doc = JSON.parse(json.stdout) as { valid: boolean; code: string; problems: string[] };
    assert.equal(doc.valid, false);
    assert.equal(doc.code, 'PGVIP_CONFIG_INVALID');
    assert.equal(doc.problems.length, 4);
  });

  it('refuses timings whose lease leaves no room to move the VIP, naming the field and the fix', async (t) => {
    // Before vipCallBudgetMs was validated these timings passed, yet a promoted node could never
    // move the VIP (the EC2 call budget, vipCallBudgetMs = 1000, must fit in the lease a node holds
    // between renewals).
    const example = readFileSync('deploy/examples/agent-db-a.yaml', 'utf8');
    const timings = '  timings: { heartbeatMs: 300, requestTimeoutMs: 250, leaseMs: 1000 }\n';
    const file = path.join(tempDir(t, 'pgvip-check-'), 'agent.yaml');
    const omitted = '\n  # timings: omitted on purpose';
    assert.ok(example.includes(omitted));
    writeFileSync(file, example.replace(omitted, `\n${timings}${omitted.slice(1)}`));
    const r = await runPgvip(['check-config', file, '--no-host-checks']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[1], 'PGVIP_CONFIG_TIMING: the configured timings break a safety inequality');
    assert.equal(lines.length, 3, r.stdout);
    assert.match(lines[2] ?? '', new RegExp(`^  ${file}: cluster\\.timings\\.leaseMs: .*must be ≥ vipCallBudgetMs = 1000: `));
    assert.match(lines[2] ?? '', /raise leaseMs to at least 1768, or lower vipCallBudgetMs to at most 240$/);
  });

  it('reports YAML syntax errors with line and column, and checks a file as the kind it is told', async (t) => {
    const dir = tempDir(t, 'pgvip-check-');
    const syntax = path.join(dir, 'syntax.yaml');
    writeFileSync(syntax, 'cluster:\n  name: [\n');
    const r = await runPgvip(['check-config', syntax]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, new RegExp(`PGVIP_CONFIG_SYNTAX: the config file is not valid YAML\\n  ${syntax}:3:1: `));
    // An agent file checked as a witness file: the witness schema's words.
    const asWitness = await runPgvip(['check-config', 'deploy/examples/agent-db-a.yaml', '--kind', 'witness']);
    assert.equal(asWitness.code, 2);
    assert.match(asWitness.stdout, /deploy\/examples\/agent-db-a\.yaml: clusters: /);
  });

  it('exits 2 for a missing file, a directory, an unguessable kind or a bad --kind', async (t) => {
    const dir = tempDir(t, 'pgvip-check-');
    const missing = await runPgvip(['check-config', path.join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `pgvip: ${path.join(dir, 'nope.yaml')}: no such file\n`);
    mkdirSync(path.join(dir, 'conf.d'));
    const directory = await runPgvip(['check-config', path.join(dir, 'conf.d')]);
    assert.equal(directory.code, 2);
    assert.match(directory.stderr, /conf\.d: is a directory\n$/);
    const unknown = path.join(dir, 'other.yaml');
    writeFileSync(unknown, 'listen: { port: 1 }\n');
    const guess = await runPgvip(['check-config', unknown]);
    assert.equal(guess.code, 2);
    assert.match(guess.stderr, /cannot tell an agent file \(top-level cluster:\) from a witness file \(top-level clusters:\); pass --kind agent or --kind witness/);
    const kind = await runPgvip(['check-config', unknown, '--kind', 'database']);
    assert.equal(kind.code, 2);
    assert.match(kind.stderr, /option '--kind <kind>' argument 'database' is invalid\. Allowed choices are agent, witness\./);
    const none = await runPgvip(['check-config']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing required argument 'file'/);
  });
});

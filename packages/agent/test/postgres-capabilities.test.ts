// Goal: the PostgreSQL server the agent starts, and the re-seed command it runs, hold none of the
// agent's capabilities. The shipped unit gives the agent CAP_NET_ADMIN as an ambient capability (for
// `ip addr`); ambient capabilities survive execve, so a postmaster started by pg_ctl held it too, and
// with it every backend and COPY ... PROGRAM. The test runs the agent's own start and re-seed code in
// a process that holds CAP_NET_ADMIN ambiently as the postgres user, as systemd starts the agent, and
// reads the capability sets of the real PostgreSQL 15 postmaster and of the command from /proc.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { findSetpriv } from '@pgvip/shared';
import { lookUpOsUser, runAsOsUser } from '../src/postgres/os-command.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const binDir = '/usr/lib/postgresql/15/bin';
const capNetAdmin = 1n << 12n;
const setOf = (text: string, name: string): bigint => {
  const m = new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(text);
  assert.ok(m, `no ${name} line in:\n${text}`);
  return BigInt(`0x${m[1]}`);
};

describe('the postmaster and the re-seed command run without the agent\'s capabilities', () => {
  const root = process.getuid?.() === 0;
  const setpriv = findSetpriv();
  const skip = !root || setpriv === null || !existsSync(path.join(binDir, 'postgres')) ? 'needs root, setpriv and PostgreSQL 15' : false;

  it('as started by an agent holding CAP_NET_ADMIN ambiently', { skip, timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-pg-caps-'));
    chmodSync(dir, 0o755);
    const postgres = await lookUpOsUser('postgres');
    const dataDir = path.join(dir, 'data');
    const restoredDir = path.join(dir, 'restored');
    for (const d of [dataDir, restoredDir]) {
      mkdirSync(d, { mode: 0o700 });
      chownSync(d, postgres.uid, postgres.gid);
    }
    chownSync(dir, postgres.uid, postgres.gid);
    const port = 25_000 + (process.pid % 5_000);
    t.after(async () => {
      await runAsOsUser(postgres, path.join(binDir, 'pg_ctl'), ['-D', dataDir, 'stop', '-m', 'immediate', '-w'], { timeoutMs: 20_000, cwd: dir });
      rmSync(dir, { recursive: true, force: true });
    });
    const init = await runAsOsUser(postgres, path.join(binDir, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync'], { timeoutMs: 60_000, cwd: dir });
    assert.equal(init.exitCode, 0, init.stderr);

    // The re-seed command: records its own capability sets, then leaves a "restored" data directory.
    const command = path.join(dir, 'restore');
    writeFileSync(command, `#!/bin/sh\ngrep ^Cap /proc/self/status > ${dir}/restore-caps\necho 15 > "$1/PG_VERSION"\n`, { mode: 0o755 });

    const driver = path.join(dir, 'driver.mts');
    const src = (file: string): string => JSON.stringify(path.join(repoRoot, 'packages/agent/src/postgres', file));
    writeFileSync(driver, [
      `import { readFileSync } from 'node:fs';`,
      `import { resolvePostgresConfig } from ${src('config.ts')};`,
      `import { lookUpOsUser } from ${src('os-command.ts')};`,
      `import { startPostmaster } from ${src('pg-ctl.ts')};`,
      `import { reseedFrom } from ${src('reseed.ts')};`,
      `const own = readFileSync('/proc/self/status', 'utf8');`,
      `const osUser = await lookUpOsUser('postgres');`,
      `const base = { nodeName: 'db-a', host: '127.0.0.1', port: ${port}, user: 'postgres', database: 'postgres' };`,
      `const server = resolvePostgresConfig({ ...base, dataDir: ${JSON.stringify(dataDir)}, binDir: ${JSON.stringify(binDir)},`,
      `  serverOptions: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=${dir}'] });`,
      `await startPostmaster({ config: server, osUser });`,
      `const restored = resolvePostgresConfig({ ...base, dataDir: ${JSON.stringify(restoredDir)}, binDir: ${JSON.stringify(binDir)} });`,
      `const method = { kind: 'command', path: ${JSON.stringify(command)}, args: ['{dataDir}'], timeoutMs: 10000 } as const;`,
      `const outcome = await reseedFrom({ config: restored, osUser }, base, [method], 'test');`,
      `process.stdout.write(JSON.stringify({ own, method: outcome.method }));`,
    ].join('\n'), { mode: 0o644 });
    // As systemd starts the agent: the postgres user, CAP_NET_ADMIN inheritable and ambient.
    const run = spawnSync(setpriv!, [
      '--reuid=postgres', '--regid=postgres', '--init-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin', '--',
      process.execPath, '--conditions=pgvip-source', '--import', 'tsx', driver,
    ], { cwd: repoRoot, encoding: 'utf8', timeout: 90_000 });
    assert.equal(run.status, 0, `driver failed:\n${run.stdout}\n${run.stderr}`);
    const out = JSON.parse(run.stdout) as { own: string; method: string };
    // The test means something only if the agent's code ran holding the capability.
    assert.equal(setOf(out.own, 'CapAmb'), capNetAdmin, `the driver holds CAP_NET_ADMIN ambiently:\n${out.own}`);
    assert.equal(setOf(out.own, 'CapEff'), capNetAdmin);

    const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const postmaster = readFileSync(`/proc/${postmasterPid}/status`, 'utf8');
    for (const name of ['CapAmb', 'CapInh', 'CapPrm', 'CapEff']) assert.equal(setOf(postmaster, name), 0n, `${name} of the postmaster:\n${postmaster}`);

    assert.equal(out.method, 'command');
    const restore = readFileSync(path.join(dir, 'restore-caps'), 'utf8');
    for (const name of ['CapAmb', 'CapInh', 'CapPrm', 'CapEff']) assert.equal(setOf(restore, name), 0n, `${name} of the re-seed command:\n${restore}`);
  });
});

// Goal: a hook runs without the agent's CAP_NET_ADMIN. The shipped unit gives the agent that
// capability as an ambient one (for `ip addr`), and ambient capabilities survive execve, so a hook
// started directly would hold it too. The real test runs the hook runner in a process that holds
// CAP_NET_ADMIN ambiently as the postgres user, as systemd starts the agent, and reads the hook's
// capability sets from /proc.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { findSetpriv } from '@pgvip/shared';
import { ambientCapabilities, withoutCapabilities } from '../src/hooks/capabilities.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const capNetAdmin = 1n << 12n;

describe('hooks run without the agent\'s capabilities', () => {
  it('reads the ambient set from /proc status text', () => {
    assert.equal(ambientCapabilities('Name:\tnode\nCapInh:\t0000000000001000\nCapAmb:\t0000000000001000\n'), capNetAdmin);
    assert.equal(ambientCapabilities('CapAmb:\t0000000000000000\n'), 0n);
    assert.equal(ambientCapabilities('Name:\told kernel without the line\n'), 0n);
  });

  it('wraps the program in setpriv only when the agent holds ambient capabilities, and refuses without setpriv', () => {
    const hook = ['/etc/pgvip/hooks/reload', '--flag; rm -rf /'];
    assert.deepEqual(withoutCapabilities(hook, 0n, '/usr/bin/setpriv'), { ok: true, argv: hook });
    assert.deepEqual(withoutCapabilities(hook, capNetAdmin, '/usr/bin/setpriv'), {
      ok: true,
      argv: ['/usr/bin/setpriv', '--ambient-caps=-all', '--inh-caps=-all', '--', ...hook],
    });
    const refused = withoutCapabilities(hook, capNetAdmin, null);
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : refused.why, /setpriv \(util-linux\) was not found .*CAP_NET_ADMIN; install util-linux/);
  });

  const root = process.getuid?.() === 0;
  const setpriv = findSetpriv();
  it('a hook started by an agent holding CAP_NET_ADMIN ambiently holds no capability at all', { skip: !root || setpriv === null ? 'needs root and setpriv' : false }, (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-hook-caps-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    const hook = path.join(dir, 'show-caps');
    writeFileSync(hook, '#!/bin/sh\ngrep ^Cap /proc/self/status\n', { mode: 0o755 });
    const driver = path.join(dir, 'driver.mts');
    writeFileSync(driver, [
      `import { readFileSync } from 'node:fs';`,
      `import { runHookProcess } from ${JSON.stringify(path.join(repoRoot, 'packages/agent/src/hooks/process.ts'))};`,
      `const own = readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => l.startsWith('Cap')).join('\\n');`,
      `const r = await runHookProcess({ command: [${JSON.stringify(hook)}], stdin: '{}', env: {}, timeoutMs: 10000 });`,
      `process.stdout.write(JSON.stringify({ own, outcome: r.outcome, hook: r.stdout, stderr: r.stderr }));`,
    ].join('\n'), { mode: 0o644 });
    // As systemd starts the agent: the postgres user, CAP_NET_ADMIN inheritable and ambient.
    const run = spawnSync(setpriv!, [
      '--reuid=postgres', '--regid=postgres', '--init-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin', '--',
      process.execPath, '--conditions=pgvip-source', '--import', 'tsx', driver,
    ], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, `driver failed:\n${run.stdout}\n${run.stderr}`);
    const out = JSON.parse(run.stdout) as { own: string; outcome: string; hook: string; stderr: string };
    const set = (text: string, name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(text)![1]}`);
    // The test means something only if the runner itself held the capability.
    assert.equal(set(out.own, 'CapAmb'), capNetAdmin, `the driver holds CAP_NET_ADMIN ambiently:\n${out.own}`);
    assert.equal(set(out.own, 'CapEff'), capNetAdmin);
    assert.equal(out.outcome, 'ok', out.stderr);
    for (const name of ['CapAmb', 'CapInh', 'CapPrm', 'CapEff']) assert.equal(set(out.hook, name), 0n, `${name} of the hook:\n${out.hook}`);
  });
});

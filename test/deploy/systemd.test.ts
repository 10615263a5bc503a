// Goal: the systemd units in deploy/systemd are valid for the real systemd (systemd-analyze verify
// reports nothing), keep the hardening they promise (settings and systemd's own exposure score), and
// this test would notice a broken unit (a misspelt key, a bad value, a missing binary, lost hardening).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execStartNodeFlags, list, parseUnit, unitDir, unitWords, value } from './systemd-unit.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const units = ['pgvip-agent.service', 'pgvip-witness.service'] as const;
/** Where install.sh puts the current release; ExecStart runs the daemons from there. */
const installPrefix = '/opt/pgvip/current/';
/** The Node.js inside the release (scripts/release.mjs), which the units run unless install.sh --node names another. */
const releaseNode = `${installPrefix}node/bin/node`;

let workDir: string;

/**
 * Runs `systemd-analyze verify` on a copy of the unit text. systemd only warns about unknown keys and
 * unparsable values (exit 0), so any output at all counts as a failure here. The copy runs the
 * Node.js binary of this test, so the check does not depend on where Node.js lives on this machine.
 */
function verify(name: string, text: string): { ok: boolean; output: string } {
  const file = path.join(workDir, name);
  writeFileSync(file, text.replace(`\nExecStart=${releaseNode} `, `\nExecStart=${process.execPath} `));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 30_000 });
  const output = `${r.stdout}${r.stderr}`.trim();
  return { ok: r.status === 0 && output === '', output: output || `exit ${r.status ?? r.signal}` };
}

/** systemd's own exposure score (0 = locked down, 10 = unprotected), via `systemd-analyze security`. */
function exposure(name: string, text: string): number {
  const file = path.join(workDir, name);
  writeFileSync(file, text);
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8', timeout: 30_000 });
  const score = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout)?.[1];
  assert.ok(score, `no exposure level in: ${r.stdout}${r.stderr}`);
  return Number(score);
}

const read = (name: string) => readFileSync(path.join(unitDir, name), 'utf8');

describe('systemd units', { timeout: 60_000 }, () => {
  before(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'pgvip-units-'));
  });
  after(() => rmSync(workDir, { recursive: true, force: true }));

  for (const name of units) {
    it(`${name}: systemd-analyze verify reports nothing`, () => {
      const result = verify(name, read(name));
      assert.ok(result.ok, result.output);
    });
  }

  it('the verify check catches a misspelt key, a bad value, a missing binary and a missing section', () => {
    const good = read('pgvip-agent.service');
    const broken: Array<[string, string, RegExp]> = [
      ['misspelt key', good.replace('ProtectSystem=strict', 'ProtectSystm=strict'), /Unknown key 'ProtectSystm'/],
      ['bad value', good.replace('Restart=always', 'Restart=sometimes'), /restart specifier.*sometimes/i],
      ['missing binary', good.replace(`ExecStart=${releaseNode} `, 'ExecStart=/nonexistent/node '), /\/nonexistent\/node/],
      ['no [Service] section', good.replace('[Service]', '[Servce]'), /Unknown section 'Servce'/],
    ];
    for (const [what, text, expected] of broken) {
      assert.notEqual(text, good, `${what}: the replacement must change the unit`);
      const result = verify(`broken-${what.replace(/\W+/g, '-')}.service`, text);
      assert.equal(result.ok, false, `${what} must fail verification`);
      assert.match(result.output, expected, what);
    }
  });

  it('both units restart at once, forever, log to the journal and stop with SIGTERM in bounded time', () => {
    for (const name of units) {
      const unit = parseUnit(read(name));
      assert.equal(value(unit, 'Service', 'Restart'), 'always', name);
      assert.equal(value(unit, 'Service', 'RestartSec'), '1', name);
      assert.equal(value(unit, 'Unit', 'StartLimitIntervalSec'), '0', `${name}: no start rate limit`);
      assert.equal(value(unit, 'Service', 'KillSignal'), 'SIGTERM', name);
      assert.match(value(unit, 'Service', 'TimeoutStopSec') ?? '', /^\d+$/, name);
      assert.equal(value(unit, 'Service', 'StandardOutput'), 'journal', name);
      assert.equal(value(unit, 'Install', 'WantedBy'), 'multi-user.target', name);
    }
  });

  it('both units are sandboxed: read-only system, private tmp and devices, no new privileges, kernel protected', () => {
    for (const name of units) {
      const unit = parseUnit(read(name));
      const expected: Record<string, string> = {
        NoNewPrivileges: 'yes',
        ProtectSystem: 'strict',
        ProtectHome: 'yes',
        PrivateTmp: 'yes',
        PrivateDevices: 'yes',
        ProtectKernelTunables: 'yes',
        ProtectKernelModules: 'yes',
        LockPersonality: 'yes',
        SystemCallArchitectures: 'native',
        StateDirectory: 'pgvip',
        StateDirectoryMode: '0700',
      };
      for (const [key, wanted] of Object.entries(expected)) assert.equal(value(unit, 'Service', key), wanted, `${name}: ${key}`);
      // Node's JIT needs W+X memory: MemoryDenyWriteExecute=yes would crash the daemon at start.
      assert.equal(value(unit, 'Service', 'MemoryDenyWriteExecute'), undefined, `${name}: MemoryDenyWriteExecute must stay unset`);
    }
  });

  it('the agent runs as the PostgreSQL user with CAP_NET_ADMIN only, and never takes PostgreSQL down with it', () => {
    const unit = parseUnit(read('pgvip-agent.service'));
    assert.equal(value(unit, 'Service', 'User'), 'postgres');
    assert.deepEqual(list(unit, 'Service', 'CapabilityBoundingSet'), ['CAP_NET_ADMIN']);
    assert.deepEqual(list(unit, 'Service', 'AmbientCapabilities'), ['CAP_NET_ADMIN']);
    assert.deepEqual(new Set(list(unit, 'Service', 'RestrictAddressFamilies')), new Set(['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK']));
    assert.equal(value(unit, 'Service', 'KillMode'), 'process', 'a restart of the agent must not kill the postmaster it started');
    assert.equal(value(unit, 'Service', 'RemoveIPC'), 'no', "PostgreSQL's shared memory belongs to this user");
    // Writable: the state directory, and only what PostgreSQL itself writes (a postmaster the agent
    // starts inherits the sandbox), each optional ("-") since distributions differ.
    assert.deepEqual(list(unit, 'Service', 'ReadWritePaths'), ['-/var/lib/postgresql', '-/var/lib/pgsql', '-/run/postgresql', '-/var/log/postgresql']);
  });

  it('the witness has no capability, no extra writable path and no netlink', () => {
    const unit = parseUnit(read('pgvip-witness.service'));
    assert.equal(value(unit, 'Service', 'User'), 'pgvip');
    assert.deepEqual(list(unit, 'Service', 'CapabilityBoundingSet'), []);
    assert.deepEqual(list(unit, 'Service', 'AmbientCapabilities'), []);
    assert.ok(unit.get('Service')!.has('CapabilityBoundingSet'), 'an empty CapabilityBoundingSet= must be written, or every capability stays in the bounding set');
    assert.deepEqual(list(unit, 'Service', 'ReadWritePaths'), []);
    assert.deepEqual(new Set(list(unit, 'Service', 'RestrictAddressFamilies')), new Set(['AF_INET', 'AF_INET6', 'AF_UNIX']));
    // KillMode left at control-group: a hung notification command dies with the witness.
    assert.equal(value(unit, 'Service', 'KillMode'), undefined);
  });

  it("keeps systemd's exposure score low, and the score notices lost hardening", () => {
    // Thresholds: the witness is locked down almost completely; the agent must keep CAP_NET_ADMIN,
    // netlink and the host's network, users and PostgreSQL paths.
    const limits = { 'pgvip-agent.service': 3.5, 'pgvip-witness.service': 1.5 } as const;
    for (const name of units) {
      const score = exposure(name, read(name));
      assert.ok(score <= limits[name], `${name}: exposure ${score} > ${limits[name]}`);
    }
    const stripped = read('pgvip-witness.service')
      .split('\n')
      .filter((line) => !/^(Protect|Private|Restrict|CapabilityBoundingSet|SystemCall|NoNewPrivileges)/.test(line))
      .join('\n');
    assert.ok(exposure('stripped.service', stripped) > 5, 'a unit without its hardening must score as exposed');
  });

  it('ExecStart runs the entry points that tsc builds into the release, with their config files', () => {
    const entryPoints = { 'pgvip-agent.service': ['agent', '/etc/pgvip/agent.yaml'], 'pgvip-witness.service': ['witness', '/etc/pgvip/witness.yaml'] } as const;
    for (const name of units) {
      const [pkg, config] = entryPoints[name];
      const unit = parseUnit(read(name));
      const flags = execStartNodeFlags(unit);
      const [node, ...rest] = unitWords(value(unit, 'Service', 'ExecStart')!);
      const [script, ...args] = rest.slice(flags.length);
      // Node refuses to start with a flag it does not know: that would be a crash loop, not a warning.
      const accepted = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
      assert.equal(accepted.status, 0, `${name}: node rejects ${flags.join(' ')}: ${accepted.stderr}`);
      assert.equal(node, releaseNode, `${name}: the release's own Node.js (install.sh --node rewrites this path to use the host's)`);
      assert.equal(script, `${installPrefix}packages/${pkg}/dist/main.js`, name);
      assert.deepEqual(args, ['--config', config], name);
      // dist/main.js is what the build makes of src/main.ts (tsc -b: rootDir src, outDir dist; the
      // agent's is then bundled).
      const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, `packages/${pkg}/tsconfig.json`), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
      assert.deepEqual([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir], ['src', 'dist'], `packages/${pkg}/tsconfig.json`);
    }
  });

  it('the entry-point sources exist', (t) => {
    const missing = ['agent', 'witness'].map((pkg) => `packages/${pkg}/src/main.ts`).filter((f) => !existsSync(path.join(repoRoot, f)));
    // The daemons' main.ts are being written alongside this deploy path; until they land this is a
    // reminder rather than a failure.
    if (missing.length > 0) t.todo(`not written yet: ${missing.join(', ')}`);
  });
});

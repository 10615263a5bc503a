// Goal: the .rpm that scripts/package-rpm.mjs builds from a release, for Amazon Linux 2023, is a
// well-formed package: the right name, version and architecture; only the dependencies Amazon Linux
// has (no system Node.js); the .deb's files in Fedora's places, root's and not writable by others,
// nothing in /etc or /opt; scriptlets that make the pgvip user and start or enable nothing; units
// that run the wrappers; a bundled Node.js that runs. It also installs, verifies and erases in a
// private rpm database under a temporary root (rpm --root, scriptlets off).
//
// What it cannot check here: installing it on this Debian machine is not meaningful (the system
// has no rpm database, no shadow-utils, and its paths are not Amazon Linux's), so the scriptlets
// are read, not run, and the units are not verified with systemd-analyze (the .deb test does that
// for the same units).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const readJson = (file: string): { version: string } =>
  JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8')) as { version: string };
const version = readJson('package.json').version;
const nodeVersion = readJson('tools/node-runtime/package.json').version;
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(cmd: string, args: readonly string[]): Run {
  const r = spawnSync(cmd, [...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? `${r.error?.message ?? ''}` };
}

function ok(run: Run, what: string): Run {
  assert.equal(run.status, 0, `${what} failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  return run;
}

const skip = sh('rpmbuild', ['--version']).status === 0 ? undefined : 'needs rpmbuild (Debian: apt-get install rpm)';
if (skip !== undefined) console.log(`# rpm.test.ts skipped: ${skip}`);

let work: string;
let rpm: string;
const query = (...args: string[]): string => ok(sh('rpm', ['-qp', ...args, rpm]), `rpm -qp ${args.join(' ')}`).stdout;

describe('the .rpm built by scripts/package-rpm.mjs', { skip, timeout: 600_000 }, () => {
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-rpm-'));
    const built = ['shared', 'agent', 'witness'].every((pkg) =>
      existsSync(path.join(repoRoot, `packages/${pkg}/dist/index.js`)),
    );
    const releaseArgs = [path.join(repoRoot, 'scripts/release.mjs'), '--out', work, ...(built ? ['--no-build'] : [])];
    ok(sh(process.execPath, releaseArgs), 'npm run release');
    const tarball = path.join(work, `pgvip-${version}.tar.gz`);
    const packageArgs = [path.join(repoRoot, 'scripts/package-rpm.mjs'), '--release', tarball, '--out', work];
    packageArgs.push('--revision', '2');
    ok(sh(process.execPath, packageArgs), 'package-rpm');
    rpm = path.join(work, `pgvip-${version.replace('-', '~')}-2.${arch}.rpm`);
    assert.ok(existsSync(rpm), `${rpm} built`);
  });

  after(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('is pgvip, this version, for this architecture, needing no system Node.js', () => {
    const nvra = query('--queryformat', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}');
    assert.equal(nvra, `pgvip ${version.replace('-', '~')} 2 ${arch}`);
    const requires = query('--requires').split('\n').filter((r) => r !== '' && !r.startsWith('rpmlib('));
    assert.deepEqual([...new Set(requires)].sort(), ['/bin/sh', 'glibc >= 2.28', 'libstdc++', 'shadow-utils']);
    assert.deepEqual(query('--recommends').trim().split('\n'), ['iproute']);
  });

  it('holds the .deb\'s files in Fedora\'s places, root\'s, nothing in /etc or /opt, no config file', () => {
    const files = query('-l').split('\n').filter(Boolean);
    for (const f of [
      '/usr/bin/pgvip',
      '/usr/bin/pgvip-agent',
      '/usr/bin/pgvip-witness',
      '/usr/lib/pgvip/bin/run',
      '/usr/lib/pgvip/node/bin/node',
      '/usr/lib/pgvip/release.json',
      '/usr/lib/pgvip/packages/agent/dist/main.js',
      '/usr/lib/pgvip/packages/agent/pg-commit-guard/Makefile',
      '/usr/lib/systemd/system/pgvip-agent.service',
      '/usr/lib/systemd/system/pgvip-witness.service',
      '/usr/lib/sysusers.d/pgvip.conf',
      '/usr/share/doc/pgvip/deploy.md',
      '/usr/share/doc/pgvip/examples/agent-db-a.yaml',
      '/usr/share/doc/pgvip/examples/witness.yaml',
    ]) {
      assert.ok(files.includes(f), `the package lacks ${f}`);
    }
    assert.deepEqual(files.filter((f) => /^\/(etc|opt)\//.test(f) || /install\.sh|pgvip-upgrade|\.spec$/.test(f)), []);
    // The configs are the operator's (pgvip init writes them): nothing for rpm to keep or replace.
    assert.equal(query('--configfiles').trim(), '');
    const format = '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]';
    const long = query('--queryformat', format).split('\n').filter(Boolean);
    for (const line of long) assert.match(line, /^(lrwxrwxrwx|[-d]r[-w][-x]r-[-x]r-[-x]) root root \//, line);
    const executables = ['pgvip', 'pgvip-agent', 'pgvip-witness'].map((c) => `/usr/bin/${c}`);
    for (const f of [...executables, '/usr/lib/pgvip/bin/run', '/usr/lib/pgvip/node/bin/node']) {
      assert.ok(long.includes(`-rwxr-xr-x root root ${f}`), `${f} is an executable`);
    }
  });

  it('its scriptlets make the pgvip user and directories, and start or enable nothing', () => {
    const scripts = query('--scripts');
    const section = (name: string): string =>
      new RegExp(`^${name} scriptlet \\(using /bin/sh\\):\\n([\\s\\S]*?)(?=^\\w+ scriptlet|$(?![\\s\\S]))`, 'm').exec(scripts)?.[1] ?? '';
    assert.match(
      section('preinstall'),
      /getent passwd pgvip >\/dev\/null \|\| \\\n\s+useradd -r -g pgvip -d \/var\/lib\/pgvip -M -s \/sbin\/nologin/,
    );
    assert.match(
      section('postinstall'),
      /\[ -d \/var\/lib\/pgvip \] \|\| install -d -m 0700 -o pgvip -g pgvip \/var\/lib\/pgvip/,
    );
    assert.match(
      section('preuninstall'),
      /if \[ "\$1" -eq 0 \]; then[\s\S]*systemctl stop pgvip-agent\.service pgvip-witness\.service/,
    );
    // On upgrade only a running daemon is restarted ($1 >= 1 after an upgrade, 0 after an erase).
    assert.match(
      section('postuninstall'),
      /if \[ "\$1" -ge 1 \]; then\n\s+systemctl try-restart pgvip-agent\.service pgvip-witness\.service/,
    );
    assert.doesNotMatch(scripts, /systemctl (?:--\S+ )*(start|enable|preset|restart)\b/);
  });

  it('installs, verifies and erases in a private rpm database; its units run the wrappers, its Node.js and CLI run', () => {
    const root = path.join(work, 'rpmroot');
    mkdirSync(root);
    ok(sh('rpm', ['--root', root, '--initdb']), 'rpm --initdb');
    // --nodeps: the private root has no glibc or shadow-utils package; --noscripts: no /bin/sh in it.
    ok(sh('rpm', ['--root', root, '-i', '--nodeps', '--noscripts', rpm]), 'rpm -i');
    ok(sh('rpm', ['--root', root, '-V', '--nodeps', 'pgvip']), 'rpm -V (every file as packaged)');
    const installed = ok(sh('rpm', ['--root', root, '-ql', 'pgvip']), 'rpm -ql').stdout.split('\n').filter(Boolean);
    assert.ok(installed.every((f) => existsSync(path.join(root, f))), 'every packaged path is there');

    for (const daemon of ['agent', 'witness']) {
      const unit = readFileSync(path.join(root, `usr/lib/systemd/system/pgvip-${daemon}.service`), 'utf8');
      assert.match(unit, new RegExp(`^ExecStart=/usr/bin/pgvip-${daemon} --config /etc/pgvip/${daemon}\\.yaml$`, 'm'));
      assert.match(unit, /^# Installed by the pgvip \.rpm /m);
    }
    const agentWrapper = readFileSync(path.join(root, 'usr/bin/pgvip-agent'), 'utf8');
    assert.match(agentWrapper, /^exec \/usr\/lib\/pgvip\/bin\/run packages\/agent\/dist\/main\.js "\$@"$/m);
    const sysusers = readFileSync(path.join(root, 'usr/lib/sysusers.d/pgvip.conf'), 'utf8');
    assert.match(sysusers, /^u pgvip - "pgvip witness" \/var\/lib\/pgvip \/sbin\/nologin$/m);
    const node = path.join(root, 'usr/lib/pgvip/node/bin/node');
    assert.equal(ok(sh(node, ['--version']), 'the packaged node').stdout.trim(), `v${nodeVersion}`);
    const cli = path.join(root, 'usr/lib/pgvip/packages/witness/dist/cli/main.js');
    assert.equal(ok(sh(node, [cli, '--version']), 'the packaged pgvip --version').stdout.trim(), version);

    ok(sh('rpm', ['--root', root, '-e', '--noscripts', 'pgvip']), 'rpm -e');
    const shared = ['/usr', '/usr/bin', '/usr/lib', '/usr/lib/systemd', '/usr/lib/systemd/system', '/usr/share'];
    const left = installed.filter((f) => existsSync(path.join(root, f)) && ![...shared, '/usr/share/doc'].includes(f));
    assert.deepEqual(left, [], 'left after rpm -e');
  });
});

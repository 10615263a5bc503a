// Goal: the .deb that scripts/package-deb.mjs builds from a release installs on this machine with
// dpkg, creates the pgvip system user and its directories, gives working `pgvip`, `pgvip-agent` and
// `pgvip-witness` commands and systemd units that `systemd-analyze verify` accepts, starts and enables
// nothing; an upgrade to a higher build keeps /etc/pgvip and /var/lib/pgvip; `dpkg -r` removes every
// packaged file and keeps the user; `dpkg -P` removes the state.
//
// It installs on the real system, so it runs only as root, only where dpkg is, and only when this
// machine has no pgvip package, /etc/pgvip or /var/lib/pgvip of its own; whatever it created
// (package, directories, the pgvip user when it made it) is removed afterwards, also on failure.
// Other tests never use the host's pgvip user: install.test.ts creates its users under a prefix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const units = ['pgvip-agent.service', 'pgvip-witness.service'] as const;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(cmd, [...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? `${r.error?.message ?? ''}` };
}

function ok(run: Run, what: string): Run {
  assert.equal(run.status, 0, `${what} failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  return run;
}

const installed = () => /^Status: install ok installed$/m.test(sh('dpkg', ['-s', 'pgvip']).stdout);
const userExists = () => sh('getent', ['passwd', 'pgvip']).status === 0;

/** Why this machine cannot run the test, or undefined. */
function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'installs a .deb on this machine: run as root';
  if (sh('dpkg-deb', ['--version']).status !== 0) return 'needs dpkg-deb (a Debian or Ubuntu machine)';
  if (sh('dpkg', ['-s', 'pgvip']).status === 0) return 'a pgvip package is installed on this machine: the test will not replace it';
  for (const dir of ['/etc/pgvip', '/var/lib/pgvip', '/usr/lib/pgvip']) if (existsSync(dir)) return `${dir} exists on this machine: the test will not touch it`;
  return undefined;
}

const skip = skipReason();
if (skip !== undefined) console.log(`# deb.test.ts skipped: ${skip}`);

let work: string;
let debs: { first: string; second: string };
let userWasThere = false;

/** Every process running code from the installed package. */
function packagedProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes('/usr/lib/pgvip/') || /\/usr\/bin\/pgvip-(agent|witness)/.test(cmdline)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function mode(file: string): { uid: number; gid: number; mode: string } {
  const s = statSync(file);
  return { uid: s.uid, gid: s.gid, mode: (s.mode & 0o7777).toString(8).padStart(4, '0') };
}

describe('the .deb built by scripts/package-deb.mjs', { skip, timeout: 300_000 }, () => {
  before(() => {
    userWasThere = userExists();
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-deb-'));
    const built = ['shared', 'agent', 'witness'].every((pkg) => existsSync(path.join(repoRoot, `packages/${pkg}/dist/index.js`)));
    ok(sh(process.execPath, [path.join(repoRoot, 'scripts/release.mjs'), '--out', work, ...(built ? ['--no-build'] : [])]), 'npm run release');
    const tarball = path.join(work, `pgvip-${version}.tar.gz`);
    // Two builds of the same release, the second with a higher Debian revision: the upgrade.
    // gzip rather than xz: the same package, built in a third of the time.
    for (const revision of ['1', '2']) {
      ok(sh(process.execPath, [path.join(repoRoot, 'scripts/package-deb.mjs'), '--release', tarball, '--out', work, '--revision', revision, '--compress', 'gzip']), `package-deb --revision ${revision}`);
    }
    const debVersion = version.replace('-', '~');
    debs = { first: path.join(work, `pgvip_${debVersion}-1_amd64.deb`), second: path.join(work, `pgvip_${debVersion}-2_amd64.deb`) };
  });

  after(() => {
    // Undo everything this test may have done on the machine, whichever step failed.
    if (sh('dpkg', ['-s', 'pgvip']).status === 0) sh('dpkg', ['--purge', 'pgvip']);
    rmSync('/etc/pgvip', { recursive: true, force: true });
    rmSync('/var/lib/pgvip', { recursive: true, force: true });
    if (!userWasThere && userExists()) sh('userdel', ['pgvip']);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('has the fields, scripts and files a Debian package needs', () => {
    const info = ok(sh('dpkg-deb', ['--info', debs.first]), 'dpkg-deb --info').stdout;
    assert.match(info, /^ Package: pgvip$/m);
    assert.match(info, new RegExp(`^ Version: ${version.replace(/[.]/g, '\\.').replace('-', '~')}-1$`, 'm'));
    assert.match(info, /^ Architecture: amd64$/m);
    assert.match(info, /^ Maintainer: .+ <\S+@\S+>$/m);
    assert.match(info, /^ Installed-Size: \d+$/m);
    const depends = /^ Depends: (.*)$/m.exec(info)?.[1] ?? '';
    const listing = ok(sh('dpkg-deb', ['--contents', debs.first]), 'dpkg-deb --contents').stdout.split('\n').filter(Boolean);
    const bundled = listing.some((l) => l.endsWith(' ./usr/lib/pgvip/node/bin/node'));
    // A system Node.js is needed exactly when the release bundles none.
    const floor = /^>=(\d+(?:\.\d+)?)/.exec((JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)?.[1];
    assert.deepEqual(depends.split(', '), ['adduser', ...(bundled ? [] : [`nodejs (>= ${floor?.includes('.') ? floor : `${floor}.0`})`])]);
    for (const script of ['postinst', 'prerm', 'postrm', 'md5sums']) assert.match(info, new RegExp(`\\b${script}\\b`), `control archive lacks ${script}`);
    const files = new Map(listing.map((l) => [l.replace(/^.* \.\//, '/').replace(/ -> .*$/, ''), l]));
    for (const f of ['/usr/bin/pgvip', '/usr/bin/pgvip-agent', '/usr/bin/pgvip-witness', '/usr/lib/pgvip/bin/run']) assert.match(files.get(f) ?? `missing ${f}`, /^-rwxr-xr-x root\/root /);
    for (const f of ['/lib/systemd/system/pgvip-agent.service', '/lib/systemd/system/pgvip-witness.service', '/usr/lib/pgvip/release.json', '/usr/lib/pgvip/packages/agent/dist/main.js', '/usr/lib/pgvip/packages/agent/pg-commit-guard/Makefile', '/usr/share/doc/pgvip/examples/agent-db-a.yaml', '/usr/share/doc/pgvip/examples/witness.yaml', '/usr/share/doc/pgvip/copyright', '/usr/share/doc/pgvip/changelog.Debian.gz', '/usr/share/doc/pgvip/deploy.md']) {
      assert.match(files.get(f) ?? `missing ${f}`, /^-rw-r--r-- root\/root /, f);
    }
    // Owned by root, writable by no one else; nothing in /etc or /opt (configs are the operator's,
    // /opt is deploy/install.sh's); no installer for another layout.
    for (const line of listing) assert.match(line, /^(lrwxrwxrwx|[-d]r[-w][-x]r-[-x]r-[-x]) root\/root /, line);
    assert.deepEqual([...files.keys()].filter((f) => /^\/(etc|opt)\/./.test(f) || /install\.sh|pgvip-upgrade/.test(f)), []);
  });

  // Debian's own checker, when this machine has it (it is not a test dependency: ~30 s, many Perl
  // modules). One error is the npm packages' business: a test script of fastify's naming
  // /usr/bin/bash, which the package never runs.
  it('lintian reports no error about the package itself', { skip: sh('lintian', ['--version']).status !== 0 && 'lintian is not installed (apt-get install lintian to run this check)' }, () => {
    const r = sh('lintian', ['--no-tag-display-limit', debs.first]);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E: ') && !/^E: pgvip: wrong-path-for-interpreter .*\[usr\/lib\/pgvip\/node_modules\//.test(l));
    assert.deepEqual(errors, [], r.stdout);
  });

  it('installs: the pgvip system user, /etc/pgvip and /var/lib/pgvip; the commands run; nothing started or enabled', () => {
    ok(sh('dpkg', ['-i', debs.first]), 'dpkg -i');
    assert.ok(installed(), 'dpkg -s pgvip says installed');
    const entry = ok(sh('getent', ['passwd', 'pgvip']), 'getent passwd pgvip').stdout.trim().split(':');
    const [uid, gid] = [Number(entry[2]), Number(entry[3])];
    assert.ok(uid > 0 && uid < 1000, `pgvip is a system user (uid ${uid})`);
    assert.deepEqual([entry[5], entry[6]], ['/var/lib/pgvip', '/usr/sbin/nologin']);
    assert.deepEqual(mode('/etc/pgvip'), { uid: 0, gid: 0, mode: '0755' });
    assert.deepEqual(mode('/var/lib/pgvip'), { uid, gid, mode: '0700' });

    assert.equal(ok(sh('/usr/bin/pgvip', ['--version']), 'pgvip --version').stdout.trim(), version);
    assert.match(ok(sh('/usr/bin/pgvip-agent', ['--help']), 'pgvip-agent --help').stdout, /--config/);
    assert.match(ok(sh('/usr/bin/pgvip-witness', ['--help']), 'pgvip-witness --help').stdout, /--config/);
    // A Node.js below the floor is refused with a message, not a syntax error from new code.
    const old = sh('/usr/bin/pgvip', ['--version'], { PGVIP_NODE: '/bin/echo' });
    assert.equal(old.status, 1);
    assert.match(old.stderr, /^pgvip: \/bin\/echo reports version '.*'; pgvip needs Node\.js >= \d+\.\d+/);

    assert.deepEqual(packagedProcesses(), [], 'no pgvip daemon runs after the install');
    const wants = ['/etc/systemd/system/multi-user.target.wants'].filter(existsSync).flatMap((d) => readdirSync(d)).filter((f) => f.startsWith('pgvip'));
    assert.deepEqual(wants, [], 'no pgvip unit enabled');
  });

  it('its units pass systemd-analyze verify', () => {
    for (const unit of units) {
      const file = `/lib/systemd/system/${unit}`;
      assert.match(readFileSync(file, 'utf8'), new RegExp(`^ExecStart=/usr/bin/${unit.replace('.service', '')} --config /etc/pgvip/(agent|witness)\\.yaml$`, 'm'));
      const r = sh('systemd-analyze', ['verify', '--man=no', file]);
      const output = `${r.stdout}${r.stderr}`.trim();
      assert.ok(r.status === 0 && output === '', `${unit}: ${output || `exit ${r.status}`}`);
    }
  });

  it('the installed pgvip init writes configs that the installed check-config accepts; an upgrade to a higher build keeps them and the state', () => {
    // The installed CLI end to end: init and check-config load the shared package lazily from
    // /usr/lib/pgvip/node_modules, which a missing runtime dependency would break.
    ok(sh('/usr/bin/pgvip', ['init', '--cluster', 'orders', '--node', 'db-a=10.0.1.11', '--node', 'db-b=10.0.1.12', '--witness-host', '10.0.2.20', '--vip', '10.0.1.100', '--out', '/etc/pgvip']), 'pgvip init');
    for (const file of ['agent-db-a.yaml', 'agent-db-b.yaml', 'witness.yaml']) ok(sh('/usr/bin/pgvip', ['check-config', '--no-host-checks', `/etc/pgvip/${file}`]), `pgvip check-config ${file}`);
    const state = '/var/lib/pgvip/witness-state.json';
    writeFileSync(state, '{"term":7}\n', { mode: 0o600 });
    const kept = ['/etc/pgvip', ...readdirSync('/etc/pgvip').map((f) => `/etc/pgvip/${f}`), '/var/lib/pgvip', state];
    const snapshot = () => kept.map((f) => ({ f, ...mode(f), text: statSync(f).isFile() ? readFileSync(f, 'utf8') : 'dir' }));
    const before = snapshot();
    assert.equal(before.length, 8);
    ok(sh('dpkg', ['-i', debs.second]), 'dpkg -i (upgrade)');
    assert.match(sh('dpkg', ['-s', 'pgvip']).stdout, new RegExp(`^Version: ${version.replace(/[.]/g, '\\.').replace('-', '~')}-2$`, 'm'));
    assert.deepEqual(snapshot(), before);
    assert.deepEqual(packagedProcesses(), [], 'the upgrade started nothing');
  });

  it('dpkg -r removes every packaged file and keeps the user, configs and state; dpkg -P removes the state', () => {
    const packaged = ok(sh('dpkg', ['-L', 'pgvip']), 'dpkg -L').stdout.split('\n').filter((f) => f !== '' && f !== '/.');
    ok(sh('dpkg', ['-r', 'pgvip']), 'dpkg -r');
    assert.ok(!installed());
    // Directories shared with other packages (/usr/bin, /lib/systemd/system, ...) stay, of course.
    const left = packaged.filter((f) => existsSync(f) && !statSync(f).isDirectory());
    assert.deepEqual(left, [], 'packaged files left after dpkg -r');
    for (const dir of ['/usr/lib/pgvip', '/usr/share/doc/pgvip']) assert.ok(!existsSync(dir), `${dir} removed`);
    assert.ok(userExists(), 'the pgvip user stays');
    assert.ok(existsSync('/etc/pgvip/witness.yaml') && existsSync('/etc/pgvip/cluster.key') && existsSync('/var/lib/pgvip/witness-state.json'), 'configs and state stay on remove');

    ok(sh('dpkg', ['-P', 'pgvip']), 'dpkg -P');
    assert.notEqual(sh('dpkg', ['-s', 'pgvip']).status, 0, 'dpkg forgets pgvip after a purge');
    assert.ok(!existsSync('/var/lib/pgvip'), 'purge removes the state');
    assert.ok(existsSync('/etc/pgvip/witness.yaml') && existsSync('/etc/pgvip/cluster.key'), 'purge keeps the configs and keys the operator wrote');
    assert.ok(userExists(), 'the pgvip user stays, as Debian keeps system users');
  });
});

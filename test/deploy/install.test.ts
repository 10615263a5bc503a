// Goal: a release built by `npm run release` installs with deploy/install.sh into the documented
// layout (users, owners, modes, the current symlink, the unit enabled but never started), a second
// run changes nothing, configs are never overwritten, and pgvip-upgrade switches releases and back.
// Every run uses PGVIP_ROOT=<temp dir>, so the real system is never touched.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
/** The Node.js build the release carries (scripts/node-runtime.mjs). */
const pinnedNode = (JSON.parse(readFileSync(path.join(repoRoot, 'tools/node-runtime/package.json'), 'utf8')) as { version: string }).version;
/** Ids in the temporary root only; chosen so they cannot be mistaken for the host's users. */
const ids = { postgres: 4101, pgsql: 4102 } as const;

let work: string;
let release: string;
let tarball: string;
/** The witness host installed by the first test; the upgrade test goes on from it. */
let witnessRoot: string;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(file: string, args: readonly string[], root: string): Run {
  const r = spawnSync(file, [...args], { encoding: 'utf8', env: { ...process.env, PGVIP_ROOT: root }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(run: Run, what: string): Run {
  assert.equal(run.status, 0, `${what} failed:\n${run.stdout}\n${run.stderr}`);
  return run;
}

/**
 * A fresh root with the account files useradd --prefix edits, and a PostgreSQL user as a
 * distribution package makes one.
 */
function freshRoot(name: string): string {
  const root = path.join(work, name);
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  const users = [['root', 0, 0, '/root'], ['postgres', ids.postgres, ids.postgres, '/var/lib/postgresql'], ['pgsql', ids.pgsql, ids.pgsql, '/var/lib/pgsql']] as const;
  writeFileSync(path.join(root, 'etc/passwd'), users.map(([n, u, g, h]) => `${n}:x:${u}:${g}::${h}:/bin/sh\n`).join(''));
  writeFileSync(path.join(root, 'etc/group'), users.map(([n, , g]) => `${n}:x:${g}:\n`).join(''));
  writeFileSync(path.join(root, 'etc/shadow'), users.map(([n]) => `${n}:*:19000:0:99999:7:::\n`).join(''), { mode: 0o640 });
  writeFileSync(path.join(root, 'etc/gshadow'), users.map(([n]) => `${n}:*::\n`).join(''), { mode: 0o640 });
  return root;
}

const install = (root: string, ...args: string[]) => sh(path.join(release, 'deploy/install.sh'), ['--node', process.execPath, ...args], root);
const upgrade = (root: string, what: string) => sh(path.join(root, 'usr/local/sbin/pgvip-upgrade'), [what], root);

function passwdEntry(root: string, user: string): string[] | undefined {
  return readFileSync(path.join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
}

function owner(file: string): { uid: number; gid: number; mode: string } {
  const s = lstatSync(file);
  return { uid: s.uid, gid: s.gid, mode: (s.mode & 0o7777).toString(8).padStart(4, '0') };
}

/** Every path under `root` with its type, owner, mode and (for files and links) content. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const s = lstatSync(full);
      // Release files (thousands, immutable) by size and mtime, which any rewrite changes; the
      // few files outside /opt by content.
      const inRelease = path.relative(root, full).includes('opt/pgvip/');
      const content = s.isSymbolicLink()
        ? `-> ${readlinkSync(full)}`
        : s.isFile()
          ? inRelease ? `${s.size}@${s.mtimeMs}` : readFileSync(full).toString('base64')
          : 'dir';
      out.set(path.relative(root, full), `${s.uid}:${s.gid}:${(s.mode & 0o7777).toString(8)} ${content}`);
      if (s.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

describe('install.sh and pgvip-upgrade on a release built by scripts/release.mjs', { timeout: 240_000 }, () => {
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-install-'));
    // `npm test` has just run tsc -b; build here only when the packages were never built (--no-static).
    const built = ['shared', 'agent', 'witness'].every((pkg) => existsSync(path.join(repoRoot, `packages/${pkg}/dist/index.js`)));
    const args = [path.join(repoRoot, 'scripts/release.mjs'), '--out', path.join(work, 'out'), ...(built ? ['--no-build'] : [])];
    const made = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 200_000 });
    assert.equal(made.status, 0, `release failed:\n${made.stdout}\n${made.stderr}`);
    tarball = path.join(work, 'out', `pgvip-${version}.tar.gz`);
    mkdirSync(path.join(work, 'extracted'));
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', path.join(work, 'extracted')], { encoding: 'utf8' });
    assert.equal(untar.status, 0, untar.stderr);
    release = path.join(work, 'extracted', `pgvip-${version}`);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('the release holds the compiled daemons, production dependencies only, deploy/ and its marker', () => {
    const marker = JSON.parse(readFileSync(path.join(release, 'release.json'), 'utf8')) as { name: string; version: string };
    assert.deepEqual([marker.name, marker.version], ['pgvip', version]);
    for (const f of ['packages/agent/dist/index.js', 'packages/witness/dist/index.js', 'packages/shared/dist/index.js', 'deploy/install.sh', 'deploy/systemd/pgvip-agent.service', 'deploy/iam/agent-secondary-ip.json', 'packages/agent/pg-commit-guard/Makefile', 'packages/agent/pg-commit-guard/pgvip_commit_guard.c']) {
      assert.ok(statSync(path.join(release, f)).isFile(), f);
    }
    assert.deepEqual(readdirSync(path.join(release, 'packages/agent/pg-commit-guard')).filter((f) => /\.(o|so)$/.test(f)), [], 'the commit guard ships as source only');
    const sha = readFileSync(`${tarball}.sha256`, 'utf8');
    assert.match(sha, new RegExp(`^[0-9a-f]{64}  pgvip-${version.replace(/\./g, '\\.')}\\.tar\\.gz\\n$`));
    // Development tools and the CDK toolchain must not ship to hosts.
    for (const dev of ['typescript', 'eslint', 'tsx', 'aws-cdk-lib', 'fast-check']) {
      assert.throws(() => lstatSync(path.join(release, 'node_modules', dev)), `${dev} must not be in the release`);
    }
    assert.equal(readlinkSync(path.join(release, 'node_modules/@pgvip/shared')), '../../packages/shared');
  });

  it('the release carries the pinned Node.js, which runs the daemons from the release alone', () => {
    const marker = JSON.parse(readFileSync(path.join(release, 'release.json'), 'utf8')) as { node: { version: string; platform: string; arch: string } };
    assert.deepEqual(marker.node, { version: pinnedNode, platform: 'linux', arch: process.arch });
    const node = path.join(release, 'node/bin/node');
    assert.equal(statSync(node).mode & 0o755, 0o755, 'node/bin/node is executable by everyone');
    assert.equal(spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim(), `v${pinnedNode}`);
    assert.deepEqual(readdirSync(path.join(release, 'node')).sort(), ['LICENSE', 'bin', 'package.json'], 'no addon headers or docs');
    for (const entry of ['packages/witness/dist/main.js', 'packages/agent/dist/main.js']) {
      const run = spawnSync(node, [path.join(release, entry), '--help'], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/nonexistent' } });
      assert.equal(run.status, 0, `${entry} --help on the release's node:\n${run.stdout}\n${run.stderr}`);
    }
  });

  it('without --node, the units and the CLI run the Node.js inside the current release', () => {
    const root = freshRoot('bundled-node');
    ok(sh(path.join(release, 'deploy/install.sh'), ['--role', 'witness'], root), 'install with the release\'s node');
    const releaseNode = '/opt/pgvip/current/node/bin/node';
    assert.match(readFileSync(path.join(root, 'etc/systemd/system/pgvip-witness.service'), 'utf8'), new RegExp(`^ExecStart=${releaseNode.replace(/[/.]/g, '\\$&')} /opt/pgvip/current/packages/witness/dist/main\\.js `, 'm'));
    assert.match(readFileSync(path.join(root, 'usr/local/bin/pgvip'), 'utf8'), new RegExp(`^exec ${releaseNode.replace(/[/.]/g, '\\$&')} /opt/pgvip/current/packages/witness/`, 'm'));
    assert.match(readFileSync(path.join(root, 'etc/pgvip/install.env'), 'utf8'), /^PGVIP_NODE=bundled$/m, 'pgvip-upgrade installs the next release with its own node too');
    assert.equal(spawnSync(path.join(root, releaseNode), ['--version'], { encoding: 'utf8' }).stdout.trim(), `v${pinnedNode}`);
    // A release without a Node.js of its own needs --node.
    const bare = path.join(work, 'bare', `pgvip-${version}`);
    mkdirSync(path.dirname(bare));
    assert.equal(spawnSync('cp', ['-al', release, bare]).status, 0);
    rmSync(path.join(bare, 'node'), { recursive: true });
    const refused = sh(path.join(bare, 'deploy/install.sh'), ['--role', 'witness'], freshRoot('bare'));
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /this release carries no Node\.js .*: pass --node PATH to a Node\.js >= 24/);
  });

  it('installs a witness: pgvip user, directories, config skeleton, unit enabled, CLI; a second run changes nothing', () => {
    const root = (witnessRoot = freshRoot('witness'));
    const first = ok(install(root, '--role', 'witness'), 'first install');
    assert.match(first.stdout, /created system user pgvip/);

    const pgvip = passwdEntry(root, 'pgvip');
    assert.ok(pgvip, 'pgvip user created in the root');
    const [uid, gid] = [Number(pgvip[2]), Number(pgvip[3])];
    assert.ok(uid > 0 && uid < 1000, `a system uid, got ${uid}`);
    assert.deepEqual([pgvip[5], pgvip[6]], ['/var/lib/pgvip', '/usr/sbin/nologin']);

    assert.deepEqual(owner(path.join(root, 'etc/pgvip')), { uid: 0, gid, mode: '0750' });
    assert.deepEqual(owner(path.join(root, 'var/lib/pgvip')), { uid, gid, mode: '0700' });
    assert.deepEqual(owner(path.join(root, 'etc/pgvip/witness.yaml')), { uid: 0, gid, mode: '0640' });
    assert.equal(readFileSync(path.join(root, 'etc/pgvip/witness.yaml'), 'utf8'), readFileSync(path.join(repoRoot, 'deploy/examples/witness.yaml'), 'utf8'));
    // The operator API's token, which the skeleton config names: the service user's alone, random, made once.
    const tokenFile = path.join(root, 'etc/pgvip/operator.token');
    assert.deepEqual(owner(tokenFile), { uid, gid, mode: '0600' });
    assert.match(readFileSync(tokenFile, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.match(readFileSync(path.join(root, 'etc/pgvip/witness.yaml'), 'utf8'), /^ {2}tokenFile: \/etc\/pgvip\/operator\.token$/m);
    assert.doesNotMatch(first.stdout + first.stderr, new RegExp(readFileSync(tokenFile, 'utf8').trim()), 'the token is never printed');

    assert.equal(readlinkSync(path.join(root, 'opt/pgvip/current')), version);
    const installed = path.join(root, 'opt/pgvip', version);
    assert.deepEqual(owner(installed), { uid: 0, gid: 0, mode: '0755' });
    for (const [file, line] of snapshot(installed)) {
      const [uidGid, mode] = line.split(' ')[0]!.split(/:(?=[0-7]+$)/);
      assert.equal(uidGid, '0:0', `${file} must be root's`);
      if (!line.includes(' -> ')) assert.equal(Number.parseInt(mode!, 8) & 0o022, 0, `${file} must not be writable by group or others`);
    }

    const unit = readFileSync(path.join(root, 'etc/systemd/system/pgvip-witness.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=${process.execPath.replace(/[/.]/g, '\\$&')} /opt/pgvip/current/packages/witness/dist/main\\.js --config /etc/pgvip/witness\\.yaml$`, 'm'));
    assert.equal(readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/pgvip-witness.service')), '/etc/systemd/system/pgvip-witness.service');
    const cli = /^exec (\S+) \/opt\/pgvip\/current\/(packages\/witness\/\S+) "\$@"$/m.exec(readFileSync(path.join(root, 'usr/local/bin/pgvip'), 'utf8'));
    assert.ok(cli, 'the CLI wrapper runs the current release');
    assert.equal(cli[1], process.execPath);
    // The installed entry points load with the release's production dependencies alone.
    const entryPoints = [cli[2]!, 'packages/witness/dist/main.js', 'packages/agent/dist/main.js'];
    for (const entry of entryPoints) {
      const run = spawnSync(process.execPath, [path.join(root, 'opt/pgvip/current', entry), '--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(run.status, 0, `${entry} --help:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout + run.stderr, /usage|Usage/, entry);
    }
    assert.equal(owner(path.join(root, 'usr/local/sbin/pgvip-upgrade')).mode, '0755');
    assert.doesNotMatch(first.stdout + first.stderr, /restart/i, 'install.sh never restarts anything');

    const before = snapshot(root);
    const second = ok(install(root, '--role', 'witness'), 'second install');
    assert.match(second.stdout, new RegExp(`release ${version.replace(/\./g, '\\.')} is already in`));
    assert.doesNotMatch(second.stdout, /created|installed \/|wrote/);
    assert.deepEqual(snapshot(root), before, 'a second run must leave every path, owner, mode and content as it was');
  });

  it('installs an agent as the PostgreSQL user, with no pgvip user of its own; keeps edited configs; --pg-user names another', () => {
    const root = freshRoot('agent');
    ok(install(root, '--role', 'agent'), 'agent install');
    assert.equal(passwdEntry(root, 'pgvip'), undefined, 'the agent needs no user of its own');
    assert.equal(existsSync(path.join(root, 'etc/pgvip/operator.token')), false, 'the operator token is the witness\'s');
    assert.deepEqual(owner(path.join(root, 'var/lib/pgvip')), { uid: ids.postgres, gid: ids.postgres, mode: '0700' });
    assert.deepEqual(owner(path.join(root, 'etc/pgvip/agent.yaml')), { uid: 0, gid: ids.postgres, mode: '0640' });
    assert.equal(readFileSync(path.join(root, 'etc/pgvip/agent.yaml'), 'utf8'), readFileSync(path.join(repoRoot, 'deploy/examples/agent-db-a.yaml'), 'utf8'));
    assert.match(readFileSync(path.join(root, 'etc/systemd/system/pgvip-agent.service'), 'utf8'), /^User=postgres$/m);
    // The CLI is on database nodes too: `pgvip doctor` checks a node's AWS setup where it runs.
    assert.equal(owner(path.join(root, 'usr/local/bin/pgvip')).mode, '0755');
    assert.match(readFileSync(path.join(root, 'etc/pgvip/install.env'), 'utf8'), /^PGVIP_ROLE=agent$/m);

    // An operator's edits survive every later run.
    const config = path.join(root, 'etc/pgvip/agent.yaml');
    writeFileSync(config, 'self: db-b\n');
    ok(install(root, '--role', 'agent'), 'reinstall');
    assert.equal(readFileSync(config, 'utf8'), 'self: db-b\n');

    // PostgreSQL under another OS user: the unit and the state directory follow it.
    ok(install(root, '--role', 'agent', '--pg-user', 'pgsql'), 'install with --pg-user');
    assert.match(readFileSync(path.join(root, 'etc/systemd/system/pgvip-agent.service'), 'utf8'), /^User=pgsql$/m);
    assert.deepEqual(owner(path.join(root, 'var/lib/pgvip')), { uid: ids.pgsql, gid: ids.pgsql, mode: '0700' });
    assert.match(readFileSync(path.join(root, 'etc/pgvip/install.env'), 'utf8'), /^PGVIP_PG_USER=pgsql$/m);
  });

  it('refuses what it cannot do safely, saying why', () => {
    const root = freshRoot('refusals');
    const noPg = sh(path.join(release, 'deploy/install.sh'), ['--role', 'agent', '--pg-user', 'nosuchuser', '--node', process.execPath], root);
    assert.notEqual(noPg.status, 0);
    assert.match(noPg.stderr, /user nosuchuser does not exist: install PostgreSQL first/);
    const noRole = install(root);
    assert.match(noRole.stderr, /--role agent\|witness is required/);
    // The development checkout is not a release (stale dist, every dev dependency): refused.
    const checkout = sh(path.join(repoRoot, 'deploy/install.sh'), ['--role', 'witness', '--node', process.execPath], root);
    assert.notEqual(checkout.status, 0);
    assert.match(checkout.stderr, /is not a pgvip release \(no release\.json\); build one with: npm run release/);
    assert.deepEqual(readdirSync(path.join(root, 'etc')).sort(), ['group', 'gshadow', 'passwd', 'shadow'], 'a refused install writes nothing');
  });

  it('pgvip-upgrade checks the config with the new release, switches to it and back, restarting nothing without systemd', () => {
    const root = witnessRoot;
    assert.ok(root, 'runs after the witness install');
    // The next release: the same tree under a new version number.
    const next = path.join(work, 'next', 'pgvip-9.9.9');
    // Hard links: a copy without copying thousands of files (install.sh still copies it for real).
    mkdirSync(path.dirname(next));
    const linked = spawnSync('cp', ['-al', release, next], { encoding: 'utf8' });
    assert.equal(linked.status, 0, linked.stderr);
    for (const file of ['release.json', 'package.json']) {
      const json = JSON.parse(readFileSync(path.join(next, file), 'utf8')) as { version: string };
      rmSync(path.join(next, file)); // unlink first: writing through the hard link would change the original
      writeFileSync(path.join(next, file), JSON.stringify({ ...json, version: '9.9.9' }, null, 2));
    }
    // A config the new release refuses stops the upgrade before anything changes: the restart
    // would otherwise leave the host with a daemon that cannot start.
    const config = path.join(root, 'etc/pgvip/witness.yaml');
    const goodConfig = readFileSync(config, 'utf8');
    writeFileSync(config, `${goodConfig}heartbeatMs: 300\n`);
    const beforeRefusal = snapshot(root);
    const refusedConfig = upgrade(root, next);
    assert.notEqual(refusedConfig.status, 0, 'an upgrade onto a config the new release refuses');
    assert.match(refusedConfig.stderr, /heartbeatMs: unknown key/);
    assert.match(refusedConfig.stderr, /release pgvip-9\.9\.9 refuses .*witness\.yaml \(above\): fix the config .* nothing was changed/);
    assert.deepEqual(snapshot(root), beforeRefusal, 'the refused upgrade changed nothing');
    writeFileSync(config, goodConfig);

    const up = ok(upgrade(root, next), 'upgrade');
    assert.match(up.stdout, /release 9\.9\.9 is current \(was [^)]+\); no running systemd here, so nothing was restarted/);
    assert.equal(readlinkSync(path.join(root, 'opt/pgvip/current')), '9.9.9');
    assert.ok(statSync(path.join(root, 'opt/pgvip', version)).isDirectory(), 'the previous release stays for a rollback');
    assert.match(readFileSync(path.join(root, 'etc/systemd/system/pgvip-witness.service'), 'utf8'), new RegExp(`^ExecStart=${process.execPath.replace(/[/.]/g, '\\$&')} `, 'm'), 'the recorded Node.js path is kept');

    ok(upgrade(root, version), 'rollback');
    assert.equal(readlinkSync(path.join(root, 'opt/pgvip/current')), version);

    // From the tarball, checked against its .sha256: a tampered checksum is refused.
    ok(upgrade(root, tarball), 'upgrade from the tarball');
    const copy = path.join(work, 'tampered', path.basename(tarball));
    mkdirSync(path.dirname(copy));
    cpSync(tarball, copy);
    writeFileSync(`${copy}.sha256`, `${'0'.repeat(64)}  ${path.basename(tarball)}\n`);
    const refused = upgrade(root, copy);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /does not match its \.sha256: refusing to install it/);
  });

  it('the scripts pass shellcheck and stop at the first error', () => {
    const scripts = ['deploy/install.sh', 'deploy/pgvip-upgrade.sh'].map((f) => path.join(repoRoot, f));
    const r = spawnSync('shellcheck', ['--severity=info', ...scripts], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const script of scripts) assert.match(readFileSync(script, 'utf8'), /^set -euo pipefail$/m, script);
  });
});

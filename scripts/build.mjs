// `node scripts/build.mjs`: compiles every package (tsc -b), then replaces the agent's entry
// dist/main.js with one tree-shaken bundle (bundle-agent.mjs). Everything that runs the daemons
// compiled — `npm run build`, the test runner, the benchmarks and the release — builds through
// here, so dist/ is always the same. It installs the npm dependencies first when they are missing
// (a fresh clone), after reading its command line, so that `--help` installs nothing.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureNpmDeps, repoRoot } from './bootstrap.mjs';
import { parseCommandLine } from './cli-args.mjs';
import { ensureNodeRuntime } from './node-runtime.mjs';

parseCommandLine({ usage: 'usage: npm run build\n  compiles every package into dist/ (tsc -b) and bundles the agent daemon into packages/agent/dist/main.js' });
await ensureNodeRuntime();
ensureNpmDeps();
// Imported only now: the bundler is an npm dependency.
const { bundleAgent } = await import('./bundle-agent.mjs');

const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: repoRoot, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error(`build: tsc -b failed (exit ${tsc.status ?? tsc.signal})`);
  process.exit(tsc.status || 1);
}
try {
  await bundleAgent();
} catch (e) {
  console.error(`build: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}

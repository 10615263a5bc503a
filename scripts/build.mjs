// `node scripts/build.mjs`: compiles every package (tsc -b), then replaces the agent's entry
// dist/main.js with one tree-shaken bundle (bundle-agent.mjs). Everything that runs the daemons compiled — `npm run build`, the
// test runner, the benchmarks and the release — builds through here, so dist/ is always the same.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleAgent } from './bundle-agent.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

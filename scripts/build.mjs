// `node scripts/build.mjs`: compiles every package (tsc -b), then bundles the agent's slice of the
// EC2 SDK (bundle-agent-sdk.mjs). Everything that runs the daemons compiled — `npm run build`, the
// test runner, the benchmarks and the release — builds through here, so dist/ is always the same.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleAgentSdk } from './bundle-agent-sdk.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: repoRoot, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error(`build: tsc -b failed (exit ${tsc.status ?? tsc.signal})`);
  process.exit(tsc.status || 1);
}
try {
  await bundleAgentSdk();
} catch (e) {
  console.error(`build: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}

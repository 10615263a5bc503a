// Goal: on a machine whose node is older than pgvip's floor, a pgvip script re-runs itself on the
// pinned Node build (scripts/node-runtime.mjs), with that build first on PATH for what it starts;
// PGVIP_NODE naming a node below the floor is refused; and a build whose tarball does not match the
// lockfile's integrity is never installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const runtimeModule = pathToFileURL(path.join(repoRoot, 'scripts/node-runtime.mjs')).href;
const pinned = (JSON.parse(readFileSync(path.join(repoRoot, 'tools/node-runtime/package.json'), 'utf8')) as { version: string }).version;
const floor = Number(pinned.split('.')[0]);

/** A node older than the floor on this machine (these ship Node 20 as /usr/bin/node), or null. */
function olderNode(): string | null {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue;
    const v = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(v.split('.')[0]) < floor) return candidate;
  }
  return null;
}

describe('the pinned Node.js runtime', { timeout: 180_000 }, () => {
  let work: string;
  let script: string;
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-node-runtime-'));
    // An entry point as the npm scripts' are: it makes sure of its node first, then reports what it
    // runs on and what `node` on PATH is for the processes it starts.
    script = path.join(work, 'entry.mjs');
    writeFileSync(
      script,
      `import { execFileSync } from 'node:child_process';
import { ensureNodeRuntime } from ${JSON.stringify(runtimeModule)};
await ensureNodeRuntime();
const child = execFileSync('node', ['-p', 'process.version'], { encoding: 'utf8' }).trim();
console.log(JSON.stringify({ version: process.version, args: process.argv.slice(2), child }));
`,
    );
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const old = olderNode();
  it('an older node re-runs the script on the pinned build, which its children get as `node`', { skip: old === null && `no node older than ${floor} here` }, () => {
    const r = spawnSync(old!, [script, 'a', '--b'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: `${path.dirname(old!)}:/usr/bin:/bin`, PGVIP_NODE: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { version: `v${pinned}`, args: ['a', '--b'], child: `v${pinned}` });
  });

  it('PGVIP_NODE naming a node below the floor is refused, naming it', { skip: old === null && `no node older than ${floor} here` }, () => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PGVIP_NODE: old! } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`PGVIP_NODE=${old!.replace(/[/.]/g, '\\$&')} is Node\\.js \\d+\\.\\d+\\.\\d+; pgvip needs >= ${floor}`));
  });

  it('a node at or above the floor runs the script itself', () => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PGVIP_NODE: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { version: string }).version, process.version);
  });

  it('a build that does not match the lockfile integrity is not installed', () => {
    const spec = path.join(work, 'tampered-spec');
    cpSync(path.join(repoRoot, 'tools/node-runtime'), spec, { recursive: true });
    const lockFile = path.join(spec, 'package-lock.json');
    const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages: Record<string, { integrity?: string }> };
    const entry = lock.packages[`node_modules/node-linux-${process.arch}`]!;
    // Another valid sha512 (of the empty string): well-formed, but not the tarball's.
    entry.integrity = 'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==';
    writeFileSync(lockFile, JSON.stringify(lock, null, 2));
    const dest = path.join(work, 'node');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { installNodeRuntime } from ${JSON.stringify(runtimeModule)}; installNodeRuntime({ specDir: ${JSON.stringify(spec)}, dest: ${JSON.stringify(dest)}, quiet: true });`], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /npm did not install node-linux-\w+@[\d.]+ \(fetch or integrity check failed/);
    assert.equal(existsSync(dest), false, 'nothing where the runtime would go');
  });
});

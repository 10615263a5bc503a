// Goal: the lab's daemons run as postgres and nobody from the lab's own copy of their code, so the lab
// (and `npm run demo`) works from any clone — also one in a directory those users cannot enter.
// The copy holds what the daemons load and no dev dependency, anyone can read it whatever the
// clone's modes, and each daemon loads from it as its user (no lab needed: a daemon given a missing
// config file has loaded every module it imports before it says so). scenarios.test.ts starts a
// whole lab from such a clone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeClosedClone, type ClosedClone } from './closed-clone.js';
import { osUser } from './exec.js';
import { nodeArgv, repoRoot } from './ipc.js';
import { isRoot } from './lab.js';
import { nodeForDaemons, othersCanRun, prepareLabRuntime, runtimePackageDirs, type LabRuntime } from './runtime.js';

const packageNames = (compiled: boolean): string[] => runtimePackageDirs(repoRoot, { compiled }).map((d) => path.relative(repoRoot, d).replace(/^.*node_modules\//, ''));

/** Every entry of `dir` with a mode other users cannot read (or enter). */
function closedEntries(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    const mode = statSync(full).mode & 0o777;
    if (e.isDirectory()) {
      if (mode !== 0o755) out.push(`${full} ${mode.toString(8)}`);
      closedEntries(full, out);
    } else if (mode !== 0o644 && mode !== 0o755) out.push(`${full} ${mode.toString(8)}`);
  }
  return out;
}

/** Runs `argv` as `user`. */
function runAs(user: string, cwd: string, argv: readonly string[]): { status: number | null; stderr: string } {
  const u = osUser(user);
  const r = spawnSync('/usr/bin/setpriv', [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', ...argv], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/' },
  });
  return { status: r.status, stderr: r.stderr };
}

/** Runs a daemon's entry point as `user` with a config file that does not exist. */
const loadAs = (user: string, cwd: string, argv: readonly string[]) => runAs(user, cwd, [...argv, '--config', '/nonexistent/pgvip.yaml']);

describe('the lab runtime copy', { timeout: 5 * 60_000 }, () => {
  it('holds the dependency closure of shared, agent and witness, and tsx only from source', () => {
    const source = packageNames(false);
    for (const p of ['fastify', 'pg', 'undici', 'zod', 'pino', 'yaml', 'prom-client', '@aws-sdk/client-ec2', 'nodemailer', 'commander', 'tsx', 'esbuild']) assert.ok(source.includes(p), `${p} is in the copy`);
    for (const p of ['typescript', 'eslint', 'aws-cdk-lib', 'playwright-core', 'fast-check']) assert.ok(!source.includes(p), `${p} (a dev dependency) stays behind`);
    assert.ok(!packageNames(true).includes('tsx'), 'compiled daemons need no tsx');
  });

  it('a Node.js binary the daemons cannot reach (in a 0700 directory) is copied for them; one they can reach is used as it is', { skip: !isRoot() && 'needs root (to run as another user)' }, () => {
    const work = mkdtempSync(path.join(tmpdir(), 'pgvip-lab-node-'));
    try {
      const closed = path.join(work, 'closed');
      mkdirSync(path.join(closed, 'bin'), { recursive: true });
      chmodSync(closed, 0o700);
      const node = path.join(closed, 'bin', 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
      chmodSync(work, 0o755);
      assert.equal(othersCanRun(node), false);
      // Through a shell running as nobody: setpriv execs its command before root's capabilities are gone.
      const runAsNobody = (file: string) => runAs('nobody', '/', ['/bin/sh', '-c', 'exec "$0" -e "process.exit(process.version === process.argv[1] ? 0 : 3)" "$1"', file, process.version]);
      assert.match(runAsNobody(node).stderr, /Permission denied/, 'nobody cannot run the closed one');
      const runtimeRoot = path.join(work, 'runtime');
      const forDaemons = nodeForDaemons(node, runtimeRoot);
      assert.equal(forDaemons, path.join(runtimeRoot, 'node/bin/node'));
      chmodSync(runtimeRoot, 0o755);
      chmodSync(path.join(runtimeRoot, 'node'), 0o755);
      chmodSync(path.join(runtimeRoot, 'node/bin'), 0o755);
      const r = runAsNobody(forDaemons);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(nodeForDaemons(forDaemons, path.join(work, 'other')), forDaemons, 'a reachable node is not copied again');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  describe('from a clone inside a 0700 directory, made under umask 077', () => {
    let clone: ClosedClone;
    let runtime: LabRuntime;
    const dest = (): string => path.join(clone.parent, '..', `${path.basename(clone.parent)}-runtime`);

    before(() => {
      clone = makeClosedClone(repoRoot);
      runtime = prepareLabRuntime(clone.root, dest(), { compiled: false });
    });
    after(() => {
      clone?.remove();
      if (runtime !== undefined) spawnSync('rm', ['-rf', runtime.root]);
    });

    it('is readable by anyone: directories 0755, files 0644 (0755 if executable)', () => {
      assert.deepEqual(closedEntries(runtime.root).slice(0, 5), []);
      assert.ok(existsSync(path.join(runtime.root, 'node_modules/@pgvip/agent/src/main.ts')), 'the workspace links resolve in the copy');
    });

    for (const [daemon, user] of [['agent', 'postgres'], ['witness', 'nobody']] as const) {
      it(`the ${daemon} loads from it as ${user}, from source, and could not from the clone`, { skip: !isRoot() && 'needs root (to run as another user)' }, () => {
        const copied = loadAs(user, runtime.root, nodeArgv(`packages/${daemon}/src/main.ts`, [], runtime.root, runtime.node));
        assert.match(copied.stderr, /PGVIP_CONFIG_UNREADABLE/, `every module loaded, then the config was missing:\n${copied.stderr}`);
        // The clone itself is closed to the daemon's user: the reason for the copy.
        const direct = runAs(user, '/', ['/bin/cat', path.join(clone.root, `packages/${daemon}/src/main.ts`)]);
        assert.notEqual(direct.status, 0);
        assert.match(direct.stderr, /Permission denied/);
      });
    }

    it('the compiled daemons load from a compiled copy as their users', { skip: (!isRoot() && 'needs root (to run as another user)') || (!existsSync(path.join(repoRoot, 'packages/agent/dist/main.js')) && 'no dist/ (npm run build)') }, () => {
      const compiled = prepareLabRuntime(clone.root, `${dest()}-compiled`, { compiled: true });
      try {
        for (const [daemon, user] of [['agent', 'postgres'], ['witness', 'nobody']] as const) {
          const r = loadAs(user, compiled.root, [compiled.node, path.join(compiled.root, `packages/${daemon}/dist/main.js`)]);
          assert.match(r.stderr, /PGVIP_CONFIG_UNREADABLE/, `${daemon}:\n${r.stderr}`);
        }
      } finally {
        spawnSync('rm', ['-rf', compiled.root]);
      }
    });
  });
});

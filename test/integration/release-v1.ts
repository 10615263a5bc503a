// A release of pgvip that speaks protocol v1 only, for the upgrade tests: the source tree of the
// last commit before protocol v2 (the agents' own events), unpacked with `git archive` next to the
// checkout's dependencies, so that its daemons run from their own code, in this process, exactly as
// that release's would. Null (the tests skip) outside a git checkout.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The last commit whose agent and witness know nothing of /v2/events. */
export const releaseV1Commit = '8ebad55df6d1654bee2cccd7c14cad0886025923';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** The directory of the unpacked release (made once per machine), or null without git or the commit. */
export function releaseV1Root(): string | null {
  const root = path.join(tmpdir(), `pgvip-release-${releaseV1Commit.slice(0, 12)}`);
  if (existsSync(path.join(root, 'node_modules', '@pgvip', 'witness'))) return root;
  try {
    execFileSync('git', ['-C', repoRoot, 'cat-file', '-e', `${releaseV1Commit}^{commit}`], { stdio: 'ignore' });
  } catch {
    return null;
  }
  // Unpacked beside and renamed into place, so that parallel runs never see half a tree.
  const staging = `${root}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const tar = execFileSync('git', ['-C', repoRoot, 'archive', '--format=tar', releaseV1Commit, 'packages', 'package.json', 'tsconfig.base.json'], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', staging], { input: tar });
  // The checkout's third-party modules, but the release's own workspace packages.
  const modules = path.join(staging, 'node_modules');
  mkdirSync(path.join(modules, '@pgvip'), { recursive: true });
  for (const entry of readdirSync(path.join(repoRoot, 'node_modules'))) {
    if (entry === '@pgvip' || entry === '.bin') continue;
    symlinkSync(path.join(repoRoot, 'node_modules', entry), path.join(modules, entry));
  }
  for (const name of ['shared', 'agent', 'witness']) symlinkSync(`../../packages/${name}`, path.join(modules, '@pgvip', name));
  try {
    renameSync(staging, root);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another run got there first
  }
  return root;
}

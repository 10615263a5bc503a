// Goal: every command a newcomer can type answers `--help` (exit 0, the usage on stdout) and refuses
// an unknown option with a usage line on stderr (exit 2, or commander's 1) — never a Node stack
// trace, and without doing anything first (no install, no lab, no benchmark, no file rewritten).
// The commands are taken from package.json, so a new script is checked or must be listed below.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const scripts = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** Scripts that only call a third-party tool with its own command line (eslint, tsc). */
const toolWrappers = new Set(['lint', 'typecheck']);

/** The installed shell commands (deploy/), run as a host runs them. */
const shellCommands: Record<string, string[]> = {
  'install.sh': ['/bin/bash', path.join(repoRoot, 'deploy/install.sh')],
  'pgvip-upgrade': ['/bin/bash', path.join(repoRoot, 'deploy/pgvip-upgrade.sh')],
};

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function run(argv: readonly string[]): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGVIP_LAB: '0', npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // The whole process group: npm, node scripts/run-ts.mjs and the command itself.
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const stackFrame = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at \/.+:\d+:\d+$|^\s+at node:/m;

function commands(): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [];
  for (const name of Object.keys(scripts).sort()) {
    if (toolWrappers.has(name)) continue;
    // -s: without npm's "> pgvip@0.1.0 name" banner, so stdout is the command's own.
    out.push([`npm run ${name}`, ['npm', 'run', '-s', name, '--']]);
  }
  for (const [name, argv] of Object.entries(shellCommands)) out.push([name, argv]);
  return out;
}

/** Runs `f` over `items`, `limit` at a time (the TypeScript commands each cost a second of CPU). */
async function eachLimited<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await f(item);
  }));
}

describe('the command line of every command', { timeout: 10 * 60_000 }, () => {
  it('every package.json script is a command checked here or a listed tool wrapper', () => {
    for (const name of toolWrappers) assert.ok(name in scripts, `${name} is still a script`);
    assert.ok(commands().length >= 18, `found ${commands().length} commands`);
  });

  it('--help: exit 0, the usage on stdout, nothing done', async () => {
    const problems: string[] = [];
    await eachLimited(commands(), 2, async ([name, argv]) => {
      const r = await run([...argv, '--help']);
      if (r.code !== 0) problems.push(`${name} --help: exit ${r.code}\n${r.stderr.slice(0, 1500)}`);
      else if (!/usage/i.test(r.stdout) && !r.stdout.includes(name)) problems.push(`${name} --help: no usage on stdout: ${JSON.stringify(r.stdout.slice(0, 300))}`);
      else if (stackFrame.test(r.stdout + r.stderr)) problems.push(`${name} --help: a stack trace\n${r.stderr.slice(0, 1500)}`);
      else if (r.ms > 30_000) problems.push(`${name} --help took ${r.ms} ms: it did something first`);
    });
    assert.deepEqual(problems, []);
  });

  it('--bogus: refused with a usage line on stderr (exit 2, commander 1), no stack trace', async () => {
    const problems: string[] = [];
    await eachLimited(commands(), 2, async ([name, argv]) => {
      const r = await run([...argv, '--bogus']);
      const said = `${r.stdout}${r.stderr}`;
      if (r.code !== 2 && r.code !== 1) problems.push(`${name} --bogus: exit ${r.code}`);
      if (!/--bogus/.test(r.stderr)) problems.push(`${name} --bogus: stderr does not name the option: ${JSON.stringify(r.stderr.slice(0, 300))}`);
      if (!/usage|--help/i.test(r.stderr)) problems.push(`${name} --bogus: no usage line on stderr: ${JSON.stringify(r.stderr.slice(0, 300))}`);
      if (stackFrame.test(said)) problems.push(`${name} --bogus: a stack trace\n${said.slice(0, 1500)}`);
      if (r.ms > 30_000) problems.push(`${name} --bogus took ${r.ms} ms: it did something first`);
    });
    assert.deepEqual(problems, []);
  });
});

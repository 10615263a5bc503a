// Goal: a hook is a real program run without a shell: it reads the event as JSON on stdin and in
// its environment, gets its arguments as literal text (`;` and `$(...)` are not shell code), is
// killed with everything it started when it outlives its timeout, may leave a daemon running
// without holding the agent up, and its output reaches the log bounded and free of terminal codes.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runHookProcess } from '../src/hooks/process.js';

function scriptDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-hook-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** Running (a killed process whose new parent has not reaped it yet is a zombie: not running). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('Given a hook, Then it reads the event as JSON on stdin and as PGVIP_* variables, and its arguments are literal text', async (t) => {
  const dir = scriptDir(t);
  const out = path.join(dir, 'out');
  const canary = path.join(dir, 'canary');
  const hook = script(dir, 'hook', `cat > ${out}.stdin\nprintf '%s\\n' "$PGVIP_EVENT" "$PGVIP_TERM" "$#" "$1" "$2" > ${out}.env`);
  const args = [`x; touch ${canary}`, `$(touch ${canary})`];
  const r = await runHookProcess({ command: [hook, ...args], stdin: '{"event":"after-promote","term":7}\n', env: { PGVIP_EVENT: 'after-promote', PGVIP_TERM: '7' }, timeoutMs: 5000 });
  assert.equal(r.outcome, 'ok', r.summary);
  assert.deepEqual(JSON.parse(readFileSync(`${out}.stdin`, 'utf8')), { event: 'after-promote', term: 7 });
  assert.deepEqual(readFileSync(`${out}.env`, 'utf8').split('\n').slice(0, 5), ['after-promote', '7', '2', ...args]);
  assert.equal(existsSync(canary), false, 'no shell ran the arguments');
});

test('Given a hook that exits 3 and writes terminal escapes, Then it failed, and its output is kept cleaned and bounded', async (t) => {
  const dir = scriptDir(t);
  const hook = script(dir, 'hook', `printf 'pgbouncer \\033]0;pwned\\007reload \\033[2Jfailed\\n' >&2\nhead -c 20000 /dev/zero | tr '\\0' x\nexit 3`);
  const r = await runHookProcess({ command: [hook], stdin: '{}', env: {}, timeoutMs: 5000, outputBytesMax: 100 });
  assert.equal(r.outcome, 'failed');
  assert.equal(r.exitCode, 3);
  assert.equal(r.stderr, 'pgbouncer reload failed');
  assert.match(r.summary, /^exited 3 after \d+ ms: pgbouncer reload failed$/);
  assert.ok(r.stdout.startsWith('x'.repeat(100)), r.stdout.slice(0, 120));
  assert.match(r.stdout, /… \(19900 more bytes dropped\)$/);
});

test('Given a hook that outlives its timeout, Then it and the process it started are killed at the timeout', async (t) => {
  const dir = scriptDir(t);
  const pidFile = path.join(dir, 'child.pid');
  const hook = script(dir, 'hook', `sleep 30 &\necho $! > ${pidFile}\nwait`);
  const started = performance.now();
  const r = await runHookProcess({ command: [hook], stdin: '', env: {}, timeoutMs: 300 });
  const tookMs = performance.now() - started;
  assert.equal(r.outcome, 'timeout');
  assert.ok(tookMs < 2000, `returned after ${Math.round(tookMs)} ms`);
  const child = Number(readFileSync(pidFile, 'utf8'));
  // The group's SIGKILL is delivered at once; give the kernel a moment to reap.
  for (let i = 0; i < 20 && alive(child); i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(alive(child), false, `the hook's own child ${child} was killed with it`);
});

test('Given a hook that starts a daemon holding its stdout, Then the hook counts as done when it exits, and the daemon lives on', async (t) => {
  const dir = scriptDir(t);
  const pidFile = path.join(dir, 'daemon.pid');
  const hook = script(dir, 'hook', `sleep 5 &\necho $! > ${pidFile}\necho reloaded`);
  const started = performance.now();
  const r = await runHookProcess({ command: [hook], stdin: '', env: {}, timeoutMs: 3000 });
  const daemon = Number(readFileSync(pidFile, 'utf8'));
  t.after(() => alive(daemon) && process.kill(daemon, 'SIGKILL'));
  assert.equal(r.outcome, 'ok', r.summary);
  assert.equal(r.stdout, 'reloaded');
  assert.ok(performance.now() - started < 1500, 'not held up by the pipe the daemon keeps open');
  assert.equal(alive(daemon), true, 'a daemon the hook started is not the timeout\'s to kill');
});

test('Given a hook program that is not there, Then the run is an error result, not an exception', async () => {
  const r = await runHookProcess({ command: ['/nonexistent/pgvip-hook'], stdin: '{}', env: {}, timeoutMs: 1000 });
  assert.equal(r.outcome, 'error');
  assert.match(r.summary, /could not start \/nonexistent\/pgvip-hook: spawn \/nonexistent\/pgvip-hook ENOENT/);
});

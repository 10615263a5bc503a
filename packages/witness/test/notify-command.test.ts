// Goal: the command hook runs the configured program once per event with the documented arguments,
// environment and stdin, never through a shell, and a failing, missing or hanging program is
// reported (and killed with everything it started) instead of blocking the queue.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { NotificationsConfig } from '@pgvip/shared';
import { createNotifier } from '../src/notify/index.js';
import { event, failureCollector, memoryLogger, tempDir, waitFor } from './notify-helpers.js';

type CommandConfig = NonNullable<NotificationsConfig['command']>;

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, body);
  chmodSync(file, 0o755);
  return file;
}

/** A hook in JavaScript that appends what it received (argv, PGVIP_* env, stdin) as one JSON line. */
function recordingHook(dir: string): {
  path: string;
  out: string;
  calls(): Array<{ argv: string[]; env: Record<string, string>; stdin: string }>;
} {
  const out = path.join(dir, 'calls.jsonl');
  const file = script(
    dir,
    'record-hook',
    `#!${process.execPath}
const { appendFileSync } = require('node:fs');
let stdin = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => (stdin += c));
process.stdin.on('end', () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PGVIP_EVENT_')));
  appendFileSync(${JSON.stringify(out)}, JSON.stringify({ argv: process.argv.slice(2), env, stdin }) + '\\n');
});
`,
  );
  return {
    path: file,
    out,
    calls: () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line)) : []),
  };
}

function notifierFor(t: TestContext, command: Partial<CommandConfig> & { path: string }) {
  const failures = failureCollector();
  const notifier = createNotifier(
    {
      webhooks: [], command: { args: [], events: ['*'], timeoutMs: 5_000, ...command } as CommandConfig,
      nodeHoldDownMs: 60_000,
    },
    { logger: memoryLogger(), onFailure: failures.onFailure, closeGraceMs: 3_000 },
  );
  t.after(() => notifier.close());
  return { notifier, failures };
}

describe('command hook notifications', { timeout: 30_000 }, () => {
  it('passes [...args, type, cluster, node, term, detail], PGVIP_EVENT_* variables and the JSON event on stdin, with no shell', async (t) => {
    const hook = recordingHook(tempDir(t, 'pgvip-cmd-'));
    const { notifier, failures } = notifierFor(t, { path: hook.path, args: ['--channel', '#db oncall'] });
    // A detail a shell would act on: no shell means it arrives verbatim and nothing runs.
    const hostile = event({ detail: 'db-a "fenced"; $(touch /tmp/pgvip-pwned) `id` & echo\nsecond line' });
    const noNode = event({ type: 'maintenance', node: null, term: 3, detail: 'maintenance on' });
    notifier.notify(hostile);
    notifier.notify(noNode);
    await notifier.idle();

    const calls = hook.calls();
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[0]!.argv, ['--channel', '#db oncall', 'failover', 'main', 'db-b', '8', hostile.detail]);
    assert.deepEqual(calls[0]!.env, {
      PGVIP_EVENT_ID: String(hostile.id),
      PGVIP_EVENT_AT: hostile.at,
      PGVIP_EVENT_CLUSTER: 'main',
      PGVIP_EVENT_TYPE: 'failover',
      PGVIP_EVENT_NODE: 'db-b',
      PGVIP_EVENT_TERM: '8',
      PGVIP_EVENT_DETAIL: hostile.detail,
    });
    assert.deepEqual(JSON.parse(calls[0]!.stdin), hostile);
    // In order, and an event about no particular node passes an empty node argument.
    assert.deepEqual(calls[1]!.argv, ['--channel', '#db oncall', 'maintenance', 'main', '', '3', 'maintenance on']);
    assert.equal(calls[1]!.env.PGVIP_EVENT_NODE, '');
    assert.equal(existsSync('/tmp/pgvip-pwned'), false);
    assert.deepEqual(failures.failures, []);
  });

  it('reports a non-zero exit with the end of the program\'s stderr, and carries on with the next event', async (t) => {
    const dir = tempDir(t, 'pgvip-cmd-');
    const marker = path.join(dir, 'ran');
    const hook = script(dir, 'failing-hook', `#!/bin/sh\necho "run $1" >> ${marker}\necho "chat API said: 401 bad token" >&2\n[ "$1" = fenced ] && exit 0\nexit 3\n`);
    const { notifier, failures } = notifierFor(t, { path: hook });
    notifier.notify(event({ type: 'failover' }));
    notifier.notify(event({ type: 'fenced' }));
    await notifier.idle();
    assert.equal(failures.failures.length, 1);
    assert.equal(failures.failures[0]!.channel, `command ${hook}`);
    assert.equal(failures.failures[0]!.event.type, 'failover');
    assert.equal(failures.failures[0]!.message, `${hook} exited with status 3; stderr: chat API said: 401 bad token`);
    assert.equal(readFileSync(marker, 'utf8'), 'run failover\nrun fenced\n');
  });

  it('kills a hook that outlives timeoutMs, together with the processes it started', async (t) => {
    const dir = tempDir(t, 'pgvip-cmd-');
    const pidFile = path.join(dir, 'child.pid');
    const hook = script(dir, 'hanging-hook', `#!/bin/sh\nsleep 30 &\necho $! > ${pidFile}\nwait\n`);
    const { notifier, failures } = notifierFor(t, { path: hook, timeoutMs: 300 });
    const started = performance.now();
    notifier.notify(event());
    await failures.next(1);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 300 && elapsed < 2_500, `killed after ${elapsed.toFixed(0)} ms`);
    assert.equal(failures.failures[0]!.message, `${hook} killed after 300 ms (timeoutMs)`);
    const childPid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(childPid), 2_000, `the hook's child ${childPid} to be gone`);
  });

  it('reports a program that does not exist or is not executable', async (t) => {
    const dir = tempDir(t, 'pgvip-cmd-');
    const notExecutable = path.join(dir, 'not-executable');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
    chmodSync(notExecutable, 0o644);
    const missing = notifierFor(t, { path: path.join(dir, 'missing-hook') });
    const denied = notifierFor(t, { path: notExecutable });
    missing.notifier.notify(event());
    denied.notifier.notify(event());
    await missing.failures.next(1);
    await denied.failures.next(1);
    assert.match(missing.failures.failures[0]!.message, /^cannot run .*missing-hook: ENOENT \(no such file\)$/);
    assert.match(denied.failures.failures[0]!.message, /^cannot run .*not-executable: EACCES \(not executable: chmod \+x it\)$/);
  });

  it('runs only for the events its filter lists', async (t) => {
    const hook = recordingHook(tempDir(t, 'pgvip-cmd-'));
    const { notifier } = notifierFor(t, { path: hook.path, events: ['node-unreachable', 'agent-down'] });
    for (const type of ['failover', 'node-unreachable', 'fenced', 'agent-down']) notifier.notify(event({ type }));
    await notifier.idle();
    assert.deepEqual(hook.calls().map((c) => c.env.PGVIP_EVENT_TYPE), ['node-unreachable', 'agent-down']);
  });
});

/** Running, as opposed to gone or a zombie (killed, and waiting for init to reap it). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

// Goal: the agent's hooks as configured: before-promote allows on exit 0 and vetoes on anything else
// (a non-zero exit, a timeout, a program that cannot start); the asynchronous hooks return at once,
// run one at a time in the order of their events with the full payload, and every run is logged
// (output cleaned) and counted in the metrics.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { HooksSchema, type AgentHooksConfig } from '@pgvip/shared';
import { AgentHooks, type HookContext } from '../src/hooks/hooks.js';
import { createAgentMetrics } from '../src/metrics.js';

function setup(t: TestContext, hooks: (dir: string) => unknown) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-hooks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config: AgentHooksConfig = HooksSchema.parse(hooks(dir));
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const metrics = createAgentMetrics({ cluster: 'orders', node: 'db-b' });
  const agentHooks = new AgentHooks({ config, logger, metrics, now: () => new Date('2026-12-07T00:00:00.000Z') });
  const counter = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).join('\n');
  return { dir, hooks: agentHooks, lines, counter };
}

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const ctx = (over: Partial<HookContext> = {}): HookContext => ({ cluster: 'orders', node: 'db-b', peer: 'db-a', role: 'promoting', term: 2, primary: 'db-b', detail: 'promoting for term 2', ...over });

test('Given a before-promote hook, Then exit 0 allows the promotion and exit 1 vetoes it, with the hook\'s words', async (t) => {
  const { dir, hooks, counter } = setup(t, (d) => ({ beforePromote: { path: path.join(d, 'gate') } }));
  script(dir, 'gate', `[ -e ${dir}/allow ] && exit 0\necho "replica lag too high for \\033[31mpromotion\\033[0m" >&2\nexit 1`);
  const vetoed = await hooks.beforePromote(ctx());
  assert.equal(vetoed.allowed, false);
  assert.match(vetoed.detail, /^vetoed by the before-promote hook \(exited 1 after \d+ ms: replica lag too high for promotion\)$/);
  writeFileSync(path.join(dir, 'allow'), '');
  assert.equal((await hooks.beforePromote(ctx())).allowed, true);
  assert.match(await counter('pgvip_agent_hook_runs_total'), /hook="before-promote",result="failed".* 1\n.*hook="before-promote",result="ok".* 1/s);
  assert.match(await counter('pgvip_agent_hook_vetoes_total'), / 1$/);
});

test('Given a before-promote hook that hangs or cannot start, Then the promotion is vetoed within the timeout (a promotion nobody agreed to is the unsafe side)', async (t) => {
  const { dir, hooks } = setup(t, (d) => ({ beforePromote: { path: path.join(d, 'gate'), timeoutMs: 300 } }));
  script(dir, 'gate', 'sleep 30');
  const started = performance.now();
  const hung = await hooks.beforePromote(ctx());
  assert.ok(performance.now() - started < 2000);
  assert.equal(hung.allowed, false);
  assert.match(hung.detail, /killed after its timeout of 300 ms/);
  rmSync(path.join(dir, 'gate'));
  const missing = await hooks.beforePromote(ctx());
  assert.equal(missing.allowed, false);
  assert.match(missing.detail, /could not start .*gate: spawn .* ENOENT/);
});

test('Given no before-promote hook, Then promotions are allowed without running anything', async (t) => {
  const { hooks } = setup(t, () => ({}));
  assert.equal(hooks.has('before-promote'), false);
  assert.deepEqual(await hooks.beforePromote(ctx()), { allowed: true, detail: 'no before-promote hook' });
});

test('Given asynchronous hooks, Then notify returns at once, and they run one at a time in event order with the full payload', async (t) => {
  const { dir, hooks, lines, counter } = setup(t, (d) => ({
    afterPromote: { path: path.join(d, 'record'), args: ['after'] },
    onFence: { path: path.join(d, 'record'), args: ['fence'] },
    onRoleChange: { path: path.join(d, 'record'), args: ['role'] },
    onRejoin: { path: path.join(d, 'fail') },
  }));
  const log = path.join(dir, 'log');
  // Each run writes start, sleeps, writes end: overlapping runs would interleave the lines.
  script(dir, 'record', `echo "start $1 $PGVIP_EVENT $PGVIP_ROLE $PGVIP_PREVIOUS_ROLE $PGVIP_TERM" >> ${log}\ncat >> ${log}\nsleep 0.2\necho "end $1" >> ${log}`);
  script(dir, 'fail', 'echo "dns update refused" >&2; exit 2');
  const started = performance.now();
  hooks.notify('on-role-change', ctx({ role: 'promoting', previousRole: 'candidate', detail: 'role candidate → promoting' }));
  hooks.notify('after-promote', ctx({ role: 'primary', detail: 'promoted to timeline 2' }));
  hooks.notify('on-rejoin', ctx({ role: 'standby' }));
  hooks.notify('on-fence', ctx({ role: 'fenced', primary: 'db-a' }));
  assert.ok(performance.now() - started < 50, 'notify does not wait for the hook');
  assert.equal(hooks.queued, 4, 'all four queued, none started before notify returned');
  await hooks.idle();
  const got = readFileSync(log, 'utf8').trim().split('\n');
  assert.deepEqual(
    got.map((l) => (l.startsWith('{') ? 'json' : l)),
    ['start role on-role-change promoting candidate 2', 'json', 'end role', 'start after after-promote primary  2', 'json', 'end after', 'start fence on-fence fenced  2', 'json', 'end fence'],
  );
  assert.deepEqual(JSON.parse(got[4]!), { version: 1, event: 'after-promote', at: '2026-12-07T00:00:00.000Z', cluster: 'orders', node: 'db-b', peer: 'db-a', role: 'primary', term: 2, primary: 'db-b', detail: 'promoted to timeline 2' });
  const failed = lines.find((l) => l.hook === 'on-rejoin' && l.outcome !== undefined);
  assert.ok(failed !== undefined);
  assert.equal(failed.msg, `hook on-rejoin failed: exited 2 after ${String(failed.durationMs)} ms: dns update refused`);
  assert.equal(failed.stderr, 'dns update refused');
  assert.match(await counter('pgvip_agent_hook_runs_total'), /hook="on-rejoin",result="failed".* 1/);
});

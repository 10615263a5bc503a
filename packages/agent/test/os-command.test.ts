// Goal: PostgreSQL's tools run with an environment of the agent's making, never the agent's own: the
// agent's unit tunes Node and glibc's malloc for a small daemon (deploy/systemd/pgvip-agent.service),
// and a postmaster started by pg_ctl must not inherit that.
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { test } from 'node:test';
import { runAsOsUser } from '../src/postgres/os-command.js';
import { daemonUnitEnvironment } from '../../../test/deploy/systemd-unit.js';

test("Given the agent's unit environment, When it runs a PostgreSQL tool, Then the tool sees none of it", async () => {
  const unitEnv = daemonUnitEnvironment('agent');
  assert.ok('MALLOC_ARENA_MAX' in unitEnv && 'NODE_OPTIONS' in unitEnv, 'the unit tunes malloc and Node');
  const saved = { ...process.env };
  Object.assign(process.env, unitEnv);
  try {
    const me = userInfo();
    const r = await runAsOsUser({ name: me.username, uid: me.uid, gid: me.gid, home: me.homedir }, '/usr/bin/env', [], { timeoutMs: 5_000, cwd: '/', env: { PGDATA: '/x' } });
    assert.equal(r.exitCode, 0, r.stderr);
    const seen = new Set(r.stdout.trim().split('\n').map((l) => l.slice(0, l.indexOf('='))));
    for (const name of Object.keys(unitEnv)) assert.ok(!seen.has(name), `${name} reached the tool`);
    assert.ok(seen.has('PGDATA') && seen.has('PATH'), 'what the agent passes on does reach it');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('Given a command that leaves a daemon holding its output, When it exits, Then the run ends and the daemon stays', async (t) => {
  // A re-seed script that starts something in a session of its own (setsid) without redirecting
  // its output: the run waited for the pipes to close, which the daemon never did, so the re-seed
  // (and the node's rejoin) hung past its timeout, for as long as the daemon lived.
  const me = userInfo();
  const user = { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir };
  const started = performance.now();
  const r = await runAsOsUser(user, '/bin/sh', ['-c', 'setsid sleep 30 & echo $! ; echo restored'], { timeoutMs: 2_000, cwd: '/' });
  const tookMs = performance.now() - started;
  const daemonPid = Number(r.stdout.trim().split('\n')[0]);
  t.after(() => {
    try {
      process.kill(daemonPid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  assert.ok(tookMs < 1_500, `the run ended ${Math.round(tookMs)} ms after it started`);
  assert.equal(r.exitCode, 0);
  assert.equal(r.timedOut, false);
  assert.match(r.stdout, /restored/);
  assert.doesNotThrow(() => process.kill(daemonPid, 0), 'the daemon was left running');
});

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

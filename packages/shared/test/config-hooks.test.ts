// Goal: the agent file's hooks block parses with its defaults and refuses what could not work (a
// relative path, an unknown key, a timeout in seconds); and the start-up preflight (the daemon's
// and check-config's) refuses a hook program that is missing, not a file, not executable, or
// writable by anyone, naming the field and the fix, instead of finding out during a failover.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { agentPreflight, parseConfigText, type AgentConfig } from '../src/index.js';
import { agentYaml, lineAbout, problemsOf } from './config-helpers.js';

const asRoot = process.getuid?.() === 0;

test('Given hooks with only a path, Then args default to none and the timeouts to 5 s (before-promote) and 30 s (the others)', () => {
  const cfg = parseConfigText(agentYaml((d) => (d.hooks = { beforePromote: { path: '/usr/local/bin/gate' }, onRoleChange: { path: '/usr/local/bin/dns', args: ['--zone', 'db.internal'] } })), 'agent', 'agent.yaml');
  assert.deepEqual(cfg.hooks, { beforePromote: { path: '/usr/local/bin/gate', args: [], timeoutMs: 5000 }, onRoleChange: { path: '/usr/local/bin/dns', args: ['--zone', 'db.internal'], timeoutMs: 30_000 } });
  assert.deepEqual(parseConfigText(agentYaml(), 'agent', 'agent.yaml').hooks, {}, 'no hooks by default');
});

test('Given a relative hook path, an unknown hook and a timeout in seconds, Then each is reported with its field', async () => {
  const lines = await problemsOf(
    () => parseConfigText(agentYaml((d) => (d.hooks = { afterPromote: { path: 'reload.sh' }, onPromote: { path: '/x' }, onFence: { path: '/x', timeoutMs: 0.5 } })), 'agent', 'agent.yaml'),
    'PGVIP_CONFIG_INVALID',
  );
  lineAbout(lines, 'agent.yaml', 'hooks.afterPromote.path', 'must be an absolute path');
  lineAbout(lines, 'agent.yaml', 'hooks.onPromote', 'unknown key', 'valid keys here: beforePromote, afterPromote, onFence, onRejoin, onRoleChange');
  lineAbout(lines, 'agent.yaml', 'hooks.onFence.timeoutMs', 'integer');
});

function host(t: TestContext) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-hook-preflight-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (hooks: Record<string, string>): AgentConfig =>
    parseConfigText(
      agentYaml((d) => {
        d.stateDir = path.join(dir, 'state');
        d.cluster.auth = { disabled: true };
        d.hooks = Object.fromEntries(Object.entries(hooks).map(([k, p]) => [k, { path: p }]));
      }),
      'agent',
      'agent.yaml',
    );
  return { dir, config };
}

test('Given hook programs that cannot run, Then the preflight names each field and the fix; a ready program passes', async (t) => {
  const { dir, config } = host(t);
  const ok = path.join(dir, 'ok');
  writeFileSync(ok, '#!/bin/sh\n', { mode: 0o755 });
  const plain = path.join(dir, 'plain');
  writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 });
  const open = path.join(dir, 'open');
  writeFileSync(open, '#!/bin/sh\n');
  chmodSync(open, 0o777);
  mkdirSync(path.join(dir, 'adir'));
  assert.deepEqual(await agentPreflight(config({ beforePromote: ok })), []);
  const problems = (await agentPreflight(config({ beforePromote: path.join(dir, 'missing'), afterPromote: plain, onFence: open, onRejoin: path.join(dir, 'adir') }))).map((e) => e.message);
  const about = (field: string) => problems.find((m) => m.includes(`${field}: `)) ?? assert.fail(`nothing about ${field} in:\n${problems.join('\n')}`);
  assert.match(about('hooks.beforePromote.path'), /missing cannot be read \(ENOENT\); install the hook program there or remove the hook/);
  assert.match(about('hooks.afterPromote.path'), /plain is not executable; run: chmod \+x /);
  assert.match(about('hooks.onFence.path'), /open is writable by every user, who could make the agent run anything; run: chmod o-w /);
  assert.match(about('hooks.onRejoin.path'), /adir is not a regular file/);
});

test('Given check-config judging for the daemon\'s user, Then a hook only root may execute is refused', { skip: !asRoot && 'needs root to judge for another user' }, async (t) => {
  const { dir, config } = host(t);
  mkdirSync(path.join(dir, 'state'), { mode: 0o777 });
  const rootOnly = path.join(dir, 'root-only');
  writeFileSync(rootOnly, '#!/bin/sh\n', { mode: 0o700 });
  const problems = (await agentPreflight(config({ onRoleChange: rootOnly }), { asUser: { name: 'nobody', uid: 65534, gids: [65534] } })).map((e) => e.message);
  assert.ok(problems.some((m) => /hooks\.onRoleChange\.path: .*root-only is not executable by nobody; run: chmod \+x /.test(m)), problems.join('\n'));
});

test('Given hooks or a re-seed command on a host without setpriv, Then the preflight refuses and names util-linux', async (t) => {
  const { dir, config } = host(t);
  const ok = path.join(dir, 'ok');
  writeFileSync(ok, '#!/bin/sh\n', { mode: 0o755 });
  const nowhere = [path.join(dir, 'no-setpriv')];
  const problems = (await agentPreflight(config({ onRoleChange: ok }), { setprivCandidates: nowhere }))
    .map((e) => e.message);
  assert.ok(
    problems.some((m) => /hooks\.onRoleChange: setpriv was not found .*CAP_NET_ADMIN; install util-linux, or remove them/.test(m)),
    problems.join('\n'),
  );
  const withReseed = parseConfigText(
    agentYaml((d) => {
      d.stateDir = path.join(dir, 'state');
      d.cluster.auth = { disabled: true };
      d.rejoin = { reseed: { methods: ['command', 'basebackup'], command: { path: ok } } };
    }),
    'agent',
    'agent.yaml',
  );
  const reseedProblems = (await agentPreflight(withReseed, { setprivCandidates: nowhere })).map((e) => e.message);
  assert.ok(reseedProblems.some((m) => /rejoin\.reseed\.command: setpriv was not found/.test(m)), reseedProblems.join('\n'));
  // Where setpriv is there, or nothing would run through it, nothing is said about it.
  const setpriv = path.join(dir, 'setpriv');
  writeFileSync(setpriv, '#!/bin/sh\n', { mode: 0o755 });
  assert.deepEqual(await agentPreflight(config({ onRoleChange: ok }), { setprivCandidates: [setpriv] }), []);
  assert.deepEqual(await agentPreflight(config({}), { setprivCandidates: nowhere }), []);
});

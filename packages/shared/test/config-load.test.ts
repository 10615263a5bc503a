// Goal: problems reading or parsing a config file name the file, the place and the fix, never a stack.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PgvipError } from '../src/errors.js';
import { formatConfigError, loadAgentConfig, loadWitnessConfig, parseConfigText } from '../src/config/index.js';
import { agentYaml, assertHuman, problemsOf } from './config-helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pgvip-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a valid file on disk loads', async () => {
  const file = path.join(dir, 'agent.yaml');
  await writeFile(file, agentYaml());
  const config = await loadAgentConfig(file);
  assert.equal(config.self, 'db-a');
});

test('a missing file is PGVIP_CONFIG_UNREADABLE naming the path and ENOENT', async () => {
  const file = path.join(dir, 'nope.yaml');
  const [line] = await problemsOf(() => loadWitnessConfig(file), 'PGVIP_CONFIG_UNREADABLE');
  assert.ok(line?.startsWith(`${file}: no such file (ENOENT); `), line);
  assert.match(line ?? '', /deploy\/examples/);
});

test('a directory given as the config file is PGVIP_CONFIG_UNREADABLE', async () => {
  const [line] = await problemsOf(() => loadAgentConfig(dir), 'PGVIP_CONFIG_UNREADABLE');
  assert.ok(line?.startsWith(`${dir}: is a directory (EISDIR)`), line);
});

test('a file without read permission is PGVIP_CONFIG_UNREADABLE with a fix', { skip: process.getuid?.() === 0 ? 'root can read any file' : false }, async () => {
  const file = path.join(dir, 'locked.yaml');
  await writeFile(file, agentYaml());
  await chmod(file, 0o000);
  const [line] = await problemsOf(() => loadAgentConfig(file), 'PGVIP_CONFIG_UNREADABLE');
  assert.ok(line?.startsWith(`${file}: permission denied (EACCES); `), line);
});

test('a YAML syntax error is PGVIP_CONFIG_SYNTAX with line:column', async () => {
  const text = 'self: db-a\ncluster:\n  name: main: x\nlogLevel: info\n';
  const lines = await problemsOf(() => parseConfigText(text, 'agent', 'agent.yaml'), 'PGVIP_CONFIG_SYNTAX');
  assert.deepEqual(lines, ['agent.yaml:3:9: Nested mappings are not allowed in compact mappings']);
});

test('every syntax error of a file is listed, each with its own position', async () => {
  const text = 'self: db-a\ncluster:\n\tname: main\nlogLevel: info\nlogLevel: debug\n';
  const lines = await problemsOf(() => parseConfigText(text, 'agent', 'agent.yaml'), 'PGVIP_CONFIG_SYNTAX');
  assert.ok(lines.length >= 2, lines.join('\n'));
  assert.ok(lines.includes('agent.yaml:3:1: Tabs are not allowed as indentation'), lines.join('\n'));
  assert.ok(lines.every((l) => /^agent\.yaml:\d+:\d+: \S/.test(l)), lines.join('\n'));
});

test('a key given twice is a syntax error at the second occurrence', async () => {
  const text = 'self: db-a\nlogLevel: info\nself: db-b\n';
  const lines = await problemsOf(() => parseConfigText(text, 'agent', 'agent.yaml'), 'PGVIP_CONFIG_SYNTAX');
  assert.deepEqual(lines, ['agent.yaml:3:1: Map keys must be unique']);
});

test('an empty file says what the top level must be', async () => {
  const lines = await problemsOf(() => parseConfigText('', 'agent', 'agent.yaml'), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: (top level): must be a mapping with the keys self, listen, stateDir, logLevel, tls, hooks, rejoin, cluster (got null)']);
});

test('formatConfigError prints the code, the meaning and every problem, never a stack', () => {
  const error = new PgvipError('PGVIP_CONFIG_INVALID', 'a.yaml: x: bad (got 1)\na.yaml: y: bad (got 2)');
  assert.equal(
    formatConfigError(error),
    'PGVIP_CONFIG_INVALID: the config file has invalid fields (2 problems)\n  a.yaml: x: bad (got 1)\n  a.yaml: y: bad (got 2)',
  );
  const unexpected = formatConfigError(new TypeError('boom'));
  assert.equal(unexpected, 'unexpected error while loading the configuration: boom');
  assertHuman(unexpected);
});

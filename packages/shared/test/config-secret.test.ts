// Goal: readSecretFile returns a secret only from a private, non-empty file, and says how to fix
// a missing, empty or exposed one.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readSecretFile } from '../src/config/index.js';
import { problemsOf } from './config-helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pgvip-secret-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretFile(name: string, content: string, mode: number): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, content);
  await chmod(file, mode); // explicit: writeFile's mode is filtered by the umask
  return file;
}

test('a 0600 file yields its content without the trailing newline', async () => {
  const file = await secretFile('ok.key', 's3cret value\n', 0o600);
  assert.equal(await readSecretFile(file, 'cluster.auth.keyFile'), 's3cret value');
});

test('a 0400 file is fine too', async () => {
  const file = await secretFile('ro.key', 'abc', 0o400);
  assert.equal(await readSecretFile(file, 'cluster.auth.keyFile'), 'abc');
});

test('a world-readable secret is refused with the chmod that fixes it', async () => {
  const file = await secretFile('open.key', 'abc\n', 0o644);
  const [line] = await problemsOf(() => readSecretFile(file, 'cluster.auth.keyFile'), 'PGVIP_CONFIG_INVALID');
  assert.equal(line, `cluster.auth.keyFile: ${file} is readable or writable by group or others (got mode 0644); run: chmod 600 ${file}`);
});

test('a group-readable secret is refused as well', async () => {
  const file = await secretFile('group.key', 'abc\n', 0o640);
  const [line] = await problemsOf(() => readSecretFile(file, 'cluster.nodes[0].postgres.passwordFile'), 'PGVIP_CONFIG_INVALID');
  assert.match(line ?? '', /\(got mode 0640\); run: chmod 600 /);
});

test('a missing secret file names the field and how to create it', async () => {
  const file = path.join(dir, 'absent.key');
  const [line] = await problemsOf(() => readSecretFile(file, 'cluster.auth.keyFile'), 'PGVIP_CONFIG_UNREADABLE');
  assert.equal(line, `cluster.auth.keyFile: ${file} does not exist; create it with mode 0600, owned by the user the daemon runs as`);
});

test('an empty secret file is refused', async () => {
  const file = await secretFile('empty.key', '\n', 0o600);
  const [line] = await problemsOf(() => readSecretFile(file, 'operatorApi.tokenFile'), 'PGVIP_CONFIG_INVALID');
  assert.equal(line, `operatorApi.tokenFile: ${file} holds no secret (got "\\n"); write the secret into it`);
});

test('a directory is not a secret file', async () => {
  const [line] = await problemsOf(() => readSecretFile(dir, 'cluster.auth.keyFile'), 'PGVIP_CONFIG_UNREADABLE');
  assert.match(line ?? '', /is not a regular file/);
});

test('every reader gets the same secret whatever line ends or spaces surround it', async () => {
  // The witness and the CLI once disagreed about a token file ending in two newlines.
  for (const [name, content] of [
    ['two-newlines', 'tok3n\n\n'],
    ['crlf', 'tok3n\r\n'],
    ['spaces', '  tok3n \t\n'],
    ['bare', 'tok3n'],
  ] as const) {
    const file = await secretFile(`${name}.token`, content, 0o600);
    assert.equal(await readSecretFile(file, 'operatorApi.tokenFile'), 'tok3n', name);
  }
});

test('a file of white space only holds no secret', async () => {
  const file = await secretFile('blank.token', ' \r\n\n', 0o600);
  const [line] = await problemsOf(() => readSecretFile(file, 'operatorApi.tokenFile'), 'PGVIP_CONFIG_INVALID');
  assert.match(line ?? '', /holds no secret/);
});

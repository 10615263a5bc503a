// Goal: cluster keys are random and stored as 0600 hex files; a key file that is missing, readable by
// other users, too short or not hex is refused with a coded error whose detail says how to fix it.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KEY_BYTES, formatKeyFile, generateKey, loadKey, parseKeyFile, writeKeyFile } from '../src/auth/key.js';

describe('auth: cluster key files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pgvip-key-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates distinct keys of KEY_BYTES random bytes', () => {
    const a = generateKey();
    assert.equal(a.length, KEY_BYTES);
    assert.notDeepEqual(a, generateKey());
  });

  it('writes a key file with mode 0600 and loads the same key back', async () => {
    const file = path.join(dir, 'written.key');
    const key = generateKey();
    await writeKeyFile(file, key);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await loadKey(file), key);
  });

  it('never overwrites an existing key file', async () => {
    const file = path.join(dir, 'existing.key');
    await writeKeyFile(file, generateKey());
    await assert.rejects(writeKeyFile(file, generateKey()), { code: 'PGVIP_AUTH_KEY_FILE', detail: /EEXIST/ });
  });

  it('accepts the output of `openssl rand -hex 32`, upper case and a trailing newline', () => {
    const hex = 'AB'.repeat(KEY_BYTES);
    assert.deepEqual(parseKeyFile(`${hex}\n`, 'k'), Buffer.alloc(KEY_BYTES, 0xab));
  });

  it('refuses a missing file', async () => {
    await assert.rejects(loadKey(path.join(dir, 'absent.key')), { code: 'PGVIP_CONFIG_UNREADABLE', detail: /^auth\.keyFile: .*absent\.key does not exist/ });
  });

  it('refuses a file other users can read, saying how to fix it', async () => {
    const file = path.join(dir, 'open.key');
    await writeFile(file, formatKeyFile(generateKey()), { mode: 0o600 });
    await chmod(file, 0o644);
    await assert.rejects(loadKey(file), { code: 'PGVIP_CONFIG_INVALID', detail: new RegExp(`mode 0644.*chmod 600 ${file}`) });
  });

  it('refuses a key that is too short or not hex, without echoing it', () => {
    assert.throws(() => parseKeyFile('ab'.repeat(16), 'short.key'), { code: 'PGVIP_AUTH_KEY_FILE', detail: /16 bytes; at least 32/ });
    assert.throws(() => parseKeyFile('', 'empty.key'), { code: 'PGVIP_AUTH_KEY_FILE', detail: /0 bytes/ });
    assert.throws(() => parseKeyFile('correct horse battery staple correct horse battery staple!!!!!!!!', 'text.key'), (e: Error) => {
      assert.match(e.message, /PGVIP_AUTH_KEY_FILE.*one line of hex digits/);
      assert.doesNotMatch(e.message, /horse/);
      return true;
    });
    assert.throws(() => parseKeyFile('abc', 'odd.key'), { code: 'PGVIP_AUTH_KEY_FILE' });
  });

  it('refuses a key file holding a short key, naming the config field', async () => {
    const file = path.join(dir, 'short.key');
    await writeFile(file, 'ab'.repeat(16), { mode: 0o600 });
    await assert.rejects(loadKey(file, 'cluster.auth.keyFile'), { code: 'PGVIP_AUTH_KEY_FILE', detail: /^key file cluster\.auth\.keyFile \(.*short\.key\): the key is 16 bytes/ });
  });

  it('refuses a directory', async () => {
    await assert.rejects(loadKey(dir), { code: 'PGVIP_CONFIG_UNREADABLE', detail: /not a regular file/ });
  });
});

// Goal: the files the agent writes for PostgreSQL (postgresql.auto.conf, pg_hba.conf) go through a
// temp file beside them that it creates itself: a symbolic link planted at the temp name by the
// directory's owner (postgres) is never followed. An agent run as root (by hand) once wrote and
// chowned whatever the link named, which let postgres take over any file of root's.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { writeFileAtomically } from '../src/postgres/auto-conf.js';

test('Given a link planted at the temp name, When the agent writes the file, Then the link target is untouched', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-atomic-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const victim = path.join(dir, 'victim');
  writeFileSync(victim, 'root:secret\n', { mode: 0o640 });
  const file = path.join(dir, 'postgresql.auto.conf');
  symlinkSync(victim, `${file}.pgvip-tmp`);
  await writeFileAtomically(file, "primary_conninfo = 'host=db-b'\n", { uid: process.getuid!(), gid: process.getgid!() });
  assert.equal(readFileSync(victim, 'utf8'), 'root:secret\n', 'the link target was not written');
  assert.equal(statSync(victim).mode & 0o777, 0o640, 'nor its mode changed');
  assert.equal(readFileSync(file, 'utf8'), "primary_conninfo = 'host=db-b'\n");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(!statSync(file, { throwIfNoEntry: false })?.isSymbolicLink());
});

// Goal: durable state survives restarts, is written atomically, and a corrupt file stops the daemon
// with a coded error instead of silently starting again at term 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDurableFile } from '../src/state/durable-file.js';
import { agentDurableSchema, witnessStateFileSchema } from '../src/state/schemas.js';
import { isPgvipError } from '../src/errors.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a missing file yields the initial state; a saved one reads back the same', (t) => {
  const file = createDurableFile(path.join(tempDir(t), 'sub', 'agent.json'), agentDurableSchema, { term: 0, primaryOfTerm: null });
  assert.deepEqual(file.load(), { term: 0, primaryOfTerm: null });
  file.save({ term: 7, primaryOfTerm: 'db-b' });
  assert.deepEqual(file.load(), { term: 7, primaryOfTerm: 'db-b' });
  assert.equal(statSync(file.path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(path.dirname(file.path)), ['agent.json'], 'no temp file left behind');
});

test('a corrupt, foreign or invalid file is refused with PGVIP_STATE_CORRUPT naming the file', (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'agent.json');
  const file = createDurableFile(f, agentDurableSchema, { term: 0, primaryOfTerm: null });
  for (const [content, hint] of [
    ['{"format":"pgvip-state","version":1,"state":{"term":', 'not valid JSON'],
    ['{"hello":1}', 'not a pgvip state file'],
    ['{"format":"pgvip-state","version":1,"state":{"term":-1,"primaryOfTerm":null}}', 'invalid content: term'],
  ] as const) {
    writeFileSync(f, content);
    assert.throws(() => file.load(), (e) => isPgvipError(e, 'PGVIP_STATE_CORRUPT') && e.message.includes(f) && e.message.includes(hint));
  }
});

test('the witness file keeps one durable record per cluster', (t) => {
  const file = createDurableFile(path.join(tempDir(t), 'witness.json'), witnessStateFileSchema, {});
  const rec = { term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a', syncEligible: 'db-b', maintenance: false };
  file.save({ orders: rec, billing: { ...rec, term: 1 } });
  assert.deepEqual(file.load(), { orders: rec, billing: { ...rec, term: 1 } });
});

test('a save into an unwritable place fails with PGVIP_STATE_WRITE', (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'blocker'), 'x');
  const file = createDurableFile(path.join(dir, 'blocker', 'agent.json'), agentDurableSchema, { term: 0, primaryOfTerm: null });
  assert.throws(() => file.save({ term: 1, primaryOfTerm: null }), (e) => isPgvipError(e, 'PGVIP_STATE_WRITE'));
});

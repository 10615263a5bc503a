// Goal: a rejoin never runs while the slot keeper has the standby stopped to load copied logical
// slots: LocalPostgres.exclusive() runs one such operation at a time, and rejoinAsStandby waits its
// turn (a standby stopped for the copy looks down to the decision loop, which may ask for a rejoin).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { freePort } from '../../../test/integration/helpers.js';

test('a rejoin asked for while an exclusive operation runs starts only after it, and a failed one frees the turn', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-exclusive-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort(); // nothing listens: the rejoin fails at its first statement on the primary
  const pg = new LocalPostgres({ nodeName: 'db-b', host: '127.0.0.1', port, user: 'postgres', database: 'postgres', dataDir: path.join(dir, 'data') });
  t.after(() => pg.close());
  const order: string[] = [];
  const copy = pg.exclusive(async () => {
    order.push('copy started');
    await new Promise((r) => setTimeout(r, 400));
    order.push('copy done');
  });
  const rejoin = pg.rejoinAsStandby({ primary: { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' } })
    .then(() => order.push('rejoin done'), () => order.push('rejoin failed'));
  await Promise.all([copy, rejoin]);
  assert.deepEqual(order, ['copy started', 'copy done', 'rejoin failed']);
  // The failed rejoin does not keep the turn.
  assert.equal(await pg.exclusive(async () => 'next'), 'next');
  await assert.rejects(pg.exclusive(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await pg.exclusive(async () => 'after a failure'), 'after a failure');
});

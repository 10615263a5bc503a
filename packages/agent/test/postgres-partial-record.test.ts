// Goal: a standby whose stream was cut in the middle of a WAL record (a primary frozen or cut off
// while it streamed a large record, or right after the WAL writer flushed a page boundary inside one)
// can still be promoted: its last, incomplete record is never replayed, so the WAL receiver stop must
// not wait for replay to reach the received position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

test('Given a standby that received only the first part of a large WAL record, When its WAL receiver is stopped, Then the final position is read and it promotes', async (t) => {
  const cluster = await startPgCluster(t);
  const standby = new LocalPostgres(cluster.standby.agentConfig);
  await standby.ensureManagedSettings(); // as the agent does at start: wal_retrieve_retry_interval among them
  const lsn = async (sql: string): Promise<bigint> => {
    const text = await cluster.standby.psql(`SELECT (${sql} - '0/0'::pg_lsn)::bigint`);
    return BigInt(text);
  };
  const before = await lsn('pg_last_wal_receive_lsn()');
  // One 256 MB record: segments complete and are flushed (and streamed) while it is being inserted.
  const big = cluster.primary.psql("SELECT pg_logical_emit_message(false, 'pgvip-test', repeat('x', 256 * 1024 * 1024))", 120_000).catch(() => 'cut');
  await waitUntil('the standby to receive part of the record', 60_000, async () => (await lsn('pg_last_wal_receive_lsn()')) > before + 32n * 1024n * 1024n, 5);
  cluster.primary.freeze();
  try {
    const replay = await lsn('pg_last_wal_replay_lsn()');
    const received = await lsn('pg_last_wal_receive_lsn()');
    t.diagnostic(`received ${received - before} bytes of the record, replayed ${replay - before}`);
    assert.ok(received > replay, 'the standby holds an incomplete record');
    const final = await standby.stopWalReceiverAndReadFinalLsn();
    assert.ok(final.receiveLsn !== null && final.receiveLsn >= received, 'the received position is reported');
    assert.ok(final.replayLsn < final.receiveLsn, 'replay ends before the incomplete record');
    const promoted = await standby.promote(30);
    assert.equal(promoted.alreadyPrimary, false);
    assert.equal(await cluster.standby.psql('SELECT pg_is_in_recovery()'), 'f');
  } finally {
    cluster.primary.thaw();
    await big;
  }
});

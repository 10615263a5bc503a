// Goal: a switchover's final LSN is the end of everything the old primary will ever write, on real
// PostgreSQL 15 with three nodes on loopback (docs/design.md, "More than one standby"). The old
// primary is stopped after the handover to rejoin as a standby, and a clean stop writes one more
// record, the shutdown checkpoint, which its walsenders send to every standby still connected. A
// final LSN read before that stop lets the successor promote below it while the third node receives
// it: the third node's WAL is then past the successor's fork and it cannot follow without a rewind.
// The switchover's fence is therefore the clean stop itself, and its final LSN the end of the
// shutdown checkpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeVipCloud, FakeVipPort, LocalPostgres, slotNameFor, type PgEndpoint } from '@pgvip/agent';
import { runEffect, type EffectPorts } from '../src/effects.js';
import { formatLsn, parseLsn } from '../src/postgres/lsn.js';
import { readShutdownEnd, recordEnd, walFileName } from '../src/postgres/shutdown-lsn.js';
import { lookUpOsUser } from '../src/postgres/os-command.js';
import { resolvePostgresConfig } from '../src/postgres/config.js';
import { addPgStandby, startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const ids = ['db-a', 'db-b', 'db-c'] as const;

async function threeNodes(t: { after(fn: () => void | Promise<void>): void }) {
  const cluster = await startPgCluster(t);
  const c = await addPgStandby(cluster, 'db-c');
  const nodes: Record<string, PgNode> = { 'db-a': cluster.primary, 'db-b': cluster.standby, 'db-c': c };
  const pg: Record<string, LocalPostgres> = {};
  for (const id of ids) pg[id] = new LocalPostgres(nodes[id]!.agentConfig);
  for (const p of Object.values(pg)) await p.ensureManagedSettings();
  t.after(() => Object.values(pg).forEach((p) => p.close()));
  const endpoints: Record<string, PgEndpoint> = {};
  for (const id of ids) endpoints[id] = nodes[id]!.endpoint;
  const ports = (self: string): EffectPorts => ({
    pg: pg[self]!,
    vip: new FakeVipPort(new FakeVipCloud(), self),
    endpoints,
    names: { 'db-a': 'db-a', 'db-b': 'db-b', 'db-c': 'db-c' },
    promoteWaitSeconds: 30,
    slots: { self: slotNameFor(self), peer: slotNameFor(self === 'db-a' ? 'db-b' : 'db-a'), others: ids.filter((x) => x !== self).map(slotNameFor) },
  });
  return { nodes, pg, endpoints, ports };
}

async function lsnOf(node: PgNode, expr: string): Promise<bigint> {
  return parseLsn(await node.psql(`SELECT ${expr}`));
}

test('Given three nodes, When db-a switches over to db-b with the fence the core asks for, Then db-c receives nothing past db-b\'s fork and follows db-b without a rewind', async (t) => {
  const n = await threeNodes(t);
  const a = n.nodes['db-a']!;
  const b = n.nodes['db-b']!;
  const c = n.nodes['db-c']!;
  await a.psql('CREATE TABLE w AS SELECT g FROM generate_series(1, 1000) g');
  // The switchover's fence (core/agent/switchover.ts asks for a clean stop with three nodes).
  const startedAt = performance.now();
  const fenced = await runEffect(1, { kind: 'fence', mode: 'fast-stop' }, n.ports('db-a'));
  const fencedAt = performance.now();
  assert.ok(fenced.ok, fenced.detail);
  assert.notEqual(fenced.finalLsn, undefined, `the fence reports a final LSN: ${fenced.detail}`);
  const finalLsn = fenced.finalLsn!;
  // The core waits for the successor to replay the final LSN, then hands over; db-b promotes.
  await waitUntil(`db-b to replay ${formatLsn(finalLsn)}`, 30_000, async () => (await lsnOf(b, 'pg_last_wal_replay_lsn()')) >= finalLsn);
  const forkAt = await lsnOf(b, 'pg_last_wal_replay_lsn()');
  assert.equal(forkAt, finalLsn, 'the old primary wrote nothing past its final LSN');
  // The successor's promotion pipeline: its WAL receiver stopped, then the promotion.
  const caughtUpAt = performance.now();
  const stopped = await runEffect(5, { kind: 'stop-wal-receiver' }, n.ports('db-b'));
  assert.ok(stopped.ok, stopped.detail);
  assert.equal(stopped.finalLsn, finalLsn);
  const receiverStoppedAt = performance.now();
  assert.ok((await runEffect(2, { kind: 'promote' }, n.ports('db-b'))).ok);
  const ms = (a: number, b: number) => Math.round(b - a);
  t.diagnostic(`fence (clean stop) ${ms(startedAt, fencedAt)} ms, db-b replayed it ${ms(fencedAt, caughtUpAt)} ms later, ` +
    `its receiver stopped in ${ms(caughtUpAt, receiverStoppedAt)} ms, promoted in ${ms(receiverStoppedAt, performance.now())} ms`);
  // The old primary is stopped to rejoin (as rejoinAsStandby does): nothing more reaches db-c.
  await n.pg['db-a']!.stop('fast');
  const received = await lsnOf(c, 'pg_last_wal_receive_lsn()');
  t.diagnostic(`final LSN ${formatLsn(finalLsn)}, db-b forked at ${formatLsn(forkAt)}, db-c received ${formatLsn(received)}`);
  assert.ok(received <= forkAt, `db-c received ${formatLsn(received)}, past db-b's fork at ${formatLsn(forkAt)}`);
  const followed = await runEffect(3, { kind: 'follow', primary: 'db-b' }, n.ports('db-c'));
  assert.ok(followed.ok, followed.detail);
  assert.match(followed.detail, /^streaming from db-b/);
  // And the old primary starts as a standby of db-b with no rewind: its WAL ends where db-b forked.
  const rejoined = await runEffect(4, { kind: 'rejoin', primary: 'db-b' }, n.ports('db-a'));
  assert.ok(rejoined.ok, rejoined.detail);
  assert.match(rejoined.detail, /^rewind in \d+ ms$/);
  assert.match(await a.psql('SELECT pg_is_in_recovery()'), /^t$/);
});

test('Given the read-only fence (the switchover\'s before), When the old primary is stopped after db-b promoted, Then its shutdown checkpoint reaches db-c past db-b\'s fork', async (t) => {
  const n = await threeNodes(t);
  const b = n.nodes['db-b']!;
  const c = n.nodes['db-c']!;
  const fenced = await runEffect(1, { kind: 'fence', mode: 'read-only' }, n.ports('db-a'));
  assert.ok(fenced.ok && fenced.finalLsn !== undefined, fenced.detail);
  await waitUntil('db-b to replay the final LSN', 30_000, async () => (await lsnOf(b, 'pg_last_wal_replay_lsn()')) >= fenced.finalLsn!);
  assert.ok((await runEffect(2, { kind: 'promote' }, n.ports('db-b'))).ok);
  const forkAt = await lsnOf(b, 'pg_last_wal_replay_lsn()');
  await n.pg['db-a']!.stop('fast');
  const received = await lsnOf(c, 'pg_last_wal_receive_lsn()');
  t.diagnostic(`final LSN ${formatLsn(fenced.finalLsn!)}, db-b forked at ${formatLsn(forkAt)}, db-c received ${formatLsn(received)}`);
  // What db-c got past the fork is the stop's shutdown checkpoint and nothing else: 120 bytes (160 when
  // it opens a segment), as in the lab, where db-c then could not follow db-b.
  assert.ok(received > forkAt, 'db-c is past the fork');
  const a = n.nodes['db-a']!.agentConfig;
  const end = await readShutdownEnd(resolvePostgresConfig(a), await lookUpOsUser(a.osUser ?? 'postgres'));
  assert.ok('lsn' in end, 'unknown' in end ? end.unknown : '');
  assert.equal(received, end.lsn, 'db-c received exactly through db-a\'s shutdown checkpoint');
});

test('Given a record that crosses a page or a segment boundary, Then its end counts the page header it continues after', () => {
  const block = 8192n;
  const segment = 16n * 1024n * 1024n;
  assert.equal(recordEnd(0x4027AC0n, 114, block, segment), 0x4027B38n, 'within a page: MAXALIGNed');
  // 16 bytes left on the page: 98 continue after a 24-byte header.
  assert.equal(recordEnd(2n * block - 16n, 114, block, segment), 2n * block + 24n + 104n);
  // At a segment's end the next page has the 40-byte long header.
  assert.equal(recordEnd(segment - 16n, 114, block, segment), segment + 40n + 104n);
});

test('Given an LSN and a timeline, Then the WAL file named is PostgreSQL\'s (XLogFileName)', () => {
  const segment = 16n * 1024n * 1024n;
  assert.equal(walFileName(1, 0x4027B38n, segment), '000000010000000000000004');
  assert.equal(walFileName(2, 0x1_0300_0028n, segment), '000000020000000100000003');
  assert.equal(walFileName(3, 0x1_0300_0028n, 64n * 1024n * 1024n), '000000030000000100000000');
});

// Goal: the agent's PostgreSQL work for three database nodes, on real PostgreSQL 15 (a primary and
// two streaming standbys on loopback; docs/design.md, "More than one standby"): ANY k set and in
// force in every walsender (and the wait for one that has not applied it), R2's catch-up, a standby
// re-pointed at a new primary by a reload (no restart), divergence seen from the new primary's
// history, the WAL receiver resumed, and the snapshot's claim, replicas and upstream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeVipCloud, FakeVipPort, LocalPostgres, slotNameFor, type PgEndpoint, type PgReachableObservation } from '@pgvip/agent';
import { runEffect, type EffectPorts } from '../src/effects.js';
import { parseSynchronousStandbyNames } from '../src/postgres/sync-names.js';
import { nodeFields, ReplicaReplies } from '../src/pg-snapshot.js';
import { addPgStandby, startPgCluster, type PgNode } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

interface Three {
  a: PgNode;
  b: PgNode;
  c: PgNode;
  pg: { a: LocalPostgres; b: LocalPostgres; c: LocalPostgres };
  endpoints: Record<string, PgEndpoint>;
}

async function threeNodes(t: { after(fn: () => void | Promise<void>): void }): Promise<Three> {
  const cluster = await startPgCluster(t);
  const c = await addPgStandby(cluster, 'db-c');
  const pg = {
    a: new LocalPostgres(cluster.primary.agentConfig),
    b: new LocalPostgres(cluster.standby.agentConfig),
    c: new LocalPostgres(c.agentConfig),
  };
  // The managed settings a real agent applies: the 200 ms retry interval and 'latest' timeline matter here.
  for (const p of Object.values(pg)) await p.ensureManagedSettings();
  t.after(() => Object.values(pg).forEach((p) => p.close()));
  const endpoints = { 'db-a': cluster.primary.endpoint, 'db-b': cluster.standby.endpoint, 'db-c': c.endpoint };
  return { a: cluster.primary, b: cluster.standby, c, pg, endpoints };
}

const names = { 'db-a': 'db-a', 'db-b': 'db-b', 'db-c': 'db-c' };

/** sync_state:sync_priority of each walsender, by application_name. */
async function walsenders(primary: PgNode): Promise<string> {
  return primary.psql("SELECT string_agg(application_name || ':' || sync_state || ':' || sync_priority, ' ' ORDER BY application_name) FROM pg_stat_replication");
}

/**
 * Whether one INSERT's commit waits for standbys for 1.5 s (psql is ended then: a statement_timeout
 * would not end it, it is off while a commit waits; the backend's wait ends with db-c's thaw).
 */
async function commitWaits(primary: PgNode): Promise<boolean> {
  try {
    await primary.psql('INSERT INTO w VALUES (1)', 1_500);
    return false;
  } catch (err) {
    if (/killed after/.test((err as Error).message)) return true;
    throw err;
  }
}

/** The walsender's pid on `primary` for standby `name`. */
async function walsenderPid(primary: PgNode, name: string): Promise<number> {
  return Number(await primary.psql(`SELECT pid FROM pg_stat_replication WHERE application_name = '${name}'`));
}

test('Given three nodes, When the primary sets ANY 2 then ANY 1 of (db-b, db-c), Then each is in force: commits wait for two standbys, then for one', async (t) => {
  const n = await threeNodes(t);
  const any2 = await n.pg.a.applySynchronousStandbyNames('ANY 2 ("db-b", "db-c")');
  // From '': the checkpointer's flag is waited for too.
  assert.equal(any2.checkpointer, true);
  assert.deepEqual([...any2.walsenders].map((w) => w.replace(/\(\d+\)/, '')).sort(), ['db-b', 'db-c']);
  assert.equal(await walsenders(n.a), 'db-b:quorum:1 db-c:quorum:1');
  const obs = await n.pg.a.observe();
  assert.ok(obs.reachable);
  const fields = nodeFields(obs, { names, endpoints: n.endpoints, replies: new ReplicaReplies() }, 0);
  assert.deepEqual(fields.syncClaim, { members: ['db-b', 'db-c'], k: 2 });
  assert.deepEqual(fields.replicas.map((r) => `${r.node}:${r.syncState}:${r.streaming}`), ['db-b:quorum:true', 'db-c:quorum:true']);
  assert.equal(fields.upstream, null);

  // db-c stops answering: under ANY 2 a commit waits for it, under ANY 1 it does not.
  await n.a.psql('CREATE TABLE w (x int)');
  n.c.freeze();
  t.after(() => n.c.thaw());
  assert.equal(await commitWaits(n.a), true, 'ANY 2 with db-c frozen: the commit waits for it');
  const any1 = await n.pg.a.applySynchronousStandbyNames('ANY 1 ("db-b", "db-c")');
  assert.equal(any1.checkpointer, false);
  t.diagnostic(`in force: ANY 2 from '' in ${any2.durationMs} ms (two CHECKPOINTs), ANY 1 from ANY 2 in ${any1.durationMs} ms`);
  assert.equal(await commitWaits(n.a), false, 'ANY 1: db-b alone acknowledges');
  n.c.thaw();
  // Once in force, the same value again does nothing.
  assert.equal((await n.pg.a.applySynchronousStandbyNames('ANY 1 ("db-b", "db-c")')).unchanged, true);
});

test('Given a walsender that has not applied a reload (SIGSTOPped), When a set adds its standby, Then the set waits for it and ends once it has', async (t) => {
  const n = await threeNodes(t);
  await n.pg.a.applySynchronousStandbyNames('ANY 1 ("db-b")');
  const pid = await walsenderPid(n.a, 'db-c');
  process.kill(pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  });
  // With a short bound the set fails, naming the walsender that has not applied it. Short, but long
  // enough for the two reload rounds on a loaded machine: a bound that ends before them ends with a
  // plain timeout, with no walsender to name yet.
  const timeouts = { ...n.a.agentConfig.timeouts, syncSettingMs: 4_000 };
  const short = new LocalPostgres({ ...n.a.agentConfig, timeouts });
  t.after(() => short.close());
  await assert.rejects(
    short.applySynchronousStandbyNames('ANY 1 ("db-b", "db-c")'),
    /is set but not yet in force: db-c\(\d+\) shows sync_priority 0, not 1$/,
  );
  const startedAt = performance.now();
  let done = false;
  const set = n.pg.a.applySynchronousStandbyNames('ANY 1 ("db-b", "db-c")').finally(() => (done = true));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(done, false, 'in force only once db-c\'s walsender shows priority 1');
  assert.equal(await walsenders(n.a), 'db-b:quorum:1 db-c:async:0');
  process.kill(pid, 'SIGCONT');
  await set;
  assert.ok(performance.now() - startedAt >= 1500);
  assert.equal(await walsenders(n.a), 'db-b:quorum:1 db-c:quorum:1');
});

test('Given ANY 1 of (db-b, db-c) with db-c frozen, Then a catch-up of one member ends at once, of both times out naming db-c, and ends once db-c is back', async (t) => {
  const n = await threeNodes(t);
  await n.pg.a.applySynchronousStandbyNames('ANY 1 ("db-b", "db-c")');
  n.c.freeze();
  t.after(() => n.c.thaw());
  await n.a.psql('CREATE TABLE moved AS SELECT g FROM generate_series(1, 1000) g');
  const one = await n.pg.a.syncCatchUp(['db-b', 'db-c'], 1, 5_000);
  assert.equal(one.caughtUp, true);
  const both = await n.pg.a.syncCatchUp(['db-b', 'db-c'], 2, 800);
  assert.equal(both.caughtUp, false);
  assert.ok(both.durationMs >= 800);
  const lagging = both.positions
    .filter((p) => p.flushLsn === null || p.flushLsn < both.targetLsn)
    .map((p) => p.applicationName);
  assert.deepEqual(lagging, ['db-c']);
  n.c.thaw();
  const after = await n.pg.a.syncCatchUp(['db-b', 'db-c'], 2, 10_000);
  assert.equal(after.caughtUp, true, JSON.stringify(after.positions, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  assert.ok(after.targetLsn >= both.targetLsn);
});

async function reachableObs(pg: LocalPostgres): Promise<PgReachableObservation> {
  const obs = await pg.observe();
  assert.ok(obs.reachable);
  return obs;
}

/** Stops db-a (as a failover finds it) once both standbys replayed all of it, and promotes db-b. */
async function failOverToB(n: Three, replayedBy: PgNode[] = [n.b, n.c]): Promise<void> {
  await n.a.psql('CREATE TABLE before_failover AS SELECT 1 AS x');
  const lsn = await n.a.psql('SELECT pg_current_wal_lsn()');
  for (const s of replayedBy) {
    await waitUntil(`${s.name} to replay ${lsn}`, 30_000, async () => (await s.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
  }
  await n.pg.a.stop('immediate');
  await n.pg.b.stopWalReceiverAndReadFinalLsn();
  await n.pg.b.promote(30);
}

test('Given db-b promoted after db-a was lost, When db-c follows db-b, Then it streams from db-b through its slot after a reload, without a restart', async (t) => {
  const n = await threeNodes(t);
  await failOverToB(n);
  await n.pg.c.stopWalReceiverAndReadFinalLsn(); // db-c withdrew, as for the election
  const pidBefore = n.c.postmasterPid();
  const r = await n.pg.c.followPrimary(n.endpoints['db-b']!, { name: 'db-b', slotName: slotNameFor('db-c') });
  assert.equal(r.outcome, 'streaming', JSON.stringify(r));
  t.diagnostic(`db-c re-pointed at db-b and streaming in ${r.durationMs} ms`);
  assert.equal(n.c.postmasterPid(), pidBefore, 'no restart');
  assert.equal(await n.c.psql('SELECT sender_port FROM pg_stat_wal_receiver'), String(n.b.port));
  assert.equal(await n.b.psql(`SELECT active FROM pg_replication_slots WHERE slot_name = '${slotNameFor('db-c')}'`), 't');
  await n.b.psql('CREATE TABLE after_failover AS SELECT 2 AS x');
  await waitUntil('db-c to replay db-b\'s table', 30_000, async () => (await n.c.psql("SELECT count(*) FROM pg_class WHERE relname = 'after_failover'")) === '1');
  const obs = await n.pg.c.observe();
  assert.ok(obs.reachable);
  assert.equal(nodeFields(obs, { names, endpoints: n.endpoints }, 0).upstream, 'db-b');
  // Again: nothing to change. A resume now must not take db-c back to db-a, where it stopped.
  const again = await n.pg.c.followPrimary(n.endpoints['db-b']!, { name: 'db-b', slotName: slotNameFor('db-c') });
  assert.deepEqual(again.outcome === 'streaming' && again.reconfigured, false);
  await n.pg.c.resumeWalReceiver();
  assert.equal(nodeFields(await reachableObs(n.pg.c), { names, endpoints: n.endpoints }, 0).upstream, 'db-b');
});

test('Given db-c replayed WAL db-b never had, When db-c follows db-b, Then it reports diverged: (PostgreSQL refuses the timeline) well before the timeout', async (t) => {
  const n = await threeNodes(t);
  // db-b stops receiving; db-a writes on, db-c replays it; then db-a is lost and db-b promoted.
  await n.pg.b.stopWalReceiverAndReadFinalLsn();
  await n.a.psql('CREATE TABLE only_on_c AS SELECT g FROM generate_series(1, 100) g');
  const lsn = await n.a.psql('SELECT pg_current_wal_lsn()');
  await waitUntil('db-c to replay past db-b', 30_000, async () => (await n.c.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
  await n.pg.a.stop('immediate');
  await n.pg.b.promote(30);
  const r = await n.pg.c.followPrimary(n.endpoints['db-b']!, { name: 'db-b', slotName: slotNameFor('db-c'), timeoutMs: 10_000 });
  assert.ok(r.outcome === 'diverged', JSON.stringify(r));
  assert.match(r.detail, /replayed timeline 1 to \S+, past \S+ where db-b's timeline 2 forked from it/);
  assert.ok(r.durationMs < 5_000, `${r.durationMs} ms`);
  t.diagnostic(`diverged seen in ${r.durationMs} ms`);
  // PostgreSQL agrees: db-c never streams from db-b.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  assert.notEqual(await n.c.psql("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver WHERE pid IS NOT NULL), 'none')"), 'streaming');
  assert.equal(await n.c.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_on_c'"), '1');
});

test('Given db-c far behind when db-b was promoted, When db-c follows db-b, Then done only once it streams db-b\'s timeline 2, not the old one', async (t) => {
  const n = await threeNodes(t);
  // db-c stops receiving; db-a writes some 48 MB that db-b has and db-c must first fetch on timeline 1.
  await n.pg.c.stopWalReceiverAndReadFinalLsn();
  await n.a.psql('CREATE TABLE bulk AS SELECT g, repeat(\'x\', 200) AS pad FROM generate_series(1, 200000) g', 60_000);
  await failOverToB(n, [n.b]);
  const r = await n.pg.c.followPrimary(n.endpoints['db-b']!, { name: 'db-b', slotName: slotNameFor('db-c'), timeoutMs: 20_000 });
  assert.equal(r.outcome, 'streaming', JSON.stringify(r));
  t.diagnostic(`db-c streaming db-b's timeline in ${r.durationMs} ms`);
  // Read at once: "ok" means the receiver streams timeline 2, not timeline 1 up to the fork point.
  assert.equal(await n.c.psql('SELECT received_tli FROM pg_stat_wal_receiver'), '2');
});

test('Given db-c followed db-b onto timeline 2, When its WAL receiver is gone, Then it reports timeline 2, not its last restartpoint\'s', async (t) => {
  const n = await threeNodes(t);
  await failOverToB(n);
  const r = await n.pg.c.followPrimary(n.endpoints['db-b']!, { name: 'db-b', slotName: slotNameFor('db-c') });
  assert.equal(r.outcome, 'streaming', JSON.stringify(r));
  await n.b.psql('CREATE TABLE on_two AS SELECT 1 AS x');
  const lsn = await n.b.psql('SELECT pg_current_wal_lsn()');
  await waitUntil('db-c to replay db-b\'s table', 30_000, async () => (await n.c.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
  // No restartpoint since the switch: the control file still names timeline 1.
  assert.equal(await n.c.psql('SELECT timeline_id FROM pg_control_checkpoint()'), '1');
  const final = await n.pg.c.stopWalReceiverAndReadFinalLsn();
  assert.equal((await reachableObs(n.pg.c)).timelineId, 2);
  assert.equal(final.timelineId, 2);
});

test('Given db-c withdrew (its WAL receiver stopped), When it resumes, Then it streams from db-a again and its upstream reads db-a', async (t) => {
  const n = await threeNodes(t);
  const upstream = async (): Promise<string | null> => {
    const obs = await n.pg.c.observe();
    assert.ok(obs.reachable);
    return nodeFields(obs, { names, endpoints: n.endpoints }, 0).upstream;
  };
  assert.equal(await upstream(), 'db-a');
  await n.pg.c.stopWalReceiverAndReadFinalLsn();
  assert.equal(await upstream(), null);
  const startedAt = performance.now();
  await n.pg.c.resumeWalReceiver();
  await waitUntil('db-c to stream from db-a again', 10_000, async () => (await n.c.psql("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver WHERE pid IS NOT NULL), 'none')")) === 'streaming');
  t.diagnostic(`streaming again ${Math.round(performance.now() - startedAt)} ms after the resume`);
  assert.equal(await upstream(), 'db-a');
  // A port that did not stop the receiver has nothing to resume to.
  const fresh = new LocalPostgres(n.c.agentConfig);
  t.after(() => fresh.close());
  await fresh.stopWalReceiverAndReadFinalLsn();
  const other = new LocalPostgres(n.c.agentConfig);
  t.after(() => other.close());
  await assert.rejects(other.resumeWalReceiver(), /no primary to resume the WAL receiver from/);
  await other.resumeWalReceiver(n.endpoints['db-a']);
});

test('Given node ids other than the application names, When the core\'s N-node effects run, Then PostgreSQL gets the names and the details name the nodes', async (t) => {
  const n = await threeNodes(t);
  const ids = { a: 'db-a', b: 'db-b', c: 'db-c' };
  const endpoints = { a: n.endpoints['db-a']!, b: n.endpoints['db-b']!, c: n.endpoints['db-c']! };
  const ports = (pg: LocalPostgres, self: 'a' | 'b' | 'c'): EffectPorts => ({
    pg,
    vip: new FakeVipPort(new FakeVipCloud(), self),
    endpoints,
    names: ids,
    promoteWaitSeconds: 30,
    slots: {
      self: slotNameFor(ids[self]),
      peer: slotNameFor(self === 'a' ? 'db-b' : 'db-a'),
      others: (['a', 'b', 'c'] as const).filter((x) => x !== self).map((x) => slotNameFor(ids[x])),
    },
  });
  const set = await runEffect(1, { kind: 'set-sync', claim: { members: ['c', 'b'], k: 2 } }, ports(n.pg.a, 'a'));
  assert.ok(set.ok, set.detail);
  assert.match(set.detail, /^synchronous_standby_names = ANY 2 \("db-b", "db-c"\) in force for 2 walsender\(s\) and the checkpointer in \d+ ms$/);
  assert.equal(await walsenders(n.a), 'db-b:quorum:1 db-c:quorum:1');
  const caught = await runEffect(2, { kind: 'sync-catch-up', members: ['b', 'c'], count: 2, timeoutMs: 5_000 }, ports(n.pg.a, 'a'));
  assert.ok(caught.ok, caught.detail);

  assert.ok((await runEffect(3, { kind: 'set-sync', claim: { members: ['b', 'c'], k: 1 } }, ports(n.pg.a, 'a'))).ok);
  await n.a.psql('CREATE TABLE t1 (x int)');
  n.c.freeze();
  t.after(() => n.c.thaw());
  await n.a.psql('INSERT INTO t1 VALUES (1)');
  const short = await runEffect(4, { kind: 'sync-catch-up', members: ['b', 'c'], count: 2, timeoutMs: 500 }, ports(n.pg.a, 'a'));
  assert.equal(short.ok, false);
  assert.match(short.detail, /^2 of \(b, c\) not flushed to \S+ within 500 ms: c at \S+ \(streaming\)$/);
  n.c.thaw();

  // db-a is lost; b is promoted with a slot for a and for c; c follows b.
  await n.pg.a.stop('immediate');
  assert.ok((await runEffect(5, { kind: 'stop-wal-receiver' }, ports(n.pg.b, 'b'))).ok);
  const promoted = await runEffect(6, { kind: 'promote' }, ports(n.pg.b, 'b'));
  assert.ok(promoted.ok, promoted.detail);
  assert.equal(await n.b.psql("SELECT string_agg(slot_name, ' ' ORDER BY slot_name) FROM pg_replication_slots"), 'pgvip_db_a pgvip_db_c');
  const followed = await runEffect(7, { kind: 'follow', primary: 'b' }, ports(n.pg.c, 'c'));
  assert.ok(followed.ok, followed.detail);
  assert.match(followed.detail, /^streaming from b, re-pointed by a reload in \d+ ms$/);
  assert.equal(await n.b.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgvip_db_c'"), 't');

  // c withdraws and resumes.
  assert.ok((await runEffect(8, { kind: 'stop-wal-receiver' }, ports(n.pg.c, 'c'))).ok);
  const resumed = await runEffect(9, { kind: 'resume-wal-receiver' }, ports(n.pg.c, 'c'));
  assert.ok(resumed.ok, resumed.detail);
  await waitUntil('c to stream from b again', 10_000, async () => (await n.c.psql("SELECT coalesce((SELECT sender_port::text FROM pg_stat_wal_receiver WHERE status = 'streaming'), 'none')")) === String(n.b.port));
});

test('Given every form the parser is tested with, Then PostgreSQL 15 accepts exactly those the parser accepts', async (t) => {
  const cluster = await startPgCluster(t);
  const forms = [
    '', 'db_b', 'db_b, db_c', '2 (a, b, c)', 'FIRST 2 (a,b,c)', 'any 1 ("db-b", "db-c")', 'ANY 2 ("we""ird", "db-c")', '*',
    'ANY 1 ("*")', '"first"', '""', 'db-b', 'ANY (a)', 'ANY 0 (a)', 'ANY 1 (a', 'a,', ',a', 'a b', '"unterminated', 'first', 'ANY 1 ()',
  ];
  for (const form of forms) {
    const ours = (() => {
      try {
        parseSynchronousStandbyNames(form);
        return 'accepted';
      } catch {
        return 'refused';
      }
    })();
    const theirs = await cluster.primary.psql(`ALTER SYSTEM SET synchronous_standby_names = ${sqlQuote(form)}`).then(() => 'accepted', () => 'refused');
    assert.equal(ours, theirs, `${JSON.stringify(form)}: pgvip ${ours}, PostgreSQL ${theirs}`);
  }
  await cluster.primary.psql('ALTER SYSTEM RESET synchronous_standby_names');
});

function sqlQuote(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

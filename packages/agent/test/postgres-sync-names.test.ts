// Goal: synchronous_standby_names is read back as PostgreSQL reads it (every form it accepts), into the
// claim it makes about nodes and the sync_priority each walsender must show; a primary_conninfo into
// the host and port it names; a timeline history into where a standby can no longer follow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { claimOfSetting, parseSynchronousStandbyNames, standbyPriority } from '../src/postgres/sync-names.js';
import { conninfoTarget } from '../src/postgres/conninfo-target.js';
import { divergence, parseTimelineHistory } from '../src/postgres/follow.js';
import { parseLsn } from '../src/postgres/lsn.js';
import { syncClaimOf } from '../src/pg-snapshot.js';

const nodeOf = (name: string): string | undefined => ({ 'db-a': 'a', 'db-b': 'b', 'db-c': 'c' } as Record<string, string>)[name.toLowerCase()];

test('Given each form PostgreSQL accepts, Then the method, count and names are as PostgreSQL reads them', () => {
  const read = (v: string): string => {
    const s = parseSynchronousStandbyNames(v);
    return s === null ? 'none' : `${s.method} ${s.count} ${s.names.map((n) => (n.wildcard ? '*' : n.name)).join('|')}`;
  };
  assert.equal(read(''), 'none');
  assert.equal(read('   '), 'none');
  assert.equal(read('db_b'), 'first 1 db_b');
  assert.equal(read('db_b, db_c'), 'first 1 db_b|db_c');
  assert.equal(read('2 (a, b, c)'), 'first 2 a|b|c');
  assert.equal(read('FIRST 2 (a,b,c)'), 'first 2 a|b|c');
  assert.equal(read('any 1 ("db-b", "db-c")'), 'any 1 db-b|db-c');
  assert.equal(read('ANY 2 ("we""ird", "db-c")'), 'any 2 we"ird|db-c');
  assert.equal(read('*'), 'first 1 *');
  assert.equal(read('ANY 1 ("*")'), 'any 1 *'); // PostgreSQL compares the stored name with "*"
  assert.equal(read('"first"'), 'first 1 first');
  assert.equal(read('""'), 'first 1 '); // an empty name: PostgreSQL takes it
  for (const bad of ['db-b', 'ANY (a)', 'ANY 0 (a)', 'ANY 1 (a', 'a,', ',a', 'a b', '"unterminated', 'first', 'ANY 1 ()']) {
    assert.throws(() => parseSynchronousStandbyNames(bad), TypeError, bad);
  }
});

test('Given a setting, Then each walsender\'s priority is PostgreSQL\'s: 1 for a listed one under ANY, its place under FIRST, 0 unlisted', () => {
  const any = parseSynchronousStandbyNames('ANY 1 ("db-b", "db-c")');
  assert.deepEqual(['db-b', 'DB-C', 'db-d'].map((n) => standbyPriority(any, n)), [1, 1, 0]);
  const first = parseSynchronousStandbyNames('FIRST 1 ("db-c", "db-b", "db-c")');
  assert.deepEqual(['db-b', 'db-c', 'db-d'].map((n) => standbyPriority(first, n)), [2, 1, 0]);
  assert.equal(standbyPriority(parseSynchronousStandbyNames('"db-b", *'), 'anything'), 2);
  assert.equal(standbyPriority(null, 'db-b'), 0);
});

test('Given a setting, Then its claim names nodes, FIRST k reads as ANY k, a wildcard claims nothing, and k is capped at the members', () => {
  const claim = (v: string): string => {
    const c = claimOfSetting(parseSynchronousStandbyNames(v), nodeOf);
    return `${c.k} ${c.members.join(',')}`;
  };
  assert.equal(claim(''), '0 ');
  assert.equal(claim('ANY 2 ("db-b", "db-c")'), '2 b,c');
  assert.equal(claim('FIRST 1 ("DB-C", "db-b")'), '1 b,c');
  assert.equal(claim('"db-b"'), '1 b');
  assert.equal(claim('ANY 1 ("db-b", "reporting")'), '1 b,reporting'); // a name of no node stays: weaker about nodes
  assert.equal(claim('ANY 1 ("db-b", *)'), '0 ');
  assert.equal(claim('ANY 3 ("db-b", "db-b", "db-c")'), '2 b,c');
  // The snapshot's reading: a value PostgreSQL would refuse cannot be in force; read as no claim.
  assert.deepEqual(syncClaimOf('ANY 1 (db-b', nodeOf), { members: [], k: 0 });
});

test('Given a primary_conninfo, Then only its first host and port are read', () => {
  assert.deepEqual(conninfoTarget("host=10.0.0.2 port=5433 user=pgvip password='a b\\'c' application_name=db-c"), { host: '10.0.0.2', port: 5433 });
  assert.deepEqual(conninfoTarget('host=db-a.internal user=x'), { host: 'db-a.internal', port: 5432 });
  assert.deepEqual(conninfoTarget('host=a,b port=6001,6002'), { host: 'a', port: 6001 });
  assert.deepEqual(conninfoTarget('host = 127.0.0.1  port = 7000 port=7001'), { host: '127.0.0.1', port: 7001 }); // last wins, as libpq
  assert.deepEqual(conninfoTarget('postgresql://rep:secret@10.0.0.3:5434/postgres?application_name=db-c'), { host: '10.0.0.3', port: 5434 });
  assert.deepEqual(conninfoTarget('postgres://[fd00::3]:5435/x'), { host: 'fd00::3', port: 5435 });
  assert.equal(conninfoTarget(''), null);
  assert.equal(conninfoTarget('host=/var/run/postgresql'), null);
  assert.equal(conninfoTarget("host='unterminated"), null);
  assert.equal(conninfoTarget('user=x'), null);
});

test('Given the new primary\'s history, Then a standby diverged exactly when its timeline is not in it or it replayed past the fork', () => {
  const history = parseTimelineHistory('1\t0/5000100\tno recovery target specified\n\n2\t0/6000000\tno recovery target specified\n');
  assert.deepEqual(history, [{ tli: 1, end: parseLsn('0/5000100') }, { tli: 2, end: parseLsn('0/6000000') }]);
  const primary = { tli: 3, history };
  assert.equal(divergence(primary, { tli: 3, replayLsn: parseLsn('9/0') }, 'db-b'), null);
  assert.equal(divergence(primary, { tli: 1, replayLsn: parseLsn('0/5000100') }, 'db-b'), null); // at the fork: follows
  assert.match(divergence(primary, { tli: 1, replayLsn: parseLsn('0/5000101') }, 'db-b') ?? '', /replayed timeline 1 to 0\/5000101, past 0\/5000100 where db-b's timeline 3 forked from it/);
  assert.equal(divergence(primary, { tli: 2, replayLsn: parseLsn('0/5FFFFFF') }, 'db-b'), null);
  assert.match(divergence(primary, { tli: 4, replayLsn: parseLsn('0/1') }, 'db-b') ?? '', /timeline 4 of this standby is not in the history/);
  assert.match(divergence({ tli: 1, history: [] }, { tli: 2, replayLsn: parseLsn('0/1') }, 'db-a') ?? '', /not in the history/);
});

// Goal: `pgvip doctor` says whether PostgreSQL's commit guard protects this node: a failure with the
// fix when the library is not loaded, and what the guard does right now when it is (active with the
// time left, ignored on a standby, not armed yet), asked of a real PostgreSQL 15.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitGuardCheck } from '../src/cli/doctor-postgres.js';
import { doctorConfigFor } from './doctor-helpers.js';
import { commitGuardInstalled, startPgCluster } from '../../../test/fixtures/pg-cluster.js';

const skip = process.getuid?.() !== 0 ? 'needs root (real PostgreSQL as the postgres user)' : !commitGuardInstalled() ? 'pgvip_commit_guard is not installed (npm test builds it as root)' : false;

test('Given a server without the commit guard, Then doctor fails the check and says how to load it', { skip }, async (t) => {
  const cluster = await startPgCluster(t);
  const check = await commitGuardCheck(doctorConfigFor(cluster.primary), 3_000);
  assert.equal(check.status, 'fail');
  assert.match(check.detail, /not loaded: pgvip_commit_guard is not in shared_preload_libraries/);
  assert.match(check.fix ?? '', /add pgvip_commit_guard to shared_preload_libraries, then restart PostgreSQL/);
  const off = await commitGuardCheck(doctorConfigFor(cluster.primary, { cluster: 'fencing: { commitGuard: off }' }), 3_000);
  assert.equal(off.status, 'note');
  assert.match(off.detail, /fencing\.commitGuard is off/);
});

test('Given the commit guard loaded, Then doctor says whether it is armed, how long the primary may still commit, and that a standby ignores it', { skip }, async (t) => {
  const cluster = await startPgCluster(t, { commitGuard: true });
  const notArmed = await commitGuardCheck(doctorConfigFor(cluster.primary), 3_000);
  assert.deepEqual([notArmed.status, notArmed.detail], ['ok', 'loaded, not armed yet: no guard until the agent holds a lease (term 0, or PostgreSQL restarted since)']);
  await cluster.primary.psql('SELECT pgvip_guard_set_deadline(60000)');
  const active = await commitGuardCheck(doctorConfigFor(cluster.primary), 3_000);
  assert.equal(active.status, 'ok');
  assert.match(active.detail, /^active: this primary commits writes for \d+ ms more unless the agent renews its lease$/);
  await cluster.primary.psql('SELECT pgvip_guard_set_deadline(0)');
  assert.match((await commitGuardCheck(doctorConfigFor(cluster.primary), 3_000)).detail, /^active, deadline passed \d+ ms ago: this server refuses every write commit/);
  const standby = await commitGuardCheck(doctorConfigFor(cluster.standby), 3_000);
  assert.match(standby.detail, /ignored while this server is a standby/);
  await cluster.primary.psql('ALTER SYSTEM SET pgvip_commit_guard.enabled = off');
  await cluster.primary.psql('SELECT pg_reload_conf()');
  const disabled = await commitGuardCheck(doctorConfigFor(cluster.primary), 3_000);
  assert.deepEqual([disabled.status, disabled.detail], ['fail', 'loaded but switched off (pgvip_commit_guard.enabled = off)']);
});

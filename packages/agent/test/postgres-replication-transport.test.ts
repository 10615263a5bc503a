// Goal: a standby's replication connection notices a dead link within seconds and its walsender on the
// primary gives the slot up, instead of waiting on TCP's backed-off retransmissions and the default
// 60 s wal_sender_timeout (replication-transport.ts). The conninfo pgvip writes carries the settings,
// the agent adds them at start to a primary_conninfo that lacks them (pg_basebackup -R's), and the
// primary's walsender honours them: silenced, it ends after 5 s, not 60 s.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { conninfoFor } from '../src/postgres/rejoin.js';
import { replicationTransportConninfo, withReplicationTransport } from '../src/postgres/replication-transport.js';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

test('Given a WAL receiver\'s conninfo, Then it carries the transport settings, quoted for libpq', () => {
  const endpoint = { host: '10.0.0.5', port: 5432, user: 'pgvip', database: 'postgres' };
  assert.equal(
    conninfoFor(endpoint, { applicationName: 'db-b', streaming: true }),
    'host=10.0.0.5 port=5432 user=pgvip dbname=postgres application_name=db-b connect_timeout=2 tcp_user_timeout=3000 ' +
      'keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=3 ' +
      "options='-c wal_sender_timeout=5000 -c tcp_user_timeout=3000'",
  );
  assert.doesNotMatch(conninfoFor(endpoint), /tcp_user_timeout/, 'pg_rewind and pg_basebackup need none');
});

test('Given a primary_conninfo without them, Then they are appended once; an empty one or an operator\'s own are left', () => {
  const written = "user=postgres host=10.0.0.5 port=5432 sslmode=prefer application_name=db-b";
  assert.equal(withReplicationTransport(written), `${written} ${replicationTransportConninfo()}`);
  assert.equal(withReplicationTransport(withReplicationTransport(written)!), null);
  assert.equal(withReplicationTransport(''), null);
  assert.equal(withReplicationTransport(`${written} tcp_user_timeout=10000 keepalives=0`), null);
  // An older agent's (or an operator's) without keepalives gets them: tcp_user_timeout never ends a
  // connection that has nothing unacknowledged (a WAL receiver waiting for a walsender that is gone).
  const older = `${written} connect_timeout=2 tcp_user_timeout=3000`;
  assert.equal(withReplicationTransport(older), `${older} keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=3`);
  assert.equal(withReplicationTransport(withReplicationTransport(older)!), null);
});

test('Given a standby set up by pg_basebackup -R, When the agent starts, Then its walsender ends 5 s after the standby goes silent', async (t) => {
  const cluster = await startPgCluster(t);
  const standby = new LocalPostgres(cluster.standby.agentConfig);
  const conninfo = () => cluster.standby.psql("SELECT current_setting('primary_conninfo')");
  assert.doesNotMatch(await conninfo(), /tcp_user_timeout/);
  const first = await standby.ensureManagedSettings();
  assert.ok(first.changed.includes('primary_conninfo'), `changed: ${first.changed.join(', ')}`);
  assert.match(await conninfo(), /tcp_user_timeout=3000 keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=3 options='-c wal_sender_timeout=5000/);
  assert.ok(!(await standby.ensureManagedSettings()).changed.includes('primary_conninfo'), 'added once');
  // The reload restarts the WAL receiver with the new conninfo: wait for its walsender.
  const walsender = async () => cluster.primary.psql(`SELECT pid FROM pg_stat_replication WHERE application_name = '${cluster.standby.name}' AND state = 'streaming'`);
  const receiverPid = async () => Number(await cluster.standby.psql('SELECT pid FROM pg_stat_wal_receiver'));
  await waitUntil('the standby to stream with the new conninfo', 30_000, async () => (await walsender()) !== '' && (await receiverPid()) > 0);
  await waitUntil('the walsender of the new connection', 30_000, async () => {
    const pids = (await walsender()).split('\n').filter((p) => p !== '');
    return pids.length === 1;
  });
  // libpq applied the keepalives: the WAL receiver's socket probes after 1 s idle, not the kernel's 2 h.
  const port = cluster.primary.agentConfig.port;
  await waitUntil('a keepalive timer of at most 1 s on the replication socket', 10_000, async () => {
    const timers = execFileSync('ss', ['-tnoH', 'state', 'established', '( dport = :' + String(port) + ' )'], { encoding: 'utf8' });
    return [...timers.matchAll(/timer:\(keepalive,(\d+)ms/g)].some((m) => Number(m[1]) <= 1_000);
  });
  const sender = await walsender();
  // The WAL receiver stops replying (its kernel still acknowledges TCP): only wal_sender_timeout ends it.
  const receiver = await receiverPid();
  process.kill(receiver, 'SIGSTOP');
  const silentAt = Date.now();
  try {
    await waitUntil('the primary to end the silent walsender', 20_000, async () => !(await walsender()).split('\n').includes(sender), 100);
  } finally {
    process.kill(receiver, 'SIGCONT');
  }
  const endedAfterMs = Date.now() - silentAt;
  t.diagnostic(`walsender ended ${endedAfterMs} ms after the standby went silent`);
  assert.ok(endedAfterMs >= 4_000 && endedAfterMs < 10_000, `ended after ${endedAfterMs} ms (wal_sender_timeout 5 s; the server default is 60 s)`);
  assert.match(await cluster.primary.psql(`SELECT count(*) FROM pg_stat_replication WHERE pid = ${sender}`), /^0$/);
  await waitUntil('the standby to stream again', 30_000, async () => (await walsender()) !== '');
});

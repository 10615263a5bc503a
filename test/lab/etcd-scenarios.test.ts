// Goal: the lab's three-member etcd (test/lab/etcd.ts) forms on db-a, db-b and the witness host and
// reports its leader; and each etcd fault of issue 16 does what it says, seen from etcd itself:
//   Given the cluster with a key written on one host and read on another,
//   When the leader is killed, Then the other two elect a leader and take writes, and the killed member
//        rejoins with every write;
//   When the leader's member is isolated (its ports on eth0), Then the other two elect a new leader;
//   When two members stop (quorum lost), Then no write succeeds; when they return, writes do again;
//   When the agent's user on db-a is cut from etcd, Then it reaches no member (its own neither) while
//        the etcd member on db-a stays in the cluster and the agent's user still reaches its peer.
// Needs root (the lab); skipped otherwise. About a minute and a half, most of it the lab's start.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LabEtcd } from './etcd.js';
import { runOnHost } from './exec.js';
import { isRoot, startLab, type Lab } from './lab.js';
import { labLockOwner } from './netns.js';
import { waitFor } from './wait.js';

const busy = isRoot() ? labLockOwner() : null;
const skip = !isRoot()
  ? 'the lab needs root (network namespaces, nftables, cgroups): run `sudo npm test`'
  : busy !== null
    ? `another lab run (pid ${busy}) is using this machine's lab namespaces; run again when it has finished`
    : false;
const verbose = process.env.PGVIP_LAB_VERBOSE === '1';

describe('lab: a three-member etcd on db-a, db-b and the witness host', { skip, timeout: 8 * 60_000 }, () => {
  let lab: Lab;
  let etcd: LabEtcd;

  before(async () => {
    // startLab({ etcd: true }) starts it beside pgvip's daemons, as pgvip's etcd backend will use it.
    lab = await startLab({ writer: false, etcd: true, progress: verbose ? (l) => console.log(`  [lab] ${l}`) : undefined });
    etcd = lab.etcd!;
  });

  after(async () => {
    await lab?.down();
  });

  const put = (host: 'db-a' | 'db-b' | 'witness', key: string, value: string, timeoutMs = 3_000) =>
    etcd.etcdctl(host, ['put', key, value], { timeoutMs });
  const get = async (host: 'db-a' | 'db-b' | 'witness', key: string) =>
    (await etcd.etcdctl(host, ['get', '--print-value-only', key])).trim();

  it('forms, replicates a write to every member and reports its leader', async () => {
    const leader = await etcd.waitLeader(10_000);
    assert.ok(['db-a', 'db-b', 'witness'].includes(leader));
    await put('witness', '/lab/probe', 'one');
    for (const h of ['db-a', 'db-b'] as const) assert.equal(await get(h, '/lab/probe'), 'one');
    const list = await etcd.etcdctl('db-a', ['member', 'list']);
    assert.equal(list.trim().split('\n').length, 3, list);
    if (verbose) console.log(`  etcd leader: ${leader}`);
  });

  it('survives its leader killed: a new leader, writes go on, the member rejoins with them', async () => {
    const old = await etcd.waitLeader(10_000);
    const killedAt = await etcd.stopMember(old);
    const next = await etcd.waitLeader(15_000, old);
    if (verbose) console.log(`  leader ${old} killed; ${next} elected in ${Date.now() - killedAt} ms`);
    const other = (['db-a', 'db-b', 'witness'] as const).find((h) => h !== old)!;
    await put(other, '/lab/probe', 'two');
    etcd.startMember(old);
    await waitFor(`${old} to rejoin with the write`, 30_000, async () => ((await get(old, '/lab/probe').catch(() => '')) === 'two' ? true : null));
    // kill -9 (its supervisor restarts it) is survived too.
    await etcd.kill9(next);
    await etcd.waitLeader(15_000);
    await put(other === next ? old : other, '/lab/probe', 'three', 10_000);
  });

  it('elects a new leader when the leader\'s member is isolated', async () => {
    const { host, atMs } = await etcd.isolateLeader();
    try {
      const next = await etcd.waitLeader(15_000, host);
      if (verbose) console.log(`  leader ${host} isolated; ${next} elected in ${Date.now() - atMs} ms`);
      await put(next, '/lab/probe', 'four');
    } finally {
      await lab.faults.healNetwork();
    }
    await waitFor(`${host} to catch up`, 30_000, async () => ((await get(host, '/lab/probe').catch(() => '')) === 'four' ? true : null));
  });

  it('takes no write without quorum, and writes again when it is back', async () => {
    await etcd.loseQuorum('witness');
    try {
      await assert.rejects(put('witness', '/lab/probe', 'five', 2_000), 'a write with one member of three must fail');
    } finally {
      etcd.restoreQuorum();
    }
    await etcd.waitLeader(30_000);
    await waitFor('a write to succeed again', 30_000, async () => ((await put('witness', '/lab/probe', 'six').then(() => true, () => null))));
  });

  it('cuts the agent\'s user on db-a from every member, but not the member on db-a nor the peer', async () => {
    await etcd.cutClient('db-a', 'postgres');
    try {
      await assert.rejects(etcd.etcdctl('db-a', ['get', '/lab/probe'], { user: 'postgres', timeoutMs: 2_000 }), 'postgres on db-a reaches etcd');
      // The member on db-a (the etcd user) stays in the cluster: root on db-a still reads through it.
      assert.equal(await get('db-a', '/lab/probe'), 'six');
      // The agent's user still reaches its peer's PostgreSQL.
      const peer = lab.topology.hosts['db-b'].address;
      const ready = await runOnHost('db-a', ['/usr/lib/postgresql/15/bin/pg_isready', '-h', peer, '-p', '5432', '-t', '3'], { user: 'postgres', cgroup: false, timeoutMs: 10_000 });
      assert.equal(ready.code, 0, `${ready.stdout}${ready.stderr}`);
    } finally {
      await lab.faults.healNetwork();
    }
    assert.match(await etcd.etcdctl('db-a', ['get', '/lab/probe'], { user: 'postgres' }), /six/);
  });
});

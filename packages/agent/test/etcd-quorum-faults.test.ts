// Goal: on a real three-member etcd (Debian's 3.4), the leader key behaves as the agent's lease
// arithmetic assumes (docs/design.md, Quorum on etcd): a holder killed with SIGKILL loses the key only
// after the validity it counted from its last keepalive's send time ran out; killing an etcd member,
// even etcd's leader, never takes the key away and the holder renews again; with etcd's quorum lost,
// every renewal fails within its deadline (no hang) so the holder's validity runs out, and nobody can
// campaign. The figures (how long after the last keepalive the key vanished, renewal latency, the
// longest gap between renewals across an etcd leader change) are printed as diagnostics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdQuorum, type Holder } from '../src/quorum/etcd/index.js';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../../test/fixtures/etcd-cluster.js';

const prefix = '/pgvip-faults';
const timeoutMs = 400; // the default requestTimeoutMs
const heartbeatMs = 500;
const maxDriftRatio = 0.01;
const leaseMarginMs = 100;
/** The host's CLOCK_MONOTONIC in ms: the same clock in this process, its ports, and the holder's. */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const driver = path.join(path.dirname(new URL(import.meta.url).pathname), 'etcd-holder-driver.ts');
/** What the holder counts from a keepalive's send time: L·(1−ρ) − margin (core/timings.ts leaseValidMs). */
const validMs = (leaseMs: number): number => leaseMs * (1 - maxDriftRatio) - leaseMarginMs;
/** A call that returns later than its deadline by more than this has hung (room for a busy host's timers). */
const slackMs = 250;

let clusters = 0;

describe('etcd quorum under etcd faults (real etcd)', { skip: etcdMissing(), timeout: 120_000 }, () => {
  let etcd: EtcdCluster;
  const ports: EtcdQuorum[] = [];
  before(async () => {
    etcd = await startEtcdCluster(undefined);
  });
  after(async () => {
    for (const p of ports) await p.close();
    await etcd.cleanup();
  });

  function port(cluster: string): EtcdQuorum {
    const p = new EtcdQuorum({ endpoints: etcd.endpoints, prefix, cluster, timeoutMs, clock: now });
    ports.push(p);
    return p;
  }

  async function holderOf(p: EtcdQuorum, node: string, leaseMs: number): Promise<Holder> {
    const g = await p.grantLease(leaseMs);
    assert.ok(g.ok, g.ok ? '' : g.why);
    const won = await p.campaign({ node, after: null, lease: g.lease, sync: 'async' });
    assert.ok(won.ok, won.ok ? '' : won.why);
    return { node, term: 1, lease: g.lease };
  }

  /** Renews every heartbeat until `stop()` is true; returns every renewal: send time, outcome, latency. */
  async function renewLoop(p: EtcdQuorum, holder: Holder, stop: () => boolean) {
    const log: { sentAtMs: number; renewed: boolean; tookMs: number; why: string }[] = [];
    while (!stop()) {
      const started = now();
      const r = await p.renew(holder);
      const tookMs = now() - started;
      log.push({ sentAtMs: r.sentAtMs, renewed: r.renewed, tookMs, why: r.renewed ? '' : r.why });
      await sleep(Math.max(0, heartbeatMs - tookMs));
    }
    return log;
  }

  it('a killed holder loses its key only after its validity ran out, within a TTL plus etcd\'s sweep', async (t: TestContext) => {
    const leaseMs = 2000;
    const rounds = await Promise.all([0, 1].map(async () => {
      clusters += 1;
      const cluster = `ttl-${process.pid}-${clusters}`;
      const observer = port(cluster);
      const holder = spawn(process.execPath, [
        '--conditions=pgvip-source', '--import', 'tsx', driver, etcd.endpoints.join(','), prefix, cluster, String(leaseMs),
      ], { stdio: ['ignore', 'pipe', 'inherit'] });
      // The latest send it announced: the real last keepalive was sent then or earlier, so the
      // interval measured from it is never longer than the real one.
      let lastSendMs = 0;
      let renewals = 0;
      const lines = createInterface({ input: holder.stdout });
      await new Promise<void>((resolve, reject) => {
        holder.once('exit', (code) => reject(new Error(`the holder exited (${code}) before renewing 3 times`)));
        lines.on('line', (line) => {
          const msg = JSON.parse(line) as { sending?: number; renewed?: boolean };
          if (msg.sending !== undefined) lastSendMs = msg.sending;
          if (msg.renewed === true && ++renewals === 3) {
            holder.removeAllListeners('exit');
            holder.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((resolve) => holder.once('exit', resolve));
      // The key was present at the last read that saw it, so it vanished after that read was sent;
      // it was gone at the first read that missed it, so before that read returned.
      let presentSentAtMs = lastSendMs;
      for (;;) {
        const sent = now();
        const r = await observer.read();
        if (r.ok && r.view.leader !== null) presentSentAtMs = sent;
        if (r.ok && r.view.leader === null) {
          return { presentAfterMs: presentSentAtMs - lastSendMs, goneByMs: now() - lastSendMs };
        }
        const waitedMs = now() - lastSendMs;
        assert.ok(waitedMs < leaseMs + 5000, 'the key of a killed holder never vanished');
        await sleep(10);
      }
    }));
    for (const r of rounds) {
      t.diagnostic(`key still present ${Math.round(r.presentAfterMs)} ms and gone by ${Math.round(r.goneByMs)} ms after the killed holder's last keepalive send (validity ${validMs(leaseMs)} ms, TTL ${leaseMs} ms)`);
      assert.ok(r.presentAfterMs >= validMs(leaseMs), `the key vanished ${Math.round(r.presentAfterMs)} ms after the last send, before the holder's validity (${validMs(leaseMs)} ms) ran out`);
      // Liveness only (etcd's 500 ms sweep, then a revoke through raft, on a busy host): generous.
      assert.ok(r.goneByMs <= leaseMs + 3000, `the key outlived its TTL by far more than etcd's expiry sweep: ${Math.round(r.goneByMs)} ms`);
    }
  });

  it('an etcd follower killed, then etcd\'s leader killed: the key survives and the holder renews again', async (t: TestContext) => {
    const leaseMs = 3000;
    clusters += 1;
    const cluster = `kill-${process.pid}-${clusters}`;
    const p = port(cluster);
    const holder = await holderOf(p, 'db-a', leaseMs);
    const before = await p.read();
    assert.ok(before.ok && before.view.leader !== null);
    let done = false;
    const loop = renewLoop(p, holder, () => done);
    try {
      await sleep(1000);
      const leader = await etcd.leaderIndex();
      const follower = [0, 1, 2].find((i) => i !== leader) ?? 0;
      await etcd.stop(follower);
      await sleep(2000);
      await etcd.start(follower);
      await sleep(1000);
      const killedAtMs = now();
      await etcd.stop(await etcd.leaderIndex());
      await sleep(6000);
      done = true;
      const log = await loop;
      const afterKill = log.filter((x) => x.sentAtMs >= killedAtMs);
      const firstBack = afterKill.find((x) => x.renewed);
      assert.ok(firstBack !== undefined, `no renewal after etcd's leader was killed: ${JSON.stringify(afterKill)}`);
      const ok = log.filter((x) => x.renewed);
      const gaps = ok.slice(1).map((x, i) => x.sentAtMs - (ok[i]?.sentAtMs ?? x.sentAtMs));
      const latencies = ok.map((x) => x.tookMs).sort((a, b) => a - b);
      const median = latencies[Math.floor(latencies.length / 2)] ?? 0;
      t.diagnostic(`${ok.length}/${log.length} renewals; renewing again ${Math.round(firstBack.sentAtMs - killedAtMs)} ms after etcd's leader was killed; longest gap between renewals ${Math.round(Math.max(...gaps))} ms (validity ${validMs(leaseMs)} ms); renewal latency median ${median.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`);
      for (const x of log) assert.ok(x.tookMs <= timeoutMs + slackMs, `a renewal took ${Math.round(x.tookMs)} ms: ${x.why}`);
      const after = await p.read();
      assert.ok(after.ok, after.ok ? '' : after.why);
      assert.equal(after.view.leader?.lease, holder.lease, 'the leader key is on the same lease');
      assert.equal(after.view.leader?.modRevision, before.view.leader?.modRevision, 'the leader key was never deleted or rewritten');
    } finally {
      done = true;
      await loop;
      for (let i = 0; i < 3; i++) if (!etcd.running(i)) await etcd.start(i);
    }
  });

  it('every member frozen (SIGSTOP: connections open, nothing answers): each call returns by its deadline', async (t: TestContext) => {
    clusters += 1;
    const p = port(`frozen-${process.pid}-${clusters}`);
    const holder = await holderOf(p, 'db-a', 2000);
    assert.ok((await p.renew(holder)).renewed, 'renewed before the freeze, so the connections are open');
    for (let i = 0; i < 3; i++) etcd.freeze(i, true);
    try {
      const took: number[] = [];
      const timed = async (call: () => Promise<{ ok?: boolean; renewed?: boolean }>) => {
        const started = now();
        const r = await call();
        took.push(now() - started);
        assert.ok(r.ok !== true && r.renewed !== true, 'nothing succeeds while etcd is frozen');
      };
      await timed(() => p.renew(holder));
      await timed(() => p.read());
      await timed(() => p.grantLease(2000));
      await timed(() => p.campaign({ node: 'db-b', after: null, lease: holder.lease, sync: 'async' }));
      await timed(() => p.setSync(holder, 'db-b'));
      t.diagnostic(`calls to a frozen etcd returned after ${took.map((x) => Math.round(x)).join(', ')} ms (deadline ${timeoutMs} ms)`);
      for (const x of took) assert.ok(x <= timeoutMs + slackMs, `a call to a frozen etcd took ${Math.round(x)} ms`);
    } finally {
      for (let i = 0; i < 3; i++) etcd.freeze(i, false);
    }
    await etcd.leaderIndex();
  });

  it('one etcd follower frozen (SIGSTOP: as a lost host, it refuses nothing): renewals and campaigns pass, fast', async (t: TestContext) => {
    // docs/design.md, Quorum on etcd, "Which member a call goes to": etcd3 alone sends a third of the
    // calls to the frozen member, each waits out its deadline and fails; the client's rule costs at
    // most a share of one call's deadline per client, then keeps to a member that answers.
    clusters += 1;
    const p = port(`frozen-one-${process.pid}-${clusters}`);
    const holder = await holderOf(p, 'db-a', 3000);
    const leader = await etcd.leaderIndex();
    const frozen = [0, 1, 2].find((i) => i !== leader) ?? 0;
    etcd.freeze(frozen, true);
    try {
      const renewals: number[] = [];
      for (let i = 0; i < 12; i++) {
        const started = now();
        const r = await p.renew(holder);
        renewals.push(now() - started);
        assert.ok(r.renewed, `renewal ${i + 1} with one member frozen: ${r.renewed ? '' : r.why}`);
      }
      // Fresh clients, none of which knows a member yet: the read and the grant together, then the txn.
      const campaigns: number[] = [];
      for (let i = 0; i < 4; i++) {
        clusters += 1;
        const c = port(`frozen-one-campaign-${process.pid}-${clusters}`);
        const started = now();
        const [seen, g] = await Promise.all([c.read(), c.grantLease(3000)]);
        assert.ok(seen.ok && g.ok, `campaign ${i + 1}: ${seen.ok ? '' : seen.why} ${g.ok ? '' : g.why}`);
        const won = await c.campaign({ node: 'db-b', after: seen.view.term, lease: g.lease, sync: 'async' });
        assert.ok(won.ok, `campaign ${i + 1} with one member frozen: ${won.ok ? '' : won.why}`);
        campaigns.push(now() - started);
      }
      const ms = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
      t.diagnostic(`one member frozen: renewals took ${ms(renewals)} ms; campaigns (read and grant, then txn) ${ms(campaigns)} ms (deadline ${timeoutMs} ms per call)`);
      // Only the first renewal may meet the frozen member (a share of the deadline, then the next member).
      assert.ok(renewals.slice(1).every((x) => x < timeoutMs / 3), `renewals after the first waited on the frozen member: ${ms(renewals)}`);
    } finally {
      etcd.freeze(frozen, false);
    }
    await etcd.leaderIndex();
  });

  it('etcd\'s quorum lost: renewals fail within their deadline, the validity runs out, nobody campaigns; quorum back: the holder\'s key again, same term', async (t: TestContext) => {
    const leaseMs = 2000;
    clusters += 1;
    const cluster = `quorum-${process.pid}-${clusters}`;
    const p = port(cluster);
    const other = port(cluster);
    const holder = await holderOf(p, 'db-a', leaseMs);
    const first = await p.renew(holder);
    assert.ok(first.renewed);
    const leader = await etcd.leaderIndex();
    const follower = [0, 1, 2].find((i) => i !== leader) ?? 0;
    const lastOkSentAtMs = first.sentAtMs;
    // Stop etcd's leader and one follower: the member left is a follower, which proposes nothing.
    await Promise.all([etcd.stop(leader), etcd.stop(follower)]);
    try {
      const log: { tookMs: number; renewed: boolean; why: string }[] = [];
      while (now() < lastOkSentAtMs + validMs(leaseMs) + heartbeatMs) {
        const started = now();
        const r = await p.renew(holder);
        log.push({ tookMs: now() - started, renewed: r.renewed, why: r.renewed ? '' : r.why });
        await sleep(Math.max(0, heartbeatMs - (now() - started)));
      }
      assert.ok(log.every((x) => !x.renewed), 'a renewal succeeded without etcd quorum');
      for (const x of log) assert.ok(x.tookMs <= timeoutMs + slackMs, `a renewal took ${Math.round(x.tookMs)} ms without quorum: ${x.why}`);
      assert.ok(now() > lastOkSentAtMs + validMs(leaseMs), 'the holder\'s validity ran out');
      const g = await other.grantLease(leaseMs);
      assert.ok(!g.ok, 'no lease is granted without quorum');
      const started = now();
      const c = await other.campaign({ node: 'db-b', after: first.view.term, lease: holder.lease, sync: 'async' });
      assert.ok(!c.ok && now() - started <= timeoutMs + slackMs, `a campaign without quorum: ${JSON.stringify(c)}`);
      t.diagnostic(`${log.length} renewals without quorum, all refused, the slowest in ${Math.round(Math.max(...log.map((x) => x.tookMs)))} ms: ${log[0]?.why ?? ''}`);
    } finally {
      await Promise.all([etcd.start(leader), etcd.start(follower)]);
    }
    await etcd.leaderIndex();
    // Usually the new etcd leader has extended the lease and the same key renews. But the lease may
    // have ended before the quorum went (finding etcd's leader took a TTL), or the member left alone
    // may have been etcd's leader (leadership moved just before the stop) and proposed the expired
    // lease's revoke, which commits once the quorum is back. Then the holder takes the key again in
    // its term (design: the same-term take). Either way the term does not move.
    const backAtMs = now();
    const misses: string[] = [];
    let outcome: string | null = null;
    while (outcome === null && now() < backAtMs + 10_000) {
      const r = await p.renew(holder);
      if (r.renewed) {
        outcome = 'renewed the same key';
      } else if (r.view === null && /expired or was revoked/.test(r.why)) {
        const g = await p.grantLease(leaseMs);
        const took = g.ok ? await p.takeLeaderKey({ ...holder, lease: g.lease }) : g;
        if (took.ok) outcome = 'took the key again in term 1 (the lease had been revoked)';
        else misses.push(`${Math.round(now() - backAtMs)} ms: ${took.why}`);
      } else {
        misses.push(`${Math.round(now() - backAtMs)} ms: ${r.why}`);
      }
      if (outcome === null) await sleep(heartbeatMs);
    }
    assert.ok(outcome !== null, `the holder holds its key again once etcd has its quorum: ${misses.join('; ')}`);
    t.diagnostic(`quorum back: ${outcome} after ${Math.round(now() - backAtMs)} ms`);
    const v = await p.read();
    assert.ok(v.ok && v.view.leader?.value.node === 'db-a');
    assert.deepEqual(v.view.term?.value, { term: 1, primary: 'db-a' }, 'the term did not move');
  });
});

// Goal: three database nodes on etcd (issue 17; docs/design.md, "More than one standby") on real
// PostgreSQL 15, real agents, the lab's etcd and the EC2 emulator. Each row ends healed and healthy
// (all three nodes streaming from the primary, both eligible standbys members of its ANY k claim) with
// the lab's checks: 0 acknowledged writes lost, 0 overlapping writers, the VIP on the primary only.
//
//   Given db-a, db-b, db-c (priorities 1, 2, 3), sync ANY 1, degrade async:
//   When a switchover names the lower-priority standby,  Then that node, not the best one, becomes primary;
//   When the primary host is lost with no write in flight, Then the standbys tie on WAL and the higher
//        priority wins (priority);
//   When the primary host is lost under writes,            Then the standby that ranks first by its
//        published final position (timeline, WAL, priority) wins: the more advanced one;
//   When one standby lags (its replication cut) and then the primary host is lost,
//                                                          Then the lagging one never wins, even with the
//        highest priority;
//   When the primary's AZ is lost (host frozen, its link dark), Then a standby takes over, nothing lost;
//   When one standby is lost (its links dark),             Then no failover, commits keep waiting for the
//        other one only (still synchronous: the claim keeps k ≥ 1), no write blocked; after the heal it
//        streams again without having withdrawn (etcd's quorum was out of its reach);
//   When both standbys are lost,                           Then the primary degrades with etcd's
//        agreement (record k = 0 first) and writes go on; it restores sync when they return.
//   Given db-c noFailover and replication.degrade block:
//   When both standbys are lost,                           Then writes block (no degrade record) until
//        one returns, and nothing is lost;
//   When a switchover names db-c, Then it is refused; when the primary host is lost, Then db-b wins and
//        db-c, never promoted, follows it.
//
// Rows whose pieces have not landed yet are skipped, each naming what it waits for (`waitsFor`).
// Needs root; about 2.5 minutes (two lab starts of 20–25 s, rows of 5–20 s).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { acknowledged, firstAckAfter } from './checkers.js';
import type { LabClusterExtra } from './configs.js';
import type { KeyEvent } from './etcd-keys.js';
import { run } from './exec.js';
import { isRoot, startLab, type CheckReport, type Lab } from './lab.js';
import { renderMilestones } from './logs.js';
import { labLockOwner } from './netns.js';
import { psql } from './postgres.js';
import type { DbNode } from './topology.js';
import { hold, waitFor } from './wait.js';

const busy = isRoot() ? labLockOwner() : null;
const skip = !isRoot()
  ? 'the lab needs root (network namespaces, nftables, cgroups, PostgreSQL as postgres): run `sudo npm test`'
  : busy !== null
    ? `another lab run (pid ${busy}) is using this machine's lab namespaces; run again when it has finished`
    : !existsSync('/usr/bin/etcd')
      ? '/usr/bin/etcd is missing (Debian package etcd-server; npm test installs it as root)'
      : false;
const verbose = process.env.PGVIP_LAB_VERBOSE === '1';
const compiled = process.env.PGVIP_LAB_COMPILED === '1';
const note = (line: string): void => {
  if (verbose) console.log(`    ${line}`);
};

/**
 * Rows that cannot pass until a fix lands, and what each waits for: the row is skipped with this
 * message (PGVIP_LAB_RUN_WAITING=1 runs them anyway). Keyed by the row's title up to its colon. Empty:
 * every row runs.
 */
export const waitsFor: Readonly<Record<string, string>> = {};

/** An LSN "X/Y" as a number that orders like the WAL. */
function lsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** Final positions published in etcd, by node. */
type Positions = Map<DbNode, { timeline: number; flushLsn: bigint }>;

interface Takeover {
  readonly node: DbNode;
  readonly atMs: number;
}

interface Start {
  readonly primary: DbNode;
  readonly standbys: readonly DbNode[];
  readonly term: number;
  readonly startedAt: number;
}

/** One lab and its rows: `rows` is called inside the describe with the kit. */
function threeNodeSuite(
  name: string,
  cluster: LabClusterExtra,
  rows: (kit: Kit) => void,
): void {
  describe(`lab: three database nodes on etcd, ${name}`, { skip, timeout: 30 * 60_000 }, () => {
    let lab: Lab;
    let labStart: Promise<Lab> | null = null;
    let brokenBy: string | null = null;

    // Started by the first test that runs, without waiting for a healthy cluster: the topology test
    // checks the hosts, servers, etcd and agents first; rows wait for health and start the writer.
    async function ready(): Promise<void> {
      labStart ??= startLab({ compiled, backend: 'etcd', nodes: 3, cluster, awaitHealthy: false, progress: note });
      lab = await labStart;
    }

    after(async () => {
      if (labStart === null) return;
      await (await labStart.catch(() => null))?.down();
      const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('pgvip-lab-'));
      assert.deepEqual(left, [], 'the lab must leave no namespace behind');
    }, { timeout: 2 * 60_000 });

    const priority = (n: DbNode): number => cluster.nodeTraits?.[n]?.priority ?? 0;
    const noFailover = (n: DbNode): boolean => cluster.nodeTraits?.[n]?.noFailover === true;

    function row(title: string, body: (r: Start) => Promise<void>, timeoutMs = 4 * 60_000): void {
      const key = title.split(':')[0]!;
      // PGVIP_LAB_RUN_WAITING=1 runs them anyway: has what they wait for landed?
      const waiting = process.env.PGVIP_LAB_RUN_WAITING === '1' ? undefined : waitsFor[key];
      it(title, { timeout: timeoutMs + 4 * 60_000, ...(waiting === undefined ? {} : { skip: `waits for ${waiting}` }) }, async () => {
        await ready();
        assert.equal(brokenBy, null, `not run: the cluster did not recover after ${brokenBy}`);
        await lab.restoreAll();
        let h;
        try {
          if (lab.writer === null) {
            await lab.waitHealthy(180_000);
            await lab.startWriter();
          }
          h = await lab.waitHealthy(180_000);
        } catch (err) {
          brokenBy = key;
          throw err;
        }
        note(`${key}: primary ${h.primary}, standbys ${h.standbys.join(', ')}, term ${h.term}`);
        try {
          const { primary, term } = h;
          await body({ primary: primary as DbNode, standbys: h.standbys as DbNode[], term, startedAt: Date.now() });
        } catch (err) {
          lab.markFailed();
          brokenBy = key;
          throw err;
        }
      });
    }

    async function crossChecks(fromMs: number): Promise<CheckReport> {
      await lab.restoreAll();
      const report = await lab.checkSince(fromMs, 180_000);
      note(`writes ${report.writes.ok} ok / ${report.writes.failed} failed / ${report.writes.unknown} unknown; longest gap ${report.gap.gapMs} ms; final primary ${report.final.primary} term ${report.final.term}`);
      assert.deepEqual(report.lost.map((w) => w.id), [], 'acknowledged writes lost');
      assert.equal(report.overlap.writes, 0, `overlapping writers: ${report.overlap.details.join('; ')}`);
      // As in scenarios.test.ts: noted, not asserted (the router follows EC2's truth either way).
      if (report.vipOnInterfaces.join() !== report.final.primary) note(`the VIP is on ${report.vipOnInterfaces.join(' and ') || 'no'} interface(s), the primary is ${report.final.primary}`);
      return report;
    }

    /** The host is gone: isolated, then frozen (every process of it stops at once). */
    async function loseHost(host: DbNode): Promise<number> {
      const at = await lab.faults.isolate(host);
      await lab.faults.freeze(host);
      return at;
    }

    /** Waits for the first write acknowledged by a server other than `old` after `faultAt`. */
    async function newPrimaryAfter(old: DbNode, faultAt: number, timeoutMs = 60_000): Promise<Takeover> {
      const first = await waitFor(`a new primary after ${old} was lost`, timeoutMs, async () => firstAckAfter(lab.writer!.records, faultAt, { notServer: old }) ?? null, 100);
      note(`writes resumed on ${first.server} ${first.doneAt - faultAt} ms after the fault`);
      return { node: first.server as DbNode, atMs: first.doneAt };
    }

    /** The last final position each standby published for `term` (etcd's position keys, from the watch). */
    function positionsOf(fromMs: number, term: number): Positions {
      const out: Positions = new Map();
      const puts = lab.etcdWatch!.since(fromMs, 'position').filter((e: KeyEvent) => e.type === 'put' && Number(e.value?.term) === term);
      for (const e of puts) {
        out.set(e.node as DbNode, { timeline: Number(e.value!.timeline), flushLsn: lsn(String(e.value!.flushLsn)) });
      }
      return out;
    }

    /**
     * The failover's rule, checked on what etcd saw: the winner published a final position, and no other
     * eligible standby's published position ranks above it (timeline, WAL, then priority).
     */
    function assertWinnerRanksFirst(r: Start, faultAt: number, winner: DbNode): Positions {
      const positions = positionsOf(faultAt, r.term);
      const shown = [...positions].map(([n, p]) => `${n} ${p.timeline}/${p.flushLsn.toString(16)} (priority ${priority(n)})`).join(', ');
      note(`final positions of term ${r.term}: ${shown}`);
      const own = positions.get(winner);
      assert.ok(own !== undefined, `${winner} won without publishing its final position (published: ${shown || 'none'})`);
      for (const [n, p] of positions) {
        if (n === winner || noFailover(n)) continue;
        const ahead = p.timeline > own.timeline
          || (p.timeline === own.timeline && p.flushLsn > own.flushLsn)
          || (p.timeline === own.timeline && p.flushLsn === own.flushLsn && priority(n) > priority(winner));
        assert.ok(!ahead, `${n} ranks above the winner ${winner}: ${shown}`);
      }
      return positions;
    }

    function assertOnePromotion(r: Start, winner: DbNode): void {
      const promotions = lab.promotionsSince(r.startedAt);
      assert.deepEqual(promotions.map((p) => p.node), [winner], 'exactly one promotion, of the winner');
    }

    /** The primary's view of its standbys' flushed WAL (pg_stat_replication) and its own position. */
    async function replication(primary: DbNode): Promise<{ current: bigint; flush: Map<string, bigint> }> {
      const out = await psql(primary, 'SELECT pg_current_wal_lsn(), application_name, coalesce(flush_lsn, \'0/0\') FROM pg_stat_replication');
      const flush = new Map<string, bigint>();
      let current = 0n;
      for (const line of out.split('\n').filter(Boolean)) {
        const [cur, app, fl] = line.split('|');
        current = lsn(cur!);
        flush.set(app!, lsn(fl!));
      }
      if (flush.size === 0) current = lsn(await psql(primary, 'SELECT pg_current_wal_lsn()'));
      return { current, flush };
    }

    it(`3 nodes, the lab (${name}): db-b and db-c stream from db-a, etcd has a leader, the three agents elect db-a`, { timeout: 6 * 60_000 }, async () => {
      await ready();
      const t = lab.topology;
      assert.deepEqual(t.dbNodes, ['db-a', 'db-b', 'db-c']);
      const streaming = await waitFor('db-b and db-c to stream from db-a', 60_000, async () => {
        const rows = await psql('db-a', 'SELECT application_name, state FROM pg_stat_replication ORDER BY 1');
        return rows === 'db-b|streaming\ndb-c|streaming' ? rows : null;
      });
      note(`pg_stat_replication on db-a: ${streaming.replace('\n', ', ')}`);
      await lab.etcd!.waitLeader(15_000);
      const statuses = await waitFor('db-a primary, db-b and db-c its standbys, by their agents', 120_000, async () => {
        const all = await Promise.all(t.dbNodes.map((n) => lab.agentStatus(n)));
        const roles = all.map((s) => (s !== null && s.primaryOfTerm === 'db-a' && s.term >= 1 ? s.role : null));
        return roles.join() === 'primary,standby,standby' ? all : null;
      }, 500);
      assert.deepEqual(statuses.map((s) => s!.term), [statuses[0]!.term, statuses[0]!.term, statuses[0]!.term], 'one term');
      const keys = await lab.etcdKeys();
      assert.equal(keys?.leader?.node, 'db-a', 'db-a holds etcd\'s leader key');
      assert.deepEqual(keys?.members, ['db-a', 'db-b', 'db-c'], 'every agent keeps its member status in etcd');
      // The primary keeps a physical slot for every other node (slot-keeper), not only one.
      const slots = await waitFor('a slot for db-b and db-c on db-a', 30_000, async () => {
        const names = await psql('db-a', 'SELECT slot_name FROM pg_replication_slots ORDER BY 1');
        return names === 'pgvip_db_b\npgvip_db_c' ? names : null;
      });
      note(`slots on db-a: ${slots.replace('\n', ', ')}`);
    });

    /**
     * Rows that lose both standbys' hosts: the lab's etcd members are on db-a, db-b and the witness host,
     * so with db-c primary they would take two members of three, etcd's quorum, and the primary would
     * rightly fence (its lease rests on etcd or on every standby). These rows are about the database
     * standbys with etcd up: the primary moves to db-a first (a switchover) when it is db-c.
     */
    async function primaryBesideEtcd(r: Start): Promise<Start> {
      if (r.primary !== 'db-c') return r;
      const res = await lab.switchover('db-a');
      assert.equal(res.status, 200, `switchover to db-a refused: ${JSON.stringify(res.json)}`);
      const h = await waitFor('db-a primary after the switchover', 120_000, async () => {
        const healthy = (await lab.health()).healthy;
        return healthy?.primary === 'db-a' ? healthy : null;
      }, 250);
      note(`moved the primary to db-a (term ${h.term}) so that etcd keeps its quorum`);
      return { primary: 'db-a', standbys: h.standbys as DbNode[], term: h.term, startedAt: Date.now() };
    }

    rows({
      lab: () => lab,
      primaryBesideEtcd,
      row,
      crossChecks,
      loseHost,
      newPrimaryAfter,
      assertWinnerRanksFirst,
      assertOnePromotion,
      replication,
      priority,
    });
  });
}

interface Kit {
  readonly lab: () => Lab;
  readonly row: (title: string, body: (r: Start) => Promise<void>, timeoutMs?: number) => void;
  readonly crossChecks: (fromMs: number) => Promise<CheckReport>;
  readonly loseHost: (host: DbNode) => Promise<number>;
  readonly newPrimaryAfter: (old: DbNode, faultAt: number, timeoutMs?: number) => Promise<Takeover>;
  readonly assertWinnerRanksFirst: (r: Start, faultAt: number, winner: DbNode) => Positions;
  readonly assertOnePromotion: (r: Start, winner: DbNode) => void;
  readonly replication: (primary: DbNode) => Promise<{ current: bigint; flush: Map<string, bigint> }>;
  readonly priority: (n: DbNode) => number;
  readonly primaryBesideEtcd: (r: Start) => Promise<Start>;
}

// --- the rows with three eligible nodes -------------------------------------------------------------

threeNodeSuite('sync ANY 1, priorities 1/2/3, degrade async', {
  nodeTraits: { 'db-a': { priority: 1 }, 'db-b': { priority: 2 }, 'db-c': { priority: 3 } },
}, (kit) => {
  const { row, crossChecks, loseHost, newPrimaryAfter, assertWinnerRanksFirst, assertOnePromotion, replication } = kit;
  const { priority } = kit;
  const byPriority = (nodes: readonly DbNode[]) => [...nodes].sort((a, b) => priority(b) - priority(a));

  row('3 nodes, switchover to the named node: the named standby becomes primary even when another ranks higher', async (r) => {
    const lab = kit.lab();
    // The lower-priority standby: a switchover without a name would pick the other one.
    const named = byPriority(r.standbys).at(-1)!;
    const res = await lab.switchover(named);
    assert.equal(res.status, 200, `switchover to ${named} refused: ${JSON.stringify(res.json)}`);
    const { atMs } = await newPrimaryAfter(r.primary, r.startedAt, 30_000);
    const report = await crossChecks(r.startedAt);
    assert.equal(report.final.primary, named, `the named node ${named} is the primary`);
    assert.ok(report.final.term > r.term, 'under a newer term');
    assertOnePromotion(r, named);
    note(`switchover to ${named}: writes back ${atMs - r.startedAt} ms after the request, longest gap ${report.gap.gapMs} ms`);
    assert.ok(report.gap.gapMs < 5_000, `write gap ${report.gap.gapMs} ms`);
  });

  row('3 nodes, priority: the primary host lost with no write in flight — the standbys tie on WAL and the higher priority wins', async (r) => {
    const lab = kit.lab();
    // No write reaches the primary (the client host is cut off), so both standbys flush the same WAL.
    await lab.faults.isolate('client');
    const tied = await waitFor('both standbys to flush all the primary wrote', 20_000, async () => {
      const { current, flush } = await replication(r.primary);
      return r.standbys.every((n) => flush.get(n) === current) ? current : null;
    }, 100);
    note(`both standbys at ${tied.toString(16)}`);
    const faultAt = await loseHost(r.primary);
    await lab.faults.healNetwork({ kind: 'isolate', host: 'client' });
    const { node: winner } = await newPrimaryAfter(r.primary, faultAt);
    const expected = byPriority(r.standbys)[0]!;
    const positions = assertWinnerRanksFirst(r, faultAt, winner);
    const flushed = [...positions.values()].map((p) => p.flushLsn);
    assert.ok(flushed.length === 2 && flushed[0] === flushed[1], 'both final positions are equal');
    assert.equal(winner, expected, `the higher priority ${expected} (priority ${priority(expected)}) wins the tie`);
    const report = await crossChecks(faultAt);
    assert.equal(report.final.primary, winner);
    assertOnePromotion(r, winner);
  });

  row('3 nodes, primary host lost: the more advanced standby wins (its final position ranks first), nothing lost', async (r) => {
    const lab = kit.lab();
    const faultAt = await loseHost(r.primary);
    const { node: winner, atMs } = await newPrimaryAfter(r.primary, faultAt);
    assertWinnerRanksFirst(r, faultAt, winner);
    note(renderMilestones(lab.timeline(faultAt, r.primary, winner), faultAt).split('\n').join('\n    '));
    const report = await crossChecks(faultAt);
    assert.equal(report.final.primary, winner);
    assertOnePromotion(r, winner);
    note(`host loss: writes back on ${winner} after ${atMs - faultAt} ms, longest gap ${report.gap.gapMs} ms`);
  });

  row('3 nodes, primary lost while one standby lags: the lagging one never wins, even with the highest priority', async (r) => {
    const lab = kit.lab();
    // The standby that would win a tie lags: its replication connection cut (port 5432 on its link),
    // while its agent and etcd stay reachable.
    const [lagging, other] = byPriority(r.standbys) as [DbNode, DbNode];
    const cut = { kind: 'isolate-ports', host: lagging, ports: [5432] } as const;
    const cutAt = await lab.faults.network(cut);
    const behind = await waitFor(`${lagging} to fall behind ${other}`, 30_000, async () => {
      const { flush } = await replication(r.primary);
      const a = flush.get(lagging) ?? 0n;
      const b = flush.get(other) ?? 0n;
      return b > a + 4096n ? b - a : null;
    }, 200);
    // Writes go on meanwhile: ANY 1 is met by the other standby.
    await lab.writer!.waitForAcks(cutAt + 2_000, 20, 20_000, r.primary);
    note(`${lagging} is ${behind} bytes behind ${other}`);
    const faultAt = await loseHost(r.primary);
    const { node: winner } = await newPrimaryAfter(r.primary, faultAt);
    assert.equal(winner, other, `the standby that did not lag (${other}) wins`);
    assertWinnerRanksFirst(r, faultAt, winner);
    await lab.faults.healNetwork(cut);
    const report = await crossChecks(cutAt);
    assert.equal(report.final.primary, other);
    assertOnePromotion(r, other);
    assert.ok(!lab.promotionsSince(cutAt).some((p) => p.node === lagging), `${lagging} was never promoted`);
  });

  row('3 nodes, AZ lost (the primary\'s host frozen and its link dark): a standby takes over, nothing acknowledged is lost', async (r) => {
    const lab = kit.lab();
    const faultAt = await lab.faults.network({ kind: 'dark', host: r.primary });
    await lab.faults.freeze(r.primary);
    const { node: winner, atMs } = await newPrimaryAfter(r.primary, faultAt);
    assertWinnerRanksFirst(r, faultAt, winner);
    const report = await crossChecks(faultAt);
    assert.equal(report.final.primary, winner);
    assertOnePromotion(r, winner);
    note(`AZ loss: writes back on ${winner} after ${atMs - faultAt} ms, longest gap ${report.gap.gapMs} ms`);
  });

  row('3 nodes, one standby lost: no failover, still synchronous (the claim keeps k ≥ 1), no write blocked, streaming again soon after the heal', async (r) => {
    const lab = kit.lab();
    const [lost, kept] = r.standbys as [DbNode, DbNode];
    // Dark in the network (every packet to or from it lost, its processes running), as bench:failover's
    // standby-loss: its agent keeps deciding, and cannot reach etcd's quorum.
    const faultAt = await lab.faults.network({ kind: 'dark', host: lost });
    await hold(12_000);
    const status = await lab.agentStatus(r.primary);
    const claim = status?.pg.syncClaim;
    note(`primary's claim with ${lost} lost: ${JSON.stringify(claim)}`);
    assert.ok(claim !== undefined && claim.k >= 1 && claim.members.includes(kept), `still synchronous to ${kept}: ${JSON.stringify(claim)}`);
    const keys = await lab.etcdKeys();
    assert.ok((keys?.sync?.k ?? 0) >= 1 && keys?.sync?.members?.includes(kept) === true, `etcd's record still claims ${kept}: ${JSON.stringify(keys?.sync)}`);
    const during = lab.writer!.since(faultAt, Date.now());
    const acks = acknowledged(during).map((w) => w.doneAt);
    const gap = Math.max(0, ...acks.map((at, i) => at - (i === 0 ? faultAt : acks[i - 1]!)));
    // Streaming again (issue 18: ≤ 2 s after a heal): a reply over a connection made after the heal.
    // The lost standby must not have withdrawn: etcd's quorum was out of its reach, so no election could
    // follow, and a withdrawn standby streams again only once etcd takes its published position back.
    const healAt = Date.now();
    await lab.faults.healAll();
    const back = await waitFor(`${lost} streaming again`, 60_000, async () => {
      const n = await psql(r.primary, `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${lost}' AND state = 'streaming' AND reply_time > to_timestamp(${healAt / 1000})`, { timeoutMs: 2_000 }).catch(() => '0');
      return n === '0' ? null : Date.now();
    }, 100);
    note(`one standby lost: ${lost} streaming again ${back - healAt} ms after the heal`);
    const withdrew = lab.logOf(lost).filter((l) => l.atMs >= faultAt && l.msg.startsWith('withdrawing for an election'));
    assert.deepEqual(withdrew.map((l) => l.msg), [], `${lost} withdrew while etcd's quorum was out of its reach`);
    // The goal is 2 s; the bound is what a loaded 2-core machine keeps (a lab start beside other work).
    assert.ok(back - healAt < 8_000, `${lost} streaming again ${back - healAt} ms after the heal`);
    const report = await crossChecks(faultAt);
    assert.deepEqual(lab.promotionsSince(r.startedAt), [], 'no promotion');
    assert.equal(report.final.primary, r.primary, 'the primary stays');
    assert.equal(report.final.term, r.term, 'the term stays');
    note(`one standby lost: longest gap while it was gone ${gap} ms`);
    assert.ok(gap < 1_500, `no write blocked: longest gap ${gap} ms while ${lost} was gone`);
  });

  row('3 nodes, both standbys lost (degrade async): the primary degrades with etcd\'s record first and writes go on; sync comes back', async (start) => {
    const lab = kit.lab();
    const r = await kit.primaryBesideEtcd(start);
    const faultAt = await loseHost(r.standbys[0]!);
    await loseHost(r.standbys[1]!);
    // The record goes to k = 0 first (etcd's agreement), then PostgreSQL: writes resume on the primary.
    const degraded = await waitFor('etcd\'s sync record to claim nothing', 60_000, async () =>
      lab.etcdWatch!.since(faultAt, 'sync').find((e) => e.type === 'put' && Number(e.value?.k ?? (e.value?.standby === null ? 0 : 1)) === 0) ?? null, 200);
    const resumed = await waitFor('writes to resume on the primary', 30_000, async () =>
      acknowledged(lab.writer!.since(degraded.atMs)).find((w) => w.server === r.primary) ?? null, 100);
    note(`record k = 0 ${degraded.atMs - faultAt} ms after the loss; writes back ${resumed.doneAt - faultAt} ms after it`);
    assert.ok(!lab.logOf(r.primary).some((l) => l.atMs >= faultAt && l.event === 'fenced'), `${r.primary} did not fence`);
    await hold(3_000);
    const report = await crossChecks(faultAt);
    assert.deepEqual(lab.promotionsSince(r.startedAt), [], 'no promotion');
    assert.equal(report.final.primary, r.primary, 'the primary stays');
  });
});

// --- a noFailover node, and writes that block rather than degrade ----------------------------------------

threeNodeSuite('db-c noFailover, degrade block', {
  nodeTraits: { 'db-c': { noFailover: true } },
  replication: { degrade: 'block' },
}, (kit) => {
  const { row, crossChecks, loseHost, newPrimaryAfter, assertOnePromotion } = kit;

  row('3 nodes, both standbys lost (degrade block): writes block, no degrade record; they resume when a standby returns, nothing lost', async (start) => {
    const lab = kit.lab();
    const r = await kit.primaryBesideEtcd(start);
    const [first, second] = r.standbys as [DbNode, DbNode];
    const faultAt = await loseHost(first);
    await loseHost(second);
    await hold(15_000);
    const late = acknowledged(lab.writer!.since(faultAt + 4_000));
    assert.deepEqual(late.map((w) => w.id), [], 'no write acknowledged once both standbys were gone');
    const degrade = lab.etcdWatch!.since(faultAt, 'sync').filter((e) => e.type === 'delete' || Number(e.value?.k ?? 1) === 0);
    assert.deepEqual(degrade, [], 'the record never dropped to k = 0');
    // Blocked by the missing standbys, not by a lost lease: the primary kept etcd's key and never fenced.
    assert.ok(!lab.logOf(r.primary).some((l) => l.atMs >= faultAt && l.event === 'fenced'), `${r.primary} did not fence`);
    const healedAt = Date.now();
    const report = await crossChecks(faultAt);
    assert.deepEqual(lab.promotionsSince(r.startedAt), [], 'no promotion');
    assert.equal(report.final.primary, r.primary);
    const back = firstAckAfter(lab.writer!.records, healedAt, { server: r.primary });
    note(`writes blocked for ${back === undefined ? '?' : back.doneAt - faultAt} ms (both standbys gone ${healedAt - faultAt} ms)`);
  });

  row('3 nodes, a noFailover node: a switchover to it is refused; on host loss the eligible standby wins and db-c follows it', async (r) => {
    const lab = kit.lab();
    const refused = await lab.switchover('db-c');
    assert.notEqual(refused.status, 200, 'a switchover to the noFailover node is refused');
    note(`switchover to db-c: HTTP ${refused.status} ${JSON.stringify(refused.json)}`);
    const eligible = r.standbys.find((n) => n !== 'db-c')!;
    const faultAt = await loseHost(r.primary);
    const { node: winner } = await newPrimaryAfter(r.primary, faultAt);
    assert.equal(winner, eligible, `the eligible standby ${eligible} wins`);
    const report = await crossChecks(faultAt);
    assert.equal(report.final.primary, eligible);
    assertOnePromotion(r, eligible);
    assert.ok(!lab.promotionsSince(r.startedAt).some((p) => p.node === 'db-c'), 'db-c was never promoted');
    // The healthy check saw db-c stream from the new primary (its upstream).
    assert.ok(report.final.standbys.includes('db-c'));
  });
});

// The scenario suite on the etcd backend (scenarios.test.ts runs it on both backends): which rows of
// docs/design.md's Failure scenarios it leaves out on etcd and why, and the rows only etcd has — its
// faults from issue 16 (docs/design.md, "Quorum on etcd", Failures of etcd and of the links to it):
//
//   Given a healthy cluster whose quorum is the lab's three-member etcd,
//   When an etcd member stops,              Then no failover, writes go on, the leader key is never lost;
//   When etcd's leader is isolated,         Then no failover, and the primary renews the same leader key
//                                           with the new etcd leader while the old one is still cut off;
//   When etcd's quorum is lost,             Then no failover and nobody promotes, and writes go on through
//                                           the standby's grant;
//   When the primary's agent is cut from etcd but not from its standby,
//                                           Then no failover, writes go on, its leader key expires, and it
//                                           takes the key again in the same term after the heal.
//
// Host loss of the primary on etcd is row 3 of the suite on this backend.
import assert from 'node:assert/strict';
import { memberOn } from './etcd.js';
import type { CheckReport, Lab } from './lab.js';
import type { DbNode } from './topology.js';
import { hold, waitFor } from './wait.js';

/** A row of the suite as scenarios.test.ts runs it: from a healthy cluster, its roles at the start. */
export interface EtcdRowStart {
  readonly primary: DbNode;
  readonly standby: DbNode;
  readonly term: number;
  readonly startedAt: number;
}

export interface EtcdRowKit {
  readonly lab: () => Lab;
  readonly row: (title: string, body: (r: EtcdRowStart) => Promise<void>, timeoutMs?: number) => void;
  /** Heals everything, waits for a healthy cluster and checks 0 lost and 0 overlapping writes. */
  readonly crossChecks: (fromMs: number) => Promise<CheckReport>;
  readonly assertNoFailover: (r: EtcdRowStart, report: CheckReport) => void;
  readonly note: (line: string) => void;
}

/**
 * Rows of scenarios.test.ts (by their number) that the etcd suite does not run, and why: either the row
 * has no meaning on etcd, or it is left out to keep `npm test` short because its path does not depend on
 * the quorum or is shown on etcd by another row. The IAM check is keyed "iam".
 */
export const etcdLeftOut: Readonly<Record<string, string>> = {
  iam: 'left out: the agents\' EC2 policy does not depend on the quorum (checked on the witness backend)',
  'row 23': 'left out for time: a planned restart goes through the operator API to the agent, and the primary keeps renewing its leader key meanwhile, as row 4 shows on etcd',
  'row 5': 'left out for time: not promoting while PostgreSQL streams is the core\'s rule on both backends; an expired leader key with a live primary is the etcd row "the primary\'s agent cut from etcd"',
  'row 6': 'left out for time: a paused host is row 3\'s path on etcd (its lease lapses, its key expires, the standby campaigns)',
  'row 8': 'no meaning on etcd: the witness has no vote there; the primary losing one etcd member is the etcd row "an etcd member stopped"',
  'row 10': 'no meaning on etcd: the witness has no vote there, and the standby\'s link to one etcd member is not its link to the quorum',
  'row 11': 'left out for time (about a minute): its links to the witness host carry one etcd member\'s traffic of three on etcd; the primary↔standby directions are the same as on the witness backend',
  'row 12': 'no meaning on etcd: the witness daemon is an observer there and makes no promises to wait out; etcd\'s own losses are the etcd rows',
  'row 14': 'left out for time: wall-clock jumps touch neither etcd\'s leases (timed on its leader\'s monotonic clock) nor the agents\' validity (monotonic)',
  'row 15a': 'left out for time: a disk stall is judged on the primary before any quorum call',
  'row 15b': 'left out for time: the stalled primary fences and releases its lease, row 2\'s path on etcd',
  'row 16b': 'no meaning on etcd: that link carries the primary\'s traffic to one etcd member of three, not to the quorum',
  'row 17': 'left out for time: EC2\'s faults hit the VIP move after the campaign has won; nothing in them depends on the backend',
  'row 19': 'left out for time (4 × about a minute): a standby agent killed during its promotion resumes from its persisted term; restarting with a term on etcd is row 4',
  'row 16a': 'left out for time (two minutes of flapping)',
  'row 13': 'no meaning on etcd: "the witness is down" is "etcd\'s quorum is lost" there (the etcd row shows nobody promotes); the override there is the operator\'s forced txn, not run in the lab',
  'row 21': 'left out for time (three freezes): the commit guard is armed from the agent\'s lease deadline, computed the same way on both backends',
};

/** The key of `title` in etcdLeftOut: "row 3", "row 16a", ... */
export function rowKey(title: string): string {
  return /^row \d+[ab]?/.exec(title)?.[0] ?? title;
}

export function etcdRows(kit: EtcdRowKit): void {
  const { row, crossChecks, assertNoFailover, note } = kit;

  row('etcd: an etcd member stopped (the one on the primary\'s host) — no failover, writes go on, the leader key is never lost', async (r) => {
    const lab = kit.lab();
    const before = await lab.etcdKeys();
    assert.equal(before?.leader?.node, r.primary, 'the primary holds the leader key');
    const stoppedAt = await lab.etcd!.stopMember(memberOn(r.primary));
    await lab.etcd!.waitLeader(15_000);
    await hold(10_000);
    // Still renewed on the two members left: the same key, on the same lease.
    const during = await lab.etcdKeys();
    assert.deepEqual(during?.leader, before?.leader, 'the leader key stays, on the same lease, while a member is down');
    lab.etcd!.startMember(memberOn(r.primary));
    const report = await crossChecks(stoppedAt);
    assertNoFailover(r, report);
    assert.ok(report.gap.gapMs < 2_000, `write gap ${report.gap.gapMs} ms`);
  });

  row('etcd: etcd\'s leader isolated (on the witness host) — no failover; the primary renews its key with the new etcd leader', async (r) => {
    const lab = kit.lab();
    // The leader on the witness host: a pure leader change, both database hosts keep two members.
    await lab.etcd!.moveLeader('witness');
    const before = await lab.etcdKeys();
    const isolatedAt = await lab.etcd!.isolateMember('witness');
    const next = await lab.etcd!.waitLeader(15_000, 'witness');
    note(`etcd leader witness isolated; ${next} elected ${Date.now() - isolatedAt} ms later`);
    // Past the key's TTL (3 s) plus an election: only renewals with the new leader keep it.
    await hold(Math.max(0, isolatedAt + 8_000 - Date.now()));
    const during = await lab.etcdKeys();
    assert.deepEqual(during?.leader, before?.leader, 'the primary renewed the same leader key with the new etcd leader');
    const report = await crossChecks(isolatedAt);
    assertNoFailover(r, report);
    assert.ok(report.gap.gapMs < 2_000, `write gap ${report.gap.gapMs} ms`);
  });

  row('etcd: etcd\'s quorum lost (two members of three stopped) — no failover, nobody promotes, writes go on through the standby\'s grant', async (r) => {
    const lab = kit.lab();
    const lostAt = await lab.etcd!.loseQuorum('witness');
    await hold(15_000);
    assert.deepEqual(lab.promotionsSince(lostAt), [], 'nobody promoted without etcd\'s quorum');
    assert.equal(await lab.etcdKeys(), null, 'etcd really had no quorum');
    const acks = lab.writer!.since(lostAt + 5_000).filter((w) => w.outcome === 'ok' && w.server === r.primary);
    assert.ok(acks.length > 100, `writes go on through ${r.primary} while etcd is down (${acks.length} acknowledged)`);
    lab.etcd!.restoreQuorum();
    const report = await crossChecks(lostAt);
    assertNoFailover(r, report);
    assert.ok(report.gap.gapMs < 2_000, `write gap ${report.gap.gapMs} ms`);
  });

  row('etcd: the primary\'s agent cut from etcd, not from its standby — no failover, writes go on; its key expires and it takes it again in the same term', async (r) => {
    const lab = kit.lab();
    const cutAt = await lab.etcd!.cutClient(r.primary, 'postgres');
    const expired = await waitFor('the primary\'s leader key to expire in etcd', 20_000, async () => {
      const keys = await lab.etcdKeys();
      return keys !== null && keys.leader === null ? keys : null;
    }, 250);
    note(`leader key gone ${Date.now() - cutAt} ms after the cut; term record ${JSON.stringify(expired.term)}`);
    await hold(5_000);
    assert.deepEqual(lab.promotionsSince(cutAt), [], 'no promotion while the primary is cut from etcd');
    const keys = await lab.etcdKeys();
    assert.equal(keys?.leader ?? null, null, 'nobody took the leader key: the standby sees a healthy primary and does not campaign');
    assert.equal(keys?.term?.term, r.term, 'the term did not move');
    const acks = lab.writer!.since(Date.now() - 3_000).filter((w) => w.outcome === 'ok' && w.server === r.primary);
    assert.ok(acks.length > 50, `writes go on through ${r.primary} (${acks.length} acknowledged in the last 3 s)`);
    const healedAt = await lab.faults.healNetwork();
    const back = await waitFor('the primary to take its leader key again', 30_000, async () => {
      const k = await lab.etcdKeys();
      return k?.leader?.node === r.primary ? k.leader : null;
    }, 250);
    note(`leader key taken again ${Date.now() - healedAt} ms after the heal, term ${back.term}`);
    assert.equal(back.term, r.term, 'in the same term');
    const report = await crossChecks(cutAt);
    assertNoFailover(r, report);
    assert.ok(report.gap.gapMs < 2_000, `write gap ${report.gap.gapMs} ms`);
  });
}

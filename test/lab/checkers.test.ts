// Goal: the lab's checkers and fault rules say what they claim, on hand-made data (no root needed):
// a write gap spans the fault, a lost write is an acknowledged id missing from the final primary,
// two servers acknowledging in overlapping spans are caught while a clean handover is not, the
// final-state check names what is wrong, and the nftables script drops exactly what a fault says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterProblems, firstAckAfter, lostAckedWrites, overlappingWriters, percentile, writeGap, type AgentStatusView } from './checkers.js';
import { nftScript } from './faults.js';
import { topologyFor } from './topology.js';
import type { WriteRecord } from './writer.js';

let nextId = 1;
function ok(server: string, timeline: number, sentAt: number, doneAt = sentAt + 5): WriteRecord {
  return { id: nextId++, lane: 0, sentAt, doneAt, outcome: 'ok', server, timeline };
}
function failed(sentAt: number): WriteRecord {
  return { id: nextId++, lane: 0, sentAt, doneAt: sentAt + 1000, outcome: 'unknown', error: 'timeout' };
}

describe('lab checkers', () => {
  it('the write gap runs from the last acknowledgement before the fault to the first after it', () => {
    const records = [ok('db-a', 1, 900), ok('db-a', 1, 980), failed(1000), failed(1500), ok('db-b', 2, 4000), ok('db-b', 2, 4020)];
    const gap = writeGap(records, 1000, 5000);
    assert.equal(gap.fromMs, 985);
    assert.equal(gap.toMs, 4005);
    assert.equal(gap.gapMs, 3020);
    // Nothing acknowledged at all after the fault: the gap lasts until the end of the window.
    assert.equal(writeGap([ok('db-a', 1, 900)], 1000, 3000).gapMs, 3000 - 905);
  });

  it('the first acknowledged write after the fault can be asked of one server', () => {
    const records = [ok('db-a', 1, 990), ok('db-a', 1, 1001), ok('db-b', 2, 3000)];
    assert.equal(firstAckAfter(records, 1000)?.server, 'db-a');
    assert.equal(firstAckAfter(records, 1000, { server: 'db-b' })?.sentAt, 3000);
    assert.equal(firstAckAfter(records, 1000, { notServer: 'db-a' })?.server, 'db-b');
  });

  it('a lost write is an acknowledged id missing from the final primary; unknown outcomes are not counted', () => {
    const a = ok('db-a', 1, 100);
    const b = ok('db-a', 1, 120);
    const u = failed(140);
    const lost = lostAckedWrites([a, b, u], new Set([a.id]));
    assert.deepEqual(lost.map((r) => r.id), [b.id]);
  });

  it('a clean handover has no overlapping writers', () => {
    const records = [ok('db-a', 1, 100), ok('db-a', 1, 200), failed(300), ok('db-b', 2, 4000), ok('db-b', 2, 4100)];
    assert.deepEqual(overlappingWriters(records), { writes: 0, details: [] });
  });

  it('two servers acknowledging in the same span are overlapping writers (split brain)', () => {
    // db-b was promoted while db-a kept acknowledging: the spans 4000..4300 and 4100..4400 intersect.
    const records = [ok('db-a', 1, 3000), ok('db-b', 2, 4000), ok('db-a', 1, 4300), ok('db-b', 2, 4400)];
    const overlap = overlappingWriters(records);
    assert.equal(overlap.writes, 2);
    assert.match(overlap.details[0]!, /db-a \(timeline 1\) and db-b \(timeline 2\)/);
  });

  it('the same server on a new timeline is not a second writer, a switch back is still checked', () => {
    const records = [ok('db-a', 1, 100), ok('db-b', 2, 1000), ok('db-a', 3, 2000)];
    assert.equal(overlappingWriters(records).writes, 0);
  });

  it('percentiles use the nearest rank', () => {
    assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
    assert.equal(percentile([], 50), null);
  });
});

function status(from: string, role: string, term: number, extra: Partial<AgentStatusView['pg']> = {}, blocker: string | null = null): AgentStatusView {
  const primary = role === 'primary';
  return {
    from,
    term,
    role,
    primaryOfTerm: 'db-a',
    leaseRemainingMs: primary ? 2000 : 0,
    promotionBlocker: blocker,
    pg: { running: true, inRecovery: !primary, writable: primary, timeline: 1, streaming: !primary, syncStandby: primary ? 'db-b' : null, standbyInSync: primary, ...extra },
  };
}

describe('the final-state check', () => {
  it('accepts one primary with the newest term, a lease and the VIP, and an eligible streaming standby', () => {
    const r = clusterProblems({ statuses: { 'db-a': status('db-a', 'primary', 3), 'db-b': status('db-b', 'standby', 3) }, vipNode: 'db-a', witness: { term: 3, primary: 'db-a', syncEligible: 'db-b' } }, { sync: true });
    assert.deepEqual(r, { problems: [], healthy: { primary: 'db-a', standby: 'db-b', standbys: ['db-b'], term: 3 } });
  });

  it('names every problem: the VIP elsewhere, a writable standby, a lagging term, a witness that disagrees', () => {
    const r = clusterProblems(
      { statuses: { 'db-a': status('db-a', 'primary', 3), 'db-b': status('db-b', 'standby', 2, { writable: true }) }, vipNode: 'db-b', witness: { term: 3, primary: 'db-b', syncEligible: 'db-b' } },
      { sync: true },
    );
    assert.equal(r.healthy, null);
    assert.ok(r.problems.some((p) => /VIP routes to db-b/.test(p)));
    assert.ok(r.problems.some((p) => /db-b is not the primary but its PostgreSQL accepts writes/.test(p)));
    assert.ok(r.problems.some((p) => /standby db-b is on term 2/.test(p)));
    assert.ok(r.problems.some((p) => /witness sees term 3 primary db-b/.test(p)));
  });

  it('in sync mode the standby must be sync-eligible at the witness, or a failover would be refused', () => {
    const r = clusterProblems({ statuses: { 'db-a': status('db-a', 'primary', 3), 'db-b': status('db-b', 'standby', 3) }, vipNode: 'db-a', witness: { term: 3, primary: 'db-a', syncEligible: 'db-a' } }, { sync: true });
    assert.deepEqual(r.problems, ['the witness does not hold db-b sync-eligible yet (it holds db-a)']);
  });

  it('three nodes: both standbys stream from the primary and are members of its claim; a noFailover node never is', () => {
    const claim = { members: ['db-b', 'db-c'], k: 1 };
    const sb = (n: string, extra: Partial<AgentStatusView> = {}): AgentStatusView => ({ ...status(n, 'standby', 3, { upstream: 'db-a' }), syncMember: true, ...extra });
    const snap = (statuses: Record<string, AgentStatusView>) => ({ statuses, vipNode: 'db-a', witness: { term: 3, primary: 'db-a', syncEligible: null } });
    const primary = status('db-a', 'primary', 3, { syncClaim: claim });
    const ok = clusterProblems(snap({ 'db-a': primary, 'db-b': sb('db-b'), 'db-c': sb('db-c') }), { sync: true });
    assert.deepEqual(ok, { problems: [], healthy: { primary: 'db-a', standby: 'db-b', standbys: ['db-b', 'db-c'], term: 3 } });
    const lagging = clusterProblems(snap({ 'db-a': status('db-a', 'primary', 3, { syncClaim: { members: ['db-b'], k: 1 } }), 'db-b': sb('db-b'), 'db-c': sb('db-c', { syncMember: false, pg: { ...sb('db-c').pg, upstream: 'db-b' } }) }), { sync: true });
    assert.deepEqual(lagging.problems, [
      'db-c follows db-b, not the primary db-a',
      'db-c is not a member of db-a\'s synchronous claim yet (claim ANY 1 (db-b), syncMember false)',
    ]);
    // db-c noFailover: not a member, and not eligible (its blocker says so), and that is healthy.
    const reporting = sb('db-c', { syncMember: false, promotionBlocker: 'noFailover' });
    const withNoFailover = clusterProblems(snap({ 'db-a': status('db-a', 'primary', 3, { syncClaim: { members: ['db-b'], k: 1 } }), 'db-b': sb('db-b'), 'db-c': reporting }), { sync: true, noFailover: ['db-c'] });
    assert.deepEqual(withNoFailover.problems, []);
    const named = clusterProblems(snap({ 'db-a': primary, 'db-b': sb('db-b'), 'db-c': reporting }), { sync: true, noFailover: ['db-c'] });
    assert.deepEqual(named.problems, ['db-c is noFailover but db-a\'s synchronous claim names it']);
  });

  it('two primaries are never healthy', () => {
    const r = clusterProblems({ statuses: { 'db-a': status('db-a', 'primary', 3), 'db-b': status('db-b', 'primary', 4) }, vipNode: 'db-b', witness: null }, { sync: true });
    assert.match(r.problems[0]!, /2 nodes report role primary/);
  });
});

describe('nftables rules of the fault tools', () => {
  const t = topologyFor('secondary-ip');

  it('isolation drops everything on eth0 in both directions and nothing on loopback', () => {
    const script = nftScript(t, 'db-a', [{ kind: 'isolate', host: 'db-a' }]);
    assert.match(script, /chain input \{\n\s+type filter hook input priority 0; policy accept;\n\s+iifname "eth0" drop/);
    assert.match(script, /chain output \{\n\s+type filter hook output priority 0; policy accept;\n\s+oifname "eth0" drop/);
    assert.doesNotMatch(script, /"lo"/);
    // Another host's table stays empty.
    assert.doesNotMatch(nftScript(t, 'db-b', [{ kind: 'isolate', host: 'db-a' }]), /drop/);
  });

  it('a one-way cut drops at the sender only, towards the receiver\'s address', () => {
    const faults = [{ kind: 'cut', from: 'db-a', to: 'witness' }] as const;
    assert.match(nftScript(t, 'db-a', faults), /oifname "eth0" ip daddr 198\.18\.2\.20 drop/);
    assert.doesNotMatch(nftScript(t, 'witness', faults), /drop/);
  });

  it('random loss uses numgen on both ends, each for its own direction', () => {
    const faults = [{ kind: 'loss', a: 'db-a', b: 'db-b', percent: 30 }] as const;
    assert.match(nftScript(t, 'db-a', faults), /ip daddr 198\.18\.1\.12 numgen random mod 100 < 30 drop/);
    assert.match(nftScript(t, 'db-b', faults), /ip daddr 198\.18\.1\.11 numgen random mod 100 < 30 drop/);
  });

  it('every script replaces the table atomically (create, flush, declare)', () => {
    const script = nftScript(t, 'client', []);
    assert.ok(script.startsWith('table inet pgvip_lab {}\nflush table inet pgvip_lab\ntable inet pgvip_lab {'));
  });
});

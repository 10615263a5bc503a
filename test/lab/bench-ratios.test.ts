// Goal: failover.md's comparison with the anchors reads the right rows (EC2 instant, supported,
// pgvip recovered), divides the right way, and flags a missed aim instead of hiding it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anchorRatios, ratioSection, type RatioRow } from './bench-ratios.js';

const row = (scenario: string, p50: number | null, extra: Partial<RatioRow> = {}): RatioRow => ({
  scenario, title: scenario, supported: true, runs: 3, recovered: p50 === null ? 0 : 3, recoveryMs: { p50 },
  lostAckedWrites: 0, overlappingWrites: 0, runsWithTwoWritablePrimaries: 0, ...extra,
});
const fmt = (v: number | null) => (v === null ? '—' : `${v} ms`);

test('ratios: anchor p50 over pgvip p50 per scenario, aims by settings, EC2 instant only', () => {
  const ratios = anchorRatios({
    pgvip: [row('host-loss', 3000), row('host-loss', 9000, { profile: 'slow' }), row('switchover', 300)],
    patroni: [row('host-loss', 30_000, { lostAckedWrites: 5 }), row('switchover', 1200)],
    'repmgr-fast': [row('host-loss', null)],
    'pg-auto-failover-fast': [row('host-loss', 5000)],
  });
  const of = (anchor: string, scenario: string) => ratios.find((r) => r.anchor === anchor && r.scenario === scenario);
  assert.equal(of('patroni', 'host-loss')?.times, 10);
  assert.equal(of('patroni', 'host-loss')?.anchorBad, 5);
  assert.equal(of('patroni', 'switchover')?.times, 4);
  assert.equal(of('patroni', 'switchover')?.met, false, '4× is under the 5× aim against defaults');
  assert.equal(of('pg-auto-failover-fast', 'host-loss')?.met, false, '1.7× is under the 2× aim against the fastest');
  assert.equal(of('repmgr-fast', 'host-loss')?.met, true, 'an anchor that never recovered is beaten');
  assert.equal(of('repmgr-fast', 'host-loss')?.times, null);
  assert.equal(ratios.length, 4);
  const text = ratioSection({ pgvip: [row('switchover', 300)], patroni: [row('switchover', 1200)] }, fmt).join('\n');
  assert.match(text, /\| switchover \| patroni \| defaults \| 300 ms \| 1200 ms \| 4\.0× \| ≥ 5× \| \*\*no\*\* \|/);
  assert.match(text, /Missed: patroni \(defaults\) on switchover, 4\.0×\./);
  assert.deepEqual(ratioSection({ pgvip: [row('switchover', 300)] }, fmt), [], 'no anchors, no section');
});

// Goal: a bench:anchors row collects runs over several short lab runs only when asked (--add), numbered
// on from the earlier ones, and a promotion is counted from the timeline in the primary's WAL file name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeSafety, timelineOfWalFile, type SafetyRun, type SafetySummary } from './safety-results.js';

function run(n: number, writesBackMs: number): SafetyRun {
  return {
    run: n,
    oldPrimary: 'db-a',
    finalPrimary: 'db-b',
    writesBackMs,
    writeGapMs: writesBackMs,
    lost: 0,
    overlapping: 0,
    dualWritableMs: 0,
    promotions: 1,
  };
}

function row(runs: SafetyRun[], errors: string[] = []): SafetySummary {
  return { scenario: 'cut', title: 'cut', runs, errors };
}

describe('bench:anchors results', () => {
  it('adds the new runs after the earlier ones with --add, numbered on', () => {
    const merged = mergeSafety(row([run(1, 100)], ['run 2: stuck']), row([run(1, 200)], ['run 1: late']), true);
    assert.deepEqual(merged.runs.map((r) => [r.run, r.writesBackMs]), [[1, 100], [2, 200]]);
    assert.deepEqual(merged.errors, ['run 2: stuck', 'run 1: late']);
  });

  it('replaces the row without --add, and takes the new row when there was none', () => {
    assert.deepEqual(mergeSafety(row([run(1, 100)]), row([run(1, 200)]), false).runs, [run(1, 200)]);
    assert.deepEqual(mergeSafety(undefined, row([run(1, 200)]), true).runs, [run(1, 200)]);
  });

  it('reads the timeline from a WAL file name, and refuses anything else', () => {
    assert.equal(timelineOfWalFile('000000010000000000000003'), 1);
    assert.equal(timelineOfWalFile('0000001A0000000000000003'), 26);
    assert.throws(() => timelineOfWalFile('undefined'), /not a WAL file name/);
  });
});

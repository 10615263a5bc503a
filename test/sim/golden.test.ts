// Goal: the core's behaviour does not change by accident. Every named scenario and a few dozen random
// seeds replay to exactly the transcript pinned in test/sim/testdata/ (see golden.ts); an intended
// change rewrites them (`npm run sim -- --rewrite-golden`) and its commit says which lines changed and why.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GOLDEN_DIR, goldenCases, renderGolden } from './golden.js';

/** The first differing line, for a readable failure (the files can be long). */
function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}:\n  golden: ${a[i] ?? '(end of file)'}\n  now:    ${b[i] ?? '(end of output)'}`;
  }
  return 'identical';
}

describe('golden simulator transcripts', () => {
  for (const c of goldenCases()) {
    test(c.file, () => {
      const file = path.join(GOLDEN_DIR, c.file);
      let want: string;
      try {
        want = readFileSync(file, 'utf8');
      } catch {
        assert.fail(`${file} is missing: run npm run sim -- --rewrite-golden`);
      }
      const got = renderGolden(c);
      if (got !== want) {
        assert.fail(`${c.file} differs from the golden transcript at ${firstDifference(want, got)}\n` +
          'If the change is intended, run npm run sim -- --rewrite-golden and say in the commit which lines changed and why.');
      }
    });
  }
  test('a run renders the same transcript twice (no clock, no object-order accident)', () => {
    const c = goldenCases().find((x) => x.file.startsWith('seed-'))!;
    assert.equal(renderGolden(c), renderGolden(c));
  });
});

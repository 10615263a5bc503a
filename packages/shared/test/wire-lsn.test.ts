// Goal: LSNs convert exactly between PostgreSQL's 'X/Y' text and 64-bit offsets, and anything that is
// not an LSN — garbage, padding, more than 64 bits — is refused rather than misread.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_LSN, formatLsn, lsnProblem, parseLsn } from '../src/wire/lsn.js';

describe('wire: LSN text', () => {
  it('parses what PostgreSQL prints', () => {
    assert.equal(parseLsn('0/0'), 0n);
    assert.equal(parseLsn('16/B374D848'), 0x16_b374d848n);
    assert.equal(parseLsn('0/1'), 1n);
    assert.equal(parseLsn('1/0'), 0x1_00000000n);
    assert.equal(parseLsn('FFFFFFFF/FFFFFFFF'), MAX_LSN);
  });

  it('accepts the spellings PostgreSQL accepts: lower case and zero padding', () => {
    assert.equal(parseLsn('16/b374d848'), 0x16_b374d848n);
    assert.equal(parseLsn('00000016/0000000A'), 0x16_0000000an);
  });

  it('formats as PostgreSQL does: upper case, no padding', () => {
    assert.equal(formatLsn(0n), '0/0');
    assert.equal(formatLsn(0x16_b374d848n), '16/B374D848');
    assert.equal(formatLsn(0x1_0000000an), '1/A');
    assert.equal(formatLsn(MAX_LSN), 'FFFFFFFF/FFFFFFFF');
  });

  for (const garbage of ['', '/', '1/', '/1', '1/2/3', '1', '123456789/0', '0/123456789', '0x1/0', ' 1/0', '1/0 ', '1/0\n', '-1/0', 'G/0', '1 /0', '١/0']) {
    it(`refuses ${JSON.stringify(garbage)}`, () => {
      assert.throws(() => parseLsn(garbage), RangeError);
      assert.match(lsnProblem(garbage) ?? '', /is not a PostgreSQL LSN/);
    });
  }

  it('refuses to format offsets outside 64 unsigned bits', () => {
    assert.throws(() => formatLsn(-1n), RangeError);
    assert.throws(() => formatLsn(MAX_LSN + 1n), RangeError);
  });

  it('round-trips every 64-bit offset, and canonical text', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: MAX_LSN }), (lsn) => parseLsn(formatLsn(lsn)) === lsn));
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_LSN }), (lsn) => {
        const text = formatLsn(lsn);
        return formatLsn(parseLsn(text)) === text;
      }),
    );
  });
});

// Goal: LSNs parse from and print to PostgreSQL's 'X/Y' form exactly, beyond 2^53, and compare as WAL positions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareLsn, formatLsn, lsnBytesBetween, maxLsn, parseLsn, parseLsnOrNull } from '@pgvip/agent';

test("Given PostgreSQL's text form, Then parse and format round-trip", () => {
  for (const text of ['0/0', '0/3000148', '16/B374D848', 'FFFFFFFF/FFFFFFFF']) assert.equal(formatLsn(parseLsn(text)), text);
  assert.equal(parseLsn('0/3000148'), 0x3000148n);
  assert.equal(parseLsn('1/0'), 1n << 32n);
  assert.equal(parseLsn('ffffffff/ffffffff'), 2n ** 64n - 1n, 'beyond Number.MAX_SAFE_INTEGER without loss');
});

test('Given text that is not an LSN, Then parsing throws rather than guessing', () => {
  for (const bad of ['', '0', '0/', '/1', '0/123456789', 'g/1', '1/2/3']) assert.throws(() => parseLsn(bad), TypeError, bad);
  assert.equal(parseLsnOrNull(null), null);
  assert.throws(() => formatLsn(-1n), RangeError);
});

test('Given two positions, Then they compare by WAL order and lag never goes negative', () => {
  const a = parseLsn('0/FFFFFFFF');
  const b = parseLsn('1/0');
  assert.equal(compareLsn(a, b), -1);
  assert.equal(compareLsn(b, a), 1);
  assert.equal(compareLsn(a, a), 0);
  assert.equal(lsnBytesBetween(b, a), 1n, 'the halves carry: 0/FFFFFFFF is one byte before 1/0');
  assert.equal(lsnBytesBetween(a, b), 0n);
  assert.equal(maxLsn(a, b), b);
  assert.deepEqual([b, a].sort(compareLsn), [a, b]);
});

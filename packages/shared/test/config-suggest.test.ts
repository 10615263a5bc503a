// Goal: "did you mean" suggests a plausible typo fix and stays quiet when nothing is close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closestMatch, editDistance } from '../src/config/suggest.js';

test('a swap of two neighbours counts as one edit', () => {
  assert.equal(editDistance('prot', 'port'), 1);
  assert.equal(editDistance('port', 'port'), 0);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('typos, case and underscore differences find the intended name', () => {
  assert.equal(closestMatch('prot', ['host', 'port']), 'port');
  assert.equal(closestMatch('secondary_ip', ['secondary-ip', 'route-table']), 'secondary-ip');
  assert.equal(closestMatch('leaseMS', ['leaseMs', 'leaseMarginMs']), 'leaseMs');
  assert.equal(closestMatch('lagBytes', ['mode', 'lagBytesMax']), 'lagBytesMax');
});

test('nothing is suggested when no candidate is close', () => {
  assert.equal(closestMatch('flavour', ['mode', 'lagBytesMax']), undefined);
  assert.equal(closestMatch('x', []), undefined);
});

// Goal: text from outside pgvip comes out of cleanText with no terminal control left in it (no
// escape sequence, no C0/C1 control, no bidi override), readable, and bounded in length.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanText } from '../src/text/index.js';

// eslint-disable-next-line no-control-regex
const anyControl = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('the window-title and clear-screen sequences of the issue vanish, the words stay', () => {
  const answer = 'bad gateway\u001b]0;pwned\u0007\u001b[2J\u001b[Hretry later';
  assert.equal(cleanText(answer), 'bad gatewayretry later');
});

test('every kind of escape and control is removed', () => {
  const cases: [string, string][] = [
    ['a\u001b[31;1mred\u001b[0m b', 'ared b'], // SGR
    ['a\u009b2Jb', 'ab'], // 8-bit CSI
    ['a\u001b]52;c;ZXZpbA==\u001b\\b', 'ab'], // OSC 52 (clipboard) ended by ST
    ['a\u009d0;t\u009cb', 'ab'], // 8-bit OSC and ST
    ['a\u001bPq#0;2;0;0;0\u001b\\b', 'ab'], // DCS (sixel)
    ['a\u001bcb', 'ab'], // RIS: full terminal reset
    ['a\u001b(0b', 'ab'], // charset switch
    ['over\rwrite', 'over write'],
    ['del\u007f bell\u0007 nul\u0000 bs\u0008', 'del bell nul bs'],
    ['abc\u202edcba\u202c', 'abcdcba'], // bidi override
    ['unterminated \u001b]0;title', 'unterminated 0;title'], // shown, not swallowed
  ];
  for (const [input, expected] of cases) {
    const out = cleanText(input);
    assert.equal(out, expected, JSON.stringify(input));
    assert.doesNotMatch(out, anyControl);
  }
});

test('one line by default; line feeds and tabs kept when asked, CR and CRLF become line feeds', () => {
  assert.equal(cleanText('a\nb\tc\r\nd'), 'a b c d');
  assert.equal(cleanText('a\nb\tc\r\nd\re', { multiline: true }), 'a\nb\tc\nd\ne');
});

test('long text is cut to the bound with an ellipsis, never inside a surrogate pair', () => {
  assert.equal(cleanText('x'.repeat(10), { maxChars: 5 }), 'xxxx…');
  assert.equal(cleanText(`abc${'😀'.repeat(3)}`, { maxChars: 5 }), 'abc…');
  assert.equal(cleanText('x'.repeat(5000)).length, 2000);
});

test('ordinary text, including non-ASCII, is unchanged', () => {
  for (const text of ['switchover to db-b: lag 0 B, term 7', 'naïve café — 東京 ✔', '']) assert.equal(cleanText(text), text);
});

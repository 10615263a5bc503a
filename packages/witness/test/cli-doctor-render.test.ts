// Goal: `pgvip doctor`'s text output prints what others answered (an etcd member's name and version,
// an error a server sent, the EC2 API's and IMDS's answers) as plain text: an escape sequence in one
// cannot clear the operator's screen, retitle the window or write the clipboard; only the doctor's
// own marks are coloured.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderDoctor } from '../src/cli/commands/setup.js';
import type { Check } from '../src/cli/doctor.js';

describe('pgvip doctor, text output', () => {
  it('prints the checks\' details as plain text, with its own colours only', () => {
    // What doctor-etcd.ts builds from `etcd --name` and the member's status, here a hostile member.
    const checks: Check[] = [
      { status: 'ok', title: 'etcd http://127.0.0.1:2379', detail: 'etcd 3.4.23\u001b]0;owned\u0007, member 8e9e05c52164694d' },
      {
        status: 'fail',
        title: 'etcd members',
        detail: '2 members: m0\u001b[2J\u001b[H (http://127.0.0.1:2379), m1\u009b31m',
        fix: 'run 3 or 5 members\u001b]52;c;cm0gLXJmIH4K\u0007',
      },
    ];
    const text = renderDoctor('cluster main, node db-a', checks, { color: true });
    /* eslint-disable no-control-regex -- finding control characters is the point */
    const escapes = [...text.matchAll(/\u001b\[[0-9;]*m|\u001b|\u009b|\u0007/g)].map((m) => m[0]);
    // Colour (SGR) sequences of the two marks and nothing else.
    assert.ok(escapes.every((e) => /^\u001b\[[0-9;]*m$/.test(e)), `escapes printed: ${JSON.stringify(escapes)}`);
    /* eslint-enable no-control-regex */
    assert.match(text, /etcd 3\.4\.23, member 8e9e05c52164694d/);
    assert.match(text, /2 members: m0 \(http:\/\/127\.0\.0\.1:2379\), m1\n/);
    assert.match(text, /fix: run 3 or 5 members\n1 problem found$/);
  });
});

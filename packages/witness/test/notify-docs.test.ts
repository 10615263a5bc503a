// Goal: docs/notifications.md lists exactly the events a channel can subscribe to, with the meaning
// the config schema gives them, and documents the command hook's arguments and environment as
// the code passes them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { notificationEvents } from '@pgvip/shared';
import { commandArgs, commandEnv } from '../src/notify/index.js';
import { event } from './notify-helpers.js';

const doc = readFileSync(new URL('../../../docs/notifications.md', import.meta.url), 'utf8');

describe('docs/notifications.md', () => {
  it('has one table row per notification event, with its meaning', () => {
    const section = doc.slice(doc.indexOf('## Events'), doc.indexOf('### Names in the history'));
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(Object.fromEntries(rows), notificationEvents);
  });

  it('documents the command arguments and every PGVIP_EVENT_* variable the hook receives', () => {
    const e = event();
    assert.deepEqual(commandArgs({ path: '/x', args: ['a'], timeoutMs: 1 }, e).slice(1), [e.type, e.cluster, e.node, String(e.term), e.detail]);
    assert.match(doc, /<path> <args\.\.\.> <type> <cluster> <node> <term> <detail>/);
    for (const name of Object.keys(commandEnv(e, {}))) assert.ok(doc.includes(`\`${name}\``), `${name} is documented`);
  });
});

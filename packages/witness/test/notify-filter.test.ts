// Goal: a channel subscribed by the names of config/events.ts receives the events the witness
// records under its decision core's names (vote-granted, failure-detected, ...), as
// docs/notifications.md lists them, and nothing else unless it subscribed to '*'.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { notificationEvents } from '@pgvip/shared';
import { eventFilter } from '../src/notify/filter.js';
import { subscriptionName, subscriptionNameOf } from '../src/notify/index.js';
import { event } from './notify-helpers.js';

describe('event filters', () => {
  it('passes everything with "*"', () => {
    const all = eventFilter(['*']);
    for (const type of ['failover', 'vote-requested', 'witness-started', 'anything']) assert.equal(all(event({ type })), true);
  });

  it('passes a subscription name and the core names it covers, and nothing else', () => {
    const wants = eventFilter(['failover', 'node-unreachable', 'agent-down', 'manual-override', 'fenced']);
    const passed = ['failover', 'vote-granted', 'failure-detected', 'agent-unreachable', 'manual-failover', 'lease-released', 'fenced', 'vote-requested', 'switchover', 'witness-started', 'notification-failed']
      .filter((type) => wants(event({ type })));
    assert.deepEqual(passed, ['failover', 'vote-granted', 'failure-detected', 'agent-unreachable', 'manual-failover', 'lease-released', 'fenced']);
  });

  it('maps every covered core name to a subscription name, and every subscription name to itself', () => {
    for (const [core, name] of Object.entries(subscriptionNameOf)) assert.ok(name in notificationEvents, `${core} → ${name}`);
    for (const name of Object.keys(notificationEvents)) assert.equal(subscriptionName(name), name);
    assert.equal(subscriptionName('vote-requested'), undefined);
  });

  it('is documented in docs/notifications.md', () => {
    const doc = readFileSync(new URL('../../../docs/notifications.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### Names in the history'), doc.indexOf('## The event document'));
    const rows = Object.fromEntries([...section.matchAll(/^\| `([a-z-]+)` \| `([a-z-]+)`/gm)].map((m) => [m[1], m[2]]));
    const renamed = Object.fromEntries(Object.entries(subscriptionNameOf).filter(([core, name]) => core !== name));
    assert.deepEqual(rows, renamed);
  });
});

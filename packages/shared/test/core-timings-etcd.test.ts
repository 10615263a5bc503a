// Goal: on etcd the timings are checked for what etcd changes (docs/design.md, Quorum on etcd, "The
// lease"): the lease margin must cover ρ·L·(1−ρ)/(1+ρ), since etcd keeps no margin of its own; a
// failover after host loss waits for the leader key's TTL plus etcd's 500 ms expiry sweep; and an
// etcd election (two election timeouts) longer than the lease validity minus a heartbeat is warned
// about. The loader refuses the margin on etcd only, naming the field, and parses the election timeout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  defaultTimings, etcdExpirySweepMs, etcdMinLeaseMarginMs, leaseValidMs, promiseMs, takeoverAfterMs,
  timingViolations, timingWarnings, type Timings,
} from '../src/core/index.js';
import { parseConfigText, quorumTimingsOf } from '../src/index.js';
import { agentYaml, lineAbout, problemsOf } from './config-helpers.js';

const etcd = { backend: 'etcd' as const, electionTimeoutMs: 1000 };
const thinMargin: Timings = { ...defaultTimings, leaseMarginMs: 20 };

test('Given a margin below ρ·L·(1−ρ)/(1+ρ), Then etcd refuses it and the witness does not', () => {
  const min = etcdMinLeaseMarginMs(defaultTimings);
  assert.ok(Math.abs(min - (0.01 * 2400 * 0.99) / 1.01) < 1e-9);
  assert.deepEqual(timingViolations(thinMargin), []);
  const v = timingViolations(thinMargin, etcd);
  assert.deepEqual(v.map((x) => x.field), ['leaseMarginMs']);
  assert.match(v[0]!.message, /leaseMarginMs 20 must be ≥ ρ·L·\(1−ρ\)\/\(1\+ρ\) = 23\.5 on etcd.*at least 24/);
  assert.deepEqual(timingViolations({ ...defaultTimings, leaseMarginMs: 24 }, etcd), []);
  assert.deepEqual(timingViolations(defaultTimings, etcd), []);
});

test('Given etcd, Then a takeover after host loss waits for the key\'s TTL plus the expiry sweep', () => {
  assert.equal(takeoverAfterMs(defaultTimings), promiseMs(defaultTimings));
  // TTL ⌈2400 ms⌉ = 3 s on etcd's clock (1 + ρ) plus the sweep: 3530 ms against the witness's 2524.
  assert.equal(takeoverAfterMs(defaultTimings, etcd), 3000 * 1.01 + etcdExpirySweepMs);
  assert.ok(takeoverAfterMs(defaultTimings, etcd) > promiseMs(defaultTimings));
  // etcd raises a TTL below 1.5 election timeouts to that.
  assert.equal(takeoverAfterMs(defaultTimings, { backend: 'etcd', electionTimeoutMs: 2500 }), 3750 * 1.01 + etcdExpirySweepMs);
});

test('Given an etcd election longer than the validity minus a heartbeat, Then it is warned about, not refused', () => {
  assert.deepEqual(timingWarnings(defaultTimings, etcd), []);
  assert.deepEqual(timingWarnings(defaultTimings), []);
  const slow = { backend: 'etcd' as const, electionTimeoutMs: 1200 };
  assert.ok(2 * 1200 > leaseValidMs(defaultTimings) - defaultTimings.heartbeatMs);
  const [w] = timingWarnings(defaultTimings, slow);
  assert.match(w ?? '', /two election timeouts \(2·1200 = 2400 ms\), longer than the lease validity minus a heartbeat \(2076 ms\).*raise leaseMs \(to at least 2728\)/);
  assert.deepEqual(timingViolations(defaultTimings, slow), []);
  // The leaseMs it names is enough.
  assert.deepEqual(timingWarnings({ ...defaultTimings, leaseMs: 2728 }, slow), []);
});

test('Given quorum.backend etcd and too thin a margin, Then the loader names timings.leaseMarginMs; on the witness it loads', async () => {
  const onEtcd = (margin: number) => agentYaml((d) => {
    d.cluster.quorum = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'] } };
    d.cluster.timings = { leaseMarginMs: margin };
  });
  const lines = await problemsOf(() => parseConfigText(onEtcd(20), 'agent', 'agent.yaml'), 'PGVIP_CONFIG_TIMING');
  lineAbout(lines, 'agent.yaml', 'cluster.timings.leaseMarginMs', 'on etcd', 'at least 24');
  const ok = parseConfigText(onEtcd(24), 'agent', 'agent.yaml');
  assert.deepEqual(quorumTimingsOf(ok.cluster.quorum), { backend: 'etcd', electionTimeoutMs: 1000 });
  const witness = parseConfigText(agentYaml((d) => (d.cluster.timings = { leaseMarginMs: 20 })), 'agent', 'agent.yaml');
  assert.deepEqual(quorumTimingsOf(witness.cluster.quorum), { backend: 'witness' });
  const slow = parseConfigText(agentYaml((d) => {
    d.cluster.quorum = { backend: 'etcd', etcd: { endpoints: ['http://127.0.0.1:2379'], electionTimeoutMs: 1500 } };
  }), 'agent', 'agent.yaml');
  assert.equal(timingWarnings(slow.cluster.timings, quorumTimingsOf(slow.cluster.quorum)).length, 1);
});

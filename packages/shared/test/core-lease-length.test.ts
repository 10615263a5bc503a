// Goal: a grantor never promises less than the lease its requester counts on. Nodes with different
// timings (a config mistake, or a change rolled out one node at a time) could otherwise leave a
// primary writing after the witness's and the standby's promises ended (I1). Both grantors refuse a
// lease, and the witness a vote (it doubles as the first lease of its term), from a node whose own
// timings give it a longer lease; equal or shorter is granted, and an older release that does not say
// is granted as before.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable, leaseLengthConflict,
  leaseValidMs, stepAgent, stepWitness,
  PROTOCOL_VERSION, type PeerReply, type PgSnapshot,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const ours = leaseValidMs(defaultTimings);
const longer = leaseValidMs({ ...defaultTimings, leaseMs: 2 * defaultTimings.leaseMs });
const leaseRequest = { ...env(3, 'db-a'), kind: 'lease-request' as const, seq: 7, lsn: 100n, timeline: 1, syncStandby: 'db-b' };
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: true, syncStandby: null, standbyInSync: false,
};

function reply(actions: readonly { kind: string }[]): PeerReply {
  const r = actions.find((a) => a.kind === 'reply') as { msg: PeerReply } | undefined;
  assert.ok(r, 'a reply');
  return r.msg;
}

test('leaseLengthConflict: longer is refused with the fix named; equal, shorter and unknown pass', () => {
  assert.match(leaseLengthConflict(defaultTimings, longer) ?? '', /valid for 4652 ms, longer than the 2276 ms this node's promise covers: give every node the same timings/);
  assert.equal(leaseLengthConflict(defaultTimings, ours), null);
  assert.equal(leaseLengthConflict(defaultTimings, ours - 500), null);
  assert.equal(leaseLengthConflict(defaultTimings, undefined), null);
});

describe('the witness as grantor', () => {
  const settings = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n };
  const w = bootWitness(settings, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);

  test('refuses a lease longer than its promise covers, and promises nothing', () => {
    const out = stepWitness(w, { kind: 'request', nowMs: 0, msg: leaseRequest, peerLeaseValidMs: longer });
    const r = reply(actionsOf(out));
    assert.ok(r.kind === 'lease-reply' && !r.granted);
    assert.match(r.kind === 'lease-reply' ? r.reason : '', /same timings/);
    assert.equal(out.state.promise?.seq === 7, false, 'no promise for that request');
  });

  test('grants an equal lease, and one from a sender that does not say', () => {
    for (const peerLeaseValidMs of [ours, undefined]) {
      const r = reply(actionsOf(stepWitness(w, { kind: 'request', nowMs: 0, msg: leaseRequest, peerLeaseValidMs })));
      assert.ok(r.kind === 'lease-reply' && r.granted, String(peerLeaseValidMs));
    }
  });

  test('refuses a vote to a candidate that would count a longer first lease', () => {
    const failed = { ...w, promise: null, releasedTerm: 3 };
    const vote = { ...env(4, 'db-b'), kind: 'vote-request' as const, lastTerm: 3, lsn: 100n, timeline: 1 };
    const refused = stepWitness(failed, { kind: 'request', nowMs: 0, msg: vote, peerLeaseValidMs: longer });
    const r = reply(actionsOf(refused));
    assert.ok(r.kind === 'vote-reply' && !r.granted);
    assert.equal(refused.state.durable.term, 3, 'nothing persisted');
    const granted = reply(actionsOf(stepWitness(failed, { kind: 'request', nowMs: 0, msg: vote, peerLeaseValidMs: ours })));
    assert.ok(granted.kind === 'vote-reply' && granted.granted);
  });
});

describe('the standby as grantor', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness', timings: defaultTimings });
  const s = { ...bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000), pg: standbyPg, promise: null };

  test('refuses a lease longer than its promise covers, grants an equal one', () => {
    const refused = stepAgent(s, { kind: 'request', nowMs: 0, msg: leaseRequest, peerLeaseValidMs: longer });
    const r = reply(actionsOf(refused));
    assert.ok(r.kind === 'lease-reply' && !r.granted);
    assert.equal(refused.state.promise, null, 'no promise');
    const granted = stepAgent(s, { kind: 'request', nowMs: 0, msg: leaseRequest, peerLeaseValidMs: ours });
    const g = reply(actionsOf(granted));
    assert.ok(g.kind === 'lease-reply' && g.granted);
    assert.notEqual(granted.state.promise, null);
  });
});

test('the primary says once why a grantor refuses its lease (not every heartbeat), and again after a grant', () => {
  const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings });
  const primaryPg: PgSnapshot = { running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false, syncStandby: 'db-b', standbyInSync: true };
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
  const reasons: string[] = [];
  const answer = (nowMs: number, granted: boolean) => {
    s = stepAgent(s, { kind: 'tick', nowMs, pg: primaryPg, writeProbe: 'ok', peer: null }).state;
    const seq = s.lease.sends.at(-1)!.seq;
    const reason = granted ? 'granted' : leaseLengthConflict(defaultTimings, longer)!;
    const out = stepAgent(s, { kind: 'reply', nowMs: nowMs + 5, msg: { ...env(3, 'witness'), kind: 'lease-reply', seq, granted, reason, maintenance: false, primaryOfTerm: 'db-a' } });
    s = out.state;
    reasons.push(out.reason);
  };
  answer(0, false);
  answer(500, false);
  answer(1000, true);
  answer(1500, false);
  const said = reasons.filter((r) => /witness refused the lease for term 3: .*same timings/.test(r));
  assert.equal(said.length, 2, reasons.join('\n'));
  assert.match(reasons[0]!, /witness refused the lease for term 3/);
  assert.doesNotMatch(reasons[1]!, /refused/);
});

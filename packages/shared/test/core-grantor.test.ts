// Goal: the standby and the witness grant leases by one set of rules (core/grantor.ts): the same
// request sequence gets the same answers from both, and a lease granted again in the same term
// after a release binds the standby as it binds the witness (before core/grantor.ts the standby
// kept the release, so it counted its fresh promise as void and could campaign, win the witness's
// vote and promote while the primary held a lease resting on the standby's own grant).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, PROTOCOL_VERSION, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, initialWitnessDurable,
  promiseLive,
  stepAgent, stepWitness,
  type AgentState, type PeerReply, type PeerRequest, type PgSnapshot, type WitnessState,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const leaseRequest = (term: number, from: string, seq: number): PeerRequest => ({ ...env(term, from), kind: 'lease-request', seq, lsn: 100n, timeline: 1, syncStandby: 'db-b' });
const release = (term: number, from: string, leaseSeq: number): PeerRequest => ({ ...env(term, from), kind: 'lease-release', leaseSeq, reason: 'postgresql failed' });
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: true, syncStandby: null, standbyInSync: false,
};

const agentSettings = defaultAgentSettings({ cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness', timings: defaultTimings, replication: 'async' });
const bootStandby = (): AgentState => bootAgent(agentSettings, { term: 3, primaryOfTerm: 'db-a' }, -100_000);
const bootW = (): WitnessState => bootWitness(
  { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'], timings: defaultTimings, replication: 'async', lagBytesMax: 1n << 30n },
  { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', votedTerm: 3, votedFor: 'db-a' },
  -100_000,
);

function replyOf(actions: readonly { kind: string }[]): PeerReply {
  const r = actions.find((a) => a.kind === 'reply') as { msg: PeerReply } | undefined;
  assert.ok(r, 'a reply');
  return r.msg;
}
const answer = (r: PeerReply) => (r.kind === 'lease-reply' ? `${r.granted ? 'granted' : 'refused'}: ${r.reason}` : `${r.kind}: ${r.kind === 'ack' ? r.reason : ''}`);

test('Given the same lease requests and releases, Then the standby and the witness answer alike', () => {
  const sequence: PeerRequest[] = [
    leaseRequest(2, 'db-a', 5), // stale term
    leaseRequest(4, 'db-a', 6), // a term no vote created
    leaseRequest(3, 'db-a', 7), // granted
    release(3, 'db-a', 6), // older than the grant: ignored
    release(3, 'db-a', 7), // released
    leaseRequest(3, 'db-a', 8), // granted again in the same term
  ];
  let a = bootStandby();
  let w = bootW();
  let now = 0;
  for (const msg of sequence) {
    now += 10;
    const oa = stepAgent(a, { kind: 'request', nowMs: now, msg, peerLeaseValidMs: undefined });
    const ow = stepWitness(w, { kind: 'request', nowMs: now, msg, peerLeaseValidMs: undefined });
    a = oa.state;
    w = ow.state;
    assert.equal(answer(replyOf(actionsOf(oa))), answer(replyOf(actionsOf(ow))), `${msg.kind} seq ${'seq' in msg ? msg.seq : msg.kind === 'lease-release' ? msg.leaseSeq : ''}`);
    assert.deepEqual({ promise: a.promise, releasedTerm: a.releasedTerm }, { promise: w.promise, releasedTerm: w.releasedTerm }, `${msg.kind} at ${now}`);
  }
  assert.equal(promiseLive(a), true, 'the standby is bound by the grant after the release');
  assert.equal(promiseLive(w), true, 'the witness is bound by the grant after the release');
});

test('Given the primary released and was granted the lease again in the same term, When the standby ticks, Then it does not campaign', () => {
  let a = bootStandby();
  a = stepAgent(a, { kind: 'request', nowMs: 0, msg: leaseRequest(3, 'db-a', 7), peerLeaseValidMs: undefined }).state;
  a = stepAgent(a, { kind: 'request', nowMs: 10, msg: release(3, 'db-a', 7), peerLeaseValidMs: undefined }).state;
  const regrant = stepAgent(a, { kind: 'request', nowMs: 20, msg: leaseRequest(3, 'db-a', 8), peerLeaseValidMs: undefined });
  assert.ok(replyOf(actionsOf(regrant)).kind === 'lease-reply' && (replyOf(actionsOf(regrant)) as { granted: boolean }).granted);
  const out = stepAgent(regrant.state, { kind: 'tick', nowMs: 30, pg: standbyPg, writeProbe: 'not-run', peer: null });
  const asks = actionsOf(out).filter((x) => x.kind === 'send' && x.msg.kind === 'vote-request');
  assert.deepEqual(asks, [], `the standby asked for a vote while its promise to db-a was live: ${out.reason}`);
});

// Goal (review-17 F9): a standby among three or more nodes asks etcd whether the primary's leader key
// is gone before it withdraws (stops its WAL receiver and every grant), and withdraws only on etcd's
// "gone". Unanswered, or while the key stands, it stays a standby that grants the primary's lease, so
// a short cut during an etcd outage cannot fence the primary until etcd is back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, NO_CLAIM, PROTOCOL_VERSION, quorumOf, stepAgent,
  type AgentInput, type AgentOutput, type AgentState, type NodeTraits, type PgSnapshot,
} from '../src/core/index.js';

const t = defaultTimings;
const three: NodeTraits[] = ['db-a', 'db-b', 'db-c'].map((id) => ({ id, priority: 0, noFailover: false }));
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 900n, replayLsn: 900n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream: 'db-a',
};
const tick = (nowMs: number): AgentInput => ({
  kind: 'tick', nowMs, pg: standbyPg, writeProbe: 'not-run', peer: null, peers: { 'db-a': null },
});
const questions = (out: AgentOutput) =>
  out.sends.filter((x) => x.to === ETCD_QUORUM_ID && x.msg.kind === 'vote-request' && x.msg.withdrawn === undefined);
const stops = (out: AgentOutput) => out.effects.filter((e) => e.effect.kind === 'stop-wal-receiver');
const answer = (nowMs: number, leaderKeyGone: boolean | undefined, reason: string): AgentInput => ({
  kind: 'reply', nowMs,
  msg: {
    v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: ETCD_QUORUM_ID, kind: 'vote-reply', granted: false, reason,
    primaryOfTerm: 'db-a', ...(leaderKeyGone === undefined ? {} : { leaderKeyGone }),
  },
});

/** db-b, a standby of db-a in term 3, after db-a failed its checks with db-b's promise gone. */
function failed(): { s: AgentState; asked: AgentOutput } {
  const settings = {
    ...defaultAgentSettings({ cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'w', quorum: quorumOf('etcd', 'w'), timings: t }),
    nodes: three,
  };
  let s: AgentState = {
    ...bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000), promise: null, lastStreamingAtMs: -100,
    primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: 0, syncClaim: { members: ['db-b', 'db-c'], k: 1 } },
  };
  for (let i = 0; i <= t.failureChecks; i++) {
    const out = stepAgent(s, tick(i * t.heartbeatMs));
    assert.equal(stops(out).length, 0, 'stopped its receiver before etcd answered');
    s = out.state;
    if (questions(out).length > 0) return { s, asked: out };
  }
  throw new Error('db-b never asked etcd');
}

const leaseRequest = (nowMs: number): AgentInput => ({
  kind: 'request', nowMs,
  msg: { v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: 'db-a', kind: 'lease-request', seq: 7, lsn: 1000n, timeline: 1, syncStandby: null },
});

test('three nodes: no answer from etcd, no withdrawal; the standby still grants the primary and asks again later', () => {
  const { s, asked } = failed();
  const at = s.nowMs;
  // etcd does not answer (out of reach): the primary's lease request is granted meanwhile.
  const granted = stepAgent(s, leaseRequest(at + 20));
  const reply = granted.replies.find((r) => r.msg.kind === 'lease-reply')?.msg;
  assert.ok(reply?.kind === 'lease-reply' && reply.granted, JSON.stringify(reply));
  assert.equal(granted.state.withdrawal, null);
  // Without the grant, the question goes out again once requestTimeoutMs has passed, not before.
  assert.equal(questions(stepAgent(s, tick(at + t.requestTimeoutMs / 2))).length, 0);
  assert.equal(questions(stepAgent(s, tick(at + Math.max(t.requestTimeoutMs, t.heartbeatMs / 2)))).length, 1);
  assert.equal(questions(asked).length, 1);
});

test('three nodes: "the leader key stands" or a refusal without the answer: no withdrawal', () => {
  for (const [gone, reason] of [[false, 'the leader key names db-a for term 3'], [undefined, 'etcd did not answer within 150 ms']] as const) {
    const { s } = failed();
    const out = stepAgent(s, answer(s.nowMs + 5, gone, reason));
    assert.equal(stops(out).length, 0, reason);
    assert.equal(out.state.withdrawal, null);
  }
});

test('three nodes: etcd says the leader key is gone: the standby withdraws in that step', () => {
  const { s } = failed();
  const out = stepAgent(s, answer(s.nowMs + 5, true, 'no leader key in term 3'));
  assert.equal(stops(out).length, 1, out.reason);
  assert.equal(out.state.withdrawal?.phase, 'stopping');
});

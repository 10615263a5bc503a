// Goal: the core's settings name the cluster's quorum (core/quorum.ts). On etcd, an agent sends its
// lease requests, vote requests and sync updates to ETCD_QUORUM_ID (a forced promotion still comes
// from the witness), and its reasons and notifications say "etcd", never "the witness"; the witness core on
// etcd only observes and grants, votes and agrees to nothing. On the witness the words stay as they were.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  actionsOf, bootAgent, bootWitness, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, initialWitnessDurable,
  quorumOf, stepAgent, stepWitness, witnessStepViolations, PROTOCOL_VERSION, type AgentState, type PgSnapshot,
  type Quorum,
} from '../src/core/index.js';

const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const pg: PgSnapshot = {
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 100n, replayLsn: 100n, streaming: false,
  syncStandby: 'db-b', standbyInSync: true,
};
const agent = (self: 'db-a' | 'db-b', quorum: Quorum, term: number, primary: string | null): AgentState => bootAgent(
  defaultAgentSettings({ cluster: 'c1', self, peer: self === 'db-a' ? 'db-b' : 'db-a', witness: 'witness', quorum, timings: defaultTimings }),
  { term, primaryOfTerm: primary }, -100_000,
);
const etcd = quorumOf('etcd', 'witness');

test('Given no quorum, Then the agent\'s quorum is the witness it names', () => {
  const s = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'w1', timings: defaultTimings });
  assert.deepEqual(s.quorum, { backend: 'witness', id: 'w1' });
  assert.deepEqual(etcd, { backend: 'etcd', id: ETCD_QUORUM_ID });
});

test('Given etcd, Then bootstrap and renewals go to etcd and the reasons name it', () => {
  const boot = stepAgent(agent('db-a', etcd, 0, null), { kind: 'tick', nowMs: 0, pg, writeProbe: 'ok', peer: null });
  assert.deepEqual(boot.sends.map((x) => [x.to, x.msg.kind]), [[ETCD_QUORUM_ID, 'vote-request']]);
  assert.match(boot.reason, /asking etcd for term 1/);
  const renew = stepAgent(agent('db-a', etcd, 3, 'db-a'), { kind: 'tick', nowMs: 0, pg, writeProbe: 'ok', peer: null });
  assert.deepEqual(renew.sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort(), ['db-b', ETCD_QUORUM_ID]);
  // The witness backend keeps its words.
  const onWitness = agent('db-a', quorumOf('witness', 'witness'), 0, null);
  const wBoot = stepAgent(onWitness, { kind: 'tick', nowMs: 0, pg, writeProbe: 'ok', peer: null });
  assert.match(wBoot.reason, /asking the witness for term 1/);
  assert.deepEqual(wBoot.sends.map((x) => x.to), ['witness']);
});

test('Given etcd, Then the standby\'s vote request goes to etcd and the notification names it', () => {
  let s = agent('db-b', etcd, 3, 'db-a');
  s = { ...s, promise: null, releasedTerm: 3 };
  const standbyPg: PgSnapshot = {
    ...pg, inRecovery: true, writable: false, streaming: true, syncStandby: null, standbyInSync: false,
  };
  s = { ...s, primaryReport: { term: 3, lsn: 100n, timeline: 1, syncStandby: 'db-b' } as AgentState['primaryReport'] };
  const out = stepAgent(s, { kind: 'tick', nowMs: 0, pg: standbyPg, writeProbe: 'not-run', peer: null });
  const vote = out.sends.find((x) => x.msg.kind === 'vote-request');
  assert.equal(vote?.to, ETCD_QUORUM_ID, out.reason);
  assert.ok(out.notifications.some((n) => n.event === 'vote-requested' && n.detail === 'asked etcd for term 4'));
});

test('Given etcd, Then a forced promotion is still taken from the witness only (it ran the forced txn first)', () => {
  const s = agent('db-b', etcd, 3, 'db-a');
  const msg = (from: string) => ({ ...env(4, from), kind: 'manual-promote' as const, acceptDataLoss: true as const, requestedBy: 'op' });
  const fromEtcd = stepAgent(s, { kind: 'request', nowMs: 0, msg: msg(ETCD_QUORUM_ID) });
  const nack = actionsOf(fromEtcd).find((a) => a.kind === 'reply');
  assert.ok(nack?.kind === 'reply' && nack.msg.kind === 'ack' && !nack.msg.accepted);
  assert.match(nack.msg.reason, /comes from the witness witness, not etcd/);
  assert.equal(fromEtcd.persist, null);
  const fromWitness = stepAgent(s, { kind: 'request', nowMs: 0, msg: msg('witness') });
  assert.deepEqual(fromWitness.persist, { term: 4, primaryOfTerm: 'db-b' });
});

test('Given etcd, Then the primary asks etcd to degrade sync, and says so', () => {
  let s = agent('db-a', etcd, 3, 'db-a');
  const lost: PgSnapshot = { ...pg, standbyInSync: false };
  s = { ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 100_000 } } };
  let out = stepAgent(s, { kind: 'tick', nowMs: 0, pg: lost, writeProbe: 'ok', peer: null });
  // The VIP's own steps (verify it is here) come first, one effect at a time; then sync.
  for (let t = 1; t < 20 && !out.sends.some((x) => x.msg.kind === 'sync-update'); t++) {
    const f = out.state.inFlight;
    out = f !== null
      ? stepAgent(out.state, { kind: 'effect-done', nowMs: t, result: { id: f.id, ok: true, detail: 'ok', vipPlacement: 'here' } })
      : stepAgent(out.state, { kind: 'tick', nowMs: t * defaultTimings.syncDegradeAfterMs / 4, pg: lost, writeProbe: 'ok', peer: null });
  }
  const update = out.sends.find((x) => x.msg.kind === 'sync-update');
  assert.equal(update?.to, ETCD_QUORUM_ID, out.reason);
  assert.match(out.reason, /asking etcd to degrade to async/);
  const granted = stepAgent(out.state, { kind: 'reply', nowMs: out.state.nowMs + 1, msg: { ...env(3, ETCD_QUORUM_ID), kind: 'sync-update-reply', granted: true, reason: 'ok' } });
  assert.ok(granted.notifications.some((n) => n.event === 'sync-degraded' && n.detail.includes('with etcd\'s agreement')), granted.reason);
});

test('Given etcd, Then the witness core grants no lease, no vote and no sync change, and the invariant says so if it did', () => {
  const settings = { cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: defaultTimings, replication: 'sync' as const, lagBytesMax: 1n, quorum: 'etcd' as const };
  let w = bootWitness(settings, { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' }, -100_000);
  w = { ...w, promise: null, releasedTerm: 3 };
  const requests = [
    { ...env(3, 'db-a'), kind: 'lease-request' as const, seq: 1, lsn: 1n, timeline: 1, syncStandby: 'db-b' },
    { ...env(4, 'db-b'), kind: 'vote-request' as const, lastTerm: 3, lsn: 100n, timeline: 1 },
    { ...env(3, 'db-a'), kind: 'sync-update' as const, standby: 'db-b', change: 'degrade' as const },
  ];
  for (const msg of requests) {
    const out = stepWitness(w, { kind: 'request', nowMs: 0, msg });
    assert.equal(out.persist, null);
    const r = out.replies[0]?.msg;
    assert.ok(r !== undefined && 'granted' in r && !r.granted && /etcd holds the quorum of c1; the witness only observes/.test(r.reason), msg.kind);
    assert.deepEqual(witnessStepViolations(w, out), []);
  }
  // The same vote on the witness backend is granted; on etcd the invariant flags it.
  const onWitness = stepWitness({ ...w, settings: { ...settings, quorum: 'witness' } }, { kind: 'request', nowMs: 0, msg: requests[1]! });
  assert.ok(onWitness.replies.some((r) => 'granted' in r.msg && r.msg.granted), onWitness.reason);
  assert.match(witnessStepViolations(w, onWitness).join(), /on etcd/);
});

test('Given etcd, Then a standby refusing a lease for a term it does not know says it learns terms from etcd', () => {
  const req = { ...env(9, 'db-a'), kind: 'lease-request' as const, seq: 1, lsn: 1n, timeline: 1, syncStandby: 'db-b' };
  const reason = (quorum: Quorum) => {
    const out = stepAgent(agent('db-b', quorum, 3, 'db-a'), { kind: 'request', nowMs: 0, msg: req });
    const r = out.replies[0]?.msg;
    assert.ok(r?.kind === 'lease-reply' && !r.granted);
    return r.reason;
  };
  assert.match(reason(etcd), /refused until this node learns the term from etcd or a primary/);
  assert.match(reason(quorumOf('witness', 'witness')), /learns the term from the witness or a primary/);
});

// Three database nodes on etcd, through stepAgent (docs/design.md, "More than one standby"): the
// lease on etcd's grant or every eligible standby's; withdrawal, the vote with the final position,
// resume and follow; the primary's quorum commit by syncPlan; switchover among N.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  agentStepViolations, bestSwitchoverTarget, bootAgent, defaultAgentSettings, defaultTimings, electionDecision,
  ETCD_QUORUM_ID, leaseValidMs, NO_CLAIM, promiseMs, quorumOf, resumeAfterMs, stepAgent, PROTOCOL_VERSION,
  type AgentInput, type AgentOutput, type AgentState, type AgentStatus, type CandidatePosition, type Effect,
  type NodeTraits,
  type PgSnapshot, type ReplicaState, type SyncClaim,
} from '../src/core/index.js';

const t = defaultTimings;
const etcd = ETCD_QUORUM_ID;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const trait = (id: string, extra: Partial<NodeTraits> = {}): NodeTraits =>
  ({ id, priority: 0, noFailover: false, ...extra });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

function agent(
  self: string, term: number, primary: string | null, nodes: readonly NodeTraits[] = three, extra = {},
): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self, peer: nodes.find((n) => n.id !== self)!.id, witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes,
    ...extra,
  };
  return bootAgent(settings, { term, primaryOfTerm: primary }, -100_000);
}

const replica = (node: string, streaming = true): ReplicaState => ({ node, flushLsn: 1000n, streaming, syncState: 'quorum' });
const primaryPg = (syncClaim: SyncClaim, replicas: readonly ReplicaState[]): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim, replicas, upstream: null,
});
const standbyPg = (lsn: bigint, upstream: string | null = 'db-a', streaming = true): PgSnapshot => ({
  running: true, inRecovery: true, writable: false, timeline: 1, lsn, replayLsn: lsn, streaming,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream,
});
const statusOf = (from: string, term: number, primaryOfTerm: string, pg: PgSnapshot, role: AgentStatus['role']): AgentStatus => ({
  ...env(term, from), primaryOfTerm, role, pg, leaseRemainingMs: role === 'primary' ? 2000 : 0, promotionBlocker: null, maintenance: false,
});

/**
 * Steps in order; returns the last output and every output. etcd answers a standby's question before
 * it withdraws (a vote request without a final position) at once: no leader key (review-17 F9).
 */
function run(s: AgentState, inputs: readonly AgentInput[]): { s: AgentState; outs: AgentOutput[] } {
  const outs: AgentOutput[] = [];
  const queue = [...inputs];
  for (let input = queue.shift(); input !== undefined; input = queue.shift()) {
    const out = stepAgent(s, input);
    assert.deepEqual(agentStepViolations(s, out), [], out.reason);
    outs.push(out);
    s = settleVip(out);
    const check = out.sends.find((x) => x.to === etcd && x.msg.kind === 'vote-request' && x.msg.withdrawn === undefined);
    if (check !== undefined && s.settings.nodes.length > 2) queue.unshift(keyGone(s.nowMs, check.msg.term));
  }
  return { s, outs };
}

/** etcd's answer to the question before withdrawing: the leader key of the term before `asked` is gone. */
function keyGone(nowMs: number, asked: number): AgentInput {
  return {
    kind: 'reply', nowMs,
    msg: {
      ...env(asked - 1, etcd), kind: 'vote-reply', granted: false, reason: `no leader key in term ${asked - 1}`,
      primaryOfTerm: 'db-a', leaderKeyGone: true,
    },
  };
}

const vipEffects = new Set(['verify-vip', 'move-vip-cloud', 'add-vip-local', 'drop-vip-local']);

/** The VIP's effects finish at once (EC2 routes the VIP to the primary of the term): the tests look past them. */
function settleVip(out: AgentOutput): AgentState {
  let s = out.state;
  let pending = out.effects.filter((e) => vipEffects.has(e.effect.kind));
  while (pending.length > 0) {
    const e = pending[0]!;
    const placement = s.durable.primaryOfTerm === s.settings.self ? 'here' : 'elsewhere';
    const next = stepAgent(s, { kind: 'effect-done', nowMs: s.nowMs, result: { id: e.id, ok: true, detail: 'ok', vipPlacement: placement } });
    s = next.state;
    pending = [...pending.slice(1), ...next.effects.filter((x) => vipEffects.has(x.effect.kind))];
  }
  return s;
}
const effectsOf = (outs: readonly AgentOutput[]): Effect[] =>
  outs.flatMap((o) => o.effects.map((e) => e.effect)).filter((e) => !vipEffects.has(e.kind));
const lastEffect = (out: AgentOutput) => out.effects.at(-1);
const done = (out: AgentOutput, ok = true, extra = {}): AgentInput => {
  const e = lastEffect(out);
  assert.ok(e !== undefined, `no effect started: ${out.reason}`);
  return { kind: 'effect-done', nowMs: out.state.nowMs, result: { id: e.id, ok, detail: ok ? 'ok' : 'failed', ...extra } };
};

// ---- the lease ------------------------------------------------------------------------------

function leaseReply(s: AgentState, from: string, granted: boolean, nowMs: number): AgentInput {
  const seq = s.lease.sends.at(-1)!.seq;
  return {
    kind: 'reply', nowMs,
    msg: { ...env(s.durable.term, from), kind: 'lease-reply', seq, granted, reason: granted ? 'granted' : 'no', primaryOfTerm: 'db-a', maintenance: false },
  };
}

test('three nodes: the lease holds on etcd\'s grant, or on every eligible standby\'s; one standby lost and etcd silent is no lease', () => {
  const pg = primaryPg({ members: ['db-b', 'db-c'], k: 1 }, [replica('db-b'), replica('db-c')]);
  const tick = (nowMs: number): AgentInput => ({ kind: 'tick', nowMs, pg, writeProbe: 'ok', peer: null, peers: {} });
  const first = run(agent('db-a', 3, 'db-a'), [tick(0)]);
  const outs = first.outs;
  let s = first.s;
  // Renewals go to etcd and to both eligible standbys.
  assert.deepEqual(outs[0]!.sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort(), ['db-b', 'db-c', etcd]);
  // etcd's first answer (refused here) names the term record's grantors: after a restart, standby
  // grants count only once they are known.
  s = run(s, [grantorsReply(s, false, 5, ['db-b', 'db-c'])]).s;
  // db-b grants, db-c is lost, etcd does not answer: with three nodes no lease (with two, db-b alone would do).
  s = run(s, [leaseReply(s, 'db-b', true, 10)]).s;
  assert.equal(s.lease.held, null);
  s = run(s, [leaseReply(s, 'db-c', true, 20)]).s;
  assert.equal(s.lease.held?.validUntilMs, leaseValidMs(t));
  // A later round: etcd alone renews it.
  s = run(s, [tick(500)]).s;
  s = run(s, [leaseReply(s, etcd, true, 510)]).s;
  assert.equal(s.lease.held?.validUntilMs, 500 + leaseValidMs(t));
  // A noFailover node is asked for nothing: the primary does not wait for it.
  const withReporting = agent('db-a', 3, 'db-a', [trait('db-a'), trait('db-b'), trait('db-c'), trait('db-r', { noFailover: true })]);
  const out = stepAgent(withReporting, tick(0));
  assert.deepEqual(out.sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort(), ['db-b', 'db-c', etcd]);
});

/** etcd's lease reply naming the term record's grantors. */
function grantorsReply(s: AgentState, granted: boolean, nowMs: number, grantorsOfTerm: readonly string[]): AgentInput {
  const r = leaseReply(s, etcd, granted, nowMs);
  return r.kind === 'reply' ? { ...r, msg: { ...r.msg, grantorsOfTerm } as typeof r.msg } : r;
}

test('three nodes: the lease counts the grants of the term record\'s grantors, not the config\'s (config skew)', () => {
  // The term record names db-b and db-c; db-a restarted with db-c marked noFailover (a rolling
  // change): its config alone would make db-b's grant the lease, although db-c may win an election.
  const skewed = [trait('db-a'), trait('db-b'), trait('db-c', { noFailover: true })];
  const pg = primaryPg({ members: ['db-b'], k: 1 }, [replica('db-b'), replica('db-c')]);
  const tick = (nowMs: number): AgentInput => ({ kind: 'tick', nowMs, pg, writeProbe: 'ok', peer: null, peers: {} });
  let s = run(agent('db-a', 3, 'db-a', skewed), [tick(0)]).s;
  // Before etcd answered in this term, no standby grant makes a lease.
  s = run(s, [leaseReply(s, 'db-b', true, 10)]).s;
  assert.equal(s.lease.held, null);
  // etcd names the record's grantors (and cannot grant): db-b's grant is not enough, db-c is asked too.
  s = run(s, [grantorsReply(s, false, 20, ['db-b', 'db-c'])]).s;
  s = run(s, [tick(500)]).s;
  assert.deepEqual(s.lease.held, null);
  const asked = stepAgent(s, tick(1000)).sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort();
  assert.deepEqual(asked, ['db-b', 'db-c', etcd]);
  s = run(s, [leaseReply(s, 'db-b', true, 510)]).s;
  assert.equal(s.lease.held, null, 'a lease on db-b alone while db-c, a grantor of the term, was never asked');
  s = run(s, [leaseReply(s, 'db-c', true, 520)]).s;
  assert.equal(s.lease.held?.validUntilMs, 500 + leaseValidMs(t));
  // etcd grants from a record that names no grantors: the config's eligible standbys count (db-b
  // alone here), also once etcd refuses later.
  let plain = run(agent('db-a', 3, 'db-a', skewed), [tick(0)]).s;
  plain = run(plain, [leaseReply(plain, etcd, true, 5)]).s;
  plain = run(plain, [tick(500)]).s;
  plain = run(plain, [leaseReply(plain, etcd, false, 505)]).s;
  plain = run(plain, [leaseReply(plain, 'db-b', true, 510)]).s;
  assert.equal(plain.lease.held?.validUntilMs, 500 + leaseValidMs(t));
});

// review-17b G1: the bridge's refusal when etcd cannot be read (members down: a fast "connection
// refused") carries no grantorsOfTerm. Read as "the record names none", it made the config's
// grantors count again exactly while etcd is out of reach, when the lease rests on standby grants.
test('three nodes: a refusal from an unreachable etcd keeps the term record\'s grantors (config skew)', () => {
  const skewed = [trait('db-a'), trait('db-b'), trait('db-c', { noFailover: true })];
  const pg = primaryPg({ members: ['db-b'], k: 1 }, [replica('db-b'), replica('db-c')]);
  const tick = (nowMs: number): AgentInput => ({ kind: 'tick', nowMs, pg, writeProbe: 'ok', peer: null, peers: {} });
  let s = run(agent('db-a', 3, 'db-a', skewed), [tick(0)]).s;
  // etcd grants once: the record's grantors are db-b and db-c.
  s = run(s, [grantorsReply(s, true, 10, ['db-b', 'db-c'])]).s;
  assert.deepEqual(s.lease.termGrantors?.nodes, ['db-b', 'db-c']);
  // etcd becomes unreachable: the bridge refuses with nothing read, hence no grantorsOfTerm.
  s = run(s, [tick(500)]).s;
  s = run(s, [leaseReply(s, etcd, false, 505)]).s;
  assert.deepEqual(s.lease.termGrantors?.nodes, ['db-b', 'db-c'], 'the term record\'s grantors were forgotten');
  // db-c, a grantor of the term although noFailover in this config, is still asked.
  const asked = stepAgent(s, tick(1000)).sends.filter((x) => x.msg.kind === 'lease-request').map((x) => x.to).sort();
  assert.deepEqual(asked, ['db-b', 'db-c', etcd]);
  s = run(s, [tick(1000)]).s;
  s = run(s, [leaseReply(s, 'db-b', true, 1010)]).s;
  // etcd's grant (sent at 0) and db-b's alone: the lease must not outlive etcd's grant.
  assert.equal(s.lease.held?.validUntilMs, leaseValidMs(t), 'the lease grew on db-b\'s grant alone');
  // After a restart with etcd unreachable from the start, no standby grant counts (nothing is known).
  let restarted = run(agent('db-a', 3, 'db-a', skewed), [tick(0)]).s;
  restarted = run(restarted, [leaseReply(restarted, etcd, false, 5)]).s;
  restarted = run(restarted, [leaseReply(restarted, 'db-b', true, 10)]).s;
  assert.equal(restarted.lease.held, null, 'a lease on the config\'s grantors before etcd read the record');
});

test('two nodes on etcd: any one grant is the lease, as before', () => {
  const two = [trait('db-a'), trait('db-b')];
  const pg = { ...primaryPg(NO_CLAIM, []), syncStandby: 'db-b', standbyInSync: true };
  let s = run(agent('db-a', 3, 'db-a', two), [{ kind: 'tick', nowMs: 0, pg, writeProbe: 'ok', peer: null }]).s;
  s = run(s, [leaseReply(s, 'db-b', true, 10)]).s;
  assert.equal(s.lease.held?.validUntilMs, leaseValidMs(t));
});

test('two nodes with degrade "block": the primary never asks to drop to async; with "async" it does', () => {
  const two = [trait('db-a'), trait('db-b')];
  const lost = { ...primaryPg(NO_CLAIM, []), syncStandby: 'db-b', standbyInSync: false };
  const asks = (degrade: 'async' | 'block') => {
    let s = agent('db-a', 3, 'db-a', two, { degrade });
    s = { ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } }, vip: { phase: 'held', checkedAtMs: 1e9, failures: 0, movedAtMs: -Infinity, moveTerm: 0 } };
    const { outs } = run(s, [0, t.syncDegradeAfterMs + 1].map((nowMs) => ({
      kind: 'tick' as const, nowMs, pg: lost, writeProbe: 'ok' as const, peer: null,
    })));
    return outs.flatMap((o) => o.sends).filter((x) => x.msg.kind === 'sync-update').length;
  };
  assert.equal(asks('async'), 1);
  assert.equal(asks('block'), 0);
});

// ---- withdrawal and the vote ---------------------------------------------------------------------

/** A standby of db-a in term 3 that saw db-a fail `failureChecks` times with its promise gone. */
function failedPrimary(
  self: string, lsn: bigint, nodes: readonly NodeTraits[] = three,
): { s: AgentState; outs: AgentOutput[] } {
  let s = agent(self, 3, 'db-a', nodes);
  s = { ...s, promise: null, primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: 0, syncClaim: { members: ['db-b', 'db-c'], k: 1 } } };
  const inputs: AgentInput[] = [];
  for (let i = 0; i < t.failureChecks + 1; i++) {
    inputs.push({ kind: 'tick', nowMs: i * 500, pg: standbyPg(lsn, 'db-a', i === 0), writeProbe: 'not-run', peer: null, peers: { 'db-a': null } });
  }
  return run(s, inputs);
}

function withdraw(self: string, lsn: bigint): { s: AgentState; vote: AgentOutput } {
  const { s, outs } = failedPrimary(self, lsn);
  const stopping = outs.find((o) => o.effects.some((e) => e.effect.kind === 'stop-wal-receiver'));
  assert.ok(stopping !== undefined, `${self} never withdrew: ${outs.map((o) => o.reason).join(' | ')}`);
  assert.equal(stopping.state.withdrawal?.phase, 'stopping');
  assert.equal(s.withdrawal?.phase, 'stopping');
  // The receiver stopped: the vote request with the final position leaves in the same step.
  const { s: after, outs: [vote] } = run(stopping.state, [done(stopping, true, { finalLsn: lsn })]);
  return { s: after, vote: vote! };
}

test('three nodes: a receiver stop that reports no final position publishes nothing (never a guess)', () => {
  const { outs } = failedPrimary('db-b', 900n);
  const stopping = outs.find((o) => o.effects.some((e) => e.effect.kind === 'stop-wal-receiver'));
  assert.ok(stopping !== undefined);
  const after = stepAgent(stopping.state, done(stopping, true));
  assert.equal(after.sends.filter((x) => x.msg.kind === 'vote-request').length, 0, after.reason);
  // Not withdrawn: at most the stop is tried again (which must report the position this time).
  assert.notEqual(after.state.withdrawal?.phase, 'withdrawn');
  assert.equal(after.state.receiverStopped, true);
});

test('three nodes: a standby whose primary failed withdraws, then asks etcd with its final position; it grants no lease', () => {
  const { s, vote } = withdraw('db-b', 900n);
  const ask = vote.sends.find((x) => x.msg.kind === 'vote-request');
  assert.ok(ask !== undefined && ask.msg.kind === 'vote-request', vote.reason);
  assert.equal(ask.to, etcd);
  assert.deepEqual(ask.msg.withdrawn, { flushLsn: 900n, timeline: 1, windowOpen: true, eligible: true });
  assert.equal(ask.msg.term, 4);
  // Denied: asked again at the next heartbeat (paced by half a heartbeat), not before.
  const denied = stepAgent(s, { kind: 'reply', nowMs: s.nowMs + 5, msg: { ...env(3, etcd), kind: 'vote-reply', granted: false, reason: 'waiting for db-c', primaryOfTerm: 'db-a' } });
  const soon = stepAgent(denied.state, { kind: 'tick', nowMs: s.nowMs + t.heartbeatMs / 4, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null } });
  assert.equal(soon.sends.length, 0);
  const again = stepAgent(soon.state, { kind: 'tick', nowMs: s.nowMs + t.heartbeatMs, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null } });
  assert.equal(again.sends.find((x) => x.msg.kind === 'vote-request')?.to, etcd, again.reason);
  // A withdrawn standby refuses the primary's lease.
  const req = { ...env(3, 'db-a'), kind: 'lease-request' as const, seq: 9, lsn: 1000n, timeline: 1, syncStandby: null };
  const refusal = stepAgent(again.state, { kind: 'request', nowMs: again.state.nowMs, msg: req });
  const reply = refusal.replies[0]?.msg;
  assert.ok(reply?.kind === 'lease-reply' && !reply.granted && /withdrawn/.test(reply.reason));
});

test('three nodes: a standby that sees its primary failed and another standby withdrawn grants no more', () => {
  // db-a is cut from etcd and from db-b (which withdrew) but still reaches db-c, fenced: db-c's grants
  // alone cannot give it a lease, and kept db-c's promise live so that it never withdrew.
  const fenced = { ...statusOf('db-a', 3, 'db-a', { ...primaryPg(NO_CLAIM, []), writable: false }, 'fenced'), leaseRemainingMs: 0 };
  const withdrawnB = { ...statusOf('db-b', 3, 'db-a', standbyPg(900n, null, false), 'candidate'), withdrawn: true };
  const ticks = (b: AgentStatus): AgentInput[] => [0, 1, 2, 3, 4].map((i) => ({
    kind: 'tick', nowMs: i * 500, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: fenced,
    peers: { 'db-a': fenced, 'db-b': b },
  }));
  const req = { ...env(3, 'db-a'), kind: 'lease-request' as const, seq: 9, lsn: 1000n, timeline: 1, syncStandby: null };
  const ask = (b: AgentStatus) => {
    // db-c's promise to db-a still runs (a grant made just before db-a was cut from etcd).
    const promised = { ...agent('db-c', 3, 'db-a'), promise: { term: 3, holder: 'db-a', untilMs: 1e9, seq: 8 } };
    const { s } = run(promised, ticks(b));
    assert.ok(s.peerFailedChecks >= t.failureChecks);
    const reply = stepAgent(s, { kind: 'request', nowMs: s.nowMs, msg: req }).replies[0]?.msg;
    assert.ok(reply?.kind === 'lease-reply');
    return reply;
  };
  const refused = ask(withdrawnB);
  assert.ok(!refused.granted && /another standby withdrew/.test(refused.reason), refused.reason);
  // Nobody withdrew: a fenced primary asking again is granted, as with two nodes.
  assert.equal(ask({ ...withdrawnB, withdrawn: false, role: 'standby' }).granted, true);
});

test('three nodes: a release is no reason to withdraw once the primary is seen healthy again', () => {
  // db-a released its lease (its PostgreSQL failed), then took it back through etcd: db-b, which
  // refused it while withdrawn, still holds the release.
  const healthy = statusOf('db-a', 3, 'db-a', primaryPg({ members: ['db-b', 'db-c'], k: 1 }, []), 'primary');
  let s = agent('db-b', 3, 'db-a');
  const report = { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: 0 };
  s = { ...s, promise: null, releasedTerm: 3, primaryReport: report };
  const tick = (nowMs: number, primary: AgentStatus | null): AgentInput => ({
    kind: 'tick', nowMs, pg: standbyPg(900n, 'db-a', true), writeProbe: 'not-run', peer: primary, peers: { 'db-a': primary },
  });
  const seen = run(s, [tick(0, healthy), tick(500, healthy)]);
  assert.equal(seen.s.withdrawal, null);
  assert.deepEqual(effectsOf(seen.outs), []);
  // Unseen, the release still counts: it withdraws.
  const unseen = run(s, [tick(0, null)]);
  assert.equal(unseen.s.withdrawal?.phase, 'stopping');
});

test('three nodes: the more advanced standby wins the election, the lagging one never does', () => {
  const b = withdraw('db-b', 900n).vote.sends.find((x) => x.msg.kind === 'vote-request')!.msg;
  const c = withdraw('db-c', 700n).vote.sends.find((x) => x.msg.kind === 'vote-request')!.msg;
  assert.ok(b.kind === 'vote-request' && c.kind === 'vote-request' && b.withdrawn && c.withdrawn);
  const positions: CandidatePosition[] = [b, c].map((m) => ({
    node: m.from, timeline: m.withdrawn!.timeline, flushLsn: m.withdrawn!.flushLsn,
    streamedRecently: true, primaryLsn: null,
  }));
  const rules = { mode: 'sync' as const, lagBytesMax: 0n, timeline: 1, record: { members: ['db-b', 'db-c'], k: 1 }, primaryOfTerm: 'db-a' };
  assert.equal(electionDecision('db-b', three, positions, rules, false).campaign, true);
  const lagging = electionDecision('db-c', three, positions, rules, false);
  assert.equal(lagging.campaign, false);
  // Before db-c published, db-b waits inside the window (db-c may hold what db-b lacks).
  assert.equal(electionDecision('db-b', three, positions.slice(0, 1), rules, true).campaign, false);
});

test('three nodes: a member outside the sync record never wins, however advanced', () => {
  const positions: CandidatePosition[] = [
    { node: 'db-b', timeline: 1, flushLsn: 700n, streamedRecently: true, primaryLsn: null },
    { node: 'db-c', timeline: 1, flushLsn: 900n, streamedRecently: true, primaryLsn: null },
  ];
  const rules = { mode: 'sync' as const, lagBytesMax: 0n, timeline: 1, record: { members: ['db-b'], k: 1 }, primaryOfTerm: 'db-a' };
  assert.equal(electionDecision('db-c', three, positions, rules, false).campaign, false);
  assert.equal(electionDecision('db-b', three, positions, rules, false).campaign, true);
});

test('three nodes: a noFailover standby never withdraws nor asks for a vote', () => {
  const nodes = [trait('db-a'), trait('db-b'), trait('db-c', { noFailover: true })];
  const { outs } = failedPrimary('db-c', 900n, nodes);
  const later = run(outs.at(-1)!.state, [1, 2, 3, 4].map((i) => ({
    kind: 'tick' as const, nowMs: 5000 + i * 500, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run' as const, peer: null, peers: { 'db-a': null },
  }))).outs;
  const all = [...outs, ...later];
  assert.deepEqual(effectsOf(all), []);
  assert.equal(all.flatMap((o) => o.sends).filter((x) => x.msg.kind === 'vote-request').length, 0);
});

test('three nodes: the winner promotes without stopping its receiver again', () => {
  const { s } = withdraw('db-b', 900n);
  const won = stepAgent(s, { kind: 'reply', nowMs: s.nowMs + 5, msg: { ...env(4, etcd), kind: 'vote-reply', granted: true, reason: 'elected', primaryOfTerm: 'db-b' } });
  assert.equal(won.state.durable.primaryOfTerm, 'db-b');
  const next = stepAgent(won.state, { kind: 'tick', nowMs: s.nowMs + 10, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null } });
  const first = effectsOf([won, next]).find((e) => e.kind !== 'move-vip-cloud' && e.kind !== 'drop-vip-local' && e.kind !== 'verify-vip');
  assert.deepEqual(first, { kind: 'set-sync', claim: NO_CLAIM }, next.reason);
});

test('three nodes: a withdrawn standby that sees the primary healthy takes back its position, then resumes', () => {
  const { s } = withdraw('db-b', 900n);
  const healthy = statusOf('db-a', 3, 'db-a', primaryPg({ members: ['db-b', 'db-c'], k: 1 }, []), 'primary');
  const denied = stepAgent(s, { kind: 'reply', nowMs: s.nowMs + 5, msg: { ...env(3, etcd), kind: 'vote-reply', granted: false, reason: 'leader key present', primaryOfTerm: 'db-a' } });
  const seen = stepAgent(denied.state, { kind: 'tick', nowMs: s.nowMs + 500, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: healthy, peers: { 'db-a': healthy } });
  assert.deepEqual(seen.sends.map((x) => [x.to, x.msg.kind]), [[etcd, 'position-clear']], seen.reason);
  assert.deepEqual(effectsOf([seen]), []);
  const ack = stepAgent(seen.state, { kind: 'reply', nowMs: s.nowMs + 510, msg: { ...env(3, etcd), kind: 'ack', accepted: true, reason: 'cleared' } });
  assert.deepEqual(effectsOf([ack]), [{ kind: 'resume-wal-receiver', primary: 'db-a' }]);
  // A failed resume is tried again; one finished ends the withdrawal.
  const failed = stepAgent(ack.state, done(ack, false));
  assert.deepEqual(effectsOf([failed]), [{ kind: 'resume-wal-receiver', primary: 'db-a' }], failed.reason);
  const back = stepAgent(failed.state, done(failed));
  assert.equal(back.state.withdrawal, null);
  assert.equal(back.state.receiverStopped, false);
  // Accepted while another effect runs: the receiver resumes once that one is done.
  const busy = { id: 77, kind: 'verify-vip' as const, effect: { kind: 'verify-vip' as const }, startedAtMs: 0 };
  const later = stepAgent({ ...seen.state, inFlight: busy }, {
    kind: 'reply', nowMs: s.nowMs + 510, msg: { ...env(3, etcd), kind: 'ack', accepted: true, reason: 'cleared' },
  });
  assert.deepEqual(effectsOf([later]), []);
  const free = stepAgent(later.state, {
    kind: 'effect-done', nowMs: s.nowMs + 520, result: { id: 77, ok: true, detail: 'ok', vipPlacement: 'elsewhere' },
  });
  assert.deepEqual(effectsOf([free]), [{ kind: 'resume-wal-receiver', primary: 'db-a' }], free.reason);
  // Refused (the term moved): still withdrawn, no receiver restarted.
  const refused = stepAgent(seen.state, { kind: 'reply', nowMs: s.nowMs + 510, msg: { ...env(3, etcd), kind: 'ack', accepted: false, reason: 'term moved' } });
  assert.equal(refused.state.withdrawal?.phase, 'withdrawn');
  assert.deepEqual(effectsOf([refused]), []);
});

test('three nodes: a withdrawal\'s stop that ends after a new term leaves the receiver to follow the new primary', () => {
  const { outs } = failedPrimary('db-b', 900n);
  const stopping = outs.find((o) => o.effects.some((e) => e.effect.kind === 'stop-wal-receiver'))!;
  const winner = statusOf('db-c', 4, 'db-c', primaryPg(NO_CLAIM, []), 'primary');
  const learned = stepAgent(stopping.state, {
    kind: 'tick', nowMs: stopping.state.nowMs + 10, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null,
    peers: { 'db-a': null, 'db-c': winner },
  });
  assert.equal(learned.state.durable.term, 4);
  assert.equal(learned.state.withdrawal, null);
  const stopped = stepAgent(learned.state, done(stopping, true, { finalLsn: 900n }));
  assert.equal(stopped.state.receiverStopped, true);
  assert.equal(stopped.state.promotion.next, 'stop-receiver', 'a later promotion still stops the receiver first');
});

test('three nodes: the standby that lost the election does not withdraw against the new primary', () => {
  const { s } = withdraw('db-c', 700n);
  assert.ok(s.peerFailedChecks >= t.failureChecks);
  // db-b won term 4 and is promoting: db-c learns it from db-b's status.
  const winner = statusOf('db-b', 4, 'db-b', { ...standbyPg(900n, null, false), upstream: null }, 'promoting');
  const learned = run(s, [{
    kind: 'tick', nowMs: s.nowMs + 500, pg: standbyPg(700n, null, false), writeProbe: 'not-run', peer: null,
    peers: { 'db-a': null, 'db-b': winner },
  }]);
  assert.equal(learned.s.durable.term, 4);
  assert.equal(learned.s.withdrawal, null);
  assert.equal(learned.s.peerFailedChecks, 0);
  assert.deepEqual(effectsOf(learned.outs), []);
});

test('three nodes: a withdrawn standby resumes after resumeAfterMs while the primary\'s agent claims the term; not while it is unseen', () => {
  const { s } = withdraw('db-b', 900n);
  const fenced = { ...statusOf('db-a', 3, 'db-a', { ...primaryPg(NO_CLAIM, []), writable: false }, 'fenced'), leaseRemainingMs: 0 };
  const at = (nowMs: number, primary: AgentStatus | null): AgentInput => ({
    kind: 'tick', nowMs, pg: standbyPg(900n, null, false), writeProbe: 'not-run', peer: primary, peers: { 'db-a': primary },
  });
  const late = s.withdrawal!.sinceMs + resumeAfterMs(s);
  const early = stepAgent(s, at(late - 600, fenced));
  assert.equal(early.sends.some((x) => x.msg.kind === 'position-clear'), false);
  const claimed = stepAgent(s, at(late + 1, fenced));
  assert.deepEqual(claimed.sends.map((x) => x.msg.kind), ['position-clear'], claimed.reason);
  const unseen = stepAgent(s, at(late + 10 * t.heartbeatMs, null));
  assert.equal(unseen.sends.some((x) => x.msg.kind === 'position-clear'), false, 'an unseen primary keeps it withdrawn');
});

test('three nodes: a standby streaming from another node follows the term\'s primary; a refused timeline rewinds', () => {
  // Term 4 learned while running (a restart would first take back any position: the next test).
  const s = { ...agent('db-c', 4, 'db-b'), positionClearTerm: 4 };
  const newPrimary = statusOf('db-b', 4, 'db-b', primaryPg(NO_CLAIM, []), 'primary');
  const tick = (nowMs: number): AgentInput => ({
    kind: 'tick', nowMs, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-b': newPrimary },
  });
  const { s: ready } = run(s, [tick(0)]);
  assert.deepEqual(ready.inFlight?.effect, { kind: 'follow', primary: 'db-b' });
  const refused = stepAgent(ready, {
    kind: 'effect-done', nowMs: 10, result: { id: ready.inFlight!.id, ok: false, detail: 'diverged: timeline 2 forked at 0/300' },
  });
  const rewind = refused.state.inFlight === null ? stepAgent(refused.state, tick(500)).state : refused.state;
  assert.deepEqual(rewind.inFlight?.effect, { kind: 'rejoin', primary: 'db-b' });
  // Another failure is retried as a follow, after a pause.
  const failed = stepAgent(ready, { kind: 'effect-done', nowMs: 10, result: { id: ready.inFlight!.id, ok: false, detail: 'timeout' } });
  assert.equal(failed.state.inFlight, null);
  assert.deepEqual(stepAgent(failed.state, tick(10 + 2 * t.heartbeatMs)).state.inFlight?.effect, { kind: 'follow', primary: 'db-b' });
  // Already streaming from the term's primary: nothing to do.
  const settled = run(s, [{ ...tick(0), pg: standbyPg(900n, 'db-b') } as AgentInput, { ...tick(500), pg: standbyPg(900n, 'db-b') } as AgentInput]);
  assert.equal(settled.s.inFlight, null);
  assert.deepEqual(effectsOf(settled.outs), []);
});

test('three nodes: a follow that failed with primary_conninfo already naming the primary is tried again', () => {
  // db-c re-pointed at db-b, which crashed before db-c streamed: the snapshot then shows upstream
  // db-b but no stream (sim seed 1313 with three nodes). Once db-b is back, db-c follows again.
  const s = { ...agent('db-c', 4, 'db-b'), positionClearTerm: 4 };
  const newPrimary = statusOf('db-b', 4, 'db-b', primaryPg(NO_CLAIM, []), 'primary');
  const tick = (nowMs: number, upstream: string, streaming: boolean): AgentInput => ({
    kind: 'tick', nowMs, pg: standbyPg(900n, upstream, streaming), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-b': newPrimary },
  });
  const { s: ready } = run(s, [tick(0, 'db-a', false)]);
  assert.deepEqual(ready.inFlight?.effect, { kind: 'follow', primary: 'db-b' });
  const failed = stepAgent(ready, {
    kind: 'effect-done', nowMs: 10, result: { id: ready.inFlight!.id, ok: false, detail: 'primary_conninfo names db-b, not streaming from it yet' },
  }).state;
  const again = stepAgent(failed, tick(10 + 2 * t.heartbeatMs, 'db-b', false)).state;
  assert.deepEqual(again.inFlight?.effect, { kind: 'follow', primary: 'db-b' });
  // Streaming from it (the receiver reconnected by itself): nothing to do.
  const streaming = stepAgent(failed, tick(10 + 2 * t.heartbeatMs, 'db-b', true)).state;
  assert.equal(streaming.inFlight, null);
});

test('three nodes: a restarted standby that may have left its position published takes it back before streaming', () => {
  // Restarted in term 3 with its receiver stopped by a withdrawal before (primary_conninfo empty).
  const s = agent('db-c', 3, 'db-a');
  const healthy = statusOf('db-a', 3, 'db-a', primaryPg({ members: ['db-b', 'db-c'], k: 1 }, []), 'primary');
  const tick = (nowMs: number): AgentInput => ({
    kind: 'tick', nowMs, pg: standbyPg(900n, null, false), writeProbe: 'not-run', peer: healthy, peers: { 'db-a': healthy, 'db-b': null },
  });
  const { s: asked, outs } = run(s, [tick(0), tick(500)]);
  const clears = outs.flatMap((o) => o.sends).filter((x) => x.msg.kind === 'position-clear');
  assert.equal(clears.length + (asked.positionClearSentAtMs === null ? 0 : 1) > 0, true);
  assert.equal(asked.inFlight, null, 'no follow before the position is taken back');
  const ack = stepAgent(asked, { kind: 'reply', nowMs: 600, msg: { ...env(3, etcd), kind: 'ack', accepted: true, reason: 'cleared' } });
  assert.equal(ack.state.positionClearTerm, 3);
  assert.deepEqual(ack.state.inFlight?.effect, { kind: 'follow', primary: 'db-a' });
});

// ---- quorum commit ---------------------------------------------------------------------------------

/** The primary db-a of a new term 3 with its setting and replicas; runs the plan to its end. */
function planSteps(
  start: { setting: SyncClaim; record: SyncClaim | null }, replicas: readonly ReplicaState[], startMs: number,
  extra = {},
): { kinds: string[]; s: AgentState } {
  let s = agent('db-a', 3, 'db-a', three, extra);
  s = {
    ...s,
    lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } },
    vip: { phase: 'held', checkedAtMs: startMs, failures: 0, movedAtMs: -Infinity, moveTerm: 0 },
    claimSync: { ...s.claimSync, record: start.record, seenAtMs: { 'db-b': 0, 'db-c': 0 } },
  };
  let setting = start.setting;
  const kinds: string[] = [];
  let nowMs = startMs;
  let out = stepAgent(s, { kind: 'tick', nowMs, pg: primaryPg(setting, replicas), writeProbe: 'ok', peer: null, peers: {} });
  for (let i = 0; i < 12; i++) {
    s = settleVip(out);
    nowMs += 1;
    const record = out.sends.find((x) => x.msg.kind === 'sync-update');
    const effect = out.effects.find((e) => e.effect.kind === 'set-sync' || e.effect.kind === 'sync-catch-up');
    if (record !== undefined && record.msg.kind === 'sync-update' && record.msg.change === 'record') {
      kinds.push(`record ${record.msg.claim.k}:${record.msg.claim.members.join(',')}`);
      out = stepAgent(s, { kind: 'reply', nowMs, msg: { ...env(3, etcd), kind: 'sync-update-reply', granted: true, reason: 'ok' } });
    } else if (effect !== undefined) {
      const e = effect.effect;
      if (e.kind === 'set-sync') {
        kinds.push(`set-sync ${e.claim.k}:${e.claim.members.join(',')}`);
        setting = e.claim;
      } else if (e.kind === 'sync-catch-up') {
        kinds.push(`catch-up ${e.count}:${e.members.join(',')}`);
      }
      out = stepAgent(s, { kind: 'effect-done', nowMs, result: { id: effect.id, ok: true, detail: 'ok' } });
    } else if (out.reason !== 'idle') {
      // Nothing of the plan in this output: one more tick, which must find nothing to do either.
      out = { ...stepAgent(s, { kind: 'tick', nowMs, pg: primaryPg(setting, replicas), writeProbe: 'ok', peer: null, peers: {} }) };
      if (!out.sends.some((x) => x.msg.kind === 'sync-update') && !out.effects.some((e) => e.effect.kind === 'set-sync' || e.effect.kind === 'sync-catch-up')) {
        assert.equal(out.state.inFlight?.kind ?? null, null, `stopped with ${out.state.inFlight?.kind} in flight`);
        return { kinds, s: out.state };
      }
    }
  }
  return { kinds, s };
}

test('quorum commit: a new term turns sync on setting first, catch-up, then the record', () => {
  const { kinds } = planSteps({ setting: NO_CLAIM, record: NO_CLAIM }, [replica('db-b'), replica('db-c')], 0);
  assert.deepEqual(kinds, ['set-sync 1:db-b,db-c', 'catch-up 1:db-b,db-c', 'record 1:db-b,db-c']);
});

test('quorum commit: a member lost for syncDegradeAfterMs is removed setting first, catch-up, record', () => {
  const abc = { members: ['db-b', 'db-c'], k: 1 };
  const before = planSteps({ setting: abc, record: abc }, [replica('db-b'), replica('db-c', false)], t.syncDegradeAfterMs - 100);
  assert.deepEqual(before.kinds, []);
  const { kinds } = planSteps({ setting: abc, record: abc }, [replica('db-b'), replica('db-c', false)], t.syncDegradeAfterMs + 1);
  assert.deepEqual(kinds, ['set-sync 1:db-b', 'catch-up 1:db-b', 'record 1:db-b']);
});

test('quorum commit: a member back is added record first, then the setting', () => {
  const b = { members: ['db-b'], k: 1 };
  const { kinds } = planSteps({ setting: b, record: b }, [replica('db-b'), replica('db-c')], 0);
  assert.deepEqual(kinds, ['record 1:db-b,db-c', 'set-sync 1:db-b,db-c']);
});

test('quorum commit: every standby lost degrades record first, then the setting; "block" never does', () => {
  const b = { members: ['db-b'], k: 1 };
  const lost = [replica('db-b', false), replica('db-c', false)];
  assert.deepEqual(planSteps({ setting: b, record: b }, lost, t.syncDegradeAfterMs + 1).kinds, ['record 0:', 'set-sync 0:']);
  assert.deepEqual(planSteps({ setting: b, record: b }, lost, t.syncDegradeAfterMs + 1, { degrade: 'block' }).kinds, []);
  // Restored: the setting, the catch-up, then the record.
  assert.deepEqual(
    planSteps({ setting: NO_CLAIM, record: NO_CLAIM }, [replica('db-b'), replica('db-c', false)], 0).kinds,
    ['set-sync 1:db-b', 'catch-up 1:db-b', 'record 1:db-b'],
  );
});

test('quorum commit: ANY 2 with one standby lost lowers k record first; "block" keeps k and the lost member', () => {
  const both2 = { members: ['db-b', 'db-c'], k: 2 };
  const oneLost = [replica('db-b'), replica('db-c', false)];
  assert.deepEqual(
    planSteps({ setting: both2, record: both2 }, oneLost, t.syncDegradeAfterMs + 1, { synchronousCount: 2 }).kinds,
    ['record 1:db-b,db-c', 'set-sync 1:db-b', 'catch-up 1:db-b', 'record 1:db-b'],
  );
  assert.deepEqual(
    planSteps({ setting: both2, record: both2 }, oneLost, t.syncDegradeAfterMs + 1, { synchronousCount: 2, degrade: 'block' }).kinds,
    [],
  );
});

test('quorum commit: a standby seen streaming while the primary was busy is not dropped early', () => {
  const abc = { members: ['db-b', 'db-c'], k: 1 };
  let s = agent('db-a', 3, 'db-a');
  const catchUp = { kind: 'sync-catch-up' as const, members: ['db-b', 'db-c'], count: 1, timeoutMs: 5000 };
  const busy = { id: 99, kind: catchUp.kind, effect: catchUp, startedAtMs: 0 };
  s = {
    ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } }, inFlight: busy,
    vip: { phase: 'held', checkedAtMs: 2 * t.syncDegradeAfterMs, failures: 0, movedAtMs: -Infinity, moveTerm: 0 },
    claimSync: { ...s.claimSync, record: abc, seenAtMs: { 'db-b': 0, 'db-c': 0 } },
  };
  const at = (nowMs: number, cStreams: boolean): AgentInput => ({
    kind: 'tick', nowMs, pg: primaryPg(abc, [replica('db-b'), replica('db-c', cStreams)]), writeProbe: 'ok', peer: null, peers: {},
  });
  // db-c streams until late in syncDegradeAfterMs, then stops, all while the primary is busy.
  s = stepAgent(s, at(t.syncDegradeAfterMs - 100, true)).state;
  s = stepAgent(s, at(t.syncDegradeAfterMs + 100, false)).state;
  const out = stepAgent(s, {
    kind: 'effect-done', nowMs: t.syncDegradeAfterMs + 200, result: { id: 99, ok: true, detail: 'ok' },
  });
  assert.deepEqual(out.effects.map((e) => e.effect.kind).filter((k) => k === 'set-sync'), [], out.reason);
  // Once syncDegradeAfterMs has passed since it was last seen, it goes.
  const later = stepAgent(out.state, at(2 * t.syncDegradeAfterMs, false));
  assert.deepEqual(later.effects.map((e) => e.effect), [{ kind: 'set-sync', claim: { members: ['db-b'], k: 1 } }], later.reason);
});

test('quorum commit: after an agent restart the record is unknown: catch-up under the setting, then record it', () => {
  const abc = { members: ['db-b', 'db-c'], k: 1 };
  const { kinds } = planSteps({ setting: abc, record: null }, [replica('db-b'), replica('db-c')], 0);
  assert.deepEqual(kinds, ['catch-up 1:db-b,db-c', 'record 1:db-b,db-c']);
});

// ---- switchover --------------------------------------------------------------------------------

test('three nodes: a switchover to a named node is taken; to a noFailover node refused; the best is the most advanced', () => {
  const nodes = [trait('db-a'), trait('db-b'), trait('db-c'), trait('db-r', { noFailover: true })];
  let s = agent('db-a', 3, 'db-a', nodes);
  const pg = primaryPg({ members: ['db-b', 'db-c'], k: 1 }, [replica('db-b'), replica('db-c'), replica('db-r')]);
  const sb = (id: string) => statusOf(id, 3, 'db-a', standbyPg(1000n), 'standby');
  s = { ...s, pg, lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } }, peers: { 'db-b': sb('db-b'), 'db-c': sb('db-c'), 'db-r': sb('db-r') } };
  const ask = (to: string) => stepAgent(s, { kind: 'request', nowMs: 0, msg: { ...env(3, 'witness'), kind: 'switchover-request', to } });
  const toR = ask('db-r').replies[0]?.msg;
  assert.ok(toR?.kind === 'ack' && !toR.accepted && /noFailover/.test(toR.reason), JSON.stringify(toR));
  const toC = ask('db-c');
  assert.ok(toC.replies[0]?.msg.kind === 'ack' && toC.replies[0].msg.accepted, toC.reason);
  assert.equal(toC.state.switchover?.to, 'db-c');
  const live = (node: string, lsn: bigint) => ({ node, term: 3, streaming: true, timeline: 1, lsn });
  assert.equal(bestSwitchoverTarget(nodes, 'db-a', 3, [live('db-b', 900n), live('db-c', 950n), live('db-r', 990n)]), 'db-c');
  const prio = [trait('db-a'), trait('db-b', { priority: 5 }), trait('db-c')];
  assert.equal(bestSwitchoverTarget(prio, 'db-a', 3, [live('db-b', 950n), live('db-c', 950n)]), 'db-b');
});

test('three nodes: the status says withdrawn and syncMember; two nodes leave both out', () => {
  const { s } = withdraw('db-b', 900n);
  assert.equal(promiseMs(t) > 0, true);
  const status = stepAgent(s, { kind: 'wake', nowMs: s.nowMs, pausedMs: 0 }).state;
  // agentStatus is the served body.
  return import('../src/core/index.js').then(({ agentStatus }) => {
    const st = agentStatus(status);
    assert.equal(st.withdrawn, true);
    assert.equal(st.syncMember, true);
    assert.equal(st.role, 'candidate');
  });
});

test('three nodes: a switchover fences by a clean stop whatever fencing says, waits out the stopped server, and hands over at the stop\'s final LSN', () => {
  let s = agent('db-a', 3, 'db-a', three, { fencing: 'read-only' });
  const pg = primaryPg({ members: ['db-b', 'db-c'], k: 1 }, [replica('db-b'), replica('db-c')]);
  const sb = (id: string, lsn: bigint) => statusOf(id, 3, 'db-a', standbyPg(lsn), 'standby');
  s = { ...s, pg, lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } }, peers: { 'db-b': sb('db-b', 1000n), 'db-c': sb('db-c', 1000n) } };
  const asked = stepAgent(s, { kind: 'request', nowMs: 0, msg: { ...env(3, 'witness'), kind: 'switchover-request', to: 'db-b' } });
  assert.ok(asked.replies[0]?.msg.kind === 'ack' && asked.replies[0].msg.accepted, `${asked.reason} ${JSON.stringify(asked.replies[0]?.msg)}`);
  assert.deepEqual(asked.fence?.effect, { kind: 'fence', mode: 'fast-stop' });
  // The stop reports where the shutdown checkpoint ends: that, not the last observed LSN, is final.
  const fenceDone = (ok: boolean, extra = {}): AgentInput =>
    ({ kind: 'effect-done', nowMs: 0, result: { id: asked.fence!.id, ok, detail: 'fenced', ...extra } });
  const fenced = stepAgent(asked.state, fenceDone(true, { finalLsn: 1120n }));
  assert.equal(fenced.state.switchover?.step, 'catching-up');
  assert.ok(fenced.state.switchover?.step === 'catching-up' && fenced.state.switchover.finalLsn === 1120n);
  // The stopped server and its failed write probe are the switchover's own doing: no lease release.
  const stopped: PgSnapshot = { ...pg, running: false, writable: false, replicas: [] };
  const tick = (nowMs: number, bLsn: bigint): AgentInput =>
    ({ kind: 'tick', nowMs, pg: stopped, writeProbe: 'failed', peer: null, peers: { 'db-b': sb('db-b', bLsn), 'db-c': sb('db-c', bLsn) } });
  const waiting = run(fenced.state, [tick(500, 1000n), tick(1000, 1000n)]);
  assert.deepEqual(waiting.outs.flatMap((o) => o.sends.filter((x) => x.msg.kind === 'lease-release')), []);
  assert.equal(waiting.s.lease.release.phase, 'none');
  assert.equal(waiting.s.switchover?.step, 'catching-up');
  // db-b replayed the shutdown checkpoint: the handover is recorded first.
  const caught = stepAgent(waiting.s, tick(1500, 1120n));
  assert.deepEqual(caught.effects.map((e) => e.effect.kind).filter((k) => !vipEffects.has(k)), ['quorum-handover']);
  // A stop that cannot say where its WAL ends (escalated to immediate) aborts the switchover.
  const unknown = stepAgent(asked.state, fenceDone(true));
  assert.equal(unknown.state.switchover, null);
  assert.match(unknown.reason, /last WAL position is not known/);
});

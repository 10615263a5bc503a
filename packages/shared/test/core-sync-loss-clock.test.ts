// Goal: losing the synchronous standby blocks writes for syncDegradeAfterMs counted from the loss, not
// from its detection (docs/design.md, "Terms, leases, votes"). The shell counts a standby lost only
// once it has been silent for 3 s (pg-snapshot.ts) and tells the tick, beside that, how long ago it
// last replied (`replyAgeMs`); the degrade clock starts at that last reply. The quorum must still
// agree before commits stop waiting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  agentStepViolations, bootAgent, defaultAgentSettings, defaultTimings, quorumOf, stepAgent,
  timingViolations, PROTOCOL_VERSION, type AgentInput, type AgentOutput, type AgentState, type NodeTraits,
  type PgSnapshot, type ReplicaState, type SyncClaim,
} from '../src/core/index.js';

const t = defaultTimings;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const vipEffects = new Set(['verify-vip', 'move-vip-cloud', 'add-vip-local', 'drop-vip-local']);

/** Steps one input, then finishes the VIP's effects at once (the VIP is here): the tests look past them. */
function step(s: AgentState, input: AgentInput): AgentOutput {
  let out = stepAgent(s, input);
  assert.deepEqual(agentStepViolations(s, out), [], out.reason);
  const sends = [...out.sends];
  const effects = [...out.effects];
  let pending = out.effects.filter((e) => vipEffects.has(e.effect.kind));
  while (pending.length > 0) {
    const e = pending[0]!;
    out = stepAgent(out.state, { kind: 'effect-done', nowMs: out.state.nowMs, result: { id: e.id, ok: true, detail: 'ok', vipPlacement: 'here' } });
    sends.push(...out.sends);
    effects.push(...out.effects);
    pending = [...pending.slice(1), ...out.effects.filter((x) => vipEffects.has(x.effect.kind))];
  }
  return { ...out, sends, effects };
}

// ---- two nodes (sync.ts) -----------------------------------------------------------------------

const twoNodePrimary = (): AgentState => {
  const s = bootAgent(
    defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: t }),
    { term: 3, primaryOfTerm: 'db-a' }, -100_000,
  );
  const lease = { ...s.lease, held: { term: 3, validUntilMs: 1e12 } };
  return { ...s, lease, sync: { ...s.sync, confirmedAtWitness: true } };
};
const pg = (standbyInSync: boolean): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: 'db-b', standbyInSync,
});
/** A tick; `replyAgeMs`: how long ago db-b last replied (undefined: the shell says nothing). */
const tick = (nowMs: number, standbyInSync: boolean, replyAgeMs?: number): AgentInput => ({
  kind: 'tick', nowMs, pg: pg(standbyInSync), writeProbe: 'ok', peer: null,
  ...(replyAgeMs === undefined ? {} : { replyAgeMs: { 'db-b': replyAgeMs } }),
});

/** Ticks every heartbeat from `fromMs` on, the standby lost since `lastReplyMs`; when the degrade is asked. */
function degradeAskedAt(lastReplyMs: number, detectedMs: number, withAges: boolean): number | null {
  let s = step(twoNodePrimary(), tick(0, true, withAges ? 0 : undefined)).state;
  for (let now = detectedMs; now <= detectedMs + 3 * t.syncDegradeAfterMs; now += t.heartbeatMs) {
    const out = step(s, tick(now, false, withAges ? now - lastReplyMs : undefined));
    const ask = out.sends.find((x) => x.msg.kind === 'sync-update' && x.msg.change === 'degrade');
    if (ask !== undefined) {
      assert.equal(ask.to, 'witness');
      // Commits still wait: the setting changes only on the witness's grant.
      assert.deepEqual(out.effects.filter((e) => e.effect.kind === 'set-sync-standby'), [], out.reason);
      const granted = step(out.state, {
        kind: 'reply', nowMs: now + 5, msg: { ...env(3, 'witness'), kind: 'sync-update-reply', granted: true, reason: 'ok' },
      });
      const set = granted.effects.map((e) => e.effect).filter((e) => e.kind === 'set-sync-standby');
      assert.deepEqual(set, [{ kind: 'set-sync-standby', standby: null }]);
      return now;
    }
    s = out.state;
  }
  return null;
}

test('two nodes: the degrade is asked syncDegradeAfterMs after the standby\'s last reply, not after its detection', () => {
  // The standby last replied at 10 000; the silence rule counts it lost 3 s later.
  const asked = degradeAskedAt(10_000, 13_000, true);
  assert.ok(asked !== null);
  assert.ok(asked >= 10_000 + t.syncDegradeAfterMs, `asked at ${asked}: before syncDegradeAfterMs of silence`);
  assert.ok(asked < 10_000 + t.syncDegradeAfterMs + t.heartbeatMs, `asked at ${asked}: the clock started at the detection`);
});

test('two nodes: without reply ages (a walsender gone at once, or an older shell) the clock starts at the detection', () => {
  const asked = degradeAskedAt(13_000, 13_000, false);
  const due = 13_000 + t.syncDegradeAfterMs;
  assert.ok(asked !== null && asked >= due && asked < due + t.heartbeatMs, String(asked));
});

test('two nodes: a silent spell shorter than syncDegradeAfterMs never degrades', () => {
  let s = step(twoNodePrimary(), tick(0, true, 0)).state;
  const lastReply = 10_000;
  // Counted lost at 13 000, replying again before 10 000 + syncDegradeAfterMs.
  for (let now = 13_000; now < lastReply + t.syncDegradeAfterMs; now += t.heartbeatMs) {
    const out = step(s, tick(now, false, now - lastReply));
    assert.ok(!out.sends.some((x) => x.msg.kind === 'sync-update'), out.reason);
    s = out.state;
  }
  s = step(s, tick(lastReply + t.syncDegradeAfterMs - 1, true, 0)).state;
  assert.equal(s.sync.lostSinceMs, null);
  const out = step(s, tick(lastReply + t.syncDegradeAfterMs + 1, true, 100));
  assert.ok(!out.sends.some((x) => x.msg.kind === 'sync-update'), out.reason);
});

test('the default syncDegradeAfterMs keeps the write block under 5 s and a single missed check harmless', () => {
  // Counted from the last reply: the tick that notices it (a heartbeat), the quorum's answer (a request).
  assert.ok(t.syncDegradeAfterMs + t.heartbeatMs + t.requestTimeoutMs <= 5_000, JSON.stringify(t));
  assert.ok(t.syncDegradeAfterMs >= t.failureChecks * t.heartbeatMs);
  assert.deepEqual(timingViolations(t).filter((v) => v.field === 'syncDegradeAfterMs'), []);
});

// ---- three nodes on etcd (claim-sync.ts) --------------------------------------------------------

const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];
const replica = (node: string, streaming: boolean): ReplicaState => ({ node, flushLsn: 1000n, streaming, syncState: 'quorum' });
const primaryPg = (claim: SyncClaim, replicas: readonly ReplicaState[]): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim: claim, replicas, upstream: null,
});

/** ANY 2 (b, c): c last replied at `lastReplyMs`, counted lost 3 s later; when the primary drops it. */
function memberDroppedAt(lastReplyMs: number, withAges: boolean): number | null {
  const both = { members: ['db-b', 'db-c'], k: 2 };
  const settings = {
    ...defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t }),
    nodes: three, synchronousCount: 2,
  };
  let s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000);
  s = {
    ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } },
    claimSync: { ...s.claimSync, record: both, caughtUpFor: both },
  };
  const detected = lastReplyMs + 3_000;
  for (let now = 0; now <= detected + 3 * t.syncDegradeAfterMs; now += t.heartbeatMs) {
    const cStreams = now < detected;
    const replyAgeMs = { 'db-b': 0, 'db-c': now - Math.min(now, lastReplyMs) };
    const out = step(s, {
      kind: 'tick', nowMs: now, pg: primaryPg(both, [replica('db-b', true), replica('db-c', cStreams)]), writeProbe: 'ok',
      peer: null, peers: {}, ...(withAges ? { replyAgeMs } : {}),
    });
    const record = out.sends.find((x) => x.msg.kind === 'sync-update' && x.msg.change === 'record');
    // The first step of the drop is lowering k in etcd's record: until it is granted commits still wait.
    if (record !== undefined && record.msg.kind === 'sync-update' && record.msg.change === 'record') {
      assert.deepEqual(record.msg.claim, { members: ['db-b', 'db-c'], k: 1 });
      assert.deepEqual(out.effects.filter((e) => e.effect.kind === 'set-sync'), []);
      return now;
    }
    s = out.state;
  }
  return null;
}

test('three nodes: a lost member is dropped syncDegradeAfterMs after its last reply, not after its detection', () => {
  const dropped = memberDroppedAt(10_000, true);
  assert.ok(dropped !== null);
  assert.ok(dropped >= 10_000 + t.syncDegradeAfterMs, `dropped at ${dropped}: before syncDegradeAfterMs of silence`);
  assert.ok(dropped < 10_000 + t.syncDegradeAfterMs + t.heartbeatMs, `dropped at ${dropped}: the clock started at the detection`);
  // Without ages the clock starts at the last look that saw it streaming, as before.
  const old = memberDroppedAt(10_000, false);
  assert.ok(old !== null && old >= 13_000 - t.heartbeatMs + t.syncDegradeAfterMs, String(old));
});

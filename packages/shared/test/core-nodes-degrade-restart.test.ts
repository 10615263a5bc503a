// A primary whose agent restarted mid-term does not know the sync record (claimSync.record null);
// its standbys lost meanwhile, `degrade: async` must still degrade and `degrade: block` must still
// block (review-17b G2; docs/design.md, "More than one standby", the degrade).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, PROTOCOL_VERSION, quorumOf, stepAgent,
  type AgentOutput, type AgentState, type NodeTraits, type PgSnapshot, type ReplicaState,
  type SyncClaim,
} from '../src/core/index.js';

const t = defaultTimings;
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

function primary(degrade: 'async' | 'block', bootAtMs: number, synchronousCount = 1): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes: three,
    degrade,
    synchronousCount,
  };
  return bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, bootAtMs);
}

const replica = (node: string, streaming: boolean): ReplicaState => ({ node, flushLsn: 1000n, streaming, syncState: 'quorum' });
const primaryPg = (syncClaim: SyncClaim, replicas: readonly ReplicaState[]): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim, replicas, upstream: null,
});

interface Run {
  /** The claims asked of etcd, in order, with when. */
  readonly records: { claim: SyncClaim; atMs: number }[];
  readonly catchUps: number;
  readonly notes: string[];
}

/**
 * Ticks the primary for `forMs` with the setting `setting` in force and the standbys as `replicas`
 * say; a catch-up fails at its timeout unless `catchUpOk`, etcd grants every record write at once.
 */
function run(
  s0: AgentState, setting: SyncClaim, replicas: readonly ReplicaState[], forMs: number, catchUpOk = false,
): Run {
  let s: AgentState = {
    ...s0,
    lease: { ...s0.lease, held: { term: 3, validUntilMs: 1e12 } },
    vip: { phase: 'held', checkedAtMs: 1e12, failures: 0, movedAtMs: 0, moveTerm: 3 },
  };
  let pg = primaryPg(setting, replicas);
  const records: { claim: SyncClaim; atMs: number }[] = [];
  const notes: string[] = [];
  let catchUps = 0;
  // Set inside `note`: a box, so the loop reads what the closure wrote.
  const box: { pending: { id: number; doneAtMs: number; ok: boolean } | null; replied: boolean } =
    { pending: null, replied: false };
  const note = (out: AgentOutput, now: number): void => {
    s = out.state;
    for (const n of out.notifications) notes.push(n.event);
    for (const x of out.sends) {
      if (x.msg.kind !== 'sync-update') continue;
      const claim = (x.msg as { claim?: SyncClaim }).claim!;
      records.push({ claim, atMs: now });
      box.replied = true;
    }
    for (const e of out.effects) {
      if (e.effect.kind === 'sync-catch-up') {
        catchUps++;
        box.pending = { id: e.id, doneAtMs: now + (catchUpOk ? t.heartbeatMs : e.effect.timeoutMs), ok: catchUpOk };
      } else if (e.effect.kind === 'set-sync') {
        pg = { ...pg, syncClaim: e.effect.claim };
        box.pending = { id: e.id, doneAtMs: now, ok: true };
      }
    }
  };
  for (let now = 0; now < forMs; now += t.heartbeatMs) {
    note(stepAgent(s, { kind: 'tick', nowMs: now, pg, writeProbe: 'ok', peer: null, peers: {} }), now);
    if (box.replied) {
      box.replied = false;
      const msg = { v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: ETCD_QUORUM_ID, kind: 'sync-update-reply', granted: true, reason: 'ok' } as const;
      note(stepAgent(s, { kind: 'reply', nowMs: now, msg }), now);
    }
    const p = box.pending;
    if (p !== null && p.doneAtMs <= now) {
      box.pending = null;
      note(stepAgent(s, { kind: 'effect-done', nowMs: now, result: { id: p.id, ok: p.ok, detail: p.ok ? 'done' : 'timed out' } }), now);
    }
  }
  return { records, catchUps, notes };
}

const any1: SyncClaim = { members: ['db-b', 'db-c'], k: 1 };
const lost = [replica('db-b', false), replica('db-c', false)];

test('G2: a primary restarted while its synchronous standbys are lost still degrades (degrade: async)', () => {
  const r = run(primary('async', -100_000), any1, lost, 10 * t.syncDegradeAfterMs);
  const degrade = r.records.find((x) => x.claim.k === 0);
  assert.ok(degrade !== undefined, `never asked etcd to record the degrade (${r.catchUps} catch-ups failed)`);
  assert.ok(r.notes.includes('sync-degraded'), r.notes.join(' '));
});

test('G2: after a restart the degrade waits syncDegradeAfterMs from the agent\'s start, not from the first look', () => {
  const r = run(primary('async', 0), any1, lost, 10 * t.syncDegradeAfterMs);
  const degrade = r.records.find((x) => x.claim.k === 0);
  assert.ok(degrade !== undefined, 'never degraded');
  assert.ok(degrade.atMs >= t.syncDegradeAfterMs, `degraded at ${degrade.atMs} ms, before ${t.syncDegradeAfterMs}`);
  assert.ok(degrade.atMs <= 2 * t.syncDegradeAfterMs + 2 * t.heartbeatMs, `degraded only at ${degrade.atMs} ms`);
});

test('G2: a primary restarted under degrade: block while its standbys are lost never lowers the record', () => {
  const r = run(primary('block', -100_000), any1, lost, 10 * t.syncDegradeAfterMs);
  assert.deepEqual(r.records.filter((x) => x.claim.k === 0), [], 'block wrote a degraded record');
  const r2 = run(primary('block', -100_000, 2), { members: ['db-b', 'db-c'], k: 2 },
    [replica('db-b', true), replica('db-c', false)], 10 * t.syncDegradeAfterMs, true);
  assert.deepEqual(r2.records.filter((x) => x.claim.k < 2), [], 'block lowered k after a restart');
});

test('G2 (control): a restarted primary whose standbys stream makes the setting its record, degrading nothing', () => {
  const r = run(primary('async', -100_000), any1, [replica('db-b', true), replica('db-c', true)], 4 * t.syncDegradeAfterMs, true);
  assert.deepEqual(r.records.map((x) => x.claim), [any1]);
  assert.equal(r.catchUps, 1);
  assert.deepEqual(r.notes.filter((n) => n === 'sync-degraded'), []);
});

test('G2 (control): restarted with one of ANY 1 (b, c) lost, it keeps b: the catch-up succeeds, no NO_CLAIM', () => {
  const r = run(primary('async', -100_000), any1, [replica('db-b', true), replica('db-c', false)], 6 * t.syncDegradeAfterMs, true);
  assert.deepEqual(r.records.filter((x) => x.claim.k === 0), []);
  assert.ok(r.records.some((x) => x.claim.k === 1 && x.claim.members.join() === 'db-b'), JSON.stringify(r.records));
});

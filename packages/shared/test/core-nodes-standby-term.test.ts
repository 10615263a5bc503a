// Three database nodes on etcd: a standby and the CURRENT term's primary (docs/design.md, "More than
// one standby"). A standby that learned term T from etcd but never streamed from T's primary holds an
// older primary's WAL on an older timeline: it publishes its final position as not eligible
// (review-17b G9), or in async mode it could win T+1 and lose T's writes. A standby that names T's
// primary but does not stream from it asks `follow` again, which finds a fork (review-17b G5).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, NO_CLAIM, PROTOCOL_VERSION, quorumOf, stepAgent,
  type AgentOutput, type AgentState, type NodeTraits, type PgSnapshot, type SyncClaim,
} from '../src/core/index.js';

const t = defaultTimings;
const etcd = ETCD_QUORUM_ID;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

function agent(self: string, term: number, primary: string, replication: 'sync' | 'async' = 'async'): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self, peer: 'db-a', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes: three,
    replication,
  };
  return bootAgent(settings, { term, primaryOfTerm: primary }, -100_000);
}

const standbyPg = (timeline: number, upstream: string, streaming: boolean): PgSnapshot => ({
  running: true, inRecovery: true, writable: false, timeline, lsn: 42510n, replayLsn: 42510n, streaming,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream,
});

const primaryPg = (syncClaim: SyncClaim): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim, replicas: [], upstream: null,
});

/**
 * db-b in term 2 (primary db-c), which has just failed for good: db-b withdraws (etcd says the leader
 * key is gone) and publishes its final position; the `eligible` it published. `streamedFromC`: db-b
 * followed db-c onto timeline 2 and streamed from it; otherwise its last stream and report are db-a's
 * of term 1 (db-c crashed right after promoting, before db-b followed).
 */
function publishedEligible(streamedFromC: boolean): boolean | undefined {
  const timeline = streamedFromC ? 2 : 1;
  const upstream = streamedFromC ? 'db-c' : 'db-a';
  let s = agent('db-b', 2, 'db-c');
  if (streamedFromC) {
    s = stepAgent(s, { kind: 'tick', nowMs: 0, pg: standbyPg(2, 'db-c', true), writeProbe: 'not-run', peer: null, peers: {} }).state;
  }
  s = {
    ...s, promise: null, lastStreamingAtMs: 0,
    primaryReport: { term: streamedFromC ? 2 : 1, lsn: 42510n, timeline, syncStandby: null, atMs: 0 },
  };
  const pg = standbyPg(timeline, upstream, false);
  let eligible: boolean | undefined;
  for (let now = 100; now < 4000 && eligible === undefined; now += t.heartbeatMs / 2) {
    const queue = [stepAgent(s, { kind: 'tick', nowMs: now, pg, writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-c': null } })];
    while (queue.length > 0) {
      const out = queue.shift()!;
      s = out.state;
      for (const x of out.sends) {
        if (x.msg.kind !== 'vote-request' || x.to !== etcd) continue;
        if (x.msg.withdrawn !== undefined) {
          eligible = x.msg.withdrawn.eligible;
          continue;
        }
        // The question before withdrawing (review-17 F9): etcd says the leader key is gone.
        const reply = {
          ...env(2, etcd), kind: 'vote-reply' as const, granted: false, reason: 'no leader key', primaryOfTerm: 'db-c', leaderKeyGone: true,
        };
        queue.push(stepAgent(s, { kind: 'reply', nowMs: now, msg: reply }));
        s = queue.at(-1)!.state;
      }
      for (const e of out.effects) {
        const vip = ['verify-vip', 'move-vip-cloud', 'add-vip-local', 'drop-vip-local'].includes(e.effect.kind);
        const result = {
          id: e.id, ok: true, detail: 'ok', ...(vip ? { vipPlacement: 'elsewhere' as const } : {}),
          ...(e.effect.kind === 'stop-wal-receiver' ? { finalLsn: 42510n } : {}),
        };
        queue.push(stepAgent(s, { kind: 'effect-done', nowMs: now, result }));
        s = queue.at(-1)!.state;
      }
    }
  }
  return eligible;
}

test('a standby that streamed from the failed primary of its term publishes as eligible', () => {
  assert.equal(publishedEligible(true), true);
});

test('a standby that never streamed from the failed primary of its term publishes as not eligible', () => {
  const eligible = publishedEligible(false);
  assert.notEqual(eligible, undefined, 'db-b never withdrew');
  assert.equal(eligible, false, 'db-b, which never streamed from db-c (term 2, timeline 2), published itself as eligible');
});

// review-17b G5 (liveness): a follow that failed `diverged:` (or a rewind) is remembered only in memory
// (s.follow). An agent restart (its host crashed during the rewind) leaves a standby whose
// primary_conninfo already names the new primary but which never streams (PostgreSQL refuses the
// forked timeline for ever): followIfNeeded sees upstream = the primary, no receiverStopped, no failed
// follow, and does nothing, for ever. Found by the simulator (three nodes, synchronousCount 2).
function afterDivergedFollow(remembered: boolean): { started: string[]; why: string } {
  // db-c restarted in term 2 (db-b primary on timeline 2); its PostgreSQL is a standby on timeline 1
  // whose primary_conninfo names db-b (the follow re-pointed it before it found the fork).
  let s = agent('db-c', 2, 'db-b', 'sync');
  // The same agent without a restart remembers the diverged follow of this term.
  if (remembered) s = { ...s, follow: { term: 2, diverged: true, failedAtMs: -1e9 } };
  const pg: PgSnapshot = {
    running: true, inRecovery: true, writable: false, timeline: 1, lsn: 46280n, replayLsn: 46280n, streaming: false,
    syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream: 'db-b',
  };
  const bStatus = {
    ...env(2, 'db-b'), primaryOfTerm: 'db-b', role: 'primary' as const, leaseRemainingMs: 2000, promotionBlocker: null, maintenance: false,
    pg: { ...primaryPg({ members: ['db-a'], k: 1 }), timeline: 2, lsn: 60000n, replayLsn: 60000n },
  };
  const started: string[] = [];
  // Every effect finishes at once, as PostgreSQL would: the follow finds the fork, a rewind fails.
  const drain = (first: AgentOutput, now: number): void => {
    const queue = [first];
    while (queue.length > 0 && !started.includes('follow') && !started.includes('rejoin')) {
      const out = queue.shift()!;
      s = out.state;
      for (const x of out.sends) {
        if (x.msg.kind === 'position-clear') {
          queue.push(stepAgent(s, { kind: 'reply', nowMs: now, msg: { ...env(2, etcd), kind: 'ack', accepted: true, reason: 'deleted' } }));
          s = queue.at(-1)!.state;
        }
      }
      for (const e of out.effects) {
        started.push(e.effect.kind);
        const vip = ['verify-vip', 'move-vip-cloud', 'add-vip-local', 'drop-vip-local'].includes(e.effect.kind);
        const ok = e.effect.kind !== 'follow' && e.effect.kind !== 'rejoin';
        const detail = e.effect.kind === 'follow' ? 'diverged: db-c is at 46280 on timeline 1, db-b is on timeline 2 forked at 36050' : ok ? 'ok' : 'failed';
        queue.push(stepAgent(s, { kind: 'effect-done', nowMs: now, result: { id: e.id, ok, detail, ...(vip ? { vipPlacement: 'elsewhere' as const } : {}) } }));
        s = queue.at(-1)!.state;
      }
    }
  };
  for (let now = 0; now < 60_000 && !started.includes('follow') && !started.includes('rejoin'); now += t.heartbeatMs) {
    drain(stepAgent(s, { kind: 'tick', nowMs: now, pg, writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-b': bStatus } }), now);
  }
  return { started, why: [...new Set(started)].join(', ') || 'nothing' };
}

test('a standby that remembers its diverged follow rewinds', () => {
  const { started, why } = afterDivergedFollow(true);
  assert.ok(started.includes('rejoin'), why);
});

test('a restarted standby whose conninfo names the primary but never streams follows again (review-17b G5)', () => {
  const { started, why } = afterDivergedFollow(false);
  assert.ok(started.includes('follow') || started.includes('rejoin'), `in a minute it started only: ${why}`);
});

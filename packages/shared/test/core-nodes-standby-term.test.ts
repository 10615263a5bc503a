// Three database nodes on etcd: what a standby may claim about the CURRENT term's primary
// (docs/design.md, "More than one standby"). A standby that learned term T from etcd but never
// streamed from T's primary holds an older primary's WAL on an older timeline: it publishes its final
// position as not eligible (review-17b G9), or in async mode it could win T+1 and lose T's writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, NO_CLAIM, PROTOCOL_VERSION, quorumOf, stepAgent,
  type AgentState, type NodeTraits, type PgSnapshot,
} from '../src/core/index.js';

const t = defaultTimings;
const etcd = ETCD_QUORUM_ID;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

function agent(self: string, term: number, primary: string): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self, peer: 'db-a', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes: three,
    replication: 'async' as const,
  };
  return bootAgent(settings, { term, primaryOfTerm: primary }, -100_000);
}

const standbyPg = (timeline: number, upstream: string, streaming: boolean): PgSnapshot => ({
  running: true, inRecovery: true, writable: false, timeline, lsn: 42510n, replayLsn: 42510n, streaming,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream,
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

// Goal: a withdrawn standby (three or more nodes, docs/design.md, "More than one standby") that etcd
// refuses asks again at its next heartbeat's tick. Its first ask leaves when the WAL receiver stopped,
// between two ticks; a pace of a whole heartbeat counted from that ask made the next tick skip it, so
// each refusal cost two heartbeats (the lab's three-node failovers: "waiting for the final positions
// of db-c", which came 4 ms later, then the won ask about a second after).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, NO_CLAIM, PROTOCOL_VERSION, quorumOf, stepAgent,
  type AgentInput, type AgentState, type NodeTraits, type PgSnapshot,
} from '../src/core/index.js';

const t = defaultTimings;
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

const standbyPg = (lsn: bigint, streaming: boolean): PgSnapshot => ({
  running: true, inRecovery: true, writable: false, timeline: 1, lsn, replayLsn: lsn, streaming,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream: 'db-a',
});
const tick = (nowMs: number, streaming = false): AgentInput => ({
  kind: 'tick', nowMs, pg: standbyPg(900n, streaming), writeProbe: 'not-run', peer: null, peers: { 'db-a': null },
});

function standby(): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self: 'db-b', peer: 'db-a', witness: 'witness', quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes: three,
  };
  const s = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, -100_000);
  return {
    ...s, promise: null,
    primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: 0, syncClaim: { members: ['db-b', 'db-c'], k: 1 } },
  };
}

/** etcd's answer to the question before withdrawing: no leader key in term 3. */
const keyGone = (nowMs: number, asked: number): AgentInput => ({
  kind: 'reply', nowMs,
  msg: {
    v: PROTOCOL_VERSION, cluster: 'c1', term: asked - 1, from: ETCD_QUORUM_ID, kind: 'vote-reply', granted: false,
    reason: 'no leader key in term 3', primaryOfTerm: 'db-a', leaderKeyGone: true,
  },
});

const votes = (out: ReturnType<typeof stepAgent>) => out.sends.filter((x) => x.msg.kind === 'vote-request');

test('three nodes: a refused withdrawn vote is asked again at the next tick, not a heartbeat after it', () => {
  let s = standby();
  let tickAt = 0;
  let stopId: number | null = null;
  // The primary fails its checks; the standby asks etcd whether its leader key is gone at one of
  // these ticks, and withdraws on etcd's answer (review-17 F9).
  for (let i = 0; i <= t.failureChecks && stopId === null; i++) {
    tickAt = i * t.heartbeatMs;
    let out = stepAgent(s, tick(tickAt, i === 0));
    const check = out.sends.find((x) => x.msg.kind === 'vote-request' && x.msg.withdrawn === undefined);
    if (check !== undefined) out = stepAgent(out.state, keyGone(tickAt + 10, check.msg.term));
    s = out.state;
    stopId = out.effects.find((e) => e.effect.kind === 'stop-wal-receiver')?.id ?? null;
  }
  assert.ok(stopId !== null, 'the standby never withdrew');
  // The receiver stops 40 ms after the tick: the first ask leaves then.
  const stopped = stepAgent(s, { kind: 'effect-done', nowMs: tickAt + 40, result: { id: stopId, ok: true, detail: 'ok', finalLsn: 900n } });
  assert.equal(votes(stopped).length, 1, stopped.reason);
  // etcd refuses at once (another standby's final position not yet published).
  const refused = stepAgent(stopped.state, {
    kind: 'reply', nowMs: tickAt + 60,
    msg: {
      v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from: ETCD_QUORUM_ID, kind: 'vote-reply', granted: false,
      reason: 'waiting for the final positions of db-c', primaryOfTerm: 'db-a',
    },
  });
  assert.equal(votes(refused).length, 0, 'a refusal is no reason to ask again in the same instant');
  // The next tick, a heartbeat after the one before (460 ms after the ask), asks again.
  const next = stepAgent(refused.state, tick(tickAt + t.heartbeatMs));
  assert.equal(votes(next).length, 1, `the next tick did not ask again: ${next.reason}`);
  assert.equal(votes(next)[0]?.to, ETCD_QUORUM_ID);
});

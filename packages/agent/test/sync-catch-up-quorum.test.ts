// Goal: the catch-up gate on a synchronous standby (SyncCatchUp, docs/design.md, Quorum on etcd,
// "Sync") holds on both backends. The agent's snapshot says standbyInSync only once the standby
// flushed past the primary's position when it first looked synchronous, and the core asks its quorum
// to restore the standby (the witness's eligibility; on etcd the bridge's setSync) only with it. So a
// standby that PostgreSQL already shows as `sync` but that lacks acknowledged commits is named
// nowhere: not to the witness, not in etcd's sync key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, defaultAgentSettings, defaultTimings, quorumOf, stepAgent, type AgentOutput, type AgentState,
  type PgSnapshot,
} from '@pgvip/shared/core';
import { ReplyWatch, SyncCatchUp, toSnapshot } from '../src/pg-snapshot.js';
import { synchronousStandbyNamesFor, type PgObservation } from '../src/postgres/port.js';

/** The primary's observation: db-b named and streaming as `sync`, flushed up to `standbyFlush`. */
function observation(primary: bigint, standbyFlush: bigint, replyTime: string): PgObservation {
  return {
    reachable: true, role: 'primary', inRecovery: false, timelineId: 1, currentLsn: primary, receiveLsn: null, replayLsn: null,
    walReceiver: null,
    replicas: [{ applicationName: 'db-b', clientAddress: '198.18.1.12', state: 'streaming', syncState: 'sync', flushLsn: standbyFlush, replayLsn: standbyFlush, replyTime }],
    synchronousStandbyNames: synchronousStandbyNamesFor('db-b'),
    defaultTransactionReadOnly: false,
  };
}

for (const backend of ['witness', 'etcd'] as const) {
  test(`Given a standby shown as sync before it flushed what was acknowledged (${backend}), Then no restore reaches the quorum until it has`, () => {
    const quorum = quorumOf(backend, 'witness');
    const settings = defaultAgentSettings({ cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', quorum, timings: defaultTimings });
    let s: AgentState = bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0);
    s = { ...s, lease: { ...s.lease, held: { term: 3, validUntilMs: 1_000_000 } } };
    const catchUp = new SyncCatchUp();
    const replies = new ReplyWatch();
    let previous: PgSnapshot | null = null;
    const snapshot = (nowMs: number, standbyFlush: bigint): PgSnapshot => {
      previous = toSnapshot(observation(5000n, standbyFlush, `t${nowMs}`), {
        peerName: 'db-b', peerNode: 'db-b', streamFreshMs: 2000, previous, replies, catchUp, nowMs,
      });
      return previous;
    };
    const restores = (out: AgentOutput) => out.sends.filter((x) => x.msg.kind === 'sync-update' && x.msg.change === 'restore');
    // Heartbeats while the standby is still behind: its VIP steps finish, yet nothing is asked.
    for (let t = 0; t < 10; t++) {
      const pg = snapshot(t * 500, 4000n);
      assert.equal(pg.standbyInSync, false);
      let out = stepAgent(s, { kind: 'tick', nowMs: t * 500, pg, writeProbe: 'ok', peer: null });
      if (out.state.inFlight !== null) {
        out = stepAgent(out.state, { kind: 'effect-done', nowMs: t * 500 + 1, result: { id: out.state.inFlight.id, ok: true, detail: 'ok', vipPlacement: 'here' } });
      }
      assert.deepEqual(restores(out), [], out.reason);
      s = out.state;
    }
    // Flushed past the primary's position from when it first looked synchronous: now it is asked.
    const pg = snapshot(5000, 5000n);
    assert.equal(pg.standbyInSync, true);
    let out = stepAgent(s, { kind: 'tick', nowMs: 5000, pg, writeProbe: 'ok', peer: null });
    if (out.state.inFlight !== null) { // the VIP's periodic check comes first
      out = stepAgent(out.state, { kind: 'effect-done', nowMs: 5001, result: { id: out.state.inFlight.id, ok: true, detail: 'ok', vipPlacement: 'here' } });
    }
    assert.deepEqual(restores(out).map((x) => x.to), [quorum.id], out.reason);
  });
}

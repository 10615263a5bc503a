// An adversarial review of the three-node core (issue 17; docs/design.md, "More than one standby"):
// schedules that an attacker of the design would try against I3 (no acknowledged commit lost) and
// against the election's liveness. A test marked `todo` fails on the current code and shows a
// problem; each is written up, with a proposed fix, in the session's review notes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootAgent, claimImplies, defaultAgentSettings, defaultTimings, ETCD_QUORUM_ID, NO_CLAIM, PROTOCOL_VERSION, quorumOf,
  stepAgent,
  type AgentInput, type AgentOutput, type AgentState, type NodeTraits, type PgSnapshot, type ReplicaState,
  type SyncClaim,
} from '../src/core/index.js';

const t = defaultTimings;
const etcd = ETCD_QUORUM_ID;
const env = (term: number, from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term, from });
const trait = (id: string): NodeTraits => ({ id, priority: 0, noFailover: false });
const three = [trait('db-a'), trait('db-b'), trait('db-c')];

function agent(self: string, term: number, primary: string, bootAtMs: number, extra = {}): AgentState {
  const settings = {
    ...defaultAgentSettings({
      cluster: 'c1', self, peer: three.find((n) => n.id !== self)!.id, witness: 'witness',
      quorum: quorumOf('etcd', 'witness'), timings: t,
    }),
    nodes: three,
    ...extra,
  };
  return bootAgent(settings, { term, primaryOfTerm: primary }, bootAtMs);
}

const replica = (node: string, streaming = true): ReplicaState => ({ node, flushLsn: 1000n, streaming, syncState: 'quorum' });
const primaryPg = (syncClaim: SyncClaim, replicas: readonly ReplicaState[]): PgSnapshot => ({
  running: true, inRecovery: false, writable: true, timeline: 1, lsn: 1000n, replayLsn: 1000n, streaming: false,
  syncStandby: null, standbyInSync: false, syncClaim, replicas, upstream: null,
});
const standbyPg = (lsn: bigint, upstream: string | null, streaming: boolean): PgSnapshot => ({
  running: true, inRecovery: true, writable: false, timeline: 1, lsn, replayLsn: lsn, streaming,
  syncStandby: null, standbyInSync: false, syncClaim: NO_CLAIM, replicas: [], upstream,
});

const vipEffects = new Set(['verify-vip', 'move-vip-cloud', 'add-vip-local', 'drop-vip-local']);

/** The VIP's effects finish at once: the tests look past them. */
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
  // etcd answers a standby's question before it withdraws at once: no leader key (review-17 F9).
  const check = out.sends.find((x) => x.to === etcd && x.msg.kind === 'vote-request' && x.msg.withdrawn === undefined);
  if (check === undefined || s.durable.primaryOfTerm === s.settings.self) return s;
  const asked = check.msg.term;
  return settleVip(stepAgent(s, {
    kind: 'reply', nowMs: s.nowMs,
    msg: {
      ...env(asked - 1, etcd), kind: 'vote-reply', granted: false, reason: `no leader key in term ${asked - 1}`,
      primaryOfTerm: s.durable.primaryOfTerm, leaderKeyGone: true,
    },
  }));
}

// ---- I3: the primary's belief about the sync record ------------------------------------------------

test(
  'quorum commit: a record write whose answer never came may have committed; no setting may break R1 against it',
  () => {
    // db-a, primary of term 3, ANY 2 wanted: the setting ANY 2 (b, c) is in force and caught up, the
    // record still says ANY 1 (b, c). The plan's next step is to raise the record to ANY 2 (b, c).
    // db-c was last seen streaming a little less than syncDegradeAfterMs ago.
    const any2: SyncClaim = { members: ['db-b', 'db-c'], k: 2 };
    const any1: SyncClaim = { members: ['db-b', 'db-c'], k: 1 };
    let s = agent('db-a', 3, 'db-a', -100_000, { synchronousCount: 2 });
    s = {
      ...s,
      lease: { ...s.lease, held: { term: 3, validUntilMs: 1e12 } },
      vip: { phase: 'held', checkedAtMs: 0, failures: 0, movedAtMs: -Infinity, moveTerm: 0 },
      claimSync: { record: any1, asked: null, caughtUpFor: any2, seenAtMs: { 'db-b': 0, 'db-c': 800 - t.syncDegradeAfterMs } },
    };
    let setting = any2;
    const tick = (nowMs: number, replicas: readonly ReplicaState[]): AgentInput => ({
      kind: 'tick', nowMs, pg: primaryPg(setting, replicas), writeProbe: 'ok', peer: null, peers: {},
    });
    const first = stepAgent(s, tick(1, [replica('db-b'), replica('db-c', false)]));
    const asked = first.sends.find((x) => x.msg.kind === 'sync-update');
    assert.ok(asked?.msg.kind === 'sync-update' && asked.msg.change === 'record', first.reason);
    assert.deepEqual(asked.msg.claim, any2);
    s = settleVip(first);
    // The answer is lost (etcd slow past requestTimeoutMs: the agent's quorum drops it), but etcd's txn
    // ran: etcd's record may now be ANY 2 (b, c). db-c's syncDegradeAfterMs then runs out. Every later
    // record write is answered: once one is granted, etcd's record is known again.
    let possible: SyncClaim[] = [any1, any2];
    const checked: { claim: SyncClaim; possible: SyncClaim[] }[] = [];
    for (let nowMs = 500; nowMs <= 5000; nowMs += 500) {
      let out = stepAgent(s, tick(nowMs, [replica('db-b'), replica('db-c', false)]));
      for (let i = 0; i < 4; i++) {
        s = settleVip(out);
        const set = out.effects.find((e) => e.effect.kind === 'set-sync' || e.effect.kind === 'sync-catch-up');
        const write = out.sends.find((x) => x.msg.kind === 'sync-update');
        if (set !== undefined) {
          if (set.effect.kind === 'set-sync') {
            checked.push({ claim: set.effect.claim, possible });
            setting = set.effect.claim;
          }
          out = stepAgent(s, { kind: 'effect-done', nowMs, result: { id: set.id, ok: true, detail: 'ok' } });
        } else if (write !== undefined && write.msg.kind === 'sync-update' && write.msg.change === 'record') {
          possible = [write.msg.claim];
          out = stepAgent(s, { kind: 'reply', nowMs, msg: { ...env(3, etcd), kind: 'sync-update-reply', granted: true, reason: 'ok' } });
        } else {
          break;
        }
      }
      s = settleVip(out);
    }
    const started = checked.map((c) => c.claim);
    for (const { claim, possible: records } of checked) {
      for (const record of records) {
        assert.ok(
          claimImplies(claim, record),
          `set-sync ${JSON.stringify(claim)} was put in force while etcd's record may be ${JSON.stringify(record)}: a commit acknowledged by db-b alone is then lost by a failover to db-c, which ANY 2 (b, c) lets win on its own position`,
        );
      }
    }
    assert.ok(started.length > 0, 'the degrade was planned');
  },
);

// ---- liveness: a withdrawn standby whose agent restarts ---------------------------------------------

test(
  'withdrawal: a standby that published its final position and restarted either asks again or takes the position back',
  () => {
    // db-b had withdrawn in term 3 (its receiver stopped: primary_conninfo empty, persisted) and
    // published its position; its agent then restarted. db-a is gone for good.
    let s = agent('db-b', 3, 'db-a', 0);
    const sent: string[] = [];
    for (let nowMs = 0; nowMs <= 30_000; nowMs += t.heartbeatMs) {
      const out = stepAgent(s, {
        kind: 'tick', nowMs, pg: standbyPg(900n, null, false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-c': null },
      });
      s = settleVip(out);
      for (const x of out.sends) if (x.to === etcd) sent.push(x.msg.kind);
      // stop-wal-receiver again is a no-op that reports the same final position.
      const stop = out.effects.find((e) => e.effect.kind === 'stop-wal-receiver');
      if (stop !== undefined) {
        const done = stepAgent(s, { kind: 'effect-done', nowMs, result: { id: stop.id, ok: true, detail: 'stopped', finalLsn: 900n } });
        s = settleVip(done);
        for (const x of done.sends) if (x.to === etcd) sent.push(x.msg.kind);
      }
    }
    assert.ok(
      sent.includes('vote-request') || sent.includes('position-clear'),
      `in 30 s db-b neither asked for the vote with its published position nor took it back (sent to etcd: ${sent.join(', ') || 'nothing'}); last reason: ${s.withdrawal === null ? 'not withdrawn' : s.withdrawal.phase}`,
    );
  },
);

// ---- liveness: a member that may not win never publishes its final position -------------------------

/**
 * db-b, a member of ANY 1 (b, c), last streamed from db-a at `lastStreamingAtMs`; db-a is then gone.
 * Whether db-b stops its receiver and sends its final position to etcd within ten heartbeats.
 */
function publishesFinalPosition(lastStreamingAtMs: number): { stopped: boolean; published: boolean } {
  let s = agent('db-b', 3, 'db-a', -100_000);
  s = {
    ...s,
    promise: null,
    lastStreamingAtMs,
    primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: lastStreamingAtMs, syncClaim: { members: ['db-b', 'db-c'], k: 1 } },
  };
  let stopped = false;
  let published = false;
  const look = (out: AgentOutput): void => {
    s = settleVip(out);
    if (out.sends.some((x) => x.to === etcd && x.msg.kind === 'vote-request' && x.msg.withdrawn !== undefined)) published = true;
  };
  for (let nowMs = 0; nowMs <= 10 * t.heartbeatMs; nowMs += t.heartbeatMs) {
    look(stepAgent(s, {
      kind: 'tick', nowMs, pg: standbyPg(700n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-c': null },
    }));
    const stop = s.inFlight?.kind === 'stop-wal-receiver' ? s.inFlight : null;
    if (stop !== null) {
      stopped = true;
      look(stepAgent(s, { kind: 'effect-done', nowMs, result: { id: stop.id, ok: true, detail: 'stopped', finalLsn: 700n } }));
    }
  }
  return { stopped, published };
}

test('withdrawal (control): a member that streamed within the grace stops its receiver and publishes', () => {
  assert.deepEqual(publishesFinalPosition(-1000), { stopped: true, published: true });
});

test(
  'withdrawal: a member that may not win still stops its receiver and publishes its final position',
  () => {
    // db-b lost its stream to db-a 11 s ago (past streamingGraceMs); db-a then died before its degrade
    // plan had dropped db-b from the record ANY 1 (b, c). db-c is eligible and far ahead, but needs
    // db-b's final position: only db-b can give it.
    const r = publishesFinalPosition(-t.streamingGraceMs - 1000);
    assert.deepEqual(r, { stopped: true, published: true }, 'db-b never made its position final and published it: db-c can never win');
  },
);

test('withdrawal: a member that may not win says so in its withdrawn vote (eligible false); one that may, true', () => {
  const eligibleSent = (lastStreamingAtMs: number): boolean | undefined => {
    let s = agent('db-b', 3, 'db-a', -100_000);
    s = {
      ...s,
      promise: null,
      lastStreamingAtMs,
      // It streamed from db-a, the primary of term 3 (a standby that never did may not win either).
      streamedTerm: 3,
      primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: lastStreamingAtMs, syncClaim: { members: ['db-b', 'db-c'], k: 1 } },
    };
    for (let nowMs = 0; nowMs <= 10 * t.heartbeatMs; nowMs += t.heartbeatMs) {
      const outs = [stepAgent(s, {
        kind: 'tick', nowMs, pg: standbyPg(700n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-c': null },
      })];
      s = settleVip(outs[0]!);
      const stop = s.inFlight?.kind === 'stop-wal-receiver' ? s.inFlight : null;
      if (stop !== null) {
        outs.push(stepAgent(s, { kind: 'effect-done', nowMs, result: { id: stop.id, ok: true, detail: 'stopped', finalLsn: 700n } }));
        s = settleVip(outs[1]!);
      }
      for (const out of outs) {
        for (const x of out.sends) if (x.msg.kind === 'vote-request' && x.msg.withdrawn !== undefined) return x.msg.withdrawn.eligible;
      }
    }
    return undefined;
  };
  assert.equal(eligibleSent(-t.streamingGraceMs - 1000), false);
  assert.equal(eligibleSent(-1000), true);
});

// ---- liveness: a standby that resumes ------------------------------------------------------------------

/** db-b withdrawn (receiver stopped at 900) in term 3, then db-a seen healthy: its position-clear is out. */
function clearingB(): AgentState {
  let s = agent('db-b', 3, 'db-a', -100_000);
  s = {
    ...s,
    promise: null,
    lastStreamingAtMs: -1000,
    primaryReport: { term: 3, lsn: 1000n, timeline: 1, syncStandby: null, atMs: -1000, syncClaim: { members: ['db-b', 'db-c'], k: 1 } },
  };
  for (let nowMs = 0; nowMs <= 10 * t.heartbeatMs && s.withdrawal?.phase !== 'withdrawn'; nowMs += t.heartbeatMs) {
    s = settleVip(stepAgent(s, {
      kind: 'tick', nowMs, pg: standbyPg(900n, 'db-a', false), writeProbe: 'not-run', peer: null, peers: { 'db-a': null, 'db-c': null },
    }));
    if (s.inFlight?.kind === 'stop-wal-receiver') {
      s = settleVip(stepAgent(s, { kind: 'effect-done', nowMs, result: { id: s.inFlight.id, ok: true, detail: 'stopped', finalLsn: 900n } }));
    }
  }
  assert.equal(s.withdrawal?.phase, 'withdrawn');
  const healthy = {
    ...env(3, 'db-a'), primaryOfTerm: 'db-a', role: 'primary' as const, pg: primaryPg({ members: ['db-b', 'db-c'], k: 1 }, []),
    leaseRemainingMs: 2000, promotionBlocker: null, maintenance: false,
  };
  const nowMs = s.nowMs + 2 * t.heartbeatMs;
  const out = stepAgent(s, {
    kind: 'tick', nowMs, pg: standbyPg(900n, null, false), writeProbe: 'not-run', peer: healthy, peers: { 'db-a': healthy, 'db-c': null },
  });
  assert.ok(out.sends.some((x) => x.msg.kind === 'position-clear'), out.reason);
  return settleVip(out);
}

/** Ticks with the primary healthy; whether a resume-wal-receiver starts (done at once when `ok`). */
function resumesWithin(s: AgentState, heartbeats: number, ok: boolean): { resumed: boolean; s: AgentState } {
  const healthy = {
    ...env(3, 'db-a'), primaryOfTerm: 'db-a', role: 'primary' as const, pg: primaryPg({ members: ['db-b', 'db-c'], k: 1 }, []),
    leaseRemainingMs: 2000, promotionBlocker: null, maintenance: false,
  };
  let resumed = false;
  for (let i = 1; i <= heartbeats; i++) {
    const nowMs = s.nowMs + t.heartbeatMs;
    s = settleVip(stepAgent(s, {
      kind: 'tick', nowMs, pg: standbyPg(900n, null, false), writeProbe: 'not-run', peer: healthy, peers: { 'db-a': healthy, 'db-c': null },
    }));
    const f = s.inFlight;
    if (f !== null && f.kind === 'resume-wal-receiver') {
      resumed = true;
      s = settleVip(stepAgent(s, { kind: 'effect-done', nowMs, result: { id: f.id, ok, detail: ok ? 'resumed' : 'failed' } }));
      if (ok) break;
    }
  }
  return { resumed, s };
}

test(
  'resume: an accepted position-clear that arrives while another effect runs still resumes the receiver',
  () => {
    let s = clearingB();
    // A VIP check of the standby is in flight when etcd's Ack comes.
    s = { ...s, inFlight: { id: 9999, kind: 'verify-vip', effect: { kind: 'verify-vip' }, startedAtMs: s.nowMs } };
    s = stepAgent(s, { kind: 'reply', nowMs: s.nowMs + 5, msg: { ...env(3, etcd), kind: 'ack', accepted: true, reason: 'cleared' } }).state;
    assert.equal(s.withdrawal?.phase, 'resuming');
    s = settleVip(stepAgent(s, { kind: 'effect-done', nowMs: s.nowMs + 10, result: { id: 9999, ok: true, detail: 'ok', vipPlacement: 'elsewhere' } }));
    const r = resumesWithin(s, 20, true);
    assert.ok(r.resumed, `no resume-wal-receiver in 20 heartbeats (phase ${r.s.withdrawal?.phase ?? 'none'})`);
  },
);

test(
  'resume: a resume-wal-receiver that failed is tried again',
  () => {
    let s = clearingB();
    const acked = stepAgent(s, { kind: 'reply', nowMs: s.nowMs + 5, msg: { ...env(3, etcd), kind: 'ack', accepted: true, reason: 'cleared' } });
    s = settleVip(acked);
    const f = s.inFlight;
    assert.ok(f !== null && f.kind === 'resume-wal-receiver', acked.reason);
    s = settleVip(stepAgent(s, { kind: 'effect-done', nowMs: s.nowMs + 10, result: { id: f.id, ok: false, detail: 'timeout' } }));
    const r = resumesWithin(s, 20, true);
    assert.ok(r.resumed, `no second resume-wal-receiver in 20 heartbeats (phase ${r.s.withdrawal?.phase ?? 'none'})`);
  },
);

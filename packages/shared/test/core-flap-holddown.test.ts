// Goal: a standby on a flapping link (24 unreachable/recovered pairs in two minutes) is announced
// once, then summarised ("flapping: N transitions in T") when it settles, up or down, or every few
// minutes while it goes on, with notifications.nodeHoldDownMs; nothing but notifications changes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootWitness, defaultTimings, initialWitnessDurable, stepWitness, PROTOCOL_VERSION, type AgentStatus, type PgSnapshot,
  type WitnessState,
} from '../src/core/index.js';

const t = defaultTimings;
const HOLD_MS = 60_000;
const env = (from: string) => ({ v: PROTOCOL_VERSION, cluster: 'c1', term: 3, from });
const standbyPg: PgSnapshot = {
  running: true, inRecovery: true, writable: false, timeline: 1, lsn: 100n, replayLsn: 100n,
  streaming: true, syncStandby: null, standbyInSync: false,
};
const primaryPg: PgSnapshot = {
  ...standbyPg, inRecovery: false, writable: true, streaming: false, syncStandby: 'db-b',
};
const status = (from: string, role: AgentStatus['role'], pg: PgSnapshot): AgentStatus => ({
  ...env(from), primaryOfTerm: 'db-a', role, pg, leaseRemainingMs: 0, promotionBlocker: null, maintenance: false,
});
const primary = status('db-a', 'primary', primaryPg);
const standby = status('db-b', 'standby', standbyPg);

function witness(nodeHoldDownMs?: number): WitnessState {
  const settings = {
    cluster: 'c1', self: 'witness', nodes: ['db-a', 'db-b'] as [string, string], timings: t,
    replication: 'sync' as const, lagBytesMax: 1n, ...(nodeHoldDownMs === undefined ? {} : { nodeHoldDownMs }),
  };
  const durable = { ...initialWitnessDurable, term: 3, primaryOfTerm: 'db-a', syncEligible: 'db-b' };
  return bootWitness(settings, durable, -100_000);
}

interface Run { readonly events: { atMs: number; event: string; detail: string }[]; readonly decisions: string[] }

/**
 * Polls both nodes every heartbeat until `toMs`; db-b answers when `up(nowMs)`. Returns every
 * notification, and every other action and the views' counters (what decisions read), as text.
 */
function run(w: WitnessState, toMs: number, up: (nowMs: number) => boolean): Run {
  const events: Run['events'] = [];
  const decisions: string[] = [];
  for (let now = 0; now <= toMs; now += t.heartbeatMs) {
    for (const [node, st] of [['db-a', primary], ['db-b', up(now) ? standby : null]] as const) {
      const out = stepWitness(w, { kind: 'poll', nowMs: now, node, status: st, pgReachable: st !== null });
      w = out.state;
      // The core's output is being regrouped (one list of actions, or persist/replies/sends/effects/
      // notifications): read either.
      const { actions, notifications, persist, replies, sends, effects } = out as unknown as {
        actions?: readonly { kind: string; event?: string; detail?: string }[];
        notifications?: readonly { event: string; detail: string }[];
        persist?: unknown; replies?: unknown; sends?: unknown; effects?: unknown;
      };
      const notes = notifications ?? (actions ?? []).filter((a) => a.kind === 'notify') as { event: string; detail: string }[];
      for (const n of notes) events.push({ atMs: now, event: n.event, detail: n.detail });
      const other = actions === undefined ? { persist, replies, sends, effects } : actions.filter((a) => a.kind !== 'notify');
      decisions.push(JSON.stringify(other, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
      const v = w.views[node]!;
      decisions.push(`${now} ${node} failed=${v.failedChecks} missed=${v.missedPolls} term=${w.durable.term}`);
    }
  }
  return { events, decisions };
}

const CYCLE_MS = 5_000;
/** 24 cycles in two minutes: 4 s without an answer (enough to be unreachable), 1 s back. */
const flapping = (untilMs: number) => (now: number): boolean => now >= untilMs || now % CYCLE_MS >= 4_000;
const named = (r: Run, event: string) => r.events.filter((e) => e.event === event);

describe('witness: hold-down of a flapping node', () => {
  test('without a hold-down every transition is announced: 24 pairs in two minutes', () => {
    const r = run(witness(), 200_000, flapping(120_000));
    assert.equal(named(r, 'node-unreachable').length, 24);
    assert.equal(named(r, 'node-recovered').length, 24);
  });

  test('with a hold-down: the first pair, then one summary once it has stayed up for the hold-down', () => {
    const r = run(witness(HOLD_MS), 200_000, flapping(120_000));
    const down = named(r, 'node-unreachable');
    const back = named(r, 'node-recovered');
    assert.equal(down.length, 1, JSON.stringify(r.events));
    assert.equal(back.length, 2, JSON.stringify(r.events));
    assert.match(back[1]!.detail, /^db-b flapping: 46 transitions in 11\d s; it has answered for 60 s since$/);
    assert.equal(back[1]!.atMs, 119_000 + HOLD_MS, 'one hold-down after it last came back');
  });

  test('a node that flaps and then stays away is announced unreachable after the hold-down', () => {
    // Flaps for a minute, then never answers again from 61 s on.
    const r = run(witness(HOLD_MS), 200_000, (now) => now < 61_000 && now % CYCLE_MS >= 4_000);
    const down = named(r, 'node-unreachable');
    assert.equal(down.length, 2, JSON.stringify(r.events));
    assert.match(down[1]!.detail, /^db-b flapping: \d+ transitions in \d+ s; it has not answered for 60 s/);
    assert.equal(named(r, 'node-recovered').length, 1);
  });

  test('while it keeps flapping, a summary at most every 5 minutes', () => {
    const r = run(witness(HOLD_MS), 16 * 60_000, flapping(Infinity));
    const summaries = r.events.filter((e) => /flapping/.test(e.detail));
    assert.equal(summaries.length, 3, JSON.stringify(summaries));
    for (const s of summaries) assert.match(s.detail, /flapping: \d+ transitions in 30\d s, and still flapping/);
    assert.equal(r.events.length, 2 + 3);
  });

  test('only notifications change: every other action and every counter decisions read are the same', () => {
    for (const up of [flapping(120_000), flapping(Infinity)]) {
      assert.deepEqual(run(witness(HOLD_MS), 400_000, up).decisions, run(witness(), 400_000, up).decisions);
    }
  });
});

// Goal: a node on a flapping link (24 unreachable/recovered pairs in two minutes) is announced
// once, then summarised ("flapping: N transitions in T") when it settles, up or down, or every few
// minutes while it goes on, with notifications.nodeHoldDownMs; nothing but notifications changes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionsOf, bootWitness, defaultTimings, initialWitnessDurable, stepWitness, PROTOCOL_VERSION, type AgentStatus,
  type PgSnapshot, type WitnessState,
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
function run(w: WitnessState, toMs: number, up: (nowMs: number) => boolean, flapper: 'db-a' | 'db-b' = 'db-b'): Run {
  const events: Run['events'] = [];
  const decisions: string[] = [];
  for (let now = 0; now <= toMs; now += t.heartbeatMs) {
    const answers = (node: 'db-a' | 'db-b', st: AgentStatus) => (node !== flapper || up(now) ? st : null);
    for (const [node, st] of [['db-a', answers('db-a', primary)], ['db-b', answers('db-b', standby)]] as const) {
      const out = stepWitness(w, { kind: 'poll', nowMs: now, node, status: st, pgReachable: st !== null });
      w = out.state;
      for (const n of out.notifications) events.push({ atMs: now, event: n.event, detail: n.detail });
      const other = actionsOf(out).filter((a) => a.kind !== 'notify');
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

  test('a flapping primary (its link to the witness, row 16): failure-detected is held the same way', () => {
    const without = run(witness(), 200_000, flapping(120_000), 'db-a');
    assert.equal(named(without, 'failure-detected').length, 24);
    const r = run(witness(HOLD_MS), 200_000, flapping(120_000), 'db-a');
    assert.equal(named(r, 'failure-detected').length, 1, JSON.stringify(r.events));
    const back = named(r, 'node-recovered');
    assert.equal(back.length, 2, JSON.stringify(r.events));
    assert.match(back[1]!.detail, /^db-a flapping: 46 transitions in 11\d s; it has answered for 60 s since$/);
    // And one that then stays down is announced as failing, a hold-down after it went.
    const stays = run(witness(HOLD_MS), 200_000, (now) => now < 61_000 && now % CYCLE_MS >= 4_000, 'db-a');
    const failed = named(stays, 'failure-detected');
    assert.equal(failed.length, 2, JSON.stringify(stays.events));
    assert.match(failed[1]!.detail, /^primary db-a flapping: \d+ transitions in \d+ s; it has failed its checks for 60 s$/);
  });

  test('only notifications change: every other action and every counter decisions read are the same', () => {
    for (const up of [flapping(120_000), flapping(Infinity)]) {
      for (const node of ['db-a', 'db-b'] as const) {
        const held = run(witness(HOLD_MS), 400_000, up, node);
        assert.deepEqual(held.decisions, run(witness(), 400_000, up, node).decisions);
      }
    }
  });
});

// Goal: bench:failover's flap-loss faults do what its table says (no root needed: the nftables script
// and the schedule are pure). Loss and cuts sit in the router's forward path, by the links a packet
// crosses, each direction on its own; the schedule is a function of its seed, every cut ends, no cut is
// longer than the plan allows, and a path is never cut twice at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuSecondsOf, gapsOver, flapTiming, pathsOf } from './bench-flap-loss.js';
import { flapSchedule, nftScript, routerNftScript } from './faults.js';
import { topologyFor } from './topology.js';

describe('flap-loss faults', () => {
  const t = topologyFor('secondary-ip');

  it('loss on a path drops in the router\'s forward chain, both directions, by link', () => {
    const script = routerNftScript(t, [{ kind: 'path-loss', a: 'db-a', b: 'client', percent: 30 }]);
    assert.match(script, /hook forward/);
    assert.match(script, /iifname "db-a" oifname "client" numgen random mod 100 < 30 drop/);
    assert.match(script, /iifname "client" oifname "db-a" numgen random mod 100 < 30 drop/);
    assert.equal(script.match(/drop/g)?.length, 2);
    // The hosts' own tables stay empty: no sender sees a local drop.
    for (const h of t.hostNames) assert.doesNotMatch(nftScript(t, h, [{ kind: 'path-loss', a: 'db-a', b: 'client', percent: 30 }]), /drop/);
  });

  it('a path down drops every packet of it, and the script replaces the table atomically', () => {
    const script = routerNftScript(t, [{ kind: 'path-loss', a: 'db-b', b: 'witness', percent: 100 }]);
    assert.match(script, /iifname "db-b" oifname "witness" drop/);
    assert.doesNotMatch(script, /numgen/);
    assert.ok(routerNftScript(t, []).startsWith('table inet pgvip_lab {}\nflush table inet pgvip_lab\n'));
    assert.doesNotMatch(routerNftScript(t, [{ kind: 'isolate', host: 'db-a' }]), /drop/);
  });

  it('every pair of hosts is a path', () => {
    assert.equal(pathsOf(t.hostNames).length, (t.hostNames.length * (t.hostNames.length - 1)) / 2);
  });

  it('the schedule is the seed\'s, every cut ends within the plan, and paths flap out of step', () => {
    const plan = { seed: 18, durationMs: 60_000, ...flapTiming };
    const paths = pathsOf(t.hostNames);
    const s = flapSchedule(paths, plan);
    assert.deepEqual(flapSchedule(paths, plan), s);
    assert.notDeepEqual(flapSchedule(paths, { ...plan, seed: 19 }), s);
    for (const [a, b] of paths) {
      const own = s.filter((e) => e.a === a && e.b === b);
      assert.ok(own.length >= 2 * Math.floor(60_000 / (plan.downMs[1] + plan.upMs[1])), `${a}↔${b} flaps`);
      for (let i = 0; i < own.length; i += 2) {
        const [down, up] = [own[i]!, own[i + 1]!];
        assert.ok(down.down && !up.down, 'a cut, then its end');
        assert.ok(up.atMs - down.atMs <= plan.downMs[1], 'no cut longer than the plan');
        assert.ok(up.atMs <= plan.durationMs, 'every cut ends within the run');
        if (i > 0) assert.ok(down.atMs - own[i - 1]!.atMs >= plan.upMs[0], 'up at least upMs between cuts');
      }
    }
    assert.ok(new Set(paths.map(([a, b]) => s.find((e) => e.a === a && e.b === b)!.atMs)).size > 1, 'paths start out of step');
    for (let i = 1; i < s.length; i++) assert.ok(s[i]!.atMs >= s[i - 1]!.atMs, 'sorted');
  });

  it('counts the stretches without an acknowledgement longer than a limit', () => {
    const gaps = gapsOver([1_000, 2_000, 6_000, 6_500], 0, 10_000, 3_000);
    assert.deepEqual(gaps, [{ fromMs: 2_000, toMs: 6_000 }, { fromMs: 6_500, toMs: 10_000 }]);
    assert.deepEqual(gapsOver([], 0, 2_000, 3_000), []);
  });

  it('reads a process\'s CPU from /proc', () => {
    const s = cpuSecondsOf(process.pid);
    assert.ok(s !== null && s >= 0);
    assert.equal(cpuSecondsOf(2 ** 22 + 1), null);
  });
});

// Goal: the agent's V8 tiering setting (src/v8-tiering.ts) is one this Node.js knows and applies —
// a Node.js that dropped the flag would only print "unrecognized flag", so this is where it shows.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const tiering = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/v8-tiering.ts')).href;

/**
 * Runs a small function 5,000 times under --trace-opt (past V8's defaults for Maglev and TurboFan,
 * short of the agent's 16× thresholds); returns whether V8 optimised it.
 */
function optimisedAfterWarmLoop(withAgentSetting: boolean): { optimised: boolean; stderr: string } {
  const script = `${withAgentSetting ? `await import(${JSON.stringify(tiering)});` : ''}
    function lukewarm(x) { return x * 2 + 1; }
    let sum = 0;
    for (let i = 0; i < 5000; i++) sum += lukewarm(i);
    console.log(sum);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--trace-opt', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.equal(r.status, 0, r.stderr);
  return { optimised: /marking .*lukewarm/.test(r.stdout), stderr: r.stderr };
}

test('V8 optimises a lukewarm function by default, and not under the agent setting', () => {
  assert.equal(optimisedAfterWarmLoop(false).optimised, true, 'the control: V8 optimises it by default');
  const agent = optimisedAfterWarmLoop(true);
  assert.doesNotMatch(agent.stderr, /unrecognized flag/);
  assert.equal(agent.optimised, false, 'the raised budget keeps it in the baseline tiers');
});

test("the agent's thresholds are 16 × this V8's defaults, which the module records", async () => {
  const { v8TieringDefaults, agentTieringFlags, tierUpScale } = await import('../src/v8-tiering.js');
  const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
  for (const [flag, value] of Object.entries(v8TieringDefaults)) {
    const actual = new RegExp(`default: --${flag}=(\\d+)`).exec(options)?.[1];
    assert.equal(Number(actual), value, `V8's default for --${flag}: update v8TieringDefaults (and re-measure with npm run bench:agent)`);
    assert.ok(agentTieringFlags.includes(`--${flag}=${value * tierUpScale}`));
  }
});

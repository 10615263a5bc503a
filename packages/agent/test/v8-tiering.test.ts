// Goal: the agent's V8 tiering setting (src/v8-tiering.ts) is one this Node.js knows and applies —
// a Node.js that dropped the flag would only print "unrecognized flag", so this is where it shows.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const tiering = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/v8-tiering.ts')).href;

/** Runs a small function 20,000 times under --trace-opt; returns whether V8 optimised it. */
function optimisedAfterWarmLoop(withAgentSetting: boolean): { optimised: boolean; stderr: string } {
  const script = `${withAgentSetting ? `await import(${JSON.stringify(tiering)});` : ''}
    function lukewarm(x) { return x * 2 + 1; }
    let sum = 0;
    for (let i = 0; i < 20000; i++) sum += lukewarm(i);
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

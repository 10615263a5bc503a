// Goal: each timing inequality, when broken, is reported as PGVIP_CONFIG_TIMING at the field to
// change, with the inequality and what would satisfy it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../src/config/index.js';
import type { Timings } from '../src/core/timings.js';
import { agentYaml, problemsOf } from './config-helpers.js';

async function timingProblems(timings: Record<string, number>): Promise<string[]> {
  return problemsOf(() => parseConfigText(agentYaml((d) => { d.cluster.timings = timings; }), 'agent', 'agent.yaml'), 'PGVIP_CONFIG_TIMING');
}

/** The timings, with every other field at its default, as the loader would use them. */
function accepted(timings: Record<string, number>): Timings {
  return parseConfigText(agentYaml((d) => { d.cluster.timings = timings; }), 'agent', 'agent.yaml').cluster.timings;
}

function only(lines: readonly string[], field: string): string {
  assert.equal(lines.length, 1, lines.join('\n'));
  const line = lines[0] ?? '';
  assert.ok(line.startsWith(`agent.yaml: cluster.timings.${field}: `), line);
  return line;
}

test('maxDriftRatio of 10 % or more is refused', async () => {
  const line = only(await timingProblems({ maxDriftRatio: 0.2 }), 'maxDriftRatio');
  assert.match(line, /maxDriftRatio 0\.2 must be in \[0, 0\.1\)/);
});

test('requestTimeoutMs must be shorter than heartbeatMs', async () => {
  const line = only(await timingProblems({ requestTimeoutMs: 600 }), 'requestTimeoutMs');
  assert.match(line, /requestTimeoutMs 600 must be < heartbeatMs 200/);
});

test('a lease that would not survive two lost renewals names the leaseMs that would', async () => {
  // A lease this short also leaves no room for the VIP move (next test); each bound says its own.
  const lines = await timingProblems({ leaseMs: 500 });
  assert.equal(lines.length, 2, lines.join('\n'));
  const line = only(lines.filter((l) => l.includes('2·heartbeatMs + requestTimeoutMs')), 'leaseMs');
  assert.match(line, /= 395 must be ≥ 2·heartbeatMs \+ requestTimeoutMs = 550/);
  assert.match(line, /raise leaseMs to at least 657/);
});

test('a lease too short for the VIP move is refused, though every other inequality holds', async () => {
  // Before vipCallBudgetMs was validated this passed every check, yet a promoted node could never
  // move the VIP: the move needs its lease to outlive the EC2 call (vipCallBudgetMs, 1000) and the
  // lease never can.
  const line = only(await timingProblems({ heartbeatMs: 300, requestTimeoutMs: 250, leaseMs: 1000 }), 'leaseMs');
  assert.match(line, /leaseMs·\(1−ρ\)−2·leaseMarginMs−heartbeatMs−requestTimeoutMs = 240 must be ≥ vipCallBudgetMs = 1000/);
  assert.match(line, /raise leaseMs to at least 1768, or lower vipCallBudgetMs to at most 240$/);
  // The bound is exact: the leaseMs it names is accepted.
  assert.equal((accepted({ heartbeatMs: 300, requestTimeoutMs: 250, leaseMs: 1768 })).leaseMs, 1768);
  assert.equal((await timingProblems({ heartbeatMs: 300, requestTimeoutMs: 250, leaseMs: 1767 })).length, 1);
});

test('vipCallBudgetMs is a validated setting: a longer EC2 budget needs a longer lease', async () => {
  const line = only(await timingProblems({ vipCallBudgetMs: 2000 }), 'leaseMs');
  assert.match(line, /= 1826 must be ≥ vipCallBudgetMs = 2000/);
  assert.match(line, /raise leaseMs to at least 2576, or lower vipCallBudgetMs to at most 1826$/);
  assert.equal((accepted({ vipCallBudgetMs: 1826 })).vipCallBudgetMs, 1826);
});

test('streamingGraceMs must outlast the wait before a standby may ask for a vote', async () => {
  const line = only(await timingProblems({ streamingGraceMs: 3000 }), 'streamingGraceMs');
  assert.match(line, /streamingGraceMs 3000 must be > .* = 3124/);
});

test('writeProbeTimeoutMs may not be shorter than requestTimeoutMs', async () => {
  const line = only(await timingProblems({ writeProbeTimeoutMs: 100 }), 'writeProbeTimeoutMs');
  assert.match(line, /writeProbeTimeoutMs 100 must be ≥ requestTimeoutMs 150/);
});

test('syncDegradeAfterMs may not drop sync replication on a single missed check', async () => {
  const line = only(await timingProblems({ syncDegradeAfterMs: 500 }), 'syncDegradeAfterMs');
  assert.match(line, /syncDegradeAfterMs 500 must be ≥ failureChecks·heartbeatMs = 600/);
});

test('a malformed timing field is PGVIP_CONFIG_INVALID, and the inequalities wait until it is fixed', async () => {
  const lines = await problemsOf(
    () => parseConfigText(agentYaml((d) => { d.cluster.timings = { heartbeatMs: '500ms', leaseMs: 1000 }; }), 'agent', 'agent.yaml'),
    'PGVIP_CONFIG_INVALID',
  );
  assert.deepEqual(lines, ['agent.yaml: cluster.timings.heartbeatMs: must be an integer from 10 to 60000 (got "500ms")']);
});

test('a misspelt timing field suggests the real one', async () => {
  const lines = await problemsOf(() => parseConfigText(agentYaml((d) => { d.cluster.timings = { leaseMS: 4000 }; }), 'agent', 'agent.yaml'), 'PGVIP_CONFIG_INVALID');
  assert.match(lines[0] ?? '', /^agent\.yaml: cluster\.timings\.leaseMS: unknown key \(got 4000\); did you mean "leaseMs"\?/);
});

// Goal: paths that PostgreSQL's tools hand to /bin/sh (dataDir, binDir) are refused when they hold
// shell syntax, and the error says why; ordinary paths pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../src/config/index.js';
import { agentYaml, lineAbout, problemsOf, witnessYaml } from './config-helpers.js';

const agent = (text: string) => () => parseConfigText(text, 'agent', 'agent.yaml');

test('dataDir with $(...) is refused, naming /bin/sh as the reason', async () => {
  const payload = '/x/pg$(touch${IFS}/tmp/x)';
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[0].postgres.dataDir = payload; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].postgres.dataDir', 'pg_ctl and pg_rewind run postgres through /bin/sh', JSON.stringify(payload));
});

test('every shell metacharacter in dataDir or binDir is refused, in both the agent and the witness file', async () => {
  for (const bad of ['/a`id`', '/a"b', '/a\\b', '/a;b', '/a&b', '/a|b', '/a(b', '/a>b', '/a*b', '/a?b', "/a'b", '/a!b', '/a$b', '/a\tb', '/a\nb']) {
    const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[1].postgres.binDir = bad; })), 'PGVIP_CONFIG_INVALID');
    lineAbout(lines, 'agent.yaml', 'cluster.nodes[1].postgres.binDir', '/bin/sh');
    const wlines = await problemsOf(() => parseConfigText(witnessYaml((d) => { d.clusters[0].nodes[0].postgres.dataDir = bad; }), 'witness', 'witness.yaml'), 'PGVIP_CONFIG_INVALID');
    lineAbout(wlines, 'witness.yaml', 'clusters[0].nodes[0].postgres.dataDir', '/bin/sh');
  }
});

test('ordinary paths pass', () => {
  const config = parseConfigText(agentYaml((d) => { d.cluster.nodes[0].postgres.dataDir = '/srv/pg-15/data_main.v2,x=y@z+1:a'; }), 'agent', 'agent.yaml');
  assert.equal(config.cluster.nodes[0]?.postgres.dataDir, '/srv/pg-15/data_main.v2,x=y@z+1:a');
});

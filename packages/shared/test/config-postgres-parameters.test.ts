// Goal: postgresql.parameters take any ordinary PostgreSQL setting, as strings ALTER SYSTEM can
// take, and refuse what would be unsafe or a second writer: a name that is not an identifier (it
// travels unquoted into ALTER SYSTEM), a value with a newline or another control character, and every
// setting pgvip manages itself, each refused at its field with what to do instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../src/config/index.js';
import { pgvipManagedParameters } from '../src/config/postgres-parameters-schema.js';
import { agentYaml, lineAbout, problemsOf, type EditableDoc } from './config-helpers.js';

const withParams = (params: unknown) => agentYaml((d: EditableDoc) => {
  d.cluster.postgresql = { parameters: params };
});
const agent = (text: string) => () => parseConfigText(text, 'agent', 'agent.yaml');

test('ordinary settings are accepted and become the strings ALTER SYSTEM takes; none by default', () => {
  const cfg = parseConfigText(withParams({ work_mem: '64MB', max_connections: 300, jit: false, 'pg_stat_statements.max': 10000 }), 'agent', 'agent.yaml');
  assert.deepEqual(cfg.cluster.postgresql.parameters, { work_mem: '64MB', max_connections: '300', jit: 'false', 'pg_stat_statements.max': '10000' });
  assert.deepEqual(parseConfigText(agentYaml(), 'agent', 'agent.yaml').cluster.postgresql.parameters, {});
});

test('a setting pgvip manages is refused at its field, naming what to set instead', async () => {
  const lines = await problemsOf(agent(withParams({ synchronous_standby_names: '*', max_slot_wal_keep_size: '1GB', port: 5433 })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.postgresql.parameters.synchronous_standby_names', 'is managed by pgvip', 'set replication.mode instead');
  lineAbout(lines, 'agent.yaml', 'cluster.postgresql.parameters.max_slot_wal_keep_size', 'is managed by pgvip', 'replication.slots.maxWalKeepSizeMb');
  lineAbout(lines, 'agent.yaml', 'cluster.postgresql.parameters.port', 'is managed by pgvip', 'nodes[].postgres.port');
});

test('a name that is not an identifier and a value with a newline are refused: nothing reaches ALTER SYSTEM unchecked', async () => {
  const lines = await problemsOf(agent(withParams({ 'work_mem = 1; DROP TABLE x; --': '1', log_line_prefix: "%m\nshared_preload_libraries = 'evil'" })), 'PGVIP_CONFIG_INVALID');
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.ok(lines.some((l) => /is not a PostgreSQL parameter name/.test(l) && /pg_stat_statements\.max/.test(l)), lines.join('\n'));
  lineAbout(lines, 'agent.yaml', 'cluster.postgresql.parameters.log_line_prefix', 'holds a control character', 'on one line');
});

test('every setting the agent manages itself is on the refused list', async () => {
  const { managedSettings } = await import('../../agent/src/postgres/managed-settings.js');
  for (const s of managedSettings) assert.ok(Object.hasOwn(pgvipManagedParameters, s.name), `${s.name} is managed by the agent but not refused`);
});
